// Storage alarms in the state machine: the replicated record that the cluster is short of
// space, and the rule that refuses writes that add data while one is raised.
//
// etcd's NOSPACE alarm is the model. Each member watches its own storage (node shell); one
// that crosses its quota or runs short of disk raises an alarm, a StorageAlarm record under
// kAlarmKeyPrefix written through Raft like any other write, so every member (and the next
// leader) knows of it. While any alarm is kept, the leader refuses a command that adds data
// (grows_store) with StorageFull before proposing it. Everything else keeps working: reads,
// deletes, lease revocation and expiry, keepalives, membership, log compaction, and the
// cluster's own records under the reserved "__aspen/" prefix (so alarms can be raised and
// cleared, and tokens revoked, on a full cluster).
//
// The refusal is made at proposal, not at apply: a plain put is answered once committed
// (its result is fixed), which an apply-time refusal would turn into an acknowledged write
// that was never applied. The cost is that writes proposed in the moment between an alarm's
// commit and its apply still go in; the room between the quota and --storage-max-bytes
// takes them.
#pragma once

#include <string>

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "core/types.h"
#include <vector>

namespace aspen::kv {

inline constexpr std::string_view kAlarmKeyPrefix = "__aspen/alarm/";
// Keys under it are the cluster's own bookkeeping, written only by nodes (clients cannot
// write the reserved prefix), each bounded by its own limit.
inline constexpr std::string_view kClusterKeyPrefix = "__aspen/";

// The key of `member_id`'s alarm: fixed-width decimal, so keys sort by member id.
std::string alarm_key(uint64_t member_id);

// Whether applying `cmd` may add data: a put of a key outside kClusterKeyPrefix (also inside
// a CAS, a SetMulti, or either branch of a transaction), or a lease grant.
bool grows_store(const kvpb::Command& cmd);

// The range holding every alarm (one per member: at most limits::kMaxClusterVoters +
// kMaxClusterLearners records), or only the first `limit`.
kvpb::RangeRequest alarm_range(uint32_t limit = 0);

// The alarms a read of alarm_range returned, in member order. A record that does not parse
// is kept as an alarm of its member with no numbers: refusing growth is the safe side.
std::vector<kvpb::StorageAlarm> decode_alarms(const kvpb::RangeResult& r);

// The error a refused write gets (StorageFull, naming the member and its numbers).
Error alarm_refusal(const kvpb::StorageAlarm& alarm);

}  // namespace aspen::kv
