#include "node/node.h"

#include <sodium.h>
#include <sys/stat.h>

#include <filesystem>
#include <future>

#include "core/assert.h"
#include "core/log.h"
#include "node/internal/shell.h"
#include "storage/lmdb_store.h"
#include "storage/mem_store.h"

namespace aspen::node {

// ---------------------------------------------------------------------------------------
// Node: the public face.

Result<std::unique_ptr<Node>> Node::start(NodeConfig config) {
  auto shell = std::make_shared<internal::Shell>(std::move(config));
  if (auto s = shell->start(); !s) {
    shell->stop();
    return std::unexpected(s.error());
  }
  return std::unique_ptr<Node>(new Node(std::move(shell)));
}

Node::Node(std::shared_ptr<internal::Shell> shell) : shell_(std::move(shell)) {}
Node::~Node() { stop(); }
void Node::stop() {
  if (shell_) shell_->stop();
}
transport::PublicKey Node::public_key() const { return shell_->public_key(); }
transport::SocketAddr Node::local_addr() const { return shell_->local_addr(); }
std::string Node::ticket() const { return shell_->ticket_text(); }
bool Node::is_initialized() const { return shell_->is_initialized(); }

namespace internal {

Shell::Shell(NodeConfig config) : config_(std::move(config)) {}

Shell::~Shell() { stop(); }

namespace {

std::string cookie_digest(const std::string& cookie) {
  // Keyed so that the digest is useless outside Aspen's Raft greeting.
  static constexpr unsigned char kKey[] = "aspen raft cookie v1 ...........";
  unsigned char out[32];
  crypto_generichash(out, sizeof(out), reinterpret_cast<const unsigned char*>(cookie.data()), cookie.size(), kKey,
                     32);
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

}  // namespace

Status Shell::start() {
  ASPEN_ASSERT(config_.node_id != kNoNode);
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialize");
  cookie_digest_ = cookie_digest(config_.cookie);

  // Phase 1: metadata.
  ASPEN_LOG_INFO("node {}: phase 1/6 metadata: data directory {}", config_.node_id, config_.data_dir);
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kConfigInvalid,
                      fmt::format("--data-dir: cannot create {}: {}", config_.data_dir, ec.message()));
  }
  ::chmod(config_.data_dir.c_str(), 0700);
  auto id = transport::load_or_create_identity(config_.data_dir);
  if (!id) return std::unexpected(id.error());
  identity_.emplace(*id);
  ASPEN_LOG_INFO("node {}: public key {}", config_.node_id, identity_->public_key().to_string());

  // Phase 2: endpoint.
  transport::EndpointConfig ec_cfg;
  ec_cfg.bind_addr = config_.bind;
  auto ep = transport::Endpoint::bind(*identity_, ec_cfg);
  if (!ep) return std::unexpected(ep.error());
  endpoint_ = std::move(*ep);
  ASPEN_LOG_INFO("node {}: phase 2/6 endpoint: listening on {} (udp)", config_.node_id,
                 endpoint_->local_addr().to_string());

