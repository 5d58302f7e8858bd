#include "kv/state_machine.h"

#include <fmt/format.h>

#include <map>

#include "core/assert.h"
#include "core/buggify.h"
#include "core/limits.h"
#include "kv/command_hlc.h"
#include "kv/commands.h"
#include "kv/mvcc.h"
#include "kv/sessions.h"

namespace aspen::kv {

namespace {


kvpb::CommandResult failed_result(Index revision, ErrorCode code, std::string message) {
  kvpb::CommandResult r;
  r.set_revision(revision);
  r.set_succeeded(false);
  r.set_error_code(static_cast<uint32_t>(code));
  r.set_error_message(std::move(message));
  return r;
}

class Applier {
 public:
  Applier(KvTables& tables, const kvpb::Command& cmd, Index revision)
      : t_(tables), cmd_(cmd), rev_(revision) {
    result_.set_revision(revision);
    result_.set_succeeded(true);
  }

  Result<kvpb::CommandResult> run();

 private:
  Result<bool> put(const kvpb::Put& p);  // false: refused (unknown lease), result has the error
  Result<uint64_t> erase(std::string_view key);
  Result<bool> compare(const kvpb::Compare& c);
  Status txn(const kvpb::Txn& txn);
  Status revoke_lease(uint64_t id);
  // Removes `key` from the lease's keys and its key count.
  Status detach(uint64_t lease_id, std::string_view key);
  // Whether every lease the puts name exists and has room for their keys; if not, the
  // result says why and nothing may change.
  Result<bool> leases_can_take(const std::vector<uint64_t>& lease_ids);
  Status lease_grant(const kvpb::LeaseGrant& g);
  Status lease_keepalive(uint64_t id);

