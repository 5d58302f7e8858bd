// BlobService (blob_service.h): the requests on "aspen-client", the holder and tag records
// in the KV, and the shared helpers of transfers, replication and GC.
#include "node/blob_service.h"

#include <pthread.h>

#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "blob/byte_range.h"
#include "blob/range_encoder.h"
#include "blob/range_verifier.h"
#include "core/assert.h"
#include "core/encoding.h"
#include "core/log.h"
#include "kv/commands.h"
#include "node/blob_keys.h"

namespace aspen::node::internal {

namespace {

using blob::Blake3Hash;

std::string raw(const Blake3Hash& h) { return std::string(reinterpret_cast<const char*>(h.data()), h.size()); }

cpb::Response invalid(std::string message) {
  return rpc::error_response(Error(ErrorCode::kInvalidArgument, std::move(message)));
}

Status command_status(const Response& r) {
  if (!r.write) return std::unexpected(r.write.error());
  if (r.write->error_code() != 0) {
    return make_error(static_cast<ErrorCode>(r.write->error_code()), r.write->error_message());
  }
  return {};
}

}  // namespace

BlobService::BlobService(NodeEnv& env, CorePort& port, ClientService& clients, rpc::HandlerRegistry& handlers)
    : env_(env), port_(port), clients_(clients), handlers_(handlers) {}

BlobService::~BlobService() {
  begin_stop();
  join();
}

Status BlobService::open() {
  blob::BlobStoreOptions o;
  o.dir = env_.config.data_dir + "/blobs";
  o.max_blob_size_bytes = env_.config.knobs.blob_max_size_bytes;
  auto store = blob::BlobStore::open(std::move(o));
  if (!store) return std::unexpected(store.error());
  store_ = std::move(*store);
  worker_ = std::thread([this] { worker_main(); });
  return {};
}

void BlobService::register_handlers() {
  using R = cpb::Request;
  auto bind = [this](void (BlobService::*fn)(const cpb::Request&, Reply)) {
    return [this, fn](const cpb::Request& req, Reply reply) { (this->*fn)(req, std::move(reply)); };
  };
  handlers_.add(R::kBlobStatus, "blob_status", bind(&BlobService::handle_status));
  handlers_.add(R::kBlobList, "blob_list", bind(&BlobService::handle_list));
  handlers_.add(R::kBlobTagSet, "blob_tag_set", bind(&BlobService::handle_tag_set));
  handlers_.add(R::kBlobTagDelete, "blob_tag_delete", bind(&BlobService::handle_tag_delete));
  handlers_.add(R::kBlobTagList, "blob_tag_list", bind(&BlobService::handle_tag_list));
  handlers_.add(R::kBlobGc, "blob_gc", bind(&BlobService::handle_gc));
  handlers_.add(R::kBlobHoldersUpdate, "blob_holders_update", bind(&BlobService::handle_holders_update));
  auto streamed_only = [](const cpb::Request&, Reply reply) {
    reply(invalid(fmt::format("blob add and get are streamed on ALPN {}, not on the client protocol's", kBlobAlpn)));
  };
  handlers_.add(R::kBlobAdd, "blob_add", streamed_only);
  handlers_.add(R::kBlobGet, "blob_get", streamed_only);
}

void BlobService::begin_stop() {
  is_stopping_ = true;
  std::lock_guard lock(worker_mu_);
  worker_cv_.notify_all();
}

void BlobService::join() {
  if (worker_.joinable()) worker_.join();
}

std::string BlobService::prometheus_samples() const {
  std::string out;
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    out += fmt::format("# HELP aspen_blob_{} {}\n# TYPE aspen_blob_{} {}\naspen_blob_{}{{node_id=\"{}\"}} {}\n", name,
                       help, name, type, name, env_.config.node_id, value);
  };
  if (store_ == nullptr) return out;
  const auto& st = store_->stats();
  const auto& c = counters_;
  metric("stored", "gauge", "Blobs this node stores.", store_->blob_count());
  metric("imports_total", "counter", "Imports (adds and fetches) that stored a new blob.", st.imports.load());
  metric("imports_deduplicated_total", "counter", "Imports of a blob this node already stored.",
         st.imports_deduplicated.load());
  metric("imports_failed_total", "counter", "Imports that failed (too large, wrong hash, I/O).", st.imports_failed.load());
  metric("imported_bytes_total", "counter", "Bytes of new blobs stored.", st.bytes_imported.load());
  metric("corruptions_detected_total", "counter",
         "Reads that found a damaged blob on this node (it was not served, and was dropped to be fetched again).",
         st.corruptions_detected.load());
  metric("removed_total", "counter", "Blobs removed by GC or because damaged.", st.blobs_removed.load());
  metric("transfers_active", "gauge", "Add and get streams being served.", c.transfers_active.load());
  metric("transfers_refused_total", "counter", "Transfers refused over knob blob_max_transfers.", c.transfers_refused.load());
  metric("gets_served_total", "counter", "Gets (clients' and members') served to the end.", c.gets_served.load());
  metric("served_bytes_total", "counter", "Range-encoded bytes sent.", c.bytes_served.load());
  metric("fetches_completed_total", "counter", "Blobs replicated to this node.", c.fetches_completed.load());
  metric("fetches_failed_total", "counter", "Replication fetches that gave up (no holder could serve them).",
         c.fetches_failed.load());
  metric("fetch_attempts_failed_total", "counter", "Holders that failed a fetch (the next one went on).",
         c.fetch_attempts_failed.load());
  metric("fetched_bytes_total", "counter", "Bytes of blobs replicated to this node.", c.bytes_fetched.load());
  metric("gc_runs_total", "counter", "Blob GC runs.", c.gc_runs.load());
  metric("gc_removed_total", "counter", "Blobs GC removed.", c.gc_removed.load());
  return out;
}

