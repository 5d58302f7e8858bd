// aspen-cli barrier enter|leave|status and service register|list|deregister|heartbeat: groups
// of parties and of service instances.
#include <fmt/format.h>

#include <iostream>

#include "cmd_coord.h"
#include "coord/barrier.h"
#include "coord/service_registry.h"

namespace aspen::cli {

namespace {

struct BarrierArgs {
  std::string name;
  uint32_t parties = 0;
  std::string party;
  uint64_t wait_ms = 0;
};

int run_barrier_enter(const Context& ctx, const BarrierArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::BarrierManager b(c, a.name, a.parties);
    auto t = b.enter(a.party);
    if (!t) return fail(ctx, t.error());
    bool is_released = t->did_release;
    if (!is_released && a.wait_ms > 0) {
      const uint64_t deadline = steady_now_ms() + a.wait_ms;
      auto s = b.wait(*t, deadline, real_waiter());
      if (!s && !is_wait_expired(s.error(), deadline)) return fail(ctx, s.error());
      is_released = s.has_value();
    } else if (!is_released) {
      auto r = b.is_released(*t);
      if (!r) return fail(ctx, r.error());
      is_released = *r;
    }
    if (ctx.is_json) {
      print_json_ok({{"barrier", a.name}, {"party", a.party}, {"generation", t->generation},
                     {"did_release", t->did_release}, {"released", is_released}});
    } else if (is_released) {
      std::cout << fmt::format("released (generation {}){}\n", t->generation,
                               t->did_release ? "; this party was the last to arrive" : "");
    } else {
      std::cerr << fmt::format("entered generation {}; not released yet (run again with --wait-ms, or 'barrier "
                               "status')\n",
                               t->generation);
    }
    // Entered but still waiting is not a failure of the command, but a script needs to know.
    return is_released ? kExitOk : kExitFailed;
  });
}

int run_barrier_leave(const Context& ctx, const BarrierArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto s = coord::BarrierManager(c, a.name, a.parties).leave(a.party);
    if (!s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"barrier", a.name}, {"party", a.party}, {"left", true}});
    } else {
      std::cout << a.party << " left " << a.name << "\n";
    }
    return kExitOk;
  });
}

int run_barrier_status(const Context& ctx, const BarrierArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto st = coord::BarrierManager(c, a.name, a.parties).state();
    if (!st) return fail(ctx, st.error());
    if (ctx.is_json) {
      print_json_ok({{"barrier", a.name}, {"parties", st->parties}, {"generation", st->generation},
                     {"released", st->is_released}, {"members", st->members}});
    } else {
      std::string members;
      for (const auto& m : st->members) members += (members.empty() ? "" : ", ") + m;
      std::cout << fmt::format("generation {}: {} ({} of {} parties: {})\n", st->generation,
                               st->is_released ? "released" : "waiting", st->members.size(), st->parties,
                               members.empty() ? "-" : members);
    }
    return kExitOk;
  });
}

struct ServiceArgs {
  std::string service;
  std::string instance;
  std::string address;
  std::vector<std::string> metadata;  // key=value
  uint64_t ttl_s = 30;
};

// The instance's registration (with its lease) as the registry lists it now.
Result<coord::Registration> find_registration(coord::ServiceRegistry& reg, const ServiceArgs& a) {
  auto list = reg.discover(a.service);
  if (!list) return std::unexpected(list.error());
  for (const auto& i : *list) {
    if (i.instance_id == a.instance) return coord::Registration{i.service, i.instance_id, i.lease_id};
  }
  return make_error(ErrorCode::kNotFound,
                    fmt::format("instance '{}' of service '{}' is not registered (or its TTL lapsed)", a.instance,
                                a.service));
}

int run_register(const Context& ctx, const ServiceArgs& a) {
  std::map<std::string, std::string> metadata;
  for (const auto& kv : a.metadata) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return usage_error(ctx, "--meta takes key=value, got '" + kv + "'");
    metadata[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return with_client(ctx, [&](client::Client& c) {
    coord::ServiceRegistry reg(c);
    auto r = reg.register_instance(a.service, a.instance, a.address, metadata, a.ttl_s * 1000);
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"service", a.service}, {"instance", a.instance}, {"lease_id", r->lease_id}, {"ttl_s", a.ttl_s}});
    } else {
      std::cout << fmt::format("registered {}/{} (lease {}, ttl {} s; keep it with 'service heartbeat')\n", a.service,
                               a.instance, r->lease_id, a.ttl_s);
    }
    return kExitOk;
  });
}

int run_list(const Context& ctx, const ServiceArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto list = coord::ServiceRegistry(c).discover(a.service);
    if (!list) return fail(ctx, list.error());
    if (ctx.is_json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& i : *list) {
        out.push_back({{"instance", i.instance_id}, {"address", i.address}, {"metadata", i.metadata},
                       {"lease_id", i.lease_id}});
      }
      print_json_ok({{"service", a.service}, {"instances", std::move(out)}});
      return kExitOk;
    }
    if (list->empty()) std::cout << "no healthy instances\n";
    for (const auto& i : *list) {
      std::string meta;
      for (const auto& [k, v] : i.metadata) meta += (meta.empty() ? "" : ",") + k + "=" + v;
      std::cout << fmt::format("{}\t{}\t{}\n", i.instance_id, i.address, meta);
    }
    return kExitOk;
  });
}

