// RaftLog: persisted entries + the unstable tail + commit/apply cursors.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

std::vector<pb::Entry> ents_with_terms(Index first, std::vector<Term> terms) {
  std::vector<pb::Entry> out;
  for (size_t k = 0; k < terms.size(); ++k) out.push_back(make_entry(first + k, terms[k], "x"));
  return out;
}

// A log over storage holding entries 1:t1 2:t2 3:t3 (all persisted), committed to 1.
struct Fixture {
  MemoryLogStorage storage;
  std::unique_ptr<RaftLog> log;
  explicit Fixture(std::vector<Term> terms = {1, 2, 3}, Index commit = 1) {
    EXPECT_TRUE(storage.append(ents_with_terms(1, terms)).has_value());
    log = std::make_unique<RaftLog>(&storage, kNoLimit);
    log->commit_to(commit);
  }
  std::vector<Term> terms() {
    auto ents = log->slice(log->first_index(), log->last_index() + 1, kNoLimit);
    EXPECT_TRUE(ents.has_value());
    return terms_of(*ents);
  }
};

// §5.3 AppendEntries receiver rules: reject on (index, term) mismatch; delete only entries that
// conflict; append new ones; advance commit to min(leaderCommit, index of last new entry).
TEST(RaftLogTest, MaybeAppend) {
  struct Case {
    const char* what;
    Index index;
    Term log_term;
    Index committed;
    std::vector<pb::Entry> ents;
    std::optional<Index> want_last_new;
    std::vector<Term> want_terms;
    Index want_commit;
  };
  const std::vector<Case> cases = {
      {"term mismatch", 3, 2, 3, {}, std::nullopt, {1, 2, 3}, 1},
      {"index beyond the log", 4, 3, 3, {}, std::nullopt, {1, 2, 3}, 1},
      {"heartbeat-like, commits", 3, 3, 3, {}, 3, {1, 2, 3}, 3},
      {"commit capped at last new entry", 2, 2, 3, {}, 2, {1, 2, 3}, 2},
      {"append at the end", 3, 3, 4, ents_with_terms(4, {4}), 4, {1, 2, 3, 4}, 4},
      {"present entry: no truncation", 1, 1, 1, ents_with_terms(2, {2}), 2, {1, 2, 3}, 1},
      {"conflict at 3 replaces it", 2, 2, 1, ents_with_terms(3, {4}), 3, {1, 2, 4}, 1},
      {"conflict at 2 replaces the rest", 1, 1, 2, ents_with_terms(2, {4, 4}), 3, {1, 4, 4}, 2},
      {"conflict in the middle of the batch", 1, 1, 1, ents_with_terms(2, {2, 5, 5}), 4, {1, 2, 5, 5}, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    Fixture f;
    auto got = f.log->maybe_append(c.index, c.log_term, c.committed, c.ents);
    EXPECT_EQ(got, c.want_last_new);
    EXPECT_EQ(f.terms(), c.want_terms);
    EXPECT_EQ(f.log->committed(), c.want_commit);
  }
}

TEST(RaftLogDeathTest, ConflictWithCommittedEntryAsserts) {
  Fixture f({1, 2, 3}, 2);
  EXPECT_DEATH((void)f.log->maybe_append(1, 1, 2, ents_with_terms(2, {9})), "conflict with a committed entry");
}

TEST(RaftLogTest, FindConflictByTerm) {
  // Snapshot at 10 (term 3), then 11:t3 12:t4 13:t4 14:t6.
  MemoryLogStorage st;
  pb::Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(3);
  ASSERT_TRUE(st.apply_snapshot(snap).has_value());
  ASSERT_TRUE(st.append(ents_with_terms(11, {3, 4, 4, 6})).has_value());
  RaftLog log(&st, kNoLimit);
  using P = std::pair<Index, Term>;
  EXPECT_EQ(log.find_conflict_by_term(14, 6), P(14, 6));
  EXPECT_EQ(log.find_conflict_by_term(14, 5), P(13, 4)) << "skips the whole term-6 run";
  EXPECT_EQ(log.find_conflict_by_term(13, 4), P(13, 4));
  EXPECT_EQ(log.find_conflict_by_term(13, 3), P(11, 3));
  EXPECT_EQ(log.find_conflict_by_term(12, 3), P(11, 3));
  EXPECT_EQ(log.find_conflict_by_term(14, 3), P(11, 3));
  EXPECT_EQ(log.find_conflict_by_term(11, 3), P(11, 3));
  EXPECT_EQ(log.find_conflict_by_term(14, 2), P(9, 0)) << "ran into the compacted prefix: unknown";
  EXPECT_EQ(log.find_conflict_by_term(20, 6), P(20, 0)) << "beyond the log: unknown";
  EXPECT_EQ(log.find_conflict_by_term(0, 6), P(0, 0));
}

TEST(RaftLogTest, SliceHonoursSizeLimitsAcrossStableAndUnstable) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(ents_with_terms(1, {1, 1, 1})).has_value());
  RaftLog log(&st, kNoLimit);
  log.append(ents_with_terms(4, {2, 2}));  // unstable 4, 5
  ASSERT_EQ(log.last_index(), 5u);
  ASSERT_EQ(log.unstable_entries().size(), 2u);
  const uint64_t one = entry_size_bytes(make_entry(1, 1, "x"));
  auto n = [&](Index lo, Index hi, uint64_t limit) { return log.slice(lo, hi, limit).value().size(); };
  EXPECT_EQ(n(1, 6, kNoLimit), 5u);
  EXPECT_EQ(n(1, 6, 0), 1u) << "always at least one entry";
  EXPECT_EQ(n(1, 6, one), 1u);
  EXPECT_EQ(n(1, 6, 2 * one), 2u);
  EXPECT_EQ(n(1, 6, 4 * one), 4u) << "three stored plus one unstable";
  EXPECT_EQ(n(2, 6, 3 * one), 3u);
  EXPECT_EQ(n(4, 6, one), 1u) << "unstable only";
  EXPECT_EQ(n(3, 3, kNoLimit), 0u);
  EXPECT_EQ(log.slice(2, 5, kNoLimit).value().back().term(), 2u);

  ASSERT_TRUE(st.compact(2).has_value());
  auto compacted = log.slice(2, 4, kNoLimit);
  ASSERT_FALSE(compacted.has_value());
  EXPECT_EQ(compacted.error().code(), ErrorCode::kCompacted);
  EXPECT_EQ(log.entries_from(3, kNoLimit).value().size(), 3u);
  EXPECT_TRUE(log.entries_from(6, kNoLimit).value().empty());
}

