// The chaos harness's coordination checkers (lincheck/coord_checks.h): each accepts a correct
// history, with unknown outcomes, and names the violation in a wrong one.
#include "lincheck/coord_checks.h"

#include <gtest/gtest.h>

#include <sstream>

namespace aspen::lincheck {
namespace {

LockHolding holding(uint64_t process, uint64_t token, uint64_t ai, uint64_t ac, uint64_t ri,
                    Outcome release = Outcome::kOk) {
  return {process, token, ai, ac, ri, release};
}

CoordReport lock_report(const std::vector<LockHolding>& hs) {
  CoordReport r;
  check_lock(hs, r);
  return r;
}

TEST(CoordLockCheck, SuccessiveHoldersWithIncreasingTokensPass) {
  auto r = lock_report({holding(1, 10, 0, 5, 9), holding(2, 12, 1, 10, 15), holding(3, 20, 11, 16, 20)});
  EXPECT_EQ(r.violations, 0u) << (r.listed.empty() ? "" : r.listed[0]);
}

TEST(CoordLockCheck, OverlappingConfirmedHoldersAreAViolation) {
  auto r = lock_report({holding(1, 10, 0, 5, 20), holding(2, 12, 1, 10, 15)});
  ASSERT_EQ(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("two holders at once"), std::string::npos);
}

TEST(CoordLockCheck, AHolderThatLostItsLockIsNotCheckedForOverlap) {
  // Process 1's release found the lock gone (its TTL ran out): it did not hold it until 20.
  auto r = lock_report({holding(1, 10, 0, 5, 20, Outcome::kFail), holding(2, 12, 1, 10, 15)});
  EXPECT_EQ(r.violations, 0u);
}

TEST(CoordLockCheck, ATokenBelowAnEarlierGrantIsAViolation) {
  auto r = lock_report({holding(1, 10, 0, 5, 9), holding(2, 8, 6, 10, 15)});
  ASSERT_EQ(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("not above token 10"), std::string::npos);
}

TEST(CoordLockCheck, ATokenGrantedTwiceIsAViolation) {
  auto r = lock_report({holding(1, 10, 0, 5, 9, Outcome::kUnknown), holding(2, 10, 0, 10, 15, Outcome::kUnknown)});
  ASSERT_GE(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("granted twice"), std::string::npos);
}

CounterIncrement inc(uint64_t process, uint64_t invoke, uint64_t complete, Outcome o, int64_t value = 0) {
  return {process, invoke, complete, o, value};
}

TEST(CoordCounterCheck, ExactValuesWithAnUnknownIncrementPass) {
  CoordReport r;
  check_counter({inc(1, 0, 5, Outcome::kOk, 1), inc(2, 1, 0, Outcome::kUnknown), inc(3, 6, 9, Outcome::kOk, 3)}, 3,
                r);
  EXPECT_EQ(r.violations, 0u) << (r.listed.empty() ? "" : r.listed[0]);
  CoordReport without_the_unknown;
  check_counter({inc(1, 0, 5, Outcome::kOk, 1), inc(2, 1, 0, Outcome::kUnknown), inc(3, 6, 9, Outcome::kOk, 2)}, 2,
                without_the_unknown);
  EXPECT_EQ(without_the_unknown.violations, 0u);
}

TEST(CoordCounterCheck, AValueReturnedTwiceIsAViolation) {
  CoordReport r;
  check_counter({inc(1, 0, 5, Outcome::kOk, 1), inc(2, 1, 6, Outcome::kOk, 1)}, 2, r);
  ASSERT_GE(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("returned twice"), std::string::npos);
}

TEST(CoordCounterCheck, AFinalValueAboveEveryPossibleIncrementIsADoubleApply) {
  CoordReport r;
  check_counter({inc(1, 0, 5, Outcome::kOk, 1), inc(2, 6, 9, Outcome::kOk, 2)}, 3, r);
  ASSERT_EQ(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("applied twice"), std::string::npos);
}

TEST(CoordCounterCheck, AFinalValueBelowTheAcknowledgedIncrementsIsALoss) {
  CoordReport r;
  check_counter({inc(1, 0, 5, Outcome::kOk, 1), inc(2, 6, 9, Outcome::kOk, 2)}, 1, r);
  ASSERT_GE(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("lost"), std::string::npos);
}

TEST(CoordCounterCheck, AValueBelowOneReturnedEarlierIsAViolation) {
  CoordReport r;
  // Process 2 invoked after process 1 got 2, yet got 1.
  check_counter({inc(1, 0, 5, Outcome::kOk, 2), inc(2, 6, 9, Outcome::kOk, 1), inc(3, 0, 0, Outcome::kUnknown)}, 2, r);
  ASSERT_GE(r.violations, 1u);
}

TEST(CoordCounterCheck, NoFinalValueIsAViolation) {
  CoordReport r;
  check_counter({inc(1, 0, 5, Outcome::kOk, 1)}, std::nullopt, r);
  EXPECT_EQ(r.violations, 1u);
}

QueueOp q(QueueOp::Kind k, std::string payload, uint64_t seq, uint64_t invoke, uint64_t complete,
          Outcome o = Outcome::kOk) {
  return {k, 1, std::move(payload), seq, invoke, complete, o};
}
using K = QueueOp::Kind;

TEST(CoordQueueCheck, DeliveredAckedAndRedeliveredMessagesPass) {
  CoordReport r;
  check_queue({q(K::kEnqueue, "a", 1, 0, 1), q(K::kEnqueue, "b", 0, 0, 0, Outcome::kUnknown),
               q(K::kDeliver, "a", 1, 2, 3), q(K::kDeliver, "a", 1, 10, 11), q(K::kAck, "a", 1, 12, 13)},
              r);
  EXPECT_EQ(r.violations, 0u) << (r.listed.empty() ? "" : r.listed[0]);
}

TEST(CoordQueueCheck, AnAcknowledgedMessageNeverDeliveredIsLost) {
  CoordReport r;
  check_queue({q(K::kEnqueue, "a", 1, 0, 1)}, r);
  ASSERT_EQ(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("lost"), std::string::npos);
}

TEST(CoordQueueCheck, ADeliveryAfterASuccessfulAckIsAViolation) {
  CoordReport r;
  check_queue({q(K::kEnqueue, "a", 1, 0, 1), q(K::kDeliver, "a", 1, 2, 3), q(K::kAck, "a", 1, 4, 5),
               q(K::kDeliver, "a", 1, 6, 7)},
              r);
  ASSERT_EQ(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("after its ack"), std::string::npos);
}

TEST(CoordQueueCheck, ADeliveryOfAMessageNeverEnqueuedIsAViolation) {
  CoordReport r;
  check_queue({q(K::kDeliver, "x", 4, 2, 3)}, r);
  ASSERT_EQ(r.violations, 1u);
  EXPECT_NE(r.listed[0].find("never enqueued"), std::string::npos);
}

TEST(CoordHistoryFile, LinesRoundTripAndAreChecked) {
  std::stringstream s;
  s << "# a comment\n\n"
    << format_holding(holding(1, 10, 0, 5, 9)) << '\n'
    << format_increment(inc(2, 0, 5, Outcome::kOk, 1)) << '\n'
    << format_increment(inc(3, 1, 0, Outcome::kUnknown)) << '\n'
    << "final 1\n"
    << format_queue_op(q(K::kEnqueue, "a", 1, 0, 1)) << '\n'
    << format_queue_op(q(K::kEnqueue, "b", 0, 0, 0, Outcome::kUnknown)) << '\n'
    << format_queue_op(q(K::kDeliver, "a", 1, 2, 3)) << '\n'
    << format_queue_op(q(K::kAck, "a", 1, 4, 5)) << '\n';
  auto h = read_coord_history(s);
  ASSERT_TRUE(h.has_value()) << h.error();
  EXPECT_EQ(h->holdings.size(), 1u);
  EXPECT_EQ(h->increments.size(), 2u);
  EXPECT_EQ(h->counter_final, 1);
  ASSERT_EQ(h->queue.size(), 4u);
  EXPECT_EQ(h->queue[1].seq, 0u);
  EXPECT_EQ(format_queue_op(h->queue[3]), format_queue_op(q(K::kAck, "a", 1, 4, 5)));
  auto r = check_coord(*h);
  EXPECT_EQ(r.violations, 0u);
  EXPECT_EQ(r.summary.size(), 3u);
}

TEST(CoordHistoryFile, HostileLinesAreRefusedWithTheirNumber) {
  for (const std::string& bad : std::vector<std::string>{"lock 1 2 3", "lock 1 x 0 5 9 ok", "lock 1 2 9 5 9 ok", "inc 1 - 0 5 ok", "final", "final 1 2", "enq a b c d e f",
        "deliver 1 a 0 2 3", "ack 1 a 1 2 3 maybe", "what 1 2", std::string(kMaxCoordLineBytes + 1, 'x'),
        "inc 1 99999999999999999999999 0 5 ok"}) {
    std::stringstream s("# ok\n" + bad + "\n");
    auto h = read_coord_history(s);
    ASSERT_FALSE(h.has_value()) << bad;
    EXPECT_NE(h.error().find("line 2"), std::string::npos) << h.error();
  }
}

}  // namespace
}  // namespace aspen::lincheck
