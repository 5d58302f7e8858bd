// aspen-hostile-bench: what hostile clients cost a well-behaved one (issue 14 item 3).
//
// Against a running cluster, in one run: the well-behaved client's put throughput and
// latency (p50/p99) with no hostile client, then with the hostile clients of
// tests/integration/hostile_clients_test.cc attacking one node, then without them again; and
// that node's peak RSS (VmHWM, reset at the start of each phase) in each phase. The hostile
// clients: 100 streams of partial 10 MiB frames never finished; 100 large scans (40 values
// of 1 MiB, about 4 MiB a page) never read, down to the QUIC stack (no flow-control credit);
// connections opened until refused; requests at --flood-rate per second.
//
// Credentials from ASPEN_IDENTITY / ASPEN_TOKEN_FILE (scripts/cluster.sh writes cli.env);
// the scanner presents them too, so its scans run. Run it through bench/hostile-load.sh.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "aspen/client.pb.h"
#include "client/client.h"
#include "client/credentials.h"
#include "cluster/ticket.h"
#include "transport/endpoint.h"
#include "transport/frame.h"
#include "transport/internal/testing.h"

namespace {

using namespace aspen;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = uint64_t{1} << 20;

uint64_t status_bytes(int pid, const std::string& field) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field)) return std::stoull(line.substr(field.size())) * 1024;
  }
  return 0;
}

void reset_peak_rss(int pid) { std::ofstream(fmt::format("/proc/{}/clear_refs", pid)) << "5"; }

struct PhaseResult {
  std::string name;
  double seconds = 0;
  uint64_t puts = 0;
  uint64_t errors = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t peak_rss = 0;
};

// --writers threads putting small values as fast as they can; latencies per phase.
class Writers {
 public:
  Writers(std::vector<std::unique_ptr<client::Client>> clients) : clients_(std::move(clients)) {
    for (size_t i = 0; i < clients_.size(); ++i) threads_.emplace_back([this, i] { run(i); });
  }
  ~Writers() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  // Starts a new phase; returns the latencies (us) and errors of the one that ended.
  std::pair<std::vector<uint64_t>, uint64_t> next_phase() {
    std::lock_guard lock(mu_);
    return {std::exchange(latencies_us_, {}), std::exchange(errors_, 0)};
  }

 private:
  void run(size_t i) {
    for (uint64_t n = 0; !stop_; ++n) {
      kvpb::Command cmd;
      cmd.mutable_put()->set_key(fmt::format("bench/{}/{}", i, n % 1000));
      cmd.mutable_put()->set_value(std::string(100, 'v'));
      const auto start = Clock::now();
      const bool ok = clients_[i]->execute(cmd).has_value();
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
      std::lock_guard lock(mu_);
      if (ok) {
        latencies_us_.push_back(static_cast<uint64_t>(us));
      } else {
        ++errors_;
      }
    }
  }

  std::vector<std::unique_ptr<client::Client>> clients_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<uint64_t> latencies_us_;  // [mu_]
  uint64_t errors_ = 0;                 // [mu_]
  std::vector<std::thread> threads_;
};

PhaseResult measure(const std::string& name, Writers& writers, int pid, uint32_t phase_s) {
  writers.next_phase();
  reset_peak_rss(pid);
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(phase_s));  // the measurement interval itself
  PhaseResult r;
  r.name = name;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  auto [lat, errors] = writers.next_phase();
  r.peak_rss = status_bytes(pid, "VmHWM:");
  r.puts = lat.size();
  r.errors = errors;
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, size_t(p * lat.size()))] / 1000.0; };
  r.p50_ms = pct(0.50);
  r.p99_ms = pct(0.99);
  return r;
}

// The hostile clients, each on an endpoint of its own, all against one node.
class Hostile {
 public:
  Hostile(const cluster::TicketPeer& target, const transport::NodeIdentity& operator_identity, std::string token,
          uint32_t flood_rate)
      : target_(target), operator_(operator_identity), token_(std::move(token)), flood_rate_(flood_rate) {}
  ~Hostile() { stop(); }

  void start() {
    partial_frames();
    large_scans_never_read();
    // Connected before the flood of connections takes the address's remaining slots.
    flood_ = dial(transport::NodeIdentity::generate());
    if (flood_) flooder_ = std::thread([this] { flood(); });
    connections_until_refused();
  }
  void stop() {
    is_stopped_ = true;
    if (flooder_.joinable()) flooder_.join();
  }
  std::string summary() const {
    return fmt::format("partial-frame streams {}, unread scans {}, hoarded connections {} (refused: {}), flood "
                       "requests {} ({} rate-limited)",
                       partial_streams_.size(), scans_.size(), hoarders_.size(), refusal_, flood_sent_.load(),
                       flood_limited_.load());
  }

