// DistributedSemaphore: at most `permits` units held at once, granted in arrival order (FIFO).
//
//   DistributedSemaphore sem(store, "gpu-pool", /*permits=*/4);   // or (..., 4, session)
//   auto p = sem.try_acquire_until("job-9", /*count=*/1, /*ttl_ms=*/30'000, deadline_ms, waiter);
//   ... sem.renew(*p) before the TTL ... sem.release(*p);
//
// State: one waiter key per acquisition, "__coord:semq:<name>:<lease id>/<holder>" = {holder,
// count, permits}, attached to its lease (its own, or its Session's), in the shared FIFO queue
// of waiter_queue.h. A waiter holds when its count and the counts of everyone ahead of it fit
// in the permits, so holders are always the oldest keys and nobody overtakes: a request for
// many permits is not starved by a stream of small ones. A crashed holder's permits come back,
// and a crashed waiter leaves the line, when its TTL runs out.
//
// Waking without a herd: the first waiter that does not fit is the only one that any release
// can let in, so it alone watches the queue; every waiter behind it waits for a signal from the
// one just ahead (a second key "__coord:semq-sig:<name>:<lease id>/<holder>", deleted when that
// waiter is let in, leaves or expires). One release wakes one waiter, plus one per waiter it
// lets in. try_acquire joins and, if it does not hold at once, leaves.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "coord/session.h"
#include "coord/waiter_queue.h"

namespace aspen::coord {

struct SemaphorePermit {
  std::string name;
  std::string holder;
  uint64_t count = 0;
  uint64_t lease_id = 0;
  uint64_t fencing_token = 0;  // its key's create revision; 0: release finds it by lease
  bool is_in_session = false;  // the lease is a Session's: release keeps it
};

// Who holds and who waits, in arrival order.
struct SemaphoreState {
  uint64_t permits = 0;
  std::vector<LeasedHolder> holders;
  std::vector<LeasedHolder> waiting;
};

uint64_t semaphore_in_use(const SemaphoreState& state);

class DistributedSemaphore {
 public:
  // With a session, acquisitions use its lease and ttl_ms arguments are ignored.
  DistributedSemaphore(kv::KeyValueStore& store, std::string name, uint64_t permits, Session* session = nullptr)
      : store_(store), name_(std::move(name)), permits_(permits), session_(session) {}

  // One attempt; nullopt: the permits are not free now, or others wait ahead. InvalidArgument
  // if `holder` already holds or awaits some, or the semaphore's waiters say another size.
  Result<std::optional<SemaphorePermit>> try_acquire(std::string_view holder, uint64_t count, uint64_t ttl_ms);
  // Queues and waits its turn until deadline_ms (waiter's clock): Timeout then, leaving the
  // line. A waiter keeps its lease alive while it waits.
  Result<SemaphorePermit> try_acquire_until(std::string_view holder, uint64_t count, uint64_t ttl_ms,
                                            uint64_t deadline_ms, const Waiter& waiter);
  Status release(const SemaphorePermit& permit);  // NotFound if it had expired
  Status renew(const SemaphorePermit& permit);    // NotFound if it had expired
  Result<uint64_t> available();                   // free permits now (dead holders not counted)
  Result<SemaphoreState> state();                 // live holders and waiters

 private:
  Status check(std::string_view holder, uint64_t count, uint64_t ttl_ms) const;
  WaiterQueue queue() const;

  kv::KeyValueStore& store_;
  std::string name_;
  uint64_t permits_;
  Session* session_ = nullptr;
};

}  // namespace aspen::coord
