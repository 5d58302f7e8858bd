// Leader election: votes, terms, the election restriction, PreVote and CheckQuorum.
#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

NetworkOptions plain() { return NetworkOptions{}; }

// §5.2: a candidate that can reach every peer wins in one round of RequestVote.
TEST(RaftElection, LeaderElectedInOneRound) {
  for (size_t size : {1u, 3u, 5u}) {
    std::vector<NodeId> ids;
    for (NodeId id = 1; id <= size; ++id) ids.push_back(id);
    TestNetwork net(ids);
    net.elect(1);
    SCOPED_TRACE(size);
    EXPECT_TRUE(net.core(1).is_leader());
    EXPECT_EQ(net.core(1).term(), 2u);
    EXPECT_EQ(net.sent_of(pb::MSG_VOTE).size(), size - 1);
    for (const auto& r : net.sent_of(pb::MSG_VOTE_RESP)) EXPECT_FALSE(r.reject());
    for (NodeId id : ids) {
      EXPECT_EQ(net.core(id).leader(), 1u) << "node " << id;
      EXPECT_EQ(net.core(id).term(), 2u) << "node " << id;
      // The new leader's empty entry of term 2 is committed everywhere.
      EXPECT_EQ(net.core(id).log().committed(), 2u) << "node " << id;
    }
  }
}

// §5.2: "each server will vote for at most one candidate in a given term".
TEST(RaftElection, FollowerVotesAtMostOncePerTerm) {
  TestNetwork net({1, 2, 3});
  auto vote_from = [](NodeId from) {
    pb::Message m = make_msg(pb::MSG_VOTE, from, 1, 2);
    m.set_index(1);
    m.set_log_term(1);
    return m;
  };
  ASSERT_TRUE(net.core(1).step(vote_from(2)).has_value());
  auto out = net.handle_ready(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type(), pb::MSG_VOTE_RESP);
  EXPECT_FALSE(out[0].reject());
  // The vote is persisted in the same Ready that carries the response (the vote is a promise).
  EXPECT_EQ(net.node(1).storage->hard_state().vote(), 2u);
  EXPECT_EQ(net.node(1).storage->hard_state().term(), 2u);

  ASSERT_TRUE(net.core(1).step(vote_from(3)).has_value());
  out = net.handle_ready(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject()) << "a second candidate in the same term must be refused";
  EXPECT_EQ(net.core(1).status().vote, 2u);

  // A retransmitted request from the candidate we voted for is granted again.
  ASSERT_TRUE(net.core(1).step(vote_from(2)).has_value());
  out = net.handle_ready(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].reject());
}

// §5.4.1 election restriction: a vote is granted only to a candidate whose log is at least as
// up to date as the voter's (compare last terms, then lengths).
TEST(RaftElection, CandidateWithStaleLogIsRejected) {
  struct Case {
    Index last_index;
    Term last_term;
    bool granted;
  };
  // The voter's log: [1:t1 (snapshot)] 2:t2 3:t2.
  const Case cases[] = {
      {3, 2, true},    // identical
      {4, 2, true},    // same term, longer
      {2, 2, false},   // same term, shorter
      {10, 1, false},  // longer but older last term
      {1, 3, true},    // shorter but newer last term
  };
  for (const auto& c : cases) {
    TestNetwork net({2, 3});
    auto st = bootstrap_storage(make_conf_state({1, 2, 3}));
    ASSERT_TRUE(st->append({make_entry(2, 2), make_entry(3, 2)}).has_value());
    pb::HardState hs;
    hs.set_term(2);
    hs.set_commit(1);
    st->set_hard_state(hs);
    net.add_node(1, std::move(st), 1);

    pb::Message m = make_msg(pb::MSG_VOTE, 2, 1, 3);
    m.set_index(c.last_index);
    m.set_log_term(c.last_term);
    ASSERT_TRUE(net.core(1).step(m).has_value());
    auto out = net.handle_ready(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(!out[0].reject(), c.granted) << "candidate (" << c.last_index << ", t" << c.last_term << ")";
    // Either way the voter adopts the higher term (§5.1).
    EXPECT_EQ(net.core(1).term(), 3u);
  }
}

// §5.1: a leader that sees a higher term reverts to follower.
TEST(RaftElection, HigherTermMakesLeaderStepDown) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  ASSERT_TRUE(net.core(1).is_leader());

  pb::Message hb = make_msg(pb::MSG_HEARTBEAT, 2, 1, 5);
  ASSERT_TRUE(net.core(1).step(hb).has_value());
  EXPECT_EQ(net.core(1).role(), Role::kFollower);
  EXPECT_EQ(net.core(1).term(), 5u);
  EXPECT_EQ(net.core(1).leader(), 2u);

  // A response carrying a higher term also deposes a leader, with no leader known.
  TestNetwork net2({1, 2, 3});
  net2.elect(1);
  pb::Message resp = make_msg(pb::MSG_APP_RESP, 3, 1, 7);
  ASSERT_TRUE(net2.core(1).step(resp).has_value());
  EXPECT_EQ(net2.core(1).role(), Role::kFollower);
  EXPECT_EQ(net2.core(1).term(), 7u);
  EXPECT_EQ(net2.core(1).leader(), kNoNode);
  net2.handle_ready(1);
  EXPECT_EQ(net2.node(1).storage->hard_state().term(), 7u);
}