 private:
  struct Raw {
    std::unique_ptr<transport::Endpoint> endpoint;
    std::optional<transport::Connection> conn;
  };
  std::unique_ptr<Raw> dial(const transport::NodeIdentity& id, std::string* error = nullptr) {
    auto raw = std::make_unique<Raw>();
    auto e = transport::Endpoint::bind(id, transport::EndpointConfig{});
    if (!e) return nullptr;
    raw->endpoint = std::move(*e);
    auto c = raw->endpoint->connect(target_.public_key, target_.addrs, "aspen-client", 5000);
    if (!c) {
      if (error != nullptr) *error = c.error().to_string();
      return nullptr;
    }
    raw->conn = *c;
    return raw;
  }
  void partial_frames() {
    partial_ = dial(transport::NodeIdentity::generate());
    if (!partial_) return;
    for (int i = 0; i < 100; ++i) {
      auto s = partial_->conn->open_bi(5000);
      if (!s) break;
      std::string bytes;
      transport::append_frame_header(bytes, static_cast<uint32_t>(limits::kMaxFrameSizeBytes));
      bytes.append(256 * 1024, 'p');
      (void)transport::StreamTestAccess::send_raw(*s, std::move(bytes));
      partial_streams_.push_back(*s);
    }
  }
  void large_scans_never_read() {
    auto e = transport::Endpoint::bind(operator_, transport::EndpointConfig{});
    if (!e) return;
    scanner_ = std::make_unique<Raw>();
    scanner_->endpoint = std::move(*e);
    transport::EndpointTestAccess::withhold_credit(*scanner_->endpoint);
    auto c = scanner_->endpoint->connect(target_.public_key, target_.addrs, "aspen-client", 5000);
    if (!c) return;
    scanner_->conn = *c;
    clientpb::Request req;
    req.mutable_scan()->set_consistency(clientpb::CONSISTENCY_LINEARIZABLE);
    req.mutable_scan()->mutable_range()->set_start("hostile-big/");
    req.mutable_scan()->mutable_range()->set_is_prefix(true);
    req.mutable_scan()->mutable_range()->set_limit(100);
    req.set_auth_token(token_);
    for (int i = 0; i < 100; ++i) {
      auto s = scanner_->conn->open_bi_with(req.SerializeAsString(), true, 5000);
      if (s) scans_.push_back(*s);
    }
  }
  void flood() {
    Raw* f = flood_.get();
    clientpb::Request req;
    req.mutable_write()->mutable_command()->mutable_put()->set_key("flood/x");
    req.mutable_write()->mutable_command()->mutable_put()->set_value(std::string(256, 'f'));
    const std::string bytes = req.SerializeAsString();
    const auto start = Clock::now();
    for (uint64_t i = 0; !is_stopped_; ++i) {
      // Paced: request i leaves at i / rate seconds (catching up if behind).
      const auto due = start + std::chrono::microseconds(i * 1'000'000 / flood_rate_);
      if (Clock::now() < due) std::this_thread::sleep_until(due);
      auto s = f->conn->open_bi_with(bytes, true, 2000);
      if (!s) continue;
      flood_sent_.fetch_add(1);
      auto answer = s->recv(2000);
      clientpb::Response resp;
      if (answer && *answer && resp.ParseFromString(**answer) && resp.has_error() &&
          resp.error().message().find("request rate limit") != std::string::npos) {
        flood_limited_.fetch_add(1);
      }
    }
  }
  void connections_until_refused() {
    for (int i = 0; i < 200 && refusal_.empty(); ++i) {
      std::string error;
      auto h = dial(transport::NodeIdentity::generate(), &error);
      if (!h) {
        refusal_ = error.empty() ? "bind failed" : error;
        break;
      }
      hoarders_.push_back(std::move(h));
    }
  }

  cluster::TicketPeer target_;
  transport::NodeIdentity operator_;
  std::string token_;
  uint32_t flood_rate_;
  std::unique_ptr<Raw> partial_;
  std::vector<transport::Stream> partial_streams_;
  std::unique_ptr<Raw> scanner_;
  std::vector<transport::Stream> scans_;
  std::vector<std::unique_ptr<Raw>> hoarders_;
  std::string refusal_;
  std::unique_ptr<Raw> flood_;
  std::thread flooder_;
  std::atomic<bool> is_stopped_{false};
  std::atomic<uint64_t> flood_sent_{0};
  std::atomic<uint64_t> flood_limited_{0};
};

