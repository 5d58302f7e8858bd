// AdminService (admin_service.h): cluster administration and introspection on the client
// protocol. Membership changes need the leader (followers relay them).
#include <sodium.h>

#include <cstring>
#include <set>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/log_ring.h"
#include "kv/commands.h"
#include "node/admin_service.h"
#include "node/leader_duties.h"
#include "node/metrics.h"
#include "rpc/error_info.h"

namespace aspen::node::internal {

namespace {

constexpr const char* kVersion = "0.1.0";

std::string random_cluster_id() {
  unsigned char raw[8];
  randombytes_buf(raw, sizeof(raw));
  std::string out;
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace

AdminService::AdminService(NodeEnv& env, CorePort& port, ClientService& clients, rpc::HandlerRegistry& handlers)
    : env_(env), port_(port), clients_(clients), handlers_(handlers) {}

void AdminService::register_handlers() {
  using R = cpb::Request;
  auto bind = [this](void (AdminService::*fn)(const cpb::Request&, Reply)) {
    return [this, fn](const cpb::Request& req, Reply reply) { (this->*fn)(req, std::move(reply)); };
  };
  handlers_.add(R::kGetHealth, "get_health", bind(&AdminService::handle_health));
  handlers_.add(R::kGetMetrics, "get_metrics", bind(&AdminService::handle_metrics));
  handlers_.add(R::kGetRaftMetrics, "get_raft_metrics", bind(&AdminService::handle_raft_metrics));
  handlers_.add(R::kGetLeader, "get_leader", bind(&AdminService::handle_leader));
  handlers_.add(R::kGetNodeInfo, "get_node_info", bind(&AdminService::handle_node_info));
  handlers_.add(R::kGetClusterTicket, "get_cluster_ticket", bind(&AdminService::handle_ticket));
  handlers_.add(R::kGetLogs, "get_logs", bind(&AdminService::handle_logs));
  handlers_.add(R::kInitCluster, "init_cluster", bind(&AdminService::handle_init));
  handlers_.add(R::kAddLearner, "add_learner", bind(&AdminService::handle_add_learner));
  handlers_.add(R::kChangeMembership, "change_membership", bind(&AdminService::handle_change_membership));
  handlers_.add(R::kRemoveNode, "remove_node", bind(&AdminService::handle_remove_node));
  handlers_.add(R::kTriggerSnapshot, "trigger_snapshot", bind(&AdminService::handle_snapshot));
  // Gossip discovery: made here, before the loop serves anything (phase 3 of start-up).
  gossip_ = std::make_shared<GossipService>(env_);
  gossip_->register_handlers(handlers_);
  if (auto s = gossip_->start(); !s) {
    ASPEN_LOG_ERROR("node {}: gossip discovery did not start: {}", env_.config.node_id, s.error().to_string());
  }
  dns_ = std::make_shared<DnsDiscoveryService>(env_);
  mdns_ = std::make_shared<MdnsService>(env_);
}

// --- introspection --------------------------------------------------------------------

void AdminService::handle_health(const cpb::Request&, Reply reply) {
  cpb::Response resp;
  auto* h = resp.mutable_get_health();
  h->set_node_id(env_.config.node_id);
  h->set_is_initialized(env_.peers.has_membership());
  h->set_leader_id(port_.core()->leader());
  h->set_uptime_ms(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - env_.started_at).count()));
  h->set_status(!env_.peers.has_membership() ? "uninitialized" : port_.core()->leader() == kNoNode ? "no-leader" : "ok");
  reply(std::move(resp));
}

void AdminService::handle_metrics(const cpb::Request&, Reply reply) {
  cpb::Response resp;
  resp.mutable_get_metrics()->set_prometheus_text(prometheus_text(port_.metrics_view()) + gossip_->prometheus_samples() +
                                                    dns_->prometheus_samples() + mdns_->prometheus_samples());
  reply(std::move(resp));
}

void AdminService::handle_raft_metrics(const cpb::Request&, Reply reply) {
  const auto& raft = port_.core()->raft();
  auto st = raft.status();
  cpb::Response resp;
  auto* m = resp.mutable_get_raft_metrics();
  m->set_node_id(env_.config.node_id);
  m->set_term(st.term);
  m->set_leader_id(st.leader);
  m->set_role(raft::role_name(st.role));
  m->set_commit_index(st.commit);
  m->set_applied_index(env_.store->applied_index());
  m->set_first_log_index(env_.store->first_index());
  m->set_last_log_index(raft.log().last_index());
  pb::ConfState cs = raft.tracker().config.to_conf_state();
  for (auto id : cs.voters()) m->add_voters(id);
  for (auto id : cs.learners()) m->add_learners(id);
  for (auto id : cs.voters_outgoing()) m->add_voters_outgoing(id);
  if (raft.is_leader()) {
    for (const auto& [id, pr] : raft.tracker().progress) {
      auto* p = m->add_peers();
      p->set_node_id(id);
      p->set_match_index(pr.match);
      p->set_next_index(pr.next);
      p->set_lag_entries(raft.log().last_index() > pr.match ? raft.log().last_index() - pr.match : 0);
      p->set_state(raft::progress_state_name(pr.state));
      p->set_is_learner(pr.is_learner);
      p->set_is_active(id == env_.config.node_id || pr.recent_active);
    }
  }
  for (const auto& p : env_.peers.reachable_members()) *m->add_members() = env_.address_of(p);
  // Liveness and clocks as this node sees them (the leader: every member).
  const uint64_t now_ms = NodeEnv::steady_ms();
  const Knobs& k = env_.config.knobs;
  for (NodeId id : monitored_peers(cs, env_.config.node_id)) {
    const auto v = env_.peer_monitor.peer_view(id, now_ms, k.heartbeat_ms, k.election_timeout_ms);
    auto* h = m->add_peer_health();
    h->set_node_id(id);
    h->set_reachability(reachability_name(v.reachability));
    h->set_has_heard(v.last_heard_ago_ms.has_value());
    h->set_last_heard_ms_ago(v.last_heard_ago_ms.value_or(0));
    h->set_has_clock_offset(v.clock.has_value());
    if (v.clock) {
      h->set_clock_offset_us(v.clock->offset_us);
      h->set_clock_rtt_us(static_cast<uint64_t>(v.clock->rtt_us));
    }
  }
  if (auto own = env_.peer_monitor.own_offset_from_leader(now_ms)) {
    m->set_has_clock_offset_from_leader(true);
    m->set_clock_offset_from_leader_us(*own);
  }
  reply(std::move(resp));
}

void AdminService::handle_leader(const cpb::Request&, Reply reply) {
  cpb::Response resp;
  auto* l = resp.mutable_get_leader();
  l->set_term(port_.core()->raft().term());
  NodeId leader = port_.core()->leader();
  if (leader == env_.config.node_id) {
    *l->mutable_leader() = env_.self_address();
  } else if (auto p = env_.peers.lookup(leader)) {
    *l->mutable_leader() = env_.address_of(*p);
  } else {
    l->mutable_leader()->set_node_id(leader);
  }
  reply(std::move(resp));
}

void AdminService::handle_node_info(const cpb::Request&, Reply reply) {
  cpb::Response resp;
  auto* n = resp.mutable_get_node_info();
  *n->mutable_node() = env_.self_address();
  n->set_cluster_id(env_.cluster_id);
  n->set_version(kVersion);
  n->set_storage_backend(env_.config.storage_backend == StorageBackend::kLmdb ? "lmdb" : "inmemory");
  reply(std::move(resp));
}

void AdminService::handle_logs(const cpb::Request& req, Reply reply) {
  const auto& r = req.get_logs();
  if (r.max_lines() > limits::kMaxRecentLogLines) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("max_lines {} is over the limit of {} recent log lines a node keeps "
                                         "(kMaxRecentLogLines)",
                                         r.max_lines(), limits::kMaxRecentLogLines)));
  }
  auto min_level = spdlog::level::trace;
  if (!r.min_level().empty()) {
    min_level = spdlog::level::from_str(r.min_level());
    if (min_level == spdlog::level::off) {
      return reply(error_reply(ErrorCode::kInvalidArgument,
                               fmt::format("unknown log level '{}' (trace, debug, info, warn, error, critical)",
                                           r.min_level().substr(0, 32))));
    }
  }
  auto ring = log::recent_log_ring();
  if (!ring) {
    return reply(error_reply(ErrorCode::kUnavailable, "this node process keeps no recent log lines"));
  }
  const size_t max_lines = r.max_lines() == 0 ? limits::kDefaultGetLogsLines : r.max_lines();
  cpb::Response resp;
  auto* out = resp.mutable_get_logs();
  out->set_node_id(env_.config.node_id);
  for (auto& line : ring->recent(max_lines, min_level)) {
    auto* l = out->add_lines();
    l->set_time_ms(line.time_ms);
    const auto name = spdlog::level::to_string_view(line.level);
    l->set_level(std::string(name.data(), name.size()));
    l->set_message(std::move(line.message));
  }
  reply(std::move(resp));
}

