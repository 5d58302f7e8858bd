// Clock offset estimation (node/clock_offset.h) and the peer monitor that runs it on Raft
// heartbeats (node/peer_monitor.h): the NTP arithmetic, the min-delay filter, the exchange
// between a leader and a follower whose clocks differ, the warning's rate limit, the
// reachability states, and what a hostile peer's timestamps can (not) do.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>
#include <limits>

#include "node/clock_offset.h"
#include "node/peer_monitor.h"

namespace aspen::node {
namespace {

constexpr int64_t kNowUs = 1'800'000'000'000'000;  // about 2027, in us since the epoch

// One heartbeat round: the asker's clock reads t1 at the send; the answerer's clock runs
// offset_us ahead; the trips take `out_us` and `back_us`; the answerer waits `pause_us`.
ClockExchange round(int64_t t1, int64_t offset_us, int64_t out_us, int64_t pause_us, int64_t back_us) {
  ClockExchange e;
  e.t1_us = t1;
  e.t2_us = t1 + out_us + offset_us;
  e.t3_us = e.t2_us + pause_us;
  e.t4_us = e.t3_us - offset_us + back_us;
  return e;
}

TEST(ClockOffset, SymmetricDelaysGiveTheOffsetExactly) {
  auto s = estimate_clock_offset(round(kNowUs, -700'000, 150, 40, 150));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->offset_us, -700'000);
  EXPECT_EQ(s->rtt_us, 300);  // the answerer's pause is not part of the round trip
}

TEST(ClockOffset, AsymmetricDelaysShiftTheEstimateByHalfTheirDifference) {
  auto s = estimate_clock_offset(round(kNowUs, 300'000, 900, 0, 100));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->offset_us, 300'000 + 400);
  EXPECT_EQ(s->rtt_us, 1000);
}

TEST(ClockOffset, ImpossibleExchangesAreRefused) {
  EXPECT_FALSE(estimate_clock_offset({0, kNowUs, kNowUs, kNowUs}).has_value()) << "a time not set";
  EXPECT_FALSE(estimate_clock_offset({-5, kNowUs, kNowUs, kNowUs}).has_value());
  EXPECT_FALSE(estimate_clock_offset({kNowUs, kMaxClockTimestampUs, kMaxClockTimestampUs, kNowUs}).has_value());
  EXPECT_FALSE(estimate_clock_offset({kNowUs, kNowUs, kNowUs, kNowUs - 1}).has_value()) << "t4 before t1";
  EXPECT_FALSE(estimate_clock_offset({kNowUs, kNowUs + 10, kNowUs + 9, kNowUs + 20}).has_value()) << "t3 before t2";
  // The answerer's pause longer than the whole round trip by the asker's clock.
  EXPECT_FALSE(estimate_clock_offset({kNowUs, kNowUs, kNowUs + 50, kNowUs + 10}).has_value());
  EXPECT_FALSE(estimate_clock_offset(round(kNowUs, 0, kMaxClockSampleRttUs, 0, 1)).has_value()) << "too slow";
  EXPECT_TRUE(estimate_clock_offset(round(kNowUs, 0, kMaxClockSampleRttUs / 2, 0, kMaxClockSampleRttUs / 2)));
}

RC_GTEST_PROP(ClockOffsetProperty, WithSymmetricDelaysTheEstimateIsTheInjectedOffset, ()) {
  const int64_t t1 = *rc::gen::inRange<int64_t>(1'000'000'000'000'000, 4'000'000'000'000'000);
  const int64_t offset = *rc::gen::inRange<int64_t>(-86'400'000'000, 86'400'000'000);  // a day either way
  const int64_t delay = *rc::gen::inRange<int64_t>(0, kMaxClockSampleRttUs / 2);
  const int64_t pause = *rc::gen::inRange<int64_t>(0, 5'000'000);
  auto s = estimate_clock_offset(round(t1, offset, delay, pause, delay));
  RC_ASSERT(s.has_value());
  RC_ASSERT(s->offset_us == offset);
  RC_ASSERT(s->rtt_us == 2 * delay);
}

RC_GTEST_PROP(ClockOffsetProperty, WithAsymmetricDelaysTheErrorIsAtMostHalfTheRoundTrip, ()) {
  const int64_t t1 = *rc::gen::inRange<int64_t>(1'000'000'000'000'000, 4'000'000'000'000'000);
  const int64_t offset = *rc::gen::inRange<int64_t>(-86'400'000'000, 86'400'000'000);
  const int64_t out = *rc::gen::inRange<int64_t>(0, kMaxClockSampleRttUs / 2);
  const int64_t back = *rc::gen::inRange<int64_t>(0, kMaxClockSampleRttUs / 2);
  const int64_t pause = *rc::gen::inRange<int64_t>(0, 5'000'000);
  auto s = estimate_clock_offset(round(t1, offset, out, pause, back));
  RC_ASSERT(s.has_value());
  RC_ASSERT(s->rtt_us == out + back);
  // rtt/2, rounded up: the halving rounds to the nearest microsecond.
  RC_ASSERT(2 * std::llabs(s->offset_us - offset) <= s->rtt_us + 1);
}

RC_GTEST_PROP(ClockOffsetProperty, AnyFourTimestampsGiveNothingOrABoundedSample,
              (int64_t t1, int64_t t2, int64_t t3, int64_t t4)) {
  auto s = estimate_clock_offset({t1, t2, t3, t4});
  if (!s) return;
  RC_ASSERT(s->rtt_us >= 0);
  RC_ASSERT(s->rtt_us <= kMaxClockSampleRttUs);
  RC_ASSERT(std::llabs(s->offset_us) < kMaxClockTimestampUs);
}

TEST(ClockFilter, TheLeastDelayedRecentSampleWins) {
  ClockFilter f;
  EXPECT_FALSE(f.best(0).has_value());
  f.add({500, 4000}, 1000);
  f.add({120, 300}, 1100);
  f.add({-90, 2000}, 1200);
  EXPECT_EQ(f.best(1200), (ClockSample{120, 300}));
  EXPECT_EQ(f.last_sample_ms(), 1200u);
  // Ties go to the newest.
  f.add({130, 300}, 1300);
  EXPECT_EQ(f.best(1300), (ClockSample{130, 300}));
}

TEST(ClockFilter, OldSamplesAreForgottenByCountAndByAge) {
  ClockFilter f;
  f.add({1, 10}, 0);  // the best, until pushed out
  for (size_t i = 1; i < kClockFilterSamples; ++i) f.add({2, 100}, i);
  EXPECT_EQ(f.best(kClockFilterSamples)->offset_us, 1);
  f.add({3, 200}, kClockFilterSamples);
  EXPECT_EQ(f.best(kClockFilterSamples)->offset_us, 2);
  EXPECT_FALSE(f.best(kClockFilterSamples + kClockSampleMaxAgeMs + 1).has_value());
}

// Two monitors exchanging heartbeats, with the follower's clock `offset_us` ahead of the
// leader's and `delay_us` each way.
struct Pair {
  PeerMonitor leader{500};
  PeerMonitor follower{500};
  int64_t offset_us = 0;
  int64_t leader_wall_us = kNowUs;
  uint64_t now_ms = 10'000;  // one monotonic clock for both: they are in one test
  std::vector<ClockNotice> leader_notices, follower_notices;

  Pair(int64_t offset) : offset_us(offset) {
    leader.on_leader(1, true, now_ms);
    follower.on_leader(1, false, now_ms);
  }
  void heartbeat_round(int64_t out_us = 200, int64_t back_us = 200) {
    pb::Message hb;
    hb.set_type(pb::MSG_HEARTBEAT);
    hb.set_from(1);
    hb.set_to(2);
    leader.stamp(hb, leader_wall_us, now_ms);
    leader_wall_us += out_us;
    if (auto n = follower.on_received(hb, leader_wall_us + offset_us, now_ms)) follower_notices.push_back(*n);
    leader_wall_us += 30;  // the follower's pause
    pb::Message resp;
    resp.set_type(pb::MSG_HEARTBEAT_RESP);
    resp.set_from(2);
    resp.set_to(1);
    follower.stamp(resp, leader_wall_us + offset_us, now_ms);
    leader_wall_us += back_us;
    if (auto n = leader.on_received(resp, leader_wall_us, now_ms)) leader_notices.push_back(*n);
    leader_wall_us += 100'000;
    now_ms += 100;
  }
};

TEST(PeerMonitor, TheLeaderMeasuresAFollowerAndTellsIt) {
  Pair p(-700'000);
  p.heartbeat_round();
  auto v = p.leader.peer_view(2, p.now_ms, 100, 1000);
  ASSERT_TRUE(v.clock.has_value());
  EXPECT_EQ(v.clock->offset_us, -700'000);
  EXPECT_EQ(v.clock->rtt_us, 400);
  EXPECT_EQ(v.reachability, Reachability::kReachable);
  EXPECT_FALSE(p.follower.own_offset_from_leader(p.now_ms).has_value()) << "not told yet";
  p.heartbeat_round();
  EXPECT_EQ(p.follower.own_offset_from_leader(p.now_ms), -700'000);
  EXPECT_EQ(p.leader.own_offset_from_leader(p.now_ms), 0);
  // The follower sees the leader's clock 700 ms ahead of its own.
  auto from_follower = p.follower.peer_view(1, p.now_ms, 100, 1000);
  ASSERT_TRUE(from_follower.clock.has_value());
  EXPECT_EQ(from_follower.clock->offset_us, 700'000);
}

TEST(PeerMonitor, TheLeastDelayedRoundDecides) {
  Pair p(300'000);
  p.heartbeat_round(5000, 100);  // asymmetric and slow: 2.45 ms off
  p.heartbeat_round(150, 150);
  p.heartbeat_round(100, 4000);
  EXPECT_EQ(p.leader.peer_view(2, p.now_ms, 100, 1000).clock->offset_us, 300'000);
}

TEST(PeerMonitor, AnOffsetPastTheThresholdIsWarnedOncePerIntervalOnBothSides) {
  Pair p(-700'000);
  for (int i = 0; i < 20; ++i) p.heartbeat_round();
  ASSERT_EQ(p.leader_notices.size(), 1u);
  EXPECT_EQ(p.leader_notices[0].kind, ClockNotice::Kind::kPastThreshold);
  EXPECT_EQ(p.leader_notices[0].peer, 2u);
  EXPECT_FALSE(p.leader_notices[0].is_own_offset);
  EXPECT_EQ(p.leader_notices[0].offset_us, -700'000);
  ASSERT_EQ(p.follower_notices.size(), 1u);
  EXPECT_TRUE(p.follower_notices[0].is_own_offset);
  EXPECT_EQ(p.follower_notices[0].peer, 1u);
  EXPECT_EQ(p.leader.warnings(), 1u);
  // A reminder after the interval, not before.
  p.now_ms += kClockNoticeIntervalMs;
  p.heartbeat_round();
  EXPECT_EQ(p.leader_notices.size(), 2u);
  const std::string line = describe(p.leader_notices[0], 1, 500);
  EXPECT_NE(line.find("node 2's clock is 700.0 ms behind this node's"), std::string::npos) << line;
  EXPECT_NE(line.find("--clock-offset-warn-ms"), std::string::npos) << line;
  const std::string own = describe(p.follower_notices[0], 2, 500);
  EXPECT_NE(own.find("this node's clock is 700.0 ms behind the leader's (node 1)"), std::string::npos) << own;
}

TEST(PeerMonitor, AClockThatComesBackIsSaidOnceAndAFlappingOneDoesNotFlood) {
  Pair p(-700'000);
  for (int i = 0; i < 3; ++i) p.heartbeat_round();
  ASSERT_EQ(p.leader_notices.size(), 1u);
  // The clock is fixed; the old samples age out of the filter one by one, each round.
  p.offset_us = -100'000;
  for (size_t i = 0; i < kClockFilterSamples + 2; ++i) p.heartbeat_round();
  EXPECT_EQ(p.leader_notices.size(), 1u) << "within the interval: held back";
  p.now_ms += kClockNoticeIntervalMs;
  p.heartbeat_round();
  ASSERT_EQ(p.leader_notices.size(), 2u);
  EXPECT_EQ(p.leader_notices[1].kind, ClockNotice::Kind::kBackWithin);
  // Flapping around the threshold: at most one line per interval.
  for (int i = 0; i < 200; ++i) {
    p.offset_us = i % 2 == 0 ? -900'000 : 0;
    for (size_t j = 0; j < kClockFilterSamples; ++j) p.heartbeat_round();
  }
  const uint64_t elapsed_ms = 200 * kClockFilterSamples * 100;
  EXPECT_LE(p.leader_notices.size(), 2 + elapsed_ms / kClockNoticeIntervalMs + 1);
}

TEST(PeerMonitor, NoWarningWhenTheThresholdIsZero) {
  PeerMonitor m(0);
  pb::Message hb;
  hb.set_type(pb::MSG_HEARTBEAT);
  hb.set_from(1);
  hb.set_has_clock_offset(true);
  hb.set_clock_offset_us(-3'600'000'000);
  m.on_leader(1, false, 1);
  EXPECT_FALSE(m.on_received(hb, kNowUs, 1).has_value());
  EXPECT_EQ(m.own_offset_from_leader(1), -3'600'000'000);
}

TEST(PeerMonitor, AHostilePeersTimestampsAreIgnored) {
  PeerMonitor m(500);
  m.on_leader(1, true, 1);
  pb::Message resp;
  resp.set_type(pb::MSG_HEARTBEAT_RESP);
  resp.set_from(2);
  for (int64_t bad : {std::numeric_limits<int64_t>::min(), int64_t{-1}, std::numeric_limits<int64_t>::max()}) {
    resp.set_clock_echo_us(bad);
    resp.set_clock_received_us(bad);
    resp.set_clock_sent_us(bad);
    EXPECT_FALSE(m.on_received(resp, kNowUs, 2).has_value());
  }
  // An echo of a heartbeat never sent: within plausible range but in the future.
  resp.set_clock_echo_us(kNowUs + 1'000'000);
  resp.set_clock_received_us(kNowUs);
  resp.set_clock_sent_us(kNowUs);
  EXPECT_FALSE(m.on_received(resp, kNowUs, 3).has_value());
  EXPECT_FALSE(m.peer_view(2, 3, 100, 1000).clock.has_value());
  // A leader's word that no clock could produce.
  PeerMonitor f(500);
  f.on_leader(1, false, 1);
  pb::Message hb;
  hb.set_type(pb::MSG_HEARTBEAT);
  hb.set_from(1);
  hb.set_has_clock_offset(true);
  hb.set_clock_offset_us(std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(f.on_received(hb, kNowUs, 2).has_value());
  EXPECT_FALSE(f.own_offset_from_leader(2).has_value());
  // An answer with no heartbeat to echo carries no clock.
  pb::Message answer;
  answer.set_type(pb::MSG_HEARTBEAT_RESP);
  answer.set_to(7);
  f.stamp(answer, kNowUs, 3);
  EXPECT_EQ(answer.clock_sent_us(), 0);
  EXPECT_EQ(answer.clock_echo_us(), 0);
}

RC_GTEST_PROP(PeerMonitorProperty, ArbitraryMessagesNeverBreakIt, ()) {
  PeerMonitor m(*rc::gen::inRange<uint32_t>(0, 10'000));
  m.on_leader(*rc::gen::inRange<uint64_t>(0, 4), *rc::gen::arbitrary<bool>(), 0);
  const auto count = *rc::gen::inRange(0, 60);
  uint64_t now_ms = 0;
  for (int i = 0; i < count; ++i) {
    pb::Message msg;
    msg.set_type(*rc::gen::element(pb::MSG_HEARTBEAT, pb::MSG_HEARTBEAT_RESP, pb::MSG_APP));
    msg.set_from(*rc::gen::inRange<uint64_t>(0, 4));
    msg.set_to(*rc::gen::inRange<uint64_t>(0, 4));
    msg.set_clock_sent_us(*rc::gen::arbitrary<int64_t>());
    msg.set_clock_echo_us(*rc::gen::arbitrary<int64_t>());
    msg.set_clock_received_us(*rc::gen::arbitrary<int64_t>());
    msg.set_clock_offset_us(*rc::gen::arbitrary<int64_t>());
    msg.set_has_clock_offset(*rc::gen::arbitrary<bool>());
    now_ms += *rc::gen::inRange<uint64_t>(0, 100'000);
    if (*rc::gen::arbitrary<bool>()) {
      if (auto n = m.on_received(msg, *rc::gen::arbitrary<int64_t>(), now_ms)) (void)describe(*n, 9, 500);
    } else {
      m.stamp(msg, *rc::gen::arbitrary<int64_t>(), now_ms);
    }
    for (NodeId id = 0; id < 4; ++id) {
      auto v = m.peer_view(id, now_ms, 100, 1000);
      if (v.clock) RC_ASSERT(std::llabs(v.clock->offset_us) < kMaxClockTimestampUs);
    }
  }
}

TEST(PeerMonitor, RecordsAreBounded) {
  PeerMonitor m(500);
  pb::Message msg;
  msg.set_type(pb::MSG_APP);
  for (NodeId id = 1; id <= kMaxMonitoredPeers + 10; ++id) {
    msg.set_from(id);
    m.on_received(msg, kNowUs, 1);
  }
  m.on_leader(1, true, 0);
  EXPECT_EQ(m.peer_view(kMaxMonitoredPeers, 1, 100, 1000).reachability, Reachability::kReachable);
  EXPECT_FALSE(m.peer_view(kMaxMonitoredPeers + 1, 1, 100, 1000).last_heard_ago_ms.has_value());
}

TEST(Reachability, ByTheSilenceAndTheTransportsReports) {
  ReachabilityInput in;
  in.expects_messages = true;
  in.expected_since_ms = 0;
  in.heartbeat_ms = 100;
  in.election_timeout_ms = 1000;
  in.now_ms = 10'000;
  in.last_heard_ms = 9'800;
  EXPECT_EQ(classify_reachability(in), Reachability::kReachable);
  in.last_heard_ms = 9'799;
  EXPECT_EQ(classify_reachability(in), Reachability::kSuspect);
  in.last_heard_ms = 9'000;
  EXPECT_EQ(classify_reachability(in), Reachability::kSuspect);
  in.last_heard_ms = 8'999;
  EXPECT_EQ(classify_reachability(in), Reachability::kUnreachable);
  // The transport's report counts until the peer speaks again.
  in.last_heard_ms = 9'950;
  in.last_unreachable_ms = 9'960;
  EXPECT_EQ(classify_reachability(in), Reachability::kUnreachable);
  in.last_heard_ms = 9'970;
  EXPECT_EQ(classify_reachability(in), Reachability::kReachable);
  // Never heard: silence counts from when messages were first expected.
  in.last_heard_ms.reset();
  in.last_unreachable_ms.reset();
  in.expected_since_ms = 9'900;
  EXPECT_EQ(classify_reachability(in), Reachability::kReachable);
  in.expected_since_ms = 8'000;
  EXPECT_EQ(classify_reachability(in), Reachability::kUnreachable);
  // A report from before this node expected anything (an old term) does not count.
  in.expected_since_ms = 9'900;
  in.last_unreachable_ms = 9'000;
  EXPECT_EQ(classify_reachability(in), Reachability::kReachable);
  in.expects_messages = false;
  EXPECT_EQ(classify_reachability(in), Reachability::kUnknown);
}

TEST(PeerMonitor, TheMetricsPageShowsEachPeersStateAndClock) {
  Pair p(-700'000);
  p.heartbeat_round();
  p.heartbeat_round();
  const std::string leader_page = p.leader.prometheus_samples(1, {2, 3}, p.now_ms, 100, 1000);
  EXPECT_NE(leader_page.find("aspen_clock_offset_seconds{node_id=\"1\",peer=\"2\"} -0.7\n"), std::string::npos)
      << leader_page;
  EXPECT_NE(leader_page.find("aspen_clock_rtt_seconds{node_id=\"1\",peer=\"2\"} 0.0004\n"), std::string::npos);
  EXPECT_NE(leader_page.find("aspen_peer_reachability{node_id=\"1\",peer=\"2\",state=\"reachable\"} 1\n"),
            std::string::npos);
  // Node 3 never spoke: the leader has waited no longer than the election timeout yet.
  EXPECT_NE(leader_page.find("aspen_peer_reachability{node_id=\"1\",peer=\"3\",state=\"reachable\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(leader_page.find("peer=\"3\"} "), std::string::npos) << "no clock or last-heard sample for node 3";
  EXPECT_NE(leader_page.find("aspen_clock_offset_from_leader_seconds{node_id=\"1\"} 0\n"), std::string::npos);
  EXPECT_NE(leader_page.find("aspen_clock_offset_warnings_total{node_id=\"1\"} 1\n"), std::string::npos);
  const std::string follower_page = p.follower.prometheus_samples(2, {1, 3}, p.now_ms, 100, 1000);
  EXPECT_NE(follower_page.find("aspen_clock_offset_from_leader_seconds{node_id=\"2\"} -0.7\n"), std::string::npos)
      << follower_page;
  EXPECT_NE(follower_page.find("aspen_clock_offset_seconds{node_id=\"2\",peer=\"1\"} 0.7\n"), std::string::npos);
  EXPECT_NE(follower_page.find("aspen_peer_reachability{node_id=\"2\",peer=\"3\",state=\"unknown\"} 1\n"),
            std::string::npos);
}

TEST(PeerMonitor, MonitoredPeersAreEveryMemberButSelfOnce) {
  pb::ConfState cs;
  for (NodeId id : {3, 1, 2}) cs.add_voters(id);
  cs.add_learners(5);
  cs.add_voters_outgoing(2);
  cs.add_voters_outgoing(4);
  EXPECT_EQ(monitored_peers(cs, 1), (std::vector<NodeId>{2, 3, 4, 5}));
}

TEST(PeerMonitor, AFollowerJudgesOnlyItsLeader) {
  PeerMonitor m(500);
  m.on_leader(1, false, 1000);
  pb::Message msg;
  msg.set_type(pb::MSG_APP);
  msg.set_from(1);
  m.on_received(msg, kNowUs, 1050);
  EXPECT_EQ(m.peer_view(1, 1100, 100, 1000).reachability, Reachability::kReachable);
  EXPECT_EQ(m.peer_view(1, 1500, 100, 1000).reachability, Reachability::kSuspect);
  EXPECT_EQ(m.peer_view(3, 1100, 100, 1000).reachability, Reachability::kUnknown);
  m.on_unreachable(1, 1510);
  EXPECT_EQ(m.peer_view(1, 1520, 100, 1000).reachability, Reachability::kUnreachable);
  EXPECT_EQ(m.peer_view(1, 1520, 100, 1000).last_heard_ago_ms, 470u);
}

}  // namespace
}  // namespace aspen::node
