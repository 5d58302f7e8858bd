#include "coord/lock.h"

#include <fmt/format.h>

#include "coord/owned_key.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "lock";
}

Status DistributedLock::check_args(std::string_view holder, uint64_t ttl_ms) const {
  if (auto s = validate_name(name_); !s) return s;
  if (auto s = validate_id("holder id", holder); !s) return s;
  return validate_ttl_ms(ttl_ms);
}

Result<std::optional<LockHandle>> DistributedLock::attempt(std::string_view holder, uint64_t ttl_ms,
                                                           uint64_t* lease_id) {
  if (*lease_id == 0) {
    auto lease = kv::lease_grant(store_, ttl_ms);
    if (!lease) return std::unexpected(lease.error());
    *lease_id = lease->id();
  }
  Owner me{std::string(holder), {}, *lease_id, 0};
  auto claim = claim_owned_key(store_, coord_key(kKind, name_), me);
  if (!claim) {
    if (claim.error().code() == ErrorCode::kLeaseNotFound) {  // our lease ran out while waiting
      *lease_id = 0;
      return std::optional<LockHandle>{};
    }
    return std::unexpected(claim.error());
  }
  if (claim->is_claimed) {
    return std::optional<LockHandle>(LockHandle{name_, me.holder, claim->owner.fencing_token, *lease_id});
  }
  if (claim->owner.holder == holder) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("lock '{}' is already held by holder '{}' (fencing token {}); renew or "
                                  "release it instead of acquiring it again",
                                  name_, holder, claim->owner.fencing_token));
  }
  return std::optional<LockHandle>{};
}

Result<std::optional<LockHandle>> DistributedLock::try_acquire(std::string_view holder, uint64_t ttl_ms) {
  if (auto s = check_args(holder, ttl_ms); !s) return std::unexpected(s.error());
  uint64_t lease_id = 0;
  auto r = attempt(holder, ttl_ms, &lease_id);
  if ((!r || !r->has_value()) && lease_id != 0) (void)kv::lease_revoke(store_, lease_id);
  return r;
}

Result<LockHandle> DistributedLock::try_acquire_until(std::string_view holder, uint64_t ttl_ms,
                                                      uint64_t deadline_ms, const Waiter& waiter) {
  if (auto s = check_args(holder, ttl_ms); !s) return std::unexpected(s.error());
  uint64_t lease_id = 0;
  auto r = wait_until<LockHandle>(waiter, deadline_ms, fmt::format("acquire lock '{}'", name_),
                                  [&] { return attempt(holder, ttl_ms, &lease_id); });
  if (!r && lease_id != 0) (void)kv::lease_revoke(store_, lease_id);
  return r;
}

Status DistributedLock::release(const LockHandle& handle) {
  if (auto s = validate_name(handle.name); !s) return s;
  return release_owned_key(store_, coord_key(kKind, handle.name), handle.fencing_token, handle.lease_id,
                           fmt::format("lock '{}'", handle.name));
}

Status DistributedLock::renew(const LockHandle& handle) {
  if (auto s = validate_name(handle.name); !s) return s;
  return renew_owned_key(store_, coord_key(kKind, handle.name), handle.fencing_token, handle.lease_id,
                         fmt::format("lock '{}'", handle.name));
}

Result<std::optional<LockInfo>> DistributedLock::holder() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto o = read_owner(store_, coord_key(kKind, name_));
  if (!o) return std::unexpected(o.error());
  if (!o->has_value()) return std::optional<LockInfo>{};
  return std::optional<LockInfo>(LockInfo{(*o)->holder, (*o)->fencing_token, (*o)->lease_id});
}

}  // namespace aspen::coord
