// Internal to src/storage: LMDB plumbing shared by LmdbStore and its KvTables view.
#pragma once

#include <lmdb.h>

#include <string>
#include <string_view>

#include "core/error.h"
#include "kv/tables.h"
#include "storage/lmdb_store.h"

namespace aspen::storage {

struct LmdbStore::Dbis {
  MDB_dbi log = 0;
  MDB_dbi meta = 0;
  MDB_dbi kv = 0;
  MDB_dbi leases = 0;
  MDB_dbi lease_keys = 0;
  MDB_dbi lease_expiry = 0;  // (expires_at_ms, id) big-endian -> nothing: leases by expiry
  MDB_dbi history = 0;       // (revision, position) big-endian -> HistoryRecord
  // encode_kv_key(key) -> (revision, position) big-endian, one duplicate per version, sorted:
  // the versions of a key by revision (MDB_DUPSORT | MDB_DUPFIXED).
  MDB_dbi history_keys = 0;
};

// Maps an LMDB return code to an Error that tells an operator what happened.
Error lmdb_error(int rc, std::string_view what);

inline MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view from_val(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// A transaction that aborts unless committed.
class LmdbTxn {
 public:
  static Result<LmdbTxn> begin(MDB_env* env, bool is_read_only);
  LmdbTxn(LmdbTxn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  LmdbTxn& operator=(LmdbTxn&&) = delete;
  ~LmdbTxn();
  Status commit();
  MDB_txn* get() const { return txn_; }

 private:
  explicit LmdbTxn(MDB_txn* txn) : txn_(txn) {}
  MDB_txn* txn_;
};

// Keys longer than LMDB's 511-byte limit (Aspen allows 1 KiB) are stored under their first
// kLongKeyPrefixBytes bytes followed by a 16-byte BLAKE2b digest of the whole key; the full
// key is kept in the record. Scans restore exact byte order by sorting each group of long
// keys that share a prefix.
inline constexpr size_t kLongKeyPrefixBytes = 480;
std::string encode_kv_key(std::string_view key);
bool is_long_kv_key(std::string_view encoded);

// KvTables over one LMDB transaction (read-only transactions support the read methods).
class LmdbTables final : public kv::KvTables {
 public:
  LmdbTables(MDB_txn* txn, const LmdbStore::Dbis& dbi) : txn_(txn), dbi_(dbi) {}

  Result<std::optional<kvpb::KeyValue>> get(std::string_view key) override;
  Status put(const kvpb::KeyValue& kv) override;
  Status erase(std::string_view key) override;
  Result<std::vector<kvpb::KeyValue>> scan(std::string_view start, std::string_view end,
                                           const std::optional<std::string>& after, size_t limit,
                                           size_t max_bytes) override;
  Result<std::optional<kvpb::Lease>> get_lease(uint64_t id) override;
  Status put_lease(const kvpb::Lease& lease) override;
  Status erase_lease(uint64_t id) override;
  Result<std::vector<kvpb::Lease>> list_leases(uint64_t after_id, size_t limit) override;
  Result<size_t> lease_count() override;
  Result<std::vector<uint64_t>> expired_lease_ids(uint64_t now_ms, size_t limit) override;
  Status attach_key(uint64_t lease_id, std::string_view key) override;
  Status detach_key(uint64_t lease_id, std::string_view key) override;
  Result<std::vector<std::string>> keys_of_lease(uint64_t lease_id) override;
  Status put_history(const kvpb::HistoryEntry& entry) override;
  Status erase_history(Index revision, uint32_t position, std::string_view key) override;
  Result<std::optional<kvpb::HistoryEntry>> history_floor(std::string_view key, Index revision) override;
  Result<std::vector<kvpb::HistoryEntry>> history_from(Index revision, uint32_t position, size_t limit,
                                                        size_t max_bytes) override;
  Result<std::vector<std::string>> history_keys(std::string_view start, std::string_view end,
                                                const std::optional<std::string>& after, size_t limit) override;
  Result<Index> last_history_revision() override;

  // Every record, in key order, for snapshots.
  Status for_each_kv(const std::function<Status(const kvpb::KeyValue&)>& fn);
  Status for_each_lease_key(const std::function<Status(uint64_t, std::string_view)>& fn);

 private:
  Result<kvpb::KeyValue> decode_kv(const MDB_val& k, const MDB_val& v);
  // The history record at a (revision, position) key of the history table.
  Result<kvpb::HistoryEntry> history_at(std::string_view position_key);

  MDB_txn* txn_;
  const LmdbStore::Dbis& dbi_;
};

}  // namespace aspen::storage
