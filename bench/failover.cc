// aspen-failover-bench: how long a cluster stops accepting writes when its leader dies.
//
// Runs --clients writer threads against a running cluster, then after --warmup-ms kills the
// leader with SIGKILL (its pid is read from <pid-dir>/node-<id>.pid, as scripts/cluster.sh
// writes them) and reports the time from the kill to the first acknowledged write that was
// issued after the kill, plus the longest gap between acknowledged writes. Run it through
// scripts/bench-failover.sh, which starts a fresh cluster for each run.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "client/client.h"
#include "client/credentials.h"

namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measures write unavailability when the leader of a running cluster is killed.", "aspen-failover-bench"};
  std::string ticket;
  std::string pid_dir;
  uint32_t clients = 16;
  uint32_t warmup_ms = 2000;
  uint32_t after_ms = 3000;
  bool is_verbose = false;
  app.add_option("--ticket", ticket, "Cluster ticket")->envname("ASPEN_TICKET")->required();
  app.add_option("--pid-dir", pid_dir, "Directory with node-<id>.pid files")->required();
  app.add_option("--clients", clients, "Writer threads")->check(CLI::Range(1u, 1024u));
  app.add_option("--warmup-ms", warmup_ms, "Writes before the kill");
  app.add_flag("--verbose", is_verbose, "Print every write that failed around the kill");
  app.add_option("--after-ms", after_ms, "How long to keep writing after the first success post-kill");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  aspen::client::ClientOptions options;
  options.timeout_ms = 20000;
  if (auto s = aspen::client::apply_credentials_from_env(options); !s) {
    std::fprintf(stderr, "aspen-failover-bench: %s\n", s.error().to_string().c_str());
    return 2;
  }
  auto c = aspen::client::Client::connect(ticket, options);
  if (!c) {
    std::fprintf(stderr, "aspen-failover-bench: %s\n", c.error().to_string().c_str());
    return 3;
  }
  auto& client = **c;

  std::atomic<bool> stop{false};
  std::atomic<int64_t> killed_at_us{INT64_MAX};
  std::atomic<int64_t> first_after_kill_us{0};
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::mutex mu;
  std::vector<int64_t> acks;  // completion times of acknowledged writes
  std::vector<std::string> trace;  // --verbose: failed writes around the kill
  std::vector<std::thread> writers;
  for (uint32_t t = 0; t < clients; ++t) {
    writers.emplace_back([&, t] {
      for (uint64_t i = 0; !stop; ++i) {
        int64_t issued = now_us();
        auto r = aspen::kv::put(client, fmt::format("failover/{}/{}", t, i % 1000), std::string(256, 'v'));
        int64_t done = now_us();
        if (!r) {
          ++failed;
          if (is_verbose && issued > killed_at_us.load() - 1'500'000) {
            std::lock_guard lock(mu);
            trace.push_back(fmt::format("  writer {:2}: issued {:+6} ms, failed after {:4} ms: {}", t,
                                        (issued - killed_at_us.load()) / 1000, (done - issued) / 1000,
                                        r.error().to_string()));
          }
          continue;
        }
        ++ok;
        std::lock_guard lock(mu);
        acks.push_back(done);
        if (issued > killed_at_us.load() && first_after_kill_us.load() == 0) first_after_kill_us = done;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(warmup_ms));
  auto leader = client.leader();
  if (!leader || leader->leader().node_id() == 0) {
    std::fprintf(stderr, "aspen-failover-bench: no leader: %s\n", leader ? "none known" : leader.error().to_string().c_str());
    stop = true;
    for (auto& w : writers) w.join();
    return 3;
  }
  uint64_t leader_id = leader->leader().node_id();
  std::ifstream pid_file(fmt::format("{}/node-{}.pid", pid_dir, leader_id));
  pid_t pid = 0;
  pid_file >> pid;
  if (pid <= 0) {
    std::fprintf(stderr, "aspen-failover-bench: no pid file for node %llu in %s\n",
                 static_cast<unsigned long long>(leader_id), pid_dir.c_str());
    stop = true;
    for (auto& w : writers) w.join();
    return 2;
  }
  uint64_t ok_before = ok.load();
  ::kill(pid, SIGKILL);
  killed_at_us = now_us();
  {
    // Wall-clock time of the kill, to line up with the nodes' logs (leader changes).
    const auto wall = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(wall);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count() % 1000;
    char buf[32];
    std::strftime(buf, sizeof(buf), "%H:%M:%S", std::gmtime(&t));
    std::printf("killed at %s.%03lld UTC\n", buf, static_cast<long long>(ms));
  }
  while (first_after_kill_us.load() == 0 && now_us() - killed_at_us.load() < 30'000'000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
  stop = true;
  for (auto& w : writers) w.join();

  std::sort(acks.begin(), acks.end());
  int64_t longest_gap = 0;
  for (size_t i = 1; i < acks.size(); ++i) longest_gap = std::max(longest_gap, acks[i] - acks[i - 1]);
  int64_t first = first_after_kill_us.load();
  std::printf("killed leader node %llu (pid %d) after %llu acknowledged writes\n",
              static_cast<unsigned long long>(leader_id), pid, static_cast<unsigned long long>(ok_before));
  if (first == 0) {
    std::printf("no write issued after the kill succeeded within 30 s\n");
    return 1;
  }
  for (const auto& line : trace) std::printf("%s\n", line.c_str());
  std::printf("kill -> first acknowledged write issued after it: %.0f ms\n", (first - killed_at_us.load()) / 1000.0);
  std::printf("longest gap between acknowledged writes: %.0f ms\n", longest_gap / 1000.0);
  std::printf("writes: %llu acknowledged, %llu failed (ambiguous timeouts of writes in flight at the kill included)\n",
              static_cast<unsigned long long>(ok.load()), static_cast<unsigned long long>(failed.load()));
  return 0;
}
