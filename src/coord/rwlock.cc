#include "coord/rwlock.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/limits.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "rwlock";
constexpr uint8_t kRWRecord = 'W';
constexpr size_t kMaxRoles = limits::kMaxRWLockReaders + limits::kMaxRWLockWaitingWriters + 1;

std::string encode_rw(const RWLockState& s) {
  RecordWriter w(kRWRecord);
  write_holders(w, s.writer);
  write_holders(w, s.readers);
  write_holders(w, s.waiting_writers);
  return w.finish();
}

Result<RWLockState> decode_rw(const kvpb::KeyValue& kv) {
  auto r = RecordReader::open(kv.value(), kRWRecord, kv.key());
  if (!r) return std::unexpected(r.error());
  RWLockState s;
  auto writer = read_holders(*r, 1);
  auto readers = writer ? read_holders(*r, limits::kMaxRWLockReaders) : writer;
  auto waiting = readers ? read_holders(*r, limits::kMaxRWLockWaitingWriters) : readers;
  if (!waiting) return std::unexpected(waiting.error());
  if (auto st = r->finish(); !st) return std::unexpected(st.error());
  return RWLockState{std::move(*writer), std::move(*readers), std::move(*waiting)};
}

bool contains(const std::vector<LeasedHolder>& v, std::string_view id) {
  return std::any_of(v.begin(), v.end(), [&](const LeasedHolder& h) { return h.id == id; });
}
}  // namespace

Result<std::pair<RWOutcome, RWLockState>> plan_rwlock_acquire(RWLockState s, const std::set<std::string>& live,
                                                              const LeasedHolder& holder, RWMode mode,
                                                              bool should_queue) {
  prune_holders(s.writer, live);
  prune_holders(s.readers, live);
  prune_holders(s.waiting_writers, live);
  if (contains(s.writer, holder.id) || contains(s.readers, holder.id)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("holder '{}' already holds this lock; release it first", holder.id));
  }
  if (mode == RWMode::kRead) {
    // A waiting writer blocks new readers: that is what keeps writers from starving.
    if (!s.writer.empty() || !s.waiting_writers.empty()) return std::pair{RWOutcome::kRefused, std::move(s)};
    if (s.readers.size() >= limits::kMaxRWLockReaders) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("lock has {} readers, the limit", limits::kMaxRWLockReaders));
    }
    s.readers.push_back(holder);
    return std::pair{RWOutcome::kGranted, std::move(s)};
  }
  bool is_first_in_line = s.waiting_writers.empty() || s.waiting_writers.front().id == holder.id;
  if (s.writer.empty() && s.readers.empty() && is_first_in_line) {
    std::erase_if(s.waiting_writers, [&](const LeasedHolder& h) { return h.id == holder.id; });
    s.writer.push_back(holder);
    return std::pair{RWOutcome::kGranted, std::move(s)};
  }
  if (!should_queue || contains(s.waiting_writers, holder.id)) return std::pair{RWOutcome::kRefused, std::move(s)};
  if (s.waiting_writers.size() >= limits::kMaxRWLockWaitingWriters) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("lock has {} waiting writers, the limit", limits::kMaxRWLockWaitingWriters));
  }
  s.waiting_writers.push_back(holder);
  return std::pair{RWOutcome::kQueued, std::move(s)};
}

Status DistributedRWLock::check(std::string_view holder, uint64_t ttl_ms) const {
  if (auto s = validate_name(name_); !s) return s;
  if (auto s = validate_id("holder id", holder); !s) return s;
  return validate_ttl_ms(ttl_ms);
}

Result<std::optional<RWLockHandle>> DistributedRWLock::attempt(std::string_view holder, RWMode mode, uint64_t ttl_ms,
                                                               bool should_queue, uint64_t* lease_id) {
  if (*lease_id == 0) {
    auto lease = kv::lease_grant(store_, ttl_ms);
    if (!lease) return std::unexpected(lease.error());
    *lease_id = lease->id();
  } else if (auto k = kv::lease_keepalive(store_, *lease_id); !k) {  // a queued writer stays alive
    if (k.error().code() != ErrorCode::kLeaseNotFound) return std::unexpected(k.error());
    *lease_id = 0;
    return std::optional<RWLockHandle>{};
  }
  const std::string key = coord_key(kKind, name_);
  for (size_t i = 0; i < limits::kMaxCoordCasAttempts; ++i) {
    auto kv = kv::get(store_, key);
    if (!kv) return std::unexpected(kv.error());
    RWLockState st;
    if (kv->has_value()) {
      auto d = decode_rw(**kv);
      if (!d) return std::unexpected(d.error());
      st = std::move(*d);
    }
    auto live = live_holder_ids(store_, key, kMaxRoles);
    if (!live) return std::unexpected(live.error());
    LeasedHolder me{std::string(holder), 1, *lease_id};
    auto plan = plan_rwlock_acquire(std::move(st), *live, me, mode, should_queue);
    if (!plan) return std::unexpected(plan.error());
    if (plan->first == RWOutcome::kRefused) return std::optional<RWLockHandle>{};
    TxnSpec spec;
    spec.compares.push_back(cmp_mod_revision(key, kv->has_value() ? (*kv)->mod_revision() : 0));
    spec.success.push_back(op_put(key, encode_rw(plan->second)));
    spec.success.push_back(op_put(marker_key(key, holder), "", *lease_id));
    auto r = run_txn(store_, std::move(spec));
    if (!r) {
      if (r.error().code() == ErrorCode::kLeaseNotFound) {
        *lease_id = 0;
        return std::optional<RWLockHandle>{};
      }
      return std::unexpected(r.error());
    }
    if (!r->succeeded()) continue;
    if (plan->first == RWOutcome::kQueued) return std::optional<RWLockHandle>{};
    return std::optional<RWLockHandle>(RWLockHandle{name_, me.id, mode, r->revision(), *lease_id});
  }
  return std::unexpected(contention_error(fmt::format("rwlock '{}'", name_)));
}

