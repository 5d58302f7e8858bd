#include "storage/lmdb_store.h"

#include <sodium.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "core/assert.h"
#include "core/encoding.h"
#include "core/limits.h"
#include "kv/command_hlc.h"
#include "kv/mvcc.h"
#include "kv/state_machine.h"
#include "storage/lmdb_internal.h"
#include "storage/snapshot_format.h"

namespace aspen::storage {

namespace {

constexpr char kMetaHardState[] = "hard_state";
constexpr char kMetaConfState[] = "conf_state";
constexpr char kMetaApplied[] = "applied";      // u64 index, u64 term
constexpr char kMetaCompacted[] = "compacted";  // u64 index, u64 term
constexpr char kMetaAppliedHlc[] = "applied_hlc";  // kvpb::Hlc: ApplyState::hlc (absent: none)

// A log record as an earlier version kept it in LMDB: u32 CRC-32 of the rest, u64 term,
// serialized Entry. Read only to move such a log into the Wal.
Result<std::string_view> check_log_record(std::string_view rec, Index index) {
  Decoder d(rec);
  auto crc = d.get_u32_be();
  if (!crc || d.remaining() < 8) {
    return make_error(ErrorCode::kCorruption, fmt::format("log entry {} is truncated", index));
  }
  std::string_view body = rec.substr(4);
  auto actual = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()),
                                            static_cast<uInt>(body.size())));
  if (actual != *crc) {
    return make_error(ErrorCode::kCorruption, fmt::format("log entry {} fails its checksum", index));
  }
  return body;
}

Result<pb::Entry> decode_log_record(std::string_view rec, Index index) {
  auto body = check_log_record(rec, index);
  if (!body) return std::unexpected(body.error());
  pb::Entry e;
  if (!e.ParseFromArray(body->data() + 8, static_cast<int>(body->size() - 8)) || e.index() != index) {
    return make_error(ErrorCode::kCorruption, fmt::format("log entry {} does not parse", index));
  }
  return e;
}

Status put_raw(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value, const char* what) {
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  int rc = mdb_put(txn, dbi, &k, &v, 0);
  if (rc != 0) return std::unexpected(lmdb_error(rc, what));
  return {};
}

Result<std::optional<std::string>> get_raw(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = to_val(key);
  MDB_val v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>{};
  if (rc != 0) return std::unexpected(lmdb_error(rc, "read metadata"));
  return std::optional<std::string>(std::string(from_val(v)));
}

struct Position {
  Index index = 0;
  Term term = 0;
};

// A log position stored with position() under `key` of the meta table (nullopt: none stored).
Result<std::optional<Position>> get_position(MDB_txn* txn, MDB_dbi meta, std::string_view key) {
  auto raw = get_raw(txn, meta, key);
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<Position>{};
  Decoder d(**raw);
  auto index = d.get_u64_be();
  auto term = index ? d.get_u64_be() : index;
  if (!term) return make_error(ErrorCode::kCorruption, fmt::format("stored {} position is malformed", key));
  return std::optional<Position>(Position{*index, *term});
}

std::string position(Index index, Term term) {
  std::string out;
  put_u64_be(out, index);
  put_u64_be(out, term);
  return out;
}

Status put_applied_hlc(MDB_txn* txn, MDB_dbi meta, const std::optional<HlcTimestamp>& t) {
  if (t) {
    kvpb::Hlc h;
    kv::to_proto(*t, &h);
    return put_raw(txn, meta, kMetaAppliedHlc, h.SerializeAsString(), "save applied stamp");
  }
  MDB_val key = to_val(kMetaAppliedHlc);
  if (int rc = mdb_del(txn, meta, &key, nullptr); rc != 0 && rc != MDB_NOTFOUND) {
    return std::unexpected(lmdb_error(rc, "clear applied stamp"));
  }
  return {};
}

Result<std::optional<HlcTimestamp>> get_applied_hlc(MDB_txn* txn, MDB_dbi meta) {
  auto raw = get_raw(txn, meta, kMetaAppliedHlc);
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<HlcTimestamp>{};
  kvpb::Hlc h;
  if (!h.ParseFromString(**raw)) return make_error(ErrorCode::kCorruption, "stored applied stamp does not parse");
  return std::optional<HlcTimestamp>(kv::from_proto(h));
}

}  // namespace

