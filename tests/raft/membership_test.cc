// Membership changes (thesis §4): learners, single-server changes, the leader removing itself,
// and joint consensus (§4.3), end to end and at the ConfChanger level.
#include <gtest/gtest.h>

#include "raft/confchange.h"
#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

constexpr auto kAddVoter = pb::CONF_CHANGE_ADD_VOTER;
constexpr auto kAddLearner = pb::CONF_CHANGE_ADD_LEARNER;
constexpr auto kRemove = pb::CONF_CHANGE_REMOVE_NODE;

VoterSet voters_of(const pb::ConfState& cs) { return VoterSet(cs.voters().begin(), cs.voters().end()); }
VoterSet outgoing_of(const pb::ConfState& cs) {
  return VoterSet(cs.voters_outgoing().begin(), cs.voters_outgoing().end());
}

// A three-voter cluster with node 4 added as a learner (from an empty disk).
struct WithLearner {
  TestNetwork net{std::vector<NodeId>{1, 2, 3}};
  WithLearner() {
    net.elect(1);
    net.add_empty_node(4);
    EXPECT_TRUE(net.core(1).propose_conf_change(conf_change({single(kAddLearner, 4)})).has_value());
    net.stabilize();
  }
};

// Thesis §4.2.1: a learner receives the log but is not counted for commitment or elections.
TEST(RaftMembership, LearnerReplicatesButNeitherCountsNorVotes) {
  WithLearner w;
  TestNetwork& net = w.net;
  EXPECT_EQ(net.core(1).tracker().config.learners, (std::set<NodeId>{4}));
  EXPECT_TRUE(net.core(4).tracker().config.learners.contains(4)) << "node 4 knows it is a learner";
  EXPECT_EQ(ids_of(net.node(4).storage->initial_state().conf_state.learners()), (std::set<NodeId>{4}));
  EXPECT_EQ(net.node(4).snapshots_installed, 1u) << "it starts from the leader's snapshot";

  ASSERT_TRUE(net.core(1).propose("x").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(4).applied_data, std::vector<std::string>{"x"});

  // Node 4's ack alone does not make a majority of {1, 2, 3}.
  net.isolate(2);
  net.isolate(3);
  Index commit = net.core(1).log().committed();
  ASSERT_TRUE(net.core(1).propose("y").has_value());
  net.stabilize();
  EXPECT_EQ(net.core(1).tracker().progress.at(4).match, net.core(1).log().last_index());
  EXPECT_EQ(net.core(1).log().committed(), commit);

  // A new election does not ask the learner.
  net.heal();
  net.isolate(1);
  net.clear_log();
  net.elect(2);
  EXPECT_TRUE(net.core(2).is_leader());
  EXPECT_TRUE(net.sent_of(pb::MSG_VOTE, 0, 4).empty());
  EXPECT_TRUE(net.sent_of(pb::MSG_PRE_VOTE, 0, 4).empty());
}

TEST(RaftMembership, PromotedLearnerBecomesAVoter) {
  WithLearner w;
  TestNetwork& net = w.net;
  ASSERT_TRUE(net.core(1).propose_conf_change(conf_change({single(kAddVoter, 4)})).has_value());
  net.stabilize();
  EXPECT_EQ(net.core(1).tracker().config.voters.incoming, (VoterSet{1, 2, 3, 4}));
  EXPECT_TRUE(net.core(1).tracker().config.learners.empty());
  EXPECT_FALSE(net.core(1).tracker().progress.at(4).is_learner);
  // It can now win an election (3 of 4 votes).
  net.isolate(1);
  net.elect(4);
  EXPECT_TRUE(net.core(4).is_leader());
}

TEST(RaftMembership, RemovedFollowerNoLongerCounts) {
  TestNetwork net({1, 2, 3, 4});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose_conf_change(conf_change({single(kRemove, 4)})).has_value());
  net.stabilize();
  EXPECT_EQ(net.core(1).tracker().config.voters.incoming, (VoterSet{1, 2, 3}));
  EXPECT_FALSE(net.core(1).tracker().progress.contains(4));

  // Two of the remaining three are a majority; two of the old four were not.
  net.isolate(3);
  net.isolate(4);
  net.clear_log();
  ASSERT_TRUE(net.core(1).propose("x").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(1).applied_data, std::vector<std::string>{"x"});
  EXPECT_TRUE(net.sent_of(pb::MSG_APP, 1, 4).empty()) << "the leader forgot node 4";
}