TEST(RaftLogTest, StableToOnlyForTheEntryHandedOut) {
  MemoryLogStorage st;
  RaftLog log(&st, kNoLimit);
  log.append(ents_with_terms(1, {1, 1, 2}));
  ASSERT_EQ(log.unstable_entries().size(), 3u);
  ASSERT_TRUE(st.append(ents_with_terms(1, {1})).has_value());
  log.stable_to(1, 1);
  EXPECT_EQ(log.unstable_entries().size(), 2u);
  log.stable_to(3, 1);  // wrong term: entry 3 has since become a different one
  EXPECT_EQ(log.unstable_entries().size(), 2u);
  log.stable_to(9, 2);  // not in the log at all
  EXPECT_EQ(log.unstable_entries().size(), 2u);
  ASSERT_TRUE(st.append(ents_with_terms(2, {1, 2})).has_value());
  log.stable_to(3, 2);
  EXPECT_TRUE(log.unstable_entries().empty());
  EXPECT_EQ(log.last_index(), 3u);
  EXPECT_EQ(log.term(3).value(), 2u) << "now read from storage";
}

// A persist of the old tail finishing after a newer leader replaced it must not mark the new
// entries stable.
TEST(RaftLogTest, StableToIgnoresTruncatedEntries) {
  MemoryLogStorage st;
  RaftLog log(&st, kNoLimit);
  log.append(ents_with_terms(1, {1, 1}));
  auto rd_entries = log.unstable_entries();  // handed out in a Ready
  log.append(ents_with_terms(2, {3}));       // a new leader overwrites index 2
  log.stable_to(rd_entries.back().index(), rd_entries.back().term());
  ASSERT_EQ(log.unstable_entries().size(), 2u);
  EXPECT_EQ(log.unstable_entries().back().term(), 3u);
}

