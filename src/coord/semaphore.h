// DistributedSemaphore: at most `permits` units held at once, each holder on its own TTL.
//
//   DistributedSemaphore sem(store, "gpu-pool", /*permits=*/4);
//   auto p = sem.try_acquire_until("job-9", /*count=*/1, /*ttl_ms=*/30'000, deadline_ms, waiter);
//   ... sem.renew(*p) before the TTL ... sem.release(*p);
//
// State: "__coord:sem:<name>" = {permits, holders[{id, count, lease}], waiting[...]} plus one
// marker key per holder and waiter attached to its lease (see leased_holders.h): a crashed
// holder's permits come back, and a crashed waiter leaves the line, when its TTL runs out.
// The invariant "sum of live holders' counts <= permits" is checked in the pure
// plan_semaphore_acquire() and written with a Txn on the state's mod_revision.
//
// Fair: try_acquire_until joins a waiting line (arrival order) when the permits it asks for
// are not free, and only the first in line is granted; nobody overtakes it, so a request for
// many permits is not starved by a stream of small ones. Waiters wait on a watch of the
// semaphore's keys (kv::ChangeNotifier), not by polling. try_acquire never queues.
#pragma once

#include <optional>
#include <string>

#include "coord/leased_holders.h"

namespace aspen::coord {

struct SemaphorePermit {
  std::string name;
  std::string holder;
  uint64_t count = 0;
  uint64_t lease_id = 0;
};

struct SemaphoreState {
  uint64_t permits = 0;
  std::vector<LeasedHolder> holders;
  std::vector<LeasedHolder> waiting;  // arrival order
};

enum class SemaphoreOutcome : uint8_t { kGranted, kQueued, kRefused };

// Pure: prune dead holders and waiters, then grant `holder` its count if they fit and nobody
// waits ahead of it; otherwise (with should_queue) put it at the end of the line. kRefused
// leaves the state as it was (no write needed). InvalidArgument if the holder already holds
// some, Unavailable at kMaxSemaphoreHolders or kMaxSemaphoreWaiters.
Result<std::pair<SemaphoreOutcome, SemaphoreState>> plan_semaphore_acquire(SemaphoreState state,
                                                                           const std::set<std::string>& live,
                                                                           const LeasedHolder& holder,
                                                                           bool should_queue);
uint64_t semaphore_in_use(const SemaphoreState& state);

class DistributedSemaphore {
 public:
  DistributedSemaphore(kv::KeyValueStore& store, std::string name, uint64_t permits)
      : store_(store), name_(std::move(name)), permits_(permits) {}

  Result<std::optional<SemaphorePermit>> try_acquire(std::string_view holder, uint64_t count, uint64_t ttl_ms);
  Result<SemaphorePermit> try_acquire_until(std::string_view holder, uint64_t count, uint64_t ttl_ms,
                                            uint64_t deadline_ms, const Waiter& waiter);
  Status release(const SemaphorePermit& permit);  // NotFound if it had expired
  Status renew(const SemaphorePermit& permit);    // NotFound if it had expired
  Result<uint64_t> available();                   // free permits now (dead holders not counted)

 private:
  Status check(std::string_view holder, uint64_t count, uint64_t ttl_ms) const;
  Result<std::optional<SemaphorePermit>> attempt(std::string_view holder, uint64_t count, uint64_t ttl_ms,
                                                 bool should_queue, uint64_t* lease_id);
  Result<std::optional<SemaphoreState>> read_state(std::string* key, uint64_t* mod_revision);

  kv::KeyValueStore& store_;
  std::string name_;
  uint64_t permits_;
};

}  // namespace aspen::coord
