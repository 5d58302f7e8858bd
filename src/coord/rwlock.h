// DistributedRWLock: many readers or one writer, granted in arrival order (FIFO).
//
//   DistributedRWLock rw(store, "catalog");   // or (store, "catalog", session)
//   auto h = rw.try_acquire_until("w-1", RWMode::kWrite, 10'000, deadline_ms, waiter);
//   ... h->fencing_token guards the writes ... rw.release(*h);
//
// State: one waiter key per acquisition, "__coord:rwq:<name>:<lease id>/<holder>" = {holder,
// mode}, attached to its lease (its own, or its Session's), in the shared FIFO queue of
// waiter_queue.h. A writer holds when its key is the oldest; a reader holds when no writer's key
// is older than its own. So readers share, a reader that arrives after a waiting writer waits
// behind it (writers are not starved), and a writer waits for everyone ahead of it. A writer
// waits only for the deletion of the key just ahead of it, a reader only for that of the last
// writer ahead of it (no thundering herd); a crashed holder or waiter drops out when its TTL
// lapses. The fencing token is the key's create revision: strictly increasing from writer to
// writer. try_acquire (one shot) joins and, if it does not hold at once, leaves.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "coord/session.h"
#include "coord/waiter_queue.h"

namespace aspen::coord {

enum class RWMode { kRead, kWrite };

struct RWLockHandle {
  std::string name;
  std::string holder;
  RWMode mode = RWMode::kRead;
  uint64_t fencing_token = 0;
  uint64_t lease_id = 0;
  bool is_in_session = false;  // the lease is a Session's: release keeps it
};

// Who holds and who waits, each list in arrival order.
struct RWLockState {
  std::vector<LeasedHolder> writer;  // zero or one
  std::vector<LeasedHolder> readers;
  std::vector<LeasedHolder> waiting_writers;
  std::vector<LeasedHolder> waiting_readers;
};

class DistributedRWLock {
 public:
  // With a session, acquisitions use its lease and ttl_ms arguments are ignored.
  DistributedRWLock(kv::KeyValueStore& store, std::string name, Session* session = nullptr)
      : store_(store), name_(std::move(name)), session_(session) {}

  // One attempt; nullopt: not now. InvalidArgument if `holder` already holds or awaits it.
  Result<std::optional<RWLockHandle>> try_acquire(std::string_view holder, RWMode mode, uint64_t ttl_ms);
  // Queues and waits its turn until deadline_ms (waiter's clock): Timeout then, leaving the
  // queue. A waiter keeps its lease alive while it waits.
  Result<RWLockHandle> try_acquire_until(std::string_view holder, RWMode mode, uint64_t ttl_ms,
                                         uint64_t deadline_ms, const Waiter& waiter);
  Status release(const RWLockHandle& handle);  // NotFound if it had expired
  Status renew(const RWLockHandle& handle);    // NotFound if it had expired
  Result<RWLockState> state();                 // live holders and waiters

 private:
  Status check(std::string_view holder, uint64_t ttl_ms) const;
  WaiterQueue queue() const;

  kv::KeyValueStore& store_;
  std::string name_;
  Session* session_ = nullptr;
};

}  // namespace aspen::coord
