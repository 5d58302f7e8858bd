// The log compaction policy: by entry count, and by bytes for logs of few large entries.
#include <gtest/gtest.h>

#include "node/log_compaction.h"

namespace aspen::node {
namespace {

constexpr uint64_t kSmallEntryBytes = 300;
const Knobs kDefaults;

TEST(LogCompaction, ShortSmallLogIsLeftAlone) {
  EXPECT_EQ(compaction_point(1, 15000, 15000, 15000 * kSmallEntryBytes, kDefaults), 0u);
}

TEST(LogCompaction, LongLogKeepsFiveThousandEntriesBehindApplied) {
  EXPECT_EQ(compaction_point(1, 25000, 25000, 25000 * kSmallEntryBytes, kDefaults), 25000u - kDefaults.compact_keep_entries);
  // Only applied entries are ever compacted: the unapplied tail does not count.
  EXPECT_EQ(compaction_point(1, 40000, 21000, 40000 * kSmallEntryBytes, kDefaults), 21000u - kDefaults.compact_keep_entries);
}

// 1,000 SetMulti batches of ~300 KB (a million-key bulk load): few entries, a big log.
TEST(LogCompaction, BigLogOfLargeEntriesKeepsAboutSixteenMebibytes) {
  const uint64_t entry_bytes = 300 << 10;
  const Index last = 1000;
  const Index point = compaction_point(1, last, last, last * entry_bytes, kDefaults);
  ASSERT_NE(point, 0u);
  const uint64_t kept_bytes = (last - point) * entry_bytes;
  EXPECT_LE(kept_bytes, kDefaults.compact_keep_bytes);
  EXPECT_GT(kept_bytes, kDefaults.compact_keep_bytes / 2);
  // Once compacted, the log is under the threshold: no compaction again at once.
  EXPECT_EQ(compaction_point(point + 1, last, last, kept_bytes, kDefaults), 0u);
}

TEST(LogCompaction, BigLogWhoseEntriesAreNotAppliedYetIsLeftAlone) {
  const uint64_t entry_bytes = 4 << 20;
  EXPECT_EQ(compaction_point(100, 130, 101, 31 * entry_bytes, kDefaults), 0u);
}

TEST(LogCompaction, EmptyOrInconsistentPositionsGiveNothing) {
  EXPECT_EQ(compaction_point(10, 9, 9, 0, kDefaults), 0u);        // empty log after a snapshot
  EXPECT_EQ(compaction_point(50, 100, 40, 1 << 30, kDefaults), 0u);  // applied below the log
}

}  // namespace
}  // namespace aspen::node
