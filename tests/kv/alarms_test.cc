// Storage alarms: which commands add data (refused while an alarm is raised), how alarms are
// kept and read, and what a refused write is told.
#include <gtest/gtest.h>

#include "kv/alarms.h"
#include "kv/mem_tables.h"
#include "kv/state_machine.h"

namespace aspen::kv {
namespace {

kvpb::StorageAlarm quota_alarm(uint64_t member) {
  kvpb::StorageAlarm a;
  a.set_member_id(member);
  a.set_used_bytes(uint64_t{17} << 20);
  a.set_quota_bytes(uint64_t{16} << 20);
  return a;
}

TEST(StorageAlarm, RefusalNamesTheMemberItsNumbersAndTheWayOut) {
  const Error quota = alarm_refusal(quota_alarm(2));
  EXPECT_EQ(quota.code(), ErrorCode::kStorageFull);
  for (std::string_view part : {"member 2", "17.0 MiB", "quota of 16.0 MiB", "alarm disarm", "reads and deletes"}) {
    EXPECT_NE(quota.message().find(part), std::string::npos) << part << " not in: " << quota.message();
  }
  kvpb::StorageAlarm disk;
  disk.set_member_id(3);
  disk.set_disk_free_bytes(uint64_t{10} << 20);
  disk.set_min_free_bytes(uint64_t{64} << 20);
  disk.set_used_bytes(1);
  disk.set_quota_bytes(uint64_t{1} << 30);
  const Error low = alarm_refusal(disk);
  for (std::string_view part : {"member 3", "10.0 MiB free", "reserve of 64.0 MiB"}) {
    EXPECT_NE(low.message().find(part), std::string::npos) << part << " not in: " << low.message();
  }
}

TEST(StorageAlarm, GrowsStoreNamesEveryCommandThatAddsData) {
  auto with = [](auto fill) {
    kvpb::Command c;
    fill(c);
    return grows_store(c);
  };
  EXPECT_TRUE(with([](kvpb::Command& c) { c.mutable_put()->set_key("k"); }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_put()->set_key(alarm_key(1)); }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_put()->set_key("__aspen/auth/revoked/00"); }));
  EXPECT_TRUE(with([](kvpb::Command& c) { c.mutable_cas()->set_key("k"); }));
  EXPECT_TRUE(with([](kvpb::Command& c) { c.mutable_lease_grant()->set_ttl_ms(5000); }));
  EXPECT_TRUE(with([](kvpb::Command& c) {
    c.mutable_set_multi()->add_puts()->set_key("__aspen/x");
    c.mutable_set_multi()->add_puts()->set_key("k");
  }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_delete_()->set_key("k"); }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_delete_multi()->add_keys("k"); }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_cad()->set_key("k"); }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_lease_revoke()->set_id(1); }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_lease_keepalive()->set_id(1); }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_lease_expire()->add_ids(1); }));
  EXPECT_TRUE(with([](kvpb::Command& c) { c.mutable_txn()->add_success()->mutable_put()->set_key("k"); }));
  EXPECT_FALSE(with([](kvpb::Command& c) { c.mutable_txn()->add_success()->mutable_delete_()->set_key("k"); }));
}

TEST(StorageAlarm, AlarmsAreListedInMemberOrderAndAnUnreadableOneStillCounts) {
  MemKvTables t;
  for (uint64_t id : {12u, 3u}) {
    kvpb::KeyValue kv;
    kv.set_key(alarm_key(id));
    kv.set_value(quota_alarm(id).SerializeAsString());
    ASSERT_TRUE(t.put(kv));
  }
  kvpb::KeyValue garbled;
  garbled.set_key(alarm_key(7));
  garbled.set_value("\xff\xff not a record");
  ASSERT_TRUE(t.put(garbled));
  kvpb::KeyValue other;  // a neighbour of the prefix is not an alarm
  other.set_key("__aspen/alarn");
  ASSERT_TRUE(t.put(other));
  auto r = read_range(t, alarm_range());
  ASSERT_TRUE(r);
  auto all = decode_alarms(*r);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].member_id(), 3u);
  EXPECT_EQ(all[1].member_id(), 7u);
  EXPECT_EQ(all[1].quota_bytes(), 0u);
  EXPECT_EQ(all[2].member_id(), 12u);
  EXPECT_EQ(all[2].used_bytes(), uint64_t{17} << 20);
  auto first = read_range(t, alarm_range(1));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->kvs_size(), 1);
}

}  // namespace
}  // namespace aspen::kv
