// aspen-dns-bench: a UDP load generator for a DNS server (bench/dns-load.sh runs it against
// aspen-dns with and without its cache). Each of --concurrency threads sends one query, waits
// for its answer (or --timeout-ms), then sends the next, for --duration-s seconds, cycling
// through the names given. Reports queries/s, answers by rcode, timeouts, and latency
// percentiles of answered queries.
//
//   aspen-dns-bench --server 127.0.0.1:5353 --concurrency 16 --duration-s 10 www.example.test. ...
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "dns/message.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Totals {
  std::mutex mu;
  std::vector<uint64_t> latencies_us;
  std::map<int, uint64_t> rcodes;
  uint64_t timeouts = 0;
  uint64_t truncated = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aspen-dns-bench: closed-loop UDP query load against a DNS server"};
  std::string server = "127.0.0.1:5353";
  unsigned concurrency = 16;
  double duration_s = 10;
  unsigned timeout_ms = 1000;
  std::string qtype = "A";
  std::vector<std::string> names;
  app.add_option("--server", server, "IPv4 HOST:PORT")->capture_default_str();
  app.add_option("--concurrency", concurrency, "Queries in flight (one per thread)")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--duration-s", duration_s, "How long to run")->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "Give up on one query after this long")->capture_default_str();
  app.add_option("--type", qtype, "Query type (A, AAAA, TXT, ...)")->capture_default_str();
  app.add_option("names", names, "Names to ask for, in turn")->required();
  CLI11_PARSE(app, argc, argv);

  const auto colon = server.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  if (colon == std::string::npos || ::inet_pton(AF_INET, server.substr(0, colon).c_str(), &to.sin_addr) != 1) {
    std::cerr << "aspen-dns-bench: --server must be IPv4 HOST:PORT\n";
    return 2;
  }
  to.sin_port = htons(static_cast<uint16_t>(std::stoi(server.substr(colon + 1))));
  auto t = aspen::dns::type_from_name(qtype);
  if (!t) {
    std::cerr << "aspen-dns-bench: unknown --type " << qtype << "\n";
    return 2;
  }
  std::vector<aspen::dns::Name> parsed;
  for (const auto& n : names) {
    auto p = aspen::dns::parse_name(n);
    if (!p) {
      std::cerr << "aspen-dns-bench: " << p.error().message() << "\n";
      return 2;
    }
    parsed.push_back(*p);
  }

  Totals totals;
  std::atomic<uint64_t> next_name{0};
  const auto end = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(duration_s * 1e6));
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < concurrency; ++w) {
    threads.emplace_back([&, w] {
      const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
      std::vector<uint64_t> lat;
      std::map<int, uint64_t> rcodes;
      uint64_t timeouts = 0, truncated = 0;
      uint16_t id = static_cast<uint16_t>(w * 4096);
      char buf[4096];
      while (Clock::now() < end) {
        aspen::dns::Message q;
        q.header.id = ++id;
        q.questions.push_back({parsed[next_name++ % parsed.size()], *t, aspen::dns::kClassIn});
        const std::string bytes = aspen::dns::encode_message(q, aspen::dns::kMaxMessageBytes).bytes;
        const auto start = Clock::now();
        if (::send(fd, bytes.data(), bytes.size(), 0) < 0) continue;
        bool is_answered = false;
        while (!is_answered) {
          const auto left = std::chrono::milliseconds(timeout_ms) - (Clock::now() - start);
          const int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count());
          pollfd p{fd, POLLIN, 0};
          if (wait_ms <= 0 || ::poll(&p, 1, wait_ms) <= 0) break;
          const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n < 12) continue;
          auto h = aspen::dns::decode_header(std::string_view(buf, static_cast<size_t>(n)));
          if (!h || h->id != id) continue;  // a late answer to an earlier query
          is_answered = true;
          lat.push_back(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()));
          ++rcodes[h->rcode];
          if (h->is_truncated) ++truncated;
        }
        if (!is_answered) ++timeouts;
      }
      ::close(fd);
      std::lock_guard lock(totals.mu);
      totals.latencies_us.insert(totals.latencies_us.end(), lat.begin(), lat.end());
      for (auto [r, c] : rcodes) totals.rcodes[r] += c;
      totals.timeouts += timeouts;
      totals.truncated += truncated;
    });
  }
  for (auto& th : threads) th.join();
  auto& l = totals.latencies_us;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0 : l[std::min(l.size() - 1, static_cast<size_t>(p * static_cast<double>(l.size())))]; };
  std::string rc;
  for (auto [r, c] : totals.rcodes) rc += fmt::format(" rcode{}={}", r, c);
  std::cout << fmt::format("answered={} qps={:.0f} p50_us={} p99_us={} p999_us={} max_us={} timeouts={} truncated={}{}\n", l.size(),
                           static_cast<double>(l.size()) / duration_s, pct(0.50), pct(0.99), pct(0.999), l.empty() ? 0 : l.back(),
                           totals.timeouts, totals.truncated, rc);
  return totals.timeouts > l.size() / 10 ? 1 : 0;
}
