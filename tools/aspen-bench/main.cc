// aspen-bench: load generator over the client protocol.
//
//   aspen-bench --ticket <t> --workload put --clients 32 --duration-s 30
//   aspen-bench --workload get --clients 64 --requests 200000 --json
//
// N threads each issue blocking requests back to back (N requests in flight), sharing a few
// Clients (one QUIC connection per node each). Every request's latency is recorded; the
// report gives throughput, errors by code, and exact p50/p99/p99.9 latency.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "bench.h"
#include "client/credentials.h"
#include "core/limits.h"
#include "core/log.h"

namespace {

using namespace aspen;
using namespace aspen::bench;
using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;
// Threads per Client: each Client holds one connection per node, and a connection carries
// at most kMaxStreamsPerConnection concurrent streams.
constexpr uint32_t kThreadsPerClient = 64;
constexpr uint32_t kMaxClients = 4096;

struct Totals {
  std::mutex mu;
  std::vector<uint32_t> latencies_us;
  uint64_t ok = 0;
  uint64_t conflicts = 0;
  std::map<std::string, uint64_t> errors;  // by code name
  std::string last_error;
};

}  // namespace

int main(int argc, char** argv) {
  aspen::log::set_level("warn");
  CLI::App app{
      "aspen-bench: measure an Aspen cluster's throughput and latency over the client protocol.\n"
      "Runs --clients threads, each sending one request at a time, for --duration-s seconds or\n"
      "--requests requests in all."};
  app.footer(
      "Workloads:\n"
      "  put        write a random key of the key space (--value-size bytes)\n"
      "  get        linearizable read of a random key (keys are preloaded first)\n"
      "  get-stale  stale read of a random key from any node (preloaded)\n"
      "  mixed      --read-percent linearizable reads, the rest puts (preloaded)\n"
      "  cas        each thread compare-and-swaps its own key in a chain\n"
      "  scan       a --scan-limit page from a random key (preloaded)\n"
      "  lock       coordination lock: acquire (waiting its turn, FIFO) + release per op\n"
      "  lock-poll  the same with the lock before FIFO: claim one key, poll while held\n"
      "  counter    coordination counter: one increment per op (one Add command)\n"
      "  counter-cas  the same with a read and a CAS per try (the counter before Add)\n"
      "  queue      coordination queue: push + pop + ack per op\n"
      "  semaphore  coordination semaphore of 4 permits: acquire 1 (waiting, FIFO) + release\n"
      "  rwlock     coordination RW lock: one op in 4 a write lock, the others read locks\n"
      "  The coordination workloads give each client its own lock/counter/queue/...; with\n"
      "  --contended all clients share one.\n"
      "Exit codes: 0 ran (errors are reported, not fatal), 2 usage error, 3 the cluster could not\n"
      "be reached or the preload failed.\n"
      "Example:\n  aspen-bench --ticket $ASPEN_TICKET --workload mixed --clients 32 --duration-s 20");

  BenchConfig config;
  std::string ticket;
  std::string workload = "put";
  bool is_json = false;
  bool should_skip_preload = false;
  uint32_t timeout_ms = 10000;
  app.add_option("--ticket", ticket, "Cluster ticket (default: $ASPEN_TICKET)")->envname("ASPEN_TICKET");
  app.add_option("--workload", workload, "put | get | get-stale | mixed | cas | scan | lock | lock-poll | counter | counter-cas | queue | semaphore | rwlock")
      ->capture_default_str();
  app.add_option("--clients", config.clients, "Concurrent requests in flight (one thread each)")
      ->capture_default_str()
      ->check(CLI::Range(1u, kMaxClients));
  app.add_option("--duration-s", config.duration_s, "How long to run")->capture_default_str();
  app.add_option("--requests", config.requests, "Stop after this many requests in all (instead of --duration-s)");
  app.add_option("--value-size", config.value_size_bytes, "Bytes per written value")
      ->capture_default_str()
      ->check(CLI::Range(0u, static_cast<uint32_t>(limits::kMaxValueSizeBytes)));
  app.add_option("--key-space", config.key_space, "Number of distinct keys")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--read-percent", config.read_percent, "mixed: percentage of reads")
      ->capture_default_str()
      ->check(CLI::Range(0u, 100u));
  app.add_option("--scan-limit", config.scan_limit, "scan: keys per scan")
      ->capture_default_str()
      ->check(CLI::Range(1u, static_cast<uint32_t>(limits::kMaxScanResults)));
  app.add_option("--key-prefix", config.key_prefix, "Prefix of every key the benchmark touches")->capture_default_str();
  app.add_flag("--no-preload", should_skip_preload, "Skip writing the key space before read workloads");
  app.add_flag("--contended", config.is_contended, "lock, counter, queue: all clients on one object");
  app.add_option("--timeout-ms", timeout_ms, "Per-request deadline, retries included")->capture_default_str();
  app.add_flag("--json", is_json, "Print one JSON object");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return kExitUsage;
  }
  if (!parse_workload(workload, config.workload)) {
    std::cerr << "error: unknown workload '" << workload << "'\n";
    return kExitUsage;
  }
  if (ticket.empty()) {
    std::cerr << "error: no cluster ticket: pass --ticket or set ASPEN_TICKET\n";
    return kExitUsage;
  }
  if (timeout_ms == 0 || (config.duration_s == 0 && config.requests == 0)) {
    std::cerr << "error: --timeout-ms and one of --duration-s / --requests must be positive\n";
    return kExitUsage;
  }

  client::ClientOptions options;
  options.timeout_ms = timeout_ms;
  options.attempt_timeout_ms = std::min(options.attempt_timeout_ms, timeout_ms);
  options.connect_timeout_ms = std::min(options.connect_timeout_ms, timeout_ms);
  if (auto s = client::apply_credentials_from_env(options); !s) {
    std::cerr << "error: " << s.error().to_string() << "\n";
    return kExitUsage;
  }
  const uint32_t client_count = (config.clients + kThreadsPerClient - 1) / kThreadsPerClient;
  std::vector<std::unique_ptr<client::Client>> clients;
  for (uint32_t i = 0; i < client_count; ++i) {
    auto c = client::Client::connect(std::string_view(ticket), options);
    if (!c) {
      std::cerr << "error: " << c.error().to_string() << "\n";
      return c.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
    }
    clients.push_back(std::move(*c));
  }
  if (needs_preload(config.workload) && !should_skip_preload) {
    if (!is_json) std::cerr << "preloading " << config.key_space << " keys...\n";
    if (auto s = preload(*clients[0], config); !s) {
      std::cerr << "error: preload failed: " << s.error().to_string() << "\n";
      return kExitUnavailable;
    }
  }

  std::random_device seed_source;
  config.run_id = fmt::format("{:08x}", seed_source());

  Totals totals;
  std::atomic<uint64_t> issued{0};
  const auto started = Clock::now();
  const auto stop_at = started + std::chrono::seconds(config.duration_s);
  const bool is_by_count = config.requests > 0;
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < config.clients; ++t) {
    WorkerState state;
    state.worker_index = t;
    state.rng.seed((static_cast<uint64_t>(seed_source()) << 32) ^ seed_source() ^ t);
    state.value.assign(config.value_size_bytes, static_cast<char>('a' + t % 26));
    state.cas_key = fmt::format("{}cas/{}", config.key_prefix, t);
    if (is_coord_workload(config.workload)) init_coord_worker(config, state);
    threads.emplace_back([&, t, state = std::move(state)]() mutable {
      client::Client& c = *clients[t / kThreadsPerClient];
      std::vector<uint32_t> latencies;
      uint64_t ok = 0, conflicts = 0;
      std::map<std::string, uint64_t> errors;
      std::string last_error;
      while (true) {
        if (is_by_count ? issued.fetch_add(1) >= config.requests : Clock::now() >= stop_at) break;
        const auto op_start = Clock::now();
        OpOutcome o = run_one(c, config, state);
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - op_start).count();
        if (o.is_ok) {
          latencies.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
          ++ok;
          if (o.is_conflict) ++conflicts;
        } else {
          ++errors[std::string(error_code_name(o.error->code()))];
          last_error = o.error->to_string();
        }
      }
      std::lock_guard lock(totals.mu);
      totals.latencies_us.insert(totals.latencies_us.end(), latencies.begin(), latencies.end());
      totals.ok += ok;
      totals.conflicts += conflicts;
      for (const auto& [k, v] : errors) totals.errors[k] += v;
      if (!last_error.empty()) totals.last_error = last_error;
    });
  }
  for (auto& th : threads) th.join();
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - started).count();

  uint64_t error_count = 0;
  for (const auto& [k, v] : totals.errors) error_count += v;
  const LatencySummary lat = summarize(totals.latencies_us);
  const double ops_per_s = elapsed_s > 0 ? static_cast<double>(totals.ok) / elapsed_s : 0;

  if (is_json) {
    nlohmann::json out = {{"workload", workload_name(config.workload)},
                          {"clients", config.clients},
                          {"value_size_bytes", config.value_size_bytes},
                          {"key_space", config.key_space},
                          {"elapsed_s", elapsed_s},
                          {"ops", totals.ok},
                          {"ops_per_s", ops_per_s},
                          {"contended", config.is_contended},
                          {"cas_conflicts", totals.conflicts},
                          {"errors", error_count},
                          {"errors_by_code", totals.errors},
                          {"latency_ms", {{"mean", lat.mean_ms}, {"p50", lat.p50_ms}, {"p99", lat.p99_ms},
                                          {"p999", lat.p999_ms}, {"max", lat.max_ms}}}};
    if (!totals.last_error.empty()) out["last_error"] = totals.last_error;
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  std::cout << fmt::format("workload {}  clients {}  value {} B  key space {}\n", workload_name(config.workload),
                           config.clients, config.value_size_bytes, config.key_space);
  std::cout << fmt::format("ops {}  in {:.2f} s  =  {:.0f} ops/s\n", totals.ok, elapsed_s, ops_per_s);
  if (config.workload == Workload::kCas) std::cout << fmt::format("cas conflicts {}\n", totals.conflicts);
  if (is_coord_workload(config.workload)) {
    std::cout << (config.is_contended ? "contended: all clients on one object\n" : "uncontended: one object per client\n");
  }
  if (config.workload == Workload::kQueue) {
    std::cout << fmt::format("empty pops {} (another client took every visible message)\n", totals.conflicts);
  }
  std::cout << fmt::format("errors {}", error_count);
  for (const auto& [k, v] : totals.errors) std::cout << fmt::format("  {}={}", k, v);
  std::cout << "\n";
  if (!totals.last_error.empty()) std::cout << "last error: " << totals.last_error << "\n";
  std::cout << fmt::format("latency ms  mean {:.3f}  p50 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}\n", lat.mean_ms,
                           lat.p50_ms, lat.p99_ms, lat.p999_ms, lat.max_ms);
  return kExitOk;
}