LmdbStore::LmdbStore(MDB_env* env, std::string dir, const LmdbOptions& options)
    : env_(env),
      dir_(std::move(dir)),
      max_snapshot_bytes_(options.max_snapshot_bytes),
      is_snapshot_data_streamed_(options.is_snapshot_data_streamed),
      dbi_(std::make_unique<Dbis>()) {}

LmdbStore::~LmdbStore() {
  if (env_ != nullptr) mdb_env_close(env_);
}

Result<std::unique_ptr<LmdbStore>> LmdbStore::open(const LmdbOptions& options) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  if (::mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("cannot create data directory {}: {}", options.dir, std::strerror(errno)));
  }
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "create LMDB environment"));
  std::unique_ptr<LmdbStore> store(new LmdbStore(env, options.dir, options));
  if ((rc = mdb_env_set_maxdbs(env, 12)) != 0 || (rc = mdb_env_set_mapsize(env, options.map_size_bytes)) != 0) {
    return std::unexpected(lmdb_error(rc, "configure LMDB environment"));
  }
  // MDB_NOTLS: read transactions are not tied to threads (the loop thread and the storage
  // thread both read). Syncs stay on: commit returns only once the data is durable.
  rc = mdb_env_open(env, options.dir.c_str(), MDB_NOTLS, 0600);
  if (rc != 0) {
    return std::unexpected(lmdb_error(rc, fmt::format("open data store in {}", options.dir)));
  }
  auto txn = LmdbTxn::begin(env, false);
  if (!txn) return std::unexpected(txn.error());
  struct Named {
    const char* name;
    MDB_dbi* dbi;
  } names[] = {{"log", &store->dbi_->log},
               {"meta", &store->dbi_->meta},
               {"kv", &store->dbi_->kv},
               {"leases", &store->dbi_->leases},
               {"lease_keys", &store->dbi_->lease_keys},
               {"lease_expiry", &store->dbi_->lease_expiry},
               {"history", &store->dbi_->history},
               {"history_keys", &store->dbi_->history_keys}};
  for (const auto& n : names) {
    const unsigned flags = n.dbi == &store->dbi_->history_keys ? MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED : MDB_CREATE;
    if ((rc = mdb_dbi_open(txn->get(), n.name, flags, n.dbi)) != 0) {
      return std::unexpected(lmdb_error(rc, fmt::format("open table {}", n.name)));
    }
  }
  // A data directory from before the expiry index: build it once from the leases.
  MDB_stat leases{}, expiry{};
  if ((rc = mdb_stat(txn->get(), store->dbi_->leases, &leases)) != 0 ||
      (rc = mdb_stat(txn->get(), store->dbi_->lease_expiry, &expiry)) != 0) {
    return std::unexpected(lmdb_error(rc, "count leases"));
  }
  if (leases.ms_entries > 0 && expiry.ms_entries == 0) {
    LmdbTables tables(txn->get(), *store->dbi_);
    auto all = tables.list_leases(0, SIZE_MAX);
    if (!all) return std::unexpected(all.error());
    for (const auto& l : *all) {
      if (auto s = tables.put_lease(l); !s) return std::unexpected(s.error());
    }
  }
  if (auto s = txn->commit(); !s) return std::unexpected(s.error());
  if (auto s = store->load_cache(); !s) return std::unexpected(s.error());
  const std::string wal_dir = options.dir + "/wal";
  struct stat st {};
  const bool is_wal_new = ::stat(wal_dir.c_str(), &st) != 0;
  WalOptions wo;
  wo.dir = wal_dir;
  wo.segment_size_bytes = options.wal_segment_size_bytes;
  auto wal = Wal::open(wo, WalFloor{store->compacted_index_, store->compacted_term_});
  if (!wal) return std::unexpected(wal.error());
  store->wal_ = std::move(*wal);
  if (auto s = store->migrate_log_to_wal(is_wal_new); !s) return std::unexpected(s.error());
  return store;
}