void print(const PhaseResult& r) {
  std::printf("{\"phase\":\"%s\",\"puts_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"errors\":%llu,"
              "\"peak_rss_mib\":%llu}\n",
              r.name.c_str(), r.puts / r.seconds, r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.errors),
              static_cast<unsigned long long>(r.peak_rss / kMiB));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Put throughput of a well-behaved client with and without hostile clients, in one run.",
               "aspen-hostile-bench"};
  std::string ticket;
  int pid = 0;
  uint64_t target_id = 1;
  uint32_t writers = 8;
  uint32_t phase_s = 10;
  uint32_t flood_rate = 10000;
  app.add_option("--ticket", ticket, "Cluster ticket")->envname("ASPEN_TICKET")->required();
  app.add_option("--node-id", target_id, "The node attacked (default 1)");
  app.add_option("--pid", pid, "That node's process id (for its VmHWM)")->required();
  app.add_option("--writers", writers, "Well-behaved writer threads, one connection each")->check(CLI::Range(1u, 32u));
  app.add_option("--phase-s", phase_s, "Seconds per phase")->check(CLI::Range(1u, 3600u));
  app.add_option("--flood-rate", flood_rate, "Requests per second of the flooding client")->check(CLI::Range(1u, 1000000u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  client::ClientOptions options;
  options.timeout_ms = 20000;
  if (auto s = client::apply_credentials_from_env(options); !s) {
    std::fprintf(stderr, "aspen-hostile-bench: %s\n", s.error().to_string().c_str());
    return 2;
  }
  auto parsed = cluster::decode_ticket(ticket);
  if (!parsed) {
    std::fprintf(stderr, "aspen-hostile-bench: %s\n", parsed.error().to_string().c_str());
    return 2;
  }
  auto peer = std::find_if(parsed->peers.begin(), parsed->peers.end(),
                           [&](const cluster::TicketPeer& p) { return p.node_id == target_id; });
  if (peer == parsed->peers.end()) {
    std::fprintf(stderr, "aspen-hostile-bench: node %llu is not in the ticket\n",
                 static_cast<unsigned long long>(target_id));
    return 2;
  }
  // The well-behaved writers connect first: the connection flood takes what is left of this
  // address's client slots.
  std::vector<std::unique_ptr<client::Client>> clients;
  for (uint32_t i = 0; i < writers; ++i) {
    auto c = client::Client::connect(ticket, options);
    if (!c) {
      std::fprintf(stderr, "aspen-hostile-bench: %s\n", c.error().to_string().c_str());
      return 1;
    }
    clients.push_back(std::move(*c));
  }
  for (int i = 0; i < 40; ++i) {  // what the scanner asks for
    kvpb::Command cmd;
    cmd.mutable_put()->set_key(fmt::format("hostile-big/{:02}", i));
    cmd.mutable_put()->set_value(std::string(limits::kMaxValueSizeBytes, static_cast<char>('a' + i % 26)));
    if (auto r = clients[0]->execute(cmd); !r) {
      std::fprintf(stderr, "aspen-hostile-bench: preload: %s\n", r.error().to_string().c_str());
      return 1;
    }
  }
  std::vector<PhaseResult> results;
  {
    Writers w(std::move(clients));
    results.push_back(measure("clean-before", w, pid, phase_s));
    print(results.back());
    // Without credentials the scans are refused unexecuted, and cost the node little.
    const transport::NodeIdentity scanner_identity =
        options.identity ? *options.identity : transport::NodeIdentity::generate();
    auto hostile = std::make_unique<Hostile>(*peer, scanner_identity, options.token, flood_rate);
    hostile->start();
    results.push_back(measure("hostile", w, pid, phase_s));
    print(results.back());
    hostile->stop();
    std::fprintf(stderr, "hostile clients: %s\n", hostile->summary().c_str());
    hostile.reset();  // every hostile connection closed
    results.push_back(measure("clean-after", w, pid, phase_s));
    print(results.back());
  }
  const double clean = (results[0].puts / results[0].seconds + results[2].puts / results[2].seconds) / 2;
  const double under_attack = results[1].puts / results[1].seconds;
  std::printf("{\"hostile_over_clean\":%.2f,\"peak_rss_mib\":%llu}\n", clean > 0 ? under_attack / clean : 0.0,
              static_cast<unsigned long long>(
                  std::max({results[0].peak_rss, results[1].peak_rss, results[2].peak_rss}) / kMiB));
  return 0;
}