  // Phase 3: storage and Raft.
  if (config_.storage_backend == StorageBackend::kLmdb) {
    storage::LmdbOptions lo;
    lo.dir = config_.data_dir + "/db";
    lo.is_snapshot_data_streamed = true;  // send_snapshot streams it; no size cap in memory
    auto st = storage::LmdbStore::open(lo);
    if (!st) return std::unexpected(st.error());
    store_ = std::move(*st);
  } else {
    store_ = std::make_unique<storage::MemStore>();
  }
  // Snapshots being received when the node last stopped: the sender starts over.
  for (const auto& f : std::filesystem::directory_iterator(config_.data_dir, ec)) {
    if (f.path().extension() == kIncomingSnapshotExtension) std::filesystem::remove(f.path(), ec);
  }
  if (auto s = recreate_core(); !s) return s;
  StorageWorker::Hooks hooks;
  hooks.post = [ep = endpoint_.get()](std::function<void()> task) { ep->post(std::move(task)); };
  hooks.on_log_durable = [self = weak_from_this()](std::shared_ptr<StorageJob> job) {
    if (auto s = self.lock()) s->on_log_durable(std::move(job));
  };
  hooks.on_persisted = [self = weak_from_this()](std::shared_ptr<StorageJob> job, Result<storage::WriteOutcome> out) {
    if (auto s = self.lock()) s->on_persisted(std::move(job), std::move(out));
  };
  hooks.on_applied = [self = weak_from_this()](std::shared_ptr<StorageJob> job,
                                               Result<std::vector<storage::AppliedEntry>> applied) {
    if (auto s = self.lock()) s->on_applied(std::move(job), std::move(applied));
  };
  storage_ = std::make_unique<StorageWorker>(*store_, config_.knobs, config_.node_id, std::move(hooks));
  ASPEN_LOG_INFO("node {}: phase 3/6 storage ({}) and raft: applied index {}, membership {}", config_.node_id,
                 config_.storage_backend == StorageBackend::kLmdb ? "lmdb" : "inmemory", store_->applied_index(),
                 store_->conf_state().ShortDebugString());

  // Phase 4: protocol handlers. From here on the loop thread owns the core.
  register_client_handlers();
  register_admin_handlers();
  struct RaftHandler : transport::LoopProtocolHandler {
    std::weak_ptr<Shell> shell;
    void on_loop_connection(transport::Connection& conn) override {
      if (auto s = shell.lock(); s && !s->accept_raft_connection(conn)) conn.close();
    }
    void on_message(transport::Stream& stream, std::string message) override {
      if (auto s = shell.lock()) s->on_raft_message(stream, std::move(message));
    }
    void on_stream_closed(transport::Stream& stream, std::optional<Error> error) override {
      if (auto s = shell.lock()) s->on_raft_stream_closed(stream, error);
    }
  };
  struct ClientHandler : transport::LoopProtocolHandler {
    std::weak_ptr<Shell> shell;
    void on_message(transport::Stream& stream, std::string message) override {
      if (auto s = shell.lock()) s->serve_client(stream, std::move(message));
    }
  };
  auto raft_handler = std::make_shared<RaftHandler>();
  raft_handler->shell = weak_from_this();
  auto client_handler = std::make_shared<ClientHandler>();
  client_handler->shell = weak_from_this();
  if (auto s = endpoint_->register_handler(kRaftAlpn, raft_handler); !s) return s;
  if (auto s = endpoint_->register_handler(kClientAlpn, client_handler); !s) return s;
  ASPEN_LOG_INFO("node {}: phase 4/6 protocol handlers: {}, {}", config_.node_id, kRaftAlpn, kClientAlpn);

  // Phase 5: peers from the configuration and the join ticket.
  std::promise<void> peers_done;
  endpoint_->post([this, &peers_done] {
    for (const auto& p : config_.peers) peers_.add_manual(PeerInfo{p.node_id, p.public_key, {p.addr}});
    if (config_.ticket) {
      for (const auto& p : config_.ticket->peers) {
        if (p.node_id != kNoNode) peers_.add_manual(PeerInfo{p.node_id, p.public_key, p.addrs});
      }
    }
    refresh_cluster_view();
    peers_done.set_value();
  });
  peers_done.get_future().wait();
  ASPEN_LOG_INFO("node {}: phase 5/6 peers: {} manual, {} from the ticket", config_.node_id, config_.peers.size(),
                 config_.ticket ? config_.ticket->peers.size() : 0);

