// next_leader_duty: the writes a leader makes to keep the cluster id and member records
// current, and when it makes none.
#include "node/leader_duties.h"
#include "node/request_auth.h"

#include <gtest/gtest.h>

namespace aspen::node {
namespace {

DutyInput due_leader() {
  DutyInput in;
  in.is_leader = true;
  in.now_ms = 10000;
  in.last_duty_ms = 0;
  in.cluster_id = "c-1";
  in.own_record_key = node_record_key(1);
  in.own_record_wanted = "record-now";
  in.own_record = "record-now";
  return in;
}

TEST(LeaderDuties, NothingToDoWhenEverythingIsCurrent) {
  EXPECT_FALSE(next_leader_duty(due_leader(), Knobs{}).has_value());
}

TEST(LeaderDuties, OnlyALeaderWithNoDutyInFlightAndTheIntervalOverActs) {
  Knobs k;
  DutyInput in = due_leader();
  in.own_record = std::nullopt;  // something to do
  EXPECT_TRUE(next_leader_duty(in, k).has_value());
  DutyInput follower = in;
  follower.is_leader = false;
  EXPECT_FALSE(next_leader_duty(follower, k).has_value());
  DutyInput busy = in;
  busy.is_duty_in_flight = true;
  EXPECT_FALSE(next_leader_duty(busy, k).has_value());
  DutyInput early = in;
  early.last_duty_ms = in.now_ms - k.leader_duty_interval_ms + 1;
  EXPECT_FALSE(next_leader_duty(early, k).has_value());
  early.last_duty_ms = in.now_ms - k.leader_duty_interval_ms;
  EXPECT_TRUE(next_leader_duty(early, k).has_value());
}

// The id is set with a CAS that requires its absence: two leaders of successive terms can
// never both set one.
TEST(LeaderDuties, ClusterWithoutAnIdGetsOneByCasOnAbsence) {
  DutyInput in = due_leader();
  in.cluster_id.clear();
  in.fresh_cluster_id = "fresh";
  auto d = next_leader_duty(in, Knobs{});
  ASSERT_TRUE(d.has_value());
  ASSERT_TRUE(d->command.has_cas());
  EXPECT_EQ(d->command.cas().key(), kClusterIdKey);
  EXPECT_TRUE(d->command.cas().expect_absent());
  EXPECT_EQ(d->command.cas().new_value(), "fresh");
}

// With the root key `cluster init` brought, the id and the key are written in one
// transaction that requires the id's absence: no cluster exists without its root key.
TEST(LeaderDuties, ClusterIdAndRootKeyAreWrittenTogether) {
  DutyInput in = due_leader();
  in.cluster_id.clear();
  in.fresh_cluster_id = "fresh";
  in.root_key = std::string(32, 'k');
  auto d = next_leader_duty(in, Knobs{});
  ASSERT_TRUE(d.has_value());
  ASSERT_TRUE(d->command.has_txn());
  const auto& txn = d->command.txn();
  ASSERT_EQ(txn.compares_size(), 1);
  EXPECT_EQ(txn.compares(0).key(), kClusterIdKey);
  EXPECT_EQ(txn.compares(0).target(), kvpb::Compare::TARGET_VERSION);
  EXPECT_EQ(txn.compares(0).number(), 0u);
  ASSERT_EQ(txn.success_size(), 2);
  EXPECT_EQ(txn.success(0).put().value(), "fresh");
  EXPECT_EQ(txn.success(1).put().key(), kAuthRootKeyKey);
  EXPECT_EQ(txn.success(1).put().value(), in.root_key);
  EXPECT_EQ(txn.failure_size(), 0);
}

TEST(LeaderDuties, OwnRecordMissingOrStaleIsRewritten) {
  for (std::optional<std::string> stored : {std::optional<std::string>{}, std::optional<std::string>{"old"}}) {
    DutyInput in = due_leader();
    in.own_record = stored;
    auto d = next_leader_duty(in, Knobs{});
    ASSERT_TRUE(d.has_value());
    ASSERT_TRUE(d->command.has_put());
    EXPECT_EQ(d->command.put().key(), node_record_key(1));
    EXPECT_EQ(d->command.put().value(), "record-now");
    EXPECT_FALSE(d->is_for_another_member);
  }
}

TEST(LeaderDuties, MemberThatMovedGetsItsRecordRewrittenAfterTheLeadersOwn) {
  DutyInput in = due_leader();
  PeerInfo moved;
  moved.id = 3;
  moved.addrs.push_back(transport::SocketAddr{"127.0.0.1", 7003});
  in.outdated = moved;
  in.own_record = "old";
  auto first = next_leader_duty(in, Knobs{});
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->command.put().key(), node_record_key(1)) << "its own record first";
  in.own_record = "record-now";
  auto second = next_leader_duty(in, Knobs{});
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->command.put().key(), node_record_key(3));
  EXPECT_EQ(second->command.put().value(), encode_node_record(3, moved.key, moved.addrs));
  EXPECT_TRUE(second->is_for_another_member);
  EXPECT_NE(second->what.find("127.0.0.1:7003"), std::string::npos);
}

}  // namespace
}  // namespace aspen::node
