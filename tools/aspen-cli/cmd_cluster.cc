// aspen-cli cluster ...: creating a cluster, changing its membership, and looking at it.
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <optional>

#include "auth/token_text.h"
#include "core/encoding.h"
#include "cli.h"
#include "completion.h"
#include "credentials.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::cli {

namespace {

namespace cpb = clientpb;

nlohmann::json membership_json(const cpb::MembershipResponse& m) {
  return {{"voters", std::vector<uint64_t>(m.voters().begin(), m.voters().end())},
          {"learners", std::vector<uint64_t>(m.learners().begin(), m.learners().end())},
          {"revision", m.revision()}};
}

std::string join_ids(const google::protobuf::RepeatedField<uint64_t>& ids) {
  std::string out;
  for (uint64_t id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out.empty() ? "(none)" : out;
}

int print_membership(const Context& ctx, const Result<cpb::MembershipResponse>& r, std::string_view what) {
  if (!r) return fail(ctx, r.error());
  if (ctx.is_json) {
    print_json_ok(membership_json(*r));
  } else {
    std::cout << what << " (revision " << r->revision() << ")\n"
              << "voters:   " << join_ids(r->voters()) << "\n"
              << "learners: " << join_ids(r->learners()) << "\n";
  }
  return kExitOk;
}

int run_init(const Context& ctx, const std::string& root_key_flag) {
  return with_client_and_credentials(ctx, [&](client::Client& c, Credentials& creds) {
    if (!creds.identity) {
      return usage_error(ctx, "init makes an admin token for this client's key, but there is no place to keep the "
                              "key: pass --identity FILE (or set ASPEN_IDENTITY or HOME)");
    }
    // Where the secrets go is settled before the cluster exists: a root key with nowhere to
    // be kept would be lost with the cluster it made.
    const std::string dir = config_dir();
    if (dir.empty() && (root_key_flag.empty() || creds.token_path.empty())) {
      return usage_error(ctx, "no place for the root key and the admin token: pass --root-key-file and --token-file "
                              "(or set HOME)");
    }
    const std::string token_path = !creds.token_path.empty() ? creds.token_path : dir + "/token";
    auto r = c.init_cluster();
    if (!r) return fail(ctx, r.error());
    const std::string& id = r->response.cluster_id();
    const std::string root_path = !root_key_flag.empty() ? root_key_flag : fmt::format("{}/root-{}.key", dir, id);
    // The root secret: written before anything else is said, and never over an existing key.
    if (auto s = ensure_parent_dir(root_path); !s) return fail(ctx, s.error());
    if (auto s = transport::write_identity_file(root_path, transport::NodeIdentity::from_seed(r->root_seed)); !s) {
      return fail(ctx, Error(s.error().code(), fmt::format("the cluster was initialized, but its root key could not "
                                                           "be saved ({}); it is lost, start over with fresh nodes",
                                                           s.error().message())));
    }
    if (auto s = write_private_file(token_path, auth::encode_token_text(r->admin_token) + "\n"); !s) {
      return fail(ctx, s.error());
    }
    if (ctx.is_json) {
      print_json_ok({{"cluster_id", id},
                     {"ticket", r->response.ticket()},
                     {"root_key_file", root_path},
                     {"token_file", token_path},
                     {"identity", c.public_key().to_string()}});
    } else {
      std::cout << "cluster " << id << " initialized\n"
                << "ticket: " << r->response.ticket() << "\n"
                << "root key: " << root_path << "  (it can make any token: keep it offline, mode 0600)\n"
                << "admin token: " << token_path << "  (for this client's key " << c.public_key().to_string()
                << ")\n\n"
                << "export ASPEN_TICKET=" << r->response.ticket() << "\n"
                << "export ASPEN_TOKEN_FILE=" << token_path << "\n";
    }
    return kExitOk;
  });
}

struct AddLearnerArgs {
  uint64_t node_id = 0;
  std::string public_key;
  std::string addr;
};

int run_add_learner(const Context& ctx, const AddLearnerArgs& a) {
  if (a.node_id == 0) return usage_error(ctx, "node id must be positive");
  cpb::NodeAddress node;
  node.set_node_id(a.node_id);
  // Without a key (and address), the leader takes what discovery heard the node announce.
  if (!a.public_key.empty()) {
    if (auto k = transport::PublicKey::parse(a.public_key); !k) {
      return usage_error(ctx, "bad public key: " + k.error().message());
    }
    node.set_public_key(a.public_key);
  }
  if (!a.addr.empty()) {
    // A host name is resolved here: members store and exchange IP addresses.
    auto addr = transport::SocketAddr::resolve(a.addr);
    if (!addr) return usage_error(ctx, "bad address: " + addr.error().message());
    node.add_addrs(addr->to_string());
  }
  return with_client(ctx, [&](client::Client& c) {
    return print_membership(ctx, c.add_learner(node), fmt::format("node {} added as a learner", a.node_id));
  });
}

struct ChangeMembershipArgs {
  std::vector<uint64_t> voters;
  bool should_retain = false;
};

int run_change_membership(const Context& ctx, const ChangeMembershipArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    return print_membership(ctx, c.change_membership(a.voters, a.should_retain), "membership changed");
  });
}

