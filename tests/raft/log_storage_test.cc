// MemoryLogStorage: the in-memory LogStorage (etcd's MemoryStorage layout: a dummy entry
// records the index and term of the last compacted entry).
#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

// Entries [lo, hi] with term t and payload "<index>".
std::vector<pb::Entry> range(Index lo, Index hi, Term t) {
  std::vector<pb::Entry> out;
  for (Index i = lo; i <= hi; ++i) out.push_back(make_entry(i, t, std::to_string(i)));
  return out;
}

std::vector<Index> indexes(const std::vector<pb::Entry>& ents) {
  std::vector<Index> out;
  for (const auto& e : ents) out.push_back(e.index());
  return out;
}

template <typename T>
ErrorCode code_of(const Result<T>& r) {
  return r.has_value() ? ErrorCode::kOk : r.error().code();
}

TEST(RaftLogStorage, EmptyStorage) {
  MemoryLogStorage st;
  EXPECT_EQ(st.first_index(), 1u);
  EXPECT_EQ(st.last_index(), 0u);
  EXPECT_EQ(st.term(0).value(), 0u);
  EXPECT_EQ(code_of(st.term(1)), ErrorCode::kUnavailable);
  EXPECT_TRUE(st.entries(1, 1, kNoLimit).value().empty());
  EXPECT_EQ(code_of(st.entries(0, 1, kNoLimit)), ErrorCode::kCompacted);
  EXPECT_EQ(st.snapshot().value().metadata().index(), 0u);
}

TEST(RaftLogStorage, AppendThenReadEntriesAndTerms) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 5, 1)).has_value());
  EXPECT_EQ(st.first_index(), 1u);
  EXPECT_EQ(st.last_index(), 5u);
  EXPECT_EQ(indexes(st.entries(2, 5, kNoLimit).value()), (std::vector<Index>{2, 3, 4}));
  EXPECT_EQ(st.entries(2, 3, kNoLimit).value()[0].data(), "2");
  EXPECT_EQ(st.term(5).value(), 1u);
  EXPECT_EQ(code_of(st.term(6)), ErrorCode::kUnavailable);
  ASSERT_TRUE(st.append({}).has_value()) << "appending nothing is fine";
  EXPECT_EQ(st.last_index(), 5u);
}

// An append overwrites the entry with the same index and everything after it (Ready contract
// step 2); entries before it are kept.
TEST(RaftLogStorage, AppendTruncatesConflictingSuffix) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 5, 1)).has_value());
  ASSERT_TRUE(st.append(range(3, 4, 2)).has_value());
  EXPECT_EQ(st.last_index(), 4u);
  EXPECT_EQ(st.term(2).value(), 1u);
  EXPECT_EQ(st.term(3).value(), 2u);
  EXPECT_EQ(st.term(4).value(), 2u);
  ASSERT_TRUE(st.append(range(5, 7, 2)).has_value()) << "plain extension";
  EXPECT_EQ(st.last_index(), 7u);
}

TEST(RaftLogStorage, AppendWithGapIsRejected) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 3, 1)).has_value());
  auto s = st.append(range(5, 6, 1));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(st.last_index(), 3u) << "nothing changed";
}

TEST(RaftLogStorage, AppendSkipsTheCompactedPrefix) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 5, 1)).has_value());
  ASSERT_TRUE(st.compact(3).has_value());
  ASSERT_TRUE(st.append(range(1, 2, 1)).has_value()) << "entirely compacted: a no-op";
  EXPECT_EQ(st.last_index(), 5u);
  ASSERT_TRUE(st.append(range(2, 6, 2)).has_value());
  EXPECT_EQ(st.first_index(), 4u);
  EXPECT_EQ(st.term(3).value(), 1u) << "the compacted entry's term is kept";
  EXPECT_EQ(st.term(4).value(), 2u);
  EXPECT_EQ(st.last_index(), 6u);
}

TEST(RaftLogStorage, CompactDiscardsPrefixButKeepsItsLastTerm) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 3, 1)).has_value());
  ASSERT_TRUE(st.append(range(4, 6, 2)).has_value());
  ASSERT_TRUE(st.compact(4).has_value());
  EXPECT_EQ(st.first_index(), 5u);
  EXPECT_EQ(st.last_index(), 6u);
  EXPECT_EQ(st.term(4).value(), 2u);
  EXPECT_EQ(code_of(st.term(3)), ErrorCode::kCompacted);
  EXPECT_EQ(code_of(st.entries(4, 6, kNoLimit)), ErrorCode::kCompacted);
  EXPECT_EQ(indexes(st.entries(5, 7, kNoLimit).value()), (std::vector<Index>{5, 6}));
  EXPECT_EQ(code_of(st.compact(4)), ErrorCode::kCompacted);
  EXPECT_EQ(code_of(st.compact(2)), ErrorCode::kCompacted);
  ASSERT_TRUE(st.compact(6).has_value()) << "compacting everything leaves only the marker";
  EXPECT_EQ(st.first_index(), 7u);
  EXPECT_EQ(st.last_index(), 6u);
}