// Thesis §4.2.2: a leader that removes itself keeps managing the cluster (without counting
// itself) until the change is committed and known, then steps down; the others elect a leader.
// A candidate that applies the change removing it (committed before its campaign, applied
// during it) gives up: the votes it gathers could still be a majority of the new voters, and
// a leader outside the configuration has no progress of its own (simulator seed 1021088).
TEST(RaftMembership, CandidateRemovedMidCampaignDoesNotBecomeLeader) {
  TestNetwork net({1, 2, 3});
  net.core(1).campaign();
  ASSERT_EQ(net.core(1).status().role, Role::kCandidate);
  net.core(1).apply_conf_change(conf_change({single(kRemove, 1)}));
  EXPECT_EQ(net.core(1).status().role, Role::kFollower);
  net.stabilize();  // the vote requests already sent are granted by nodes 2 and 3
  EXPECT_FALSE(net.core(1).is_leader());
}

TEST(RaftMembership, LeaderRemovingItselfStepsDownAfterElectionTimeout) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose_conf_change(conf_change({single(kRemove, 1)})).has_value());
  net.stabilize();
  EXPECT_EQ(net.core(1).tracker().config.voters.incoming, (VoterSet{2, 3}));
  for (NodeId id : {2, 3}) {
    ASSERT_FALSE(net.node(id).conf_states.empty());
    EXPECT_EQ(voters_of(net.node(id).conf_states.back()), (VoterSet{2, 3})) << "node " << id;
  }
  EXPECT_TRUE(net.core(1).is_leader()) << "still leading until the election timeout";
  auto s = net.core(1).propose("late");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);

  net.tick(9);
  EXPECT_TRUE(net.core(1).is_leader());
  net.tick(1);
  EXPECT_FALSE(net.core(1).is_leader());
  EXPECT_FALSE(net.sent_of(pb::MSG_TIMEOUT_NOW, 1).empty()) << "hands over to an up-to-date voter";
  NodeId l = net.leader();
  ASSERT_TRUE(l == 2 || l == 3) << l;
  EXPECT_EQ(net.core(l).term(), 3u);

  ASSERT_TRUE(net.core(l).propose("next").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(2).applied_data, std::vector<std::string>{"next"});
  EXPECT_EQ(net.node(3).applied_data, std::vector<std::string>{"next"});
  // The removed node never campaigns again.
  net.clear_log();
  net.tick(50, {1});
  EXPECT_TRUE(net.sent_of(pb::MSG_VOTE, 1).empty());
  EXPECT_TRUE(net.sent_of(pb::MSG_PRE_VOTE, 1).empty());
}

// Found by simulator seed 353: after removing itself from {1, 2}, the old leader saw the
// singleton {2} and confirmed reads with nobody, while node 2 could already take writes.
TEST(RaftMembership, RemovedLeaderRefusesLinearizableReads) {
  TestNetwork net({1, 2});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose_conf_change(conf_change({single(kRemove, 1)})).has_value());
  net.stabilize();
  ASSERT_EQ(net.core(1).tracker().config.voters.incoming, (VoterSet{2}));
  ASSERT_TRUE(net.core(1).is_leader()) << "still handing over";
  auto r = net.core(1).read_index("ctx");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kProposalDropped);
  net.stabilize();
  EXPECT_TRUE(net.node(1).read_states.empty());
}