// ---------------------------------------------------------------------------------------
// Records in the KV [loop].

Result<std::vector<std::pair<std::string, Blake3Hash>>> BlobService::read_tags() const {
  std::vector<std::pair<std::string, Blake3Hash>> out;
  kvpb::RangeRequest rr;
  rr.set_start(std::string(kBlobTagPrefix));
  rr.set_end(prefix_end(kBlobTagPrefix));
  rr.set_limit(limits::kMaxScanResults);
  for (;;) {
    auto page = env_.store->range(rr);
    if (!page) return std::unexpected(page.error());
    for (const auto& kv : page->kvs()) {
      auto h = blob_hash_from_bytes(kv.value());
      if (h) out.emplace_back(kv.key().substr(kBlobTagPrefix.size()), *h);
    }
    if (!page->has_more()) break;
    rr.set_continuation(page->continuation());
    rr.set_revision(page->revision());
  }
  return out;
}

std::vector<NodeId> BlobService::read_holders(const Blake3Hash& hash) const {
  auto r = env_.store->range(kv::key_range(blob_holders_key(hash)));
  if (!r || r->kvs_size() == 0) return {};
  return decode_blob_holders(r->kvs(0).value());
}

void BlobService::handle_holders_update(const cpb::Request& req, Reply reply) {
  const auto& u = req.blob_holders_update();
  if (!env_.peers.members().contains(u.node_id())) {
    return reply(invalid(fmt::format("node {} is not a member; only members hold blobs for the cluster", u.node_id())));
  }
  if (static_cast<size_t>(u.add_size() + u.remove_size()) > kMaxBlobsPerHoldersUpdate) {
    return reply(invalid(fmt::format("a holder update names at most {} blobs (kMaxBlobsPerHoldersUpdate)",
                                     kMaxBlobsPerHoldersUpdate)));
  }
  for (const auto* list : {&u.add(), &u.remove()}) {
    for (const auto& h : *list) {
      if (auto ok = blob_hash_from_bytes(h); !ok) return reply(rpc::error_response(ok.error()));
    }
  }
  if (port_.core() == nullptr) return reply(rpc::error_response(Error(ErrorCode::kUnavailable, "the node is stopping")));
  if (!port_.core()->is_leader()) return clients_.forward_to_leader(req, std::move(reply));
  update_holders_on_leader(u, 1, std::move(reply));
}

