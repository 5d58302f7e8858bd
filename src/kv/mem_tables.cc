#include "kv/mem_tables.h"

#include <google/protobuf/util/message_differencer.h>

namespace aspen::kv {

Result<std::optional<kvpb::KeyValue>> MemKvTables::get(std::string_view key) {
  auto it = kvs_.find(key);
  if (it == kvs_.end()) return std::optional<kvpb::KeyValue>{};
  return std::optional<kvpb::KeyValue>(it->second);
}

Status MemKvTables::put(const kvpb::KeyValue& kv) {
  if (auto it = kvs_.find(kv.key()); it != kvs_.end()) kv_bytes_ -= it->first.size() + it->second.value().size();
  kvs_.insert_or_assign(kv.key(), kv);
  kv_bytes_ += kv.key().size() + kv.value().size();
  return {};
}

Status MemKvTables::erase(std::string_view key) {
  auto it = kvs_.find(key);
  if (it != kvs_.end()) {
    kv_bytes_ -= it->first.size() + it->second.value().size();
    kvs_.erase(it);
  }
  return {};
}

Result<std::vector<kvpb::KeyValue>> MemKvTables::scan(std::string_view start, std::string_view end,
                                                      const std::optional<std::string>& after, size_t limit,
                                                      size_t max_bytes) {
  std::vector<kvpb::KeyValue> out;
  size_t bytes = 0;
  auto it = after ? kvs_.upper_bound(*after) : kvs_.lower_bound(start);
  for (; it != kvs_.end() && out.size() < limit && bytes <= max_bytes; ++it) {
    if (it->first < start) continue;
    if (!end.empty() && it->first >= end) break;
    out.push_back(it->second);
    bytes += it->second.key().size() + it->second.value().size();
  }
  return out;
}

Result<std::optional<kvpb::Lease>> MemKvTables::get_lease(uint64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::optional<kvpb::Lease>{};
  return std::optional<kvpb::Lease>(it->second);
}

Status MemKvTables::put_lease(const kvpb::Lease& lease) {
  if (auto it = leases_.find(lease.id()); it != leases_.end()) {
    lease_expiry_.erase({it->second.expires_at_ms(), lease.id()});
  }
  leases_.insert_or_assign(lease.id(), lease);
  lease_expiry_.insert({lease.expires_at_ms(), lease.id()});
  return {};
}

Status MemKvTables::erase_lease(uint64_t id) {
  if (auto it = leases_.find(id); it != leases_.end()) lease_expiry_.erase({it->second.expires_at_ms(), id});
  leases_.erase(id);
  lease_keys_.erase(id);
  return {};
}

Result<std::vector<uint64_t>> MemKvTables::expired_lease_ids(uint64_t now_ms, size_t limit) {
  std::vector<uint64_t> out;
  for (auto it = lease_expiry_.begin(); it != lease_expiry_.end() && it->first <= now_ms && out.size() < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

Result<std::vector<kvpb::Lease>> MemKvTables::list_leases(uint64_t after_id, size_t limit) {
  std::vector<kvpb::Lease> out;
  for (auto it = leases_.upper_bound(after_id); it != leases_.end() && out.size() < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

Status MemKvTables::attach_key(uint64_t lease_id, std::string_view key) {
  lease_keys_[lease_id].emplace(key);
  return {};
}

Status MemKvTables::detach_key(uint64_t lease_id, std::string_view key) {
  auto it = lease_keys_.find(lease_id);
  if (it == lease_keys_.end()) return {};
  auto k = it->second.find(key);
  if (k != it->second.end()) it->second.erase(k);
  return {};
}

Result<std::vector<std::string>> MemKvTables::keys_of_lease(uint64_t lease_id) {
  std::vector<std::string> out;
  auto it = lease_keys_.find(lease_id);
  if (it != lease_keys_.end()) out.assign(it->second.begin(), it->second.end());
  return out;
}

Status MemKvTables::put_history(const kvpb::HistoryEntry& entry) {
  const Position pos{entry.revision(), entry.position()};
  if (auto it = history_.find(pos); it != history_.end()) {
    if (auto s = erase_history(pos.first, pos.second, it->second.record().kv().key()); !s) return s;
  }
  const auto& kv = entry.record().kv();
  history_bytes_ += kv.key().size() + kv.value().size();
  history_by_key_[kv.key()].insert(pos);
  history_.emplace(pos, entry);
  return {};
}

Status MemKvTables::erase_history(Index revision, uint32_t position, std::string_view key) {
  auto it = history_.find({revision, position});
  if (it == history_.end()) return {};
  const auto& kv = it->second.record().kv();
  if (kv.key() != key) return make_error(ErrorCode::kCorruption, "a history entry names another key than expected");
  history_bytes_ -= kv.key().size() + kv.value().size();
  auto k = history_by_key_.find(key);
  k->second.erase({revision, position});
  if (k->second.empty()) history_by_key_.erase(k);
  history_.erase(it);
  return {};
}

Result<std::optional<kvpb::HistoryEntry>> MemKvTables::history_floor(std::string_view key, Index revision) {
  auto k = history_by_key_.find(key);
  if (k == history_by_key_.end()) return std::optional<kvpb::HistoryEntry>{};
  auto it = k->second.upper_bound({revision, UINT32_MAX});
  if (it == k->second.begin()) return std::optional<kvpb::HistoryEntry>{};
  return std::optional<kvpb::HistoryEntry>(history_.at(*std::prev(it)));
}

Result<std::vector<kvpb::HistoryEntry>> MemKvTables::history_from(Index revision, uint32_t position, size_t limit,
                                                                   size_t max_bytes) {
  std::vector<kvpb::HistoryEntry> out;
  size_t bytes = 0;
  for (auto it = history_.lower_bound({revision, position}); it != history_.end() && out.size() < limit && bytes <= max_bytes;
       ++it) {
    bytes += it->second.record().kv().key().size() + it->second.record().kv().value().size();
    out.push_back(it->second);
  }
  return out;
}

Result<std::vector<std::string>> MemKvTables::history_keys(std::string_view start, std::string_view end,
                                                           const std::optional<std::string>& after, size_t limit) {
  std::vector<std::string> out;
  auto it = after ? history_by_key_.upper_bound(*after) : history_by_key_.lower_bound(start);
  for (; it != history_by_key_.end() && out.size() < limit; ++it) {
    if (it->first < start) continue;
    if (!end.empty() && it->first >= end) break;
    out.push_back(it->first);
  }
  return out;
}

bool operator==(const MemKvTables& a, const MemKvTables& b) {
  using google::protobuf::util::MessageDifferencer;
  if (a.kvs_.size() != b.kvs_.size() || a.leases_.size() != b.leases_.size()) return false;
  for (auto ia = a.kvs_.begin(), ib = b.kvs_.begin(); ia != a.kvs_.end(); ++ia, ++ib) {
    if (ia->first != ib->first || !MessageDifferencer::Equals(ia->second, ib->second)) return false;
  }
  for (auto ia = a.leases_.begin(), ib = b.leases_.begin(); ia != a.leases_.end(); ++ia, ++ib) {
    if (ia->first != ib->first || !MessageDifferencer::Equals(ia->second, ib->second)) return false;
  }
  if (a.history_.size() != b.history_.size()) return false;
  for (auto ia = a.history_.begin(), ib = b.history_.begin(); ia != a.history_.end(); ++ia, ++ib) {
    if (ia->first != ib->first || !MessageDifferencer::Equals(ia->second, ib->second)) return false;
  }
  return a.lease_keys_ == b.lease_keys_;
}

}  // namespace aspen::kv
