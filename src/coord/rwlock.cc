#include "coord/rwlock.h"

#include <fmt/format.h>

#include "core/limits.h"

namespace aspen::coord {

namespace {

constexpr std::string_view kReadValue = "R";
constexpr std::string_view kWriteValue = "W";

WaiterQueue::Config rwlock_config() {
  return WaiterQueue::Config{"rwq", "rwlock", limits::kMaxRWLockReaders + limits::kMaxRWLockWaitingWriters + 1,
                             false};
}

Result<std::vector<bool>> writer_flags(const QueueView& view) {
  std::vector<bool> is_writer;
  is_writer.reserve(view.waiters.size());
  for (const Owner& w : view.waiters) {
    if (w.value != kReadValue && w.value != kWriteValue) {
      return make_error(ErrorCode::kCorruption,
                        fmt::format("rwlock waiter '{}' has an unknown mode (fencing token {})", w.holder,
                                    w.fencing_token));
    }
    is_writer.push_back(w.value == kWriteValue);
  }
  return is_writer;
}

Result<Turn> decide_rwlock(const QueueView& view, size_t index) {
  auto is_writer = writer_flags(view);
  if (!is_writer) return std::unexpected(is_writer.error());
  return rwlock_turn(*is_writer, index);
}

RWLockHandle handle_of(const std::string& name, const Owner& o, RWMode mode, bool is_in_session) {
  return RWLockHandle{name, o.holder, mode, o.fencing_token, o.lease_id, is_in_session};
}

std::string value_of(RWMode mode) { return std::string(mode == RWMode::kWrite ? kWriteValue : kReadValue); }

}  // namespace

WaiterQueue DistributedRWLock::queue() const { return WaiterQueue(store_, name_, rwlock_config(), session_); }

Status DistributedRWLock::check(std::string_view holder, uint64_t ttl_ms) const {
  if (auto s = validate_name(name_); !s) return s;
  if (auto s = validate_id("holder id", holder); !s) return s;
  return validate_ttl_ms(ttl_ms);
}

Result<std::optional<RWLockHandle>> DistributedRWLock::try_acquire(std::string_view holder, RWMode mode,
                                                                   uint64_t ttl_ms) {
  if (auto s = check(holder, ttl_ms); !s) return std::unexpected(s.error());
  auto o = queue().try_acquire(holder, value_of(mode), ttl_ms, decide_rwlock);
  if (!o) return std::unexpected(o.error());
  if (!o->has_value()) return std::optional<RWLockHandle>{};
  return std::optional<RWLockHandle>(handle_of(name_, **o, mode, session_ != nullptr));
}

Result<RWLockHandle> DistributedRWLock::try_acquire_until(std::string_view holder, RWMode mode, uint64_t ttl_ms,
                                                          uint64_t deadline_ms, const Waiter& waiter) {
  if (auto s = check(holder, ttl_ms); !s) return std::unexpected(s.error());
  auto o = queue().acquire_until(holder, value_of(mode), ttl_ms, deadline_ms, waiter, decide_rwlock);
  if (!o) return std::unexpected(o.error());
  return handle_of(name_, *o, mode, session_ != nullptr);
}

Status DistributedRWLock::release(const RWLockHandle& handle) {
  if (auto s = validate_name(name_); !s) return s;
  return queue().release(handle.holder, handle.fencing_token, handle.lease_id, handle.is_in_session);
}

Status DistributedRWLock::renew(const RWLockHandle& handle) {
  if (auto s = validate_name(name_); !s) return s;
  return queue().renew(handle.holder, handle.fencing_token, handle.lease_id);
}

Result<RWLockState> DistributedRWLock::state() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto view = queue().read();
  if (!view) return std::unexpected(view.error());
  auto is_writer = writer_flags(*view);
  if (!is_writer) return std::unexpected(is_writer.error());
  RWLockState st;
  for (size_t i = 0; i < view->waiters.size(); ++i) {
    const Owner& w = view->waiters[i];
    LeasedHolder h{w.holder, 1, w.lease_id, w.fencing_token};
    const bool is_held = rwlock_turn(*is_writer, i).is_held;
    auto& list = (*is_writer)[i] ? (is_held ? st.writer : st.waiting_writers) : (is_held ? st.readers : st.waiting_readers);
    list.push_back(std::move(h));
  }
  return st;
}

}  // namespace aspen::coord
