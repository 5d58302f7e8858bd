// DistributedLock: a named mutual-exclusion lock over any KeyValueStore, with fencing tokens.
//
//   DistributedLock lock(store, "jobs/reindex");
//   auto h = lock.try_acquire_until("worker-7", /*ttl_ms=*/10'000, deadline_ms, waiter);
//   ... pass h->fencing_token to every storage write the lock protects; renew() before ttl ...
//   lock.release(*h);
//
// State: a queue of waiter keys "__coord:lockq:<name>:<lease id>/<holder>" = {holder, lease},
// each attached to the lease its acquisition granted (or its Session's). The waiter whose key was created first holds
// the lock, so waiters get it in arrival order (FIFO); each waits only for the key just ahead
// of it to go (no thundering herd), through a watch when the store offers one
// (kv::ChangeNotifier: the remote client), else by polling. The queue is waiter_queue.h,
// shared with DistributedRWLock and DistributedSemaphore. A holder that crashes loses the
// lock when its TTL runs out. The fencing token is the holder's key's create_revision: it
// strictly increases from holder to holder, so a resource that remembers the largest token it
// has seen can refuse a stale holder that still believes it owns the lock.
#pragma once

#include <optional>
#include <string>

#include "coord/coord_common.h"
#include "coord/session.h"
#include "coord/waiter_queue.h"

namespace aspen::coord {

struct LockHandle {
  std::string name;
  std::string holder;
  uint64_t fencing_token = 0;
  uint64_t lease_id = 0;
  bool is_in_session = false;  // the lease is a Session's: release keeps it
};

struct LockInfo {
  std::string holder;
  uint64_t fencing_token = 0;
  uint64_t lease_id = 0;
};

class DistributedLock {
 public:
  // With a session, acquisitions use its lease (two writes per lock cycle; the session keeps
  // it alive) and ttl_ms arguments are ignored; without one, each acquisition grants its own.
  DistributedLock(kv::KeyValueStore& store, std::string name, Session* session = nullptr)
      : store_(store), name_(std::move(name)), session_(session) {}

  // One attempt. nullopt: another holder has it. InvalidArgument if `holder` already holds it
  // (a second acquisition by the same id would hide a bug or a split brain).
  Result<std::optional<LockHandle>> try_acquire(std::string_view holder, uint64_t ttl_ms);
  // Queues and waits its turn until acquired or deadline_ms (waiter's clock) passes: Timeout,
  // leaving the queue. A waiter keeps its lease alive while it waits.
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
  WaiterQueue queue() const;

  kv::KeyValueStore& store_;
  std::string name_;
  Session* session_ = nullptr;
};

}  // namespace aspen::coord
