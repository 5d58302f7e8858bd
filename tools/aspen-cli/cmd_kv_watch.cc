// aspen-cli kv watch: stream the changes of a key, a prefix or a range until Ctrl+C.
// aspen-cli kv log: stream the committed log's entries (the log subscription) until Ctrl+C.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <iostream>

#include "cmd_kv.h"
#include "completion.h"
#include "payload.h"

namespace aspen::cli {

namespace {

struct WatchArgs {
  std::string key;
  std::string prefix;
  bool has_prefix = false;
  bool is_key_hex = false;
  uint64_t from_revision = 0;
  bool has_prev_kv = false;
  bool is_no_put = false;
  bool is_no_delete = false;
  uint64_t count = 0;
  uint64_t node_id = 0;
};

nlohmann::json event_json(uint64_t revision, const clientpb::WatchEvent& ev) {
  const bool is_put = ev.type() == clientpb::WatchEvent::PUT;
  nlohmann::json j = {{"type", is_put ? "put" : "delete"}, {"revision", revision}, {"kv", kv_json(ev.kv())}};
  if (!is_put) {
    j["kv"].erase("value");
    j["kv"].erase("value_encoding");
  }
  if (ev.has_prev_kv()) j["prev_kv"] = kv_json(ev.prev_kv());
  return j;
}

void print_event(const Context& ctx, uint64_t revision, const clientpb::WatchEvent& ev) {
  const bool is_put = ev.type() == clientpb::WatchEvent::PUT;
  if (ctx.is_json) {
    // One object per line (NDJSON), so a consumer can act on each event as it arrives.
    std::cout << event_json(revision, ev).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    return;
  }
  if (is_put) {
    std::cout << "PUT " << display_bytes(ev.kv().key()) << " " << display_bytes(ev.kv().value()) << " (revision "
              << revision << ")";
  } else {
    std::cout << "DELETE " << display_bytes(ev.kv().key()) << " (revision " << revision << ")";
  }
  if (ev.has_prev_kv()) std::cout << " previous: " << display_bytes(ev.prev_kv().value());
  std::cout << std::endl;
}

int run_watch(const Context& ctx, const WatchArgs& a) {
  if (a.has_prefix == !a.key.empty()) return usage_error(ctx, "give a KEY or --prefix P (one of the two)");
  auto key = key_from_arg(a.has_prefix ? a.prefix : a.key, a.is_key_hex);
  if (!key) return usage_error(ctx, key.error().message());
  return with_client(ctx, [&](client::Client& c) {
    client::WatchOptions o;
    o.key = *key;
    o.is_prefix = a.has_prefix;
    o.start_revision = a.from_revision;
    o.has_prev_kv = a.has_prev_kv;
    o.is_no_put = a.is_no_put;
    o.is_no_delete = a.is_no_delete;
    o.node_id = a.node_id;
    auto w = c.watch(o);
    if (!w) return fail(ctx, w.error());
    if (!ctx.is_json) {
      std::cerr << "watching from revision " << (*w)->last_revision() + 1 << " (Ctrl+C to stop)" << std::endl;
    }
    uint64_t seen = 0;
    while (a.count == 0 || seen < a.count) {
      auto batch = (*w)->next(60000);
      if (!batch) {
        if (batch.error().code() == ErrorCode::kTimeout) continue;  // quiet for a minute: keep watching
        return fail(ctx, batch.error());
      }
      for (const auto& ev : batch->events) {
        print_event(ctx, batch->revision, ev);
        if (a.count != 0 && ++seen >= a.count) break;
      }
    }
    return kExitOk;
  });
}

struct LogArgs {
  std::string prefix;
  uint64_t from_index = 0;
  uint64_t count = 0;
  uint64_t node_id = 0;
};

void print_entry(const Context& ctx, const client::WatchBatch& entry) {
  if (ctx.is_json) {
    nlohmann::json j = {{"index", entry.revision}, {"timestamp_ms", entry.timestamp_ms}};
    j["changes"] = nlohmann::json::array();
    for (const auto& ev : entry.events) j["changes"].push_back(event_json(entry.revision, ev));
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    return;
  }
  const auto t = static_cast<std::time_t>(entry.timestamp_ms / 1000);
  std::cout << "entry " << entry.revision << " at "
            << fmt::format("{:%Y-%m-%d %H:%M:%S}.{:03d} UTC", fmt::gmtime(t), entry.timestamp_ms % 1000) << ": "
            << entry.events.size() << (entry.events.size() == 1 ? " change" : " changes") << "\n";
  for (const auto& ev : entry.events) {
    std::cout << "  ";
    print_event(ctx, entry.revision, ev);
  }
  std::cout << std::flush;
}

int run_log(const Context& ctx, const LogArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    client::LogSubscribeOptions o;
    o.prefix = a.prefix;
    o.from_index = a.from_index;
    o.node_id = a.node_id;
    auto sub = c.subscribe_log(o);
    if (!sub) return fail(ctx, sub.error());
    if (!ctx.is_json) {
      std::cerr << "following the log from index " << (*sub)->last_revision() + 1 << " (Ctrl+C to stop)" << std::endl;
    }
    uint64_t seen = 0;
    while (a.count == 0 || seen < a.count) {
      auto entry = (*sub)->next(60000);
      if (!entry) {
        if (entry.error().code() == ErrorCode::kTimeout) continue;  // quiet for a minute: keep following
        return fail(ctx, entry.error());
      }
      if (entry->is_progress()) continue;
      print_entry(ctx, *entry);
      ++seen;
    }
    return kExitOk;
  });
}

}  // namespace

