// The bounds on leases: how many the cluster holds, how many keys one lease holds (its
// key_count, kept exact through attach, move, delete and revoke), and paged listing.
#include <gtest/gtest.h>

#include "core/limits.h"
#include "kv/commands.h"
#include "kv/deterministic_store.h"
#include "kv/mem_tables.h"
#include "kv/state_machine.h"

namespace aspen::kv {
namespace {

uint64_t key_count(DeterministicKeyValueStore& s, uint64_t lease_id) {
  auto leases = s.list_leases();
  EXPECT_TRUE(leases.has_value());
  for (const auto& l : *leases) {
    if (l.id() == lease_id) return l.key_count();
  }
  ADD_FAILURE() << "no lease " << lease_id;
  return 0;
}

TEST(KvLeaseLimits, KeyCountFollowsAttachMoveDeleteAndRePut) {
  DeterministicKeyValueStore s;
  auto a = lease_grant(s, 60000);
  auto b = lease_grant(s, 60000);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(put(s, "k1", "1", a->id()));
  ASSERT_TRUE(put(s, "k2", "1", a->id()));
  ASSERT_TRUE(put(s, "k2", "again", a->id()));  // same key, same lease: not a new key
  EXPECT_EQ(key_count(s, a->id()), 2u);
  ASSERT_TRUE(put(s, "k2", "moved", b->id()));
  EXPECT_EQ(key_count(s, a->id()), 1u);
  EXPECT_EQ(key_count(s, b->id()), 1u);
  ASSERT_TRUE(put(s, "k1", "no lease"));  // re-put without a lease detaches it
  EXPECT_EQ(key_count(s, a->id()), 0u);
  ASSERT_TRUE(del(s, "k2"));
  EXPECT_EQ(key_count(s, b->id()), 0u);
}

TEST(KvLeaseLimits, LeaseRefusesKeysPastItsLimitAndChangesNothing) {
  DeterministicKeyValueStore s;
  auto lease = lease_grant(s, 60000);
  ASSERT_TRUE(lease);
  for (size_t i = 0; i < limits::kMaxKeysPerLease; ++i) {
    ASSERT_TRUE(put(s, "k" + std::to_string(i), "v", lease->id())) << i;
  }
  EXPECT_EQ(key_count(s, lease->id()), limits::kMaxKeysPerLease);
  auto over = put(s, "one-more", "v", lease->id());
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(over.error().message().find("the limit"), std::string::npos) << over.error().message();
  EXPECT_FALSE(get(s, "one-more")->has_value());
  // A key already on the lease may still be rewritten.
  EXPECT_TRUE(put(s, "k0", "rewritten", lease->id()).has_value());
  // A multi-key command that would pass the limit changes nothing at all.
  kvpb::Command cmd;
  auto* plain = cmd.mutable_set_multi()->add_puts();
  plain->set_key("plain");
  plain->set_value("v");
  auto* leased = cmd.mutable_set_multi()->add_puts();
  leased->set_key("another");
  leased->set_value("v");
  leased->set_lease_id(lease->id());
  auto multi = s.execute(cmd);
  ASSERT_FALSE(multi.has_value());
  EXPECT_FALSE(get(s, "plain")->has_value());
  // Deleting a key makes room again; revoking deletes every key.
  ASSERT_TRUE(del(s, "k1"));
  EXPECT_TRUE(put(s, "one-more", "v", lease->id()).has_value());
  ASSERT_TRUE(lease_revoke(s, lease->id()).has_value());
  EXPECT_FALSE(get(s, "k0")->has_value());
  EXPECT_FALSE(get(s, "one-more")->has_value());
}

TEST(KvLeaseLimits, GrantIsRefusedWhenTheClusterHoldsTheMostLeases) {
  MemKvTables t;
  for (uint64_t id = 1; id < limits::kMaxLeases; ++id) {
    kvpb::Lease l;
    l.set_id(id);
    l.set_ttl_ms(1000);
    ASSERT_TRUE(t.put_lease(l).has_value());
  }
  kvpb::Command grant;
  grant.set_timestamp_ms(1);
  grant.mutable_lease_grant()->set_ttl_ms(1000);
  auto last = apply_command(t, grant, limits::kMaxLeases + 10);
  ASSERT_TRUE(last.has_value());
  EXPECT_TRUE(last->succeeded()) << last->error_message();
  auto refused = apply_command(t, grant, limits::kMaxLeases + 11);
  ASSERT_TRUE(refused.has_value());
  EXPECT_FALSE(refused->succeeded());
  EXPECT_NE(refused->error_message().find("100000 leases (the limit)"), std::string::npos) << refused->error_message();
  EXPECT_EQ(*t.lease_count(), limits::kMaxLeases);
}

TEST(KvLeaseLimits, LeasesAreListedInPagesByIdOrder) {
  MemKvTables t;
  for (uint64_t id : {5, 1, 9, 3, 7}) {
    kvpb::Lease l;
    l.set_id(id);
    ASSERT_TRUE(t.put_lease(l).has_value());
  }
  auto first = t.list_leases(0, 2);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id(), 1u);
  EXPECT_EQ((*first)[1].id(), 3u);
  auto next = t.list_leases(3, 10);
  ASSERT_EQ(next->size(), 3u);
  EXPECT_EQ((*next)[0].id(), 5u);
  EXPECT_TRUE(t.list_leases(9, 10)->empty());
  EXPECT_TRUE(t.list_leases(UINT64_MAX, 10)->empty());
}

}  // namespace
}  // namespace aspen::kv
