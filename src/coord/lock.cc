#include "coord/lock.h"

#include <fmt/format.h>

#include <algorithm>

#include "coord/owned_key.h"

namespace aspen::coord {

namespace {

constexpr std::string_view kKind = "lockq";

// The queue as one read saw it: waiters in arrival order (create revision = fencing token).
struct Queue {
  std::vector<Owner> waiters;
  uint64_t revision = 0;
};

}  // namespace

std::string DistributedLock::queue_prefix() const { return coord_key(kKind, name_) + ":"; }

std::string DistributedLock::waiter_key(uint64_t lease_id, std::string_view holder) const {
  return queue_prefix() + fmt::format("{:016x}/{}", lease_id, holder);
}

Status DistributedLock::check_args(std::string_view holder, uint64_t ttl_ms) const {
  if (auto s = validate_name(name_); !s) return s;
  if (auto s = validate_id("holder id", holder); !s) return s;
  return validate_ttl_ms(ttl_ms);
}

Result<Owner> DistributedLock::enqueue(std::string_view holder, uint64_t ttl_ms, uint64_t* lease_id) {
  if (session_ != nullptr) {
    *lease_id = session_->lease_id();
  } else if (*lease_id == 0) {
    auto lease = kv::lease_grant(store_, ttl_ms);
    if (!lease) return std::unexpected(lease.error());
    *lease_id = lease->id();
  }
  Owner me{std::string(holder), {}, *lease_id, 0};
  auto claim = claim_owned_key(store_, waiter_key(*lease_id, holder), me);
  if (!claim) return std::unexpected(claim.error());
  if (!claim->is_claimed) {
    return make_error(ErrorCode::kInternal, fmt::format("lock '{}': lease {} already queues a waiter", name_, *lease_id));
  }
  return claim->owner;
}

Result<DistributedLock::Position> DistributedLock::position(const Owner& me) {
  auto page = kv::scan_prefix(store_, queue_prefix(), static_cast<uint32_t>(limits::kMaxLockWaiters));
  if (!page) return std::unexpected(page.error());
  Queue q;
  q.revision = page->revision();
  for (const auto& kv : page->kvs()) {
    auto o = decode_owner(kv);
    if (!o) return std::unexpected(o.error());
    q.waiters.push_back(std::move(*o));
  }
  std::sort(q.waiters.begin(), q.waiters.end(),
            [](const Owner& a, const Owner& b) { return a.fencing_token < b.fencing_token; });
  Position pos;
  pos.revision = q.revision;
  for (size_t i = 0; i < q.waiters.size(); ++i) {
    const Owner& w = q.waiters[i];
    if (w.fencing_token == me.fencing_token) {
      pos.is_queued = true;
      pos.is_first = i == 0;
      pos.is_second = i == 1;
      if (i > 0) pos.predecessor = waiter_key(q.waiters[i - 1].lease_id, q.waiters[i - 1].holder);
    } else if (w.holder == me.holder) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("lock '{}' is already held or awaited by holder '{}' (fencing token {}); one "
                                    "holder id takes a lock once",
                                    name_, me.holder, w.fencing_token));
    }
  }
  if (!pos.is_queued && page->has_more()) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("lock '{}' has more than {} waiters", name_, limits::kMaxLockWaiters));
  }
  return pos;
}

void DistributedLock::leave(const Owner& me) {
  // Best effort: a waiter that cannot clean up leaves a key its lease removes at its TTL.
  const bool is_own_lease = session_ == nullptr;
  if (!release_owned_key(store_, waiter_key(me.lease_id, me.holder), me.fencing_token, me.lease_id, "lock waiter",
                         is_own_lease) &&
      is_own_lease) {
    (void)kv::lease_revoke(store_, me.lease_id);
  }
}

Result<std::optional<LockHandle>> DistributedLock::try_acquire(std::string_view holder, uint64_t ttl_ms) {
  if (auto s = check_args(holder, ttl_ms); !s) return std::unexpected(s.error());
  uint64_t lease_id = 0;
  auto me = enqueue(holder, ttl_ms, &lease_id);
  if (!me) {
    if (lease_id != 0 && session_ == nullptr) (void)kv::lease_revoke(store_, lease_id);
    return std::unexpected(me.error());
  }
  auto pos = position(*me);
  if (pos && pos->is_first) {
    return std::optional<LockHandle>(LockHandle{name_, me->holder, me->fencing_token, lease_id, session_ != nullptr});
  }
  leave(*me);
  if (!pos) return std::unexpected(pos.error());
  return std::optional<LockHandle>{};
}

