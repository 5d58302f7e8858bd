// aspen-bench internals: the workloads (one operation each, run by many threads with
// blocking calls) and the latency statistics.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "client/client.h"
#include "core/error.h"

namespace aspen::coord {
class Session;
}  // namespace aspen::coord

namespace aspen::bench {

// kLock, kCounter and kQueue run the coordination primitives (src/coord) over the client
// protocol: workload_coord.cc.
enum class Workload : uint8_t { kPut, kGet, kGetStale, kMixed, kCas, kScan, kLock, kLockPoll, kCounter, kCounterCas, kQueue, kSemaphore, kRWLock };

struct BenchConfig {
  Workload workload = Workload::kPut;
  uint32_t clients = 16;
  uint32_t duration_s = 10;
  uint64_t requests = 0;  // 0 = run for duration_s
  uint32_t value_size_bytes = 256;
  uint64_t key_space = 100000;
  uint32_t read_percent = 90;  // mixed
  uint32_t scan_limit = 100;
  std::string key_prefix = "bench/";
  // Coordination workloads: all clients on one lock/counter/queue, or each on its own.
  bool is_contended = false;
  // Names coordination objects so that runs never meet each other's leftovers.
  std::string run_id;
};

bool parse_workload(const std::string& name, Workload& out);
const char* workload_name(Workload w);
bool needs_preload(Workload w);

std::string bench_key(const BenchConfig& config, uint64_t index);

// Writes every key of the key space (batched SetMulti), so reads find data.
Status preload(client::Client& c, const BenchConfig& config);

// One thread's state: its random generator, the value it writes, its CAS key and expectation.
struct WorkerState {
  uint32_t worker_index = 0;
  std::mt19937_64 rng;
  std::string value;
  std::string cas_key;
  std::string cas_expected;
  bool has_cas_expected = false;
  uint64_t cas_counter = 0;
  std::string coord_name;  // this worker's lock/counter/queue (shared when contended)
  std::string holder_id;
  std::shared_ptr<coord::Session> session;  // lock: the worker's session, opened on first use
};

// The outcome of one operation: ok, a CAS that lost a race (still a completed operation),
// or an error.
struct OpOutcome {
  bool is_ok = false;
  bool is_conflict = false;
  std::optional<Error> error;
};

OpOutcome run_one(client::Client& c, const BenchConfig& config, WorkerState& state);

bool is_coord_workload(Workload w);
// Sets the worker's object name and holder id for a coordination workload.
void init_coord_worker(const BenchConfig& config, WorkerState& state);
// One coordination operation: lock = acquire (waiting while contended) + release, counter =
// one increment, queue = push + pop + ack. An empty pop (another worker took every visible
// message) completes as a conflict.
OpOutcome run_coord_one(client::Client& c, const BenchConfig& config, WorkerState& state);

// Latencies in microseconds; percentiles by sorting (exact).
struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
};
LatencySummary summarize(std::vector<uint32_t>& latencies_us);

}  // namespace aspen::bench
