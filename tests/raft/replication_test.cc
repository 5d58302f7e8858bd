// Log replication: commitment, log repair, flow control and proposal admission.
#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

std::vector<std::string> strings(std::initializer_list<const char*> l) { return {l.begin(), l.end()}; }

// §5.3: a proposal is replicated, committed once a majority has it, and applied in the same
// order everywhere; the logs end up identical (Log Matching).
TEST(RaftReplication, ProposalIsCommittedAndAppliedOnAllNodes) {
  for (size_t size : {3u, 5u}) {
    SCOPED_TRACE(size);
    std::vector<NodeId> ids;
    for (NodeId id = 1; id <= size; ++id) ids.push_back(id);
    TestNetwork net(ids);
    net.elect(1);
    for (const char* v : {"a", "b", "c"}) ASSERT_TRUE(net.core(1).propose(v).has_value());
    net.stabilize();
    for (NodeId id : ids) {
      EXPECT_EQ(net.node(id).applied_data, strings({"a", "b", "c"})) << "node " << id;
      EXPECT_EQ(net.core(id).log().committed(), 5u) << "node " << id;
      EXPECT_EQ(net.node(id).storage->hard_state().commit(), 5u) << "node " << id;
      EXPECT_EQ(terms_of(net.log_entries(id)), terms_of(net.log_entries(1))) << "node " << id;
    }
  }
}

// Builds the leader of Figure 8 (c): node 1 of five holds an entry of term 2 at index 2, is
// elected in term 4 with the votes of 2 and 3, and appends its empty entry (index 3, term 4).
struct Figure8 {
  TestNetwork net{std::vector<NodeId>{}};
  Figure8() {
    auto st = bootstrap_storage(make_conf_state({1, 2, 3, 4, 5}));
    EXPECT_TRUE(st->append({make_entry(2, 2, "old")}).has_value());
    pb::HardState hs;
    hs.set_term(3);
    hs.set_commit(1);
    st->set_hard_state(hs);
    net.add_node(1, std::move(st), 1);
    net.core(1).campaign();
    net.handle_ready(1);
    net.take_queued();
    for (NodeId voter : {2, 3}) {
      pb::Message r = make_msg(pb::MSG_VOTE_RESP, voter, 1, 4);
      EXPECT_TRUE(net.core(1).step(r).has_value());
    }
    EXPECT_TRUE(net.core(1).is_leader());
    net.handle_ready(1);
    net.take_queued();
  }
  void ack(NodeId from, Index index) {
    pb::Message r = make_msg(pb::MSG_APP_RESP, from, 1, 4);
    r.set_index(index);
    EXPECT_TRUE(net.core(1).step(r).has_value());
  }
  Index committed() { return net.core(1).log().committed(); }
};

// §5.4.2 (Figure 8): a leader never commits an entry of an earlier term by counting replicas;
// it is committed only indirectly, once an entry of the leader's own term is on a majority.
TEST(RaftReplication, OldTermEntryIsCommittedOnlyWithACurrentTermEntry) {
  Figure8 f;
  ASSERT_EQ(f.net.core(1).term(), 4u);
  ASSERT_EQ(f.net.core(1).log().last_index(), 3u);
  f.ack(2, 2);
  f.ack(3, 2);
  // Index 2 (term 2) is now on a majority {1, 2, 3}, yet must not be committed: in Figure 8
  // (d) a node with a term-3 entry at index 2 could still be elected and overwrite it.
  EXPECT_EQ(f.committed(), 1u);
  f.ack(2, 3);
  EXPECT_EQ(f.committed(), 1u) << "index 3 is on two of five";
  f.ack(3, 3);
  EXPECT_EQ(f.committed(), 3u) << "the term-4 entry on a majority commits index 2 with it";
}

