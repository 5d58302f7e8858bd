// Leadership transfer (thesis §3.10): the leader brings the target up to date, then tells it to
// start an election at once (MsgTimeoutNow).
#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

NetworkOptions guarded() {
  NetworkOptions opt;
  opt.pre_vote = true;
  opt.check_quorum = true;
  return opt;
}

bool has_type_to(const std::vector<pb::Message>& msgs, pb::MessageType type, NodeId to) {
  for (const auto& m : msgs) {
    if (m.type() == type && m.to() == to) return true;
  }
  return false;
}

// §3.10: an up-to-date target gets MsgTimeoutNow straight away and wins the next term. The
// transfer election skips PreVote and overrides the followers' leader lease (CheckQuorum).
TEST(RaftTransfer, ToUpToDateFollowerSendsTimeoutNowAndHandsOver) {
  TestNetwork net({1, 2, 3}, guarded());
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose("a").has_value());
  net.stabilize();
  const Term term = net.core(1).term();

  net.core(1).transfer_leadership(2);
  auto out = net.handle_ready(1);
  EXPECT_TRUE(has_type_to(out, pb::MSG_TIMEOUT_NOW, 2));
  net.stabilize();
  EXPECT_TRUE(net.core(2).is_leader());
  EXPECT_EQ(net.core(2).term(), term + 1);
  EXPECT_EQ(net.core(1).role(), Role::kFollower);
  EXPECT_EQ(net.core(1).leader(), 2u);
  EXPECT_EQ(net.core(3).leader(), 2u);
  EXPECT_TRUE(net.sent_of(pb::MSG_PRE_VOTE, 2).empty()) << "a transfer campaign skips pre-vote";
  // Nothing committed was lost on the way.
  ASSERT_TRUE(net.core(2).propose("b").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(3).applied_data, (std::vector<std::string>{"a", "b"}));
}

// The leader first replicates the missing entries to a lagging target and sends MsgTimeoutNow
// only once the target's log matches its own.
TEST(RaftTransfer, ToLaggingFollowerCatchesItUpFirst) {
  TestNetwork net({1, 2, 3}, guarded());
  net.elect(1);
  net.isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(net.core(1).propose("v" + std::to_string(i)).has_value());
  net.stabilize();
  net.heal();
  net.clear_log();

  net.core(1).transfer_leadership(3);
  auto out = net.handle_ready(1);
  EXPECT_FALSE(has_type_to(out, pb::MSG_TIMEOUT_NOW, 3)) << "node 3 is behind";
  EXPECT_TRUE(has_type_to(out, pb::MSG_APP, 3));
  EXPECT_EQ(net.core(1).status().lead_transferee, 3u);
  const Index last = net.core(1).log().last_index();
  net.stabilize();

  // MsgTimeoutNow went out only after node 3 acked the leader's last entry.
  size_t caught_up_at = SIZE_MAX;
  size_t timeout_now_at = SIZE_MAX;
  const auto& sent = net.sent();
  for (size_t i = 0; i < sent.size(); ++i) {
    const auto& m = sent[i];
    if (caught_up_at == SIZE_MAX && m.type() == pb::MSG_APP_RESP && m.from() == 3 && !m.reject() &&
        m.index() == last) {
      caught_up_at = i;
    }
    if (timeout_now_at == SIZE_MAX && m.type() == pb::MSG_TIMEOUT_NOW && m.to() == 3) timeout_now_at = i;
  }
  ASSERT_NE(timeout_now_at, SIZE_MAX);
  ASSERT_NE(caught_up_at, SIZE_MAX);
  EXPECT_LT(caught_up_at, timeout_now_at);
  EXPECT_TRUE(net.core(3).is_leader());
  EXPECT_EQ(net.node(3).applied_data.size(), 5u);
}

// While a transfer is in progress the leader refuses proposals (they would be lost or delayed
// by the change of leader); the caller retries on the new leader.
TEST(RaftTransfer, ProposalsDuringTransferAreDropped) {
  TestNetwork net({1, 2, 3}, guarded());
  net.elect(1);
  net.isolate(3);
  ASSERT_TRUE(net.core(1).propose("x").has_value());
  net.stabilize();
  net.core(1).transfer_leadership(3);
  net.stabilize();
  ASSERT_EQ(net.core(1).status().lead_transferee, 3u);
  auto s = net.core(1).propose("during");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
  EXPECT_NE(s.error().message().find("node 3"), std::string::npos) << s.error().message();
}

