#include "kv/alarms.h"

#include <fmt/format.h>

#include "core/encoding.h"
#include "core/limits.h"

namespace aspen::kv {

namespace {

bool is_cluster_key(std::string_view key) { return key.starts_with(kClusterKeyPrefix); }

bool ops_grow(const google::protobuf::RepeatedPtrField<kvpb::TxnOp>& ops) {
  for (const auto& op : ops) {
    if (op.has_put() && !is_cluster_key(op.put().key())) return true;
  }
  return false;
}


constexpr size_t kMaxAlarms = limits::kMaxClusterVoters + limits::kMaxClusterLearners;

}  // namespace

std::string alarm_key(uint64_t member_id) { return fmt::format("{}{:020}", kAlarmKeyPrefix, member_id); }

bool grows_store(const kvpb::Command& cmd) {
  switch (cmd.op_case()) {
    case kvpb::Command::kPut: return !is_cluster_key(cmd.put().key());
    case kvpb::Command::kCas: return !is_cluster_key(cmd.cas().key());
    case kvpb::Command::kAdd: return !is_cluster_key(cmd.add().key());
    case kvpb::Command::kSetMulti:
      for (const auto& p : cmd.set_multi().puts()) {
        if (!is_cluster_key(p.key())) return true;
      }
      return false;
    case kvpb::Command::kTxn: return ops_grow(cmd.txn().success()) || ops_grow(cmd.txn().failure());
    case kvpb::Command::kLeaseGrant: return true;
    case kvpb::Command::kDelete:
    case kvpb::Command::kDeleteMulti:
    case kvpb::Command::kCad:
    case kvpb::Command::kLeaseRevoke:
    case kvpb::Command::kLeaseKeepalive:  // rewrites a record of the same size
    case kvpb::Command::kLeaseExpire:
    case kvpb::Command::kCompact:  // frees history: how an operator makes room
    case kvpb::Command::OP_NOT_SET: return false;
  }
  return true;
}

kvpb::RangeRequest alarm_range(uint32_t limit) {
  kvpb::RangeRequest r;
  r.set_start(std::string(kAlarmKeyPrefix));
  r.set_is_prefix(true);
  r.set_limit(limit == 0 ? static_cast<uint32_t>(kMaxAlarms) : limit);
  return r;
}

std::vector<kvpb::StorageAlarm> decode_alarms(const kvpb::RangeResult& r) {
  std::vector<kvpb::StorageAlarm> out;
  for (const auto& kv : r.kvs()) {
    kvpb::StorageAlarm a;
    if (!a.ParseFromString(kv.value())) {
      a.Clear();
      uint64_t id = 0;
      for (char c : std::string_view(kv.key()).substr(kAlarmKeyPrefix.size())) {
        if (c < '0' || c > '9') break;
        id = id * 10 + static_cast<uint64_t>(c - '0');
      }
      a.set_member_id(id);
    }
    out.push_back(std::move(a));
  }
  return out;
}

Error alarm_refusal(const kvpb::StorageAlarm& a) {
  std::string why;
  if (a.quota_bytes() > 0 && a.used_bytes() > a.quota_bytes()) {
    why = fmt::format("member {}'s data reached {}, over its quota of {}", a.member_id(), format_mib(a.used_bytes()),
                      format_mib(a.quota_bytes()));
  } else {
    why = fmt::format("member {}'s disk has {} free, below its reserve of {}", a.member_id(),
                      format_mib(a.disk_free_bytes()), format_mib(a.min_free_bytes()));
  }
  return Error(ErrorCode::kStorageFull,
               fmt::format("the cluster's storage alarm is raised ({}): writes that add data are refused until an "
                           "operator frees space (delete keys, revoke leases) and runs `aspen-cli cluster alarm "
                           "disarm`; reads and deletes keep working",
                           why));
}

}  // namespace aspen::kv
