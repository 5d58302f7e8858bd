#include "node/storage_alarm.h"

namespace aspen::node {

bool is_over_storage_limit(const StorageCheckInput& in) {
  return in.used_bytes > in.quota_bytes || in.disk_free_bytes < in.min_free_bytes;
}

std::optional<kvpb::StorageAlarm> storage_alarm_to_raise(const StorageCheckInput& in) {
  if (!in.is_member || in.has_own_alarm || in.is_raise_in_flight || !is_over_storage_limit(in)) return std::nullopt;
  kvpb::StorageAlarm a;
  a.set_member_id(in.self);
  a.set_raised_at_ms(in.now_ms);
  a.set_used_bytes(in.used_bytes);
  a.set_quota_bytes(in.quota_bytes);
  a.set_disk_free_bytes(in.disk_free_bytes);
  a.set_min_free_bytes(in.min_free_bytes);
  return a;
}

}  // namespace aspen::node
