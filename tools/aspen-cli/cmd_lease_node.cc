// aspen-cli lease ... (leases: keys that disappear unless kept alive) and the per-node
// commands: node info, node health, node logs, metrics.
#include <fmt/format.h>

#include <iostream>

#include "cli.h"
#include "core/limits.h"
#include "kv/key_value_store.h"
#include "ops/tui_format.h"

namespace aspen::cli {

namespace {

namespace cpb = clientpb;

int print_lease(const Context& ctx, const Result<kvpb::Lease>& r, std::string_view what) {
  if (!r) return fail(ctx, r.error());
  if (ctx.is_json) {
    print_json_ok({{"lease", lease_json(*r)}});
  } else {
    std::cout << "lease " << r->id() << " " << what << " (ttl " << r->ttl_ms() / 1000 << " s)\n";
  }
  return kExitOk;
}

int run_grant(const Context& ctx, uint64_t ttl_s, uint64_t id) {
  const uint64_t min_s = limits::kMinLeaseTtlMs / 1000;
  const uint64_t max_s = limits::kMaxLeaseTtlMs / 1000;
  if (ttl_s < min_s || ttl_s > max_s) {
    return usage_error(ctx, fmt::format("ttl must be between {} and {} seconds", min_s, max_s));
  }
  return with_client(ctx, [&](client::Client& c) { return print_lease(ctx, kv::lease_grant(c, ttl_s * 1000, id), "granted"); });
}

int run_revoke(const Context& ctx, uint64_t id) {
  return with_client(ctx, [&](client::Client& c) {
    auto s = kv::lease_revoke(c, id);
    if (!s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"revoked", id}});
    } else {
      std::cout << "lease " << id << " revoked; its keys are deleted\n";
    }
    return kExitOk;
  });
}

int run_keepalive(const Context& ctx, uint64_t id) {
  return with_client(ctx, [&](client::Client& c) { return print_lease(ctx, kv::lease_keepalive(c, id), "renewed"); });
}

int run_list(const Context& ctx) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.list_leases();
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      nlohmann::json leases = nlohmann::json::array();
      for (const auto& l : *r) leases.push_back(lease_json(l));
      print_json_ok({{"leases", std::move(leases)}});
      return kExitOk;
    }
    if (r->empty()) std::cout << "no leases\n";
    for (const auto& l : *r) {
      std::cout << fmt::format("{}\tttl {} s\texpires at {} ms (leader clock)\n", l.id(), l.ttl_ms() / 1000,
                               l.expires_at_ms());
    }
    return kExitOk;
  });
}

int run_node_info(const Context& ctx, uint64_t node_id) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.node_info(client::Target{node_id});
    if (!r) return fail(ctx, r.error());
    const auto& n = r->node();
    const std::vector<std::string> addrs(n.addrs().begin(), n.addrs().end());
    if (ctx.is_json) {
      print_json_ok({{"node_id", n.node_id()},
                     {"public_key", n.public_key()},
                     {"addrs", addrs},
                     {"cluster_id", r->cluster_id()},
                     {"version", r->version()},
                     {"storage_backend", r->storage_backend()}});
    } else {
      std::string joined;
      for (const auto& a : addrs) joined += (joined.empty() ? "" : ", ") + a;
      std::cout << "node id:    " << n.node_id() << "\npublic key: " << n.public_key() << "\naddresses:  " << joined
                << "\ncluster:    " << (r->cluster_id().empty() ? "(not initialized)" : r->cluster_id())
                << "\nversion:    " << r->version() << "\nstorage:    " << r->storage_backend() << "\n";
    }
    return kExitOk;
  });
}

int run_node_health(const Context& ctx, uint64_t node_id) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.health(client::Target{node_id});
    if (!r) return fail(ctx, r.error());
    const bool is_ok = r->status() == "ok";
    if (ctx.is_json) {
      print_json_ok({{"status", r->status()},
                     {"node_id", r->node_id()},
                     {"is_initialized", r->is_initialized()},
                     {"leader_id", r->leader_id()},
                     {"uptime_ms", r->uptime_ms()}});
    } else {
      std::cout << "node " << r->node_id() << ": " << r->status() << " (leader: "
                << (r->leader_id() == 0 ? std::string("none") : std::to_string(r->leader_id()))
                << ", up " << r->uptime_ms() / 1000 << " s)\n";
    }
    return is_ok ? kExitOk : kExitFailed;
  });
}

int run_node_logs(const Context& ctx, uint64_t node_id, const std::string& level, uint32_t lines) {
  if (lines > limits::kMaxRecentLogLines) {
    return usage_error(ctx, fmt::format("--lines is at most {} (the recent lines a node keeps)", limits::kMaxRecentLogLines));
  }
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.recent_logs(client::Target{node_id}, lines, level);
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& l : r->lines()) {
        nlohmann::json j = {{"time_ms", l.time_ms()}, {"level", l.level()}};
        set_bytes(j, "message", l.message());
        out.push_back(std::move(j));
      }
      print_json_ok({{"node_id", r->node_id()}, {"lines", std::move(out)}});
      return kExitOk;
    }
    if (r->lines().empty()) std::cout << "node " << r->node_id() << " has no recent log lines at this level\n";
    for (const auto& l : r->lines()) {
      std::cout << ops::format_log_time(l.time_ms(), true) << " " << ops::log_level_tag(l.level()) << " "
                << ops::printable_log_text(l.message(), true) << "\n";
    }
    return kExitOk;
  });
}