// A stale message (lower term) does not affect the receiver's state.
TEST(RaftElection, LowerTermMessagesAreIgnored) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.elect(2);  // term 3
  ASSERT_TRUE(net.core(2).is_leader());
  ASSERT_EQ(net.core(2).term(), 3u);
  pb::Message old = make_msg(pb::MSG_APP, 1, 3, 2);
  old.set_index(1);
  old.set_log_term(1);
  old.set_commit(1);
  ASSERT_TRUE(net.core(3).step(old).has_value());
  EXPECT_EQ(net.core(3).term(), 3u);
  EXPECT_EQ(net.core(3).leader(), 2u);
}

Term max_term(TestNetwork& net) {
  Term t = 0;
  for (NodeId id : net.ids()) t = std::max(t, net.core(id).term());
  return t;
}

// §9.6 PreVote: a node cut off from the cluster keeps failing pre-votes without bumping its
// term, so when it rejoins it neither raises the cluster's term nor deposes the leader.
TEST(RaftElection, PreVotePreventsPartitionedNodeFromDisruptingLeader) {
  NetworkOptions opt;
  opt.pre_vote = true;
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  ASSERT_TRUE(net.core(1).is_leader());
  const Term term = net.core(1).term();

  net.isolate(3);
  ASSERT_TRUE(net.core(1).propose("x").has_value());
  net.stabilize();
  net.tick(100, {3});
  EXPECT_EQ(net.core(3).term(), term) << "pre-votes must not bump the term";
  EXPECT_FALSE(net.sent_of(pb::MSG_PRE_VOTE, 3).empty()) << "node 3 did try to campaign";
  EXPECT_TRUE(net.sent_of(pb::MSG_VOTE, 3).empty());

  net.heal();
  net.tick(60);
  EXPECT_EQ(net.leader(), 1u);
  EXPECT_EQ(max_term(net), term);
  EXPECT_EQ(net.node(3).applied_data, std::vector<std::string>{"x"});
}

// The same scenario without PreVote: the rejoining node's inflated term deposes the leader.
// This is the disruption PreVote exists to prevent (and shows the test above is meaningful).
TEST(RaftElection, WithoutPreVoteRejoiningNodeDisruptsLeader) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  const Term term = net.core(1).term();
  net.isolate(3);
  ASSERT_TRUE(net.core(1).propose("x").has_value());
  net.stabilize();
  net.tick(100, {3});
  EXPECT_GT(net.core(3).term(), term + 2);
  net.heal();
  net.tick(60);
  EXPECT_GT(max_term(net), term + 2);
  EXPECT_NE(net.core(1).term(), term);
}

