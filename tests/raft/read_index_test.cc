// ReadIndex (thesis §6.4): linearizable reads without writing to the log.
#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

// Heartbeats that carry a read-confirmation round (plain heartbeats carry no context).
std::vector<pb::Message> read_rounds(const std::vector<pb::Message>& msgs) {
  std::vector<pb::Message> out;
  for (const auto& m : msgs) {
    if (!m.context().empty()) out.push_back(m);
  }
  return out;
}

// §6.4: the leader records its commit index, confirms with a heartbeat round that it is still
// leader (a majority acks), then answers with that index.
TEST(RaftReadIndex, LeaderAnswersAfterHeartbeatQuorumWithCommitIndex) {
  TestNetwork net({1, 2, 3, 4, 5});
  net.elect(1);
  for (const char* v : {"a", "b"}) ASSERT_TRUE(net.core(1).propose(v).has_value());
  net.stabilize();
  const Index commit = net.core(1).log().committed();
  ASSERT_EQ(commit, 4u);

  // Only node 2 answers: {1, 2} is not a majority of five.
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_HEARTBEAT_RESP && m.from() != 2; };
  ASSERT_TRUE(net.core(1).read_index("r1").has_value());
  net.stabilize();
  EXPECT_EQ(read_rounds(net.sent_of(pb::MSG_HEARTBEAT, 1)).size(), 4u);
  EXPECT_TRUE(net.node(1).read_states.empty());

  // With node 3 as well, a later round confirms it, and a read that arrived meanwhile too.
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_HEARTBEAT_RESP && m.from() > 3; };
  ASSERT_TRUE(net.core(1).read_index("r2").has_value());
  net.stabilize();
  ASSERT_EQ(net.node(1).read_states.size(), 2u) << "confirming r2's round confirms the older r1 too";
  EXPECT_EQ(net.node(1).read_states[0].context, "r1");
  EXPECT_EQ(net.node(1).read_states[1].context, "r2");
  for (const auto& rs : net.node(1).read_states) {
    EXPECT_EQ(rs.index, commit);
    EXPECT_FALSE(rs.is_refused);
  }
}

// A read whose round missed a quorum is confirmed by the next periodic heartbeat: while reads
// wait, every heartbeat is a round.
TEST(RaftReadIndex, ReadThatMissedItsRoundIsConfirmedByTheNextHeartbeat) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_HEARTBEAT_RESP; };
  ASSERT_TRUE(net.core(1).read_index("r").has_value());
  net.stabilize();
  EXPECT_TRUE(net.node(1).read_states.empty());
  net.drop_if = nullptr;
  net.tick(1, {1});
  ASSERT_EQ(net.node(1).read_states.size(), 1u);
  EXPECT_EQ(net.node(1).read_states[0].context, "r");
  EXPECT_FALSE(net.node(1).read_states[0].is_refused);
}

// Acks confirm rounds, never contexts: two requests with the same context (a requester that
// restarted and counts from 1 again) each get the read point of their own arrival. Matching
// acks by context once answered only the older one (simulator seed 914173).
TEST(RaftReadIndex, RequestsWithTheSameContextEachGetTheirOwnReadPoint) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  // Node 2's first request waits: no heartbeat acks reach the leader.
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_HEARTBEAT_RESP; };
  ASSERT_TRUE(net.core(2).read_index("dup").has_value());
  net.stabilize();
  const Index old_point = net.core(1).log().committed();
  ASSERT_TRUE(net.node(2).read_states.empty());
  // A write commits (appends still flow), then the same context arrives again.
  ASSERT_TRUE(net.core(1).propose("w").has_value());
  net.stabilize();
  const Index new_point = net.core(1).log().committed();
  ASSERT_GT(new_point, old_point);
  net.drop_if = nullptr;
  ASSERT_TRUE(net.core(2).read_index("dup").has_value());
  net.stabilize();
  ASSERT_EQ(net.node(2).read_states.size(), 2u);
  EXPECT_EQ(net.node(2).read_states[0].index, old_point);
  EXPECT_EQ(net.node(2).read_states[1].index, new_point) << "the new request is answered at its own read point";
}

