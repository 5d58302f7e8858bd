// Hostile clients against a real aspen-node (issue 14 item 3): one opens 100 streams of
// partial 10 MiB frames and never finishes them, one never reads its answers, one asks for
// 100 large scans and never reads them (down to its QUIC stack: it grants no flow-control
// credit), one opens connections until refused, one sends requests as fast as it can.
// Meanwhile a well-behaved client keeps making progress and the node's memory stays bounded.
//
// The RSS bound: the node's resident memory before the attack, plus what the limits let
// the attackers pin: one connection's partial frames (32 MiB), QUIC's receive windows of
// the attacking connections still in flight (at most 32 MiB per connection; only the
// partial-frame and never-reading clients send much), the scanner's unacknowledged answers
// (32 MiB) and the page being built for it (a scan page and its encoding, 2 x 10 MiB at
// most), and 64 MiB of slack for allocator arenas and recycled send buffers. Without the
// caps the partial frames alone would pin 100 x 10 MiB = 1 GiB, and the scanner's answers
// 100 x 4 MiB.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "aspen/client.pb.h"
#include "node_process.h"
#include "transport/endpoint.h"
#include "transport/frame.h"
#include "transport/internal/testing.h"

namespace aspen::testing {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

// A field of /proc/PID/status in bytes: VmRSS now, VmHWM the peak.
uint64_t status_bytes(pid_t pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field)) return std::stoull(line.substr(field.size())) * 1024;
  }
  return 0;
}
uint64_t rss_bytes(pid_t pid) { return status_bytes(pid, "VmRSS:"); }

