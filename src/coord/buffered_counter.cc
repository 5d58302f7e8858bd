#include "coord/buffered_counter.h"

#include <cstdlib>

namespace aspen::coord {

bool is_flush_due(int64_t pending, uint64_t last_flush_ms, uint64_t now_ms, const BufferedCounterConfig& cfg) {
  if (pending == 0) return false;
  uint64_t magnitude = pending < 0 ? uint64_t(0) - uint64_t(pending) : uint64_t(pending);
  return magnitude >= cfg.flush_threshold || now_ms >= last_flush_ms + cfg.flush_interval_ms;
}

Status BufferedCounter::add(int64_t delta) {
  std::lock_guard lock(mu_);
  auto next = checked_add(pending_, delta);
  if (!next) return std::unexpected(next.error());
  pending_ = *next;
  return {};
}

bool BufferedCounter::is_flush_due(uint64_t now_ms) const {
  std::lock_guard lock(mu_);
  return coord::is_flush_due(pending_, last_flush_ms_, now_ms, cfg_);
}

Result<int64_t> BufferedCounter::flush(uint64_t now_ms) {
  std::lock_guard flushing(flush_mu_);
  int64_t delta = 0;
  {
    std::lock_guard lock(mu_);
    delta = pending_;
    pending_ = 0;
  }
  auto r = delta == 0 ? counter_.get() : counter_.add(delta);
  std::lock_guard lock(mu_);
  if (!r) {
    // Put the delta back; if that would overflow, the add() that caused it already failed.
    auto back = checked_add(pending_, delta);
    pending_ = back ? *back : pending_;
    return r;
  }
  last_flush_ms_ = now_ms;
  return r;
}

int64_t BufferedCounter::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

}  // namespace aspen::coord