void add_kv_log_command(CLI::App* kv, Context& ctx, Action& action) {
  auto args = std::make_shared<LogArgs>();
  auto* log = kv->add_subcommand("log", "Follow the committed log: every entry that changed keys, whole, until Ctrl+C");
  log->add_option("--prefix", args->prefix, "Only entries that changed keys starting with this (default: every key)");
  log->add_option("--from-index", args->from_index,
                  "Start at this log index (default: entries committed from now on); the history must still hold "
                  "it");
  log->add_option("--count", args->count, "Exit after this many entries (default: never)");
  log->add_option("--node", args->node_id, "Follow through this member only (default: any, moving on failure)");
  log->footer(
      "One block per committed entry that changed a key under the prefix: 'entry N at TIME: K changes'\n"
      "then one line per change; with --json one object per line {index, timestamp_ms, changes}.\n"
      "Entries arrive in index order, each once and whole (all of an entry's changes under the prefix\n"
      "together), with no gap: if the member fails, the subscription moves to another member and\n"
      "carries on after the last index printed. An entry's index is also its revision (kv get\n"
      "--revision N reads the state it left). Entries older than the history (kv compact, retention)\n"
      "are gone: starting there stops with Compacted (exit 1) naming the oldest index left.\n"
      "Examples:\n  aspen-cli kv log\n  aspen-cli kv log --prefix jobs/ --from-index 1200 --json");
  log->callback([&ctx, &action, args] { action = [&ctx, args] { return run_log(ctx, *args); }; });
}

void add_kv_watch_command(CLI::App* kv, Context& ctx, Action& action) {
  auto args = std::make_shared<WatchArgs>();
  auto* watch = kv->add_subcommand("watch", "Print every change of a key or a prefix as it happens, until Ctrl+C");
  watch->add_option("key", args->key, "The key to watch");
  auto* prefix = watch->add_option("--prefix", args->prefix, "Watch every key starting with this ('' = every key)");
  add_key_hex_flag(watch, args->is_key_hex);
  watch->add_option("--from-revision", args->from_revision,
                    "Start with the changes at this revision (default: the changes from now on); the history must "
                    "still hold it");
  watch->add_flag("--prev-kv", args->has_prev_kv, "Also print each key's previous value");
  watch->add_flag("--no-put", args->is_no_put, "Leave out puts");
  watch->add_flag("--no-delete", args->is_no_delete, "Leave out deletes");
  watch->add_option("--count", args->count, "Exit after this many events (default: never)");
  watch->add_option("--node", args->node_id, "Watch through this member only (default: any, moving on failure)");
  watch->footer(
      "One line per change: 'PUT key value (revision N)' or 'DELETE key (revision N)'; with --json\n"
      "one JSON object per line. Changes arrive in revision order, each once, with no gap: if the\n"
      "member serving the watch fails, the watch moves to another member and carries on after the\n"
      "last revision printed. If the history it needs was compacted, it stops with Compacted\n"
      "(exit 1) naming the oldest revision left.\n"
      "Examples:\n  aspen-cli kv watch config/db-url\n  aspen-cli kv watch --prefix jobs/ --json\n"
      "  aspen-cli kv watch --prefix config/ --from-revision 1200 --prev-kv");
  watch->callback([&ctx, &action, args, prefix] {
    args->has_prefix = prefix->count() > 0;
    action = [&ctx, args] { return run_watch(ctx, *args); };
  });
}

}  // namespace aspen::cli
