// Wal: the Raft log in append-only segments. Round trips, replay after reopen, conflicting
// suffixes, resets, compaction that deletes whole segments, torn tails left by a crash in the
// middle of a write, damage in the middle of the log, and a model-checked property over
// random operations with reopens and torn writes.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/wal.h"
#include "store_test_util.h"
#include "wal_test_util.h"

namespace aspen::storage {
namespace {

using testing::TempDir;
using namespace wal_testing;

TEST(Wal, AppendedEntriesAndHardStateSurviveReopen) {
  TempDir dir;
  const auto hs = hard_state(3, 2, 7);
  {
    auto w = open_wal(dir.path());
    ASSERT_TRUE(append(*w, run(1, 10, 3), &hs).has_value());
    EXPECT_EQ(w->last_index(), 10u);
    auto es = w->entries(1, 11, UINT64_MAX);
    ASSERT_TRUE(es.has_value());
    ASSERT_EQ(es->size(), 10u);
    EXPECT_EQ((*es)[4].data(), entry(5, 3).data());
  }
  auto w = open_wal(dir.path());
  EXPECT_EQ(w->base_index(), 0u);
  EXPECT_EQ(w->last_index(), 10u);
  EXPECT_EQ(*w->term(10), 3u);
  EXPECT_EQ(w->hard_state().vote(), 2u);
  EXPECT_EQ(w->hard_state().commit(), 7u);
  auto es = w->entries(3, 6, UINT64_MAX);
  ASSERT_TRUE(es.has_value());
  ASSERT_EQ(es->size(), 3u);
  EXPECT_EQ((*es)[0].index(), 3u);
  EXPECT_EQ((*es)[2].data(), entry(5, 3).data());
}

TEST(Wal, EntriesStopAtTheSizeLimitButReturnAtLeastOne) {
  TempDir dir;
  auto w = open_wal(dir.path());
  ASSERT_TRUE(append(*w, run(1, 10, 1, 1000)).has_value());
  auto one = w->entries(1, 11, 1);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->size(), 1u);
  auto some = w->entries(1, 11, 3500);
  ASSERT_TRUE(some.has_value());
  EXPECT_EQ(some->size(), 3u);
}

TEST(Wal, ConflictingSuffixIsReplacedAndStaysReplacedAfterReopen) {
  TempDir dir;
  {
    auto w = open_wal(dir.path());
    ASSERT_TRUE(append(*w, run(1, 10, 1)).has_value());
    ASSERT_TRUE(append(*w, run(6, 8, 2)).has_value());
    EXPECT_EQ(w->last_index(), 8u);
    EXPECT_EQ(*w->term(5), 1u);
    EXPECT_EQ(*w->term(6), 2u);
  }
  auto w = open_wal(dir.path());
  EXPECT_EQ(w->last_index(), 8u);
  EXPECT_EQ(terms_of(*w), (std::vector<Term>{1, 1, 1, 1, 1, 2, 2, 2}));
  EXPECT_FALSE(w->term(9).has_value());
}

TEST(Wal, AppendThatWouldLeaveAGapIsRefused) {
  TempDir dir;
  auto w = open_wal(dir.path());
  ASSERT_TRUE(append(*w, run(1, 3, 1)).has_value());
  auto s = append(*w, run(5, 6, 1));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(w->last_index(), 3u);
}

TEST(Wal, ResetEmptiesTheLogAfterTheSnapshotPoint) {
  TempDir dir;
  const auto hs = hard_state(5, 0, 20);
  {
    auto w = open_wal(dir.path());
    ASSERT_TRUE(append(*w, run(1, 10, 1)).has_value());
    WalWrite ww;
    ww.reset = WalReset{20, 4};
    ww.hard_state = &hs;
    auto after = run(21, 22, 5);
    ww.entries = &after;
    ASSERT_TRUE(w->write(ww).has_value());
    EXPECT_EQ(w->base_index(), 20u);
    EXPECT_EQ(w->last_index(), 22u);
  }
  auto w = open_wal(dir.path(), WalFloor{20, 4});
  EXPECT_EQ(w->base_index(), 20u);
  EXPECT_EQ(*w->term(20), 4u);
  EXPECT_EQ(w->last_index(), 22u);
  EXPECT_EQ(w->term(10).error().code(), ErrorCode::kCompacted);
  EXPECT_EQ(w->hard_state().commit(), 20u);
}

TEST(Wal, CompactionDeletesOnlyAPrefixOfSegmentsAndKeepsTheHardState) {
  TempDir dir;
  const auto hs = hard_state(1, 1, 1);
  {
    auto w = open_wal(dir.path(), {}, 4096);  // ~3 entries of 1 KiB per segment
    ASSERT_TRUE(append(*w, run(1, 1, 1), &hs).has_value());
    for (Index i = 2; i <= 40; ++i) ASSERT_TRUE(append(*w, run(i, i, 1, 1000)).has_value());
    const size_t before = w->segment_count();
    EXPECT_GE(before, 8u);
    ASSERT_TRUE(w->compact(30).has_value());
    EXPECT_LT(w->segment_count(), before);
    EXPECT_EQ(w->base_index(), 30u);
    EXPECT_EQ(w->term(29).error().code(), ErrorCode::kCompacted);
    EXPECT_EQ(w->compact(30).error().code(), ErrorCode::kCompacted);
  }
  // The store that owns the Wal records its compaction point and passes it back in.
  auto w = open_wal(dir.path(), WalFloor{30, 1}, 4096);
  EXPECT_EQ(w->base_index(), 30u);
  EXPECT_EQ(w->last_index(), 40u);
  EXPECT_EQ(w->hard_state().vote(), 1u);  // its first record's segment is gone
  auto es = w->entries(31, 41, UINT64_MAX);
  ASSERT_TRUE(es.has_value());
  EXPECT_EQ(es->size(), 10u);
}

TEST(Wal, BatchLargerThanASegmentGetsASegmentOfItsOwn) {
  TempDir dir;
  {
    auto w = open_wal(dir.path(), {}, 4096);
    ASSERT_TRUE(append(*w, run(1, 20, 2, 1000)).has_value());
  }
  auto w = open_wal(dir.path(), {}, 4096);
  EXPECT_EQ(w->last_index(), 20u);
}

// A crash in the middle of a write leaves a prefix of its bytes (or garbage) at the tail of
// the segment. Replay keeps what came before, and the next writes go to a new segment so
// that a complete record left after the torn one can never come back.
TEST(Wal, TornTailIsDroppedAndNeverRevived) {
  TempDir dir;
  uint64_t tail_offset = 0;
  {
    auto w = open_wal(dir.path());
    ASSERT_TRUE(append(*w, run(1, 5, 1)).has_value());
    tail_offset = Wal::kSegmentHeaderBytes + batch_bytes(run(1, 5, 1));
    ASSERT_TRUE(append(*w, run(6, 8, 1)).has_value());  // three records of equal size
  }
  auto paths = segment_paths(dir.path());
  ASSERT_EQ(paths.size(), 1u);
  {
    // Damage the first record of the last write (entry 6), leave 7 and 8 whole.
    int fd = ::open(paths[0].c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char junk = 0x5a;
    ASSERT_EQ(::pwrite(fd, &junk, 1, static_cast<off_t>(tail_offset + Wal::kBatchMarkerBytes + Wal::kRecordHeaderBytes + 2)), 1);
    ::close(fd);
  }
  {
    auto w = open_wal(dir.path());
    EXPECT_EQ(w->last_index(), 5u);
    ASSERT_TRUE(append(*w, run(6, 6, 2)).has_value());  // same size as the torn record
  }
  auto w = open_wal(dir.path());
  EXPECT_EQ(w->last_index(), 6u);  // not 8: the old 7 and 8 stay behind the torn record
  EXPECT_EQ(*w->term(6), 2u);
}

TEST(Wal, RecordCutShortAtAnyByteLeavesTheEarlierWrites) {
  uint64_t record_bytes = 0;
  for (uint64_t cut = 0; cut == 0 || cut < record_bytes; ++cut) {
    TempDir dir;
    uint64_t tail_offset = 0;
    {
      auto w = open_wal(dir.path());
      ASSERT_TRUE(append(*w, run(1, 3, 1)).has_value());
      tail_offset = Wal::kSegmentHeaderBytes + batch_bytes(run(1, 3, 1));
      ASSERT_TRUE(append(*w, run(4, 4, 1)).has_value());
      record_bytes = batch_bytes(run(4, 4, 1));
    }
    // Zero everything of the last record from byte `cut` on: a write that stopped there.
    int fd = ::open(segment_paths(dir.path())[0].c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::string zeros(4096, '\0');
    ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(tail_offset + cut)), 4096);
    ::close(fd);
    auto w = open_wal(dir.path());
    EXPECT_EQ(w->last_index(), 3u) << "cut at " << cut;
  }
}

TEST(Wal, MissingSegmentInTheMiddleIsCorruption) {
  TempDir dir;
  {
    auto w = open_wal(dir.path(), {}, 4096);
    for (Index i = 1; i <= 20; ++i) ASSERT_TRUE(append(*w, run(i, i, 1, 1000)).has_value());
  }
  auto paths = segment_paths(dir.path());
  ASSERT_GT(paths.size(), 3u);
  std::filesystem::remove(paths[2]);
  WalOptions o;
  o.dir = dir.path();
  o.segment_size_bytes = 4096;
  auto w = Wal::open(o, {});
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kCorruption);
  EXPECT_NE(w.error().message().find("missing"), std::string::npos) << w.error().message();
}

