// Cluster administration and introspection on the client protocol: health, metrics, Raft
// status, leader, node info, ticket, InitCluster, AddLearner, ChangeMembership, RemoveNode,
// TriggerSnapshot. Membership changes need the leader (followers forward them).
#include <sodium.h>

#include <set>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/log.h"
#include "kv/commands.h"
#include "node/internal/shell.h"
#include "node/leader_duties.h"
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

void Shell::register_admin_handlers() {
  using R = cpb::Request;
  auto bind = [this](void (Shell::*fn)(const cpb::Request&, Reply)) {
    return [this, fn](const cpb::Request& req, Reply reply) { (this->*fn)(req, std::move(reply)); };
  };
  handlers_.add(R::kGetHealth, "get_health", bind(&Shell::handle_health));
  handlers_.add(R::kGetMetrics, "get_metrics", bind(&Shell::handle_metrics));
  handlers_.add(R::kGetRaftMetrics, "get_raft_metrics", bind(&Shell::handle_raft_metrics));
  handlers_.add(R::kGetLeader, "get_leader", bind(&Shell::handle_leader));
  handlers_.add(R::kGetNodeInfo, "get_node_info", bind(&Shell::handle_node_info));
  handlers_.add(R::kGetClusterTicket, "get_cluster_ticket", bind(&Shell::handle_ticket));
  handlers_.add(R::kInitCluster, "init_cluster", bind(&Shell::handle_init));
  handlers_.add(R::kAddLearner, "add_learner", bind(&Shell::handle_add_learner));
  handlers_.add(R::kChangeMembership, "change_membership", bind(&Shell::handle_change_membership));
  handlers_.add(R::kRemoveNode, "remove_node", bind(&Shell::handle_remove_node));
  handlers_.add(R::kTriggerSnapshot, "trigger_snapshot", bind(&Shell::handle_snapshot));
}

cpb::NodeAddress Shell::address_of(const PeerInfo& p) const {
  cpb::NodeAddress a;
  a.set_node_id(p.id);
  a.set_public_key(p.key.to_string());
  for (const auto& s : p.addrs) a.add_addrs(s.to_string());
  return a;
}

const cpb::NodeAddress& Shell::self_address() const {
  // Built once: every write's answer names this node (served_by), and neither the key nor
  // the bound address changes while the node runs.
  if (!self_address_) {
    self_address_ = address_of(PeerInfo{config_.node_id, identity_->public_key(), {endpoint_->local_addr()}});
  }
  return *self_address_;
}

std::string Shell::build_ticket() const {
  cluster::Ticket t;
  t.cluster_id = cluster_id_;
  for (const auto& p : peers_.reachable_members()) {
    if (t.peers.size() >= cluster::kMaxTicketPeers) break;
    t.peers.push_back(cluster::TicketPeer{p.id, p.key, p.addrs});
  }
  if (t.peers.empty()) t.peers.push_back(cluster::TicketPeer{config_.node_id, identity_->public_key(), {endpoint_->local_addr()}});
  return cluster::encode_ticket(t);
}

// --- introspection --------------------------------------------------------------------

void Shell::handle_health(const cpb::Request&, Reply reply) {
  cpb::Response resp;
  auto* h = resp.mutable_get_health();
  h->set_node_id(config_.node_id);
  h->set_is_initialized(peers_.has_membership());
  h->set_leader_id(core_->leader());
  h->set_uptime_ms(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_at_).count()));
  h->set_status(!peers_.has_membership() ? "uninitialized" : core_->leader() == kNoNode ? "no-leader" : "ok");
  reply(std::move(resp));
}

void Shell::handle_metrics(const cpb::Request&, Reply reply) {
  cpb::Response resp;
  resp.mutable_get_metrics()->set_prometheus_text(prometheus_text());
  reply(std::move(resp));
}