void BlobService::update_holders_on_leader(const cpb::BlobHoldersUpdateRequest& u, int attempt, Reply reply) {
  // Read-modify-write of each blob's holder list, as one transaction whose compares pin the
  // versions read: a concurrent update of the same list makes it fail, and it runs again.
  kvpb::Command cmd;
  auto* txn = cmd.mutable_txn();
  auto change = [&](const std::string& raw_hash, bool is_add) {
    const Blake3Hash h = *blob_hash_from_bytes(raw_hash);
    const std::string key = blob_holders_key(h);
    uint64_t mod_revision = 0;
    std::vector<NodeId> holders;
    if (auto r = env_.store->range(kv::key_range(key)); r && r->kvs_size() == 1) {
      mod_revision = r->kvs(0).mod_revision();
      holders = decode_blob_holders(r->kvs(0).value());
    }
    std::erase(holders, u.node_id());
    if (is_add) holders.push_back(u.node_id());
    auto* c = txn->add_compares();
    c->set_key(key);
    c->set_target(kvpb::Compare::TARGET_MOD_REVISION);
    c->set_op(kvpb::Compare::OP_EQUAL);
    c->set_number(mod_revision);
    auto* op = txn->add_success();
    if (holders.empty()) {
      op->mutable_delete_()->set_key(key);
    } else {
      op->mutable_put()->set_key(key);
      op->mutable_put()->set_value(encode_blob_holders(holders));
    }
  };
  for (const auto& h : u.add()) change(h, true);
  for (const auto& h : u.remove()) change(h, false);
  if (txn->compares_size() == 0) {
    cpb::Response resp;
    resp.mutable_blob_holders_update();
    return reply(std::move(resp));
  }
  port_.submit_write(std::move(cmd), [this, u, attempt, reply](const Response& r) {
    if (auto s = command_status(r); !s) return reply(rpc::error_response(s.error()));
    if (!r.write->succeeded()) {
      // Another update of one of these lists committed first (perhaps not yet applied
      // here): read again in a moment.
      if (attempt >= kMaxBlobHoldersUpdateAttempts) {
        return reply(rpc::error_response(Error(
            ErrorCode::kUnavailable,
            fmt::format("blob holder records kept changing for {} attempts (kMaxBlobHoldersUpdateAttempts); retry",
                        kMaxBlobHoldersUpdateAttempts))));
      }
      env_.endpoint->post_after(10, [self = weak_from_this(), u, attempt, reply] {
        if (auto s = self.lock(); s && s->port_.core() != nullptr && s->port_.core()->is_leader()) {
          s->update_holders_on_leader(u, attempt + 1, reply);
        } else {
          reply(rpc::error_response(Error(ErrorCode::kUnavailable, "leadership changed during a blob holder update")));
        }
      });
      return;
    }
    cpb::Response resp;
    resp.mutable_blob_holders_update();
    reply(std::move(resp));
  });
}

void BlobService::update_own_holders(const std::vector<Blake3Hash>& add, const std::vector<Blake3Hash>& remove,
                                     Reply reply) {
  ASPEN_ASSERT(add.size() + remove.size() <= kMaxBlobsPerHoldersUpdate);
  cpb::Request req;
  auto* u = req.mutable_blob_holders_update();
  u->set_node_id(env_.config.node_id);
  for (const auto& h : add) u->add_add(raw(h));
  for (const auto& h : remove) u->add_remove(raw(h));
  handle_holders_update(req, std::move(reply));
}

// ---------------------------------------------------------------------------------------
// Client requests [loop].