// §6.2 CheckQuorum: a leader that cannot hear from a quorum steps down within two election
// timeouts (one full timeout with no response at all).
TEST(RaftElection, CheckQuorumIsolatedLeaderStepsDown) {
  NetworkOptions opt;
  opt.check_quorum = true;
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  ASSERT_TRUE(net.core(1).is_leader());
  net.isolate(1);
  net.tick(opt.election_tick - 1, {1});
  EXPECT_TRUE(net.core(1).is_leader()) << "too early to give up";
  net.tick(opt.election_tick + 1, {1});
  EXPECT_EQ(net.core(1).role(), Role::kFollower);
  EXPECT_EQ(net.core(1).leader(), kNoNode);
  // The majority side elects a new leader in a later term. (It may not keep it: see the
  // disabled test below.)
  bool majority_elected = false;
  for (uint32_t i = 0; i < 4 * opt.election_tick && !majority_elected; ++i) {
    net.tick(1, {2, 3});
    NodeId l = net.leader();
    majority_elected = (l == 2 || l == 3) && net.core(l).term() > 2;
  }
  EXPECT_TRUE(majority_elected);
}

// For the unreachable-leader tests: CheckQuorum on, pre-vote as given.
NetworkOptions quorum_checked(bool pre_vote) {
  NetworkOptions opt;
  opt.check_quorum = true;
  opt.pre_vote = pre_vote;
  return opt;
}

// `ticks` ticks of `which` (all if empty), every message delivered after each.
void tick_and_settle(TestNetwork& net, uint32_t ticks, std::vector<NodeId> which = {}) {
  for (uint32_t i = 0; i < ticks; ++i) {
    net.tick(1, which);
    net.stabilize();
  }
}

// Tick ratios like the node's defaults (heartbeat a tenth of the election timeout), CheckQuorum
// and pre-vote on.
NetworkOptions failover_options(uint64_t seed) {
  NetworkOptions opt = quorum_checked(true);
  opt.election_tick = 40;
  opt.heartbeat_tick = 4;
  opt.seed = seed;
  return opt;
}

// Ticks nodes 2 and 3 (node 1 is the dead leader) one at a time, settling after each, until
// one of them leads or `max_ticks` passed; returns the leader or kNoNode.
NodeId tick_survivors_until_leader(TestNetwork& net, uint32_t max_ticks) {
  for (uint32_t t = 0; t < max_ticks; ++t) {
    tick_and_settle(net, 1, {2, 3});
    for (NodeId id : {2, 3}) {
      if (net.core(id).is_leader()) return id;
    }
  }
  return kNoNode;
}

// Fast failover: followers told by the transport that their leader's process is gone stop
// counting on it and campaign, with a pre-vote (§9.6), within two heartbeats (at most a
// quarter of the election timeout) instead of after it. Here that is 8 ticks of 40. A
// follower that has not been told yet still refuses the pre-vote; the teller retries a few
// times, soon, so the election follows shortly after the second follower is told.
TEST(RaftElection, FollowersToldTheirLeaderIsUnreachableElectANewOneWithinHalfTheTimeout) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const NetworkOptions opt = failover_options(seed);
    TestNetwork net({1, 2, 3}, opt);
    net.elect(1);
    const Term term = net.core(1).term();
    net.isolate(1);  // killed: it neither sends nor receives
    net.core(2).report_unreachable(1);
    EXPECT_EQ(net.core(2).leader(), kNoNode);
    tick_and_settle(net, opt.election_tick / 4, {2, 3});
    // Node 3 still counts on the leader it heard within the election timeout: node 2's
    // pre-votes are refused, and nobody's term moved.
    EXPECT_EQ(net.leader(), 1u) << "seed " << seed;
    EXPECT_EQ(net.core(3).term(), term) << "seed " << seed;
    net.core(3).report_unreachable(1);
    const NodeId leader = tick_survivors_until_leader(net, opt.election_tick / 2);
    ASSERT_NE(leader, kNoNode) << "seed " << seed << ": no leader within half an election timeout";
    EXPECT_GE(net.core(leader).term(), term + 1) << "seed " << seed;
  }
}

