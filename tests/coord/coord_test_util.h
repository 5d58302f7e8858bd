// Helpers for coordination tests: a virtual clock and Waiters that never really sleep.
#pragma once

#include <atomic>
#include <thread>

#include "coord/coord_common.h"
#include "kv/deterministic_store.h"

namespace aspen::coord::testing {

// A Waiter whose sleeps advance the store's clock (expiring leases as they run out).
inline Waiter store_clock_waiter(kv::DeterministicKeyValueStore& store) {
  return Waiter{[&store] { return store.now_ms(); }, [&store](uint64_t ms) { store.advance_time_ms(ms); }, 7};
}

// A Waiter on a private virtual clock that yields the thread instead of sleeping: for
// threads that contend in real time while the store's lease clock stands still.
struct YieldingWaiter {
  std::atomic<uint64_t> now{0};
  Waiter waiter() {
    return Waiter{[this] { return now.load(); },
                  [this](uint64_t ms) {
                    now.fetch_add(ms);
                    std::this_thread::yield();
                  },
                  11};
  }
};

inline constexpr uint64_t kFarDeadline = UINT64_MAX / 2;

}  // namespace aspen::coord::testing
