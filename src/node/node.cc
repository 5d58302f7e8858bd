#include "node/node.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <future>

#include "core/assert.h"
#include "core/log.h"
#include "kv/commands.h"
#include "node/gossip_topic.h"
#include "node/internal/shell.h"
#include "node/request_auth.h"
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

namespace {

// What an operator does with a node whose data is damaged; the error names the file.
constexpr char kDamagedStoreRemedy[] =
    "This node will not vote or serve with damaged data: it could elect a stale leader or lose "
    "acknowledged writes. To recover, leave it stopped; from a healthy node remove it from the "
    "voters (aspen-cli cluster change-membership <the other voters>); move its data directory "
    "aside (keep it for diagnosis); start it with an empty data directory, best under a new node "
    "id, and add it with aspen-cli cluster add-learner, then promote it: the leader sends it a "
    "snapshot. See docs/operations.md, \"Corruption\".";

// A store that reports Corruption at open (a damaged log record, a data.mdb that is not a
// store) must not start: the node exits with the store's message (file, offset, entry) and
// the remedy, instead of running with a log that lost entries it acknowledged.
Error refuse_damaged_store(const Error& e, const std::string& db_dir) {
  if (e.code() != ErrorCode::kCorruption) return e;
  return Error(ErrorCode::kCorruption,
               fmt::format("{}; the data in {} (log in wal/, state machine in data.mdb) is damaged. {}", e.message(),
                           db_dir, kDamagedStoreRemedy));
}

// Every applied entry was synced to the log before it was applied, so a log that ends below
// the applied index lost synced entries: damage in its very last batch, which replay cannot
// tell from a torn write. Starting would trip the Raft log's invariants (a crash loop).
Status check_log_covers_applied(const storage::Store& store, const std::string& db_dir) {
  if (store.applied_index() <= store.last_index()) return {};
  return make_error(ErrorCode::kCorruption,
                    fmt::format("the log in {}/wal ends at entry {} but entries up to {} were applied: entries {} to {} "
                                "were synced to the log before they were applied and are gone from it; the data in {} "
                                "is damaged. {}",
                                db_dir, store.last_index(), store.applied_index(), store.last_index() + 1,
                                store.applied_index(), db_dir, kDamagedStoreRemedy));
}

}  // namespace

Shell::Shell(NodeConfig config) : env_(std::move(config)) {
  if (!env_.config.test_clock_offset_file.empty()) {
    test_clock_file_.emplace(env_.config.test_clock_offset_file, env_.config.test_clock_offset_ms,
                             env_.test_clock_offset_ms);
  }
}

Shell::~Shell() { stop(); }