void AdminService::handle_ticket(const cpb::Request&, Reply reply) {
  if (env_.cluster_id.empty()) {
    return reply(error_reply(ErrorCode::kUnavailable,
                             "this node is not part of an initialized cluster yet (run `aspen-cli cluster init`)"));
  }
  cpb::Response resp;
  resp.mutable_get_cluster_ticket()->set_ticket(env_.build_ticket());
  reply(std::move(resp));
}

// --- membership ---------------------------------------------------------------------------

void AdminService::handle_init(const cpb::Request& req, Reply reply) {
  if (env_.peers.has_membership() || env_.store->last_index() > 0) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             env_.cluster_id.empty() ? "this node already belongs to a cluster"
                                                 : fmt::format("this node already belongs to cluster {}", env_.cluster_id)));
  }
  const std::string& root = req.init_cluster().root_public_key();
  if (root.size() != auth::kKeySizeBytes) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("init needs the cluster's root public key ({} bytes, got {}); aspen-cli "
                                         "cluster init creates one",
                                         auth::kKeySizeBytes, root.size())));
  }
  auth::KeyBytes key{};
  std::memcpy(key.data(), root.data(), key.size());
  env_.init_root_key = key;
  pb::ConfState cs;
  cs.add_voters(env_.config.node_id);
  if (auto s = port_.bootstrap(cs); !s) return reply(error_reply(s.error()));
  ASPEN_LOG_INFO("node {}: initialized a new cluster with itself as the only voter", env_.config.node_id);
  port_.core()->raft().campaign();
  port_.schedule_pump();
  // The leader duty (on_tick) writes the cluster id and this node's record; answer once
  // both are applied.
  uint64_t deadline = NodeEnv::steady_ms() + env_.config.knobs.init_timeout_ms;
  answer_waiters_.push_back([this, reply, deadline]() -> bool {
    if (!env_.cluster_id.empty() && env_.auth_root_key && env_.peers.lookup(env_.config.node_id)) {
      cpb::Response resp;
      resp.mutable_init_cluster()->set_cluster_id(env_.cluster_id);
      resp.mutable_init_cluster()->set_ticket(env_.build_ticket());
      reply(std::move(resp));
      return true;
    }
    if (NodeEnv::steady_ms() > deadline) {
      reply(error_reply(ErrorCode::kTimeout, "the new cluster did not elect this node in time; check its log"));
      return true;
    }
    return false;
  });
}

