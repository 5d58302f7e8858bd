// DistributedRWLock: many readers or one writer; a waiting writer is not starved.
//
//   DistributedRWLock rw(store, "catalog");
//   auto h = rw.try_acquire_until("w-1", RWMode::kWrite, 10'000, deadline_ms, waiter);
//   ... h->fencing_token guards the writes ... rw.release(*h);
//
// State: "__coord:rwlock:<name>" = {writer?, readers[], waiting writers[]} plus a lease-attached
// marker per holder (leased_holders.h), so crashed readers, writers and waiters drop out when
// their TTL lapses. A writer that cannot get the lock inside try_acquire_until queues itself
// (FIFO among writers); while any writer waits, new readers are refused, so the readers drain
// and the first waiting writer gets in. The write fencing token is the revision of the Txn that
// granted it (strictly increasing). try_acquire (one shot) never queues.
#pragma once

#include <optional>
#include <string>

#include "coord/leased_holders.h"

namespace aspen::coord {

enum class RWMode { kRead, kWrite };

struct RWLockHandle {
  std::string name;
  std::string holder;
  RWMode mode = RWMode::kRead;
  uint64_t fencing_token = 0;
  uint64_t lease_id = 0;
};

struct RWLockState {
  std::vector<LeasedHolder> writer;  // zero or one
  std::vector<LeasedHolder> readers;
  std::vector<LeasedHolder> waiting_writers;
};

enum class RWOutcome { kGranted, kQueued, kRefused };
// Pure: prune dead holders, then decide. `should_queue`: a refused writer joins the queue.
Result<std::pair<RWOutcome, RWLockState>> plan_rwlock_acquire(RWLockState state, const std::set<std::string>& live,
                                                              const LeasedHolder& holder, RWMode mode,
                                                              bool should_queue);

class DistributedRWLock {
 public:
  DistributedRWLock(kv::KeyValueStore& store, std::string name) : store_(store), name_(std::move(name)) {}

  Result<std::optional<RWLockHandle>> try_acquire(std::string_view holder, RWMode mode, uint64_t ttl_ms);
  Result<RWLockHandle> try_acquire_until(std::string_view holder, RWMode mode, uint64_t ttl_ms,
                                         uint64_t deadline_ms, const Waiter& waiter);
  Status release(const RWLockHandle& handle);  // NotFound if it had expired
  Status renew(const RWLockHandle& handle);    // NotFound if it had expired
  Result<RWLockState> state();                 // as stored, dead holders included

 private:
  Status check(std::string_view holder, uint64_t ttl_ms) const;
  Result<std::optional<RWLockHandle>> attempt(std::string_view holder, RWMode mode, uint64_t ttl_ms,
                                              bool should_queue, uint64_t* lease_id);
  // Removes `holder` (any role) from the state and deletes its marker. false: it was not there.
  Result<bool> remove(std::string_view holder, uint64_t lease_id);

  kv::KeyValueStore& store_;
  std::string name_;
};

}  // namespace aspen::coord