void Shell::handle_raft_metrics(const cpb::Request&, Reply reply) {
  const auto& raft = core_->raft();
  auto st = raft.status();
  cpb::Response resp;
  auto* m = resp.mutable_get_raft_metrics();
  m->set_node_id(config_.node_id);
  m->set_term(st.term);
  m->set_leader_id(st.leader);
  m->set_role(raft::role_name(st.role));
  m->set_commit_index(st.commit);
  m->set_applied_index(store_->applied_index());
  m->set_first_log_index(store_->first_index());
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
      p->set_is_active(id == config_.node_id || pr.recent_active);
    }
  }
  for (const auto& p : peers_.reachable_members()) *m->add_members() = address_of(p);
  reply(std::move(resp));
}

void Shell::handle_leader(const cpb::Request&, Reply reply) {
  cpb::Response resp;
  auto* l = resp.mutable_get_leader();
  l->set_term(core_->raft().term());
  NodeId leader = core_->leader();
  if (leader == config_.node_id) {
    *l->mutable_leader() = self_address();
  } else if (auto p = peers_.lookup(leader)) {
    *l->mutable_leader() = address_of(*p);
  } else {
    l->mutable_leader()->set_node_id(leader);
  }
  reply(std::move(resp));
}

void Shell::handle_node_info(const cpb::Request&, Reply reply) {
  cpb::Response resp;
  auto* n = resp.mutable_get_node_info();
  *n->mutable_node() = self_address();
  n->set_cluster_id(cluster_id_);
  n->set_version(kVersion);
  n->set_storage_backend(config_.storage_backend == StorageBackend::kLmdb ? "lmdb" : "inmemory");
  reply(std::move(resp));
}

void Shell::handle_ticket(const cpb::Request&, Reply reply) {
  if (cluster_id_.empty()) {
    return reply(error_reply(ErrorCode::kUnavailable,
                             "this node is not part of an initialized cluster yet (run `aspen-cli cluster init`)"));
  }
  cpb::Response resp;
  resp.mutable_get_cluster_ticket()->set_ticket(build_ticket());
  reply(std::move(resp));
}

// --- membership ---------------------------------------------------------------------------

void Shell::handle_init(const cpb::Request&, Reply reply) {
  if (peers_.has_membership() || store_->last_index() > 0) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             cluster_id_.empty() ? "this node already belongs to a cluster"
                                                 : fmt::format("this node already belongs to cluster {}", cluster_id_)));
  }
  std::unique_lock write_lock(storage_->write_mutex(), std::try_to_lock);
  if (cycle_->is_in_flight() || !write_lock.owns_lock()) {
    return reply(error_reply(ErrorCode::kUnavailable, "the node is busy; retry"));
  }
  pb::ConfState cs;
  cs.add_voters(config_.node_id);
  if (auto s = store_->bootstrap(cs); !s) return reply(error_reply(s.error()));
  write_lock.unlock();
  if (auto s = recreate_core(); !s) return reply(error_reply(s.error()));
  refresh_cluster_view();
  ASPEN_LOG_INFO("node {}: initialized a new cluster with itself as the only voter", config_.node_id);
  core_->raft().campaign();
  schedule_pump();
  // The leader duty (on_tick) writes the cluster id and this node's record; answer once
  // both are applied.
  uint64_t deadline = now_ms() + config_.knobs.init_timeout_ms;
  init_waiters_.push_back([this, reply, deadline]() -> bool {
    if (!cluster_id_.empty() && peers_.lookup(config_.node_id)) {
      cpb::Response resp;
      resp.mutable_init_cluster()->set_cluster_id(cluster_id_);
      resp.mutable_init_cluster()->set_ticket(build_ticket());
      reply(std::move(resp));
      return true;
    }
    if (now_ms() > deadline) {
      reply(error_reply(ErrorCode::kTimeout, "the new cluster did not elect this node in time; check its log"));
      return true;
    }
    return false;
  });
}