void AdminService::on_tick() {
  // mDNS begins at the first tick as well, once the configured peers are in the registry: a
  // node they name under another key is refused, not taken first.
  if (!has_begun_mdns_) {
    has_begun_mdns_ = true;
    mdns_->start();
  }
  // The first tick comes after the configured peers went into the registry: they are the
  // first gossip candidates.
  if (!has_begun_gossip_) {
    has_begun_gossip_ = true;
    gossip_->begin_rounds();
    // After the configured peers too: a zone naming a configured node under another key is
    // refused, not taken first.
    if (auto s = dns_->start(); !s) {
      ASPEN_LOG_ERROR("node {}: DNS discovery did not start: {}", env_.config.node_id, s.error().to_string());
    }
  }
  run_leader_duties();
}

void AdminService::on_applied(Index applied) {
  if (refresh_at_applied_ == 0 || applied < refresh_at_applied_) return;
  refresh_at_applied_ = 0;
  port_.refresh_cluster_view();
}

void AdminService::run_leader_duties() {
  for (size_t i = 0; i < answer_waiters_.size();) {
    if (answer_waiters_[i]()) {
      answer_waiters_.erase(answer_waiters_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  // What to write is next_leader_duty's decision (leader_duties.h, unit-tested).
  DutyInput in;
  in.is_leader = port_.core()->is_leader();
  in.is_duty_in_flight = is_duty_in_flight_;
  in.now_ms = NodeEnv::steady_ms();
  in.last_duty_ms = last_duty_ms_;
  if (!is_duty_due(in, env_.config.knobs)) return;
  last_duty_ms_ = in.now_ms;
  in.cluster_id = env_.cluster_id;
  if (env_.cluster_id.empty()) {
    in.fresh_cluster_id = random_cluster_id();
    if (env_.init_root_key) in.root_key.assign(env_.init_root_key->begin(), env_.init_root_key->end());
  } else {
    in.own_record_key = node_record_key(env_.config.node_id);
    in.own_record_wanted = encode_node_record(env_.config.node_id, env_.identity->public_key(), {env_.endpoint->local_addr()});
    auto rec = env_.store->range(kv::key_range(in.own_record_key));
    if (rec && rec->kvs_size() == 1) in.own_record = rec->kvs(0).value();
    in.outdated = env_.peers.outdated_record();
  }
  auto duty = next_leader_duty(in, env_.config.knobs);
  if (!duty) return;
  if (duty->is_for_another_member) {
    ASPEN_LOG_INFO("node {}: {}", env_.config.node_id, duty->what);
  } else {
    ASPEN_LOG_DEBUG("node {}: leader duty: {}", env_.config.node_id, duty->what);
  }
  kvpb::Command cmd = std::move(duty->command);
  is_duty_in_flight_ = true;
  port_.submit_write(std::move(cmd), [this](const Response& r) {
    is_duty_in_flight_ = false;
    if (!r.write) {
      ASPEN_LOG_DEBUG("node {}: leader duty write failed: {}", env_.config.node_id, r.write.error().to_string());
      return;
    }
    // A put is answered once committed, possibly before this node applied it: the view is
    // read from the applied state, so refresh it once the apply got there.
    refresh_at_applied_ = std::max(refresh_at_applied_, r.index);
    if (env_.store->applied_index() >= refresh_at_applied_) port_.refresh_cluster_view();
  });
}

void AdminService::reply_membership(Reply reply, const Response& r) {
  if (!r.write) return reply(error_reply(r.write.error()));
  port_.refresh_cluster_view();
  // Changing more than one voter at once goes through a joint configuration (thesis §4.3),
  // which the leader leaves with a second entry once the first is applied. Until then the
  // old voters still need a majority of their own: an operator told "done" who then takes
  // one of them down could leave the cluster unable to elect. So the answer waits for the
  // final configuration, on this node's applied state (which works after a leader change).
  const uint64_t revision = r.write->revision();
  const uint64_t deadline = NodeEnv::steady_ms() + env_.config.knobs.request_timeout_ms;
  auto answer = [this, reply, revision, deadline]() -> bool {
    pb::ConfState cs = env_.store->conf_state();
    if (cs.voters_outgoing_size() > 0) {
      if (NodeEnv::steady_ms() <= deadline) return false;
      reply(error_reply(ErrorCode::kTimeout,
                        "the change is committed, but the cluster has not yet left the joint configuration of "
                        "old and new voters (it needs a leader and a majority of both); see `cluster status`"));
      return true;
    }
    cpb::Response resp;
    auto* m = resp.mutable_membership();
    for (auto id : cs.voters()) m->add_voters(id);
    for (auto id : cs.learners()) m->add_learners(id);
    m->set_revision(revision);
    reply(std::move(resp));
    return true;
  };
  if (!answer()) answer_waiters_.push_back(std::move(answer));
}

void AdminService::handle_add_learner(const cpb::Request& req, Reply reply) {
  if (!port_.core()->is_leader()) return clients_.forward_to_leader(req, std::move(reply));
  cpb::NodeAddress n = req.add_learner().node();
  if (n.node_id() == kNoNode) return reply(error_reply(ErrorCode::kInvalidArgument, "node id must be non-zero"));
  // Without a key or an address: what discovery heard the node announce, signed by its key.
  if (n.public_key().empty() || n.addrs().empty()) {
    const auto d = env_.peers.find_discovered(n.node_id());
    if (!d) {
      return reply(error_reply(ErrorCode::kNotFound,
                               fmt::format("node {} is not known to discovery on the leader (node {}); give its public "
                                           "key and address, or see 'aspen-cli cluster peers'",
                                           n.node_id(), env_.config.node_id)));
    }
    const PeerInfo& found = d->peer;
    if (n.public_key().empty()) {
      n.set_public_key(found.key.to_string());
    } else if (n.public_key() != found.key.to_string()) {
      return reply(error_reply(ErrorCode::kInvalidArgument,
                               fmt::format("node {} announced key {}, not the key given", n.node_id(),
                                           found.key.to_string())));
    }
    if (n.addrs().empty()) {
      for (const auto& a : found.addrs) n.add_addrs(a.to_string());
    }
  }
  auto key = transport::PublicKey::parse(n.public_key());
  if (!key) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("public key of node {}: {}", n.node_id(), key.error().message())));
  }
  if (n.addrs().empty()) {
    return reply(error_reply(ErrorCode::kInvalidArgument, fmt::format("node {} needs at least one address", n.node_id())));
  }
  if (static_cast<size_t>(n.addrs_size()) > limits::kMaxNodeAddresses) {
    return reply(error_reply(ErrorCode::kInvalidArgument, fmt::format("node {} has {} addresses; the limit is {}", n.node_id(),
                                                                      n.addrs_size(), limits::kMaxNodeAddresses)));
  }
  std::vector<transport::SocketAddr> addrs;
  for (const auto& a : n.addrs()) {
    auto sa = transport::SocketAddr::parse(a);
    if (!sa) return reply(error_reply(ErrorCode::kInvalidArgument, fmt::format("address '{}': {}", a, sa.error().message())));
    addrs.push_back(*sa);
  }
  if (env_.peers.members().contains(n.node_id())) {
    return reply(error_reply(ErrorCode::kInvalidArgument, fmt::format("node {} is already a member", n.node_id())));
  }
  if (auto other = env_.peers.node_id_of(*key); other && *other != n.node_id() && env_.peers.members().contains(*other)) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("that public key already belongs to member node {}", *other)));
  }
  pb::ConfState cs = env_.store->conf_state();
  if (static_cast<size_t>(cs.learners_size()) >= limits::kMaxClusterLearners) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("the cluster already has {} learners (limit {})", cs.learners_size(),
                                         limits::kMaxClusterLearners)));
  }
  // First the record (so every replica can reach and trust the node), then the change.
  kvpb::Command cmd;
  cmd.mutable_put()->set_key(node_record_key(n.node_id()));
  cmd.mutable_put()->set_value(encode_node_record(n.node_id(), *key, addrs));
  NodeId id = n.node_id();
  port_.submit_write(std::move(cmd), [this, reply, id](const Response& r) {
    if (!r.write) return reply_membership(reply, r);
    port_.refresh_cluster_view();
    pb::ConfChange cc;
    auto* c = cc.add_changes();
    c->set_type(pb::CONF_CHANGE_ADD_LEARNER);
    c->set_node_id(id);
    ASPEN_LOG_INFO("node {}: adding node {} as a learner", env_.config.node_id, id);
    port_.submit_conf_change(cc, [this, reply](const Response& r2) { reply_membership(reply, r2); });
  });
}