  // Phase 6: ticks (an asio timer on the loop) drive elections, heartbeats, timeouts and
  // lease expiry.
  endpoint_->post([self = weak_from_this()] {
    if (auto s = self.lock()) s->schedule_tick();
  });
  ASPEN_LOG_INFO("node {}: phase 6/6 running{}", config_.node_id,
                 is_initialized() ? "" : "; not in a cluster yet: waiting for InitCluster or to be added");
  return {};
}

void Shell::stop() {
  if (!endpoint_ && !storage_) return;
  ASPEN_LOG_INFO("node {}: stopping", config_.node_id);
  if (endpoint_) {
    endpoint_->close();  // joins the loop: nothing touches the core after this
    ASPEN_LOG_INFO("node {}: closed the endpoint and its connections", config_.node_id);
  }
  // After the endpoint: a snapshot being streamed fails at once on the closed connection.
  snapshot_sender_.stop();
  if (storage_) storage_->stop();
  storage_.reset();
  ASPEN_LOG_INFO("node {}: storage thread finished its last write", config_.node_id);
  core_.reset();
  store_.reset();
  endpoint_.reset();
  ASPEN_LOG_INFO("node {}: stopped", config_.node_id);
}

Status Shell::recreate_core() {
  NodeCoreConfig cc;
  cc.raft.id = config_.node_id;
  cc.raft.seed = randombytes_random() | (uint64_t{randombytes_random()} << 32);
  // A fresh nonce for every start: ReadIndex contexts of this life never repeat an earlier one.
  do {
    cc.incarnation = randombytes_random() | (uint64_t{randombytes_random()} << 32);
  } while (cc.incarnation == 0);
  cc.knobs = config_.knobs;  // Raft timing, timeouts and queue bounds
  auto core = NodeCore::create(cc, *store_);
  if (!core) return std::unexpected(core.error());
  core_ = std::move(*core);
  cycle_.emplace(store_->initial_state().hard_state);
  return {};
}

uint64_t Shell::now_ms() const {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

transport::SocketAddr Shell::local_addr() const { return endpoint_->local_addr(); }
transport::PublicKey Shell::public_key() const { return identity_->public_key(); }
std::string Shell::ticket_text() const {
  std::lock_guard lock(view_mu_);
  return ticket_view_;
}
bool Shell::is_initialized() const {
  std::lock_guard lock(view_mu_);
  return is_initialized_view_;
}

// ---------------------------------------------------------------------------------------
// The Ready pump: one Ready at a time goes to the storage thread; everything that arrives
// meanwhile (proposals, reads, messages) waits in the core and forms the next, bigger batch.

void Shell::schedule_pump() {
  if (is_pump_scheduled_ || is_stopping_) return;
  is_pump_scheduled_ = true;
  endpoint_->post([self = weak_from_this()] {
    if (auto s = self.lock()) {
      s->is_pump_scheduled_ = false;
      s->pump();
    }
  });
}

void Shell::pump() {
  if (is_stopping_ || !core_ || cycle_->is_in_flight()) return;
  auto step = cycle_->begin(*core_, config_.knobs.should_send_early);
  if (!step) {
    deliver_responses();
    return;
  }
  if (const auto& soft = step->ready->soft_state) {
    ASPEN_LOG_INFO("node {}: {} in term {}; leader {}", config_.node_id, raft::role_name(soft->role),
                   core_->raft().term(), soft->leader == kNoNode ? std::string("unknown") : std::to_string(soft->leader));
    if (!forwards_.empty()) fail_forwards_not_to(soft->leader);
  }
  // A leader's appends and heartbeats go out while its own fsync runs (commit clamped).
  send_raft_messages(step->early);
  // Puts committed and durable here were answered when the Ready was taken.
  deliver_responses();
  auto job = std::make_shared<StorageJob>();
  job->step = std::move(*step);
  if (!job->step.needs_store) {
    // Only messages and read states: nothing to write.
    on_persisted(std::move(job), storage::WriteOutcome{});
    return;
  }
  if (const auto& snap = job->step.ready->snapshot) {
    // Every snapshot the core takes in came through on_raft_stream_closed, which staged
    // its data; installing one without it would empty the state machine.
    auto staged = staged_snapshots_.find({snap->metadata().index(), snap->metadata().term()});
    ASPEN_ASSERT_MSG(staged != staged_snapshots_.end(), "a snapshot to install has no staged data");
    job->snapshot_path = staged->second;
    job->step.batch.snapshot_data_path = &job->snapshot_path;
  }
  storage_->submit(std::move(job));
}

void Shell::on_log_durable(std::shared_ptr<StorageJob> job) {
  if (is_stopping_ || job->step.is_log_durable) return;
  auto messages = cycle_->log_durable(*core_, job->step);
  send_raft_messages(messages);
  deliver_responses();
}

void Shell::on_storage_failure(std::string_view what, const Error& error, std::function<void()> retry) {
  counters_.storage_errors.fetch_add(1, std::memory_order_relaxed);
  ASPEN_LOG_ERROR("node {}: {} failed: {}", config_.node_id, what, error.to_string());
  if (error.code() == ErrorCode::kCorruption) {
    ASPEN_LOG_ERROR("node {}: the data directory is corrupt; this node stops serving until repaired", config_.node_id);
    is_stopping_ = true;
    return;
  }
  // A full disk may be freed meanwhile.
  endpoint_->post_after(config_.knobs.storage_retry_delay_ms, std::move(retry));
}

void Shell::on_applied(std::shared_ptr<StorageJob> job, Result<std::vector<storage::AppliedEntry>> applied) {
  if (is_stopping_ || !core_) return;
  if (!applied) {
    // Nothing of it was applied: the same entries again after a pause; NodeCore holds later
    // entries back until this one is done.
    return on_storage_failure("applying committed entries", applied.error(), [self = weak_from_this(), job] {
      if (auto s = self.lock(); s && s->storage_) s->storage_->submit_apply(job);
    });
  }
  counters_.applied_commands.fetch_add(applied->size(), std::memory_order_relaxed);
  core_->on_applied(*job->step.to_apply, *applied);
  if (refresh_at_applied_ != 0 && store_->applied_index() >= refresh_at_applied_) {
    refresh_at_applied_ = 0;
    refresh_cluster_view();
  }
  deliver_responses();
  pump();
}

void Shell::on_persisted(std::shared_ptr<StorageJob> job, Result<storage::WriteOutcome> outcome) {
  if (!outcome) {
    // The failed phase left nothing behind; the core must not advance. The same phase again
    // after a pause.
    return on_storage_failure("storage write", outcome.error(), [self = weak_from_this(), job] {
      if (auto s = self.lock(); s && s->storage_) s->storage_->submit(job);
    });
  }
  const raft::Ready& rd = *job->step.ready;
  const bool had_conf_change = applies_conf_change(rd);
  counters_.applied_commands.fetch_add(outcome->applied.size(), std::memory_order_relaxed);
  // Ready contract step 3: messages go out after the state they depend on is durable.
  auto messages = cycle_->finish(*core_, job->step, *outcome);
  send_raft_messages(messages);
  if (rd.snapshot) drop_staged_snapshots_up_to(rd.snapshot->metadata().index());
  const bool is_view_behind = refresh_at_applied_ != 0 && store_->applied_index() >= refresh_at_applied_;
  if (is_view_behind) refresh_at_applied_ = 0;
  if (had_conf_change || rd.snapshot || is_view_behind) refresh_cluster_view();
  deliver_responses();
  pump();
}

void Shell::schedule_tick() {
  // Each tick is scheduled from the previous one's deadline, so ticks do not drift when a
  // loop task runs long; after a stall the missed ones are not replayed in a burst.
  auto now = std::chrono::steady_clock::now();
  next_tick_at_ = std::max(next_tick_at_ + std::chrono::milliseconds(config_.knobs.tick_interval_ms), now);
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick_at_ - now).count();
  endpoint_->post_after(static_cast<uint32_t>(delay), [self = weak_from_this()] {
    auto s = self.lock();
    if (!s || s->is_stopping_) return;
    s->on_tick();
    s->schedule_tick();
  });
}

void Shell::on_tick() {
  if (is_stopping_ || !core_) return;
  uint64_t now = now_ms();
  core_->tick(now);
  if (now >= last_refresh_ms_ + config_.knobs.cluster_view_refresh_ms) refresh_cluster_view();
  run_leader_duties();
  deliver_responses();
  schedule_pump();
}

// ---------------------------------------------------------------------------------------
// Requests into the core.

void Shell::submit_write(kvpb::Command cmd, CoreDone done) {
  uint64_t id = next_request_id_++;
  waiting_.emplace(id, Waiting{std::move(done), std::chrono::steady_clock::now()});
  core_->submit_write(id, std::move(cmd), now_ms());
  deliver_responses();
  schedule_pump();
}

void Shell::submit_read(kvpb::RangeRequest req, ReadConsistency consistency, CoreDone done) {
  uint64_t id = next_request_id_++;
  waiting_.emplace(id, Waiting{std::move(done), {}});
  core_->submit_read(id, std::move(req), consistency, now_ms());
  deliver_responses();
  schedule_pump();
}

void Shell::submit_conf_change(const pb::ConfChange& cc, CoreDone done) {
  uint64_t id = next_request_id_++;
  waiting_.emplace(id, Waiting{std::move(done), {}});
  core_->submit_conf_change(id, cc, now_ms());
  deliver_responses();
  schedule_pump();
}

void Shell::deliver_responses() {
  if (!core_) return;
  for (auto& r : core_->take_responses()) {
    auto it = waiting_.find(r.request_id);
    if (it == waiting_.end()) continue;
    Waiting w = std::move(it->second);
    waiting_.erase(it);
    if (r.write && w.write_started != std::chrono::steady_clock::time_point{}) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - w.write_started);
      counters_.core_writes_answered.fetch_add(1, std::memory_order_relaxed);
      counters_.core_write_us_total.fetch_add(static_cast<uint64_t>(us.count()), std::memory_order_relaxed);
    }
    CoreDone done = std::move(w.done);
    done(r);
  }
}