  KvTables& t_;
  const kvpb::Command& cmd_;
  Index rev_;
  kvpb::CommandResult result_;
  const size_t range_budget_bytes_ = limits::kMaxScanResultBytes;  // keys and values all ranges may return
  size_t range_used_bytes_ = 0;
  uint64_t revoking_lease_ = 0;  // the lease revoke_lease is deleting the keys of
  ChangeSet changes_;  // every key the command changed, for the history
  size_t puts_applied_ = 0;  // puts so far: the next put's order in its versionstamp
};

Result<bool> Applier::put(const kvpb::Put& p) {
  // Every put of the command takes the next order, stamped or not, so the order is the put's
  // position whatever else the command holds.
  const auto order = static_cast<uint16_t>(puts_applied_++);
  std::string key = p.key();
  if (p.has_key_versionstamp_offset()) write_versionstamp(key, p.key_versionstamp_offset(), rev_, order);
  std::optional<kvpb::Lease> lease;
  if (p.lease_id() != 0) {
    auto got = t_.get_lease(p.lease_id());
    if (!got) return std::unexpected(got.error());
    if (!*got) {
      ASPEN_PROBE("kv.put_lease_missing");
      result_ = failed_result(rev_, ErrorCode::kLeaseNotFound,
                              fmt::format("lease {} does not exist (expired or revoked?)", p.lease_id()));
      return false;
    }
    lease = std::move(*got);
  }
  auto existing = t_.get(key);
  if (!existing) return std::unexpected(existing.error());
  const bool is_newly_attached = lease && !(*existing && (*existing)->lease_id() == p.lease_id());
  if (is_newly_attached && lease->key_count() >= limits::kMaxKeysPerLease) {
    ASPEN_PROBE("kv.put_lease_full");
    result_ = failed_result(rev_, ErrorCode::kInvalidArgument,
                            fmt::format("lease {} already holds {} keys (the limit); use another lease", p.lease_id(),
                                        limits::kMaxKeysPerLease));
    return false;
  }
  kvpb::KeyValue kv;
  kv.set_key(key);
  kv.set_value(p.value());
  if (p.has_value_versionstamp_offset()) {
    write_versionstamp(*kv.mutable_value(), p.value_versionstamp_offset(), rev_, order);
  }
  kv.set_mod_revision(rev_);
  kv.set_mod_time_ms(cmd_.timestamp_ms());  // leader-stamped: every replica stores the same
  // The command's hybrid logical clock stamp, clamped as every reader clamps it (absent in
  // commands from before stamps: the record then has none).
  if (auto hlc = command_hlc(cmd_)) to_proto(*hlc, kv.mutable_mod_hlc());
  kv.set_lease_id(p.lease_id());
  if (*existing) {
    kv.set_create_revision((*existing)->create_revision());
    kv.set_version((*existing)->version() + 1);
    if ((*existing)->lease_id() != 0 && (*existing)->lease_id() != p.lease_id()) {
      if (auto s = detach((*existing)->lease_id(), key); !s) return std::unexpected(s.error());
    }
  } else {
    kv.set_create_revision(rev_);
    kv.set_version(1);
  }
  if (is_newly_attached) {
    if (auto s = t_.attach_key(p.lease_id(), key); !s) return std::unexpected(s.error());
    lease->set_key_count(lease->key_count() + 1);
    if (auto s = t_.put_lease(*lease); !s) return std::unexpected(s.error());
  }
  if (auto s = t_.put(kv); !s) return std::unexpected(s.error());
  changes_.record_put(kv, *existing);
  return true;
}

Result<uint64_t> Applier::erase(std::string_view key) {
  auto existing = t_.get(key);
  if (!existing) return std::unexpected(existing.error());
  if (!*existing) return uint64_t{0};
  if ((*existing)->lease_id() != 0) {
    if (auto s = detach((*existing)->lease_id(), key); !s) return std::unexpected(s.error());
  }
  if (auto s = t_.erase(key); !s) return std::unexpected(s.error());
  changes_.record_delete(**existing, rev_);
  return uint64_t{1};
}

Status Applier::detach(uint64_t lease_id, std::string_view key) {
  if (auto s = t_.detach_key(lease_id, key); !s) return s;
  if (lease_id == revoking_lease_) return {};  // the lease goes too: no count to keep
  auto lease = t_.get_lease(lease_id);
  if (!lease) return std::unexpected(lease.error());
  if (!*lease) return {};
  // Saturating: leases written before key_count existed start from 0.
  (*lease)->set_key_count((*lease)->key_count() > 0 ? (*lease)->key_count() - 1 : 0);
  return t_.put_lease(**lease);
}

template <typename T>
bool compare_values(kvpb::Compare::Op op, const T& actual, const T& expected) {
  switch (op) {
    case kvpb::Compare::OP_EQUAL: return actual == expected;
    case kvpb::Compare::OP_NOT_EQUAL: return actual != expected;
    case kvpb::Compare::OP_LESS: return actual < expected;
    case kvpb::Compare::OP_GREATER: return actual > expected;
    default: return false;
  }
}

Result<bool> Applier::compare(const kvpb::Compare& c) {
  auto kv = t_.get(c.key());
  if (!kv) return std::unexpected(kv.error());
  // A missing key compares as version 0, revisions 0, and (for values) never equal: etcd's
  // convention, so "create if absent" is `version == 0`.
  const kvpb::KeyValue* k = kv->has_value() ? &**kv : nullptr;
  switch (c.target()) {
    case kvpb::Compare::TARGET_VALUE:
      if (k == nullptr) return c.op() == kvpb::Compare::OP_NOT_EQUAL;
      return compare_values<std::string>(c.op(), k->value(), c.value());
    case kvpb::Compare::TARGET_VERSION:
      return compare_values<uint64_t>(c.op(), k ? k->version() : 0, c.number());
    case kvpb::Compare::TARGET_CREATE_REVISION:
      return compare_values<uint64_t>(c.op(), k ? k->create_revision() : 0, c.number());
    case kvpb::Compare::TARGET_MOD_REVISION:
      return compare_values<uint64_t>(c.op(), k ? k->mod_revision() : 0, c.number());
    default:
      return false;
  }
}

// Multi-key commands are all-or-nothing: every lease they attach keys to must exist, with
// room for every key they may attach, before any key changes. Each put counts as one new key
// (a key put twice, or already on the lease, counts anyway): conservative, and the same on
// every replica.
Result<bool> Applier::leases_can_take(const std::vector<uint64_t>& lease_ids) {
  std::map<uint64_t, uint64_t> wanted;
  for (uint64_t id : lease_ids) {
    if (id != 0) ++wanted[id];
  }
  for (const auto& [id, n] : wanted) {
    auto lease = t_.get_lease(id);
    if (!lease) return std::unexpected(lease.error());
    if (!*lease) {
      result_ = failed_result(rev_, ErrorCode::kLeaseNotFound, fmt::format("lease {} does not exist", id));
      return false;
    }
    if ((*lease)->key_count() + n > limits::kMaxKeysPerLease) {
      result_ = failed_result(rev_, ErrorCode::kInvalidArgument,
                              fmt::format("lease {} holds {} keys and this command may add {}; the limit is {}", id,
                                          (*lease)->key_count(), n, limits::kMaxKeysPerLease));
      return false;
    }
  }
  return true;
}

Status Applier::txn(const kvpb::Txn& txn) {
  bool ok = true;
  for (const auto& c : txn.compares()) {
    auto r = compare(c);
    if (!r) return std::unexpected(r.error());
    ok = ok && *r;
  }
  const auto& ops = ok ? txn.success() : txn.failure();
  std::vector<uint64_t> lease_ids;
  for (const auto& op : ops) {
    if (op.has_put()) lease_ids.push_back(op.put().lease_id());
  }
  auto room = leases_can_take(lease_ids);
  if (!room) return std::unexpected(room.error());
  if (!*room) return {};
  result_.set_succeeded(ok);
  for (const auto& op : ops) {
    kvpb::TxnOpResult* out = result_.add_responses();
    switch (op.op_case()) {
      case kvpb::TxnOp::kPut: {
        auto r = put(op.put());
        if (!r) return std::unexpected(r.error());
        ASPEN_ASSERT_MSG(*r, "leases were checked before the transaction ran");
        out->set_put(true);
        break;
      }
      case kvpb::TxnOp::kDelete: {
        auto n = erase(op.delete_().key());
        if (!n) return std::unexpected(n.error());
        out->set_deleted(*n);
        result_.set_deleted(result_.deleted() + *n);
        break;
      }
      case kvpb::TxnOp::kRange: {
        // All ranges of one transaction share one page's budget, so its answer fits a frame.
        auto r = read_range_within(t_, op.range(), range_budget_bytes_ - std::min(range_budget_bytes_, range_used_bytes_),
                                   range_used_bytes_);
        if (!r) return std::unexpected(r.error());
        *out->mutable_range() = std::move(*r);
        break;
      }
      case kvpb::TxnOp::OP_NOT_SET:
        break;
    }
  }
  return {};
}

Status Applier::revoke_lease(uint64_t id) {
  revoking_lease_ = id;
  auto keys = t_.keys_of_lease(id);
  if (!keys) return std::unexpected(keys.error());
  for (const auto& key : *keys) {
    auto n = erase(key);
    if (!n) return std::unexpected(n.error());
    result_.set_deleted(result_.deleted() + *n);
  }
  return t_.erase_lease(id);
}

Status Applier::lease_grant(const kvpb::LeaseGrant& g) {
  uint64_t id = g.id() != 0 ? g.id() : rev_;
  auto existing = t_.get_lease(id);
  if (!existing) return std::unexpected(existing.error());
  if (*existing) {
    result_ = failed_result(rev_, ErrorCode::kInvalidArgument, fmt::format("lease {} already exists", id));
    return {};
  }
  auto count = t_.lease_count();
  if (!count) return std::unexpected(count.error());
  if (*count >= limits::kMaxLeases) {
    ASPEN_PROBE("kv.lease_grant_refused_full");
    result_ = failed_result(rev_, ErrorCode::kInvalidArgument,
                            fmt::format("the cluster already holds {} leases (the limit); revoke unused ones or share "
                                        "one lease among keys",
                                        limits::kMaxLeases));
    return {};
  }
  kvpb::Lease lease;
  lease.set_id(id);
  lease.set_ttl_ms(g.ttl_ms());
  lease.set_expires_at_ms(cmd_.timestamp_ms() + g.ttl_ms());
  lease.set_granted_revision(rev_);
  if (auto s = t_.put_lease(lease); !s) return s;
  *result_.mutable_lease() = lease;
  return {};
}

Status Applier::lease_keepalive(uint64_t id) {
  auto lease = t_.get_lease(id);
  if (!lease) return std::unexpected(lease.error());
  if (!*lease) {
    result_ = failed_result(rev_, ErrorCode::kLeaseNotFound, fmt::format("lease {} does not exist", id));
    return {};
  }
  kvpb::Lease updated = **lease;
  updated.set_expires_at_ms(cmd_.timestamp_ms() + updated.ttl_ms());
  if (auto s = t_.put_lease(updated); !s) return s;
  *result_.mutable_lease() = updated;
  return {};
}

Result<kvpb::CommandResult> Applier::run() {
  switch (cmd_.op_case()) {
    case kvpb::Command::kPut: {
      auto r = put(cmd_.put());
      if (!r) return std::unexpected(r.error());
      break;
    }
    case kvpb::Command::kDelete: {
      auto n = erase(cmd_.delete_().key());
      if (!n) return std::unexpected(n.error());
      result_.set_deleted(*n);
      break;
    }
    case kvpb::Command::kSetMulti: {
      std::vector<uint64_t> lease_ids;
      for (const auto& p : cmd_.set_multi().puts()) lease_ids.push_back(p.lease_id());
      auto room = leases_can_take(lease_ids);
      if (!room) return std::unexpected(room.error());
      if (!*room) break;
      for (const auto& p : cmd_.set_multi().puts()) {
        auto r = put(p);
        if (!r) return std::unexpected(r.error());
        ASPEN_ASSERT(*r);
      }
      break;
    }
    case kvpb::Command::kDeleteMulti:
      for (const auto& k : cmd_.delete_multi().keys()) {
        auto n = erase(k);
        if (!n) return std::unexpected(n.error());
        result_.set_deleted(result_.deleted() + *n);
      }
      break;
    case kvpb::Command::kCas: {
      const auto& c = cmd_.cas();
      auto kv = t_.get(c.key());
      if (!kv) return std::unexpected(kv.error());
      bool matches = c.expect_absent() ? !kv->has_value()
                                       : (kv->has_value() && (*kv)->value() == c.expected_value());
      if (!matches) {
        if (!c.expect_absent() && !kv->has_value()) ASPEN_PROBE("kv.cas_expected_value_of_absent_key");
        result_.set_succeeded(false);
        if (*kv) *result_.mutable_current() = **kv;
        break;
      }
      kvpb::Put p;
      p.set_key(c.key());
      p.set_value(c.new_value());
      p.set_lease_id(c.lease_id());
      auto r = put(p);
      if (!r) return std::unexpected(r.error());
      break;
    }
    case kvpb::Command::kCad: {
      const auto& c = cmd_.cad();
      auto kv = t_.get(c.key());
      if (!kv) return std::unexpected(kv.error());
      if (!*kv || (*kv)->value() != c.expected_value()) {
        result_.set_succeeded(false);
        if (*kv) *result_.mutable_current() = **kv;
        break;
      }
      auto n = erase(c.key());
      if (!n) return std::unexpected(n.error());
      result_.set_deleted(*n);
      break;
    }
    case kvpb::Command::kTxn:
      if (auto s = txn(cmd_.txn()); !s) return std::unexpected(s.error());
      break;
    case kvpb::Command::kLeaseGrant:
      if (auto s = lease_grant(cmd_.lease_grant()); !s) return std::unexpected(s.error());
      break;
    case kvpb::Command::kLeaseRevoke: {
      auto lease = t_.get_lease(cmd_.lease_revoke().id());
      if (!lease) return std::unexpected(lease.error());
      if (!*lease) {
        result_ = failed_result(rev_, ErrorCode::kLeaseNotFound,
                                fmt::format("lease {} does not exist", cmd_.lease_revoke().id()));
        break;
      }
      if (auto s = revoke_lease(cmd_.lease_revoke().id()); !s) return std::unexpected(s.error());
      break;
    }
    case kvpb::Command::kLeaseKeepalive:
      if (auto s = lease_keepalive(cmd_.lease_keepalive().id()); !s) return std::unexpected(s.error());
      break;
    case kvpb::Command::kLeaseExpire:
      for (uint64_t id : cmd_.lease_expire().ids()) {
        auto lease = t_.get_lease(id);
        if (!lease) return std::unexpected(lease.error());
        // A keepalive may have been applied after the leader decided to expire the lease.
        if (!*lease || (*lease)->expires_at_ms() > cmd_.timestamp_ms()) continue;
        if (auto s = revoke_lease(id); !s) return std::unexpected(s.error());
      }
      break;
    case kvpb::Command::kAdd: {
      const auto& a = cmd_.add();
      auto kv = t_.get(a.key());
      if (!kv) return std::unexpected(kv.error());
      auto value = *kv ? parse_int64_value((*kv)->value()) : Result<int64_t>(0);
      if (!value) {
        result_ = failed_result(rev_, ErrorCode::kInvalidArgument,
                                fmt::format("key '{}' does not hold a decimal signed 64-bit integer", a.key()));
        break;
      }
      auto sum = checked_add(*value, a.delta());
      if (!sum) {
        result_ = failed_result(rev_, sum.error().code(), sum.error().message());
        break;
      }
      kvpb::Put p;
      p.set_key(a.key());
      p.set_value(std::to_string(*sum));
      p.set_lease_id(*kv ? (*kv)->lease_id() : 0);  // an add keeps the key's lease
      auto r = put(p);
      if (!r) return std::unexpected(r.error());
      if (*r) {
        auto after = t_.get(a.key());
        if (!after) return std::unexpected(after.error());
        if (*after) *result_.mutable_current() = **after;
      }
      break;
    }
    case kvpb::Command::kCompact:
      if (auto s = apply_compact(t_, cmd_.compact(), result_); !s) return std::unexpected(s.error());
      break;
    case kvpb::Command::OP_NOT_SET:
      result_ = failed_result(rev_, ErrorCode::kInvalidArgument, "command has no operation");
      break;
  }
  // The command's revision: its own index if it changed a key (all its keys share it), else
  // the store stays at the revision it had.
  if (!changes_.empty()) {
    if (auto s = changes_.write(t_, rev_, cmd_.timestamp_ms(), command_hlc(cmd_)); !s) return std::unexpected(s.error());
    result_.set_revision(rev_);
  } else {
    auto current = store_revision(t_);
    if (!current) return std::unexpected(current.error());
    result_.set_revision(*current);
  }
  return std::move(result_);
}

}  // namespace

Result<kvpb::CommandResult> apply_command(KvTables& tables, const kvpb::Command& cmd, Index revision) {
  ASPEN_ASSERT(revision > 0);
  // Commands were validated before they were proposed; a replica re-validates because the
  // log is input too (a corrupted or malicious entry must not crash or diverge it).
  auto refused = [&](const Error& e) -> Result<kvpb::CommandResult> {
    auto current = store_revision(tables);
    if (!current) return std::unexpected(current.error());
    return failed_result(*current, e.code(), e.message());
  };
  auto apply = [&]() -> Result<kvpb::CommandResult> {
    if (auto s = validate_command(cmd); !s) return refused(s.error());
    return Applier(tables, cmd, revision).run();
  };
  // Every command also moves the deletion of compacted history a bounded step on: in log
  // order, so every replica's history is the same.
  auto r = [&]() -> Result<kvpb::CommandResult> {
    if (!cmd.has_session()) return apply();
    if (auto s = validate_session(cmd.session()); !s) return refused(s.error());
    return apply_in_session(tables, cmd, revision, apply);
  }();
  if (!r) return r;
  if (auto s = purge_history(tables, kPurgePerCommand); !s) return std::unexpected(s.error());
  return r;
}

Result<kvpb::RangeResult> read_range(KvTables& tables, const kvpb::RangeRequest& range) {
  size_t used_bytes = 0;
  return read_range_within(tables, range, limits::kMaxScanResultBytes, used_bytes);
}

Result<kvpb::RangeResult> read_range_within(KvTables& tables, const kvpb::RangeRequest& range, size_t budget_bytes,
                                            size_t& used_bytes) {
  if (auto s = validate_range(range); !s) return std::unexpected(s.error());
  std::string end = range_end(range);
  std::optional<std::string> after;
  if (!range.continuation().empty()) after = range.continuation().substr(1);  // validated above
  kvpb::RangeResult out;
  if (budget_bytes == 0) {
    // Nothing left of the budget (a transaction's earlier ranges used it): an empty page
    // that says where to go on from.
    ASPEN_PROBE("kv.range_budget_exhausted");
    out.set_has_more(true);
    out.set_continuation(range.continuation());
    return out;
  }
  if (range.revision() != 0) {
    if (auto s = check_readable_revision(tables, range.revision()); !s) return std::unexpected(s.error());
    auto current = store_revision(tables);
    if (!current) return std::unexpected(current.error());
    // At the store's own revision the current table answers, without the history.
    if (range.revision() != *current) return read_range_at(tables, range, end, after, budget_bytes, used_bytes);
  }
  auto current = store_revision(tables);
  if (!current) return std::unexpected(current.error());
  out.set_revision(*current);
  const size_t limit = range.limit() == 0 ? limits::kDefaultScanLimit : range.limit();
  // The scan stops at the limit or once the page holds budget_bytes (plus the record that
  // crossed it): values are never loaded beyond that, however many keys the range holds.
  auto kvs = tables.scan(range.start(), end, after, limit, budget_bytes);
  if (!kvs) return std::unexpected(kvs.error());
  size_t bytes = 0;
  for (const auto& kv : *kvs) bytes += kv.key().size() + kv.value().size();
  used_bytes += bytes;
  if (!kvs->empty() && (kvs->size() == limit || bytes > budget_bytes)) {
    // Cut short: is there a next key? (At most one more record is read.)
    auto next = tables.scan(range.start(), end, kvs->back().key(), 1, 0);
    if (!next) return std::unexpected(next.error());
    if (!next->empty()) {
      out.set_has_more(true);
      out.set_continuation(std::string(1, kContinuationVersion) + kvs->back().key());
    }
  }
  out.set_count(kvs->size());
  if (!range.is_count_only()) {
    for (auto& kv : *kvs) *out.add_kvs() = std::move(kv);
  }
  return out;
}

Result<std::vector<uint64_t>> expired_leases(KvTables& tables, uint64_t now_ms, size_t limit) {
  return tables.expired_lease_ids(now_ms, limit);
}

}  // namespace aspen::kv
