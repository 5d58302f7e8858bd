#include "coord_workload.h"

#include <fmt/format.h>
#include <time.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "coord/counter.h"
#include "coord/lock.h"
#include "coord/queue.h"
#include "core/limits.h"
#include "lincheck/coord_checks.h"

namespace aspen::chaos {

namespace {

using lincheck::Outcome;

// A holding that outlives its client (an unknown release) blocks the others this long.
constexpr uint64_t kLockTtlMs = 5000;
// An acquire gives up after this long (and records nothing: it held nothing).
constexpr uint64_t kAcquireWaitMs = 10000;
// A message claimed by a consumer that never acks is delivered again after this long.
constexpr uint64_t kVisibilityMs = 5000;
// Never dead-letter during a run: the drain after healing must find every message.
constexpr uint32_t kMaxDeliveryAttempts = 1000;
// Consumers leave one message in ten unacked, so that redelivery is exercised.
constexpr uint32_t kSkipAckPercent = 10;

uint64_t monotonic_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

uint64_t steady_ms() { return monotonic_us() / 1000; }

// The queue's clock (visibility timeouts): wall-clock ms, as every client of a queue must share.
uint64_t wall_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

void sleep_ms(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Errors that prove the operation was refused before it could take effect (as in main.cc).
Outcome outcome_of(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kKeyTooLarge:
    case ErrorCode::kValueTooLarge:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnauthorized:
    case ErrorCode::kStorageFull:
      return Outcome::kFail;
    default:
      return Outcome::kUnknown;
  }
}

class Lines {
 public:
  explicit Lines(const std::string& path) : out_(path, std::ios::app) {}
  bool is_open() const { return out_.is_open(); }
  void append(const std::string& line) {
    std::lock_guard lock(mu_);  // [any worker thread]
    out_ << line << '\n';
    out_.flush();
  }