Status LmdbStore::migrate_log_to_wal(bool is_wal_new) {
  auto txn = LmdbTxn::begin(env_, false);
  if (!txn) return std::unexpected(txn.error());
  auto hs_raw = get_raw(txn->get(), dbi_->meta, kMetaHardState);
  if (!hs_raw) return std::unexpected(hs_raw.error());
  MDB_stat log_stat{};
  if (int rc = mdb_stat(txn->get(), dbi_->log, &log_stat); rc != 0) return std::unexpected(lmdb_error(rc, "read log table"));
  if (!*hs_raw && log_stat.ms_entries == 0) return {};
  // Only a Wal created just now takes the old log: once it holds it (synced), a crash
  // before the LMDB copy is cleared must not copy it a second time over newer records.
  if (is_wal_new) {
    pb::HardState hs;
    if (*hs_raw && !hs.ParseFromString(**hs_raw)) return make_error(ErrorCode::kCorruption, "hard state does not parse");
    std::vector<pb::Entry> entries;
    MDB_cursor* cur = nullptr;
    int rc = mdb_cursor_open(txn->get(), dbi_->log, &cur);
    if (rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
    MDB_val k;
    MDB_val v;
    Status read_status;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && read_status; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      Decoder d(from_val(k));
      auto idx = d.get_u64_be();
      if (!idx) {
        read_status = make_error(ErrorCode::kCorruption, "malformed log key");
        break;
      }
      if (*idx <= compacted_index_) continue;
      auto e = decode_log_record(from_val(v), *idx);
      if (!e) {
        read_status = std::unexpected(e.error());
        break;
      }
      entries.push_back(std::move(*e));
    }
    mdb_cursor_close(cur);
    if (!read_status) return read_status;
    WalWrite w;
    w.hard_state = *hs_raw ? &hs : nullptr;
    w.entries = &entries;
    if (auto s = wal_->write(w); !s) return s;
  }
  if (int rc = mdb_drop(txn->get(), dbi_->log, 0); rc != 0) return std::unexpected(lmdb_error(rc, "clear the old log table"));
  MDB_val key = to_val(kMetaHardState);
  if (int rc = mdb_del(txn->get(), dbi_->meta, &key, nullptr); rc != 0 && rc != MDB_NOTFOUND) {
    return std::unexpected(lmdb_error(rc, "clear the old hard state"));
  }
  return txn->commit();
}

Status LmdbStore::load_cache() {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  auto cs = get_raw(txn->get(), dbi_->meta, kMetaConfState);
  auto applied = get_position(txn->get(), dbi_->meta, kMetaApplied);
  auto compacted = get_position(txn->get(), dbi_->meta, kMetaCompacted);
  auto applied_hlc = get_applied_hlc(txn->get(), dbi_->meta);
  if (!cs) return make_error(ErrorCode::kCorruption, "cannot read store metadata");
  if (!applied) return std::unexpected(applied.error());
  if (!compacted) return std::unexpected(compacted.error());
  if (!applied_hlc) return std::unexpected(applied_hlc.error());
  std::lock_guard lock(mu_);
  if (*cs && !applied_.conf_state.ParseFromString(**cs)) {
    return make_error(ErrorCode::kCorruption, "membership does not parse");
  }
  if (*applied) {
    applied_.applied = (*applied)->index;
    applied_.applied_term = (*applied)->term;
  }
  applied_.hlc = *applied_hlc;
  if (*compacted) {
    compacted_index_ = (*compacted)->index;
    compacted_term_ = (*compacted)->term;
  }
  if (compacted_index_ > applied_.applied) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("the log is compacted to {} but only {} is applied", compacted_index_, applied_.applied));
  }
  return {};
}