// A transfer that does not complete within an election timeout is abandoned and the leader
// accepts proposals again.
TEST(RaftTransfer, TransferIsAbortedAfterElectionTimeout) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.isolate(3);
  net.core(1).transfer_leadership(3);
  net.stabilize();
  ASSERT_EQ(net.core(1).status().lead_transferee, 3u);
  net.tick(9);
  EXPECT_EQ(net.core(1).status().lead_transferee, 3u);
  net.tick(1);
  EXPECT_EQ(net.core(1).status().lead_transferee, kNoNode);
  EXPECT_TRUE(net.core(1).is_leader());
  EXPECT_TRUE(net.core(1).propose("after").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(2).applied_data, std::vector<std::string>{"after"});
}

// A transfer request made on a follower is forwarded to the leader.
TEST(RaftTransfer, RequestOnFollowerIsForwardedToLeader) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.core(3).transfer_leadership(3);
  net.stabilize();
  EXPECT_EQ(net.sent_of(pb::MSG_TRANSFER_LEADER, 3, 1).size(), 1u);
  EXPECT_TRUE(net.core(3).is_leader());
}

TEST(RaftTransfer, TransferToSelfLearnerOrStrangerIsIgnored) {
  TestNetwork net({1, 2, 3}, NetworkOptions{}, {4});
  net.elect(1);
  net.clear_log();
  for (NodeId target : {1, 4, 9}) {
    net.core(1).transfer_leadership(target);
    EXPECT_EQ(net.core(1).status().lead_transferee, kNoNode) << target;
  }
  net.stabilize();
  EXPECT_TRUE(net.sent_of(pb::MSG_TIMEOUT_NOW).empty());
  EXPECT_TRUE(net.core(1).is_leader());
}

// A second request for another target replaces the first.
TEST(RaftTransfer, NewTargetReplacesPendingTransfer) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.isolate(3);
  ASSERT_TRUE(net.core(1).propose("x").has_value());
  net.stabilize();
  net.core(1).transfer_leadership(3);
  ASSERT_EQ(net.core(1).status().lead_transferee, 3u);
  net.core(1).transfer_leadership(2);
  net.stabilize();
  EXPECT_TRUE(net.core(2).is_leader());
}

// A learner told to time out (e.g. by a confused or stale leader) does not campaign.
TEST(RaftTransfer, LearnerIgnoresTimeoutNow) {
  TestNetwork net({1, 2, 3}, NetworkOptions{}, {4});
  net.elect(1);
  ASSERT_TRUE(net.core(4).step(make_msg(pb::MSG_TIMEOUT_NOW, 1, 4, net.core(1).term())).has_value());
  EXPECT_EQ(net.core(4).role(), Role::kFollower);
  net.stabilize();
  EXPECT_TRUE(net.core(1).is_leader());
  EXPECT_TRUE(net.sent_of(pb::MSG_VOTE, 4).empty());
}

// §3.10 gives the right to force an election to the leader alone: a TimeoutNow from a
// follower (or from a stranger, or the leader's in a stale term) is refused, not obeyed.
TEST(RaftTransfer, TimeoutNowFromAnyoneButTheLeaderIsRefused) {
  TestNetwork net({1, 2, 3}, NetworkOptions{});
  net.elect(1);
  const Term term = net.core(1).term();
  auto from_follower = net.core(2).step(make_msg(pb::MSG_TIMEOUT_NOW, 3, 2, term));
  ASSERT_FALSE(from_follower.has_value());
  EXPECT_EQ(from_follower.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(net.core(2).step(make_msg(pb::MSG_TIMEOUT_NOW, 9, 2, term)).has_value());
  EXPECT_FALSE(net.core(2).step(make_msg(pb::MSG_TIMEOUT_NOW, 1, 2, term + 5)).has_value());
  EXPECT_EQ(net.core(2).role(), Role::kFollower);
  EXPECT_EQ(net.core(2).term(), term);
  net.stabilize();
  EXPECT_TRUE(net.core(1).is_leader());
  // The leader's own request is still obeyed.
  ASSERT_TRUE(net.core(2).step(make_msg(pb::MSG_TIMEOUT_NOW, 1, 2, term)).has_value());
  net.stabilize();
  EXPECT_TRUE(net.core(2).is_leader());
}

// A proposal from a node outside the configuration never reaches the leader's log.
TEST(RaftTransfer, ProposalFromANonMemberIsRefused) {
  TestNetwork net({1, 2, 3}, NetworkOptions{});
  net.elect(1);
  const Index last = net.core(1).log().last_index();
  pb::Message prop;
  prop.set_type(pb::MSG_PROP);
  prop.set_from(9);
  prop.set_to(1);
  prop.add_entries()->set_data("injected");
  auto s = net.core(1).step(prop);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(net.core(1).log().last_index(), last);
}

}  // namespace
}  // namespace aspen::raft