TEST(RaftLogStorage, EntriesRespectSizeLimitButReturnAtLeastOne) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 5, 1)).has_value());
  const uint64_t one = entry_size_bytes(make_entry(1, 1, "1"));
  EXPECT_EQ(st.entries(1, 6, 0).value().size(), 1u);
  EXPECT_EQ(st.entries(1, 6, one).value().size(), 1u);
  EXPECT_EQ(st.entries(1, 6, 2 * one).value().size(), 2u);
  EXPECT_EQ(st.entries(1, 6, 2 * one + 1).value().size(), 2u);
  EXPECT_EQ(st.entries(1, 6, kNoLimit).value().size(), 5u);
}

TEST(RaftLogStorage, CreateSnapshotRecordsIndexTermAndConfState) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 3, 1)).has_value());
  ASSERT_TRUE(st.append(range(4, 6, 2)).has_value());
  pb::ConfState cs = make_conf_state({1, 2, 3});
  auto snap = st.create_snapshot(4, &cs, "state@4");
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ(snap->metadata().index(), 4u);
  EXPECT_EQ(snap->metadata().term(), 2u);
  EXPECT_EQ(snap->data(), "state@4");
  EXPECT_EQ(ids_of(snap->metadata().conf_state().voters()), (std::set<NodeId>{1, 2, 3}));
  EXPECT_EQ(st.snapshot().value().SerializeAsString(), snap->SerializeAsString());
  EXPECT_EQ(st.last_index(), 6u) << "creating a snapshot does not compact";

  auto stale = st.create_snapshot(4, nullptr, "again");
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().code(), ErrorCode::kInvalidArgument);
  // Without a ConfState the previous one is carried over.
  auto next = st.create_snapshot(5, nullptr, "state@5");
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->metadata().conf_state().voters_size(), 3);
}

TEST(RaftLogStorage, ApplySnapshotReplacesTheLog) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 5, 1)).has_value());
  pb::Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(3);
  *snap.mutable_metadata()->mutable_conf_state() = make_conf_state({1, 2}, {3});
  ASSERT_TRUE(st.apply_snapshot(snap).has_value());
  EXPECT_EQ(st.first_index(), 11u);
  EXPECT_EQ(st.last_index(), 10u);
  EXPECT_EQ(st.term(10).value(), 3u);
  EXPECT_EQ(code_of(st.term(5)), ErrorCode::kCompacted);
  EXPECT_EQ(ids_of(st.initial_state().conf_state.learners()), (std::set<NodeId>{3}));
  ASSERT_TRUE(st.append(range(11, 12, 3)).has_value());
  EXPECT_EQ(st.last_index(), 12u);

  pb::Snapshot older = snap;
  older.mutable_metadata()->set_index(10);
  auto s = st.apply_snapshot(older);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(st.last_index(), 12u) << "a rejected snapshot changes nothing";
}

TEST(RaftLogStorage, InitialStateReturnsPersistedState) {
  MemoryLogStorage st;
  pb::HardState hs;
  hs.set_term(4);
  hs.set_vote(2);
  hs.set_commit(0);
  st.set_hard_state(hs);
  st.set_conf_state(make_conf_state({1, 2, 3}));
  InitialState is = st.initial_state();
  EXPECT_EQ(is.hard_state.term(), 4u);
  EXPECT_EQ(is.hard_state.vote(), 2u);
  EXPECT_EQ(is.conf_state.voters_size(), 3);
}

TEST(RaftLogStorageDeathTest, ReadingOrCompactingPastTheEndAsserts) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(range(1, 3, 1)).has_value());
  EXPECT_DEATH((void)st.entries(1, 5, kNoLimit), "beyond the last index");
  EXPECT_DEATH((void)st.compact(4), "compact beyond the last index");
  EXPECT_DEATH((void)st.create_snapshot(4, nullptr, ""), "snapshot beyond the last index");
}

// Regression (fixed; found by this test) (src/raft/log_storage.cc, MemoryLogStorage::create_snapshot): `i` is checked against
// the last snapshot and the last index but not against the compacted prefix. compact() may
// run ahead of the last snapshot (its contract allows any index <= applied), and then
// create_snapshot(i) for an i below the compaction point reads ents_[i - offset()] with an
// underflowed index: an out-of-bounds read (undefined behaviour) instead of a kCompacted error.
// Observed: it "succeeds" and returns a snapshot at index 3 whose term was read from outside
// the vector. Runs in a child process so a crash cannot take the binary down.
TEST(RaftLogStorageDeathTest, CreateSnapshotBelowCompactionPointIsAnError) {
  EXPECT_EXIT(
      {
        MemoryLogStorage st;
        if (!st.append(range(1, 6, 1)).has_value() || !st.compact(5).has_value()) std::exit(2);
        auto r = st.create_snapshot(3, nullptr, "");
        std::exit(!r.has_value() && r.error().code() == ErrorCode::kCompacted ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace aspen::raft