// Found by simulator seed 78275. Leader 1 removes itself from {1, 2}: node 2 acknowledges
// the removal (so it commits) but never hears that it did, and node 1 has one more entry.
// Node 2 still counts node 1 as a voter and needs its vote, which node 1 refuses because
// its log is longer; node 1 no longer campaigns. The rejection now carries node 1's commit
// index, node 2 learns the removal is committed, applies it and wins alone.
TEST(RaftMembership, SuccessorOfSelfRemovedLeaderLearnsCommitFromVoteRejection) {
  for (bool pre_vote : {false, true}) {
    SCOPED_TRACE(pre_vote ? "pre-vote" : "vote");
    NetworkOptions opt;
    opt.pre_vote = pre_vote;
    opt.max_size_per_msg_bytes = 1;  // one entry per append, so they can be dropped apart
    TestNetwork net({1, 2}, opt);
    net.elect(1);
    const Index removal = net.core(1).log().last_index() + 1;
    ASSERT_TRUE(net.core(1).propose_conf_change(conf_change({single(kRemove, 1)})).has_value());
    ASSERT_TRUE(net.core(1).propose("after").has_value());
    // Node 2 gets the removal, but nothing after it and no commit index covering it.
    net.drop_if = [&](const pb::Message& m) {
      if (m.from() != 1 || m.to() != 2) return false;
      if (m.type() == pb::MSG_APP) {
        return m.commit() >= removal || (m.entries_size() > 0 && m.entries(0).index() > removal);
      }
      return m.type() == pb::MSG_HEARTBEAT || m.type() == pb::MSG_TIMEOUT_NOW || m.type() == pb::MSG_SNAP;
    };
    net.stabilize();
    ASSERT_EQ(net.core(1).log().committed(), removal);
    ASSERT_EQ(net.core(2).log().last_index(), removal);
    ASSERT_LT(net.core(2).log().committed(), removal);
    ASSERT_GT(net.core(1).log().last_index(), net.core(2).log().last_index());
    net.tick(40);
    EXPECT_EQ(net.leader(), 2u) << "node 2 must be elected once it learns the removal is committed";
    EXPECT_EQ(voters_of(net.node(2).conf_states.back()), (VoterSet{2}));
    const NodeId l = net.leader();
    ASSERT_EQ(l, 2u);
    ASSERT_TRUE(net.core(2).propose("next").has_value());
    net.stabilize();
    EXPECT_EQ(net.node(2).applied_data, std::vector<std::string>{"next"});
  }
}

// §4.3: two changes at once go through a joint configuration, left automatically.
TEST(RaftMembership, TwoChangesEnterAndLeaveJointAutomatically) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.add_empty_node(4);
  net.add_empty_node(5);
  auto cc = conf_change({single(kAddVoter, 4), single(kAddVoter, 5)}, pb::TRANSITION_AUTO);
  ASSERT_TRUE(net.core(1).propose_conf_change(cc).has_value());
  net.stabilize();
  for (NodeId id : {1, 2, 3, 4, 5}) {
    SCOPED_TRACE(id);
    const auto& hist = net.node(id).conf_states;
    ASSERT_EQ(hist.size(), 2u);
    EXPECT_EQ(voters_of(hist[0]), (VoterSet{1, 2, 3, 4, 5}));
    EXPECT_EQ(outgoing_of(hist[0]), (VoterSet{1, 2, 3}));
    EXPECT_TRUE(hist[0].auto_leave());
    EXPECT_EQ(voters_of(hist[1]), (VoterSet{1, 2, 3, 4, 5}));
    EXPECT_TRUE(outgoing_of(hist[1]).empty());
    EXPECT_FALSE(hist[1].auto_leave());
    EXPECT_FALSE(net.core(id).tracker().config.voters.is_joint());
  }
}

