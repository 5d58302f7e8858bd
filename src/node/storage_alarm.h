// Storage alarm: when a node raises the cluster's storage alarm, decided without I/O.
//
// Every storage_check_interval_ms a node measures its own store (the state machine's size,
// Store::state_size_bytes) and the free space of its data directory's filesystem. Past its
// quota, or below its free-space reserve, it raises an alarm for itself: a StorageAlarm
// record written through the leader (kv/alarms.h says what the state machine then refuses).
// It raises it again if an operator disarms it while the node is still over its limit, and
// it never has more than one raise in flight; a raise that failed (no leader) is tried again
// at the next check. The node never clears its own alarm: an operator does, once space is
// freed (`aspen-cli cluster alarm disarm`), as with etcd's NOSPACE alarm.
#pragma once

#include <cstdint>
#include <optional>

#include "aspen/kv.pb.h"
#include "core/types.h"

namespace aspen::node {

struct StorageCheckInput {
  NodeId self = kNoNode;
  bool is_member = false;          // only a member's alarm binds the cluster
  bool has_own_alarm = false;      // the applied state holds this node's alarm
  bool is_raise_in_flight = false;
  uint64_t now_ms = 0;
  uint64_t used_bytes = 0;         // Store::state_size_bytes()
  uint64_t quota_bytes = 0;        // --storage-quota-bytes
  uint64_t disk_free_bytes = 0;    // free to unprivileged users on the data directory's filesystem
  uint64_t min_free_bytes = 0;     // --storage-min-free-bytes
};

// Whether this node is past one of its limits.
bool is_over_storage_limit(const StorageCheckInput& in);

// The alarm to raise now, if any.
std::optional<kvpb::StorageAlarm> storage_alarm_to_raise(const StorageCheckInput& in);

}  // namespace aspen::node