Status Shell::start() {
  const NodeConfig& config = env_.config;
  ASPEN_ASSERT(config.node_id != kNoNode);
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialize");
  env_.cookie_key = raft_cookie_key(config.cookie);

  // Phase 1: metadata.
  ASPEN_LOG_INFO("node {}: phase 1/6 metadata: data directory {}", config.node_id, config.data_dir);
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kConfigInvalid,
                      fmt::format("--data-dir: cannot create {}: {}", config.data_dir, ec.message()));
  }
  ::chmod(config.data_dir.c_str(), 0700);
  auto id = transport::load_or_create_identity(config.data_dir);
  if (!id) return std::unexpected(id.error());
  env_.identity.emplace(*id);
  ASPEN_LOG_INFO("node {}: public key {}", config.node_id, env_.identity->public_key().to_string());

  // Phase 2: endpoint.
  transport::EndpointConfig ec_cfg;
  ec_cfg.bind_addr = config.bind;
  // A connection is a member's (it takes a member slot, never a client one) when the peer's
  // key is one this node knows as a member's: a peer's Raft link, or a follower relaying
  // its clients' requests. Any other, Raft protocol or not, competes for client slots.
  // Runs on the loop thread, which owns the registry.
  ec_cfg.member_alpns = {kRaftAlpn};
  ec_cfg.is_member_key = [self = weak_from_this()](const transport::PublicKey& key) {
    auto s = self.lock();
    return s != nullptr && s->env_.peers.node_id_of(key).has_value();
  };
  auto ep = transport::Endpoint::bind(*env_.identity, ec_cfg);
  if (!ep) return std::unexpected(ep.error());
  env_.endpoint = std::move(*ep);
  ASPEN_LOG_INFO("node {}: phase 2/6 endpoint: listening on {} (udp)", config.node_id,
                 env_.endpoint->local_addr().to_string());

  // Phase 3: storage and Raft.
  if (config.storage_backend == StorageBackend::kLmdb) {
    storage::LmdbOptions lo;
    lo.dir = config.data_dir + "/db";
    lo.is_snapshot_data_streamed = true;  // RaftLinks streams it; no size cap in memory
    lo.map_size_bytes = config.storage_max_bytes;
    auto st = storage::LmdbStore::open(lo);
    if (!st) return std::unexpected(refuse_damaged_store(st.error(), lo.dir));
    env_.store = std::move(*st);
    if (auto s = check_log_covers_applied(*env_.store, lo.dir); !s) return s;
  } else {
    env_.store = std::make_unique<storage::MemStore>();
  }
  // Snapshots being received when the node last stopped: the sender starts over.
  for (const auto& f : std::filesystem::directory_iterator(config.data_dir, ec)) {
    if (f.path().extension() == kIncomingSnapshotExtension) std::filesystem::remove(f.path(), ec);
  }
  if (auto s = recreate_core(); !s) return s;
  if (auto s = start_components(); !s) return s;
  ASPEN_LOG_INFO("node {}: phase 3/6 storage ({}) and raft: applied index {}, membership {}", config.node_id,
                 config.storage_backend == StorageBackend::kLmdb ? "lmdb" : "inmemory", env_.store->applied_index(),
                 env_.store->conf_state().ShortDebugString());

  // Phase 4: protocol handlers. From here on the loop thread owns the core.
  struct RaftHandler : transport::LoopProtocolHandler {
    std::weak_ptr<RaftLinks> links;
    void on_loop_connection(transport::Connection& conn) override {
      if (auto l = links.lock(); l && !l->accept_connection(conn)) conn.close();
    }
    void on_message(transport::Stream& stream, std::string message) override {
      if (auto l = links.lock()) l->on_message(stream, std::move(message));
    }
    void on_stream_closed(transport::Stream& stream, std::optional<Error> error) override {
      if (auto l = links.lock()) l->on_stream_closed(stream, error);
    }
  };
  struct ClientHandler : transport::LoopProtocolHandler {
    std::weak_ptr<ClientService> clients;
    bool is_log_protocol = false;  // ALPN "aspen-logs": log subscriptions only
    void on_message(transport::Stream& stream, std::string message) override {
      if (auto c = clients.lock()) c->serve(stream, std::move(message), is_log_protocol);
    }
    void on_stream_closed(transport::Stream& stream, std::optional<Error> error) override {
      if (auto c = clients.lock()) c->on_stream_closed(stream, !error.has_value());
    }
    void on_connection_closed(transport::Connection& conn, const Error&) override {
      if (auto c = clients.lock()) c->on_connection_closed(conn.serial());
    }
  };
  auto raft_handler = std::make_shared<RaftHandler>();
  raft_handler->links = links_;
  auto client_handler = std::make_shared<ClientHandler>();
  client_handler->clients = clients_;
  if (auto s = env_.endpoint->register_handler(kRaftAlpn, raft_handler); !s) return s;
  // A peer's process found gone (ICMP unreachable): Raft hears at once (fast failover).
  env_.endpoint->set_peer_unreachable_handler([links = std::weak_ptr<RaftLinks>(links_)](const transport::PublicKey& key) {
    if (auto l = links.lock()) l->on_peer_unreachable(key);
  });
  auto logs_handler = std::make_shared<ClientHandler>();
  logs_handler->clients = clients_;
  logs_handler->is_log_protocol = true;
  if (auto s = env_.endpoint->register_handler(kClientAlpn, client_handler); !s) return s;
  if (auto s = env_.endpoint->register_handler(kBlobAlpn, blobs_->transfer_handler()); !s) return s;
  if (auto s = env_.endpoint->register_handler(kLogsAlpn, logs_handler); !s) return s;
  ASPEN_LOG_INFO("node {}: phase 4/6 protocol handlers: {}, {}, {}", config.node_id, kRaftAlpn, kClientAlpn,
                 kLogsAlpn);

  // Phase 5: peers from the configuration and the join ticket.
  std::promise<void> peers_done;
  env_.endpoint->post([this, &peers_done] {
    for (const auto& p : env_.config.peers) env_.peers.add_manual(PeerInfo{p.node_id, p.public_key, {p.addr}});
    if (env_.config.ticket) {
      for (const auto& p : env_.config.ticket->peers) {
        if (p.node_id != kNoNode) env_.peers.add_manual(PeerInfo{p.node_id, p.public_key, p.addrs});
      }
    }
    refresh_cluster_view();
    peers_done.set_value();
  });
  peers_done.get_future().wait();
  ASPEN_LOG_INFO("node {}: phase 5/6 peers: {} manual, {} from the ticket", config.node_id, config.peers.size(),
                 config.ticket ? config.ticket->peers.size() : 0);

  if (test_clock_file_) {
    ASPEN_LOG_WARN("node {}: FOR TESTS ONLY: the clock this node's heartbeats carry is shifted by the milliseconds in "
                   "{} (--test-clock-offset-file), re-read every {} ms",
                   config.node_id, test_clock_file_->path(), kTestClockOffsetPollMs);
  }

  // Phase 6: ticks (an asio timer on the loop) drive elections, heartbeats, timeouts and
  // lease expiry.
  env_.endpoint->post([self = weak_from_this()] {
    if (auto s = self.lock()) s->schedule_tick();
  });
  ASPEN_LOG_INFO("node {}: phase 6/6 running{}", config.node_id,
                 is_initialized() ? "" : "; not in a cluster yet: waiting for InitCluster or to be added");
  return {};
}