void AdminService::handle_change_membership(const cpb::Request& req, Reply reply) {
  if (!port_.core()->is_leader()) return clients_.forward_to_leader(req, std::move(reply));
  std::set<NodeId> want(req.change_membership().voters().begin(), req.change_membership().voters().end());
  if (want.empty() || want.contains(kNoNode)) {
    return reply(error_reply(ErrorCode::kInvalidArgument, "name at least one voter; node ids are non-zero"));
  }
  if (want.size() > limits::kMaxClusterVoters) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("{} voters requested; the limit is {}", want.size(), limits::kMaxClusterVoters)));
  }
  pb::ConfState cs = env_.store->conf_state();
  if (cs.voters_outgoing_size() > 0) {
    return reply(error_reply(ErrorCode::kUnavailable, "a membership change is still in progress; retry"));
  }
  std::set<NodeId> voters(cs.voters().begin(), cs.voters().end());
  std::set<NodeId> learners(cs.learners().begin(), cs.learners().end());
  pb::ConfChange cc;
  for (NodeId id : want) {
    if (voters.contains(id)) continue;
    if (!learners.contains(id)) {
      return reply(error_reply(ErrorCode::kInvalidArgument,
                               fmt::format("node {} is not a learner of this cluster; add it with add-learner first", id)));
    }
    auto* c = cc.add_changes();
    c->set_type(pb::CONF_CHANGE_ADD_VOTER);
    c->set_node_id(id);
  }
  for (NodeId id : voters) {
    if (want.contains(id)) continue;
    auto* c = cc.add_changes();
    c->set_type(req.change_membership().retain_as_learners() ? pb::CONF_CHANGE_ADD_LEARNER : pb::CONF_CHANGE_REMOVE_NODE);
    c->set_node_id(id);
  }
  if (cc.changes_size() == 0) {
    Response same;
    same.is_write = true;
    kvpb::CommandResult r;
    r.set_succeeded(true);
    same.write = r;
    return reply_membership(reply, same);
  }
  ASPEN_LOG_INFO("node {}: changing membership: {}", env_.config.node_id, cc.ShortDebugString());
  port_.submit_conf_change(cc, [this, reply](const Response& r) { reply_membership(reply, r); });
}