int run_remove(const Context& ctx, uint64_t node_id) {
  return with_client(ctx, [&](client::Client& c) {
    return print_membership(ctx, c.remove_node(node_id), fmt::format("node {} removed", node_id));
  });
}

std::string role_of(const cpb::GetRaftMetricsResponse& m, uint64_t id) {
  const auto contains = [](const auto& ids, uint64_t x) { return std::find(ids.begin(), ids.end(), x) != ids.end(); };
  std::string role = contains(m.learners(), id) ? "learner" : "voter";
  if (id == m.leader_id()) role = "leader";
  if (contains(m.voters_outgoing(), id) && !contains(m.voters(), id)) role += " (leaving)";
  return role;
}


nlohmann::json alarm_json(const kvpb::StorageAlarm& a) {
  return {{"member_id", a.member_id()},         {"raised_at_ms", a.raised_at_ms()},
          {"used_bytes", a.used_bytes()},       {"quota_bytes", a.quota_bytes()},
          {"disk_free_bytes", a.disk_free_bytes()}, {"min_free_bytes", a.min_free_bytes()}};
}

std::string alarm_text(const kvpb::StorageAlarm& a) {
  const bool is_quota = a.quota_bytes() > 0 && a.used_bytes() > a.quota_bytes();
  return fmt::format("member {}: NOSPACE  data {} (quota {}), disk free {} (reserve {}){}", a.member_id(),
                     format_mib(a.used_bytes()), format_mib(a.quota_bytes()), format_mib(a.disk_free_bytes()), format_mib(a.min_free_bytes()),
                     is_quota ? "  past its quota" : "  short of disk");
}

// How the reporting node sees a member: reachable | suspect | unreachable | unknown, "self"
// for itself.
std::string reachability_of(const cpb::GetRaftMetricsResponse& m, const cpb::PeerHealth* h, uint64_t id) {
  if (id == m.node_id()) return "self";
  return h != nullptr && !h->reachability().empty() ? h->reachability() : "unknown";
}

// The member's clock minus the reporting node's, in ms (0 for the reporter itself).
std::optional<double> clock_offset_ms(const cpb::GetRaftMetricsResponse& m, const cpb::PeerHealth* h, uint64_t id) {
  if (id == m.node_id()) return 0.0;
  if (h == nullptr || !h->has_clock_offset()) return std::nullopt;
  return static_cast<double>(h->clock_offset_us()) / 1000.0;
}

