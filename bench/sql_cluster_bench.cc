// SQL over a running cluster: count(*) over many keys, a point query by key and a range
// query of 1,000 rows, with p50/p99 latencies and rows scanned vs returned.
//
//   scripts/cluster.sh --fresh &                       # prints the ticket and credentials
//   export ASPEN_TICKET=... ASPEN_IDENTITY=... ASPEN_TOKEN_FILE=... ASPEN_SQL_BENCH_KEYS=1000000
//   build/aspen_bench --benchmark_filter=SqlCluster
//
// Without ASPEN_TICKET the benchmarks skip. The keys (sqlbench/<10 digits>, 100-byte values)
// are written once, by the first benchmark, if the last one is missing.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>

#include <fmt/format.h>

#include "client/client.h"
#include "client/credentials.h"
#include "core/limits.h"
#include "sql/sql.h"

namespace {

using aspen::client::Client;

uint64_t key_count() {
  const char* n = std::getenv("ASPEN_SQL_BENCH_KEYS");
  return n ? std::strtoull(n, nullptr, 10) : 100000;
}

std::string bench_key(uint64_t i) { return fmt::format("sqlbench/{:010}", i); }

// One client and the loaded keys for every benchmark of the run.
Client* shared_client(benchmark::State& state) {
  static std::unique_ptr<Client> client;
  static std::string error;
  if (!client && error.empty()) {
    const char* ticket = std::getenv("ASPEN_TICKET");
    if (!ticket) {
      error = "set ASPEN_TICKET (and ASPEN_IDENTITY, ASPEN_TOKEN_FILE) to a running cluster";
    } else {
      aspen::client::ClientOptions o;
      o.timeout_ms = 60000;
      o.write_attempt_timeout_ms = 10000;
      if (auto s = aspen::client::apply_credentials_from_env(o); !s) error = s.error().to_string();
      if (error.empty()) {
        auto c = Client::connect(std::string_view(ticket), o);
        if (c) {
          client = std::move(*c);
        } else {
          error = c.error().to_string();
        }
      }
    }
    if (client && !aspen::kv::get(*client, bench_key(key_count() - 1)).value_or(std::nullopt)) {
      std::string value(100, 'v');
      for (uint64_t first = 0; first < key_count() && error.empty(); first += aspen::limits::kMaxBatchSize) {
        aspen::kvpb::Command cmd;
        for (uint64_t i = first; i < std::min<uint64_t>(first + aspen::limits::kMaxBatchSize, key_count()); ++i) {
          auto* p = cmd.mutable_set_multi()->add_puts();
          p->set_key(bench_key(i));
          p->set_value(value);
        }
        if (auto r = client->execute(std::move(cmd)); !r) error = "loading keys: " + r.error().to_string();
      }
    }
  }
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return nullptr;
  }
  return client.get();
}

void report_latencies(benchmark::State& state, std::vector<double>& us) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
}

void run_query(benchmark::State& state, const std::function<std::string()>& next_sql) {
  Client* c = shared_client(state);
  if (!c) return;
  auto db = aspen::sql::Database::open(*c);
  if (!db) {
    state.SkipWithError(db.error().to_string().c_str());
    return;
  }
  std::vector<double> us;
  uint64_t rows = 0;
  (*db)->reset_stats();
  for (auto _ : state) {
    std::string sql = next_sql();
    auto start = std::chrono::steady_clock::now();
    auto r = (*db)->query(sql);
    auto end = std::chrono::steady_clock::now();
    if (!r) {
      state.SkipWithError(r.error().to_string().c_str());
      return;
    }
    rows += r->rows.size();
    us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  report_latencies(state, us);
  state.counters["rows_returned"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kAvgIterations);
  state.counters["keys_scanned"] =
      benchmark::Counter(static_cast<double>((*db)->stats().keys_scanned), benchmark::Counter::kAvgIterations);
}

void BM_SqlClusterCountAllKeys(benchmark::State& state) {
  run_query(state, [] { return std::string("SELECT count(*) FROM kv"); });
}
BENCHMARK(BM_SqlClusterCountAllKeys)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

void BM_SqlClusterCountPrefix(benchmark::State& state) {
  run_query(state, [] { return std::string("SELECT count(*) FROM kv WHERE key GLOB 'sqlbench/*'"); });
}
BENCHMARK(BM_SqlClusterCountPrefix)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_SqlClusterPointQuery(benchmark::State& state) {
  std::mt19937_64 rng(7);
  run_query(state, [&] {
    return fmt::format("SELECT value FROM kv WHERE key = '{}'", bench_key(rng() % key_count()));
  });
}
BENCHMARK(BM_SqlClusterPointQuery)->Unit(benchmark::kMicrosecond)->Iterations(2000)->UseRealTime();

void BM_SqlClusterRange1000(benchmark::State& state) {
  std::mt19937_64 rng(11);
  run_query(state, [&] {
    uint64_t first = rng() % (key_count() > 1000 ? key_count() - 1000 : 1);
    return fmt::format("SELECT key, value FROM kv WHERE key >= '{}' ORDER BY key LIMIT 1000", bench_key(first));
  });
}
BENCHMARK(BM_SqlClusterRange1000)->Unit(benchmark::kMicrosecond)->Iterations(300)->UseRealTime();

}  // namespace