// A read that no round confirms within an election timeout is refused, so its requester
// stops waiting and no request outlives it for long.
TEST(RaftReadIndex, UnconfirmedReadIsRefusedAfterAnElectionTimeout) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_HEARTBEAT_RESP; };
  ASSERT_TRUE(net.core(2).read_index("f").has_value());
  net.stabilize();
  net.tick(9, {1});
  EXPECT_TRUE(net.node(2).read_states.empty()) << "still waiting within the election timeout";
  net.tick(1, {1});
  ASSERT_EQ(net.node(2).read_states.size(), 1u);
  EXPECT_TRUE(net.node(2).read_states[0].is_refused);
  EXPECT_EQ(net.node(2).read_states[0].context, "f");
  EXPECT_TRUE(net.core(1).is_leader()) << "check_quorum is off here: the leader stays, the read does not";
}

TEST(RaftReadIndex, FollowerReadIsForwardedAndAnswered) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose("a").has_value());
  net.stabilize();
  net.clear_log();
  ASSERT_TRUE(net.core(2).read_index("f").has_value());
  net.stabilize();
  EXPECT_EQ(net.sent_of(pb::MSG_READ_INDEX, 2, 1).size(), 1u);
  auto resp = net.sent_of(pb::MSG_READ_INDEX_RESP, 1, 2);
  ASSERT_EQ(resp.size(), 1u);
  ASSERT_EQ(net.node(2).read_states.size(), 1u);
  EXPECT_EQ(net.node(2).read_states[0].context, "f");
  EXPECT_EQ(net.node(2).read_states[0].index, net.core(1).log().committed());
  EXPECT_TRUE(net.node(1).read_states.empty()) << "the answer goes to the asking node only";
}

// §6.4 step 1: a new leader does not know the latest commit index until it has committed an
// entry of its own term, so it holds reads until then.
TEST(RaftReadIndex, NewLeaderHoldsReadsUntilItCommitsInItsTerm) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose("a").has_value());
  net.stabilize();

  // Node 2 wins term 3, but the acks of its empty entry are lost.
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_APP_RESP && m.to() == 2; };
  net.elect(2);
  ASSERT_TRUE(net.core(2).is_leader());
  const Index own_entry = net.core(2).log().last_index();
  ASSERT_LT(net.core(2).log().committed(), own_entry);

  net.clear_log();
  ASSERT_TRUE(net.core(2).read_index("held").has_value());
  net.stabilize();
  EXPECT_TRUE(net.node(2).read_states.empty());
  EXPECT_TRUE(read_rounds(net.sent_of(pb::MSG_HEARTBEAT, 2)).empty())
      << "no confirmation round before the leader's first commit";

  net.drop_if = nullptr;
  net.tick(1);
  ASSERT_EQ(net.node(2).read_states.size(), 1u);
  EXPECT_EQ(net.node(2).read_states[0].context, "held");
  EXPECT_EQ(net.node(2).read_states[0].index, own_entry);
  EXPECT_EQ(net.core(2).log().term_or_zero(own_entry), net.core(2).term());
}

// A leader cut off from the majority (which may have elected a new leader and committed new
// writes) must never answer a read: its answer could be stale.
TEST(RaftReadIndex, PartitionedLeaderCannotCompleteRead) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.isolate(1);
  ASSERT_TRUE(net.core(1).read_index("stale?").has_value());
  net.stabilize();
  net.elect(2);
  ASSERT_TRUE(net.core(2).propose("new").has_value());
  net.stabilize();
  net.tick(5, {1});
  EXPECT_TRUE(net.core(1).is_leader()) << "it does not know it was deposed";
  EXPECT_TRUE(net.node(1).read_states.empty());

  net.heal();
  net.tick(2);
  EXPECT_EQ(net.core(1).leader(), 2u);
  // Stepping down, it refuses the old read: never answered with a read point.
  ASSERT_EQ(net.node(1).read_states.size(), 1u);
  EXPECT_TRUE(net.node(1).read_states[0].is_refused);
  EXPECT_EQ(net.node(1).read_states[0].context, "stale?");

  // Asked again, the read goes to the real leader and covers the new write.
  ASSERT_TRUE(net.core(1).read_index("fresh").has_value());
  net.stabilize();
  ASSERT_EQ(net.node(1).read_states.size(), 2u);
  EXPECT_EQ(net.node(1).read_states[1].context, "fresh");
  EXPECT_FALSE(net.node(1).read_states[1].is_refused);
  EXPECT_GE(net.node(1).read_states[1].index, net.core(2).log().committed());
}

