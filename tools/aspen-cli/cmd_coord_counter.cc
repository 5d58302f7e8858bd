// aspen-cli counter ..., sequence next, ratelimit acquire: the numeric primitives.
#include <fmt/format.h>

#include <iostream>

#include "cmd_coord.h"
#include "coord/counter.h"
#include "coord/rate_limiter.h"
#include "coord/sequence.h"

namespace aspen::cli {

namespace {

struct CounterArgs {
  std::string name;
  int64_t delta = 1;
  int64_t expected = 0;
  int64_t desired = 0;
};

int print_counter(const Context& ctx, const std::string& name, const Result<int64_t>& r) {
  if (!r) return fail(ctx, r.error());
  if (ctx.is_json) {
    print_json_ok({{"counter", name}, {"value", *r}});
  } else {
    std::cout << *r << "\n";
  }
  return kExitOk;
}

int run_counter_get(const Context& ctx, const CounterArgs& a) {
  return with_client(ctx, [&](client::Client& c) { return print_counter(ctx, a.name, coord::AtomicCounter(c, a.name).get()); });
}

int run_counter_add(const Context& ctx, const CounterArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    return print_counter(ctx, a.name, coord::AtomicCounter(c, a.name).add(a.delta));
  });
}

int run_counter_cas(const Context& ctx, const CounterArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::AtomicCounter counter(c, a.name);
    auto r = counter.compare_and_set(a.expected, a.desired);
    if (!r) return fail(ctx, r.error());
    // On failure, show what the counter holds so the operator can retry with it.
    std::optional<int64_t> current;
    if (!*r) {
      auto now = counter.get();
      if (now) current = *now;
    }
    if (ctx.is_json) {
      nlohmann::json out = {{"counter", a.name}, {"succeeded", *r}};
      if (*r) out["value"] = a.desired;
      if (current) out["current"] = *current;
      print_json_ok(std::move(out));
    } else if (*r) {
      std::cout << "set " << a.name << " from " << a.expected << " to " << a.desired << "\n";
    } else {
      std::cerr << "not set: " << a.name << " is "
                << (current ? std::to_string(*current) : std::string("unknown")) << ", not " << a.expected << "\n";
    }
    return *r ? kExitOk : kExitFailed;
  });
}

struct SequenceArgs {
  std::string name;
  uint64_t count = 1;
};

int run_sequence_next(const Context& ctx, const SequenceArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    // A CLI process lives for one call, so it reserves exactly what it prints: no block is
    // left to waste.
    coord::SequenceGenerator ids(c, a.name, a.count);
    auto r = ids.reserve(a.count);
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      nlohmann::json list = nlohmann::json::array();
      for (uint64_t id = r->first; id < r->end; ++id) list.push_back(id);
      print_json_ok({{"sequence", a.name}, {"first", r->first}, {"end", r->end}, {"ids", std::move(list)}});
    } else {
      for (uint64_t id = r->first; id < r->end; ++id) std::cout << id << "\n";
    }
    return kExitOk;
  });
}

struct RateArgs {
  std::string name;
  coord::RateLimitConfig cfg;
  uint64_t tokens = 1;
};

int run_ratelimit_acquire(const Context& ctx, const RateArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::DistributedRateLimiter rl(c, a.name, a.cfg);
    auto r = rl.try_acquire(a.tokens, wall_now_ms());
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"ratelimit", a.name},
                     {"allowed", r->is_allowed},
                     {"tokens_remaining", r->tokens_remaining},
                     {"retry_after_ms", r->retry_after_ms}});
    } else if (r->is_allowed) {
      std::cout << "allowed (" << r->tokens_remaining << " tokens left)\n";
    } else {
      std::cerr << "refused: retry after " << r->retry_after_ms << " ms\n";
    }
    return r->is_allowed ? kExitOk : kExitFailed;
  });
}

}  // namespace