Result<LockHandle> DistributedLock::try_acquire_until(std::string_view holder, uint64_t ttl_ms, uint64_t deadline_ms,
                                                      const Waiter& waiter) {
  if (auto s = check_args(holder, ttl_ms); !s) return std::unexpected(s.error());
  auto* notifier = dynamic_cast<kv::ChangeNotifier*>(&store_);
  uint64_t lease_id = 0;
  std::optional<Owner> me;
  uint64_t renewed_at_ms = 0;
  uint64_t random = waiter.jitter_seed;
  auto fail = [&](Error e) -> Result<LockHandle> {
    if (me) {
      leave(*me);
    } else if (lease_id != 0 && session_ == nullptr) {
      (void)kv::lease_revoke(store_, lease_id);
    }
    return std::unexpected(std::move(e));
  };
  for (uint32_t round = 0; round < limits::kMaxCoordWaitAttempts; ++round) {
    if (!me) {
      auto queued = enqueue(holder, ttl_ms, &lease_id);
      if (!queued) {
        // The lease ran out between grant and claim: a fresh one (a session's is final).
        if (queued.error().code() != ErrorCode::kLeaseNotFound || session_ != nullptr) return fail(queued.error());
        lease_id = 0;
        continue;
      }
      me = std::move(*queued);
      renewed_at_ms = waiter.now_ms();
    }
    auto pos = position(*me);
    if (!pos) return fail(pos.error());
    if (pos->is_first) return LockHandle{name_, me->holder, me->fencing_token, lease_id, session_ != nullptr};
    if (!pos->is_queued) {
      // Our lease expired while we waited (its key went with it): queue again, at the back.
      if (session_ != nullptr) {
        return fail(Error(ErrorCode::kLeaseNotFound, fmt::format("lock '{}': the session's lease ended", name_)));
      }
      me.reset();
      lease_id = 0;
      continue;
    }
    const uint64_t now = waiter.now_ms();
    if (now >= deadline_ms) {
      return fail(Error(ErrorCode::kTimeout, fmt::format("acquire lock '{}': deadline passed before it succeeded", name_)));
    }
    // Keep our place: the lease must outlive the wait (a session renews its own).
    if (session_ == nullptr && now >= renewed_at_ms + ttl_ms / 3) {
      if (auto k = kv::lease_keepalive(store_, lease_id); !k) {
        if (k.error().code() != ErrorCode::kLeaseNotFound) return fail(k.error());
        me.reset();
        lease_id = 0;
        continue;
      }
      renewed_at_ms = now;
    }
    // Only the waiter just ahead matters (no herd): wait for its key to go.
    const uint64_t lease_ttl_ms = session_ != nullptr ? session_->ttl_ms() : ttl_ms;
    const uint64_t wait_ms = std::min(deadline_ms - now, std::max<uint64_t>(1, lease_ttl_ms / 3));
    if (notifier != nullptr) {
      auto gone = notifier->wait_for_delete(pos->predecessor, pos->revision, wait_ms);
      if (!gone) return fail(gone.error());
      // Second in line and the holder's key is gone: ours is now the oldest (keys created
      // later queue behind it, earlier ones cannot appear), so no second read is needed.
      // Our own key is still there: its lease was kept alive for longer than this wait.
      if (*gone && pos->is_second) return LockHandle{name_, me->holder, me->fencing_token, lease_id, session_ != nullptr};
    } else {
      random = random * 6364136223846793005ULL + 1442695040888963407ULL;
      waiter.sleep_ms(std::min(backoff_ms(round, random >> 11), wait_ms));
    }
  }
  return fail(Error(ErrorCode::kTimeout, fmt::format("acquire lock '{}': too many rounds", name_)));
}

Status DistributedLock::release(const LockHandle& handle) {
  if (auto s = validate_name(handle.name); !s) return s;
  return release_owned_key(store_, DistributedLock(store_, handle.name).waiter_key(handle.lease_id, handle.holder),
                           handle.fencing_token, handle.lease_id, fmt::format("lock '{}'", handle.name),
                           !handle.is_in_session);
}

Status DistributedLock::renew(const LockHandle& handle) {
  if (auto s = validate_name(handle.name); !s) return s;
  return renew_owned_key(store_, DistributedLock(store_, handle.name).waiter_key(handle.lease_id, handle.holder),
                         handle.fencing_token, handle.lease_id, fmt::format("lock '{}'", handle.name));
}

Result<std::optional<LockInfo>> DistributedLock::holder() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto page = kv::scan_prefix(store_, queue_prefix(), static_cast<uint32_t>(limits::kMaxLockWaiters));
  if (!page) return std::unexpected(page.error());
  std::optional<Owner> first;
  for (const auto& kv : page->kvs()) {
    auto o = decode_owner(kv);
    if (!o) return std::unexpected(o.error());
    if (!first || o->fencing_token < first->fencing_token) first = std::move(*o);
  }
  if (!first) return std::optional<LockInfo>{};
  return std::optional<LockInfo>(LockInfo{first->holder, first->fencing_token, first->lease_id});
}

}  // namespace aspen::coord
