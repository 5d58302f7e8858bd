// The Store contract, run against both implementations (MemStore and LmdbStore).
#include <gtest/gtest.h>

#include <memory>

#include "raft/confchange.h"
#include "storage/lmdb_store.h"
#include "storage/mem_store.h"
#include "store_test_util.h"

namespace aspen::storage {
namespace {

using testing::append_and_apply;
using testing::put_entry;
using testing::TempDir;
using testing::value_of;
using testing::voters;

struct MemFactory {
  std::unique_ptr<Store> make() { return std::make_unique<MemStore>(); }
};

struct LmdbFactory {
  TempDir dir;
  std::unique_ptr<Store> make() {
    auto s = LmdbStore::open(LmdbOptions{dir.path() + "/db", uint64_t{256} << 20});
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
    return std::move(*s);
  }
};

template <typename F>
class StoreContract : public ::testing::Test {
 protected:
  F factory;
};

using Factories = ::testing::Types<MemFactory, LmdbFactory>;
TYPED_TEST_SUITE(StoreContract, Factories);

TYPED_TEST(StoreContract, BootstrapSetsTheFoundingMembership) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1, 2, 3})).has_value());
  EXPECT_EQ(s->first_index(), 2u);
  EXPECT_EQ(s->last_index(), 1u);
  EXPECT_EQ(*s->term(1), 1u);
  EXPECT_EQ(s->applied_index(), 1u);
  auto st = s->initial_state();
  EXPECT_EQ(st.hard_state.commit(), 1u);
  EXPECT_EQ(st.conf_state.voters_size(), 3);
  EXPECT_FALSE(s->bootstrap(voters({1})).has_value());  // only once
}

TYPED_TEST(StoreContract, WriteAppendsAndAppliesInOneBatch) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  auto out = append_and_apply(*s, 2, 11, 2);
  ASSERT_TRUE(out.has_value()) << out.error().to_string();
  EXPECT_EQ(out->applied.size(), 10u);
  EXPECT_EQ(out->applied.back().result.revision(), 11u);
  EXPECT_EQ(s->last_index(), 11u);
  EXPECT_EQ(s->applied_index(), 11u);
  EXPECT_EQ(value_of(*s, "k7"), "v7");
  auto ents = s->entries(2, 12, kNoLimit);
  ASSERT_TRUE(ents.has_value());
  EXPECT_EQ(ents->size(), 10u);
  EXPECT_EQ(*s->term(5), 2u);
  // Size-limited reads return at least one entry.
  EXPECT_EQ(s->entries(2, 12, 1)->size(), 1u);
}

TYPED_TEST(StoreContract, ReappliedEntriesAreSkipped) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*s, 2, 5, 2).has_value());
  std::vector<pb::Entry> again{put_entry(4, 2, "k4", "changed"), put_entry(5, 2, "k5", "changed")};
  WriteBatch b;
  b.committed = &again;
  auto out = s->write(b);
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(out->applied.empty());
  EXPECT_EQ(value_of(*s, "k4"), "v4");
}

TYPED_TEST(StoreContract, ConflictingSuffixIsReplaced) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents;
  for (Index i = 2; i <= 6; ++i) ents.push_back(put_entry(i, 2, "k", "old"));
  WriteBatch b;
  b.entries = &ents;
  ASSERT_TRUE(s->write(b).has_value());
  // A newer leader's entries from index 4 on replace 4..6 (§5.3).
  std::vector<pb::Entry> newer{put_entry(4, 3, "k", "new")};
  WriteBatch b2;
  b2.entries = &newer;
  ASSERT_TRUE(s->write(b2).has_value());
  EXPECT_EQ(s->last_index(), 4u);
  EXPECT_EQ(*s->term(4), 3u);
  EXPECT_EQ(*s->term(3), 2u);
  EXPECT_EQ(s->term(5).error().code(), ErrorCode::kUnavailable);
}

TYPED_TEST(StoreContract, AppendWithAGapIsRefused) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> gap{put_entry(5, 2, "k", "v")};
  WriteBatch b;
  b.entries = &gap;
  EXPECT_FALSE(s->write(b).has_value());
  EXPECT_EQ(s->last_index(), 1u);
}

TYPED_TEST(StoreContract, CompactionDropsOldEntriesButKeepsTheirBoundaryTerm) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*s, 2, 20, 2).has_value());
  ASSERT_TRUE(s->compact(15).has_value());
  EXPECT_EQ(s->first_index(), 16u);
  EXPECT_EQ(*s->term(15), 2u);
  EXPECT_EQ(s->term(14).error().code(), ErrorCode::kCompacted);
  EXPECT_EQ(s->entries(10, 20, kNoLimit).error().code(), ErrorCode::kCompacted);
  EXPECT_EQ(s->entries(16, 21, kNoLimit)->size(), 5u);
  EXPECT_FALSE(s->compact(25).has_value());  // beyond applied
}

TYPED_TEST(StoreContract, ConfChangeEntriesUpdateTheStoredMembership) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1, 2, 3})).has_value());
  pb::ConfChange cc;
  auto* c = cc.add_changes();
  c->set_type(pb::CONF_CHANGE_ADD_LEARNER);
  c->set_node_id(4);
  pb::Entry e;
  e.set_index(2);
  e.set_term(2);
  e.set_type(pb::ENTRY_CONF_CHANGE);
  e.set_data(cc.SerializeAsString());
  std::vector<pb::Entry> ents{e};
  WriteBatch b;
  b.entries = &ents;
  b.committed = &ents;
  ASSERT_TRUE(s->write(b).has_value());
  EXPECT_EQ(s->conf_state().learners_size(), 1);
  EXPECT_EQ(s->initial_state().conf_state.learners(0), 4u);
}