Status Shell::start_components() {
  StorageWorker::Hooks hooks;
  hooks.post = [ep = env_.endpoint.get()](std::function<void()> task) { ep->post(std::move(task)); };
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
  hooks.on_history = [self = weak_from_this()](Index after_index, std::vector<kvpb::HistoryEntry> entries) {
    if (auto s = self.lock(); s && !s->is_stopping_ && s->watches_) s->watches_->on_committed_changes(after_index, entries);
  };
  hooks.on_results = [self = weak_from_this()](std::shared_ptr<StorageJob>, std::vector<storage::AppliedEntry> results) {
    if (auto s = self.lock(); s && !s->is_stopping_ && s->core_) {
      s->core_->on_results_known(results);
      s->deliver_responses();
    }
  };
  storage_ = std::make_unique<StorageWorker>(*env_.store, env_.config.knobs, env_.config.node_id, std::move(hooks));
  links_ = std::make_shared<RaftLinks>(env_, *this);
  watches_ = std::make_shared<WatchService>(env_);
  clients_ = std::make_shared<ClientService>(env_, *this, handlers_, *watches_);
  admin_ = std::make_unique<AdminService>(env_, *this, *clients_, handlers_);
  alarms_ = std::make_unique<AlarmService>(env_, *this, *clients_, handlers_);
  clients_->register_handlers();
  admin_->register_handlers();
  alarms_->register_handlers();
  blobs_ = std::make_shared<BlobService>(env_, *this, *clients_, handlers_);
  if (auto s = blobs_->open(); !s) return s;
  blobs_->register_handlers();
  return {};
}

void Shell::stop() {
  if (!env_.endpoint && !storage_) return;
  ASPEN_LOG_INFO("node {}: stopping", env_.config.node_id);
  // Blob transfers and the blob worker stop waiting on the loop before it goes.
  if (blobs_) blobs_->begin_stop();
  if (env_.endpoint) {
    env_.endpoint->close();  // joins the loop: nothing touches the core after this
    ASPEN_LOG_INFO("node {}: closed the endpoint and its connections", env_.config.node_id);
  }
  // After the endpoint: a snapshot being streamed fails at once on the closed connection.
  if (links_) links_->stop();
  if (storage_) storage_->stop();
  storage_.reset();
  ASPEN_LOG_INFO("node {}: storage thread finished its last write", env_.config.node_id);
  if (blobs_) blobs_->join();
  blobs_.reset();
  alarms_.reset();
  admin_.reset();
  clients_.reset();
  links_.reset();
  core_.reset();
  env_.store.reset();
  env_.endpoint.reset();
  ASPEN_LOG_INFO("node {}: stopped", env_.config.node_id);
}