// Resets the process's VmHWM to its current RSS (Linux >= 4.0), so VmHWM is the peak since
// now, even between samples. False if the kernel refused.
bool reset_peak_rss(pid_t pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

// A counter or gauge of node 1 from its metrics text (0 when absent).
uint64_t metric_value(const std::string& text, const std::string& name) {
  const std::string key = name + "{node_id=\"1\"} ";
  const auto pos = text.find(key);
  return pos == std::string::npos ? 0 : std::stoull(text.substr(pos + key.size()));
}

// A raw client endpoint, dialling the node on the client protocol with a key of its own
// (or the test operator's, to be authorized).
struct RawClient {
  transport::NodeIdentity identity;
  std::unique_ptr<transport::Endpoint> endpoint;
  explicit RawClient(transport::NodeIdentity id = transport::NodeIdentity::generate()) : identity(std::move(id)) {
    auto e = transport::Endpoint::bind(identity, transport::EndpointConfig{});
    EXPECT_TRUE(e.has_value());
    endpoint = std::move(*e);
  }
  Result<transport::Connection> dial(const NodeProcess& n) {
    const auto addr = *transport::SocketAddr::parse(n.addr());
    return endpoint->connect(*transport::PublicKey::parse(n.key_text()), std::span(&addr, 1), "aspen-client", 5000);
  }
};

std::string put_request(const std::string& key) {
  clientpb::Request req;
  auto* put = req.mutable_write()->mutable_command()->mutable_put();
  put->set_key(key);
  put->set_value(std::string(256, 'v'));
  return req.SerializeAsString();
}

// A scan of every key under `prefix`, authorized by `token`: with 1 MiB values an answer
// is one page of about kMaxScanResultBytes. Linearizable: reads sharing a ReadIndex round
// are answered limits::kMaxReadAnswerBytesPerRound at a time, so they are bounded too.
std::string scan_request(const std::string& prefix, const std::string& token) {
  clientpb::Request req;
  req.mutable_scan()->set_consistency(clientpb::CONSISTENCY_LINEARIZABLE);
  auto* range = req.mutable_scan()->mutable_range();
  range->set_start(prefix);
  range->set_is_prefix(true);
  range->set_limit(100);
  req.set_auth_token(token);
  return req.SerializeAsString();
}

constexpr int kBigValues = 40;

TEST(HostileClients, WellBehavedClientProgressesAndNodeMemoryStaysBounded) {
  TempDir dir;
  NodeMap nodes;
  nodes[1] = std::make_unique<NodeProcess>(1, dir.path(), "hostile-cookie-1");
  // The default request rate per connection is above what a node serves; the operator of a
  // shared node sets it lower, as here, so that a flooding connection is held to its share.
  ASSERT_NO_FATAL_FAILURE(nodes[1]->start({"--client-requests-per-s", "5000", "--client-request-burst", "1000"}));
  auto good = client_for(nodes);
  ASSERT_NE(good, nullptr);
  ASSERT_NO_FATAL_FAILURE(form_cluster(*good, nodes));
  // The well-behaved client connects before the flood takes this address's client slots.
  auto put = [&](int i) {
    kvpb::Command cmd;
    cmd.mutable_put()->set_key("good/" + std::to_string(i));
    cmd.mutable_put()->set_value("v");
    return good->execute(cmd).has_value();
  };
  ASSERT_TRUE(put(0));
  // What the scanner will ask for, read once so that the store's pages are resident before
  // the baseline is taken.
  for (int i = 0; i < kBigValues; ++i) {
    kvpb::Command cmd;
    cmd.mutable_put()->set_key(fmt::format("big/{:02}", i));
    cmd.mutable_put()->set_value(std::string(limits::kMaxValueSizeBytes, static_cast<char>('a' + i % 26)));
    auto r = good->execute(cmd);
    ASSERT_TRUE(r) << r.error().to_string();
  }
  {
    kvpb::RangeRequest all;
    all.set_start("big/");
    all.set_is_prefix(true);
    all.set_limit(100);
    for (int page = 0; page < kBigValues; ++page) {
      auto r = good->scan(all);
      ASSERT_TRUE(r) << r.error().to_string();
      EXPECT_GE(r->kvs_size(), 3);  // about kMaxScanResultBytes of 1 MiB values
      if (!r->has_more()) break;
      all.set_continuation(r->continuation());
    }
  }
  const pid_t pid = nodes[1]->pid();
  const uint64_t baseline_rss = rss_bytes(pid);
  ASSERT_GT(baseline_rss, 0u);
  const bool is_peak_exact = reset_peak_rss(pid);
  const uint64_t rss_bound = baseline_rss + limits::kMaxConnectionPartialFrameBytes + 3 * 32 * kMiB +
                             limits::kMaxConnectionUnackedSendBytes + 2 * limits::kMaxFrameSizeBytes + 64 * kMiB;
  uint64_t peak_rss = baseline_rss;
  auto sample_rss = [&] {
    peak_rss = std::max({peak_rss, rss_bytes(pid), is_peak_exact ? status_bytes(pid, "VmHWM:") : 0});
  };

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> good_puts{0};
  std::thread well_behaved([&] {
    for (int i = 1; !stop.load(); ++i) {
      if (put(i)) good_puts.fetch_add(1);
    }
  });

  // 1. 100 streams of partial maximal frames, never finished.
  RawClient partial;
  auto pconn = partial.dial(*nodes[1]);
  ASSERT_TRUE(pconn) << pconn.error().to_string();
  std::vector<transport::Stream> partial_streams;
  for (int i = 0; i < 100; ++i) {
    auto s = pconn->open_bi(5000);
    if (!s) break;  // the node's stream limit
    std::string bytes;
    transport::append_frame_header(bytes, static_cast<uint32_t>(limits::kMaxFrameSizeBytes));
    bytes.append(256 * 1024, 'p');
    (void)transport::StreamTestAccess::send_raw(*s, std::move(bytes));
    partial_streams.push_back(*s);
  }

  // 2. Requests whose answers are never read.
  RawClient deaf;
  auto dconn = deaf.dial(*nodes[1]);
  ASSERT_TRUE(dconn);
  std::vector<transport::Stream> unread;
  for (int i = 0; i < 50; ++i) {
    auto s = dconn->open_bi_with(put_request("deaf/" + std::to_string(i)), true, 5000);
    if (s) unread.push_back(*s);
  }

  // 3. 100 large scans whose answers are never read: the client grants no flow-control
  // credit, so all the node does not get rid of in the first windows stays queued unless a
  // cap refuses it. It is the test operator (authorized), so every scan runs.
  RawClient scanner(TestOperator::get().identity);
  transport::EndpointTestAccess::withhold_credit(*scanner.endpoint);
  auto sconn = scanner.dial(*nodes[1]);
  ASSERT_TRUE(sconn) << sconn.error().to_string();
  std::vector<transport::Stream> scans;
  const std::string token = TestOperator::get().current_token();
  for (int i = 0; i < 100; ++i) {
    auto s = sconn->open_bi_with(scan_request("big/", token), true, 5000);
    if (s) scans.push_back(*s);
  }
  EXPECT_GE(scans.size(), 90u);

  // 4. As many requests as it can send (10,000/s and more) on one connection: 96 at a time
  // without waiting for answers, so the rate does not depend on how fast a put commits (one
  // at a time, a loaded machine's commit latency kept it under the node's limit).
  RawClient flood;
  auto fconn = flood.dial(*nodes[1]);
  ASSERT_TRUE(fconn);
  std::atomic<uint64_t> rate_limited{0};
  std::thread flooder([&] {
    constexpr int kInFlight = 96;  // under the kMaxStreamsPerConnection (100) streams a connection may hold
    for (int i = 0; !stop.load() && i < 20000; i += kInFlight) {
      std::vector<transport::Stream> sent;
      for (int j = i; j < i + kInFlight; ++j) {
        auto s = fconn->open_bi_with(put_request("flood/" + std::to_string(j)), true, 2000);
        if (s) sent.push_back(*s);
      }
      for (auto& s : sent) {
        auto answer = s.recv(2000);
        clientpb::Response resp;
        if (answer && *answer && resp.ParseFromString(**answer) && resp.has_error() &&
            resp.error().message().find("request rate limit") != std::string::npos) {
          rate_limited.fetch_add(1);
        }
      }
    }
  });

  // 5. Connections until refused.
  std::vector<std::unique_ptr<RawClient>> hoarders;
  std::string refusal;
  for (int i = 0; i < 200 && refusal.empty(); ++i) {
    auto h = std::make_unique<RawClient>();
    auto c = h->dial(*nodes[1]);
    if (!c) refusal = c.error().to_string();
    hoarders.push_back(std::move(h));
  }
  EXPECT_NE(refusal.find("connection limit"), std::string::npos) << refusal;

  // The well-behaved client keeps making progress under all of it.
  const uint64_t before = good_puts.load();
  EXPECT_TRUE(wait_until([&] { sample_rss(); return good_puts.load() >= before + 200; }, 20000))
      << "well-behaved puts: " << good_puts.load() - before;
  EXPECT_TRUE(wait_until([&] { sample_rss(); return rate_limited.load() > 0; }, 20000));
  // The scanner's answers crossed its connection's send cap: the node refused the rest.
  uint64_t refused_sends = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        sample_rss();
        auto text = good->metrics_text(client::Target{1});
        refused_sends = text ? metric_value(*text, "aspen_transport_streams_refused_send_limit_total") : 0;
        return refused_sends > 0;
      },
      20000));
  sample_rss();
  EXPECT_LE(peak_rss, rss_bound) << "baseline " << baseline_rss / kMiB << " MiB, peak " << peak_rss / kMiB << " MiB";
  std::printf(
      "hostile clients: node RSS baseline %llu MiB, peak %llu MiB (%s), bound %llu MiB; well-behaved puts %llu; "
      "answers refused over a send cap %llu\n",
      static_cast<unsigned long long>(baseline_rss / kMiB), static_cast<unsigned long long>(peak_rss / kMiB),
      is_peak_exact ? "VmHWM" : "sampled VmRSS", static_cast<unsigned long long>(rss_bound / kMiB),
      static_cast<unsigned long long>(good_puts.load()), static_cast<unsigned long long>(refused_sends));
  stop = true;
  flooder.join();
  well_behaved.join();

  auto metrics = good->metrics_text(client::Target{1});
  ASSERT_TRUE(metrics) << metrics.error().to_string();
  EXPECT_EQ(metrics->find("aspen_transport_streams_refused_recv_limit_total{node_id=\"1\"} 0\n"), std::string::npos);
  EXPECT_EQ(metrics->find("aspen_client_rate_limited_total{node_id=\"1\"} 0\n"), std::string::npos);
  EXPECT_EQ(metrics->find("aspen_transport_address_connections_refused_total{node_id=\"1\"} 0\n"), std::string::npos);
  EXPECT_LE(metric_value(*metrics, "aspen_transport_client_unacked_send_bytes"), limits::kMaxClientUnackedSendBytes);
}

}  // namespace
}  // namespace aspen::testing