Result<std::optional<RWLockHandle>> DistributedRWLock::try_acquire(std::string_view holder, RWMode mode,
                                                                   uint64_t ttl_ms) {
  if (auto s = check(holder, ttl_ms); !s) return std::unexpected(s.error());
  uint64_t lease_id = 0;
  auto r = attempt(holder, mode, ttl_ms, false, &lease_id);
  if ((!r || !r->has_value()) && lease_id != 0) (void)kv::lease_revoke(store_, lease_id);
  return r;
}

Result<RWLockHandle> DistributedRWLock::try_acquire_until(std::string_view holder, RWMode mode, uint64_t ttl_ms,
                                                          uint64_t deadline_ms, const Waiter& waiter) {
  if (auto s = check(holder, ttl_ms); !s) return std::unexpected(s.error());
  uint64_t lease_id = 0;
  // Woken when the state or a holder's marker (deleted with its lease) changes.
  auto r = wait_for_change_until<RWLockHandle>(store_, coord_key(kKind, name_), waiter, deadline_ms,
                                               fmt::format("acquire rwlock '{}'", name_),
                                               [&] { return attempt(holder, mode, ttl_ms, true, &lease_id); });
  if (!r && lease_id != 0) {
    (void)remove(holder, lease_id);  // leave the writer queue so readers are not blocked
    (void)kv::lease_revoke(store_, lease_id);
  }
  return r;
}

Result<bool> DistributedRWLock::remove(std::string_view holder, uint64_t lease_id) {
  const std::string key = coord_key(kKind, name_);
  for (size_t i = 0; i < limits::kMaxCoordCasAttempts; ++i) {
    auto kv = kv::get(store_, key);
    if (!kv) return std::unexpected(kv.error());
    if (!kv->has_value()) return false;
    auto st = decode_rw(**kv);
    if (!st) return std::unexpected(st.error());
    auto matches = [&](const LeasedHolder& h) { return h.id == holder && h.lease_id == lease_id; };
    size_t removed = std::erase_if(st->writer, matches) + std::erase_if(st->readers, matches) +
                     std::erase_if(st->waiting_writers, matches);
    if (removed == 0) return false;
    TxnSpec spec;
    spec.compares.push_back(cmp_mod_revision(key, (*kv)->mod_revision()));
    spec.success.push_back(op_put(key, encode_rw(*st)));
    spec.success.push_back(op_delete(marker_key(key, holder)));
    auto r = run_txn(store_, std::move(spec));
    if (!r) return std::unexpected(r.error());
    if (r->succeeded()) return true;
  }
  return std::unexpected(contention_error(fmt::format("rwlock '{}'", name_)));
}

Status DistributedRWLock::release(const RWLockHandle& handle) {
  if (auto s = validate_name(name_); !s) return s;
  auto removed = remove(handle.holder, handle.lease_id);
  if (!removed) return std::unexpected(removed.error());
  auto revoked = kv::lease_revoke(store_, handle.lease_id);
  if (!*removed || (!revoked && revoked.error().code() == ErrorCode::kLeaseNotFound)) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("holder '{}' does not hold rwlock '{}' (its TTL lapsed?)", handle.holder, name_));
  }
  return {};
}

Status DistributedRWLock::renew(const RWLockHandle& handle) {
  if (auto s = validate_name(name_); !s) return s;
  auto lease = kv::lease_keepalive(store_, handle.lease_id);
  if (!lease) {
    if (lease.error().code() != ErrorCode::kLeaseNotFound) return std::unexpected(lease.error());
    return make_error(ErrorCode::kNotFound,
                      fmt::format("holder '{}' lost rwlock '{}': the TTL lapsed", handle.holder, name_));
  }
  return {};
}

Result<RWLockState> DistributedRWLock::state() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto kv = kv::get(store_, coord_key(kKind, name_));
  if (!kv) return std::unexpected(kv.error());
  if (!kv->has_value()) return RWLockState{};
  return decode_rw(**kv);
}

}  // namespace aspen::coord
