#include "storage/mem_store.h"

#include "core/assert.h"
#include "core/limits.h"
#include "kv/mvcc.h"
#include "kv/state_machine.h"
#include "storage/snapshot_format.h"

namespace aspen::storage {

MemStore::MemStore() : current_(std::make_unique<State>()) {}

namespace {
// The only way a MemStore log write can fail is checked before anything changes, so a write
// is all or nothing without copying the state.
Status check_batch(const WriteBatch& batch, Index last_index) {
  if (batch.snapshot != nullptr) last_index = batch.snapshot->metadata().index();
  if (batch.entries != nullptr && !batch.entries->empty() &&
      batch.entries->front().index() > last_index + 1) {
    return make_error(ErrorCode::kInvalidArgument, "appended entries leave a gap in the log");
  }
  return {};
}
}  // namespace

void MemStore::mark_sm_synced() { sm_synced_.reset(); }

Status MemStore::write_log(const WriteBatch& batch) {
  std::lock_guard lock(mu_);
  if (auto s = check_batch(batch, current_->log.last_index()); !s) return s;
  State& st = *current_;
  if (is_auto_sync_ && batch.hard_state != nullptr) {
    if (!may_skip_sync(batch)) {
      hard_state_synced_.reset();
    } else if (!hard_state_synced_) {
      hard_state_synced_ = st.log.hard_state();
    }
  }
  if (batch.snapshot != nullptr) {
    const auto& meta = batch.snapshot->metadata();
    kv::MemKvTables fresh;
    auto applied_hlc = load_batch_snapshot(batch, fresh);
    if (!applied_hlc) return std::unexpected(applied_hlc.error());
    if (auto s = st.log.apply_snapshot(*batch.snapshot); !s) return s;
    st.tables = std::move(fresh);
    st.applied = ApplyState{meta.index(), meta.term(), meta.conf_state(), *applied_hlc};
    st.log.set_conf_state(st.applied.conf_state);
    mark_sm_synced();
  }
  if (batch.entries != nullptr && !batch.entries->empty()) {
    auto s = st.log.append(*batch.entries);
    ASPEN_ASSERT_MSG(s.has_value(), "append was checked");
  }
  if (batch.hard_state != nullptr) st.log.set_hard_state(*batch.hard_state);
  return {};
}

Result<std::vector<AppliedEntry>> MemStore::apply(const WriteBatch& batch) {
  std::lock_guard lock(mu_);
  State& st = *current_;
  if (batch.committed == nullptr || batch.committed->empty() || batch.committed->back().index() <= st.applied.applied) {
    return std::vector<AppliedEntry>{};
  }
  Index next = st.applied.applied + 1;
  for (const auto& e : *batch.committed) {
    if (e.index() < next) continue;
    if (e.index() != next || e.index() > st.log.last_index()) {
      return make_error(ErrorCode::kCorruption, "committed entries to apply are not the log's next ones");
    }
    ++next;
  }
  if (is_auto_sync_ && sm_synced_ == nullptr) sm_synced_ = std::make_unique<SmState>(SmState{st.tables, st.applied});
  auto applied = apply_batch(st.tables, batch, st.applied);
  ASPEN_ASSERT_MSG(applied.has_value(), "in-memory apply cannot fail after the checks");
  st.log.set_conf_state(st.applied.conf_state);
  for (const auto& a : *applied) {
    if (a.type == pb::ENTRY_CONF_CHANGE) mark_sm_synced();  // LmdbStore syncs these in full
  }
  return std::move(*applied);
}

Result<kvpb::RangeResult> MemStore::range(const kvpb::RangeRequest& request) const {
  std::lock_guard lock(mu_);
  return kv::read_range(current_->tables, request);
}

Result<std::vector<kvpb::Lease>> MemStore::list_leases(uint64_t after_id, size_t limit) const {
  std::lock_guard lock(mu_);
  return current_->tables.list_leases(after_id, limit);
}

Result<std::vector<uint64_t>> MemStore::expired_leases(uint64_t now_ms, size_t limit) const {
  std::lock_guard lock(mu_);
  return kv::expired_leases(current_->tables, now_ms, limit);
}

Result<kv::HistoryPage> MemStore::read_history(Index revision, uint32_t position, size_t limit, size_t max_bytes,
                                               bool with_prev) const {
  std::lock_guard lock(mu_);
  auto page = kv::read_history(current_->tables, revision, position, limit, max_bytes, with_prev);
  if (page) page->applied = current_->applied.applied;
  return page;
}

Result<std::optional<Index>> MemStore::history_retention_target(uint64_t now_ms, uint64_t keep_revisions,
                                                                uint64_t max_age_ms) const {
  std::lock_guard lock(mu_);
  return kv::retention_target(current_->tables, now_ms, keep_revisions, max_age_ms, kRetentionExamined);
}

Index MemStore::applied_index() const {
  std::lock_guard lock(mu_);
  return current_->applied.applied;
}

std::optional<HlcTimestamp> MemStore::applied_hlc() const {
  std::lock_guard lock(mu_);
  return current_->applied.hlc;
}

pb::ConfState MemStore::conf_state() const {
  std::lock_guard lock(mu_);
  return current_->applied.conf_state;
}

Status MemStore::bootstrap(const pb::ConfState& voters) {
  std::lock_guard lock(mu_);
  if (current_->log.last_index() != 0 || current_->applied.applied != 0) {
    return make_error(ErrorCode::kInvalidArgument, "the store already holds a cluster's state");
  }
  pb::Snapshot boot;
  boot.mutable_metadata()->set_index(1);
  boot.mutable_metadata()->set_term(1);
  *boot.mutable_metadata()->mutable_conf_state() = voters;
  if (auto s = current_->log.apply_snapshot(boot); !s) return s;
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  current_->log.set_hard_state(hs);
  current_->applied = ApplyState{1, 1, voters, std::nullopt};
  return {};
}

Status MemStore::compact(Index index) {
  std::lock_guard lock(mu_);
  if (index > current_->applied.applied) {
    return make_error(ErrorCode::kInvalidArgument, "cannot compact past the applied index");
  }
  auto s = current_->log.compact(index);
  if (s) mark_sm_synced();  // LmdbStore makes every apply durable before it compacts
  return s;
}

uint64_t MemStore::log_size_bytes() const {
  std::lock_guard lock(mu_);
  return current_->log.size_bytes();
}

uint64_t MemStore::state_size_bytes() const {
  std::lock_guard lock(mu_);
  return current_->tables.kv_bytes();
}

Result<pb::SnapshotMetadata> MemStore::stream_snapshot(
    const std::function<Status(std::string_view chunk)>& sink) const {
  std::lock_guard lock(mu_);
  const State& st = *current_;
  ChunkWriter w(sink);
  w.set_applied_hlc(st.applied.hlc);
  kv::MemKvTables& tables = const_cast<kv::MemKvTables&>(st.tables);  // read-only use below
  auto kvs = tables.scan("", "", std::nullopt, kNoLimit, kNoLimit);  // the simulator's small stores
  if (!kvs) return std::unexpected(kvs.error());
  for (const auto& kv : *kvs) {
    if (auto s = w.add_kv(kv); !s) return std::unexpected(s.error());
  }
  auto leases = tables.list_leases(0, kNoLimit);
  if (!leases) return std::unexpected(leases.error());
  for (const auto& l : *leases) {
    if (auto s = w.add_lease(l); !s) return std::unexpected(s.error());
    auto keys = tables.keys_of_lease(l.id());
    if (!keys) return std::unexpected(keys.error());
    for (const auto& k : *keys) {
      if (auto s = w.add_lease_key(l.id(), k); !s) return std::unexpected(s.error());
    }
  }
  if (auto s = w.add_all_history(tables); !s) return std::unexpected(s.error());
  if (auto s = w.finish(); !s) return std::unexpected(s.error());
  pb::SnapshotMetadata meta;
  meta.set_index(st.applied.applied);
  meta.set_term(st.applied.applied_term);
  *meta.mutable_conf_state() = st.applied.conf_state;
  return meta;
}

raft::InitialState MemStore::initial_state() const {
  std::lock_guard lock(mu_);
  raft::InitialState init = current_->log.initial_state();
  // As LmdbStore: whatever was applied was committed, durable commit index or not.
  if (init.hard_state.commit() < current_->applied.applied) init.hard_state.set_commit(current_->applied.applied);
  return init;
}

Result<std::vector<pb::Entry>> MemStore::entries(Index lo, Index hi, uint64_t max_size_bytes) const {
  std::lock_guard lock(mu_);
  return current_->log.entries(lo, hi, max_size_bytes);
}

Result<Term> MemStore::term(Index i) const {
  std::lock_guard lock(mu_);
  return current_->log.term(i);
}

Index MemStore::first_index() const {
  std::lock_guard lock(mu_);
  return current_->log.first_index();
}

Index MemStore::last_index() const {
  std::lock_guard lock(mu_);
  return current_->log.last_index();
}

Result<pb::Snapshot> MemStore::snapshot() const { return build_snapshot(*this, limits::kMaxSnapshotSizeBytes); }

void MemStore::set_auto_sync(bool is_on) {
  std::lock_guard lock(mu_);
  is_auto_sync_ = is_on;
  durable_ = is_on ? nullptr : std::make_unique<State>(*current_);
  sm_synced_.reset();
  hard_state_synced_.reset();
}

void MemStore::sync() {
  std::lock_guard lock(mu_);
  if (!is_auto_sync_) durable_ = std::make_unique<State>(*current_);
}

void MemStore::crash() {
  std::lock_guard lock(mu_);
  if (!is_auto_sync_) {
    current_ = std::make_unique<State>(*durable_);
    return;
  }
  if (sm_synced_ != nullptr) {
    current_->tables = std::move(sm_synced_->tables);
    current_->applied = std::move(sm_synced_->applied);
    current_->log.set_conf_state(current_->applied.conf_state);
    sm_synced_.reset();
  }
  if (hard_state_synced_) {
    current_->log.set_hard_state(*hard_state_synced_);
    hard_state_synced_.reset();
  }
}

}  // namespace aspen::storage