void add_counter_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* counter = app.add_subcommand("counter", "Shared 64-bit counters: exact under concurrent updates");
  counter->require_subcommand(1);
  counter->footer("A counter that was never written reads 0. Values are stored in decimal under\n"
                  "'__coord:counter:<name>'.");

  auto get = std::make_shared<CounterArgs>();
  auto* get_cmd = counter->add_subcommand("get", "Print a counter's value");
  get_cmd->add_option("name", get->name, "Counter name ([A-Za-z0-9._/-], at most 128 bytes)")->required();
  get_cmd->footer("Example:\n  aspen-cli counter get jobs/completed");
  set_action(get_cmd, ctx, action, get, &run_counter_get);

  auto incr = std::make_shared<CounterArgs>();
  auto* incr_cmd = counter->add_subcommand("incr", "Add 1 and print the new value");
  incr_cmd->add_option("name", incr->name, "Counter name")->required();
  incr_cmd->footer("Example:\n  aspen-cli counter incr jobs/completed");
  set_action(incr_cmd, ctx, action, incr, &run_counter_add);

  auto add = std::make_shared<CounterArgs>();
  auto* add_cmd = counter->add_subcommand("add", "Add a (possibly negative) delta and print the new value");
  add_cmd->add_option("name", add->name, "Counter name")->required();
  add_cmd->add_option("delta", add->delta, "How much to add (negative subtracts)")->required();
  add_cmd->footer("Exit 4 if the result would overflow a signed 64-bit integer.\n"
                  "Examples:\n  aspen-cli counter add jobs/completed 10\n  aspen-cli counter add jobs/completed -3");
  set_action(add_cmd, ctx, action, add, &run_counter_add);

  auto cas = std::make_shared<CounterArgs>();
  auto* cas_cmd = counter->add_subcommand("cas", "Set a counter to NEW only if it is EXPECTED now");
  cas_cmd->add_option("name", cas->name, "Counter name")->required();
  cas_cmd->add_option("expected", cas->expected, "The value it must have")->required();
  cas_cmd->add_option("new", cas->desired, "The value to set")->required();
  cas_cmd->footer("Exit 1 (and the current value) when the counter was not EXPECTED.\n"
                  "Example:\n  aspen-cli counter cas jobs/completed 42 0");
  set_action(cas_cmd, ctx, action, cas, &run_counter_cas);
}

void add_sequence_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* seq = app.add_subcommand("sequence", "Unique, increasing ids shared by every client");
  seq->require_subcommand(1);
  auto next = std::make_shared<SequenceArgs>();
  auto* next_cmd = seq->add_subcommand("next", "Reserve and print the next id(s) of a sequence");
  next_cmd->add_option("name", next->name, "Sequence name")->required();
  next_cmd->add_option("--count", next->count, "How many consecutive ids to reserve")
      ->capture_default_str();
  next_cmd->footer("Ids start at 1, are never handed out twice, and a later call always gets larger\n"
                   "ids than an earlier one.\nExample:\n  aspen-cli sequence next orders --count 3");
  set_action(next_cmd, ctx, action, next, &run_sequence_next);
}

void add_ratelimit_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* rl = app.add_subcommand("ratelimit", "Token buckets shared by every client");
  rl->require_subcommand(1);
  auto acq = std::make_shared<RateArgs>();
  auto* acq_cmd = rl->add_subcommand("acquire", "Take tokens from a bucket if it has enough");
  acq_cmd->add_option("name", acq->name, "Bucket name")->required();
  acq_cmd->add_option("--capacity", acq->cfg.capacity, "Tokens the bucket holds (a new bucket starts full)")
      ->required();
  acq_cmd->add_option("--refill-per-s", acq->cfg.refill_per_second, "Tokens added per second")->required();
  acq_cmd->add_option("--tokens", acq->tokens, "How many tokens to take")->capture_default_str();
  acq_cmd->footer("Exit 0 when allowed, 1 when refused (the output says when to retry). Every client\n"
                  "of a bucket must pass the same capacity and rate; time is this host's wall clock.\n"
                  "Example:\n  aspen-cli ratelimit acquire api/tenant-4 --capacity 100 --refill-per-s 10");
  set_action(acq_cmd, ctx, action, acq, &run_ratelimit_acquire);
}

}  // namespace aspen::cli
