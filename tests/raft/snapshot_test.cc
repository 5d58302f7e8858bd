// Snapshots (thesis §5): catching up a follower whose missing entries were compacted away.
#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

// Three nodes; node 3 misses ten entries, then the leader snapshots and compacts its log so
// that the only way to catch node 3 up is a snapshot.
struct CompactedLeader {
  TestNetwork net{std::vector<NodeId>{1, 2, 3}};
  Index snap_index = 0;

  CompactedLeader() {
    net.elect(1);
    net.isolate(3);
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(net.core(1).propose("v" + std::to_string(i)).has_value());
    net.stabilize();
    TestNode& leader = net.node(1);
    snap_index = leader.applied;
    EXPECT_EQ(snap_index, 12u);
    pb::ConfState cs = make_conf_state({1, 2, 3});
    EXPECT_TRUE(leader.storage->create_snapshot(snap_index, &cs, "state@12").has_value());
    EXPECT_TRUE(leader.storage->compact(snap_index).has_value());
    EXPECT_EQ(net.core(1).log().first_index(), snap_index + 1);
    net.heal();
    net.clear_log();
  }
};

TEST(RaftSnapshot, FollowerBehindCompactedLogCatchesUpViaSnapshot) {
  CompactedLeader s;
  TestNetwork& net = s.net;
  net.tick(1);  // a heartbeat round: node 3 answers, the leader finds its entries compacted

  auto snaps = net.sent_of(pb::MSG_SNAP, 1, 3);
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].snapshot().metadata().index(), s.snap_index);
  EXPECT_EQ(net.node(3).snapshots_installed, 1u);
  const auto& stored = net.node(3).storage->snapshot();
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->data(), "state@12");
  EXPECT_EQ(ids_of(net.node(3).storage->initial_state().conf_state.voters()), (std::set<NodeId>{1, 2, 3}));
  EXPECT_EQ(net.core(3).log().committed(), s.snap_index);
  EXPECT_EQ(net.core(3).log().applied(), s.snap_index);
  EXPECT_TRUE(net.node(3).applied_data.empty()) << "the entries arrived inside the snapshot";

  const Progress& pr = net.core(1).tracker().progress.at(3);
  EXPECT_EQ(pr.state, ProgressState::kReplicate);
  EXPECT_EQ(pr.match, s.snap_index);

  // Replication continues normally after the snapshot.
  ASSERT_TRUE(net.core(1).propose("after").has_value());
  net.stabilize();
  EXPECT_EQ(net.node(3).applied_data, std::vector<std::string>{"after"});

  // The follower's disk is consistent: a restart from it succeeds.
  RaftConfig cfg = net.config_for(3, net.node(3).applied);
  auto restarted = RaftCore::create(cfg, net.node(3).storage.get());
  ASSERT_TRUE(restarted.has_value()) << restarted.error().to_string();
  EXPECT_EQ((*restarted)->log().first_index(), s.snap_index + 1);
  EXPECT_EQ((*restarted)->log().last_index(), net.core(1).log().last_index());
}

// A snapshot that failed to send (report_snapshot(failed)) returns the follower to probe, and
// the leader tries again later.
TEST(RaftSnapshot, ReportSnapshotFailureReturnsProgressToProbe) {
  CompactedLeader s;
  TestNetwork& net = s.net;
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_SNAP; };
  net.tick(1);
  const Progress& pr = net.core(1).tracker().progress.at(3);
  ASSERT_EQ(pr.state, ProgressState::kSnapshot);
  EXPECT_EQ(pr.pending_snapshot, s.snap_index);
  EXPECT_TRUE(pr.is_paused()) << "nothing more is sent while a snapshot is in flight";
  net.tick(2);
  EXPECT_EQ(net.sent_of(pb::MSG_SNAP, 1, 3).size(), 1u) << "no resend until the transport reports";

  net.core(1).report_snapshot(3, /*failed=*/true);
  EXPECT_EQ(pr.state, ProgressState::kProbe);
  EXPECT_EQ(pr.pending_snapshot, 0u);
  EXPECT_FALSE(pr.is_paused());

  net.drop_if = nullptr;
  net.tick(1);
  EXPECT_EQ(net.sent_of(pb::MSG_SNAP, 1, 3).size(), 2u);
  EXPECT_EQ(net.node(3).snapshots_installed, 1u);
  EXPECT_EQ(pr.state, ProgressState::kReplicate);
  EXPECT_EQ(pr.match, net.core(1).log().last_index());
}