void Shell::run_leader_duties() {
  for (size_t i = 0; i < init_waiters_.size();) {
    if (init_waiters_[i]()) {
      init_waiters_.erase(init_waiters_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  // What to write is next_leader_duty's decision (leader_duties.h, unit-tested).
  DutyInput in;
  in.is_leader = core_->is_leader();
  in.is_duty_in_flight = is_duty_in_flight_;
  in.now_ms = now_ms();
  in.last_duty_ms = last_duty_ms_;
  if (!is_duty_due(in, config_.knobs)) return;
  last_duty_ms_ = in.now_ms;
  in.cluster_id = cluster_id_;
  if (cluster_id_.empty()) {
    in.fresh_cluster_id = random_cluster_id();
  } else {
    in.own_record_key = node_record_key(config_.node_id);
    in.own_record_wanted = encode_node_record(config_.node_id, identity_->public_key(), {endpoint_->local_addr()});
    auto rec = store_->range(kv::key_range(in.own_record_key));
    if (rec && rec->kvs_size() == 1) in.own_record = rec->kvs(0).value();
    in.outdated = peers_.outdated_record();
  }
  auto duty = next_leader_duty(in, config_.knobs);
  if (!duty) return;
  if (duty->is_for_another_member) {
    ASPEN_LOG_INFO("node {}: {}", config_.node_id, duty->what);
  } else {
    ASPEN_LOG_DEBUG("node {}: leader duty: {}", config_.node_id, duty->what);
  }
  kvpb::Command cmd = std::move(duty->command);
  is_duty_in_flight_ = true;
  submit_write(std::move(cmd), [this](const Response& r) {
    is_duty_in_flight_ = false;
    if (!r.write) {
      ASPEN_LOG_DEBUG("node {}: leader duty write failed: {}", config_.node_id, r.write.error().to_string());
      return;
    }
    // A put is answered once committed, possibly before this node applied it: the view is
    // read from the applied state, so refresh it once the apply got there.
    refresh_at_applied_ = std::max(refresh_at_applied_, r.index);
    if (store_->applied_index() >= refresh_at_applied_) refresh_cluster_view();
  });
}

void Shell::reply_membership(Reply reply, const Response& r) {
  if (!r.write) return reply(error_reply(r.write.error()));
  refresh_cluster_view();
  cpb::Response resp;
  auto* m = resp.mutable_membership();
  pb::ConfState cs = store_->conf_state();
  for (auto id : cs.voters()) m->add_voters(id);
  for (auto id : cs.learners()) m->add_learners(id);
  m->set_revision(r.write->revision());
  reply(std::move(resp));
}

void Shell::handle_add_learner(const cpb::Request& req, Reply reply) {
  if (!core_->is_leader()) return forward_to_leader(req, std::move(reply));
  const auto& n = req.add_learner().node();
  if (n.node_id() == kNoNode) return reply(error_reply(ErrorCode::kInvalidArgument, "node id must be non-zero"));
  auto key = transport::PublicKey::parse(n.public_key());
  if (!key) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("public key of node {}: {}", n.node_id(), key.error().message())));
  }
  if (n.addrs().empty()) {
    return reply(error_reply(ErrorCode::kInvalidArgument, fmt::format("node {} needs at least one address", n.node_id())));
  }
  std::vector<transport::SocketAddr> addrs;
  for (const auto& a : n.addrs()) {
    auto sa = transport::SocketAddr::parse(a);
    if (!sa) return reply(error_reply(ErrorCode::kInvalidArgument, fmt::format("address '{}': {}", a, sa.error().message())));
    addrs.push_back(*sa);
  }
  if (peers_.members().contains(n.node_id())) {
    return reply(error_reply(ErrorCode::kInvalidArgument, fmt::format("node {} is already a member", n.node_id())));
  }
  if (auto other = peers_.node_id_of(*key); other && *other != n.node_id() && peers_.members().contains(*other)) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("that public key already belongs to member node {}", *other)));
  }
  pb::ConfState cs = store_->conf_state();
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
  submit_write(std::move(cmd), [this, reply, id](const Response& r) {
    if (!r.write) return reply_membership(reply, r);
    refresh_cluster_view();
    pb::ConfChange cc;
    auto* c = cc.add_changes();
    c->set_type(pb::CONF_CHANGE_ADD_LEARNER);
    c->set_node_id(id);
    ASPEN_LOG_INFO("node {}: adding node {} as a learner", config_.node_id, id);
    submit_conf_change(cc, [this, reply](const Response& r2) { reply_membership(reply, r2); });
  });
}

