// DistributedLock: a named mutual-exclusion lock over any KeyValueStore, with fencing tokens.
//
//   DistributedLock lock(store, "jobs/reindex");
//   auto h = lock.try_acquire_until("worker-7", /*ttl_ms=*/10'000, deadline_ms, waiter);
//   ... pass h->fencing_token to every storage write the lock protects; renew() before ttl ...
//   lock.release(*h);
//
// State: "__coord:lock:<name>" = {holder, lease}, attached to a lease granted per acquisition,
// so a holder that crashes loses the lock when its TTL runs out and another can take it over.
// The fencing token is the revision of the Txn that took the lock (the key's create_revision):
// it strictly increases on every acquisition, so a resource that remembers the largest token
// it has seen can refuse a stale holder that still believes it owns the lock.
#pragma once

#include <optional>
#include <string>

#include "coord/coord_common.h"

namespace aspen::coord {

struct LockHandle {
  std::string name;
  std::string holder;
  uint64_t fencing_token = 0;
  uint64_t lease_id = 0;
};

struct LockInfo {
  std::string holder;
  uint64_t fencing_token = 0;
  uint64_t lease_id = 0;
};

class DistributedLock {
 public:
  DistributedLock(kv::KeyValueStore& store, std::string name) : store_(store), name_(std::move(name)) {}

  // One attempt. nullopt: another holder has it. InvalidArgument if `holder` already holds it
  // (a second acquisition by the same id would hide a bug or a split brain).
  Result<std::optional<LockHandle>> try_acquire(std::string_view holder, uint64_t ttl_ms);
  // Polls until acquired or deadline_ms (waiter's clock) passes: Timeout.
  Result<LockHandle> try_acquire_until(std::string_view holder, uint64_t ttl_ms, uint64_t deadline_ms,
                                       const Waiter& waiter);
  // NotFound if the lock is no longer held with this handle's token (expired, taken over).
  Status release(const LockHandle& handle);
  // Extends the TTL. NotFound if the lock was lost.
  Status renew(const LockHandle& handle);
  // Who holds it now.
  Result<std::optional<LockInfo>> holder();

 private:
  Status check_args(std::string_view holder, uint64_t ttl_ms) const;
  // One attempt with an existing lease (*lease_id == 0: grant one first; reset to 0 when the
  // lease turns out to have expired so the next attempt grants a fresh one).
  Result<std::optional<LockHandle>> attempt(std::string_view holder, uint64_t ttl_ms, uint64_t* lease_id);

  kv::KeyValueStore& store_;
  std::string name_;
};

}  // namespace aspen::coord
