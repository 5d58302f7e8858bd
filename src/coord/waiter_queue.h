// Internal to src/coord: a fair (FIFO) queue of waiter keys, shared by DistributedLock,
// DistributedRWLock and DistributedSemaphore.
//
// Each acquisition creates its own key "__coord:<kind>:<name>:<lease id>/<holder>" = an owner
// record (owned_key.h) attached to its lease (its own, or its Session's). The queue order is
// the keys' create revisions, which are also the fencing tokens: keys created later always
// queue behind, so who holds is a function of the queue alone (a pure "turn" function per
// primitive, below) and stays true until the holder's key goes. A waiter waits for one
// precise event, never for "something changed" (no thundering herd):
//   - kDeletion: a given key ahead of it is deleted (lock, RW lock);
//   - kSignal: the waiter just ahead deletes its signal key, which it does when it is let in
//     (or leaves, or its lease ends) — semaphores only, where no single deletion is needed;
//   - kAnyChangeAhead: any change under the queue (the first semaphore waiter, whom any
//     holder's release may let in; only that one waiter watches the whole queue).
// Waits go through kv::ChangeNotifier when the store has one (the remote client); otherwise
// the waiter polls with backoff. After every wake-up the waiter reads its position again.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "coord/coord_common.h"
#include "coord/owned_key.h"
#include "coord/session.h"

namespace aspen::coord {

// A holder or waiter as status reports list it.
struct LeasedHolder {
  std::string id;
  uint64_t count = 1;  // permits (semaphore); 1 for lock roles
  uint64_t lease_id = 0;
  uint64_t fencing_token = 0;  // its key's create revision
  friend bool operator==(const LeasedHolder&, const LeasedHolder&) = default;
};

// What a waiter does next, decided from the queue (in arrival order) and its own place.
struct Turn {
  enum class Wait : uint8_t { kNone, kDeletion, kSignal, kAnyChangeAhead };
  bool is_held = false;
  Wait wait = Wait::kNone;
  size_t watch = 0;               // kDeletion / kSignal: index of the waiter to wait on
  bool is_only_obstacle = false;  // kDeletion: that key's going alone lets this waiter in
};

// Pure turn functions. `index` is the waiter's place in the queue (0 = oldest).
// Lock: the oldest holds; the others wait for the one just ahead.
Turn lock_turn(size_t index);
// RW lock: a writer holds when it is first and waits for the one just ahead; a reader holds
// when no writer is ahead of it and waits for the last writer ahead of it (so readers behind a
// waiting writer wait: no writer starvation).
Turn rwlock_turn(const std::vector<bool>& is_writer, size_t index);
// Semaphore: a waiter holds when its count and the counts of everyone ahead fit in `permits`
// (holders are always a prefix of the queue: nobody overtakes). The first waiter that does not
// fit waits for any change ahead; each later one for the signal of the one just ahead.
Turn semaphore_turn(const std::vector<uint64_t>& counts, uint64_t permits, size_t index);

// The queue as one read saw it.
struct QueueView {
  std::vector<Owner> waiters;  // arrival order (create revision = fencing token)
  uint64_t revision = 0;       // the store revision of the read
  bool is_complete = true;     // false: more waiters than the limit (not all were read)
};

class WaiterQueue {
 public:
  struct Config {
    std::string_view kind;         // "lockq", "rwq", "semq"
    std::string_view what;         // "lock", "rwlock", "semaphore": names it in errors
    size_t max_waiters = 0;        // holders and waiters together
    bool has_signal_keys = false;  // kSignal waits are used (semaphores)
  };
  // Decides the caller's turn from the view (all waiters) and its index in it; an error ends
  // the acquisition (e.g. a semaphore whose waiters disagree on its size).
  using Decide = std::function<Result<Turn>(const QueueView&, size_t)>;

  WaiterQueue(kv::KeyValueStore& store, std::string name, Config config, Session* session)
      : store_(store), name_(std::move(name)), config_(config), session_(session) {}

  std::string prefix() const;
  std::string key_of(uint64_t lease_id, std::string_view holder) const;
  std::string signal_key_of(uint64_t lease_id, std::string_view holder) const;
  bool is_in_session() const { return session_ != nullptr; }

  // Reads the whole queue.
  Result<QueueView> read();
  // The queue as of `revision`, one a wait of `notifier` reported, without a quorum round:
  // waiters gone by then never come back and later ones queue behind, so a turn decided on
  // it stands. Falls back to read() when that fails or there is no revision.
  Result<QueueView> read_at(kv::ChangeNotifier* notifier, uint64_t revision);

  // One attempt: joins the queue and, unless the turn is held at once, leaves it. nullopt: not
  // now. The returned Owner carries the fencing token and lease.
  Result<std::optional<Owner>> try_acquire(std::string_view holder, std::string value, uint64_t ttl_ms,
                                           const Decide& decide);
  // Joins the queue and waits its turn until deadline_ms (waiter's clock): Timeout then,
  // leaving the queue. Keeps its own lease alive while it waits (a Session renews its own).
  Result<Owner> acquire_until(std::string_view holder, std::string value, uint64_t ttl_ms, uint64_t deadline_ms,
                              const Waiter& waiter, const Decide& decide);

  // Deletes the holder's key (and signal key) if it is still the one with this token; revokes
  // an own lease. NotFound when it is not (lease expired). Token 0: whatever key the holder
  // has under this lease (an operator's release from the CLI, which knows only the lease).
  Status release(std::string_view holder, uint64_t fencing_token, uint64_t lease_id, bool is_in_session);
  // Keeps the lease alive and checks the key is still the holder's. NotFound when it is not.
  Status renew(std::string_view holder, uint64_t fencing_token, uint64_t lease_id);

 private:
  struct Queued {
    Owner me;
    QueueView view;  // the queue as the joining write left it (no separate read needed)
  };
  // Creates this waiter's key (granting a lease first when *lease_id is 0) and, in the same
  // Txn, reads the queue: one write instead of a write and a read.
  Result<Queued> enqueue(std::string_view holder, const std::string& value, uint64_t ttl_ms, uint64_t* lease_id);
  // The queue from a scan of prefix() (a read's page or the joining Txn's).
  Result<QueueView> view_of(const kvpb::RangeResult& page, uint64_t revision) const;
  // Where `me` stands in `view`: nullopt if its key is gone (lease ended). InvalidArgument if
  // another waiter has the same holder id.
  Result<std::optional<size_t>> index_of(const QueueView& view, const Owner& me) const;
  // Let in: tell the waiter behind (if any may be waiting on our signal) that it moved up.
  void on_held(const QueueView& view, size_t index, const Owner& me);
  void leave(const Owner& me);
  Error too_many() const;
  Result<uint64_t> token_of(std::string_view holder, uint64_t fencing_token, uint64_t lease_id);

  kv::KeyValueStore& store_;
  std::string name_;
  Config config_;
  Session* session_ = nullptr;
};

}  // namespace aspen::coord