int run_status(const Context& ctx) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.raft_metrics();
    if (!r) return fail(ctx, r.error());
    const auto& m = *r;
    // Raised storage alarms, as the same node knows them (an older node may not answer).
    std::vector<kvpb::StorageAlarm> alarms;
    if (auto a = c.alarm_list(client::Target{m.node_id()})) alarms = std::move(*a);
    // Every member: voters, learners, outgoing voters, and any address the node knows.
    std::map<uint64_t, const cpb::NodeAddress*> addresses;
    for (const auto& a : m.members()) addresses[a.node_id()] = &a;
    std::map<uint64_t, const cpb::PeerReplication*> progress;
    for (const auto& p : m.peers()) progress[p.node_id()] = &p;
    std::map<uint64_t, const cpb::PeerHealth*> health;
    for (const auto& h : m.peer_health()) health[h.node_id()] = &h;
    const auto health_of = [&](uint64_t id) -> const cpb::PeerHealth* {
      auto it = health.find(id);
      return it == health.end() ? nullptr : it->second;
    };
    std::vector<uint64_t> ids(m.voters().begin(), m.voters().end());
    for (uint64_t id : m.learners()) ids.push_back(id);
    for (uint64_t id : m.voters_outgoing()) ids.push_back(id);
    for (const auto& [id, a] : addresses) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    const bool is_from_leader = m.leader_id() != 0 && m.leader_id() == m.node_id();

    if (ctx.is_json) {
      nlohmann::json members = nlohmann::json::array();
      for (uint64_t id : ids) {
        nlohmann::json j = {{"node_id", id}, {"role", role_of(m, id)}};
        if (auto it = addresses.find(id); it != addresses.end()) {
          j["public_key"] = it->second->public_key();
          j["addrs"] = std::vector<std::string>(it->second->addrs().begin(), it->second->addrs().end());
        }
        if (auto it = progress.find(id); it != progress.end()) {
          j["match_index"] = it->second->match_index();
          j["lag_entries"] = it->second->lag_entries();
          j["replication_state"] = it->second->state();
          j["is_active"] = it->second->is_active();
        } else if (id == m.leader_id() && is_from_leader) {
          j["match_index"] = m.last_log_index();
          j["lag_entries"] = 0;
        }
        const cpb::PeerHealth* h = health_of(id);
        j["reachability"] = reachability_of(m, h, id);
        if (h != nullptr && h->has_heard()) j["last_heard_ms_ago"] = h->last_heard_ms_ago();
        if (auto offset = clock_offset_ms(m, h, id)) j["clock_offset_ms"] = *offset;
        if (h != nullptr && h->has_clock_offset() && h->clock_rtt_us() > 0) {
          j["clock_rtt_ms"] = static_cast<double>(h->clock_rtt_us()) / 1000.0;
        }
        members.push_back(std::move(j));
      }
      print_json_ok({{"leader_id", m.leader_id()},
                     {"term", m.term()},
                     {"reported_by", m.node_id()},
                     {"commit_index", m.commit_index()},
                     {"applied_index", m.applied_index()},
                     {"last_log_index", m.last_log_index()},
                     {"is_joint", m.voters_outgoing_size() > 0},
                     // clock_offset_ms of a member: its clock minus this node's.
                     {"clock_reference", m.node_id()},
                     {"members", std::move(members)},
                     {"alarms", [&] {
                        nlohmann::json out = nlohmann::json::array();
                        for (const auto& a : alarms) out.push_back(alarm_json(a));
                        return out;
                      }()}});
      return kExitOk;
    }
    std::cout << "leader: " << (m.leader_id() == 0 ? std::string("none") : fmt::format("node {}", m.leader_id()))
              << "   term: " << m.term() << "   commit: " << m.commit_index() << "   applied: " << m.applied_index()
              << "\n";
    if (!is_from_leader) {
      std::cout << "(reported by node " << m.node_id()
                << ", which is not the leader: replication progress is unknown)\n";
    }
    if (m.voters_outgoing_size() > 0) std::cout << "membership change in progress (joint consensus)\n";
    for (const auto& a : alarms) {
      std::cout << "STORAGE ALARM " << alarm_text(a) << " (writes that add data are refused; see `cluster alarm`)\n";
    }
    std::cout << fmt::format("{:>8}  {:<18} {:>12} {:>10}  {:<20} {:<12} {:>11}  {}\n", "NODE", "ROLE", "MATCH", "LAG",
                             "STATE", "REACH", "CLOCK", "ADDRESS");
    for (uint64_t id : ids) {
      std::string match = "-", lag = "-", state = "-";
      if (auto it = progress.find(id); it != progress.end()) {
        match = std::to_string(it->second->match_index());
        lag = std::to_string(it->second->lag_entries());
        state = it->second->state() + (it->second->is_active() ? "" : " (inactive)");
      } else if (id == m.leader_id() && is_from_leader) {
        match = std::to_string(m.last_log_index());
        lag = "0";
        state = "self";
      }
      std::string addr = "-";
      if (auto it = addresses.find(id); it != addresses.end() && it->second->addrs_size() > 0) {
        addr = it->second->addrs(0);
      }
      const cpb::PeerHealth* h = health_of(id);
      const auto offset = clock_offset_ms(m, h, id);
      const std::string clock = id == m.node_id() ? "(ref)" : offset ? fmt::format("{:+.1f} ms", *offset) : "-";
      std::cout << fmt::format("{:>8}  {:<18} {:>12} {:>10}  {:<20} {:<12} {:>11}  {}\n", id, role_of(m, id), match, lag,
                               state, reachability_of(m, h, id), clock, addr);
    }
    if (m.has_clock_offset_from_leader() && !is_from_leader) {
      std::cout << fmt::format("(node {}'s clock is {:+.1f} ms from the leader's)\n", m.node_id(),
                               static_cast<double>(m.clock_offset_from_leader_us()) / 1000.0);
    }
    return kExitOk;
  });
}