// The state machine installed a snapshot at (5, term 2) and the node crashed before the
// Wal's reset: the old log holds entry 5 with term 1. Raft keeps the entries after a
// snapshot only if the log agrees with its last entry (§7); here it does not.
TEST(Wal, LogThatDisagreesWithTheFloorIsDroppedAfterIt) {
  TempDir dir;
  {
    auto w = open_wal(dir.path());
    ASSERT_TRUE(append(*w, run(1, 8, 1)).has_value());
  }
  {
    auto w = open_wal(dir.path(), WalFloor{5, 2});
    EXPECT_EQ(w->base_index(), 5u);
    EXPECT_EQ(w->last_index(), 5u);
    ASSERT_TRUE(append(*w, run(6, 6, 2)).has_value());
  }
  auto w = open_wal(dir.path(), WalFloor{5, 2});
  EXPECT_EQ(w->last_index(), 6u);
  EXPECT_EQ(*w->term(6), 2u);
}

TEST(Wal, LogThatAgreesWithTheFloorIsKept) {
  TempDir dir;
  {
    auto w = open_wal(dir.path());
    ASSERT_TRUE(append(*w, run(1, 8, 1)).has_value());
  }
  auto w = open_wal(dir.path(), WalFloor{5, 1});
  EXPECT_EQ(w->base_index(), 5u);
  EXPECT_EQ(w->last_index(), 8u);
}