void BlobService::handle_status(const cpb::Request& req, Reply reply) {
  auto hash = blob_hash_from_bytes(req.blob_status().hash());
  if (!hash) return reply(rpc::error_response(hash.error()));
  cpb::Response resp;
  auto* out = resp.mutable_blob_status();
  out->set_node_id(env_.config.node_id);
  if (auto info = store_->stat(*hash)) {
    out->set_is_stored_here(true);
    out->set_size_bytes(info->size_bytes);
    out->set_added_ms(info->added_ms);
  }
  for (NodeId id : read_holders(*hash)) out->add_holders(id);
  auto tags = read_tags();
  if (!tags) return reply(rpc::error_response(tags.error()));
  for (const auto& [name, h] : *tags) {
    if (h == *hash) out->add_tags(name);
  }
  reply(std::move(resp));
}

void BlobService::handle_list(const cpb::Request& req, Reply reply) {
  const auto& r = req.blob_list();
  std::optional<Blake3Hash> after;
  if (!r.after_hash().empty()) {
    auto h = blob_hash_from_bytes(r.after_hash());
    if (!h) return reply(rpc::error_response(h.error()));
    after = *h;
  }
  const size_t limit = r.limit() == 0 ? blob::kMaxBlobListPage : std::min<size_t>(r.limit(), blob::kMaxBlobListPage);
  auto page = store_->list(after, limit + 1);
  cpb::Response resp;
  auto* out = resp.mutable_blob_list();
  out->set_node_id(env_.config.node_id);
  out->set_has_more(page.size() > limit);
  if (page.size() > limit) page.pop_back();
  for (const auto& b : page) {
    auto* e = out->add_blobs();
    e->set_hash(raw(b.hash));
    e->set_size_bytes(b.size_bytes);
    e->set_added_ms(b.added_ms);
  }
  reply(std::move(resp));
}

void BlobService::handle_tag_set(const cpb::Request& req, Reply reply) {
  const auto& r = req.blob_tag_set();
  if (auto s = check_blob_tag_name(r.name()); !s) return reply(rpc::error_response(s.error()));
  auto hash = blob_hash_from_bytes(r.hash());
  if (!hash) return reply(rpc::error_response(hash.error()));
  if (port_.core() == nullptr) return reply(rpc::error_response(Error(ErrorCode::kUnavailable, "the node is stopping")));
  if (!port_.core()->is_leader()) return clients_.forward_to_leader(req, std::move(reply));
  // The tag is set only while some member is recorded holding the blob, in the same
  // transaction: a member's GC withdraws its record before it removes a blob (see the header).
  kvpb::Command cmd;
  auto* txn = cmd.mutable_txn();
  auto* c = txn->add_compares();
  c->set_key(blob_holders_key(*hash));
  c->set_target(kvpb::Compare::TARGET_VERSION);
  c->set_op(kvpb::Compare::OP_GREATER);
  c->set_number(0);
  auto* put = txn->add_success()->mutable_put();
  put->set_key(blob_tag_key(r.name()));
  put->set_value(r.hash());
  port_.submit_write(std::move(cmd), [reply, r, hash = *hash](const Response& w) {
    if (auto s = command_status(w); !s) return reply(rpc::error_response(s.error()));
    if (!w.write->succeeded()) {
      return reply(rpc::error_response(
          Error(ErrorCode::kNotFound, fmt::format("no member holds blob {}; add it first (aspen-cli blob add)",
                                                  blob::hash_to_hex(hash)))));
    }
    cpb::Response resp;
    auto* t = resp.mutable_blob_tag()->add_tags();
    t->set_name(r.name());
    t->set_hash(r.hash());
    reply(std::move(resp));
  });
}