// A successful report moves the follower to probe from the snapshot index but waits for the
// follower's own answer before sending more.
TEST(RaftSnapshot, ReportSnapshotSuccessProbesAfterTheSnapshotIndex) {
  CompactedLeader s;
  TestNetwork& net = s.net;
  net.drop_if = [](const pb::Message& m) { return m.type() == pb::MSG_SNAP; };
  net.tick(1);
  net.core(1).report_snapshot(3, /*failed=*/false);
  const Progress& pr = net.core(1).tracker().progress.at(3);
  EXPECT_EQ(pr.state, ProgressState::kProbe);
  EXPECT_EQ(pr.next, s.snap_index + 1);
  EXPECT_TRUE(pr.is_paused());
  // Reports for a peer not in snapshot state are ignored.
  net.core(1).report_snapshot(2, true);
  EXPECT_EQ(net.core(1).tracker().progress.at(2).state, ProgressState::kReplicate);
  // The snapshot was in fact lost: the follower's rejection leads to a new one.
  net.drop_if = nullptr;
  net.tick(2);
  EXPECT_EQ(net.node(3).snapshots_installed, 1u);
  EXPECT_EQ(pr.match, net.core(1).log().last_index());
}

// A snapshot no newer than the follower's commit index is ignored: it answers with its commit
// index and installs nothing.
TEST(RaftSnapshot, StaleSnapshotIsIgnored) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  for (const char* v : {"a", "b"}) ASSERT_TRUE(net.core(1).propose(v).has_value());
  net.stabilize();
  ASSERT_EQ(net.core(2).log().committed(), 4u);

  pb::Message m = make_msg(pb::MSG_SNAP, 1, 2, net.core(1).term());
  m.mutable_snapshot()->mutable_metadata()->set_index(3);
  m.mutable_snapshot()->mutable_metadata()->set_term(2);
  *m.mutable_snapshot()->mutable_metadata()->mutable_conf_state() = make_conf_state({1, 2});
  ASSERT_TRUE(net.core(2).step(m).has_value());
  auto out = net.handle_ready(2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type(), pb::MSG_APP_RESP);
  EXPECT_FALSE(out[0].reject());
  EXPECT_EQ(out[0].index(), 4u);
  EXPECT_EQ(net.node(2).snapshots_installed, 0u);
  EXPECT_EQ(net.core(2).log().last_index(), 4u);
  EXPECT_EQ(net.core(2).tracker().config.voters.incoming.size(), 3u) << "membership untouched";
}

// A snapshot whose last entry the follower already has only fast-forwards its commit index;
// the entries after it are kept.
TEST(RaftSnapshot, SnapshotMatchingTheLogOnlyAdvancesCommit) {
  TestNetwork net{std::vector<NodeId>{}};
  auto st = bootstrap_storage(make_conf_state({1, 2}));
  ASSERT_TRUE(st->append({make_entry(2, 2, "a"), make_entry(3, 2, "b"), make_entry(4, 2, "c")}).has_value());
  pb::HardState hs;
  hs.set_term(2);
  hs.set_commit(1);
  st->set_hard_state(hs);
  net.add_node(2, std::move(st), 1);

  pb::Message m = make_msg(pb::MSG_SNAP, 1, 2, 2);
  m.mutable_snapshot()->mutable_metadata()->set_index(3);
  m.mutable_snapshot()->mutable_metadata()->set_term(2);
  *m.mutable_snapshot()->mutable_metadata()->mutable_conf_state() = make_conf_state({1, 2});
  ASSERT_TRUE(net.core(2).step(m).has_value());
  auto out = net.handle_ready(2);
  EXPECT_EQ(net.node(2).snapshots_installed, 0u);
  EXPECT_EQ(net.core(2).log().committed(), 3u);
  EXPECT_EQ(net.core(2).log().last_index(), 4u);
  EXPECT_EQ(net.node(2).applied_data, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].index(), 3u);
}

// A snapshot carries the membership: installing one replaces the follower's configuration.
TEST(RaftSnapshot, InstalledSnapshotReplacesMembership) {
  TestNetwork net{std::vector<NodeId>{}};
  net.add_empty_node(4);
  pb::Message m = make_msg(pb::MSG_SNAP, 1, 4, 3);
  m.mutable_snapshot()->mutable_metadata()->set_index(20);
  m.mutable_snapshot()->mutable_metadata()->set_term(3);
  m.mutable_snapshot()->set_data("state@20");
  *m.mutable_snapshot()->mutable_metadata()->mutable_conf_state() = make_conf_state({1, 2, 3}, {4});
  ASSERT_TRUE(net.core(4).step(m).has_value());
  auto out = net.handle_ready(4);
  EXPECT_EQ(net.node(4).snapshots_installed, 1u);
  EXPECT_EQ(net.node(4).storage->first_index(), 21u);
  EXPECT_EQ(net.core(4).log().committed(), 20u);
  EXPECT_TRUE(net.core(4).tracker().config.learners.contains(4));
  EXPECT_EQ(net.core(4).tracker().config.voters.incoming, (VoterSet{1, 2, 3}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].index(), 20u);
  EXPECT_FALSE(out[0].reject());
  EXPECT_EQ(net.core(4).leader(), 1u);
}

}  // namespace
}  // namespace aspen::raft