// §5.3 fast backtracking: a follower's rejection names the last index whose term is <= the
// probed term, so the leader skips a whole term per round trip instead of one entry.
TEST(RaftReplication, FastBacktrackingRepairsLongConflictingSuffixInOneRejection) {
  struct Case {
    Index leader_last;    // leader's log: 2..leader_last in term 3
    Index follower_last;  // follower's log: 2..follower_last in term 2
  };
  for (Case c : {Case{31, 41}, Case{51, 6}, Case{20, 20}}) {
    SCOPED_TRACE(::testing::Message() << "leader " << c.leader_last << " follower " << c.follower_last);
    TestNetwork net{std::vector<NodeId>{}};
    auto make_disk = [](Index last, Term term, const std::string& tag) {
      auto st = bootstrap_storage(make_conf_state({1, 2, 3}));
      std::vector<pb::Entry> ents;
      for (Index i = 2; i <= last; ++i) ents.push_back(make_entry(i, term, tag + std::to_string(i)));
      EXPECT_TRUE(st->append(ents).has_value());
      pb::HardState hs;
      hs.set_term(3);
      hs.set_commit(1);
      st->set_hard_state(hs);
      return st;
    };
    net.add_node(1, make_disk(c.leader_last, 3, "L"), 1);
    net.add_node(2, make_disk(c.follower_last, 2, "F"), 1);
    net.add_node(3, make_disk(c.leader_last, 3, "L"), 1);
    net.elect(1);
    ASSERT_TRUE(net.core(1).is_leader());

    size_t rejections = 0;
    for (const auto& m : net.sent_of(pb::MSG_APP_RESP, 2, 1)) rejections += m.reject() ? 1 : 0;
    EXPECT_EQ(rejections, 1u) << "one-by-one backtracking would need about "
                              << std::min(c.leader_last, c.follower_last) << " round trips";
    // §5.3: the follower's conflicting entries are gone; its log equals the leader's.
    EXPECT_EQ(terms_of(net.log_entries(2)), terms_of(net.log_entries(1)));
    EXPECT_EQ(net.node(2).applied_data, net.node(1).applied_data);
    for (const auto& d : net.node(2).applied_data) EXPECT_EQ(d[0], 'L') << d;
    EXPECT_EQ(net.core(2).log().committed(), c.leader_last + 1);
  }
}

// §5.3: entries a deposed leader appended but never committed are overwritten by the new
// leader's log; they are never applied.
TEST(RaftReplication, ConflictingUncommittedEntriesAreOverwritten) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose("a").has_value());
  net.stabilize();
  net.isolate(1);
  for (const char* v : {"b1", "b2", "b3"}) ASSERT_TRUE(net.core(1).propose(v).has_value());
  net.stabilize();
  EXPECT_EQ(net.core(1).log().last_index(), 6u);
  EXPECT_EQ(net.core(1).log().committed(), 3u);

  net.elect(2);
  ASSERT_TRUE(net.core(2).is_leader());
  ASSERT_TRUE(net.core(2).propose("c").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(2).applied_data, strings({"a", "c"}));

  net.heal();
  net.tick(3);
  EXPECT_EQ(net.core(1).role(), Role::kFollower);
  EXPECT_EQ(net.core(1).leader(), 2u);
  EXPECT_EQ(net.node(1).applied_data, strings({"a", "c"}));
  EXPECT_EQ(terms_of(net.log_entries(1)), terms_of(net.log_entries(2)));
  // What is on disk agrees with the core's view: the stale suffix was truncated.
  EXPECT_EQ(net.node(1).storage->last_index(), net.core(2).log().last_index());
}

// Flow control: in replicate state the leader has at most max_inflight_msgs unacknowledged
// appends to a follower; a heartbeat response lets one more through so a lost window recovers.
TEST(RaftReplication, InflightWindowBoundsUnackedAppends) {
  NetworkOptions opt;
  opt.max_inflight_msgs = 3;
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  ASSERT_EQ(net.core(1).tracker().progress.at(2).state, ProgressState::kReplicate);
  net.clear_log();
  net.drop_if = [](const pb::Message& m) { return m.to() == 2; };
  std::vector<std::string> proposed;
  for (int i = 0; i < 10; ++i) {
    proposed.push_back("p" + std::to_string(i));
    ASSERT_TRUE(net.core(1).propose(proposed.back()).has_value());
    net.stabilize();
  }
  auto non_empty = [&](NodeId to) {
    size_t n = 0;
    for (const auto& m : net.sent_of(pb::MSG_APP, 1, to)) n += m.entries_size() > 0 ? 1 : 0;
    return n;
  };
  EXPECT_EQ(non_empty(2), 3u);
  EXPECT_EQ(non_empty(3), 10u);
  const Progress& pr = net.core(1).tracker().progress.at(2);
  EXPECT_TRUE(pr.inflights.is_full());
  EXPECT_TRUE(pr.is_paused());
  EXPECT_EQ(net.node(3).applied_data, proposed) << "the window of one follower does not block commit";

  net.heal();
  net.tick(1);
  EXPECT_EQ(net.node(2).applied_data, proposed);
  EXPECT_EQ(net.core(1).tracker().progress.at(2).state, ProgressState::kReplicate);
  EXPECT_EQ(net.core(1).tracker().progress.at(2).match, net.core(1).log().last_index());
}

