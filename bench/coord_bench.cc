// Cost of the coordination primitives themselves, against DeterministicKeyValueStore: one
// process, no Raft, no disk, no network, a mutex around the state machine. This measures the
// primitives' own work per operation (commands built, Txns applied, records encoded), not a
// cluster: on a real cluster every store call is a linearizable round trip.
//
//   build/aspen_bench --benchmark_filter=Coord
//
// Reported: items_per_second = lock acquire+release pairs, counter increments, or queue
// push+pop+ack cycles per second; ->Threads(16) shares one store and one lock/counter/queue.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "coord/counter.h"
#include "coord/lock.h"
#include "coord/queue.h"
#include "core/assert.h"
#include "kv/deterministic_store.h"

namespace {

using aspen::coord::AtomicCounter;
using aspen::coord::DistributedLock;
using aspen::coord::QueueManager;
using aspen::kv::DeterministicKeyValueStore;

DeterministicKeyValueStore* shared_store = nullptr;

void setup(const benchmark::State&) { shared_store = new DeterministicKeyValueStore(); }
void teardown(const benchmark::State&) {
  delete shared_store;
  shared_store = nullptr;
}

void BM_CoordLockAcquireRelease(benchmark::State& state) {
  DistributedLock lock(*shared_store, "bench");
  const std::string holder = "t" + std::to_string(state.thread_index());
  for (auto _ : state) {
    while (true) {  // spin on one-shot attempts: contended threads retry immediately
      auto h = lock.try_acquire(holder, 60000);
      ASPEN_ASSERT(h.has_value());
      if (!h->has_value()) continue;
      ASPEN_ASSERT(lock.release(**h).has_value());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CoordLockAcquireRelease)->Setup(setup)->Teardown(teardown)->Threads(1)->Threads(16)->UseRealTime();

void BM_CoordCounterIncrement(benchmark::State& state) {
  AtomicCounter c(*shared_store, "bench");
  for (auto _ : state) ASPEN_ASSERT(c.increment().has_value());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CoordCounterIncrement)->Setup(setup)->Teardown(teardown)->Threads(1)->Threads(16)->UseRealTime();

void BM_CoordQueuePushPopAck(benchmark::State& state) {
  QueueManager q(*shared_store, "bench", {.visibility_timeout_ms = 60000, .max_delivery_attempts = 5});
  const std::string payload(100, 'p');
  for (auto _ : state) {
    ASPEN_ASSERT(q.enqueue(payload, "", 0).has_value());
    auto got = q.dequeue(1, 0);
    ASPEN_ASSERT(got.has_value() && got->size() == 1);
    ASPEN_ASSERT(q.ack((*got)[0].receipt).has_value());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CoordQueuePushPopAck)->Setup(setup)->Teardown(teardown)->Threads(1);

}  // namespace