// Two followers told at the same moment may campaign at the same moment: their pre-votes
// cross and are granted, both become candidates in the next term, and each refuses the
// other's vote; each then waits for the dead leader's answer. Neither may wait a whole
// election timeout (a minute, say): a campaign after the leader was reported unreachable is
// abandoned and retried after about a heartbeat, at a new random tick.
// Regression: ClusterTest.KillNineOfTheLeaderIsNoticedAtOnceNotAfterTheElectionTimeout failed
// in CI with exactly this split and no leader for 20 s of a 60 s timeout.
TEST(RaftElection, ASplitVoteAfterTheLeaderWasReportedUnreachableIsRetriedSoon) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const NetworkOptions opt = failover_options(seed);
    TestNetwork net({1, 2, 3}, opt);
    net.elect(1);
    const Term term = net.core(1).term();
    net.isolate(1);
    net.core(2).report_unreachable(1);
    net.core(3).report_unreachable(1);
    net.core(2).campaign();
    net.core(3).campaign();
    net.stabilize();
    // Each voted for itself and refused the other; each waits for node 1's answer.
    for (NodeId id : {2, 3}) {
      ASSERT_EQ(net.core(id).role(), Role::kCandidate) << "seed " << seed << ": the vote was not split";
      ASSERT_EQ(net.core(id).term(), term + 1) << "seed " << seed;
    }
    // Within one election timeout: a node that waited for its timer could not campaign yet.
    const NodeId leader = tick_survivors_until_leader(net, opt.election_tick);
    EXPECT_NE(leader, kNoNode) << "seed " << seed << ": no leader within an election timeout of the split";
  }
}

// The retries are bounded and end when a leader is heard: a node whose campaigns keep
// failing falls back to the election timeout, and one that hears a leader stops retrying.
TEST(RaftElection, FastRetriesStopOnceALeaderIsHeard) {
  const NetworkOptions opt = failover_options(1);
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  const Term term = net.core(1).term();
  // A false report: node 1 is alive and node 3 still hears it, so node 2's pre-votes are
  // refused. Node 2 retries a few times, soon, then goes back to following node 1.
  net.core(2).report_unreachable(1);
  tick_and_settle(net, 2 * opt.election_tick);
  EXPECT_TRUE(net.core(1).is_leader());
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(net.core(id).term(), term) << "node " << id;
  EXPECT_EQ(net.core(2).leader(), 1u);
  // Heard from its leader, node 2 does not campaign again before a whole election timeout of
  // silence: cut it off and count its pre-votes in the next half timeout.
  net.isolate(2);
  net.clear_log();
  tick_and_settle(net, opt.election_tick / 2, {2});
  size_t pre_votes = 0;
  for (const auto& m : net.dropped()) pre_votes += m.type() == pb::MSG_PRE_VOTE ? 1 : 0;
  EXPECT_EQ(pre_votes, 0u);
}

// The same report about a leader the others still hear disrupts nothing: a pre-vote, if the
// reporter sends one before the next heartbeat, is refused, no term changes, and the
// reporter follows the leader again.
TEST(RaftElection, AFalseUnreachableReportAboutALiveLeaderDisruptsNothing) {
  const NetworkOptions opt = quorum_checked(true);
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  const Term term = net.core(1).term();
  net.core(2).report_unreachable(1);
  tick_and_settle(net, opt.election_tick);
  EXPECT_TRUE(net.core(1).is_leader());
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(net.core(id).term(), term) << "node " << id;
  EXPECT_EQ(net.core(2).role(), Role::kFollower);
  EXPECT_EQ(net.core(2).leader(), 1u);
  // A report about a node that is not our leader changes nothing.
  net.core(2).report_unreachable(3);
  EXPECT_EQ(net.core(2).leader(), 1u);
}

TEST(RaftElection, WithoutPreVoteAnUnreachableLeaderWaitsForTheElectionTimeout) {
  const NetworkOptions opt = quorum_checked(false);
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  net.isolate(1);
  net.core(2).report_unreachable(1);
  net.core(3).report_unreachable(1);
  tick_and_settle(net, opt.election_tick / 4 + 1, {2, 3});
  EXPECT_EQ(net.core(2).role(), Role::kFollower);
  EXPECT_EQ(net.core(3).role(), Role::kFollower);
}