// "12.3 s ago" from two wall-clock readings of the same node.
std::string ago(uint64_t now_ms, uint64_t then_ms) {
  if (then_ms == 0) return "-";
  if (then_ms >= now_ms) return "now";
  return fmt::format("{:.1f} s ago", static_cast<double>(now_ms - then_ms) / 1000.0);
}

int run_peers(const Context& ctx, uint64_t node_id) {
  return with_client(ctx, [&](client::Client& c) {
    cpb::Request req;
    req.mutable_get_peers();
    auto r = c.call(req, client::Target{node_id});
    if (!r) return fail(ctx, r.error());
    if (!r->has_get_peers()) return fail(ctx, Error(ErrorCode::kInternal, "the node answered something else"));
    const auto& p = r->get_peers();
    if (ctx.is_json) {
      nlohmann::json peers = nlohmann::json::array();
      for (const auto& peer : p.peers()) {
        nlohmann::json sources = nlohmann::json::array();
        for (const auto& s : peer.sources()) {
          nlohmann::json j = {{"source", s.source()},
                              {"addrs", std::vector<std::string>(s.addrs().begin(), s.addrs().end())}};
          if (s.last_seen_ms() != 0) {
            j["first_seen_ms"] = s.first_seen_ms();
            j["last_seen_ms"] = s.last_seen_ms();
            j["announced_ms"] = s.announced_ms();
            j["via"] = s.via();
          }
          sources.push_back(std::move(j));
        }
        peers.push_back({{"node_id", peer.node_id()},
                         {"public_key", peer.public_key()},
                         {"is_member", peer.is_member()},
                         {"sources", std::move(sources)}});
      }
      print_json_ok({{"now_ms", p.now_ms()},
                     {"is_gossip_enabled", p.is_gossip_enabled()},
                     {"gossip_active_view", p.gossip_active_view()},
                     {"gossip_passive_view", p.gossip_passive_view()},
                     {"peers", std::move(peers)}});
      return kExitOk;
    }
    if (p.is_gossip_enabled()) {
      std::cout << "gossip on (active view " << p.gossip_active_view() << ", passive view " << p.gossip_passive_view()
                << ")\n";
    } else {
      std::cout << "gossip off\n";
    }
    std::cout << fmt::format("{:>8}  {:<10} {:<8}  {:<22} {:<12} {}\n", "NODE", "KEY", "MEMBER", "ADDRESS", "SOURCE",
                             "SEEN");
    for (const auto& peer : p.peers()) {
      for (const auto& s : peer.sources()) {
        std::string seen = ago(p.now_ms(), s.last_seen_ms());
        if (!s.via().empty()) seen += " via " + s.via();
        std::cout << fmt::format("{:>8}  {:<10} {:<8}  {:<22} {:<12} {}\n", peer.node_id(),
                                 peer.public_key().substr(0, 10), peer.is_member() ? "yes" : "no",
                                 s.addrs_size() > 0 ? s.addrs(0) : std::string("-"), s.source(), seen);
      }
    }
    return kExitOk;
  });
}

int run_ticket(const Context& ctx) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.cluster_ticket();
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"ticket", *r}});
    } else {
      std::cout << *r << "\n";
    }
    return kExitOk;
  });
}

int run_snapshot(const Context& ctx, uint64_t node_id) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.trigger_snapshot(client::Target{node_id});
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"index", r->index()}, {"term", r->term()}});
    } else {
      std::cout << "snapshot taken at index " << r->index() << " (term " << r->term() << ")\n";
    }
    return kExitOk;
  });
}

int run_alarm_list(const Context& ctx) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.alarm_list();
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      nlohmann::json alarms = nlohmann::json::array();
      for (const auto& a : *r) alarms.push_back(alarm_json(a));
      print_json_ok({{"alarms", std::move(alarms)}});
    } else if (r->empty()) {
      std::cout << "no alarm is raised\n";
    } else {
      for (const auto& a : *r) std::cout << alarm_text(a) << "\n";
    }
    return kExitOk;
  });
}