// ---------------------------------------------------------------------------------------
// What the cluster looks like: membership, member records, cluster id, ticket.

void Shell::refresh_cluster_view() {
  last_refresh_ms_ = now_ms();
  peers_.set_membership(store_->conf_state());
  kvpb::RangeRequest rr;
  rr.set_start(std::string(kNodeRecordPrefix));
  rr.set_is_prefix(true);
  rr.set_limit(limits::kMaxScanResults);
  if (auto r = store_->range(rr)) {
    peers_.set_records(std::vector<kvpb::KeyValue>(r->kvs().begin(), r->kvs().end()));
  }
  kvpb::RangeRequest id_req;
  id_req.set_start(std::string(kClusterIdKey));
  id_req.set_limit(1);
  if (auto r = store_->range(id_req); r && r->kvs_size() == 1 && r->kvs(0).key() == kClusterIdKey) {
    cluster_id_ = r->kvs(0).value();
  }
  // Links to peers whose key changed are re-dialled.
  for (auto it = out_links_.begin(); it != out_links_.end();) {
    auto p = peers_.lookup(it->first);
    if (!p || p->key != it->second.key) {
      if (it->second.stream) it->second.stream->reset();
      it = out_links_.erase(it);
    } else {
      ++it;
    }
  }
  // Before the cluster exists the ticket names only this node (enough for `cluster init`).
  std::string ticket = build_ticket();
  std::lock_guard lock(view_mu_);
  ticket_view_ = std::move(ticket);
  is_initialized_view_ = peers_.has_membership();
}

}  // namespace internal
}  // namespace aspen::node
