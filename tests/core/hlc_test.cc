// Hybrid logical clocks (core/hlc.h): the paper's guarantees as properties over arbitrary
// interleavings of local events, sends and receives among a few nodes with arbitrary (even
// backwards-running) physical clocks.
#include "core/hlc.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <vector>

namespace aspen {
namespace {

TEST(Hlc, TimestampsOrderByPhysicalTimeThenCounterThenNode) {
  EXPECT_LT((HlcTimestamp{5, 9, 9}), (HlcTimestamp{6, 0, 1}));
  EXPECT_LT((HlcTimestamp{5, 1, 9}), (HlcTimestamp{5, 2, 1}));
  EXPECT_LT((HlcTimestamp{5, 1, 1}), (HlcTimestamp{5, 1, 2}));
  EXPECT_EQ((HlcTimestamp{5, 1, 2}).to_string(), "5.1@2");
}

TEST(Hlc, FollowsPhysicalTimeAndCountsWithinAMillisecond) {
  HybridLogicalClock clock(1);
  EXPECT_EQ(clock.now(100), (HlcTimestamp{100, 0, 1}));
  EXPECT_EQ(clock.now(100), (HlcTimestamp{100, 1, 1}));
  EXPECT_EQ(clock.now(99), (HlcTimestamp{100, 2, 1}));  // physical time went back: the HLC did not
  EXPECT_EQ(clock.now(101), (HlcTimestamp{101, 0, 1}));
}

TEST(Hlc, AReceiveMovesPastTheSendersTimestamp) {
  HybridLogicalClock a(1), b(2);
  const auto sent = a.now(1000);
  auto received = b.update(sent, 990);  // b's clock is 10 ms behind
  ASSERT_TRUE(received);
  EXPECT_GT(*received, sent);
  EXPECT_EQ(received->physical_ms, 1000u);
  EXPECT_GT(b.now(990), *received);
}

TEST(Hlc, ATimestampTooFarAheadIsRefusedAndLeavesTheClockAlone) {
  HybridLogicalClock b(2, 500);
  b.now(1000);
  const auto before = b.last();
  auto r = b.update(HlcTimestamp{1501, 0, 1}, 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(b.last(), before);
  EXPECT_TRUE(b.update(HlcTimestamp{1500, 7, 1}, 1000));
  EXPECT_EQ(b.last(), (HlcTimestamp{1500, 8, 2}));
}

// One step of a run: node `node` reads its physical clock (which moves by `advance`, perhaps
// backwards) and then has a local event, or receives the message another node sent earlier.
struct Step {
  uint8_t node = 0;
  int8_t advance = 0;
  bool is_receive = false;
  uint8_t message = 0;  // which earlier send to receive
};

}  // namespace
}  // namespace aspen

namespace rc {
template <>
struct Arbitrary<aspen::Step> {
  static Gen<aspen::Step> arbitrary() {
    return gen::build<aspen::Step>(gen::set(&aspen::Step::node, gen::inRange<uint8_t>(0, 4)),
                                   gen::set(&aspen::Step::advance, gen::inRange<int8_t>(-20, 60)),
                                   gen::set(&aspen::Step::is_receive), gen::set(&aspen::Step::message));
  }
};
}  // namespace rc

namespace aspen {
namespace {

constexpr uint64_t kMaxOffsetMs = 100;

RC_GTEST_PROP(Hlc, MonotonicPerNodeCausalAcrossMessagesAndCloseToPhysicalTime, (std::vector<Step> steps)) {
  constexpr size_t kNodes = 4;
  std::vector<HybridLogicalClock> clocks;
  std::vector<uint64_t> physical(kNodes);
  std::vector<uint64_t> max_physical(kNodes);  // the largest physical time each clock was given
  for (size_t i = 0; i < kNodes; ++i) {
    clocks.emplace_back(i + 1, kMaxOffsetMs);
    // Physical clocks start up to 60 ms apart.
    physical[i] = 1'000'000 + 20 * i;
  }
  std::vector<HlcTimestamp> last(kNodes);
  std::vector<HlcTimestamp> sent;
  for (const Step& s : steps) {
    const size_t n = s.node;
    physical[n] = static_cast<uint64_t>(static_cast<int64_t>(physical[n]) + s.advance);
    HlcTimestamp t;
    if (s.is_receive && !sent.empty()) {
      const HlcTimestamp& m = sent[s.message % sent.size()];
      auto r = clocks[n].update(m, physical[n]);
      if (!r) {
        // Refused only when the message is too far ahead of this node's clock.
        RC_ASSERT(m.physical_ms > physical[n] + kMaxOffsetMs);
        continue;
      }
      t = *r;
      RC_ASSERT(t > m);  // causal: the receive comes after the send
    } else {
      t = clocks[n].now(physical[n]);
      sent.push_back(t);
    }
    max_physical[n] = std::max(max_physical[n], physical[n]);
    RC_ASSERT(t.node_id == n + 1);
    RC_ASSERT(t > last[n]);  // monotonic per node
    last[n] = t;
    // Close to physical time: never behind the node's clock, never ahead of the largest
    // physical time any node has read by more than the offset bound.
    RC_ASSERT(t.physical_ms >= max_physical[n]);
    RC_ASSERT(t.physical_ms <= *std::max_element(max_physical.begin(), max_physical.end()) + kMaxOffsetMs);
  }
}

}  // namespace
}  // namespace aspen