int run_alarm_disarm(const Context& ctx, uint64_t member_id) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.alarm_disarm(member_id);
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      nlohmann::json alarms = nlohmann::json::array();
      for (const auto& a : *r) alarms.push_back(alarm_json(a));
      print_json_ok({{"disarmed", std::move(alarms)}});
    } else if (r->empty()) {
      std::cout << "no alarm was raised\n";
    } else {
      for (const auto& a : *r) std::cout << "disarmed " << alarm_text(a) << "\n";
      std::cout << "a member still past its limit raises its alarm again within a second: free space first\n";
    }
    return kExitOk;
  });
}

}  // namespace

void add_cluster_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* cluster = app.add_subcommand("cluster", "Create a cluster, change its members, and inspect it");
  cluster->require_subcommand(1);

  auto* init = cluster->add_subcommand("init", "Make the ticket's first node the first member of a new cluster");
  init->footer(
      "Run once, against a freshly started node that belongs to no cluster yet (its startup\n"
      "ticket). Prints the new cluster's id and ticket; use that ticket from then on.\n"
      "It also creates the cluster's root key (written to --root-key-file, else\n"
      "~/.config/aspen/root-<cluster id>.key: keep it offline, it can make any token) and an\n"
      "admin token for this client's key (written to --token-file / ASPEN_TOKEN_FILE, else\n"
      "~/.config/aspen/token), which every later command presents.\n"
      "Example:\n  aspen-cli --ticket <ticket printed by aspen-node> cluster init");
  auto root_key_file = std::make_shared<std::string>();
  init->add_option("--root-key-file", *root_key_file, "Where to write the new root key (must not exist)")
      ->type_name(kPathTypeName);
  init->callback([&ctx, &action, root_key_file] {
    action = [&ctx, root_key_file] { return run_init(ctx, *root_key_file); };
  });

  auto add_args = std::make_shared<AddLearnerArgs>();
  auto* add = cluster->add_subcommand("add-learner", "Add a node as a non-voting learner; it copies the data");
  add->add_option("node-id", add_args->node_id, "The new node's id (a positive integer, unique in the cluster)")
      ->required();
  add->add_option("public-key", add_args->public_key,
                  "The new node's public key (52 base32 characters); leave out (with the address) when "
                  "discovery knows the node");
  add->add_option("address", add_args->addr,
                  "Where the node listens, as host:port (an IP address or a name); leave out to take the "
                  "address the node announced");
  add->footer(
      "The node id, public key and address are printed by the new node's aspen-node at start.\n"
      "With gossip discovery (on by default) the leader already knows a node that shares the\n"
      "cookie: the id alone is enough (see 'cluster peers').\n"
      "A learner receives every write but does not vote; once it has caught up (see\n"
      "'cluster status', LAG), promote it with 'cluster change-membership'.\n"
      "Examples:\n  aspen-cli cluster add-learner 4 <52-char-key> 10.0.0.4:7000\n  aspen-cli cluster add-learner 4");
  add->callback([&ctx, &action, add_args] { action = [&ctx, add_args] { return run_add_learner(ctx, *add_args); }; });

  auto cm_args = std::make_shared<ChangeMembershipArgs>();
  auto* cm = cluster->add_subcommand("change-membership", "Set which nodes vote");
  cm->add_option("voters", cm_args->voters, "Node ids of every voter after the change")->required();
  cm->add_flag("--retain", cm_args->should_retain, "Keep removed voters as learners instead of removing them");
  cm->footer(
      "Learners named are promoted; voters not named are removed (or kept as learners with\n"
      "--retain). Several changes at once go through joint consensus, so the cluster stays\n"
      "available if a majority of both the old and the new voters is up.\n"
      "Example (promote learner 4, keep 1-3):\n  aspen-cli cluster change-membership 1 2 3 4");
  cm->callback([&ctx, &action, cm_args] { action = [&ctx, cm_args] { return run_change_membership(ctx, *cm_args); }; });

  auto remove_id = std::make_shared<uint64_t>(0);
  auto* remove = cluster->add_subcommand("remove", "Remove a node (voter or learner) from the cluster");
  remove->add_option("node-id", *remove_id, "The node to remove")->required();
  remove->footer("Example:\n  aspen-cli cluster remove 4");
  remove->callback([&ctx, &action, remove_id] { action = [&ctx, remove_id] { return run_remove(ctx, *remove_id); }; });

  auto* status = cluster->add_subcommand("status", "Show the leader, the term and each member's replication");
  status->footer(
      "Columns: MATCH = the highest log index the leader knows the member holds; LAG = how many\n"
      "entries it is behind the leader's log; STATE = probe (finding where logs agree),\n"
      "replicate (streaming), snapshot (receiving a snapshot); 'inactive' = not heard from\n"
      "during the leader's last quorum check.\n"
      "REACH = how the reporting node (the leader, when there is one) sees the member: reachable\n"
      "(a Raft message within two heartbeats), suspect (silent longer, up to the election\n"
      "timeout), unreachable (silent longer, or its address refused our packets), unknown (a\n"
      "follower hears only its leader). CLOCK = the member's clock minus the reporting node's\n"
      "(ref), measured from heartbeat round trips; past --clock-offset-warn-ms the nodes log a\n"
      "warning. See docs/operations.md, 'Clocks'.\n"
      "Example:\n  aspen-cli cluster status\n  aspen-cli cluster status --json");
  status->callback([&ctx, &action] { action = [&ctx] { return run_status(ctx); }; });

  auto* ticket = cluster->add_subcommand("ticket", "Print a current ticket for this cluster (all members)");
  ticket->footer("Share it with clients and with nodes that should join.\nExample:\n  export ASPEN_TICKET=$(aspen-cli cluster ticket)");
  ticket->callback([&ctx, &action] { action = [&ctx] { return run_ticket(ctx); }; });

  auto* alarm = cluster->add_subcommand("alarm", "List or disarm storage alarms (a member out of space)");
  alarm->require_subcommand(1);
  alarm->footer(
      "A member whose data grows past --storage-quota-bytes, or whose disk has less free space than\n"
      "--storage-min-free-bytes, raises the cluster's storage alarm. While it is raised, writes that\n"
      "add data fail with StorageFull; reads, deletes and lease revocation keep working. Free space\n"
      "(delete keys, revoke leases, or give the member more disk), then disarm.\nExamples:\n"
      "  aspen-cli cluster alarm list\n  aspen-cli cluster alarm disarm            # every member's\n"
      "  aspen-cli cluster alarm disarm --member 2");
  auto* alarm_list = alarm->add_subcommand("list", "Show the raised alarms: which member, its data size and free disk");
  alarm_list->callback([&ctx, &action] { action = [&ctx] { return run_alarm_list(ctx); }; });
  auto disarm_member = std::make_shared<uint64_t>(0);
  auto* disarm = alarm->add_subcommand("disarm", "Clear the alarms once space was freed, so writes resume");
  disarm->add_option("--member", *disarm_member, "Clear only this member's alarm (default: every member's)");
  disarm->callback([&ctx, &action, disarm_member] {
    action = [&ctx, disarm_member] { return run_alarm_disarm(ctx, *disarm_member); };
  });

  auto peers_node = std::make_shared<uint64_t>(0);
  auto* peers = cluster->add_subcommand("peers", "Show the nodes this node knows of, and from which source");
  peers->add_option("--node", *peers_node, "Ask this node instead of any");
  peers->footer(
      "One line per node and source: record (the cluster's member records), config (--peers or\n"
      "the join ticket), greeting (a peer's Raft greeting), gossip (a signed announcement; SEEN is\n"
      "when it last arrived, and 'via' the peer that passed it on), mdns (a node's announcement\n"
      "on the LAN, multicast DNS), dns (an SRV/TXT record of the node's --enable-dns-discovery\n"
      "zone; SEEN is the last lookup that listed it). Discovery grants no membership: add a node\n"
      "with 'cluster add-learner ID'.\n"
      "Example:\n  aspen-cli cluster peers --json");
  peers->callback([&ctx, &action, peers_node] {
    action = [&ctx, peers_node] { return run_peers(ctx, *peers_node); };
  });
  add_cluster_discover_command(*cluster, ctx, action);

  auto snapshot_node = std::make_shared<uint64_t>(0);
  auto* snapshot = cluster->add_subcommand("snapshot", "Take a snapshot now and compact the log behind it");
  snapshot->add_option("--node", *snapshot_node, "Snapshot this node instead of the leader");
  snapshot->footer(
      "Nodes snapshot on their own once the log grows; this forces one (before a backup, or to\n"
      "free log space at once).\nExample:\n  aspen-cli cluster snapshot --node 2");
  snapshot->callback([&ctx, &action, snapshot_node] {
    action = [&ctx, snapshot_node] { return run_snapshot(ctx, *snapshot_node); };
  });
}

}  // namespace aspen::cli