Status LmdbStore::install_snapshot(const WriteBatch& batch) {
  auto txn = LmdbTxn::begin(env_, false);
  if (!txn) return std::unexpected(txn.error());
  MDB_txn* t = txn->get();
  LmdbTables tables(t, *dbi_);
  const auto& meta = batch.snapshot->metadata();
  for (MDB_dbi d : {dbi_->kv, dbi_->leases, dbi_->lease_keys, dbi_->lease_expiry, dbi_->history, dbi_->history_keys}) {
    if (int rc = mdb_drop(t, d, 0); rc != 0) return std::unexpected(lmdb_error(rc, "clear table for snapshot"));
  }
  auto applied_hlc = load_batch_snapshot(batch, tables);
  if (!applied_hlc) return std::unexpected(applied_hlc.error());
  ApplyState applied{meta.index(), meta.term(), meta.conf_state(), *applied_hlc};
  if (auto s = put_applied_hlc(t, dbi_->meta, applied.hlc); !s) return s;
  if (auto s = put_raw(t, dbi_->meta, kMetaCompacted, position(meta.index(), meta.term()), "save compaction point"); !s) return s;
  if (auto s = put_raw(t, dbi_->meta, kMetaApplied, position(meta.index(), meta.term()), "save applied index"); !s) return s;
  if (auto s = put_raw(t, dbi_->meta, kMetaConfState, meta.conf_state().SerializeAsString(), "save membership"); !s) return s;
  // Fully synced, before the Wal's reset: replay reconciles a log that a crash in between
  // left behind (Wal::open keeps it only if it agrees with the snapshot's last entry).
  if (auto s = txn->commit(); !s) return s;
  std::lock_guard lock(mu_);
  applied_ = std::move(applied);
  compacted_index_ = meta.index();
  compacted_term_ = meta.term();
  return {};
}

Status LmdbStore::write_log(const WriteBatch& batch) {
  WalWrite w;
  if (batch.snapshot != nullptr) {
    if (auto s = install_snapshot(batch); !s) return s;
    w.reset = WalReset{batch.snapshot->metadata().index(), batch.snapshot->metadata().term()};
  }
  // A hard state that only moves the commit index is not written (the commit index need not
  // be durable; initial_state() never reports less than the applied index).
  w.hard_state = may_skip_sync(batch) ? nullptr : batch.hard_state;
  w.entries = batch.entries;
  w.is_sync = !may_skip_sync(batch);
  return wal_->write(w);
}

Result<std::vector<AppliedEntry>> LmdbStore::apply(const WriteBatch& batch) {
  if (batch.committed == nullptr || batch.committed->empty()) return std::vector<AppliedEntry>{};
  ApplyState applied;
  {
    std::lock_guard lock(mu_);
    applied = applied_;
  }
  if (batch.committed->back().index() <= applied.applied) return std::vector<AppliedEntry>{};
  const std::optional<HlcTimestamp> before_hlc = applied.hlc;
  auto txn = LmdbTxn::begin(env_, false);
  if (!txn) return std::unexpected(txn.error());
  MDB_txn* t = txn->get();
  LmdbTables tables(t, *dbi_);
  // Watchers may have the changes from here on, while the commit below syncs them (store.h).
  auto results = apply_batch(tables, batch, applied);
  if (!results) return std::unexpected(results.error());
  if (auto s = put_raw(t, dbi_->meta, kMetaApplied, position(applied.applied, applied.applied_term), "save applied index"); !s) {
    return std::unexpected(s.error());
  }
  if (applied.hlc != before_hlc) {
    if (auto s = put_applied_hlc(t, dbi_->meta, applied.hlc); !s) return std::unexpected(s.error());
  }
  bool has_conf_change = false;
  for (const auto& a : *results) has_conf_change |= a.type == pb::ENTRY_CONF_CHANGE;
  if (has_conf_change) {
    if (auto s = put_raw(t, dbi_->meta, kMetaConfState, applied.conf_state.SerializeAsString(), "save membership"); !s) {
      return std::unexpected(s.error());
    }
  }
  // The Wal holds every entry above the durable applied index, so an apply need not survive
  // an OS crash: skip LMDB's meta-page flush (the database stays intact; the last commits
  // may be undone and are replayed). A membership change is flushed in full: operators act
  // on it (decommissioning a removed node) once it is answered.
  const bool is_meta_sync_skipped = !has_conf_change;
  if (is_meta_sync_skipped) mdb_env_set_flags(env_, MDB_NOMETASYNC, 1);
  auto committed = txn->commit();
  if (is_meta_sync_skipped) mdb_env_set_flags(env_, MDB_NOMETASYNC, 0);
  if (!committed) return std::unexpected(committed.error());
  std::lock_guard lock(mu_);
  applied_ = std::move(applied);
  return std::move(*results);
}

