#include "coord/semaphore.h"

#include <fmt/format.h>

#include <charconv>

#include "core/limits.h"

namespace aspen::coord {

namespace {

WaiterQueue::Config semaphore_config() {
  return WaiterQueue::Config{"semq", "semaphore", limits::kMaxSemaphoreHolders + limits::kMaxSemaphoreWaiters, true};
}

// A waiter's value: "<count>/<permits>", so every waiter can check they agree on the size.
std::string value_of(uint64_t count, uint64_t permits) { return fmt::format("{}/{}", count, permits); }

Result<uint64_t> parse_u64(std::string_view s, const Owner& w) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("semaphore waiter '{}' has a malformed record (fencing token {})", w.holder,
                                  w.fencing_token));
  }
  return v;
}

// The waiters' counts in queue order. The semaphore's size is the one its oldest waiter gave:
// InvalidArgument if `permits` differs. A newer waiter that gave another size fails on its own
// read and leaves; until then it only waits in line (its count still counts), so it cannot
// make the others fail.
Result<std::vector<uint64_t>> counts_of(const QueueView& view, std::string_view name, uint64_t permits) {
  std::vector<uint64_t> counts;
  counts.reserve(view.waiters.size());
  for (size_t i = 0; i < view.waiters.size(); ++i) {
    const Owner& w = view.waiters[i];
    const auto slash = w.value.find('/');
    auto count = parse_u64(std::string_view(w.value).substr(0, slash), w);
    if (!count) return std::unexpected(count.error());
    auto theirs = parse_u64(slash == std::string::npos ? std::string_view() : std::string_view(w.value).substr(slash + 1), w);
    if (!theirs) return std::unexpected(theirs.error());
    if (i == 0 && *theirs != permits) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("semaphore '{}' has {} permits, not {}", name, *theirs, permits));
    }
    if (*count == 0 || *count > *theirs) {
      return make_error(ErrorCode::kCorruption,
                        fmt::format("semaphore waiter '{}' asks for {} of {} permits", w.holder, *count, *theirs));
    }
    counts.push_back(*count);
  }
  return counts;
}

SemaphorePermit permit_of(const std::string& name, const Owner& o, uint64_t count, bool is_in_session) {
  return SemaphorePermit{name, o.holder, count, o.lease_id, o.fencing_token, is_in_session};
}

// The semaphore's turn rule over a read of its queue: whether the waiter at `index` may hold.
auto turn_rule(const std::string& name, uint64_t permits) {
  return [&name, permits](const QueueView& view, size_t index) -> Result<Turn> {
    auto counts = counts_of(view, name, permits);
    if (!counts) return std::unexpected(counts.error());
    return semaphore_turn(*counts, permits, index);
  };
}

}  // namespace

uint64_t semaphore_in_use(const SemaphoreState& state) {
  uint64_t n = 0;
  for (const auto& h : state.holders) n += h.count;
  return n;
}

WaiterQueue DistributedSemaphore::queue() const { return WaiterQueue(store_, name_, semaphore_config(), session_); }

Status DistributedSemaphore::check(std::string_view holder, uint64_t count, uint64_t ttl_ms) const {
  if (auto s = validate_name(name_); !s) return s;
  if (auto s = validate_id("holder id", holder); !s) return s;
  if (auto s = validate_ttl_ms(ttl_ms); !s) return s;
  if (permits_ == 0 || permits_ > limits::kMaxSemaphorePermits) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("semaphore permits {} is outside [1, {}]", permits_, limits::kMaxSemaphorePermits));
  }
  if (count == 0 || count > permits_) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("cannot take {} permits from a semaphore of {}", count, permits_));
  }
  return {};
}

Result<std::optional<SemaphorePermit>> DistributedSemaphore::try_acquire(std::string_view holder, uint64_t count,
                                                                         uint64_t ttl_ms) {
  if (auto s = check(holder, count, ttl_ms); !s) return std::unexpected(s.error());
  auto decide = turn_rule(name_, permits_);
  auto o = queue().try_acquire(holder, value_of(count, permits_), ttl_ms, decide);
  if (!o) return std::unexpected(o.error());
  if (!o->has_value()) return std::optional<SemaphorePermit>{};
  return std::optional<SemaphorePermit>(permit_of(name_, **o, count, session_ != nullptr));
}

Result<SemaphorePermit> DistributedSemaphore::try_acquire_until(std::string_view holder, uint64_t count,
                                                                uint64_t ttl_ms, uint64_t deadline_ms,
                                                                const Waiter& waiter) {
  if (auto s = check(holder, count, ttl_ms); !s) return std::unexpected(s.error());
  auto decide = turn_rule(name_, permits_);
  auto o = queue().acquire_until(holder, value_of(count, permits_), ttl_ms, deadline_ms, waiter, decide);
  if (!o) return std::unexpected(o.error());
  return permit_of(name_, *o, count, session_ != nullptr);
}

Status DistributedSemaphore::release(const SemaphorePermit& permit) {
  if (auto s = validate_name(name_); !s) return s;
  return queue().release(permit.holder, permit.fencing_token, permit.lease_id, permit.is_in_session);
}

Status DistributedSemaphore::renew(const SemaphorePermit& permit) {
  if (auto s = validate_name(name_); !s) return s;
  return queue().renew(permit.holder, permit.fencing_token, permit.lease_id);
}

Result<SemaphoreState> DistributedSemaphore::state() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto view = queue().read();
  if (!view) return std::unexpected(view.error());
  auto counts = counts_of(*view, name_, permits_);
  if (!counts) return std::unexpected(counts.error());
  SemaphoreState st{permits_, {}, {}};
  for (size_t i = 0; i < view->waiters.size(); ++i) {
    const Owner& w = view->waiters[i];
    LeasedHolder h{w.holder, (*counts)[i], w.lease_id, w.fencing_token};
    (semaphore_turn(*counts, permits_, i).is_held ? st.holders : st.waiting).push_back(std::move(h));
  }
  return st;
}

Result<uint64_t> DistributedSemaphore::available() {
  auto st = state();
  if (!st) return std::unexpected(st.error());
  return permits_ - std::min(permits_, semaphore_in_use(*st));
}

}  // namespace aspen::coord