// A follower that missed appends rejects the next one; the leader falls back to probing from
// the follower's match index, then streams again once the probe is accepted.
TEST(RaftReplication, FollowerThatLostMessagesRecoversViaProbe) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_APP && m.to() == 2; };
  for (const char* v : {"a", "b"}) ASSERT_TRUE(net.core(1).propose(v).has_value());
  net.stabilize();
  net.drop_if = nullptr;
  net.clear_log();

  ASSERT_TRUE(net.core(1).propose("c").has_value());
  net.handle_all_ready();  // leader sends the append of "c"
  net.deliver_queued();
  net.handle_all_ready();  // node 2 answers with a rejection
  net.deliver_queued();
  const Progress& pr = net.core(1).tracker().progress.at(2);
  EXPECT_EQ(pr.state, ProgressState::kProbe);
  EXPECT_TRUE(pr.is_probe_sent) << "a probe is outstanding";
  EXPECT_EQ(pr.next, 3u) << "probe right after the last acked entry (the leader's empty entry)";

  net.stabilize();
  size_t rejections = 0;
  for (const auto& m : net.sent_of(pb::MSG_APP_RESP, 2, 1)) rejections += m.reject() ? 1 : 0;
  EXPECT_EQ(rejections, 1u);
  EXPECT_EQ(pr.state, ProgressState::kReplicate);
  EXPECT_EQ(pr.match, net.core(1).log().last_index());
  EXPECT_EQ(net.node(2).applied_data, strings({"a", "b", "c"}));
}

// report_unreachable stops optimistic streaming: the follower goes back to probe.
TEST(RaftReplication, ReportUnreachableReturnsFollowerToProbe) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  ASSERT_EQ(net.core(1).tracker().progress.at(2).state, ProgressState::kReplicate);
  net.core(1).report_unreachable(2);
  EXPECT_EQ(net.core(1).tracker().progress.at(2).state, ProgressState::kProbe);
  ASSERT_TRUE(net.core(1).propose("x").has_value());
  net.stabilize();
  EXPECT_EQ(net.core(1).tracker().progress.at(2).state, ProgressState::kReplicate);
  EXPECT_EQ(net.node(2).applied_data, strings({"x"}));
}

// Proposals made on a follower are forwarded to the leader (the client need not know it).
TEST(RaftReplication, FollowerForwardsProposalsToLeader) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.clear_log();
  ASSERT_TRUE(net.core(2).propose("via-2").has_value());
  net.stabilize();
  auto props = net.sent_of(pb::MSG_PROP, 2, 1);
  ASSERT_EQ(props.size(), 1u);
  EXPECT_EQ(props[0].entries(0).data(), "via-2");
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(net.node(id).applied_data, strings({"via-2"})) << id;
}

TEST(RaftReplication, ProposalWithoutLeaderIsDropped) {
  TestNetwork net({1, 2, 3});
  auto s = net.core(1).propose("x");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);

  // A candidate (or pre-candidate) has no leader either.
  net.core(1).campaign();
  ASSERT_EQ(net.core(1).role(), Role::kCandidate);
  s = net.core(1).propose("x");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
  EXPECT_EQ(net.core(1).log().last_index(), 1u) << "nothing was appended";

  NetworkOptions opt;
  opt.pre_vote = true;
  TestNetwork net2({1, 2, 3}, opt);
  net2.core(1).campaign();
  ASSERT_EQ(net2.core(1).role(), Role::kPreCandidate);
  s = net2.core(1).propose("x");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
}