void BlobService::handle_tag_delete(const cpb::Request& req, Reply reply) {
  const auto& name = req.blob_tag_delete().name();
  if (auto s = check_blob_tag_name(name); !s) return reply(rpc::error_response(s.error()));
  if (port_.core() == nullptr) return reply(rpc::error_response(Error(ErrorCode::kUnavailable, "the node is stopping")));
  if (!port_.core()->is_leader()) return clients_.forward_to_leader(req, std::move(reply));
  kvpb::Command cmd;
  cmd.mutable_delete_()->set_key(blob_tag_key(name));
  port_.submit_write(std::move(cmd), [reply](const Response& w) {
    if (auto s = command_status(w); !s) return reply(rpc::error_response(s.error()));
    cpb::Response resp;
    resp.mutable_blob_tag()->set_was_present(w.write->deleted() > 0);
    reply(std::move(resp));
  });
}

void BlobService::handle_tag_list(const cpb::Request& req, Reply reply) {
  const auto& r = req.blob_tag_list();
  const size_t limit = r.limit() == 0 ? kMaxBlobTagListPage : std::min<size_t>(r.limit(), kMaxBlobTagListPage);
  kvpb::RangeRequest rr;
  rr.set_start(r.after_name().empty() ? std::string(kBlobTagPrefix) : blob_tag_key(r.after_name()) + '\0');
  rr.set_end(prefix_end(kBlobTagPrefix));
  rr.set_limit(static_cast<uint32_t>(limit));
  if (port_.core() == nullptr) return reply(rpc::error_response(Error(ErrorCode::kUnavailable, "the node is stopping")));
  port_.submit_read(std::move(rr), ReadConsistency::kLinearizable, [reply](const Response& rd) {
    if (!rd.read) return reply(rpc::error_response(rd.read.error()));
    cpb::Response resp;
    auto* out = resp.mutable_blob_tag();
    for (const auto& kv : rd.read->kvs()) {
      auto* t = out->add_tags();
      t->set_name(kv.key().substr(kBlobTagPrefix.size()));
      t->set_hash(kv.value());
    }
    out->set_has_more(rd.read->has_more());
    reply(std::move(resp));
  });
}

void BlobService::handle_gc(const cpb::Request&, Reply reply) {
  // The reply is sent from the loop; the run happens on the worker.
  auto on_loop = [ep = env_.endpoint, reply](cpb::Response resp) {
    ep->post([reply, resp = std::move(resp)] { reply(resp); });
  };
  bool is_queued = enqueue([this, on_loop] {
    cpb::Response resp;
    *resp.mutable_blob_gc() = run_gc();
    on_loop(std::move(resp));
  });
  if (!is_queued) {
    reply(rpc::error_response(Error(ErrorCode::kUnavailable,
                                    fmt::format("the blob worker has {} tasks queued (kMaxBlobWorkerQueue); retry",
                                                kMaxBlobWorkerQueue))));
  }
}

// ---------------------------------------------------------------------------------------
// Periodic work [loop].

void BlobService::on_tick() {
  if (store_ == nullptr || port_.core() == nullptr || !env_.peers.has_membership()) return;
  const Knobs& k = env_.config.knobs;
  const uint64_t now = NodeEnv::steady_ms();
  if (now >= last_replication_ms_ + k.blob_replication_interval_ms) {
    last_replication_ms_ = now;
    schedule_replication();
  }
  if (k.blob_gc_interval_ms != 0 && now >= last_gc_ms_ + k.blob_gc_interval_ms) {
    if (last_gc_ms_ != 0) {
      std::unique_lock lock(worker_mu_);
      const bool is_queued = is_gc_queued_;
      lock.unlock();
      if (!is_queued) (void)enqueue([this] { (void)run_gc(); });
    }
    last_gc_ms_ = now;
  }
}

