// The operations of each aspen-bench workload, and the preload that reads depend on.
#include <fmt/format.h>

#include <algorithm>

#include "bench.h"
#include "core/limits.h"
#include "kv/commands.h"
#include "kv/key_value_store.h"

namespace aspen::bench {

namespace cpb = clientpb;

bool parse_workload(const std::string& name, Workload& out) {
  static const std::map<std::string, Workload> kNames = {{"put", Workload::kPut},   {"get", Workload::kGet},
                                                         {"get-stale", Workload::kGetStale},
                                                         {"mixed", Workload::kMixed}, {"cas", Workload::kCas},
                                                         {"scan", Workload::kScan},   {"lock", Workload::kLock},
                                                         {"lock-poll", Workload::kLockPoll},
                                                         {"counter", Workload::kCounter},
                                                         {"counter-cas", Workload::kCounterCas},
                                                         {"queue", Workload::kQueue},
                                                         {"semaphore", Workload::kSemaphore},
                                                         {"rwlock", Workload::kRWLock}};
  auto it = kNames.find(name);
  if (it == kNames.end()) return false;
  out = it->second;
  return true;
}

const char* workload_name(Workload w) {
  switch (w) {
    case Workload::kPut: return "put";
    case Workload::kGet: return "get";
    case Workload::kGetStale: return "get-stale";
    case Workload::kMixed: return "mixed";
    case Workload::kCas: return "cas";
    case Workload::kScan: return "scan";
    case Workload::kLock: return "lock";
    case Workload::kLockPoll: return "lock-poll";
    case Workload::kCounter: return "counter";
    case Workload::kCounterCas: return "counter-cas";
    case Workload::kQueue: return "queue";
    case Workload::kSemaphore: return "semaphore";
    case Workload::kRWLock: return "rwlock";
  }
  return "?";
}

bool needs_preload(Workload w) {
  return w == Workload::kGet || w == Workload::kGetStale || w == Workload::kMixed || w == Workload::kScan;
}

std::string bench_key(const BenchConfig& config, uint64_t index) { return fmt::format("{}{:010}", config.key_prefix, index); }

Status preload(client::Client& c, const BenchConfig& config) {
  const std::string value(config.value_size_bytes, 'p');
  // As many puts per command as the batch and command-size limits allow.
  const size_t per_put_bytes = config.key_prefix.size() + 10 + value.size() + 16;
  const size_t batch = std::max<size_t>(1, std::min(limits::kMaxBatchSize, limits::kMaxCommandSizeBytes / 2 / per_put_bytes));
  for (uint64_t first = 0; first < config.key_space; first += batch) {
    kvpb::Command cmd;
    const uint64_t last = std::min<uint64_t>(config.key_space, first + batch);
    for (uint64_t i = first; i < last; ++i) {
      auto* put = cmd.mutable_set_multi()->add_puts();
      put->set_key(bench_key(config, i));
      put->set_value(value);
    }
    auto r = c.execute(std::move(cmd));
    if (!r) return std::unexpected(r.error());
    if (auto s = kv::result_status(*r); !s) return s;
  }
  return {};
}

namespace {

OpOutcome from_write(const Result<kvpb::CommandResult>& r) {
  if (!r) return {false, false, r.error()};
  if (auto s = kv::result_status(*r); !s) return {false, false, s.error()};
  return {true, false, std::nullopt};
}

OpOutcome do_get(client::Client& c, const std::string& key, cpb::Consistency consistency) {
  auto r = c.read(key, consistency);
  if (!r) return {false, false, r.error()};
  return {true, false, std::nullopt};
}

OpOutcome do_cas(client::Client& c, WorkerState& s) {
  const std::string next = fmt::format("{}-{}", s.worker_index, ++s.cas_counter);
  auto r = kv::cas(c, s.cas_key, s.has_cas_expected ? std::optional<std::string>(s.cas_expected) : std::nullopt, next);
  if (!r) {
    // The outcome of a timed-out CAS is unknown: read the key again before the next one.
    s.has_cas_expected = false;
    auto cur = c.read(s.cas_key);
    if (cur && cur->has_value()) {
      s.cas_expected = (*cur)->value();
      s.has_cas_expected = true;
    }
    return {false, false, r.error()};
  }
  if (auto st = kv::result_status(*r); !st) return {false, false, st.error()};
  if (r->succeeded()) {
    s.cas_expected = next;
    s.has_cas_expected = true;
    return {true, false, std::nullopt};
  }
  // Lost the race (or a stale expectation): learn the current value and try again next time.
  s.has_cas_expected = !r->current().key().empty();
  s.cas_expected = r->current().value();
  return {true, true, std::nullopt};
}

}  // namespace

OpOutcome run_one(client::Client& c, const BenchConfig& config, WorkerState& state) {
  if (is_coord_workload(config.workload)) return run_coord_one(c, config, state);
  std::uniform_int_distribution<uint64_t> key_dist(0, config.key_space - 1);
  const std::string key = bench_key(config, key_dist(state.rng));
  switch (config.workload) {
    case Workload::kPut:
      return from_write(kv::put(c, key, state.value));
    case Workload::kGet:
      return do_get(c, key, cpb::CONSISTENCY_LINEARIZABLE);
    case Workload::kGetStale:
      return do_get(c, key, cpb::CONSISTENCY_STALE);
    case Workload::kMixed: {
      std::uniform_int_distribution<uint32_t> pct(0, 99);
      if (pct(state.rng) < config.read_percent) return do_get(c, key, cpb::CONSISTENCY_LINEARIZABLE);
      return from_write(kv::put(c, key, state.value));
    }
    case Workload::kCas:
      return do_cas(c, state);
    case Workload::kScan: {
      kvpb::RangeRequest range;
      range.set_start(key);
      range.set_end(kv::prefix_end(config.key_prefix));
      range.set_limit(config.scan_limit);
      auto r = c.scan(range);
      if (!r) return {false, false, r.error()};
      return {true, false, std::nullopt};
    }
    case Workload::kLock:
    case Workload::kLockPoll:
    case Workload::kCounter:
    case Workload::kCounterCas:
    case Workload::kQueue:
    case Workload::kSemaphore:
    case Workload::kRWLock:
      break;  // handled above
  }
  return {false, false, Error(ErrorCode::kInternal, "unknown workload")};
}

LatencySummary summarize(std::vector<uint32_t>& latencies_us) {
  LatencySummary s;
  s.count = latencies_us.size();
  if (latencies_us.empty()) return s;
  std::sort(latencies_us.begin(), latencies_us.end());
  const auto at = [&](double q) {
    const auto index = static_cast<size_t>(q * static_cast<double>(latencies_us.size() - 1) + 0.5);
    return latencies_us[std::min(index, latencies_us.size() - 1)] / 1000.0;
  };
  s.p50_ms = at(0.50);
  s.p99_ms = at(0.99);
  s.p999_ms = at(0.999);
  s.max_ms = latencies_us.back() / 1000.0;
  double sum = 0;
  for (uint32_t v : latencies_us) sum += v;
  s.mean_ms = sum / static_cast<double>(latencies_us.size()) / 1000.0;
  return s;
}

}  // namespace aspen::bench