TEST(RaftLogTest, RestoreReplacesLogWithSnapshot) {
  Fixture f;
  pb::Snapshot snap;
  snap.mutable_metadata()->set_index(20);
  snap.mutable_metadata()->set_term(5);
  f.log->restore(snap);
  EXPECT_EQ(f.log->committed(), 20u);
  EXPECT_EQ(f.log->first_index(), 21u);
  EXPECT_EQ(f.log->last_index(), 20u);
  EXPECT_EQ(f.log->term(20).value(), 5u);
  EXPECT_EQ(f.log->last_term(), 5u);
  ASSERT_TRUE(f.log->unstable_snapshot().has_value());
  EXPECT_TRUE(f.log->unstable_entries().empty());
  EXPECT_FALSE(f.log->has_next_committed_entries()) << "nothing to apply until the snapshot is installed";
  EXPECT_EQ(f.log->snapshot().value().metadata().index(), 20u);
  // Entries after the snapshot append to it.
  f.log->append(ents_with_terms(21, {5}));
  EXPECT_EQ(f.log->last_index(), 21u);
  f.log->stable_snap_to(19);
  EXPECT_TRUE(f.log->unstable_snapshot().has_value()) << "a different snapshot";
  f.log->stable_snap_to(20);
  EXPECT_FALSE(f.log->unstable_snapshot().has_value());
}

// §5.4.1: compare the last terms; if equal, the longer log is more up to date.
TEST(RaftLogTest, IsUpToDate) {
  Fixture f;  // last entry 3:t3
  EXPECT_TRUE(f.log->is_up_to_date(3, 3));
  EXPECT_TRUE(f.log->is_up_to_date(4, 3));
  EXPECT_FALSE(f.log->is_up_to_date(2, 3));
  EXPECT_TRUE(f.log->is_up_to_date(1, 4));
  EXPECT_FALSE(f.log->is_up_to_date(100, 2));
}

// §5.4.2: maybe_commit commits only when the entry at that index is from the given term.
TEST(RaftLogTest, MaybeCommitOnlyWithMatchingTerm) {
  Fixture f;
  EXPECT_FALSE(f.log->maybe_commit(2, 3)) << "entry 2 is term 2";
  EXPECT_EQ(f.log->committed(), 1u);
  EXPECT_TRUE(f.log->maybe_commit(3, 3));
  EXPECT_EQ(f.log->committed(), 3u);
  EXPECT_FALSE(f.log->maybe_commit(2, 2)) << "commit never goes back";
  EXPECT_EQ(f.log->committed(), 3u);
}

TEST(RaftLogTest, NextCommittedEntriesRespectPerReadyLimit) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(ents_with_terms(1, {1, 1, 1, 1})).has_value());
  const uint64_t one = entry_size_bytes(make_entry(1, 1, "x"));
  RaftLog log(&st, 2 * one + 1);
  EXPECT_FALSE(log.has_next_committed_entries());
  log.commit_to(4);
  auto batch = log.next_committed_entries();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch.front().index(), 1u);
  log.applied_to(2);
  batch = log.next_committed_entries();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch.front().index(), 3u);
  log.applied_to(4);
  EXPECT_FALSE(log.has_next_committed_entries());
}

TEST(RaftLogTest, TermErrorsOutsideTheLog) {
  MemoryLogStorage st;
  ASSERT_TRUE(st.append(ents_with_terms(1, {1, 2, 3})).has_value());
  ASSERT_TRUE(st.compact(2).has_value());
  RaftLog log(&st, kNoLimit);
  EXPECT_EQ(log.committed(), 2u) << "compacted entries count as committed and applied";
  EXPECT_EQ(log.applied(), 2u);
  EXPECT_EQ(log.term(2).value(), 2u);
  EXPECT_EQ(log.term(1).error().code(), ErrorCode::kCompacted);
  EXPECT_EQ(log.term(4).error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(log.term_or_zero(4), 0u);
  EXPECT_FALSE(log.match_term(1, 1));
  EXPECT_TRUE(log.match_term(3, 3));
}

TEST(RaftLogDeathTest, CursorInvariantsAreAsserted) {
  Fixture f;
  EXPECT_DEATH(f.log->commit_to(4), "commit index beyond the log");
  EXPECT_DEATH(f.log->applied_to(2), "applied index out of range");
}

}  // namespace
}  // namespace aspen::raft