 private:
  std::mutex mu_;
  std::ofstream out_;
};

struct Worker {
  uint32_t index = 0;
  uint64_t process = 0;  // a fresh number after every unknown outcome
  uint64_t counter = 0;
  std::mt19937_64 rng;
};

std::string lock_name(const CoordSettings& s) { return s.name_prefix + "/lock"; }
std::string counter_name(const CoordSettings& s) { return s.name_prefix + "/counter"; }
std::string queue_name(const CoordSettings& s) { return s.name_prefix + "/queue"; }

coord::QueueConfig queue_config() {
  return {.visibility_timeout_ms = kVisibilityMs, .max_delivery_attempts = kMaxDeliveryAttempts};
}

void lock_step(const CoordSettings& s, client::Client& c, Worker& w, Lines& out) {
  // A new holder name per process: a holding left behind by an unknown outcome must not make
  // this client's next acquire an InvalidArgument (same holder twice).
  const std::string holder = fmt::format("c{}", w.process);
  coord::DistributedLock lock(c, lock_name(s));
  const coord::Waiter waiter{steady_ms, sleep_ms, w.rng()};
  lincheck::LockHolding h;
  h.process = w.process;
  h.acquire_invoke = monotonic_us();
  auto got = lock.try_acquire_until(holder, kLockTtlMs, steady_ms() + kAcquireWaitMs, waiter);
  h.acquire_complete = monotonic_us();
  if (!got) {
    // Timeout: it left the line; anything else may have left a key behind.
    if (got.error().code() != ErrorCode::kTimeout) w.process += s.clients;
    return;
  }
  h.token = got->fencing_token;
  sleep_ms(w.rng() % 20);  // the critical section
  h.release_invoke = monotonic_us();
  auto released = lock.release(*got);
  h.release = released ? Outcome::kOk
                       : released.error().code() == ErrorCode::kNotFound ? Outcome::kFail : Outcome::kUnknown;
  out.append(lincheck::format_holding(h));
  if (h.release != Outcome::kOk) w.process += s.clients;
}

void counter_step(const CoordSettings& s, client::Client& c, Worker& w, Lines& out) {
  lincheck::CounterIncrement i;
  i.process = w.process;
  i.invoke = monotonic_us();
  auto v = coord::AtomicCounter(c, counter_name(s)).increment();
  i.complete = monotonic_us();
  i.outcome = v ? Outcome::kOk : outcome_of(v.error());
  if (v) i.value = *v;
  out.append(lincheck::format_increment(i));
  if (i.outcome == Outcome::kUnknown) w.process += s.clients;
}

void queue_step(const CoordSettings& s, client::Client& c, Worker& w, Lines& out) {
  coord::QueueManager q(c, queue_name(s), queue_config());
  lincheck::QueueOp op;
  op.process = w.process;
  if (w.rng() % 2 == 0) {
    op.kind = lincheck::QueueOp::Kind::kEnqueue;
    op.payload = fmt::format("m{}-{}", w.process, ++w.counter);
    op.invoke = monotonic_us();
    // The payload as dedup id: an enqueue the client library retries is not stored twice.
    auto r = q.enqueue(op.payload, op.payload, wall_ms());
    op.complete = monotonic_us();
    op.outcome = r ? Outcome::kOk : outcome_of(r.error());
    if (r) op.seq = r->seq;
    out.append(lincheck::format_queue_op(op));
    if (op.outcome == Outcome::kUnknown) w.process += s.clients;
    return;
  }
  const uint64_t invoke = monotonic_us();
  auto got = q.dequeue(1, wall_ms());
  const uint64_t complete = monotonic_us();
  if (!got) return;  // a claim that may have applied is delivered again after the timeout
  for (const auto& m : *got) {
    lincheck::QueueOp d{lincheck::QueueOp::Kind::kDeliver, w.process, m.payload, m.seq, invoke, complete,
                        Outcome::kOk};
    out.append(lincheck::format_queue_op(d));
    if (w.rng() % 100 < kSkipAckPercent) continue;
    lincheck::QueueOp a{lincheck::QueueOp::Kind::kAck, w.process, m.payload, m.seq, monotonic_us(), 0,
                        Outcome::kUnknown};
    auto acked = q.ack(m.receipt);
    a.complete = monotonic_us();
    a.outcome = acked ? Outcome::kOk : acked.error().code() == ErrorCode::kNotFound ? Outcome::kFail : Outcome::kUnknown;
    out.append(lincheck::format_queue_op(a));
  }
}

std::vector<std::string> split_kinds(const std::string& kinds) {
  std::vector<std::string> out;
  std::stringstream in(kinds);
  std::string k;
  while (std::getline(in, k, ',')) {
    if (!k.empty()) out.push_back(k);
  }
  return out;
}

bool is_known_kind(const std::string& k) { return k == "lock" || k == "counter" || k == "queue"; }

}  // namespace

int run_coord_workload(const CoordSettings& s, const Connect& connect, const std::atomic<bool>& should_stop) {
  const auto kinds = split_kinds(s.kinds);
  for (const auto& k : kinds) {
    if (!is_known_kind(k)) {
      fmt::print(stderr, "aspen-chaos-client: unknown coordination workload '{}' (lock, counter, queue)\n", k);
      return 64;
    }
  }
  if (kinds.empty()) return 64;
  Lines out(s.history_path);
  if (!out.is_open()) {
    fmt::print(stderr, "aspen-chaos-client: cannot write {}\n", s.history_path);
    return 64;
  }
  const uint64_t end_us = monotonic_us() + uint64_t{s.duration_s} * 1'000'000;
  std::atomic<uint64_t> steps{0};
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < s.clients; ++i) {
    threads.emplace_back([&, i] {
      Worker w;
      w.index = i;
      w.process = s.seed * 1'000'000 + 500'000 + i;  // apart from the KV workload's numbers
      w.rng.seed(s.seed * 104729 + i);
      const std::string kind = kinds[i % kinds.size()];
      auto c = connect();
      if (!c) {
        fmt::print(stderr, "coord client {}: {}\n", i, c.error().to_string());
        return;
      }
      while (!should_stop.load() && monotonic_us() < end_us) {
        if (kind == "lock") lock_step(s, **c, w, out);
        if (kind == "counter") counter_step(s, **c, w, out);
        if (kind == "queue") queue_step(s, **c, w, out);
        steps.fetch_add(1);
        sleep_ms(5);
      }
    });
  }
  for (auto& t : threads) t.join();
  fmt::print("coord workload: {} clients ({}), {} operations\n", s.clients, s.kinds, steps.load());
  return 0;
}