void BlobService::schedule_replication() {
  const NodeId self = env_.config.node_id;
  if (!env_.peers.members().contains(self)) return;
  auto tags = read_tags();
  if (!tags) return;
  const auto& k = env_.config.knobs;
  size_t factor = k.blob_replication_factor;
  if (factor == 0) factor = env_.store->conf_state().voters_size();
  std::set<Blake3Hash> wanted;
  for (const auto& [name, h] : *tags) wanted.insert(h);
  for (const auto& h : wanted) {
    auto holders = read_holders(h);
    if (holders.empty() || holders.size() >= factor) continue;
    if (std::find(holders.begin(), holders.end(), self) != holders.end()) continue;
    if (store_->stat(h)) {
      // Held but not recorded (a record lost to a failed update): record it again.
      update_own_holders({h}, {}, [](cpb::Response) {});
      continue;
    }
    std::vector<FetchSource> sources;
    for (NodeId id : holders) {
      if (auto p = env_.peers.lookup(id); p && !p->addrs.empty()) sources.push_back(FetchSource{id, p->key, p->addrs});
    }
    if (sources.empty()) continue;
    {
      std::lock_guard lock(worker_mu_);
      if (fetching_.contains(h)) continue;
    }
    bool is_queued = enqueue([this, h, sources] { fetch(h, sources); });
    if (is_queued) {
      std::lock_guard lock(worker_mu_);
      fetching_.insert(h);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The worker.

bool BlobService::enqueue(std::function<void()> task) {
  std::lock_guard lock(worker_mu_);
  if (is_stopping_ || worker_queue_.size() >= kMaxBlobWorkerQueue) return false;
  worker_queue_.push_back(std::move(task));
  worker_cv_.notify_one();
  return true;
}

void BlobService::worker_main() {
  pthread_setname_np(pthread_self(), "blob-worker");
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(worker_mu_);
      worker_cv_.wait(lock, [&] { return is_stopping_ || !worker_queue_.empty(); });
      if (is_stopping_) return;
      task = std::move(worker_queue_.front());
      worker_queue_.pop_front();
    }
    task();
  }
}

cpb::Response BlobService::run_on_loop(std::function<void(Reply)> fn) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<cpb::Response> resp;
  };
  auto w = std::make_shared<Waiter>();
  env_.endpoint->post([w, fn = std::move(fn)] {
    fn([w](cpb::Response r) {
      std::lock_guard lock(w->mu);
      if (!w->resp) w->resp = std::move(r);
      w->cv.notify_all();
    });
  });
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(env_.config.knobs.request_timeout_ms + 5000);
  std::unique_lock lock(w->mu);
  while (!w->resp) {
    if (is_stopping_) return rpc::error_response(Error(ErrorCode::kUnavailable, "the node is stopping"));
    if (std::chrono::steady_clock::now() >= deadline) {
      return rpc::error_response(Error(ErrorCode::kTimeout, "the node did not answer an internal blob request in time"));
    }
    w->cv.wait_for(lock, std::chrono::milliseconds(100));
  }
  return std::move(*w->resp);
}

void BlobService::drop_damaged(const Blake3Hash& hash) {
  ASPEN_LOG_ERROR("node {}: blob {} is damaged on disk; dropping it so that replication fetches a good copy",
                  env_.config.node_id, blob::hash_to_hex(hash));
  (void)store_->remove(hash);
  (void)run_on_loop([this, hash](Reply done) {
    if (auto s = weak_from_this().lock()) s->update_own_holders({}, {hash}, std::move(done));
  });
}