void AdminService::handle_remove_node(const cpb::Request& req, Reply reply) {
  if (!port_.core()->is_leader()) return clients_.forward_to_leader(req, std::move(reply));
  NodeId id = req.remove_node().node_id();
  if (!env_.peers.members().contains(id)) {
    return reply(error_reply(ErrorCode::kNotFound, fmt::format("node {} is not a member of this cluster", id)));
  }
  pb::ConfState cs = env_.store->conf_state();
  if (cs.voters_size() == 1 && cs.voters(0) == id) {
    return reply(error_reply(ErrorCode::kInvalidArgument, "cannot remove the only voter"));
  }
  pb::ConfChange cc;
  auto* c = cc.add_changes();
  c->set_type(pb::CONF_CHANGE_REMOVE_NODE);
  c->set_node_id(id);
  ASPEN_LOG_INFO("node {}: removing node {}", env_.config.node_id, id);
  port_.submit_conf_change(cc, [this, reply](const Response& r) { reply_membership(reply, r); });
}

void AdminService::handle_snapshot(const cpb::Request&, Reply reply) {
  auto meta = port_.trigger_snapshot();
  if (!meta) return reply(error_reply(meta.error()));
  cpb::Response resp;
  resp.mutable_trigger_snapshot()->set_index(meta->index());
  resp.mutable_trigger_snapshot()->set_term(meta->term());
  reply(std::move(resp));
}

}  // namespace aspen::node::internal
