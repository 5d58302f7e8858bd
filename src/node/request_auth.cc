#include "node/request_auth.h"

#include <fmt/format.h>

#include "auth/authorize.h"
#include "core/encoding.h"
#include "node/blob_keys.h"
#include "watch/watch.h"

namespace aspen::node {

namespace {

using auth::Action;
using cpb = clientpb::Request;

std::unexpected<Error> missing(Action action, std::string_view key) {
  return make_error(ErrorCode::kUnauthorized, auth::describe_missing(action, key));
}

Status need_key(const auth::VerifiedToken& t, Action action, std::string_view key) {
  if (!auth::allows_key(t, action, key)) return missing(action, key);
  return {};
}

Status need_range(const auth::VerifiedToken& t, Action action, const kvpb::RangeRequest& r) {
  // A prefix scan covers [start, prefix_end(start)); an empty end is the end of the keyspace.
  const std::string end = r.is_prefix() ? auth::prefix_end(r.start()) : r.end();
  if (!auth::allows_range(t, action, r.start(), end)) {
    return make_error(ErrorCode::kUnauthorized,
                      fmt::format("{} (for the whole range, in one capability)", auth::describe_missing(action, r.start())));
  }
  return {};
}

bool grants_any_write(const auth::VerifiedToken& t) {
  for (const auto& c : t.capabilities) {
    if (c.action == Action::kWrite || c.action == Action::kFull) return true;
  }
  return false;
}

Status authorize_txn(const kvpb::Txn& txn, const auth::VerifiedToken& t) {
  for (const auto& c : txn.compares()) {
    if (auto s = need_key(t, Action::kRead, c.key()); !s) return s;
  }
  for (const auto* ops : {&txn.success(), &txn.failure()}) {
    for (const auto& op : *ops) {
      Status s;
      if (op.has_put()) s = need_key(t, Action::kWrite, op.put().key());
      if (op.has_delete_()) s = need_key(t, Action::kDelete, op.delete_().key());
      if (op.has_range()) s = need_range(t, Action::kRead, op.range());
      if (!s) return s;
    }
  }
  return {};
}

Status authorize_command(const kvpb::Command& cmd, const auth::VerifiedToken& t) {
  switch (cmd.op_case()) {
    case kvpb::Command::kPut:
      return need_key(t, Action::kWrite, cmd.put().key());
    case kvpb::Command::kDelete:
      return need_key(t, Action::kDelete, cmd.delete_().key());
    case kvpb::Command::kSetMulti:
      for (const auto& p : cmd.set_multi().puts()) {
        if (auto s = need_key(t, Action::kWrite, p.key()); !s) return s;
      }
      return {};
    case kvpb::Command::kDeleteMulti:
      for (const auto& k : cmd.delete_multi().keys()) {
        if (auto s = need_key(t, Action::kDelete, k); !s) return s;
      }
      return {};
    case kvpb::Command::kCas:
      if (auto s = need_key(t, Action::kRead, cmd.cas().key()); !s) return s;
      return need_key(t, Action::kWrite, cmd.cas().key());
    case kvpb::Command::kCad:
      if (auto s = need_key(t, Action::kRead, cmd.cad().key()); !s) return s;
      return need_key(t, Action::kDelete, cmd.cad().key());
    case kvpb::Command::kTxn:
      return authorize_txn(cmd.txn(), t);
    case kvpb::Command::kLeaseGrant:
    case kvpb::Command::kLeaseRevoke:
    case kvpb::Command::kLeaseKeepalive:
      if (!grants_any_write(t)) {
        return make_error(ErrorCode::kUnauthorized, "missing capability: leases need write on some prefix");
      }
      return {};
    case kvpb::Command::kAdd:
      if (auto s = need_key(t, Action::kRead, cmd.add().key()); !s) return s;
      return need_key(t, Action::kWrite, cmd.add().key());
    case kvpb::Command::kCompact:
      // Compaction takes history away from every reader: the operator's decision.
      return need_key(t, Action::kAdmin, "");
    case kvpb::Command::kLeaseExpire:
    case kvpb::Command::OP_NOT_SET:
      return {};  // refused by validation, with its own message
  }
  return {};
}

}  // namespace

std::string revoked_token_key(const auth::TokenId& id) {
  return std::string(kRevokedTokenPrefix) + to_hex(std::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
}

bool is_open_request(const clientpb::Request& req) {
  return req.op_case() == cpb::kGetHealth || req.op_case() == cpb::kInitCluster;
}

Status authorize_request(const clientpb::Request& req, const auth::VerifiedToken& t) {
  auto admin = [&t]() -> Status { return need_key(t, Action::kAdmin, ""); };
  switch (req.op_case()) {
    case cpb::kGetHealth:
    case cpb::kInitCluster:
    case cpb::kGetLeader:
    case cpb::kGetNodeInfo:
    case cpb::kGetClusterTicket:
    case cpb::kWhoAmI:
      return {};
    case cpb::kGetMetrics:
    case cpb::kGetRaftMetrics:
    case cpb::kGetLogs:  // lines may name keys, peers and addresses
    case cpb::kGetPeers:  // every node's key and addresses, as discovery found them
    case cpb::kAddLearner:
    case cpb::kChangeMembership:
    case cpb::kRemoveNode:
    case cpb::kTriggerSnapshot:
    case cpb::kLeaseList:
    case cpb::kRevokeToken:
    case cpb::kAlarmList:
    case cpb::kAlarmDisarm:
      return admin();
    case cpb::kAlarmRaise:
      // Members raise their own alarms and are let through before any token is checked;
      // no token lets anyone else raise one.
      return make_error(ErrorCode::kUnauthorized, "only a member of the cluster may raise a storage alarm");
    case cpb::kRead:
      return need_key(t, Action::kRead, req.read().key());
    case cpb::kBatchRead:
      for (const auto& k : req.batch_read().keys()) {
        if (auto s = need_key(t, Action::kRead, k); !s) return s;
      }
      return {};
    case cpb::kScan:
      return need_range(t, Action::kRead, req.scan().range());
    case cpb::kWrite:
      return authorize_command(req.write().command(), t);
    case cpb::kWatchCreate: {
      auto spec = watch::make_watch_spec(req.watch_create());
      if (!spec) return {};  // refused by the watch service, with its own message
      if (spec->then_read) {
        if (auto s = need_range(t, Action::kRead, *spec->then_read); !s) return s;
      }
      return need_range(t, Action::kRead, watch::watched_range(*spec));
    }
    case cpb::kLogSubscribe: {
      kvpb::RangeRequest r;
      r.set_start(req.log_subscribe().prefix());
      r.set_end(prefix_end(req.log_subscribe().prefix()));
      return need_range(t, Action::kRead, r);
    }
    // Blobs: until capabilities of their own exist, the rules of keys under the blob prefix
    // (docs/blobs.md): a tag is a key there, a blob's bytes are kBlobDataPrefix + its hash.
    case cpb::kBlobGet:
      return need_key(t, Action::kRead, blob_data_key(req.blob_get().hash()));
    case cpb::kBlobStatus:
      return need_key(t, Action::kRead, blob_data_key(req.blob_status().hash()));
    case cpb::kBlobList:
      return need_key(t, Action::kRead, kBlobDataPrefix);
    case cpb::kBlobTagList:
      return need_key(t, Action::kRead, kBlobTagPrefix);
    case cpb::kBlobAdd:
      return need_key(t, Action::kWrite, kBlobDataPrefix);
    case cpb::kBlobTagSet:
      return need_key(t, Action::kWrite, blob_tag_key(req.blob_tag_set().name()));
    case cpb::kBlobTagDelete:
      return need_key(t, Action::kDelete, blob_tag_key(req.blob_tag_delete().name()));
    case cpb::kBlobGc:
      return admin();
    case cpb::kBlobHoldersUpdate:
      return make_error(ErrorCode::kUnauthorized, "only a member of the cluster may record which blobs it holds");
    case cpb::kWatchProgress:
      return {};  // refused unless on a watch's stream, whose creation was authorized
    case cpb::OP_NOT_SET:
      return {};  // the dispatcher answers InvalidArgument
  }
  return make_error(ErrorCode::kUnauthorized, "this request type has no authorization rule");
}

}  // namespace aspen::node