Status Shell::recreate_core() {
  NodeCoreConfig cc;
  cc.raft.id = env_.config.node_id;
  cc.raft.seed = randombytes_random() | (uint64_t{randombytes_random()} << 32);
  // A fresh nonce for every start: ReadIndex contexts of this life never repeat an earlier one.
  do {
    cc.incarnation = randombytes_random() | (uint64_t{randombytes_random()} << 32);
  } while (cc.incarnation == 0);
  cc.knobs = env_.config.knobs;  // Raft timing, timeouts and queue bounds
  // The hybrid logical clock's physical time: the wall clock heartbeats carry, test-only
  // offset included, so a test that shifts a node's clock shifts its HLC too.
  cc.hlc_physical_ms = [env = &env_] {
    const int64_t us = env->wall_clock_us();
    return us > 0 ? static_cast<uint64_t>(us / 1000) : uint64_t{0};
  };
  auto core = NodeCore::create(cc, *env_.store);
  if (!core) return std::unexpected(core.error());
  core_ = std::move(*core);
  lease_expiries_counted_ = 0;
  cycle_.emplace(env_.store->initial_state().hard_state);
  return {};
}

Status Shell::bootstrap(const pb::ConfState& cs) {
  // A write to the store, which must not race the storage thread.
  std::unique_lock write_lock(storage_->write_mutex(), std::try_to_lock);
  if (cycle_->is_in_flight() || !write_lock.owns_lock()) {
    return make_error(ErrorCode::kUnavailable, "the node is busy; retry");
  }
  if (auto s = env_.store->bootstrap(cs); !s) return s;
  write_lock.unlock();
  if (auto s = recreate_core(); !s) return s;
  refresh_cluster_view();
  return {};
}

Result<pb::SnapshotMetadata> Shell::trigger_snapshot() {
  // Compacting the log is a write, which must not race the storage thread.
  std::unique_lock write_lock(storage_->write_mutex(), std::try_to_lock);
  if (cycle_->is_in_flight() || !write_lock.owns_lock()) {
    return make_error(ErrorCode::kUnavailable, "a write is in progress; retry");
  }
  return env_.store->trigger_snapshot();
}

MetricsView Shell::metrics_view() {
  MetricsView v;
  v.node_id = env_.config.node_id;
  auto st = core_->raft().status();
  v.term = st.term;
  v.leader = st.leader;
  v.is_leader = core_->is_leader();
  v.commit = st.commit;
  v.applied = env_.store->applied_index();
  v.last_log_index = core_->raft().log().last_index();
  v.pending_requests = core_->pending_requests();
  read_counters(env_.counters, v);
  const auto& ss = storage_->stats();
  auto r = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  v.storage_batches = r(ss.batches);
  v.storage_batch_latency = ss.batch_latency.read();
  v.storage_entries = r(ss.entries);
  v.storage_log_writes = r(ss.log_writes);
  v.storage_log_write_latency = ss.log_write_latency.read();
  v.storage_applies = r(ss.applies);
  v.storage_apply_latency = ss.apply_latency.read();
  v.storage_compactions = r(ss.compactions);
  v.storage_quota_bytes = env_.config.storage_quota_bytes;
  v.storage_max_bytes = env_.config.storage_max_bytes;
  v.storage_min_free_bytes = env_.config.storage_min_free_bytes;
  v.watchers = watches_->watcher_count();
  v.watch_unacked_bytes = watches_->unacked_bytes();
  v.transport = env_.endpoint->metrics();
  v.component_samples = blobs_->prometheus_samples();
  const Knobs& k = env_.config.knobs;
  v.component_samples += env_.peer_monitor.prometheus_samples(
      env_.config.node_id, monitored_peers(core_->raft().tracker().config.to_conf_state(), env_.config.node_id),
      NodeEnv::steady_ms(), k.heartbeat_ms, k.election_timeout_ms);
  return v;
}

transport::SocketAddr Shell::local_addr() const { return env_.endpoint->local_addr(); }
transport::PublicKey Shell::public_key() const { return env_.identity->public_key(); }
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
  env_.endpoint->post([self = weak_from_this()] {
    if (auto s = self.lock()) {
      s->is_pump_scheduled_ = false;
      s->pump();
    }
  });
}

