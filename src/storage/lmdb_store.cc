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
#include "kv/state_machine.h"
#include "storage/lmdb_internal.h"
#include "storage/snapshot_format.h"

namespace aspen::storage {

namespace {

// Pages a table occupies (branch, leaf and overflow), in bytes: O(1), from the table record.
uint64_t table_size_bytes(MDB_txn* txn, MDB_dbi dbi) {
  MDB_stat st{};
  if (mdb_stat(txn, dbi, &st) != 0) return 0;
  return uint64_t{st.ms_psize} * (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages);
}

constexpr char kMetaHardState[] = "hard_state";
constexpr char kMetaConfState[] = "conf_state";
constexpr char kMetaApplied[] = "applied";      // u64 index, u64 term
constexpr char kMetaCompacted[] = "compacted";  // u64 index, u64 term

std::string index_key(Index i) {
  std::string out;
  put_u64_be(out, i);
  return out;
}

// A log record: u32 CRC-32 of the rest, u64 term, serialized Entry. The term is outside the
// protobuf so term() needs no parse; the checksum catches torn or rotted records.
std::string encode_log_record(const pb::Entry& e) {
  std::string body;
  put_u64_be(body, e.term());
  e.AppendToString(&body);
  std::string out;
  auto crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()),
                                         static_cast<uInt>(body.size())));
  put_u32_be(out, crc);
  out += body;
  return out;
}

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

std::string position(Index index, Term term) {
  std::string out;
  put_u64_be(out, index);
  put_u64_be(out, term);
  return out;
}

// Deletes the log records with from <= index <= upto.
Status delete_log_range(MDB_txn* txn, MDB_dbi log, Index from, Index upto) {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn, log, &cur);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  std::string start = index_key(from);
  MDB_val k = to_val(start);
  MDB_val v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == 0) {
    Decoder d(from_val(k));
    auto idx = d.get_u64_be();
    if (!idx || *idx > upto) break;
    if ((rc = mdb_cursor_del(cur, 0)) != 0) break;
    // After a delete the cursor rests on the next record (NOTFOUND/EINVAL past the end).
    rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL) return std::unexpected(lmdb_error(rc, "delete log entries"));
  return {};
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
  if ((rc = mdb_env_set_maxdbs(env, 8)) != 0 || (rc = mdb_env_set_mapsize(env, options.map_size_bytes)) != 0) {
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
               {"lease_keys", &store->dbi_->lease_keys}};
  for (const auto& n : names) {
    if ((rc = mdb_dbi_open(txn->get(), n.name, MDB_CREATE, n.dbi)) != 0) {
      return std::unexpected(lmdb_error(rc, fmt::format("open table {}", n.name)));
    }
  }
  store->log_size_bytes_ = table_size_bytes(txn->get(), store->dbi_->log);
  if (auto s = txn->commit(); !s) return std::unexpected(s.error());
  if (auto s = store->load_cache(); !s) return std::unexpected(s.error());
  return store;
}