// TRANSITION_JOINT_EXPLICIT stays joint until the empty ConfChange; while joint, decisions need
// majorities of both configurations and no other change is accepted.
TEST(RaftMembership, ExplicitJointRequiresLeaveConfChange) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.add_empty_node(4);
  net.add_empty_node(5);
  auto cc = conf_change({single(kAddVoter, 4), single(kAddVoter, 5)}, pb::TRANSITION_JOINT_EXPLICIT);
  ASSERT_TRUE(net.core(1).propose_conf_change(cc).has_value());
  net.stabilize();
  net.tick(5);
  const JointConfig& joint = net.core(1).tracker().config.voters;
  ASSERT_TRUE(joint.is_joint());
  EXPECT_EQ(joint.outgoing, (VoterSet{1, 2, 3}));
  EXPECT_EQ(net.node(5).conf_states.size(), 1u);

  auto s = net.core(1).propose_conf_change(conf_change({single(kAddLearner, 6)}));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);

  // {1, 4, 5} is a majority of the incoming five but not of the outgoing {1, 2, 3}.
  net.isolate(2);
  net.isolate(3);
  Index commit = net.core(1).log().committed();
  ASSERT_TRUE(net.core(1).propose("x").has_value());
  net.stabilize();
  EXPECT_EQ(net.core(1).log().committed(), commit) << "joint commit needs both majorities";
  net.heal();
  net.tick(1);
  EXPECT_EQ(net.node(1).applied_data, std::vector<std::string>{"x"});

  ASSERT_TRUE(net.core(1).propose_conf_change(pb::ConfChange()).has_value());
  net.stabilize();
  for (NodeId id : {1, 2, 3, 4, 5}) {
    EXPECT_FALSE(net.core(id).tracker().config.voters.is_joint()) << id;
    EXPECT_EQ(voters_of(net.node(id).storage->initial_state().conf_state), (VoterSet{1, 2, 3, 4, 5})) << id;
  }
  // Now {1, 4, 5} is enough.
  net.isolate(2);
  net.isolate(3);
  ASSERT_TRUE(net.core(1).propose("y").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(1).applied_data, (std::vector<std::string>{"x", "y"}));
}

// §4.3: the leader itself can be replaced by joint consensus (remove 1, add 4 at once). It
// keeps leading through C_old,new (it is an outgoing voter), leaves the joint configuration,
// then hands over once its election timeout ends.
TEST(RaftMembership, LeaderReplacedThroughJointConsensus) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.add_empty_node(4);
  auto cc = conf_change({single(kRemove, 1), single(kAddVoter, 4)});
  ASSERT_TRUE(net.core(1).propose_conf_change(cc).has_value());
  net.stabilize();
  for (NodeId id : {1, 2, 3, 4}) {
    SCOPED_TRACE(id);
    const auto& hist = net.node(id).conf_states;
    ASSERT_EQ(hist.size(), 2u);
    EXPECT_EQ(outgoing_of(hist[0]), (VoterSet{1, 2, 3}));
    EXPECT_EQ(voters_of(hist[1]), (VoterSet{2, 3, 4}));
    EXPECT_TRUE(outgoing_of(hist[1]).empty());
  }
  EXPECT_TRUE(net.core(1).is_leader());
  net.tick(10);
  EXPECT_FALSE(net.core(1).is_leader());
  NodeId l = net.leader();
  ASSERT_NE(l, kNoNode);
  EXPECT_NE(l, 1u);
  ASSERT_TRUE(net.core(l).propose("after").has_value());
  net.stabilize();
  for (NodeId id : {2, 3, 4}) EXPECT_EQ(net.node(id).applied_data, std::vector<std::string>{"after"}) << id;
}

// Demoting the leader to a learner (through a joint config): afterwards it steps down, keeps
// receiving the log as a learner, and never campaigns.
TEST(RaftMembership, LeaderDemotedToLearner) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose_conf_change(conf_change({single(kAddLearner, 1)}, pb::TRANSITION_JOINT_IMPLICIT))
                  .has_value());
  net.stabilize();
  EXPECT_EQ(net.core(2).tracker().config.learners, (std::set<NodeId>{1}));
  EXPECT_EQ(net.core(2).tracker().config.voters.incoming, (VoterSet{2, 3}));
  net.tick(10);
  EXPECT_FALSE(net.core(1).is_leader());
  NodeId l = net.leader();
  ASSERT_TRUE(l == 2 || l == 3) << l;
  ASSERT_TRUE(net.core(l).propose("x").has_value());
  net.tick(50);
  EXPECT_EQ(net.node(1).applied_data, std::vector<std::string>{"x"}) << "the learner still replicates";
  EXPECT_EQ(net.leader(), l) << "and never disrupts";
}

