// KvTables: the storage-neutral view of the state machine's tables that apply() and the
// read path work against. LmdbStore implements it over an LMDB transaction, MemKvTables over
// std::map, so there is exactly one implementation of the state machine's semantics.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "core/types.h"

namespace aspen::kv {

// A copy of the history entries one apply writes (kv::ChangeSet::write), up to a byte bound:
// the node sends watchers committed changes before the store's commit makes them readable.
// Past the bound it keeps nothing and says so (the changes then reach watchers from the store).
class HistoryRecorder {
 public:
  explicit HistoryRecorder(size_t max_bytes) : max_bytes_(max_bytes) {}
  void record(const kvpb::HistoryEntry& entry);
  bool is_overflowed() const { return is_overflowed_; }
  std::vector<kvpb::HistoryEntry> take() { return std::move(entries_); }

 private:
  size_t max_bytes_;
  size_t bytes_ = 0;
  bool is_overflowed_ = false;
  std::vector<kvpb::HistoryEntry> entries_;
};

class KvTables {
 public:
  virtual ~KvTables() = default;

  // While set, every history entry an apply writes through these tables is also recorded
  // there (not those a snapshot install writes: it calls put_history directly).
  void set_history_recorder(HistoryRecorder* recorder) { history_recorder_ = recorder; }
  HistoryRecorder* history_recorder() const { return history_recorder_; }

  virtual Result<std::optional<kvpb::KeyValue>> get(std::string_view key) = 0;
  virtual Status put(const kvpb::KeyValue& kv) = 0;
  virtual Status erase(std::string_view key) = 0;
  // Keys in [start, end) in byte order (empty end = no upper bound), after `after` if it is
  // set (exclusive), at most `limit` of them, ending with the one whose key and value bytes
  // bring the total past `max_bytes` (so at least one when any is in range): memory stays
  // bounded by max_bytes plus one record, however large the values.
  virtual Result<std::vector<kvpb::KeyValue>> scan(std::string_view start, std::string_view end,
                                                   const std::optional<std::string>& after, size_t limit,
                                                   size_t max_bytes) = 0;

  virtual Result<std::optional<kvpb::Lease>> get_lease(uint64_t id) = 0;
  virtual Status put_lease(const kvpb::Lease& lease) = 0;
  virtual Status erase_lease(uint64_t id) = 0;
  // Leases with ids above `after_id`, in id order, at most `limit` of them.
  virtual Result<std::vector<kvpb::Lease>> list_leases(uint64_t after_id, size_t limit) = 0;
  virtual Result<size_t> lease_count() = 0;
  // Ids of leases that expire at or before now_ms, soonest first (then by id), at most
  // `limit`: read from an index by expiry, so the cost follows the answer, not the leases.
  virtual Result<std::vector<uint64_t>> expired_lease_ids(uint64_t now_ms, size_t limit) = 0;
  // The lease -> keys index, so revoking a lease deletes its keys without a full scan.
  virtual Status attach_key(uint64_t lease_id, std::string_view key) = 0;
  virtual Status detach_key(uint64_t lease_id, std::string_view key) = 0;
  virtual Result<std::vector<std::string>> keys_of_lease(uint64_t lease_id) = 0;

  // --- history (MVCC): every version of every key, by (revision, position) and by key.
  // kv/mvcc.h holds the rules; these are storage primitives.
  // Adds one version (an entry at an existing (revision, position) is replaced).
  virtual Status put_history(const kvpb::HistoryEntry& entry) = 0;
  virtual Status erase_history(Index revision, uint32_t position, std::string_view key) = 0;
  // The version of `key` with the greatest revision at or below `revision` (nullopt: none).
  virtual Result<std::optional<kvpb::HistoryEntry>> history_floor(std::string_view key, Index revision) = 0;
  // Entries at or after (revision, position) in (revision, position) order, at most `limit`,
  // ending with the one whose key and value bytes bring the total past `max_bytes`.
  virtual Result<std::vector<kvpb::HistoryEntry>> history_from(Index revision, uint32_t position, size_t limit,
                                                                size_t max_bytes) = 0;
  // The highest revision in the history (0: none). Compaction never deletes the entries at
  // or above the compacted revision, so this is the store revision.
  virtual Result<Index> last_history_revision() = 0;
  // Keys that have any version in [start, end) (empty end = no upper bound), after `after`
  // if set, in byte order, at most `limit`.
  virtual Result<std::vector<std::string>> history_keys(std::string_view start, std::string_view end,
                                                        const std::optional<std::string>& after, size_t limit) = 0;

 private:
  HistoryRecorder* history_recorder_ = nullptr;
};

}  // namespace aspen::kv