Result<kvpb::RangeResult> LmdbStore::range(const kvpb::RangeRequest& request) const {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  return kv::read_range(tables, request);
}

Result<std::vector<kvpb::Lease>> LmdbStore::list_leases(uint64_t after_id, size_t limit) const {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  return tables.list_leases(after_id, limit);
}

Result<std::vector<uint64_t>> LmdbStore::expired_leases(uint64_t now_ms, size_t limit) const {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  return kv::expired_leases(tables, now_ms, limit);
}

Result<kv::HistoryPage> LmdbStore::read_history(Index revision, uint32_t position, size_t limit, size_t max_bytes,
                                                bool with_prev) const {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  auto page = kv::read_history(tables, revision, position, limit, max_bytes, with_prev);
  if (!page) return page;
  // The applied index of the same transaction: the page holds every change up to it.
  auto applied = get_position(txn->get(), dbi_->meta, kMetaApplied);
  if (!applied) return std::unexpected(applied.error());
  if (*applied) page->applied = (*applied)->index;
  return page;
}

Result<std::optional<Index>> LmdbStore::history_retention_target(uint64_t now_ms, uint64_t keep_revisions,
                                                                 uint64_t max_age_ms) const {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  return kv::retention_target(tables, now_ms, keep_revisions, max_age_ms, kRetentionExamined);
}

std::optional<HlcTimestamp> LmdbStore::applied_hlc() const {
  std::lock_guard lock(mu_);
  return applied_.hlc;
}

Index LmdbStore::applied_index() const {
  std::lock_guard lock(mu_);
  return applied_.applied;
}

pb::ConfState LmdbStore::conf_state() const {
  std::lock_guard lock(mu_);
  return applied_.conf_state;
}

Status LmdbStore::bootstrap(const pb::ConfState& voters) {
  {
    std::lock_guard lock(mu_);
    if (wal_->last_index() != 0 || applied_.applied != 0 || wal_->hard_state().term() != 0) {
      return make_error(ErrorCode::kInvalidArgument, "the store already holds a cluster's state");
    }
  }
  pb::Snapshot boot;
  boot.mutable_metadata()->set_index(1);
  boot.mutable_metadata()->set_term(1);
  *boot.mutable_metadata()->mutable_conf_state() = voters;
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  WriteBatch b;
  b.snapshot = &boot;
  b.hard_state = &hs;
  auto r = write(b);
  if (!r) return std::unexpected(r.error());
  return {};
}

Status LmdbStore::compact(Index index) {
  {
    std::lock_guard lock(mu_);
    if (index > applied_.applied) return make_error(ErrorCode::kInvalidArgument, "cannot compact past the applied index");
    if (index <= compacted_index_) return make_error(ErrorCode::kCompacted, "already compacted");
  }
  auto term_at = wal_->term(index);
  if (!term_at) return std::unexpected(term_at.error());
  // A fully synced commit: it makes every earlier apply durable too, so the entries the
  // Wal drops next can never be needed for a replay.
  auto txn = LmdbTxn::begin(env_, false);
  if (!txn) return std::unexpected(txn.error());
  if (auto s = put_raw(txn->get(), dbi_->meta, kMetaCompacted, position(index, *term_at), "save compaction point"); !s) return s;
  if (auto s = txn->commit(); !s) return s;
  {
    std::lock_guard lock(mu_);
    compacted_index_ = index;
    compacted_term_ = *term_at;
  }
  return wal_->compact(index);
}

uint64_t LmdbStore::log_size_bytes() const { return wal_->size_bytes(); }