Status LmdbStore::load_cache() {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  auto parse_position = [](const std::optional<std::string>& raw, Index& index, Term& term) -> Status {
    if (!raw) return {};
    Decoder d(*raw);
    auto i = d.get_u64_be();
    auto t = i ? d.get_u64_be() : i;
    if (!t) return make_error(ErrorCode::kCorruption, "stored log position is malformed");
    index = *i;
    term = *t;
    return {};
  };
  auto hs = get_raw(txn->get(), dbi_->meta, kMetaHardState);
  auto cs = get_raw(txn->get(), dbi_->meta, kMetaConfState);
  auto applied = get_raw(txn->get(), dbi_->meta, kMetaApplied);
  auto compacted = get_raw(txn->get(), dbi_->meta, kMetaCompacted);
  if (!hs || !cs || !applied || !compacted) return make_error(ErrorCode::kCorruption, "cannot read store metadata");
  std::lock_guard lock(mu_);
  if (*hs && !hard_state_.ParseFromString(**hs)) return make_error(ErrorCode::kCorruption, "hard state does not parse");
  if (*cs && !applied_.conf_state.ParseFromString(**cs)) {
    return make_error(ErrorCode::kCorruption, "membership does not parse");
  }
  if (auto s = parse_position(*applied, applied_.applied, applied_.applied_term); !s) return s;
  if (auto s = parse_position(*compacted, compacted_index_, compacted_term_); !s) return s;
  // The last log index: the highest stored entry, or the compaction point.
  last_index_ = compacted_index_;
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn->get(), dbi_->log, &cur);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  MDB_val k;
  MDB_val v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
  if (rc == 0) {
    Decoder d(from_val(k));
    auto idx = d.get_u64_be();
    if (!idx) {
      mdb_cursor_close(cur);
      return make_error(ErrorCode::kCorruption, "malformed log key");
    }
    last_index_ = std::max(last_index_, *idx);
  }
  mdb_cursor_close(cur);
  if (hard_state_.commit() > last_index_) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("commit index {} is beyond the last stored entry {}", hard_state_.commit(), last_index_));
  }
  if (applied_.applied > hard_state_.commit() && hard_state_.commit() != 0) {
    return make_error(ErrorCode::kCorruption, "applied index is beyond the commit index");
  }
  return {};
}

Result<WriteOutcome> LmdbStore::write(const WriteBatch& batch) {
  auto txn = LmdbTxn::begin(env_, false);
  if (!txn) return std::unexpected(txn.error());
  MDB_txn* t = txn->get();
  LmdbTables tables(t, *dbi_);
  WriteOutcome out;
  ApplyState applied;
  Index compacted_index;
  Term compacted_term;
  Index last_index;
  {
    std::lock_guard lock(mu_);
    applied = applied_;
    compacted_index = compacted_index_;
    compacted_term = compacted_term_;
    last_index = last_index_;
  }
  if (batch.snapshot != nullptr) {
    const auto& meta = batch.snapshot->metadata();
    for (MDB_dbi d : {dbi_->kv, dbi_->leases, dbi_->lease_keys, dbi_->log}) {
      if (int rc = mdb_drop(t, d, 0); rc != 0) return std::unexpected(lmdb_error(rc, "clear table for snapshot"));
    }
    if (auto s = load_batch_snapshot(batch, tables); !s) return std::unexpected(s.error());
    applied = ApplyState{meta.index(), meta.term(), meta.conf_state()};
    compacted_index = meta.index();
    compacted_term = meta.term();
    last_index = meta.index();
    if (auto s = put_raw(t, dbi_->meta, kMetaCompacted, position(compacted_index, compacted_term), "save compaction point"); !s) {
      return std::unexpected(s.error());
    }
  }
  if (batch.entries != nullptr && !batch.entries->empty()) {
    Index first = batch.entries->front().index();
    if (first > last_index + 1) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("appending entry {} after {} would leave a gap", first, last_index));
    }
    // A conflicting suffix from an older leader is replaced (§5.3).
    if (first <= last_index) {
      if (auto s = delete_log_range(t, dbi_->log, first, kNoLimit); !s) return std::unexpected(s.error());
    }
    for (const auto& e : *batch.entries) {
      if (e.index() <= compacted_index) continue;
      if (auto s = put_raw(t, dbi_->log, index_key(e.index()), encode_log_record(e), "append log entry"); !s) {
        return std::unexpected(s.error());
      }
    }
    last_index = batch.entries->back().index();
    out.entries_appended = batch.entries->size();
  }
  if (batch.hard_state != nullptr) {
    if (auto s = put_raw(t, dbi_->meta, kMetaHardState, batch.hard_state->SerializeAsString(), "save hard state"); !s) {
      return std::unexpected(s.error());
    }
  }
  if (batch.committed != nullptr && !batch.committed->empty()) {
    auto results = apply_entries(tables, *batch.committed, applied);
    if (!results) return std::unexpected(results.error());
    out.applied = std::move(*results);
  }
  if (batch.snapshot != nullptr || !out.applied.empty()) {
    if (auto s = put_raw(t, dbi_->meta, kMetaApplied, position(applied.applied, applied.applied_term), "save applied index"); !s) {
      return std::unexpected(s.error());
    }
    if (auto s = put_raw(t, dbi_->meta, kMetaConfState, applied.conf_state.SerializeAsString(), "save membership"); !s) {
      return std::unexpected(s.error());
    }
  }
  // An apply-only batch skips LMDB's second flush (the meta page): LMDB keeps the database
  // intact and may only undo this last transaction in an OS crash; the next full commit
  // flushes the meta page with its own data.
  bool is_meta_sync_skipped = may_skip_sync(batch);
  if (is_meta_sync_skipped) mdb_env_set_flags(env_, MDB_NOMETASYNC, 1);
  const uint64_t log_bytes = table_size_bytes(t, dbi_->log);
  auto committed = txn->commit();
  if (is_meta_sync_skipped) mdb_env_set_flags(env_, MDB_NOMETASYNC, 0);
  if (!committed) return std::unexpected(committed.error());
  std::lock_guard lock(mu_);
  log_size_bytes_ = log_bytes;
  applied_ = std::move(applied);
  compacted_index_ = compacted_index;
  compacted_term_ = compacted_term;
  last_index_ = last_index;
  if (batch.hard_state != nullptr) hard_state_ = *batch.hard_state;
  return out;
}