int check_coord_workload(const CoordSettings& s, const Connect& connect, const std::atomic<bool>& should_stop) {
  const auto kinds = split_kinds(s.kinds);
  auto has = [&](const char* k) { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
  int rc = 0;
  {
    Lines out(s.history_path);
    if (!out.is_open()) {
      fmt::print(stderr, "aspen-chaos-client: cannot write {}\n", s.history_path);
      return 64;
    }
    auto c = connect();
    if (!c) {
      fmt::print(stderr, "aspen-chaos-client: {}\n", c.error().to_string());
      return 2;
    }
    const uint64_t deadline_ms = steady_ms() + uint64_t{s.timeout_s} * 1000;
    if (has("counter")) {
      Result<int64_t> v = std::unexpected(Error(ErrorCode::kTimeout, "not read"));
      while (!v && steady_ms() < deadline_ms && !should_stop.load()) v = coord::AtomicCounter(**c, counter_name(s)).get();
      if (v) {
        out.append(fmt::format("final {}", *v));
      } else {
        fmt::print("coord: the counter could not be read after healing: {}\n", v.error().to_string());
        rc = 2;
      }
    }
    if (has("queue")) {
      // Drain: deliver and ack until the queue is empty; messages claimed but not acked
      // during the run come back after the visibility timeout.
      coord::QueueManager q(**c, queue_name(s), queue_config());
      bool is_empty = false;
      while (!is_empty && steady_ms() < deadline_ms && !should_stop.load()) {
        const uint64_t invoke = monotonic_us();
        auto got = q.dequeue(static_cast<uint32_t>(limits::kMaxQueueItemsPerCall), wall_ms());
        const uint64_t complete = monotonic_us();
        if (!got) continue;
        for (const auto& m : *got) {
          out.append(lincheck::format_queue_op(
              {lincheck::QueueOp::Kind::kDeliver, 0, m.payload, m.seq, invoke, complete, Outcome::kOk}));
          const uint64_t ack_invoke = monotonic_us();
          auto acked = q.ack(m.receipt);
          out.append(lincheck::format_queue_op({lincheck::QueueOp::Kind::kAck, 0, m.payload, m.seq, ack_invoke,
                                                monotonic_us(), acked ? Outcome::kOk : Outcome::kUnknown}));
        }
        if (got->empty()) {
          auto n = q.length();
          is_empty = n && *n == 0;
          if (!is_empty) sleep_ms(200);
        }
      }
      if (!is_empty) {
        fmt::print("coord: the queue could not be drained after healing\n");
        rc = 2;
      }
    }
  }
  std::ifstream in(s.history_path);
  if (!in) {
    fmt::print(stderr, "aspen-chaos-client: cannot read {}\n", s.history_path);
    return 64;
  }
  auto h = lincheck::read_coord_history(in);
  if (!h) {
    fmt::print(stderr, "aspen-chaos-client: {}: {}\n", s.history_path, h.error());
    return 65;
  }
  const auto report = lincheck::check_coord(*h);
  for (const auto& line : report.summary) fmt::print("coord: {}\n", line);
  for (const auto& v : report.listed) fmt::print("coord VIOLATION: {}\n", v);
  if (report.violations > report.listed.size()) {
    fmt::print("coord: ... and {} more violations\n", report.violations - report.listed.size());
  }
  fmt::print("coord: {} violations\n", report.violations);
  if (report.violations > 0) return 1;
  return rc;
}

}  // namespace aspen::chaos
