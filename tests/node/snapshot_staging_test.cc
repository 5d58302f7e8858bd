// SnapshotReception and StagedSnapshots: the rules for a snapshot received on a stream of its
// own, from its first frame until the storage thread installed it.
#include "node/snapshot_staging.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "core/encoding.h"

namespace aspen::node {
namespace {

using Kind = SnapshotReception::Frame::Kind;

std::string chunk(std::string_view data) { return std::string(1, kSnapshotChunkTag) + std::string(data); }

pb::Message snap_message(NodeId from, NodeId to, Index index, Term term) {
  pb::Message m;
  m.set_type(pb::MSG_SNAP);
  m.set_from(from);
  m.set_to(to);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  m.mutable_snapshot()->mutable_metadata()->set_term(term);
  return m;
}

std::string final_frame(const pb::Message& m) { return std::string(1, kSnapshotMessageTag) + m.SerializeAsString(); }

TEST(SnapshotReception, ChunksAreStoredLengthPrefixedAndTheFinalMessageIsStepped) {
  SnapshotReception in(1 << 20);
  auto a = in.on_frame(chunk("hello"));
  ASSERT_EQ(a.kind, Kind::kAppend);
  std::string expected;
  put_varint(expected, 5);
  expected += "hello";
  EXPECT_EQ(a.record, expected);
  EXPECT_EQ(in.size_bytes(), expected.size());
  EXPECT_EQ(in.on_frame(final_frame(snap_message(2, 1, 10, 3))).kind, Kind::kMessage);
  auto m = in.on_end(2, 1);
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  EXPECT_EQ(m->snapshot().metadata().index(), 10u);
}

TEST(SnapshotReception, RefusesEmptyUnknownAndLateFrames) {
  {
    SnapshotReception in(1 << 20);
    EXPECT_EQ(in.on_frame("").kind, Kind::kRefuse);
    EXPECT_FALSE(in.on_end(2, 1).has_value());  // a refused stream is never stepped
  }
  {
    SnapshotReception in(1 << 20);
    EXPECT_EQ(in.on_frame("x123").kind, Kind::kRefuse);
  }
  {
    SnapshotReception in(1 << 20);
    ASSERT_EQ(in.on_frame(final_frame(snap_message(2, 1, 10, 3))).kind, Kind::kMessage);
    auto late = in.on_frame(chunk("more"));
    EXPECT_EQ(late.kind, Kind::kRefuse);
    EXPECT_EQ(late.why, "snapshot data after its final message");
  }
}

TEST(SnapshotReception, RefusesDataOverTheLimitBeforeStoringIt) {
  SnapshotReception in(100);
  ASSERT_EQ(in.on_frame(chunk(std::string(90, 'a'))).kind, Kind::kAppend);
  auto over = in.on_frame(chunk(std::string(20, 'b')));
  EXPECT_EQ(over.kind, Kind::kRefuse);
  EXPECT_TRUE(over.record.empty());
  EXPECT_LE(in.size_bytes(), 100u);
}

TEST(SnapshotReception, RefusesAFinalMessageThatLiesOrCarriesData) {
  auto end_with = [](const pb::Message& m, NodeId stream_from) {
    SnapshotReception in(1 << 20);
    in.on_frame(final_frame(m));
    return in.on_end(stream_from, 1);
  };
  EXPECT_FALSE(end_with(snap_message(3, 1, 10, 3), 2).has_value());  // from another node
  EXPECT_FALSE(end_with(snap_message(2, 4, 10, 3), 2).has_value());  // to another node
  auto app = snap_message(2, 1, 10, 3);
  app.set_type(pb::MSG_APP);
  EXPECT_FALSE(end_with(app, 2).has_value());
  auto inline_data = snap_message(2, 1, 10, 3);
  inline_data.mutable_snapshot()->set_data("state");
  EXPECT_FALSE(end_with(inline_data, 2).has_value());
  SnapshotReception no_end(1 << 20);
  no_end.on_frame(chunk("x"));
  EXPECT_FALSE(no_end.on_end(2, 1).has_value());
  SnapshotReception garbage(1 << 20);
  garbage.on_frame(std::string(1, kSnapshotMessageTag) + "\xff\xff\xff");
  EXPECT_FALSE(garbage.on_end(2, 1).has_value());
}

TEST(SnapshotReception, NoSequenceOfFramesCrashesOrGrowsPastTheLimit) {
  rc::check([](const std::vector<std::string>& frames) {
    SnapshotReception in(4096);
    for (const auto& f : frames) {
      auto r = in.on_frame(f);
      RC_ASSERT(r.kind != Kind::kAppend || !r.record.empty());
      RC_ASSERT(in.size_bytes() <= 4096u);
    }
    (void)in.on_end(2, 1);
  });
}

TEST(StagedSnapshots, KeepsTheFirstCopyOfASnapshotReceivedTwice) {
  StagedSnapshots s;
  EXPECT_TRUE(s.stage(10, 3, "first"));
  EXPECT_FALSE(s.stage(10, 3, "second"));
  ASSERT_NE(s.find(10, 3), nullptr);
  EXPECT_EQ(*s.find(10, 3), "first");
  // The second copy was not new: settling it never discards the first.
  EXPECT_FALSE(s.settle(10, 3, false, false).has_value());
  EXPECT_NE(s.find(10, 3), nullptr);
}

TEST(StagedSnapshots, ASnapshotTheCoreDidNotTakeIsDiscarded) {
  StagedSnapshots s;
  ASSERT_TRUE(s.stage(10, 3, "old"));
  auto drop = s.settle(10, 3, true, false);
  ASSERT_TRUE(drop.has_value());
  EXPECT_EQ(*drop, "old");
  EXPECT_EQ(s.find(10, 3), nullptr);
  ASSERT_TRUE(s.stage(20, 3, "taken"));
  EXPECT_FALSE(s.settle(20, 3, true, true).has_value());
  EXPECT_NE(s.find(20, 3), nullptr);
}

TEST(StagedSnapshots, AnInstallDropsItAndEveryOlderOne) {
  StagedSnapshots s;
  s.stage(5, 1, "a");
  s.stage(10, 2, "b");
  s.stage(10, 3, "c");
  s.stage(15, 3, "d");
  auto dropped = s.drop_up_to(10);
  EXPECT_EQ(dropped, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.find(10, 3), nullptr);
  EXPECT_NE(s.find(15, 3), nullptr);
}

TEST(StagedSnapshots, ASnapshotNeverReceivedHasNoData) {
  StagedSnapshots s;
  EXPECT_EQ(s.find(7, 1), nullptr);
}

// A snapshot is refused before it fills the disk: while it arrives it must leave the reserve
// free, and before it is installed the disk must hold it once more.
TEST(SnapshotSpace, ReceptionKeepsTheReserveAndInstallNeedsItsSizeAgain) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  EXPECT_TRUE(check_snapshot_space(500 * kMiB, false, 100 * kMiB, 64 * kMiB).has_value());
  auto low = check_snapshot_space(500 * kMiB, false, 10 * kMiB, 64 * kMiB);
  ASSERT_FALSE(low.has_value());
  EXPECT_EQ(low.error().code(), ErrorCode::kStorageFull);
  EXPECT_NE(low.error().message().find("64.0 MiB reserve"), std::string::npos) << low.error().message();

  EXPECT_TRUE(check_snapshot_space(100 * kMiB, true, 164 * kMiB, 64 * kMiB).has_value());
  auto install = check_snapshot_space(100 * kMiB, true, 163 * kMiB, 64 * kMiB);
  ASSERT_FALSE(install.has_value());
  EXPECT_EQ(install.error().code(), ErrorCode::kStorageFull);
  EXPECT_NE(install.error().message().find("needs 164.0 MiB free"), std::string::npos) << install.error().message();
}

}  // namespace
}  // namespace aspen::node