TEST(RaftReadIndex, SingleNodeAnswersAtOnce) {
  TestNetwork net({1});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose("a").has_value());
  net.stabilize();
  ASSERT_TRUE(net.core(1).read_index("solo").has_value());
  net.stabilize();
  ASSERT_EQ(net.node(1).read_states.size(), 1u);
  EXPECT_EQ(net.node(1).read_states[0].index, 3u);
}

// The context is how an answer finds its request; an empty one is refused, locally and from
// the network.
TEST(RaftReadIndex, EmptyContextIsRejected) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  auto s = net.core(1).read_index("");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  s = net.core(1).step(make_msg(pb::MSG_READ_INDEX, 2, 1, 0));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
}

// Reads arriving between two Readys share one confirmation round.
TEST(RaftReadIndex, ReadsBeforeReadyShareOneHeartbeatRound) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.clear_log();
  for (const char* ctx : {"a", "b", "c"}) ASSERT_TRUE(net.core(1).read_index(ctx).has_value());
  net.stabilize();
  EXPECT_EQ(net.sent_of(pb::MSG_HEARTBEAT, 1).size(), 2u) << "one heartbeat per follower";
  ASSERT_EQ(net.node(1).read_states.size(), 3u);
  for (const auto& rs : net.node(1).read_states) EXPECT_EQ(rs.index, net.core(1).log().committed());
}

TEST(RaftReadIndex, ReadWithoutLeaderIsDropped) {
  TestNetwork net({1, 2, 3});
  auto s = net.core(1).read_index("x");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
  net.core(1).campaign();
  s = net.core(1).read_index("x");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
}

// A leader that steps down refuses the reads it has not confirmed.
TEST(RaftReadIndex, PendingReadsAreRefusedWhenLeaderStepsDown) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_HEARTBEAT_RESP; };
  ASSERT_TRUE(net.core(1).read_index("r").has_value());
  net.stabilize();
  ASSERT_TRUE(net.core(1).step(make_msg(pb::MSG_HEARTBEAT, 2, 1, 9)).has_value());
  ASSERT_FALSE(net.core(1).is_leader());
  net.handle_ready(1);
  ASSERT_EQ(net.node(1).read_states.size(), 1u);
  EXPECT_TRUE(net.node(1).read_states[0].is_refused);
  // A late ack has nothing left to confirm.
  pb::Message ack = make_msg(pb::MSG_HEARTBEAT_RESP, 3, 1, 9);
  ack.set_context(std::string(8, '\1'));
  ASSERT_TRUE(net.core(1).step(ack).has_value());
  net.handle_ready(1);
  EXPECT_EQ(net.node(1).read_states.size(), 1u);
}

// A peer's ack names a round; one for a round the leader has not sent (forged, or corrupt)
// confirms nothing, even for reads that arrive before that round goes out.
TEST(RaftReadIndex, AckForARoundNotYetSentConfirmsNothing) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_HEARTBEAT_RESP; };
  ASSERT_TRUE(net.core(1).read_index("r").has_value());
  net.stabilize();  // round 1 goes out; its acks are lost
  for (NodeId from : {2, 3}) {
    pb::Message forged = make_msg(pb::MSG_HEARTBEAT_RESP, from, 1, net.core(1).term());
    forged.set_context(std::string("\0\0\0\0\0\0\0\x09", 8));  // round 9
    ASSERT_TRUE(net.core(1).step(forged).has_value());
  }
  net.handle_ready(1);
  EXPECT_TRUE(net.node(1).read_states.empty());
}

}  // namespace
}  // namespace aspen::raft
