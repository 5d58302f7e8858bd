// MemKvTables: KvTables in memory (std::map), for tests, the simulator and
// DeterministicKeyValueStore. Serializable, so it can stand in a snapshot.
#pragma once

#include <map>
#include <set>

#include "kv/tables.h"

namespace aspen::kv {

class MemKvTables final : public KvTables {
 public:
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
  Result<size_t> lease_count() override { return leases_.size(); }
  Result<std::vector<uint64_t>> expired_lease_ids(uint64_t now_ms, size_t limit) override;
  Status attach_key(uint64_t lease_id, std::string_view key) override;
  Status detach_key(uint64_t lease_id, std::string_view key) override;
  Result<std::vector<std::string>> keys_of_lease(uint64_t lease_id) override;
  Status put_history(const kvpb::HistoryEntry& entry) override;
  Status erase_history(Index revision, uint32_t position, std::string_view key) override;
  Result<std::optional<kvpb::HistoryEntry>> history_floor(std::string_view key, Index revision) override;
  Result<std::vector<kvpb::HistoryEntry>> history_from(Index revision, uint32_t position, size_t limit,
                                                        size_t max_bytes) override;
  Result<Index> last_history_revision() override {
    return history_.empty() ? Index{0} : history_.rbegin()->first.first;
  }
  Result<std::vector<std::string>> history_keys(std::string_view start, std::string_view end,
                                                const std::optional<std::string>& after, size_t limit) override;

  size_t key_count() const { return kvs_.size(); }
  size_t lease_count() const { return leases_.size(); }
  // Bytes of the keys and values held (what a store's size is mostly made of).
  uint64_t kv_bytes() const { return kv_bytes_ + history_bytes_; }
  size_t history_count() const { return history_.size(); }
  friend bool operator==(const MemKvTables& a, const MemKvTables& b);

 private:
  std::map<std::string, kvpb::KeyValue, std::less<>> kvs_;
  uint64_t kv_bytes_ = 0;  // sum of kvs_' key and value sizes
  std::map<uint64_t, kvpb::Lease> leases_;
  std::set<std::pair<uint64_t, uint64_t>> lease_expiry_;  // (expires_at_ms, id), derived from leases_
  std::map<uint64_t, std::set<std::string, std::less<>>> lease_keys_;
  using Position = std::pair<Index, uint32_t>;  // (revision, position)
  std::map<Position, kvpb::HistoryEntry> history_;
  std::map<std::string, std::set<Position>, std::less<>> history_by_key_;  // derived from history_
  uint64_t history_bytes_ = 0;  // keys and values of history_
};

}  // namespace aspen::kv
