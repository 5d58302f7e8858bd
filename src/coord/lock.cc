#include "coord/lock.h"

#include <fmt/format.h>

namespace aspen::coord {

namespace {

WaiterQueue::Config lock_config() {
  return WaiterQueue::Config{"lockq", "lock", limits::kMaxLockWaiters, false};
}

Result<Turn> decide_lock(const QueueView&, size_t index) { return lock_turn(index); }

LockHandle handle_of(const std::string& name, const Owner& o, bool is_in_session) {
  return LockHandle{name, o.holder, o.fencing_token, o.lease_id, is_in_session};
}

}  // namespace

WaiterQueue DistributedLock::queue() const { return WaiterQueue(store_, name_, lock_config(), session_); }

Status DistributedLock::check_args(std::string_view holder, uint64_t ttl_ms) const {
  if (auto s = validate_name(name_); !s) return s;
  if (auto s = validate_id("holder id", holder); !s) return s;
  return validate_ttl_ms(ttl_ms);
}

Result<std::optional<LockHandle>> DistributedLock::try_acquire(std::string_view holder, uint64_t ttl_ms) {
  if (auto s = check_args(holder, ttl_ms); !s) return std::unexpected(s.error());
  auto o = queue().try_acquire(holder, "", ttl_ms, decide_lock);
  if (!o) return std::unexpected(o.error());
  if (!o->has_value()) return std::optional<LockHandle>{};
  return std::optional<LockHandle>(handle_of(name_, **o, session_ != nullptr));
}

Result<LockHandle> DistributedLock::try_acquire_until(std::string_view holder, uint64_t ttl_ms, uint64_t deadline_ms,
                                                      const Waiter& waiter) {
  if (auto s = check_args(holder, ttl_ms); !s) return std::unexpected(s.error());
  auto o = queue().acquire_until(holder, "", ttl_ms, deadline_ms, waiter, decide_lock);
  if (!o) return std::unexpected(o.error());
  return handle_of(name_, *o, session_ != nullptr);
}

Status DistributedLock::release(const LockHandle& handle) {
  if (auto s = validate_name(handle.name); !s) return s;
  return WaiterQueue(store_, handle.name, lock_config(), nullptr)
      .release(handle.holder, handle.fencing_token, handle.lease_id, handle.is_in_session);
}

Status DistributedLock::renew(const LockHandle& handle) {
  if (auto s = validate_name(handle.name); !s) return s;
  return WaiterQueue(store_, handle.name, lock_config(), nullptr)
      .renew(handle.holder, handle.fencing_token, handle.lease_id);
}

Result<std::optional<LockInfo>> DistributedLock::holder() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto view = queue().read();
  if (!view) return std::unexpected(view.error());
  if (view->waiters.empty()) return std::optional<LockInfo>{};
  const Owner& first = view->waiters.front();
  return std::optional<LockInfo>(LockInfo{first.holder, first.fencing_token, first.lease_id});
}

}  // namespace aspen::coord