void Shell::pump() {
  if (is_stopping_ || !core_ || cycle_->is_in_flight()) return;
  const bool is_watched = watches_->watcher_count() > 0;
  core_->set_is_apply_awaited(is_watched);
  storage_->set_is_history_wanted(is_watched);
  auto step = cycle_->begin(*core_, env_.config.knobs.should_send_early);
  if (!step) {
    deliver_responses();
    return;
  }
  if (const auto& soft = step->ready->soft_state) {
    ASPEN_LOG_INFO("node {}: {} in term {}; leader {}", env_.config.node_id, raft::role_name(soft->role),
                   core_->raft().term(), soft->leader == kNoNode ? std::string("unknown") : std::to_string(soft->leader));
    clients_->on_leader_changed(soft->leader);
    env_.peer_monitor.on_leader(soft->leader, soft->role == raft::Role::kLeader, NodeEnv::steady_ms());
    if (soft->leader != kNoNode && soft->leader != last_leader_seen_) {
      env_.counters.leader_changes.fetch_add(1, std::memory_order_relaxed);
      last_leader_seen_ = soft->leader;
    }
  }
  // A leader's appends and heartbeats go out while its own fsync runs (commit clamped).
  links_->send(step->early);
  // Puts committed and durable here were answered when the Ready was taken.
  deliver_responses();
  auto job = std::make_shared<StorageJob>();
  job->step = std::move(*step);
  if (!job->step.needs_store) {
    // Only messages and read states: nothing to write.
    on_persisted(std::move(job), storage::WriteOutcome{});
    return;
  }
  if (!job->step.needs_log_write && job->step.is_apply_async) {
    // Only an asynchronous apply (a commit reaching entries already durable here): straight
    // to the apply thread, without a pass through the storage thread, whose write would be
    // empty. This is the path from a commit to the answers and watch events it releases.
    storage_->submit_apply(job);
    on_persisted(std::move(job), storage::WriteOutcome{});
    return;
  }
  if (const auto& snap = job->step.ready->snapshot) {
    // RaftLinks refuses MsgSnap outside a snapshot stream, and the core takes a snapshot
    // only from a message: every snapshot to install was staged. Without its data the
    // install would empty the state machine.
    const std::string* staged = links_->staged_snapshot(snap->metadata().index(), snap->metadata().term());
    ASPEN_ASSERT_MSG(staged != nullptr, "a snapshot to install has no staged data");
    env_.counters.snapshots_received.fetch_add(1, std::memory_order_relaxed);
    job->snapshot_path = *staged;
    job->step.batch.snapshot_data_path = &job->snapshot_path;
  }
  storage_->submit(std::move(job));
}

void Shell::on_log_durable(std::shared_ptr<StorageJob> job) {
  if (is_stopping_ || job->step.is_log_durable) return;
  auto messages = cycle_->log_durable(*core_, job->step);
  links_->send(messages);
  deliver_responses();
}

void Shell::on_storage_failure(std::string_view what, const Error& error, std::function<void()> retry) {
  env_.counters.storage_errors.fetch_add(1, std::memory_order_relaxed);
  ASPEN_LOG_ERROR("node {}: {} failed: {}", env_.config.node_id, what, error.to_string());
  if (error.code() == ErrorCode::kCorruption) {
    ASPEN_LOG_ERROR("node {}: the data directory is corrupt; this node stops serving until repaired",
                    env_.config.node_id);
    is_stopping_ = true;
    return;
  }
  // A full disk may be freed meanwhile.
  env_.endpoint->post_after(env_.config.knobs.storage_retry_delay_ms, std::move(retry));
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
  env_.counters.applied_commands.fetch_add(applied->size(), std::memory_order_relaxed);
  core_->on_applied(*job->step.to_apply, *applied);
  after_applies(false);
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
  env_.counters.applied_commands.fetch_add(outcome->applied.size(), std::memory_order_relaxed);
  // Ready contract step 3: messages go out after the state they depend on is durable.
  auto messages = cycle_->finish(*core_, job->step, *outcome);
  links_->send(messages);
  if (rd.snapshot) links_->drop_staged_up_to(rd.snapshot->metadata().index());
  after_applies(had_conf_change || rd.snapshot.has_value());
}

