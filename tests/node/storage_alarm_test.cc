// When a node raises the storage alarm: past its quota or below its free-disk reserve, once,
// as a member, with nothing already raised or on its way.
#include <gtest/gtest.h>

#include "node/storage_alarm.h"

namespace aspen::node {
namespace {

StorageCheckInput healthy() {
  StorageCheckInput in;
  in.self = 2;
  in.is_member = true;
  in.now_ms = 5000;
  in.used_bytes = 10 << 20;
  in.quota_bytes = 16 << 20;
  in.disk_free_bytes = uint64_t{10} << 30;
  in.min_free_bytes = 64 << 20;
  return in;
}

TEST(StorageAlarmCheck, NothingIsRaisedWithinTheLimits) {
  EXPECT_FALSE(is_over_storage_limit(healthy()));
  EXPECT_FALSE(storage_alarm_to_raise(healthy()).has_value());
  auto at_quota = healthy();
  at_quota.used_bytes = at_quota.quota_bytes;  // at it is not past it
  EXPECT_FALSE(storage_alarm_to_raise(at_quota).has_value());
}

TEST(StorageAlarmCheck, PastTheQuotaRaisesAnAlarmWithTheNumbers) {
  auto in = healthy();
  in.used_bytes = in.quota_bytes + 1;
  auto a = storage_alarm_to_raise(in);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->member_id(), 2u);
  EXPECT_EQ(a->raised_at_ms(), 5000u);
  EXPECT_EQ(a->used_bytes(), in.used_bytes);
  EXPECT_EQ(a->quota_bytes(), in.quota_bytes);
  EXPECT_EQ(a->disk_free_bytes(), in.disk_free_bytes);
  EXPECT_EQ(a->min_free_bytes(), in.min_free_bytes);
}

TEST(StorageAlarmCheck, LowFreeDiskRaisesAnAlarm) {
  auto in = healthy();
  in.disk_free_bytes = in.min_free_bytes - 1;
  EXPECT_TRUE(is_over_storage_limit(in));
  EXPECT_TRUE(storage_alarm_to_raise(in).has_value());
}

TEST(StorageAlarmCheck, RaisedOnceAndOnlyByAMember) {
  auto over = healthy();
  over.used_bytes = over.quota_bytes * 2;
  auto kept = over;
  kept.has_own_alarm = true;
  EXPECT_FALSE(storage_alarm_to_raise(kept).has_value());
  auto in_flight = over;
  in_flight.is_raise_in_flight = true;
  EXPECT_FALSE(storage_alarm_to_raise(in_flight).has_value());
  auto learner_to_be = over;  // not in the membership: its alarm would bind no one
  learner_to_be.is_member = false;
  EXPECT_FALSE(storage_alarm_to_raise(learner_to_be).has_value());
  // Disarmed while still over: raised again at the next check.
  EXPECT_TRUE(storage_alarm_to_raise(over).has_value());
}

}  // namespace
}  // namespace aspen::node