int run_metrics(const Context& ctx, uint64_t node_id) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.metrics_text(client::Target{node_id});
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"prometheus_text", *r}});
    } else {
      std::cout << *r;
      if (!r->empty() && r->back() != '\n') std::cout << "\n";
    }
    return kExitOk;
  });
}

}  // namespace

void add_lease_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* lease = app.add_subcommand("lease", "Leases: keys attached to a lease are deleted when it expires");
  lease->require_subcommand(1);

  auto ttl_s = std::make_shared<uint64_t>(0);
  auto grant_id = std::make_shared<uint64_t>(0);
  auto* grant = lease->add_subcommand("grant", "Create a lease that expires unless kept alive");
  grant->add_option("ttl-seconds", *ttl_s, "Lifetime in seconds; each keepalive restarts it")->required();
  grant->add_option("--id", *grant_id, "Use this lease id (default: the cluster picks one)");
  grant->footer(
      "Prints the lease id. Attach keys with 'kv set --lease ID'; renew with 'lease keepalive'.\n"
      "Example:\n  aspen-cli lease grant 30");
  grant->callback([&ctx, &action, ttl_s, grant_id] {
    action = [&ctx, ttl_s, grant_id] { return run_grant(ctx, *ttl_s, *grant_id); };
  });

  auto revoke_id = std::make_shared<uint64_t>(0);
  auto* revoke = lease->add_subcommand("revoke", "End a lease now, deleting every key attached to it");
  revoke->add_option("id", *revoke_id, "The lease id")->required();
  revoke->footer("Exit 1 if no such lease exists.\nExample:\n  aspen-cli lease revoke 1234");
  revoke->callback([&ctx, &action, revoke_id] { action = [&ctx, revoke_id] { return run_revoke(ctx, *revoke_id); }; });

  auto keep_id = std::make_shared<uint64_t>(0);
  auto* keep = lease->add_subcommand("keepalive", "Renew a lease once: its full ttl starts again now");
  keep->add_option("id", *keep_id, "The lease id")->required();
  keep->footer("Exit 1 if the lease already expired or never existed.\nExample:\n  aspen-cli lease keepalive 1234");
  keep->callback([&ctx, &action, keep_id] { action = [&ctx, keep_id] { return run_keepalive(ctx, *keep_id); }; });

  auto* list = lease->add_subcommand("list", "List live leases with their ttl and expiry");
  list->footer("Example:\n  aspen-cli lease list --json");
  list->callback([&ctx, &action] { action = [&ctx] { return run_list(ctx); }; });
}

void add_node_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* node = app.add_subcommand("node", "Ask one node about itself");
  node->require_subcommand(1);

  auto info_id = std::make_shared<uint64_t>(0);
  auto* info = node->add_subcommand("info", "Show a node's id, public key, addresses, cluster and version");
  info->add_option("--node", *info_id, "Which node (default: the leader, or any reachable node)");
  info->footer("Example:\n  aspen-cli node info --node 2");
  info->callback([&ctx, &action, info_id] { action = [&ctx, info_id] { return run_node_info(ctx, *info_id); }; });

  auto health_id = std::make_shared<uint64_t>(0);
  auto* health = node->add_subcommand("health", "Check that a node is up and sees a leader");
  health->add_option("--node", *health_id, "Which node (default: the leader, or any reachable node)");
  health->footer(
      "Status is ok, no-leader (the node is up but sees no leader) or uninitialized (the node\n"
      "is in no cluster yet). Exit 0 for ok, 1 otherwise, 3 if the node cannot be reached.\n"
      "Example:\n  aspen-cli node health --node 3 --timeout-ms 2000");
  health->callback([&ctx, &action, health_id] { action = [&ctx, health_id] { return run_node_health(ctx, *health_id); }; });

  struct LogsArgs {
    uint64_t node_id = 0;
    std::string level;
    uint32_t lines = limits::kDefaultGetLogsLines;
  };
  auto logs_args = std::make_shared<LogsArgs>();
  auto* logs = node->add_subcommand("logs", "Print a node's recent log lines (oldest first)");
  logs->add_option("--node", logs_args->node_id, "Which node (default: the leader, or any reachable node)");
  logs->add_option("--level", logs_args->level, "Only lines at this level or above")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  logs->add_option("--lines", logs_args->lines,
                   fmt::format("How many of the newest lines (default {}, at most {})", limits::kDefaultGetLogsLines,
                               limits::kMaxRecentLogLines));
  logs->footer(fmt::format(
      "A node keeps its last {} lines (at most {} KiB) in memory, at the level it logs at\n"
      "(aspen-node --log-level); times are UTC. Needs an admin token: lines may name keys and peers.\n"
      "Example:\n  aspen-cli node logs --node 2 --level warn --lines 50",
      limits::kMaxRecentLogLines, limits::kMaxRecentLogBytes / 1024));
  logs->callback([&ctx, &action, logs_args] {
    action = [&ctx, logs_args] { return run_node_logs(ctx, logs_args->node_id, logs_args->level, logs_args->lines); };
  });

  auto metrics_id = std::make_shared<uint64_t>(0);
  auto* metrics = app.add_subcommand("metrics", "Print a node's metrics in Prometheus text format");
  metrics->add_option("--node", *metrics_id, "Which node (default: the leader, or any reachable node)");
  metrics->footer("Example:\n  aspen-cli metrics --node 1 | grep raft_");
  metrics->callback([&ctx, &action, metrics_id] { action = [&ctx, metrics_id] { return run_metrics(ctx, *metrics_id); }; });
}

}  // namespace aspen::cli