TEST(Wal, CommitIsNeverBeyondTheReplayedLog) {
  TempDir dir;
  const auto hs = hard_state(1, 0, 50);
  {
    auto w = open_wal(dir.path());
    ASSERT_TRUE(append(*w, run(1, 3, 1), &hs).has_value());
  }
  auto w = open_wal(dir.path());
  EXPECT_EQ(w->hard_state().commit(), 3u);
}

// Random appends (with conflicting suffixes), hard states, resets, compactions, reopens and
// torn last writes, against a model: after every reopen the log equals the model's log, or,
// after a torn write, the log before that write plus a prefix of its entries.
RC_GTEST_PROP(Wal, ReplayMatchesAModelOfTheLog, ()) {
  TempDir dir;
  WalFloor floor;
  std::vector<Term> model;  // terms of (floor.index, ...]
  pb::HardState model_hs;
  auto w = open_wal(dir.path(), floor, 8192);
  RC_ASSERT(w != nullptr);
  Term term = 1;
  const int steps = *rc::gen::inRange(5, 40);
  for (int step = 0; step < steps; ++step) {
    const int op = *rc::gen::inRange(0, 10);
    const Index last = floor.index + model.size();
    if (op <= 4) {
      const Index from = *rc::gen::inRange<Index>(floor.index + 1, last + 2);
      const auto count = *rc::gen::inRange<Index>(1, 6);
      if (*rc::gen::inRange(0, 3) == 0) ++term;
      const auto payload = *rc::gen::inRange<size_t>(0, 3000);
      auto es = run(from, from + count - 1, term, payload);
      pb::HardState hs = hard_state(term, *rc::gen::inRange<uint64_t>(0, 4), 0);
      RC_ASSERT(append(*w, es, &hs).has_value());
      model.resize(static_cast<size_t>(from - floor.index - 1));
      for (Index i = 0; i < count; ++i) model.push_back(term);
      model_hs = hs;
    } else if (op == 5 && !model.empty()) {
      const Index to = *rc::gen::inRange<Index>(floor.index + 1, last + 1);
      RC_ASSERT(w->compact(to).has_value());
      const auto dropped = static_cast<size_t>(to - floor.index);
      floor = WalFloor{to, model[dropped - 1]};
      model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(dropped));
    } else if (op == 6) {
      ++term;
      const Index at = *rc::gen::inRange<Index>(floor.index + 1, last + 5);
      WalWrite ww;
      ww.reset = WalReset{at, term};
      RC_ASSERT(w->write(ww).has_value());
      floor = WalFloor{at, term};
      model.clear();
    } else if (op == 7) {
      w.reset();
      w = open_wal(dir.path(), floor, 8192);
      RC_ASSERT(w != nullptr);
      RC_ASSERT(w->base_index() == floor.index);
      RC_ASSERT(terms_of(*w) == model);
      RC_ASSERT(w->hard_state().term() == model_hs.term());
      RC_ASSERT(w->hard_state().vote() == model_hs.vote());
    } else if (op >= 8) {
      // A torn last write: append entries, then cut the file inside their bytes.
      const uint64_t before_bytes = w->size_bytes();
      const Index from = last + 1;
      const auto count = *rc::gen::inRange<Index>(1, 4);
      auto es = run(from, from + count - 1, term, 100);
      RC_ASSERT(append(*w, es).has_value());
      const uint64_t written = w->size_bytes() - before_bytes + Wal::kBatchMarkerBytes;
      auto paths = segment_paths(dir.path());
      const std::string& seg = paths.back();
      struct stat st {};
      RC_ASSERT(::stat(seg.c_str(), &st) == 0);
      w.reset();
      // Find where the write began: the last `written` bytes before the zeroed end.
      std::string data(static_cast<size_t>(st.st_size), '\0');
      int fd = ::open(seg.c_str(), O_RDWR);
      RC_ASSERT(fd >= 0);
      RC_ASSERT(::pread(fd, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()));
      size_t end = data.find_last_not_of('\0') + 1;
      const uint64_t start = end - written;
      const auto cut = *rc::gen::inRange<uint64_t>(0, written);
      std::string zeros(static_cast<size_t>(written - cut), '\0');
      RC_ASSERT(::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(start + cut)) == static_cast<ssize_t>(zeros.size()));
      ::close(fd);
      w = open_wal(dir.path(), floor, 8192);
      RC_ASSERT(w != nullptr);
      const auto got = terms_of(*w);
      RC_ASSERT(got.size() >= model.size());
      RC_ASSERT(got.size() <= model.size() + count);
      RC_ASSERT(std::equal(model.begin(), model.end(), got.begin()));
      model = got;
    }
  }
}

}  // namespace
}  // namespace aspen::storage
