// aspen-bench coordination workloads: the src/coord primitives over client::Client (a
// kv::KeyValueStore), exactly as an application would run them.
#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "bench.h"
#include "coord/counter.h"
#include "coord/lock.h"
#include "coord/owned_key.h"
#include "coord/queue.h"
#include "coord/rwlock.h"
#include "coord/semaphore.h"
#include "coord/session.h"
#include "core/limits.h"

namespace aspen::bench {

namespace {

// A lock outlives a crashed benchmark by at most this long.
constexpr uint64_t kLockTtlMs = 10000;
// Long enough that a message is never redelivered while its popper is about to ack it.
constexpr uint64_t kQueueVisibilityMs = 30000;

uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t wall_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

OpOutcome failed(const Error& e) { return {false, false, e}; }

OpOutcome do_lock(client::Client& c, WorkerState& s) {
  // One session per worker, as an application would hold one: two writes per lock cycle.
  if (!s.session) {
    auto session = coord::Session::open(c, kLockTtlMs);
    if (!session) return failed(session.error());
    s.session = std::move(*session);
  }
  coord::DistributedLock lock(c, s.coord_name, s.session.get());
  const coord::Waiter waiter{steady_ms, [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
                             s.rng()};
  // Waits while another worker holds a contended lock; 30 s bounds a wedged run.
  auto h = lock.try_acquire_until(s.holder_id, kLockTtlMs, steady_ms() + 30000, waiter);
  if (!h) return failed(h.error());
  if (auto r = lock.release(*h); !r) return failed(r.error());
  return {true, false, std::nullopt};
}

// The lock as it was before the FIFO queue: one key claimed if absent (with a lease), polled
// with backoff while another holds it; kept to compare the two in one run.
OpOutcome do_lock_poll(client::Client& c, WorkerState& s) {
  const std::string key = "__coord:lock:" + s.coord_name;
  const coord::Waiter waiter{steady_ms, [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
                             s.rng()};
  auto lease = kv::lease_grant(c, kLockTtlMs);
  if (!lease) return failed(lease.error());
  coord::Owner me{s.holder_id, {}, lease->id(), 0};
  auto owner = coord::wait_until<coord::Owner>(waiter, steady_ms() + 30000, "acquire", [&]() -> Result<std::optional<coord::Owner>> {
    auto claim = coord::claim_owned_key(c, key, me);
    if (!claim) return std::unexpected(claim.error());
    if (!claim->is_claimed) return std::optional<coord::Owner>{};
    return std::optional<coord::Owner>(claim->owner);
  });
  if (!owner) return failed(owner.error());
  if (auto r = coord::release_owned_key(c, key, owner->fencing_token, lease->id(), "lock"); !r) return failed(r.error());
  return {true, false, std::nullopt};
}

// Permits of the semaphore workload: 16 contending clients keep a line behind 4 holders.
constexpr uint64_t kSemaphorePermits = 4;

// One session per worker, as an application would hold one.
Result<coord::Session*> worker_session(client::Client& c, WorkerState& s) {
  if (!s.session) {
    auto session = coord::Session::open(c, kLockTtlMs);
    if (!session) return std::unexpected(session.error());
    s.session = std::move(*session);
  }
  return s.session.get();
}

OpOutcome do_semaphore(client::Client& c, WorkerState& s) {
  auto session = worker_session(c, s);
  if (!session) return failed(session.error());
  coord::DistributedSemaphore sem(c, s.coord_name, kSemaphorePermits, *session);
  const coord::Waiter waiter{steady_ms, [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
                             s.rng()};
  auto p = sem.try_acquire_until(s.holder_id, 1, kLockTtlMs, steady_ms() + 30000, waiter);
  if (!p) return failed(p.error());
  if (auto r = sem.release(*p); !r) return failed(r.error());
  return {true, false, std::nullopt};
}

OpOutcome do_rwlock(client::Client& c, WorkerState& s) {
  auto session = worker_session(c, s);
  if (!session) return failed(session.error());
  coord::DistributedRWLock rw(c, s.coord_name, *session);
  const coord::Waiter waiter{steady_ms, [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
                             s.rng()};
  const coord::RWMode mode = s.rng() % 4 == 0 ? coord::RWMode::kWrite : coord::RWMode::kRead;
  auto h = rw.try_acquire_until(s.holder_id, mode, kLockTtlMs, steady_ms() + 30000, waiter);
  if (!h) return failed(h.error());
  if (auto r = rw.release(*h); !r) return failed(r.error());
  return {true, false, std::nullopt};
}

OpOutcome do_queue(client::Client& c, WorkerState& s) {
  coord::QueueManager q(c, s.coord_name, {.visibility_timeout_ms = kQueueVisibilityMs, .max_delivery_attempts = 5});
  auto pushed = q.enqueue(std::string_view(s.value).substr(0, limits::kMaxQueuePayloadBytes), "", wall_ms());
  if (!pushed) return failed(pushed.error());
  auto popped = q.dequeue(1, wall_ms());
  if (!popped) return failed(popped.error());
  if (popped->empty()) return {true, true, std::nullopt};
  if (auto r = q.ack(popped->front().receipt); !r) return failed(r.error());
  return {true, false, std::nullopt};
}

}  // namespace

bool is_coord_workload(Workload w) {
  return w == Workload::kLock || w == Workload::kLockPoll || w == Workload::kCounter || w == Workload::kCounterCas || w == Workload::kQueue ||
         w == Workload::kSemaphore || w == Workload::kRWLock;
}

void init_coord_worker(const BenchConfig& config, WorkerState& state) {
  const char* kind = workload_name(config.workload);
  state.coord_name = config.is_contended
                         ? fmt::format("{}{}/{}", config.key_prefix, config.run_id, kind)
                         : fmt::format("{}{}/{}-{}", config.key_prefix, config.run_id, kind, state.worker_index);
  state.holder_id = fmt::format("bench-{}-{}", config.run_id, state.worker_index);
}

OpOutcome run_coord_one(client::Client& c, const BenchConfig& config, WorkerState& state) {
  switch (config.workload) {
    case Workload::kLock:
      return do_lock(c, state);
    case Workload::kLockPoll:
      return do_lock_poll(c, state);
    case Workload::kCounter: {
      auto v = coord::AtomicCounter(c, state.coord_name).increment();
      if (!v) return failed(v.error());
      return {true, false, std::nullopt};
    }
    case Workload::kCounterCas: {
      // The counter as it was before the Add command: read, then a CAS, again on conflict.
      coord::AtomicCounter counter(c, state.coord_name);
      while (true) {
        auto v = counter.get();
        if (!v) return failed(v.error());
        auto swapped = counter.compare_and_set(*v, *v + 1);
        if (!swapped) return failed(swapped.error());
        if (*swapped) break;
      }
      return {true, false, std::nullopt};
    }
    case Workload::kQueue:
      return do_queue(c, state);
    case Workload::kSemaphore:
      return do_semaphore(c, state);
    case Workload::kRWLock:
      return do_rwlock(c, state);
    default:
      break;
  }
  return failed(Error(ErrorCode::kInternal, "not a coordination workload"));
}

}  // namespace aspen::bench
