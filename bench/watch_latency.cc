// aspen-watch-bench: what watching costs and how fast it is, against a running cluster.
//
//   latency   --watchers N on one prefix (on one member, --node), a writer putting --writes
//             keys at --rate per second: the time from a put's acknowledgement to each
//             watcher receiving its event, p50/p99 over every (put, watcher) pair.
//   throughput  one watcher on a prefix and --writers threads putting batches of 100 keys as
//             fast as they can for --seconds: events per second that watcher takes.
//   The node's resident memory before and after the watchers are created (--node-pid),
//   divided by N: the memory of an idle watcher.
// Run it through bench/watch-latency.sh, which starts a fresh cluster per run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "client/client.h"
#include "client/credentials.h"
#include "kv/key_value_store.h"

namespace {

using namespace aspen;
using Clock = std::chrono::steady_clock;

int64_t now_us() { return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count(); }

uint64_t rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  }
  return 0;
}

double percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))]) / 1000.0;
}

std::unique_ptr<client::Client> connect(const std::string& ticket) {
  client::ClientOptions o;
  o.timeout_ms = 30000;
  if (auto s = client::apply_credentials_from_env(o); !s) {
    std::fprintf(stderr, "aspen-watch-bench: %s\n", s.error().to_string().c_str());
    std::exit(2);
  }
  auto c = client::Client::connect(ticket, o);
  if (!c) {
    std::fprintf(stderr, "aspen-watch-bench: %s\n", c.error().to_string().c_str());
    std::exit(2);
  }
  return std::move(*c);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Watch latency, throughput and memory against a running cluster.", "aspen-watch-bench"};
  std::string ticket;
  std::string mode = "latency";
  uint32_t watchers = 1;
  uint32_t writes = 1000;
  uint32_t rate = 200;
  uint32_t writers = 8;
  uint32_t seconds = 10;
  uint64_t node_id = 1;
  int node_pid = 0;
  app.add_option("--ticket", ticket, "Cluster ticket")->envname("ASPEN_TICKET")->required();
  app.add_option("--mode", mode, "latency | throughput");
  app.add_option("--watchers", watchers, "Watchers on the prefix (latency)")->check(CLI::Range(1u, 5000u));
  app.add_option("--writes", writes, "Puts to watch (latency)");
  app.add_option("--rate", rate, "Puts per second (latency)")->check(CLI::Range(1u, 100000u));
  app.add_option("--writers", writers, "Writer threads (throughput)");
  app.add_option("--seconds", seconds, "Duration (throughput)");
  app.add_option("--node", node_id, "The member the watchers use");
  app.add_option("--node-pid", node_pid, "That member's pid, for its memory");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const std::string prefix = fmt::format("wbench/{}/", now_us());
  constexpr uint32_t kWatchesPerClient = 50;  // a connection carries at most 100 streams

  std::vector<std::unique_ptr<client::Client>> clients;
  std::vector<std::unique_ptr<client::Watch>> watches;
  const uint32_t n = mode == "throughput" ? 1 : watchers;
  const uint64_t rss_before = node_pid ? rss_kib(node_pid) : 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (i % kWatchesPerClient == 0) clients.push_back(connect(ticket));
    client::WatchOptions o;
    o.key = prefix;
    o.is_prefix = true;
    o.node_id = node_id;
    auto w = clients.back()->watch(o);
    if (!w) {
      std::fprintf(stderr, "watch %u: %s\n", i, w.error().to_string().c_str());
      return 1;
    }
    watches.push_back(std::move(*w));
  }
  if (node_pid) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the node settle before measuring
    const uint64_t rss_after = rss_kib(node_pid);
    fmt::print("node memory: {} KiB before, {} KiB with {} idle watchers: {:.1f} KiB per watcher\n", rss_before,
               rss_after, n, static_cast<double>(rss_after - std::min(rss_after, rss_before)) / n);
  }
  auto writer = connect(ticket);
  std::atomic<bool> is_done{false};

  if (mode == "throughput") {
    std::atomic<uint64_t> events{0};
    std::thread reader([&] {
      while (!is_done) {
        auto b = watches[0]->next(500);
        if (b) events += b->events.size();
      }
    });
    std::vector<std::thread> ws;
    std::atomic<uint64_t> puts{0};
    const auto start = Clock::now();
    const auto end = start + std::chrono::seconds(seconds);
    for (uint32_t t = 0; t < writers; ++t) {
      ws.emplace_back([&, t] {
        auto c = connect(ticket);
        for (uint64_t i = 0; Clock::now() < end; ++i) {
          kvpb::Command cmd;
          for (int k = 0; k < 100; ++k) {
            auto* p = cmd.mutable_set_multi()->add_puts();
            p->set_key(fmt::format("{}{}-{}", prefix, t, k));
            p->set_value(std::string(64, 'v'));
          }
          if (c->execute(cmd)) puts += 100;
        }
      });
    }
    for (auto& t : ws) t.join();
    const double wrote_s = std::chrono::duration<double>(Clock::now() - start).count();
    // Then wait for the watcher to drain what was written.
    const auto drain_end = Clock::now() + std::chrono::seconds(60);
    while (events < puts && Clock::now() < drain_end) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const double all_s = std::chrono::duration<double>(Clock::now() - start).count();
    is_done = true;
    reader.join();
    fmt::print("throughput: {} events written in {:.1f} s ({:.0f}/s); one watcher received {} in {:.1f} s: {:.0f} events/s\n",
               puts.load(), wrote_s, static_cast<double>(puts) / wrote_s, events.load(), all_s,
               static_cast<double>(events) / all_s);
    return events >= puts ? 0 : 1;
  }

  // latency
  std::mutex mu;
  std::map<uint64_t, int64_t> acked_at;  // revision -> when its put was acknowledged
  std::vector<std::vector<std::pair<uint64_t, int64_t>>> received(n);  // per watcher: (revision, when)
  std::vector<std::thread> readers;
  const uint32_t per_thread = std::max(1u, n / 64);  // at most 64 reader threads
  for (uint32_t first = 0; first < n; first += per_thread) {
    readers.emplace_back([&, first] {
      const uint32_t last = std::min(n, first + per_thread);
      while (!is_done) {
        for (uint32_t i = first; i < last; ++i) {
          // A short wait per watcher: a thread serves several, round robin.
          auto b = watches[i]->next(per_thread == 1 ? 200 : 1);
          if (b && !b->is_progress()) received[i].emplace_back(b->revision, now_us());
        }
      }
    });
  }
  const auto interval = std::chrono::microseconds(1'000'000 / rate);
  auto next_at = Clock::now();
  for (uint32_t i = 0; i < writes; ++i) {
    std::this_thread::sleep_until(next_at);
    next_at += interval;
    auto r = kv::put(*writer, fmt::format("{}{}", prefix, i % 64), "x");
    const int64_t t = now_us();
    if (!r) continue;
    std::lock_guard lock(mu);
    acked_at[r->revision()] = t;
  }
  // Until every watcher has every event, or 30 s.
  const auto drain_end = Clock::now() + std::chrono::seconds(30);
  auto complete = [&] {
    for (uint32_t i = 0; i < n; ++i) {
      if (received[i].size() < acked_at.size()) return false;
    }
    return true;
  };
  while (!complete() && Clock::now() < drain_end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  is_done = true;
  for (auto& t : readers) t.join();
  std::vector<int64_t> lat;
  uint64_t early = 0, missing = 0;
  for (uint32_t i = 0; i < n; ++i) {
    std::map<uint64_t, int64_t> got(received[i].begin(), received[i].end());
    for (const auto& [rev, at] : acked_at) {
      auto it = got.find(rev);
      if (it == got.end()) {
        ++missing;
        continue;
      }
      // The event may arrive before the writer's acknowledgement does: count it as 0.
      if (it->second < at) ++early;
      lat.push_back(std::max<int64_t>(0, it->second - at));
    }
  }
  fmt::print("latency: {} watchers, {} puts at {}/s: ack->event p50 {:.2f} ms p99 {:.2f} ms max {:.2f} ms "
             "({} pairs, {} events before the ack, {} missing)\n",
             n, acked_at.size(), rate, percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1.0), lat.size(),
             early, missing);
  return missing == 0 ? 0 : 1;
}