void Shell::handle_change_membership(const cpb::Request& req, Reply reply) {
  if (!core_->is_leader()) return forward_to_leader(req, std::move(reply));
  std::set<NodeId> want(req.change_membership().voters().begin(), req.change_membership().voters().end());
  if (want.empty() || want.contains(kNoNode)) {
    return reply(error_reply(ErrorCode::kInvalidArgument, "name at least one voter; node ids are non-zero"));
  }
  if (want.size() > limits::kMaxClusterVoters) {
    return reply(error_reply(ErrorCode::kInvalidArgument,
                             fmt::format("{} voters requested; the limit is {}", want.size(), limits::kMaxClusterVoters)));
  }
  pb::ConfState cs = store_->conf_state();
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
  ASPEN_LOG_INFO("node {}: changing membership: {}", config_.node_id, cc.ShortDebugString());
  submit_conf_change(cc, [this, reply](const Response& r) { reply_membership(reply, r); });
}

void Shell::handle_remove_node(const cpb::Request& req, Reply reply) {
  if (!core_->is_leader()) return forward_to_leader(req, std::move(reply));
  NodeId id = req.remove_node().node_id();
  if (!peers_.members().contains(id)) {
    return reply(error_reply(ErrorCode::kNotFound, fmt::format("node {} is not a member of this cluster", id)));
  }
  pb::ConfState cs = store_->conf_state();
  if (cs.voters_size() == 1 && cs.voters(0) == id) {
    return reply(error_reply(ErrorCode::kInvalidArgument, "cannot remove the only voter"));
  }
  pb::ConfChange cc;
  auto* c = cc.add_changes();
  c->set_type(pb::CONF_CHANGE_REMOVE_NODE);
  c->set_node_id(id);
  ASPEN_LOG_INFO("node {}: removing node {}", config_.node_id, id);
  submit_conf_change(cc, [this, reply](const Response& r) { reply_membership(reply, r); });
}

void Shell::handle_snapshot(const cpb::Request&, Reply reply) {
  // trigger_snapshot compacts the log: a write, which must not race the storage thread.
  std::unique_lock write_lock(storage_->write_mutex(), std::try_to_lock);
  if (cycle_->is_in_flight() || !write_lock.owns_lock()) {
    return reply(error_reply(ErrorCode::kUnavailable, "a write is in progress; retry"));
  }
  auto meta = store_->trigger_snapshot();
  write_lock.unlock();
  if (!meta) return reply(error_reply(meta.error()));
  cpb::Response resp;
  resp.mutable_trigger_snapshot()->set_index(meta->index());
  resp.mutable_trigger_snapshot()->set_term(meta->term());
  reply(std::move(resp));
}

// --- metrics ------------------------------------------------------------------------------