void Shell::after_applies(bool is_view_stale) {
  if (is_view_stale) refresh_cluster_view();
  if (!waiting_for_store_.empty() && !is_store_behind_answers()) {
    auto ready = std::move(waiting_for_store_);
    waiting_for_store_.clear();
    for (auto& fn : ready) fn();
  }
  admin_->on_applied(env_.store->applied_index());
  watches_->on_applied();
  deliver_responses();
  pump();
}

void Shell::schedule_tick() {
  // Each tick is scheduled from the previous one's deadline, so ticks do not drift when a
  // loop task runs long; after a stall the missed ones are not replayed in a burst.
  auto now = std::chrono::steady_clock::now();
  next_tick_at_ = std::max(next_tick_at_ + std::chrono::milliseconds(env_.config.knobs.tick_interval_ms), now);
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick_at_ - now).count();
  env_.endpoint->post_after(static_cast<uint32_t>(delay), [self = weak_from_this()] {
    auto s = self.lock();
    if (!s || s->is_stopping_) return;
    s->on_tick();
    s->schedule_tick();
  });
}

void Shell::on_tick() {
  if (is_stopping_) return;
  poll_test_clock();
  if (!core_) return;
  core_->tick(env_.now_ms());
  // The core counts from 0 in each life (recreate_core): the metric adds what it counted since.
  const uint64_t expiries = core_->lease_expiries_proposed();
  env_.counters.lease_expiries_proposed.fetch_add(expiries - lease_expiries_counted_, std::memory_order_relaxed);
  lease_expiries_counted_ = expiries;
  if (NodeEnv::steady_ms() >= last_refresh_ms_ + env_.config.knobs.cluster_view_refresh_ms) refresh_cluster_view();
  admin_->on_tick();
  alarms_->on_tick();
  blobs_->on_tick();
  watches_->on_tick();
  deliver_responses();
  schedule_pump();
}

void Shell::poll_test_clock() {
  if (!test_clock_file_) return;
  const uint64_t now = NodeEnv::steady_ms();
  if (now < next_test_clock_poll_ms_) return;
  next_test_clock_poll_ms_ = now + kTestClockOffsetPollMs;
  const auto change = test_clock_file_->poll();
  if (change.error) {
    ASPEN_LOG_ERROR("node {}: the test clock offset file {} (--test-clock-offset-file) {}; keeping the offset of {} ms",
                    env_.config.node_id, test_clock_file_->path(), *change.error,
                    env_.test_clock_offset_ms.load(std::memory_order_relaxed));
  }
  if (change.new_offset_ms) {
    ASPEN_LOG_INFO("node {}: test clock offset now {} ms (from {})", env_.config.node_id, *change.new_offset_ms,
                   test_clock_file_->path());
  }
}

// ---------------------------------------------------------------------------------------
// Requests into the core.

uint64_t Shell::begin_request(CoreDone done, bool is_write) {
  uint64_t id = next_request_id_++;
  waiting_.emplace(id, Waiting{std::move(done), is_write ? std::chrono::steady_clock::now()
                                                          : std::chrono::steady_clock::time_point{}});
  return id;
}

void Shell::submit_write(kvpb::Command cmd, CoreDone done) {
  core_->submit_write(begin_request(std::move(done), true), std::move(cmd), env_.now_ms());
  deliver_responses();
  schedule_pump();
}

void Shell::submit_read(kvpb::RangeRequest req, ReadConsistency consistency, CoreDone done) {
  core_->submit_read(begin_request(std::move(done), false), std::move(req), consistency, env_.now_ms());
  deliver_responses();
  schedule_pump();
}

bool Shell::is_store_behind_answers() {
  return core_ && env_.store->applied_index() < core_->answered_from_results_through();
}

void Shell::when_store_shows_answers(std::function<void()> fn) {
  // Bounded: past the limit a read goes ahead (it may miss a write answered a moment ago)
  // rather than the queue growing.
  if (!is_store_behind_answers() || waiting_for_store_.size() >= env_.config.knobs.max_pending_requests) return fn();
  waiting_for_store_.push_back(std::move(fn));
}