TEST(RaftMembership, LeavingWhenNotJointIsRefused) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  auto s = net.core(1).propose_conf_change(pb::ConfChange());
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
}

// One membership change at a time: a second one is refused until the first is applied.
TEST(RaftMembership, SecondConfChangeWhileOnePendingIsDropped) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.add_empty_node(4);
  net.add_empty_node(5);
  ASSERT_TRUE(net.core(1).propose_conf_change(conf_change({single(kAddLearner, 4)})).has_value());
  auto s = net.core(1).propose_conf_change(conf_change({single(kAddLearner, 5)}));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
  EXPECT_TRUE(net.core(1).propose("ordinary proposals still go through").has_value());
  net.stabilize();
  EXPECT_TRUE(net.core(1).propose_conf_change(conf_change({single(kAddLearner, 5)})).has_value());
  net.stabilize();
  EXPECT_EQ(net.core(1).tracker().config.learners, (std::set<NodeId>{4, 5}));
}

// A new leader refuses conf changes until it has applied every entry of earlier terms: one of
// them might be a membership change still in flight.
TEST(RaftMembership, NewLeaderRefusesConfChangeUntilItAppliedItsLog) {
  TestNetwork net{std::vector<NodeId>{}};
  for (NodeId id : {1, 2, 3}) {
    auto st = bootstrap_storage(make_conf_state({1, 2, 3}));
    EXPECT_TRUE(st->append({make_entry(2, 2, "inherited")}).has_value());
    pb::HardState hs;
    hs.set_term(2);
    hs.set_commit(1);
    st->set_hard_state(hs);
    net.add_node(id, std::move(st), 1);
  }
  net.core(1).campaign();
  for (int i = 0; i < 2; ++i) {  // requests out, votes back: leader, entry 2 not yet committed
    net.handle_all_ready();
    net.deliver_queued();
  }
  ASSERT_TRUE(net.core(1).is_leader());
  ASSERT_LT(net.core(1).log().applied(), 2u);
  auto s = net.core(1).propose_conf_change(conf_change({single(kAddLearner, 4)}));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
  net.stabilize();
  EXPECT_EQ(net.node(1).applied_data, std::vector<std::string>{"inherited"});
  EXPECT_TRUE(net.core(1).propose_conf_change(conf_change({single(kAddLearner, 4)})).has_value());
}

TEST(RaftMembership, ConfChangeThatCannotApplyIsRefusedAtProposal) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  auto s = net.core(1).propose_conf_change(
      conf_change({single(kRemove, 1), single(kRemove, 2), single(kRemove, 3)}));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(net.core(1).log().last_index(), 2u) << "nothing appended";
}

// --- ConfChanger as a unit ---

ConfChanger changer_for(const pb::ConfState& cs) {
  ConfigAndProgress cp = restore_conf_state(cs, 10, 8);
  return ConfChanger(cp.config, cp.progress, 10, 8);
}

TEST(RaftConfChanger, EnterJointWhenAlreadyJointFails) {
  auto joint = changer_for(make_conf_state({1, 2, 3})).enter_joint(false, {single(kAddVoter, 4)});
  ASSERT_TRUE(joint.has_value());
  ConfChanger again(joint->config, joint->progress, 10, 8);
  auto r = again.enter_joint(false, {single(kAddVoter, 5)});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(again.simple({single(kAddVoter, 5)}).has_value()) << "nor a simple change";
  auto left = again.leave_joint();
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(left->config.voters.incoming, (VoterSet{1, 2, 3, 4}));
  EXPECT_FALSE(left->config.voters.is_joint());
}

TEST(RaftConfChanger, SimpleChangeOfTwoVotersFails) {
  auto c = changer_for(make_conf_state({1, 2, 3}));
  auto r = c.simple({single(kAddVoter, 4), single(kAddVoter, 5)});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(c.simple({single(kRemove, 1), single(kAddVoter, 4)}).has_value()) << "a swap is two changes";
  // Learner changes do not count as voter changes.
  auto ok = c.simple({single(kAddVoter, 4), single(kAddLearner, 5), single(kAddLearner, 6)});
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->config.learners, (std::set<NodeId>{5, 6}));
}