cpb::BlobGcResponse BlobService::run_gc() {
  {
    std::lock_guard lock(worker_mu_);
    is_gc_queued_ = false;
  }
  counters_.gc_runs.fetch_add(1);
  const uint64_t now = env_.now_ms();
  const uint64_t grace = env_.config.knobs.blob_gc_grace_ms;
  blob::GcReport report;
  cpb::BlobGcResponse out;
  out.set_node_id(env_.config.node_id);
  auto finish = [&] {
    out.set_scanned(report.scanned);
    out.set_removed(report.removed);
    out.set_removed_bytes(report.removed_bytes);
    out.set_kept_tagged(report.kept_protected);
    out.set_kept_young(report.kept_young);
    out.set_kept_in_use(report.kept_in_use);
    counters_.gc_removed.fetch_add(report.removed);
    if (report.removed > 0) {
      ASPEN_LOG_INFO("node {}: blob GC removed {} blobs ({}), kept {} tagged, {} young, {} in use", env_.config.node_id,
                     report.removed, format_mib(report.removed_bytes), report.kept_protected, report.kept_young,
                     report.kept_in_use);
    }
    return out;
  };
  // 1. Tags as this node knows them now: a cheap first filter.
  // Shared with the loop task, which may outlive a wait that timed out.
  auto tagged_box = std::make_shared<std::set<Blake3Hash>>();
  const std::set<Blake3Hash>& tagged = *tagged_box;
  auto read_tag_set = [&](bool is_linearizable) -> bool {
    cpb::Response r = run_on_loop([this, is_linearizable, tagged_box](Reply done) {
      auto self = weak_from_this().lock();
      if (!self || port_.core() == nullptr) return done(rpc::error_response(Error(ErrorCode::kUnavailable, "stopping")));
      auto collect = [this, tagged_box, done] {
        auto tags = read_tags();
        if (!tags) return done(rpc::error_response(tags.error()));
        tagged_box->clear();
        for (const auto& [name, h] : *tags) tagged_box->insert(h);
        done(cpb::Response{});
      };
      if (!is_linearizable) return collect();
      // A linearizable read of one key is the barrier: once it returns, the applied state
      // holds every tag committed before it began.
      port_.submit_read(kv::key_range(kBlobTagPrefix), ReadConsistency::kLinearizable,
                        [collect, done](const Response& rd) {
                          if (!rd.read) return done(rpc::error_response(rd.read.error()));
                          collect();
                        });
    });
    return !r.has_error();
  };
  if (!read_tag_set(false)) return finish();
  std::vector<Blake3Hash> candidates;
  std::optional<Blake3Hash> cursor;
  bool is_exhausted = false;
  while (!is_exhausted && !is_stopping_) {
    auto page = store_->gc_candidates(cursor, is_exhausted, blob::kMaxBlobListPage, now, grace, report);
    for (const auto& b : page) {
      if (tagged.contains(b.hash)) {
        ++report.kept_protected;
      } else {
        candidates.push_back(b.hash);
      }
    }
  }
  if (candidates.empty()) return finish();
  // 2. Withdraw this node's holder records: from here on no new tag can name these blobs
  // unless another member holds them too.
  auto update = [&](const std::vector<Blake3Hash>& hashes, bool is_add) -> bool {
    for (size_t i = 0; i < hashes.size(); i += kMaxBlobsPerHoldersUpdate) {
      std::vector<Blake3Hash> batch(hashes.begin() + static_cast<long>(i),
                                    hashes.begin() + static_cast<long>(std::min(hashes.size(), i + kMaxBlobsPerHoldersUpdate)));
      cpb::Response r = run_on_loop([this, batch, is_add](Reply done) {
        if (auto s = weak_from_this().lock()) {
          is_add ? update_own_holders(batch, {}, std::move(done)) : update_own_holders({}, batch, std::move(done));
        }
      });
      if (r.has_error()) {
        ASPEN_LOG_WARN("node {}: blob GC could not update holder records: {}", env_.config.node_id, r.error().message());
        return false;
      }
    }
    return true;
  };
  std::vector<Blake3Hash> kept;
  if (!update(candidates, false) || !read_tag_set(true)) {
    kept = candidates;
  } else {
    // 3. Tags as of now (linearizable): a tag set before the withdrawal shows here.
    for (const auto& h : candidates) {
      if (tagged.contains(h)) {
        ++report.kept_protected;
        kept.push_back(h);
        continue;
      }
      auto removed = store_->remove_if_collectable(h, now, grace, report);
      if (!removed || (!*removed && store_->stat(h))) kept.push_back(h);
    }
  }
  // 4. Blobs kept after all are held again.
  if (!kept.empty()) (void)update(kept, true);
  return finish();
}

}  // namespace aspen::node::internal