// §6.2: a leader with a quorum (itself and one of two followers) must keep its leadership.
// Regression (fixed; found by this test) (src/raft/raft.cc, RaftCore::reset, lines ~98-102): reset() rebuilds every Progress,
// including the leader's own, with recent_active = false, and become_leader() never sets it
// back to true. ProgressTracker::quorum_active() counts the leader's own entry, so at the first
// CheckQuorum round after an election the leader sees only {2} active out of {1,2,3} and
// steps down although it hears from a majority. etcd's becomeLeader sets the leader's
// RecentActive = true for exactly this reason. Effect: with one node of three down, every new
// leader abdicates after its first election timeout.
TEST(RaftElection, CheckQuorumLeaderWithOneFollowerDownKeepsLeadership) {
  NetworkOptions opt;
  opt.check_quorum = true;
  TestNetwork net({1, 2, 3}, opt);
  net.isolate(3);
  net.elect(1);
  ASSERT_TRUE(net.core(1).is_leader());
  const Term term = net.core(1).term();
  for (uint32_t t = 1; t <= 3 * opt.election_tick; ++t) {
    net.tick(1, {1, 2});
    ASSERT_TRUE(net.core(1).is_leader()) << "leader stepped down at tick " << t;
    ASSERT_EQ(net.core(1).term(), term);
  }
}

// §6.2 / thesis §4.2.3: a follower that heard from a leader within the minimum election
// timeout ignores RequestVote (it neither answers nor adopts the term).
TEST(RaftElection, FollowerInLeaseIgnoresVoteRequests) {
  NetworkOptions opt;
  opt.check_quorum = true;
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  const Term term = net.core(2).term();

  pb::Message vote = make_msg(pb::MSG_VOTE, 3, 2, term + 8);
  vote.set_index(100);
  vote.set_log_term(term);
  ASSERT_TRUE(net.core(2).step(vote).has_value());
  EXPECT_TRUE(net.handle_ready(2).empty());
  EXPECT_EQ(net.core(2).term(), term);
  EXPECT_EQ(net.core(2).leader(), 1u);

  // Once the lease has run out (no heartbeat for an election timeout), the same request wins.
  for (uint32_t i = 0; i < opt.election_tick; ++i) net.core(2).tick();
  net.handle_ready(2);
  net.take_queued();
  ASSERT_TRUE(net.core(2).step(vote).has_value());
  auto out = net.handle_ready(2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type(), pb::MSG_VOTE_RESP);
  EXPECT_FALSE(out[0].reject());
  EXPECT_EQ(net.core(2).term(), term + 8);
}

// §5.2: when every node campaigns at once the votes split; randomized election timeouts then
// let one node time out first and win.
TEST(RaftElection, SplitVoteResolvesWithRandomizedTimeouts) {
  TestNetwork net({1, 2, 3});
  for (NodeId id : {1, 2, 3}) net.core(id).campaign();
  net.stabilize();
  EXPECT_EQ(net.leader_count(), 0u) << "each candidate voted for itself: nobody has a majority";
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(net.core(id).term(), 2u);

  int ticks = 0;
  while (net.leader_count() == 0 && ticks < 10 * 10) {
    net.tick();
    ++ticks;
  }
  ASSERT_EQ(net.leader_count(), 1u);
  EXPECT_LT(ticks, 2 * 10 + 1) << "the first timeout fires within [election, 2*election)";
  NodeId l = net.leader();
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(net.core(id).leader(), l);
}

// Election timeouts come from the seed: the same seed gives the same first candidate and the
// same tick on which it campaigns.
TEST(RaftElection, ElectionTimingIsDeterministicPerSeed) {
  auto first_election = [](uint64_t seed) {
    NetworkOptions opt;
    opt.seed = seed;
    TestNetwork net({1, 2, 3}, opt);
    int ticks = 0;
    while (net.leader_count() == 0 && ticks < 100) {
      net.tick();
      ++ticks;
    }
    return std::pair<NodeId, int>(net.leader(), ticks);
  };
  for (uint64_t seed : {1u, 7u, 42u}) EXPECT_EQ(first_election(seed), first_election(seed));
}