Result<pb::SnapshotMetadata> LmdbStore::stream_snapshot(
    const std::function<Status(std::string_view chunk)>& sink) const {
  // One read transaction: every record and the metadata come from the same instant.
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  ChunkWriter w(sink);
  auto applied_hlc = get_applied_hlc(txn->get(), dbi_->meta);
  if (!applied_hlc) return std::unexpected(applied_hlc.error());
  w.set_applied_hlc(*applied_hlc);
  if (auto s = tables.for_each_kv([&](const kvpb::KeyValue& kv) { return w.add_kv(kv); }); !s) {
    return std::unexpected(s.error());
  }
  auto leases = tables.list_leases(0, kNoLimit);
  if (!leases) return std::unexpected(leases.error());
  for (const auto& l : *leases) {
    if (auto s = w.add_lease(l); !s) return std::unexpected(s.error());
  }
  if (auto s = tables.for_each_lease_key([&](uint64_t id, std::string_view k) { return w.add_lease_key(id, k); }); !s) {
    return std::unexpected(s.error());
  }
  if (auto s = w.add_all_history(tables); !s) return std::unexpected(s.error());
  if (auto s = w.finish(); !s) return std::unexpected(s.error());
  return snapshot_metadata(txn->get());
}

Result<pb::SnapshotMetadata> LmdbStore::snapshot_metadata(MDB_txn* txn) const {
  auto applied = get_position(txn, dbi_->meta, kMetaApplied);
  auto cs = get_raw(txn, dbi_->meta, kMetaConfState);
  if (!applied && applied.error().code() == ErrorCode::kCorruption) return std::unexpected(applied.error());
  if (!applied || !*applied || !cs) return make_error(ErrorCode::kUnavailableSnapshot, "nothing applied yet");
  pb::SnapshotMetadata meta;
  meta.set_index((*applied)->index);
  meta.set_term((*applied)->term);
  if (*cs && !meta.mutable_conf_state()->ParseFromString(**cs)) {
    return make_error(ErrorCode::kCorruption, "membership does not parse");
  }
  return meta;
}

raft::InitialState LmdbStore::initial_state() const {
  pb::HardState hs = wal_->hard_state();
  std::lock_guard lock(mu_);
  // The commit index need not be durable, the applied one is: whatever was applied was
  // committed.
  if (hs.commit() < applied_.applied) hs.set_commit(applied_.applied);
  return raft::InitialState{hs, applied_.conf_state};
}

Result<std::vector<pb::Entry>> LmdbStore::entries(Index lo, Index hi, uint64_t max_size_bytes) const {
  return wal_->entries(lo, hi, max_size_bytes);
}

Result<Term> LmdbStore::term(Index i) const { return wal_->term(i); }

Index LmdbStore::first_index() const { return wal_->base_index() + 1; }

Index LmdbStore::last_index() const { return wal_->last_index(); }

Result<pb::Snapshot> LmdbStore::snapshot() const {
  if (!is_snapshot_data_streamed_) return build_snapshot(*this, max_snapshot_bytes_);
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  auto meta = snapshot_metadata(txn->get());
  if (!meta) return std::unexpected(meta.error());
  pb::Snapshot snap;
  *snap.mutable_metadata() = std::move(*meta);
  return snap;
}

uint64_t LmdbStore::state_size_bytes() const {
  // The pages every table holds (the main database lists the named ones); pages on LMDB's
  // free list are not counted: they are reused before the file grows.
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return 0;
  uint64_t pages = 0;
  auto add = [&pages](const MDB_stat& st) { pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages; };
  MDB_stat st{};
  if (mdb_env_stat(env_, &st) == 0) add(st);
  for (MDB_dbi dbi : {dbi_->log, dbi_->meta, dbi_->kv, dbi_->leases, dbi_->lease_keys, dbi_->lease_expiry, dbi_->history,
                     dbi_->history_keys}) {
    if (mdb_stat(txn->get(), dbi, &st) == 0) add(st);
  }
  return pages * st.ms_psize;
}

uint64_t LmdbStore::file_size_bytes() const {
  struct stat st {};
  std::string path = dir_ + "/data.mdb";
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size) + wal_->disk_size_bytes();
}

}  // namespace aspen::storage