Result<kvpb::RangeResult> LmdbStore::range(const kvpb::RangeRequest& request) const {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  return kv::read_range(tables, request);
}

Result<std::vector<kvpb::Lease>> LmdbStore::list_leases() const {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  return tables.list_leases(kNoLimit);
}

Result<std::vector<uint64_t>> LmdbStore::expired_leases(uint64_t now_ms, size_t limit) const {
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  return kv::expired_leases(tables, now_ms, limit);
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
    if (last_index_ != 0 || applied_.applied != 0 || hard_state_.term() != 0) {
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
  Term term_at = 0;
  {
    std::lock_guard lock(mu_);
    if (index > applied_.applied) return make_error(ErrorCode::kInvalidArgument, "cannot compact past the applied index");
    if (index <= compacted_index_) return make_error(ErrorCode::kCompacted, "already compacted");
  }
  auto t = term(index);
  if (!t) return std::unexpected(t.error());
  term_at = *t;
  auto txn = LmdbTxn::begin(env_, false);
  if (!txn) return std::unexpected(txn.error());
  if (auto s = delete_log_range(txn->get(), dbi_->log, 0, index); !s) return s;
  if (auto s = put_raw(txn->get(), dbi_->meta, kMetaCompacted, position(index, term_at), "save compaction point"); !s) return s;
  const uint64_t log_bytes = table_size_bytes(txn->get(), dbi_->log);
  if (auto s = txn->commit(); !s) return s;
  std::lock_guard lock(mu_);
  log_size_bytes_ = log_bytes;
  compacted_index_ = index;
  compacted_term_ = term_at;
  return {};
}

uint64_t LmdbStore::log_size_bytes() const {
  std::lock_guard lock(mu_);
  return log_size_bytes_;
}

Result<pb::SnapshotMetadata> LmdbStore::stream_snapshot(
    const std::function<Status(std::string_view chunk)>& sink) const {
  // One read transaction: every record and the metadata come from the same instant.
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  LmdbTables tables(txn->get(), *dbi_);
  ChunkWriter w(sink);
  if (auto s = tables.for_each_kv([&](const kvpb::KeyValue& kv) { return w.add_kv(kv); }); !s) {
    return std::unexpected(s.error());
  }
  auto leases = tables.list_leases(kNoLimit);
  if (!leases) return std::unexpected(leases.error());
  for (const auto& l : *leases) {
    if (auto s = w.add_lease(l); !s) return std::unexpected(s.error());
  }
  if (auto s = tables.for_each_lease_key([&](uint64_t id, std::string_view k) { return w.add_lease_key(id, k); }); !s) {
    return std::unexpected(s.error());
  }
  if (auto s = w.finish(); !s) return std::unexpected(s.error());
  return snapshot_metadata(txn->get());
}

Result<pb::SnapshotMetadata> LmdbStore::snapshot_metadata(MDB_txn* txn) const {
  auto applied = get_raw(txn, dbi_->meta, kMetaApplied);
  auto cs = get_raw(txn, dbi_->meta, kMetaConfState);
  if (!applied || !cs || !*applied) return make_error(ErrorCode::kUnavailableSnapshot, "nothing applied yet");
  Decoder d(**applied);
  auto index = d.get_u64_be();
  auto t = index ? d.get_u64_be() : index;
  if (!t) return make_error(ErrorCode::kCorruption, "stored applied position is malformed");
  pb::SnapshotMetadata meta;
  meta.set_index(*index);
  meta.set_term(*t);
  if (*cs && !meta.mutable_conf_state()->ParseFromString(**cs)) {
    return make_error(ErrorCode::kCorruption, "membership does not parse");
  }
  return meta;
}

raft::InitialState LmdbStore::initial_state() const {
  std::lock_guard lock(mu_);
  return raft::InitialState{hard_state_, applied_.conf_state};
}

Result<std::vector<pb::Entry>> LmdbStore::entries(Index lo, Index hi, uint64_t max_size_bytes) const {
  {
    std::lock_guard lock(mu_);
    if (lo <= compacted_index_) return make_error(ErrorCode::kCompacted, "requested entries are compacted");
    ASPEN_ASSERT_MSG(hi <= last_index_ + 1, "entries() beyond the last index");
  }
  std::vector<pb::Entry> out;
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  uint64_t size = 0;
  for (Index i = lo; i < hi; ++i) {
    std::string key = index_key(i);
    MDB_val k = to_val(key);
    MDB_val v;
    int rc = mdb_get(txn->get(), dbi_->log, &k, &v);
    if (rc != 0) return std::unexpected(lmdb_error(rc, fmt::format("read log entry {}", i)));
    auto e = decode_log_record(from_val(v), i);
    if (!e) return std::unexpected(e.error());
    size += raft::entry_size_bytes(*e);
    if (!out.empty() && size > max_size_bytes) break;
    out.push_back(std::move(*e));
  }
  return out;
}

Result<Term> LmdbStore::term(Index i) const {
  {
    std::lock_guard lock(mu_);
    if (i == compacted_index_) return compacted_term_;
    if (i < compacted_index_) return make_error(ErrorCode::kCompacted, "term of a compacted entry");
    if (i > last_index_) return make_error(ErrorCode::kUnavailable, "term of an entry beyond the log");
  }
  auto txn = LmdbTxn::begin(env_, true);
  if (!txn) return std::unexpected(txn.error());
  std::string key = index_key(i);
  MDB_val k = to_val(key);
  MDB_val v;
  int rc = mdb_get(txn->get(), dbi_->log, &k, &v);
  if (rc != 0) return std::unexpected(lmdb_error(rc, fmt::format("read log entry {}", i)));
  auto body = check_log_record(from_val(v), i);
  if (!body) return std::unexpected(body.error());
  Decoder d(*body);
  auto t = d.get_u64_be();
  if (!t) return std::unexpected(t.error());
  return *t;
}

Index LmdbStore::first_index() const {
  std::lock_guard lock(mu_);
  return compacted_index_ + 1;
}

Index LmdbStore::last_index() const {
  std::lock_guard lock(mu_);
  return last_index_;
}

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

uint64_t LmdbStore::file_size_bytes() const {
  struct stat st {};
  std::string path = dir_ + "/data.mdb";
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace aspen::storage