TEST(RaftElection, SingleNodeClusterElectsItself) {
  TestNetwork net({1});
  net.tick(2 * 10);
  ASSERT_TRUE(net.core(1).is_leader());
  EXPECT_EQ(net.core(1).term(), 2u);
  ASSERT_TRUE(net.core(1).propose("solo").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(1).applied_data, std::vector<std::string>{"solo"});
  EXPECT_TRUE(net.sent().empty()) << "nobody to talk to";
}

// Learners replicate but never start elections and are never asked for votes (thesis §4.2.1).
TEST(RaftElection, LearnerNeverCampaigns) {
  TestNetwork net({1, 2, 3}, plain(), {4});
  net.tick(10 * 10, {4});
  EXPECT_EQ(net.core(4).role(), Role::kFollower);
  net.core(4).campaign();
  net.stabilize();
  EXPECT_EQ(net.core(4).role(), Role::kFollower);
  EXPECT_EQ(net.core(4).term(), 1u);
  EXPECT_TRUE(net.sent_of(pb::MSG_VOTE, 4).empty());
  EXPECT_TRUE(net.sent_of(pb::MSG_PRE_VOTE, 4).empty());

  net.elect(1);
  EXPECT_TRUE(net.sent_of(pb::MSG_VOTE, 1, 4).empty()) << "learners get no vote requests";
  EXPECT_FALSE(net.sent_of(pb::MSG_APP, 1, 4).empty()) << "but they do replicate";
  EXPECT_EQ(net.core(4).leader(), 1u);
  EXPECT_EQ(net.core(4).log().committed(), net.core(1).log().committed());
}

// A candidate steps down when a leader of its own term makes itself known (§5.2).
TEST(RaftElection, CandidateStepsDownOnAppendFromLeaderOfSameTerm) {
  TestNetwork net({1, 2, 3});
  net.core(2).campaign();  // candidate in term 2, its requests are never delivered
  net.handle_ready(2);
  net.take_queued();
  ASSERT_EQ(net.core(2).role(), Role::kCandidate);
  pb::Message app = make_msg(pb::MSG_APP, 1, 2, 2);
  app.set_index(1);
  app.set_log_term(1);
  ASSERT_TRUE(net.core(2).step(app).has_value());
  EXPECT_EQ(net.core(2).role(), Role::kFollower);
  EXPECT_EQ(net.core(2).leader(), 1u);
  EXPECT_EQ(net.core(2).term(), 2u);
}

// A vote rejection carries the rejecter's commit index (see the membership test found by
// seed 78275). The candidate adopts it only where its own log holds that very entry.
TEST(RaftElection, CommitFromRejectionIsAdoptedOnlyForAnEntryTheCandidateHolds) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  const Index before = net.core(2).log().committed();
  // Node 2 receives the next entry but not the commit index that covers it.
  net.drop_if = [&](const pb::Message& m) { return m.to() == 2 && m.commit() > before; };
  ASSERT_TRUE(net.core(1).propose("a").has_value());
  net.stabilize();
  const Index last = net.core(2).log().last_index();
  ASSERT_EQ(last, before + 1);
  ASSERT_EQ(net.core(2).log().committed(), before);
  net.heal();
  const Term entry_term = net.core(2).log().term_or_zero(last);

  pb::Message rej;
  rej.set_type(pb::MSG_VOTE_RESP);
  rej.set_from(3);
  rej.set_to(2);
  rej.set_term(net.core(2).term());
  rej.set_reject(true);
  rej.set_commit(last + 5);  // beyond node 2's log
  rej.set_log_term(entry_term);
  ASSERT_TRUE(net.core(2).step(rej).has_value());
  EXPECT_EQ(net.core(2).log().committed(), before);
  rej.set_commit(last);
  rej.set_log_term(entry_term + 1);  // same index, another term: a different entry
  ASSERT_TRUE(net.core(2).step(rej).has_value());
  EXPECT_EQ(net.core(2).log().committed(), before);
  rej.set_log_term(entry_term);  // the entry node 2 holds
  ASSERT_TRUE(net.core(2).step(rej).has_value());
  EXPECT_EQ(net.core(2).log().committed(), last);
}

}  // namespace
}  // namespace aspen::raft