void Shell::submit_conf_change(const pb::ConfChange& cc, CoreDone done) {
  core_->submit_conf_change(begin_request(std::move(done), false), cc, env_.now_ms());
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
      env_.counters.core_writes_answered.fetch_add(1, std::memory_order_relaxed);
      env_.counters.core_write_latency.observe_us(static_cast<uint64_t>(us.count()));
    }
    CoreDone done = std::move(w.done);
    done(r);
  }
}

// ---------------------------------------------------------------------------------------
// What the cluster looks like: membership, member records, cluster id, ticket.

void Shell::refresh_cluster_view() {
  last_refresh_ms_ = NodeEnv::steady_ms();
  env_.peers.set_membership(env_.store->conf_state());
  kvpb::RangeRequest rr;
  rr.set_start(std::string(kNodeRecordPrefix));
  rr.set_is_prefix(true);
  rr.set_limit(limits::kMaxScanResults);
  if (auto r = env_.store->range(rr)) {
    env_.peers.set_records(std::vector<kvpb::KeyValue>(r->kvs().begin(), r->kvs().end()));
  }
  kvpb::RangeRequest id_req;
  id_req.set_start(std::string(kClusterIdKey));
  id_req.set_limit(1);
  if (auto r = env_.store->range(id_req); r && r->kvs_size() == 1 && r->kvs(0).key() == kClusterIdKey) {
    env_.cluster_id = r->kvs(0).value();
  }
  env_.load_auth_root_key();
  links_->on_peers_changed();
  // Before the cluster exists the ticket names only this node (enough for `cluster init`).
  std::string ticket = env_.build_ticket();
  std::lock_guard lock(view_mu_);
  ticket_view_ = std::move(ticket);
  is_initialized_view_ = env_.peers.has_membership();
}

// ---------------------------------------------------------------------------------------
// NodeEnv

void NodeEnv::load_auth_root_key() {
  if (auth_root_key) return;  // written once, with the cluster id; never changes
  auto r = store->range(kv::key_range(kAuthRootKeyKey));
  if (r && r->kvs_size() == 1 && r->kvs(0).value().size() == auth::kKeySizeBytes) {
    auth::KeyBytes key{};
    std::memcpy(key.data(), r->kvs(0).value().data(), key.size());
    auth_root_key = key;
  }
}

uint64_t NodeEnv::now_ms() const {
  const int64_t ms = wall_clock_us() / 1000;
  return ms > 0 ? static_cast<uint64_t>(ms) : 0;
}

int64_t NodeEnv::wall_clock_us() const {
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return static_cast<int64_t>(now.count()) + test_clock_offset_ms.load(std::memory_order_relaxed) * 1000;
}

uint64_t NodeEnv::steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

cpb::NodeAddress NodeEnv::address_of(const PeerInfo& p) const {
  cpb::NodeAddress a;
  a.set_node_id(p.id);
  a.set_public_key(p.key.to_string());
  for (const auto& s : p.addrs) a.add_addrs(s.to_string());
  return a;
}

const cpb::NodeAddress& NodeEnv::self_address() const {
  // Built once: every write's answer names this node (served_by), and neither the key nor
  // the bound address changes while the node runs.
  if (!self_address_) self_address_ = address_of(PeerInfo{config.node_id, identity->public_key(), {endpoint->local_addr()}});
  return *self_address_;
}

std::string NodeEnv::build_ticket() const {
  cluster::Ticket t;
  t.cluster_id = cluster_id;
  for (const auto& p : peers.reachable_members()) {
    if (t.peers.size() >= cluster::kMaxTicketPeers) break;
    t.peers.push_back(cluster::TicketPeer{p.id, p.key, p.addrs});
  }
  if (t.peers.empty()) t.peers.push_back(cluster::TicketPeer{config.node_id, identity->public_key(), {endpoint->local_addr()}});
  // With gossip on, the ticket lets a holder without the cookie follow it (read-only).
  if (config.gossip.is_enabled) t.gossip_follow_topic = gossip_follow_topic(gossip_topic(config.cookie));
  return cluster::encode_ticket(t);
}

}  // namespace internal
}  // namespace aspen::node