TYPED_TEST(StoreContract, SnapshotMovesTheWholeStateToAnotherStore) {
  auto a = this->factory.make();
  ASSERT_TRUE(a->bootstrap(voters({1, 2})).has_value());
  ASSERT_TRUE(append_and_apply(*a, 2, 300, 3).has_value());
  kvpb::Command grant;
  grant.set_timestamp_ms(5);
  grant.mutable_lease_grant()->set_id(77);
  grant.mutable_lease_grant()->set_ttl_ms(10000);
  kvpb::Command leased;
  leased.set_timestamp_ms(5);
  leased.mutable_put()->set_key("leased");
  leased.mutable_put()->set_lease_id(77);
  std::vector<pb::Entry> ents(2);
  ents[0].set_index(301);
  ents[0].set_term(3);
  ents[0].set_data(grant.SerializeAsString());
  ents[1].set_index(302);
  ents[1].set_term(3);
  ents[1].set_data(leased.SerializeAsString());
  WriteBatch wb;
  wb.entries = &ents;
  wb.committed = &ents;
  ASSERT_TRUE(a->write(wb).has_value());
  auto snap = a->snapshot();
  ASSERT_TRUE(snap.has_value()) << snap.error().to_string();
  EXPECT_EQ(snap->metadata().index(), 302u);
  EXPECT_EQ(snap->metadata().term(), 3u);

  MemStore b;  // installs into either kind; the format is shared
  WriteBatch install;
  install.snapshot = &*snap;
  ASSERT_TRUE(b.write(install).has_value());
  EXPECT_EQ(b.applied_index(), 302u);
  EXPECT_EQ(b.first_index(), 303u);
  EXPECT_EQ(*b.term(302), 3u);
  EXPECT_EQ(value_of(b, "k250"), "v250");
  EXPECT_EQ(b.list_leases()->size(), 1u);
  EXPECT_EQ(b.conf_state().voters_size(), 2);
  // Revoking the lease on the receiver deletes the leased key: the index came across too.
  kvpb::Command revoke;
  revoke.mutable_lease_revoke()->set_id(77);
  std::vector<pb::Entry> more(1);
  more[0].set_index(303);
  more[0].set_term(3);
  more[0].set_data(revoke.SerializeAsString());
  WriteBatch wb2;
  wb2.entries = &more;
  wb2.committed = &more;
  ASSERT_TRUE(b.write(wb2).has_value());
  EXPECT_FALSE(value_of(b, "leased").has_value());
}

TYPED_TEST(StoreContract, CorruptSnapshotIsRefusedAndChangesNothing) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*s, 2, 4, 2).has_value());
  pb::Snapshot bad;
  bad.mutable_metadata()->set_index(100);
  bad.mutable_metadata()->set_term(5);
  bad.set_data("\x05garbage-that-is-not-a-chunk");
  WriteBatch b;
  b.snapshot = &bad;
  auto r = s->write(b);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorruption);
  EXPECT_EQ(s->applied_index(), 4u);
  EXPECT_EQ(value_of(*s, "k3"), "v3");
}

TEST(ConfState, NextConfStateMatchesTheCore) {
  pb::ConfState cs = voters({1, 2, 3});
  pb::ConfChange cc;
  auto* a = cc.add_changes();
  a->set_type(pb::CONF_CHANGE_ADD_VOTER);
  a->set_node_id(4);
  auto* r = cc.add_changes();
  r->set_type(pb::CONF_CHANGE_REMOVE_NODE);
  r->set_node_id(1);
  pb::ConfState joint = raft::next_conf_state(cs, cc);
  EXPECT_EQ(joint.voters_outgoing_size(), 3);
  EXPECT_TRUE(joint.auto_leave());
  pb::ConfState left = raft::next_conf_state(joint, pb::ConfChange{});
  EXPECT_EQ(left.voters_size(), 3);
  EXPECT_EQ(left.voters_outgoing_size(), 0);
  // An invalid change leaves the membership as it was.
  pb::ConfChange remove_all;
  for (uint64_t id : {2, 3, 4}) {
    auto* c = remove_all.add_changes();
    c->set_type(pb::CONF_CHANGE_REMOVE_NODE);
    c->set_node_id(id);
  }
  EXPECT_EQ(raft::next_conf_state(left, remove_all).voters_size(), 3);
}

}  // namespace
}  // namespace aspen::storage

namespace aspen::storage {
namespace {

TYPED_TEST(StoreContract, TriggerSnapshotCompactsToTheAppliedIndex) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(testing::voters({1, 2})).has_value());
  ASSERT_TRUE(testing::append_and_apply(*s, 2, 40, 3).has_value());
  auto meta = s->trigger_snapshot();
  ASSERT_TRUE(meta.has_value()) << meta.error().to_string();
  EXPECT_EQ(meta->index(), 40u);
  EXPECT_EQ(meta->term(), 3u);
  EXPECT_EQ(s->first_index(), 41u);
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ(snap->metadata().index(), 40u);
}

}  // namespace
}  // namespace aspen::storage