// The leader bounds the bytes of uncommitted entries, so a leader cut off from its followers
// does not buffer without limit; the budget is released as entries commit and apply.
TEST(RaftReplication, UncommittedBytesBoundDropsProposals) {
  NetworkOptions opt;
  opt.max_uncommitted_entries_bytes = 100;
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  net.isolate(2);
  net.isolate(3);
  ASSERT_TRUE(net.core(1).propose(std::string(60, 'a')).has_value());
  net.stabilize();
  auto s = net.core(1).propose(std::string(60, 'b'));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kProposalDropped);
  EXPECT_TRUE(net.core(1).propose(std::string(40, 'c')).has_value()) << "60 + 40 fits exactly";
  net.stabilize();
  EXPECT_FALSE(net.core(1).propose("d").has_value());

  net.heal();
  net.tick(1);
  ASSERT_EQ(net.node(1).applied_data.size(), 2u);
  EXPECT_TRUE(net.core(1).propose(std::string(60, 'e')).has_value()) << "budget released on apply";
}

// An entry larger than the whole budget is still accepted when nothing is uncommitted, or it
// could never be proposed at all.
TEST(RaftReplication, OversizedProposalAcceptedWhenNothingIsUncommitted) {
  NetworkOptions opt;
  opt.max_uncommitted_entries_bytes = 10;
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose(std::string(50, 'x')).has_value());
  net.stabilize();
  EXPECT_EQ(net.node(2).applied_data.size(), 1u);
}

TEST(RaftReplication, EmptyProposalFromNetworkIsInvalid) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  pb::Message m = make_msg(pb::MSG_PROP, 2, 1, 0);
  auto s = net.core(1).step(m);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
}
// Under the lazy commit broadcast (a node that defers applies), a follower learns a commit
// index with the next append or heartbeat, unless it asked for each one at once because it
// serves watchers: then the leader sends it an empty append carrying the new commit index.
TEST(RaftReplication, AFollowerWithWatchersLearnsEachCommitAtOnceUnderTheLazyBroadcast) {
  NetworkOptions opt;
  opt.tweak = [](RaftConfig& cfg) { cfg.is_commit_broadcast_lazy = true; };
  TestNetwork net({1, 2, 3}, opt);
  net.core(2).set_wants_commit_eagerly(true);
  net.elect(1);
  for (const char* v : {"a", "b"}) {
    SCOPED_TRACE(v);
    ASSERT_TRUE(net.core(1).propose(v).has_value());
    net.stabilize();  // no tick: no heartbeat carries the commit
    const Index committed = net.core(1).log().committed();
    ASSERT_EQ(committed, net.core(1).log().last_index());
    EXPECT_EQ(net.core(2).log().committed(), committed);
    EXPECT_EQ(net.node(2).applied_data.back(), v);
    EXPECT_EQ(net.core(3).log().committed(), committed - 1);  // learns it with the next append
  }
  // Without watchers the follower goes back to learning commits lazily.
  net.core(2).set_wants_commit_eagerly(false);
  ASSERT_TRUE(net.core(1).propose("c").has_value());
  net.stabilize();
  EXPECT_EQ(net.core(2).log().committed(), net.core(1).log().committed() - 1);
}


// Proposals made between ready() and advance() are batched into one append per follower.
TEST(RaftReplication, ProposalsBeforeReadyShareOneAppend) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  net.clear_log();
  for (const char* v : {"a", "b", "c"}) ASSERT_TRUE(net.core(1).propose(v).has_value());
  net.stabilize();
  auto apps = net.sent_of(pb::MSG_APP, 1, 2);
  ASSERT_FALSE(apps.empty());
  EXPECT_EQ(apps[0].entries_size(), 3);
  EXPECT_EQ(net.node(2).applied_data, strings({"a", "b", "c"}));
}

// A message size limit splits a long catch-up into several appends, each still carrying at
// least one entry.
TEST(RaftReplication, MaxMessageSizeSplitsAppends) {
  NetworkOptions opt;
  opt.max_size_per_msg_bytes = 1;
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  net.isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(net.core(1).propose("v" + std::to_string(i)).has_value());
  net.stabilize();
  net.heal();
  net.clear_log();
  net.tick(1);
  for (const auto& m : net.sent_of(pb::MSG_APP, 1, 3)) EXPECT_LE(m.entries_size(), 1);
  EXPECT_EQ(net.node(3).applied_data.size(), 5u);
}

}  // namespace
}  // namespace aspen::raft
