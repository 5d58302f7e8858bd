// Hybrid logical clocks on real aspen-node processes (issue 17): keys written one after
// another through different leaders (the leader is killed with kill -9 between writes, then
// restarted) read back with `aspen-cli kv get --json` carrying HLC stamps that increase in
// write order, name the leaders that proposed them, and lie within the nodes' clock offsets
// of the wall clock around each write. The nodes' clocks are shifted (+-200 ms) with the
// test-only offset, which the HLC reads too. Plain `kv get` output is the value alone.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "cli_process.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

const std::map<uint64_t, int64_t> kOffsetMs = {{1, 0}, {2, 200}, {3, -200}};
constexpr int64_t kMaxOffsetMs = 200;

uint64_t wall_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

class HlcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& [id, offset_ms] : kOffsetMs) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_.path(), "hlc-test-cookie");
      ASSERT_NO_FATAL_FAILURE(nodes_[id]->start(start_args(id)));
    }
    client_ = client_for(nodes_);
    ASSERT_NE(client_, nullptr);
    ASSERT_NO_FATAL_FAILURE(form_cluster(*client_, nodes_));
    cluster::Ticket t;
    for (const auto& [id, n] : nodes_) t.peers.push_back(n->ticket_peer());
    ticket_ = cluster::encode_ticket(t);
    env_ = operator_env(dir_.path());
  }

  static std::vector<std::string> start_args(uint64_t id) {
    return {"--test-clock-offset-ms=" + std::to_string(kOffsetMs.at(id))};
  }
  CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--ticket", ticket_, "--timeout-ms", "15000"});
    return run_cli(args, dir_.path(), "", env_);
  }
  uint64_t leader_id() {
    uint64_t id = 0;
    wait_until(
        [&] {
          auto l = client_->leader();
          if (l && l->leader().node_id() != 0 && nodes_.at(l->leader().node_id())->alive()) id = l->leader().node_id();
          return id != 0;
        },
        20000);
    return id;
  }

  TempDir dir_;
  NodeMap nodes_;
  std::unique_ptr<client::Client> client_;
  std::string ticket_;
  std::map<std::string, std::string> env_;
};

TEST_F(HlcTest, StampsIncreaseInWriteOrderAcrossLeadersAndStayNearWallTime) {
  struct Written {
    std::string key;
    uint64_t leader = 0;
    uint64_t before_ms = 0;
    uint64_t after_ms = 0;
  };
  std::vector<Written> written;
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t leader = leader_id();
    ASSERT_NE(leader, 0u);
    for (int i = 0; i < 3; ++i) {
      Written w{fmt::format("hlc/{}/{}", round, i), leader, wall_ms(), 0};
      auto r = cli({"kv", "set", w.key, "v"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      w.after_ms = wall_ms();
      written.push_back(w);
    }
    if (round + 1 == kRounds) break;
    // Another leader for the next round: kill -9 this one, and bring it back as a follower.
    nodes_[leader]->kill9();
    uint64_t next = 0;
    ASSERT_TRUE(wait_until(
        [&] {
          auto l = client_->leader();
          next = l ? l->leader().node_id() : 0;
          return next != 0 && next != leader;
        },
        20000));
    ASSERT_NO_FATAL_FAILURE(nodes_[leader]->start(start_args(leader)));
  }

  std::set<uint64_t> stamping_nodes;
  std::optional<std::tuple<uint64_t, uint64_t, uint64_t>> prev;
  std::string prev_text;
  for (const auto& w : written) {
    auto r = cli({"--json", "kv", "get", w.key});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    const auto& kv = j["kv"];
    ASSERT_TRUE(kv["hlc"].is_string()) << r.out;
    const auto stamp = std::tuple{kv["hlc_physical_ms"].get<uint64_t>(), kv["hlc_logical"].get<uint64_t>(),
                                  kv["hlc_node_id"].get<uint64_t>()};
    const std::string text = kv["hlc"].get<std::string>();
    EXPECT_EQ(text, fmt::format("{}.{}@{}", std::get<0>(stamp), std::get<1>(stamp), std::get<2>(stamp)));
    std::printf("[ hlc      ] %s written through leader %llu: %s (wall clock %llu..%llu)\n", w.key.c_str(),
                static_cast<unsigned long long>(w.leader), text.c_str(), static_cast<unsigned long long>(w.before_ms),
                static_cast<unsigned long long>(w.after_ms));
    if (prev) {
      EXPECT_LT(*prev, stamp) << w.key << ": " << text << " is not above " << prev_text;
    }
    // Stamped by a member (the leader that proposed it); its physical time is that leader's
    // clock, or a stamp already in the log from another member's clock, during the write.
    EXPECT_TRUE(kOffsetMs.contains(std::get<2>(stamp))) << w.key << ": " << text;
    EXPECT_GE(std::get<0>(stamp) + static_cast<uint64_t>(kMaxOffsetMs), w.before_ms) << w.key << ": " << text;
    EXPECT_LE(std::get<0>(stamp), w.after_ms + static_cast<uint64_t>(kMaxOffsetMs)) << w.key << ": " << text;
    stamping_nodes.insert(std::get<2>(stamp));
    prev = stamp;
    prev_text = text;
  }
  EXPECT_GE(stamping_nodes.size(), 2u) << "the writes went through more than one leader";

  // The plain output is the value alone, as before stamps.
  auto plain = cli({"kv", "get", written.front().key});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "v\n");
  // Scans show the stamp too.
  auto scan = cli({"--json", "kv", "scan", "hlc/"});
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  EXPECT_NE(scan.out.find("hlc_physical_ms"), std::string::npos) << scan.out;
}

}  // namespace
}  // namespace aspen::testing