TEST(RaftConfChanger, RemovingAllVotersFails) {
  auto r = changer_for(make_conf_state({1})).simple({single(kRemove, 1)});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  auto j = changer_for(make_conf_state({1, 2})).enter_joint(true, {single(kRemove, 1), single(kRemove, 2)});
  EXPECT_FALSE(j.has_value());
}

TEST(RaftConfChanger, TooManyVotersFails) {
  std::vector<pb::ConfChangeSingle> adds;
  for (NodeId id = 2; id <= limits::kMaxClusterVoters + 1; ++id) adds.push_back(single(kAddVoter, id));
  auto r = changer_for(make_conf_state({1})).enter_joint(true, adds);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("too many voters"), std::string::npos);
}

TEST(RaftConfChanger, LeaveJointWhenNotJointFails) {
  EXPECT_FALSE(changer_for(make_conf_state({1, 2, 3})).leave_joint().has_value());
}

// Demoting an outgoing voter makes it a learner only once the joint config is left.
TEST(RaftConfChanger, DemotedVoterBecomesLearnerOnLeavingJoint) {
  auto joint = changer_for(make_conf_state({1, 2, 3})).enter_joint(false, {single(kAddLearner, 3)});
  ASSERT_TRUE(joint.has_value());
  EXPECT_EQ(joint->config.voters.incoming, (VoterSet{1, 2}));
  EXPECT_EQ(joint->config.voters.outgoing, (VoterSet{1, 2, 3}));
  EXPECT_EQ(joint->config.learners_next, (std::set<NodeId>{3}));
  EXPECT_TRUE(joint->config.learners.empty());
  EXPECT_FALSE(joint->progress.at(3).is_learner);

  auto left = ConfChanger(joint->config, joint->progress, 10, 8).leave_joint();
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(left->config.learners, (std::set<NodeId>{3}));
  EXPECT_TRUE(left->progress.at(3).is_learner);
  EXPECT_TRUE(left->config.learners_next.empty());
}

// A voter removed in a joint config keeps its progress until the joint config is left.
TEST(RaftConfChanger, RemovedOutgoingVoterIsTrackedUntilLeave) {
  auto joint = changer_for(make_conf_state({1, 2, 3})).enter_joint(true, {single(kRemove, 3)});
  ASSERT_TRUE(joint.has_value());
  EXPECT_TRUE(joint->progress.contains(3));
  EXPECT_TRUE(joint->config.auto_leave);
  auto left = ConfChanger(joint->config, joint->progress, 10, 8).leave_joint();
  ASSERT_TRUE(left.has_value());
  EXPECT_FALSE(left->progress.contains(3));
  EXPECT_FALSE(left->config.auto_leave);
}

TEST(RaftConfChanger, ConfStateRoundTripsThroughTracker) {
  pb::ConfState cs = make_conf_state({1, 2, 4}, {5});
  for (NodeId id : {1, 2, 3}) cs.add_voters_outgoing(id);
  cs.add_learners_next(3);
  cs.set_auto_leave(true);
  ConfigAndProgress cp = restore_conf_state(cs, 7, 8);
  pb::ConfState back = cp.config.to_conf_state();
  EXPECT_EQ(back.SerializeAsString(), cs.SerializeAsString());
  EXPECT_EQ(cp.progress.size(), 5u);
  EXPECT_EQ(cp.progress.at(4).next, 7u);
  EXPECT_TRUE(cp.progress.at(5).is_learner);
}

TEST(RaftConfChanger, DescribeConfChange) {
  EXPECT_EQ(describe_conf_change(pb::ConfChange()), "leave-joint");
  EXPECT_EQ(describe_conf_change(conf_change({single(kAddVoter, 4), single(kRemove, 2), single(kAddLearner, 5)})),
            "add-voter 4, remove 2, add-learner 5");
}

}  // namespace
}  // namespace aspen::raft