int run_deregister_or_heartbeat(const Context& ctx, const ServiceArgs& a, bool is_deregister) {
  return with_client(ctx, [&](client::Client& c) {
    coord::ServiceRegistry reg(c);
    auto r = find_registration(reg, a);
    if (!r) return fail(ctx, r.error());
    auto s = is_deregister ? reg.deregister(*r) : reg.heartbeat(*r);
    if (!s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"service", a.service}, {"instance", a.instance}, {is_deregister ? "deregistered" : "renewed", true}});
    } else {
      std::cout << (is_deregister ? "deregistered " : "renewed ") << a.service << "/" << a.instance << "\n";
    }
    return kExitOk;
  });
}

int run_deregister(const Context& ctx, const ServiceArgs& a) { return run_deregister_or_heartbeat(ctx, a, true); }
int run_heartbeat(const Context& ctx, const ServiceArgs& a) { return run_deregister_or_heartbeat(ctx, a, false); }

}  // namespace

void add_barrier_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* barrier = app.add_subcommand("barrier", "Barriers: N parties enter and are released together");
  barrier->require_subcommand(1);
  barrier->footer("After the release each party leaves; when the last has left, the barrier is reset\n"
                  "for its next round (generation + 1). Every command names the size with --parties.");

  auto enter = std::make_shared<BarrierArgs>();
  auto* enter_cmd = barrier->add_subcommand("enter", "Arrive at the barrier (and wait for the others)");
  enter_cmd->add_option("name", enter->name, "Barrier name")->required();
  enter_cmd->add_option("--parties", enter->parties, "How many parties the barrier waits for")->required();
  enter_cmd->add_option("--party", enter->party, "This party's id")->required();
  add_wait_option(enter_cmd, enter->wait_ms, "(waiting) for the release");
  enter_cmd->footer("Exit 0 once released, 1 if still waiting (entering again is harmless).\n"
                    "Example:\n  aspen-cli barrier enter stage-2 --parties 4 --party worker-1 --wait-ms 60000");
  set_action(enter_cmd, ctx, action, enter, &run_barrier_enter);

  auto leave = std::make_shared<BarrierArgs>();
  auto* leave_cmd = barrier->add_subcommand("leave", "Leave after the release (or withdraw before it)");
  leave_cmd->add_option("name", leave->name, "Barrier name")->required();
  leave_cmd->add_option("--parties", leave->parties, "The barrier's size")->required();
  leave_cmd->add_option("--party", leave->party, "This party's id")->required();
  leave_cmd->footer("Exit 1 if the party is not in the barrier.\n"
                    "Example:\n  aspen-cli barrier leave stage-2 --parties 4 --party worker-1");
  set_action(leave_cmd, ctx, action, leave, &run_barrier_leave);

  auto st = std::make_shared<BarrierArgs>();
  auto* st_cmd = barrier->add_subcommand("status", "Show the generation, members and whether it released");
  st_cmd->add_option("name", st->name, "Barrier name")->required();
  st_cmd->add_option("--parties", st->parties, "The barrier's size")->required();
  st_cmd->footer("Example:\n  aspen-cli barrier status stage-2 --parties 4");
  set_action(st_cmd, ctx, action, st, &run_barrier_status);
}

void add_service_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* svc = app.add_subcommand("service", "Service discovery: instances register with a TTL");
  svc->require_subcommand(1);
  svc->footer("An instance is listed while its lease lives: heartbeat more often than --ttl-s.");

  auto reg = std::make_shared<ServiceArgs>();
  auto* reg_cmd = svc->add_subcommand("register", "Register (or re-register) an instance");
  reg_cmd->add_option("service", reg->service, "Service name")->required();
  reg_cmd->add_option("instance", reg->instance, "Instance id")->required();
  reg_cmd->add_option("--address", reg->address, "Where clients reach it")->required();
  reg_cmd->add_option("--meta", reg->metadata, "Metadata key=value (repeatable)");
  add_ttl_option(reg_cmd, reg->ttl_s, "How long the registration lasts without a heartbeat");
  reg_cmd->footer("Example:\n  aspen-cli service register api api-1 --address 10.0.0.5:8080 --meta zone=a --ttl-s 10");
  set_action(reg_cmd, ctx, action, reg, &run_register);

  auto list = std::make_shared<ServiceArgs>();
  auto* list_cmd = svc->add_subcommand("list", "List a service's healthy instances");
  list_cmd->add_option("service", list->service, "Service name")->required();
  list_cmd->footer("Example:\n  aspen-cli service list api --json");
  set_action(list_cmd, ctx, action, list, &run_list);

  auto dereg = std::make_shared<ServiceArgs>();
  auto* dereg_cmd = svc->add_subcommand("deregister", "Remove an instance now");
  dereg_cmd->add_option("service", dereg->service, "Service name")->required();
  dereg_cmd->add_option("instance", dereg->instance, "Instance id")->required();
  dereg_cmd->footer("Exit 1 if it is not registered.\nExample:\n  aspen-cli service deregister api api-1");
  set_action(dereg_cmd, ctx, action, dereg, &run_deregister);

  auto hb = std::make_shared<ServiceArgs>();
  auto* hb_cmd = svc->add_subcommand("heartbeat", "Restart an instance's TTL");
  hb_cmd->add_option("service", hb->service, "Service name")->required();
  hb_cmd->add_option("instance", hb->instance, "Instance id")->required();
  hb_cmd->footer("Exit 1 if its TTL already lapsed (register it again).\n"
                 "Example:\n  aspen-cli service heartbeat api api-1");
  set_action(hb_cmd, ctx, action, hb, &run_heartbeat);
}

}  // namespace aspen::cli