std::string Shell::prometheus_text() const {
  std::string out;
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    out += fmt::format("# HELP aspen_{} {}\n# TYPE aspen_{} {}\naspen_{}{{node_id=\"{}\"}} {}\n", name, help, name, type,
                       name, config_.node_id, value);
  };
  auto st = core_->raft().status();
  auto c = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  metric("raft_term", "gauge", "Current Raft term.", st.term);
  metric("raft_leader_id", "gauge", "Node id of the known leader (0 = none).", st.leader);
  metric("raft_is_leader", "gauge", "1 if this node is the leader.", core_->is_leader() ? 1 : 0);
  metric("raft_commit_index", "gauge", "Highest log index known committed.", st.commit);
  metric("raft_applied_index", "gauge", "Highest log index applied to the state machine.", store_->applied_index());
  metric("raft_last_log_index", "gauge", "Last index in the log.", core_->raft().log().last_index());
  metric("raft_messages_received_total", "counter", "Raft messages received from peers.", c(counters_.raft_messages_in));
  metric("raft_messages_sent_total", "counter", "Raft messages sent to peers.", c(counters_.raft_messages_out));
  metric("raft_messages_dropped_total", "counter", "Raft messages dropped (peer unreachable or backlogged).",
         c(counters_.raft_messages_dropped));
  metric("raft_refused_total", "counter", "Raft connections or streams refused (unknown key, wrong cookie).",
         c(counters_.raft_refused));
  metric("raft_snapshots_sent_total", "counter", "Snapshots sent to lagging followers.", c(counters_.snapshots_sent));
  metric("client_requests_total", "counter", "Client requests received.", c(counters_.client_requests));
  metric("client_errors_total", "counter", "Client requests answered with an error.", c(counters_.client_errors));
  metric("client_forwarded_total", "counter", "Client requests forwarded to the leader.", c(counters_.forwarded_requests));
  metric("client_pending_requests", "gauge", "Requests waiting in the node core.", core_->pending_requests());
  const auto& ss = storage_->stats();
  metric("storage_writes_total", "counter", "Batches persisted (a log write, then an apply if entries committed).",
         c(ss.batches));
  metric("storage_log_writes_total", "counter", "Log writes (one fdatasync each when they hold entries or a new term or vote).",
         c(ss.log_writes));
  metric("storage_log_write_microseconds_total", "counter", "Time spent writing and syncing the log.",
         c(ss.log_write_us_total));
  metric("storage_applies_total", "counter", "State machine transactions applying committed entries.", c(ss.applies));
  metric("storage_apply_microseconds_total", "counter", "Time spent applying committed entries.", c(ss.apply_us_total));
  metric("core_writes_answered_total", "counter", "Writes answered by this node as leader.", c(counters_.core_writes_answered));
  metric("core_write_microseconds_total", "counter",
         "Time from a write's arrival in this node's core to its answer (commit, or apply when its result needs it).",
         c(counters_.core_write_us_total));
  metric("storage_entries_written_total", "counter", "Log entries persisted.", c(ss.entries));
  metric("storage_write_microseconds_total", "counter", "Time spent persisting batches (both phases).",
         c(ss.batch_us_total));
  metric("storage_errors_total", "counter", "Failed storage transactions.", c(counters_.storage_errors));
  metric("storage_compactions_total", "counter", "Log compactions.", c(ss.compactions));
  metric("applied_entries_total", "counter", "Log entries applied to the state machine.", c(counters_.applied_commands));
  auto tm = endpoint_->metrics();
  metric("transport_connections_open", "gauge", "Open QUIC connections.", tm.connections_open);
  metric("transport_streams_open", "gauge", "Open streams.", tm.streams_open);
  metric("transport_bytes_in_total", "counter", "UDP payload bytes received.", tm.bytes_in);
  metric("transport_bytes_out_total", "counter", "UDP payload bytes sent.", tm.bytes_out);
  metric("transport_handshake_failures_total", "counter", "Failed handshakes.", tm.handshake_failures);
  metric("transport_connections_refused_total", "counter", "Connections refused over the limit.", tm.connections_refused);
  metric("transport_retries_sent_total", "counter", "Address validation challenges (QUIC Retry) sent.", tm.retries_sent);
  metric("transport_invalid_tokens_total", "counter", "Connection attempts with a forged or expired token.",
         tm.invalid_tokens);
  metric("transport_stateless_resets_sent_total", "counter", "Stateless resets sent for unknown connections.",
         tm.stateless_resets_sent);
  metric("transport_send_blocked_total", "counter",
         "Times the UDP send buffer was full and sending paused (raise net.core.wmem_max if frequent).",
         tm.send_blocked);
  metric("transport_datagrams_dropped_total", "counter", "Datagrams dropped because the send queue was full.",
         tm.datagrams_dropped);
  out += "# HELP aspen_transport_peer_rtt_microseconds Smoothed round-trip time per peer connection.\n";
  out += "# TYPE aspen_transport_peer_rtt_microseconds gauge\n";
  for (const auto& r : tm.peer_rtts) {
    out += fmt::format("aspen_transport_peer_rtt_microseconds{{node_id=\"{}\",peer=\"{}\",alpn=\"{}\"}} {}\n",
                       config_.node_id, r.peer.short_string(), r.alpn, r.smoothed_rtt_us);
  }
  return out;
}

}  // namespace aspen::node::internal
