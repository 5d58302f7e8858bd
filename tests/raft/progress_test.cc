// Progress (the leader's view of one follower) and the Inflights window, as units.
#include "raft/progress.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>

namespace aspen::raft {
namespace {

Progress replicate_at(Index match, Index next, size_t window = 10) {
  Progress p(next, window, false);
  p.match = match;
  p.state = ProgressState::kReplicate;
  p.next = next;
  return p;
}

TEST(RaftProgress, MaybeUpdateAdvancesMatchAndNeverGoesBack) {
  Progress p(5, 10, false);
  p.is_probe_sent = true;
  EXPECT_TRUE(p.maybe_update(3));
  EXPECT_EQ(p.match, 3u);
  EXPECT_EQ(p.next, 5u) << "next never moves backwards on an ack";
  EXPECT_FALSE(p.is_probe_sent) << "an ack answers the outstanding probe";

  EXPECT_FALSE(p.maybe_update(2)) << "a stale ack";
  EXPECT_FALSE(p.maybe_update(3)) << "a duplicate ack";
  EXPECT_EQ(p.match, 3u);

  EXPECT_TRUE(p.maybe_update(7));
  EXPECT_EQ(p.match, 7u);
  EXPECT_EQ(p.next, 8u);
}

// In replicate state a rejection at or below match is stale (the follower acked past it);
// otherwise the leader restarts right after match.
TEST(RaftProgress, MaybeDecreaseToInReplicateState) {
  Progress p = replicate_at(5, 10);
  EXPECT_FALSE(p.maybe_decrease_to(5, 0));
  EXPECT_FALSE(p.maybe_decrease_to(4, 0));
  EXPECT_EQ(p.next, 10u);
  EXPECT_TRUE(p.maybe_decrease_to(9, 2));
  EXPECT_EQ(p.next, 6u) << "match + 1; the hint matters only in probe state";
}

// In probe state only the rejection of the latest probe (at next - 1) counts, and next moves
// to just after the follower's hint, never below 1 and never above the rejected index.
TEST(RaftProgress, MaybeDecreaseToInProbeState) {
  struct Case {
    Index next, rejected, hint;
    bool accepted;
    Index want_next;
  };
  const Case cases[] = {
      {10, 5, 3, false, 10},   // not the latest probe: stale
      {10, 9, 3, true, 4},     // jump to hint + 1
      {10, 9, 100, true, 9},   // a hint beyond the rejection is capped at the rejected index
      {10, 9, 0, true, 1},     // the follower has nothing: start from the beginning
      {1, 0, 0, true, 1},      // next never drops below 1
  };
  for (const auto& c : cases) {
    Progress p(c.next, 10, false);
    p.is_probe_sent = true;
    EXPECT_EQ(p.maybe_decrease_to(c.rejected, c.hint), c.accepted) << c.next << " " << c.rejected;
    EXPECT_EQ(p.next, c.want_next) << c.next << " " << c.rejected << " " << c.hint;
    EXPECT_EQ(p.is_probe_sent, !c.accepted) << "an accepted rejection allows the next probe";
  }
}

TEST(RaftProgress, IsPausedDependsOnState) {
  Progress probe(2, 2, false);
  EXPECT_FALSE(probe.is_paused());
  probe.sent_entries(3, 1);
  EXPECT_TRUE(probe.is_paused()) << "one probe at a time";
  EXPECT_EQ(probe.next, 2u) << "probing does not advance next optimistically";
  Progress empty_probe(2, 2, false);
  empty_probe.sent_entries(1, 0);
  EXPECT_FALSE(empty_probe.is_paused()) << "an empty append (commit only) is not a probe";

  Progress rep = replicate_at(1, 2, 2);
  rep.sent_entries(3, 2);
  EXPECT_EQ(rep.next, 4u) << "replicate streams optimistically";
  EXPECT_FALSE(rep.is_paused());
  rep.sent_entries(5, 2);
  EXPECT_TRUE(rep.is_paused()) << "window of 2 is full";

  Progress snap(2, 2, false);
  snap.become_snapshot(10);
  EXPECT_TRUE(snap.is_paused());
  EXPECT_EQ(snap.pending_snapshot, 10u);
}

TEST(RaftProgress, StateTransitionsResetTheirBookkeeping) {
  Progress p = replicate_at(5, 9, 4);
  p.inflights.add(6);
  p.inflights.add(8);
  p.become_probe();
  EXPECT_EQ(p.state, ProgressState::kProbe);
  EXPECT_EQ(p.next, 6u);
  EXPECT_EQ(p.inflights.count(), 0u);

  p.become_snapshot(20);
  p.become_probe();
  EXPECT_EQ(p.next, 21u) << "after a snapshot the follower has at least its index";
  EXPECT_EQ(p.pending_snapshot, 0u);

  p.is_probe_sent = true;
  p.match = 21;
  p.become_replicate();
  EXPECT_EQ(p.state, ProgressState::kReplicate);
  EXPECT_EQ(p.next, 22u);
  EXPECT_FALSE(p.is_probe_sent);
  EXPECT_NE(p.to_string().find("replicate match=21 next=22"), std::string::npos) << p.to_string();
}

TEST(RaftInflights, FillsUpToCapacityAndFreesInOrder) {
  Inflights in(3);
  EXPECT_EQ(in.count(), 0u);
  in.add(5);
  in.add(7);
  EXPECT_FALSE(in.is_full());
  in.add(9);
  EXPECT_TRUE(in.is_full());
  in.free_le(4);
  EXPECT_EQ(in.count(), 3u) << "nothing at or below 4";
  in.free_le(7);
  EXPECT_EQ(in.count(), 1u);
  EXPECT_FALSE(in.is_full());
  in.add(11);
  in.free_first_one();
  EXPECT_EQ(in.count(), 1u) << "frees exactly the oldest (9)";
  in.free_le(100);
  EXPECT_EQ(in.count(), 0u);
  in.free_first_one();  // no-op on an empty window
  EXPECT_EQ(in.count(), 0u);
  in.add(1);
  in.reset();
  EXPECT_EQ(in.count(), 0u);
}

// Past 64 freed slots the window compacts its storage; counts must survive that.
TEST(RaftInflights, LongStreamsSurviveCompaction) {
  Inflights in(150);
  for (Index i = 1; i <= 150; ++i) in.add(i);
  for (Index i = 1; i <= 100; ++i) {
    in.free_le(i);
    ASSERT_EQ(in.count(), 150 - i);
  }
  for (Index i = 151; i <= 250; ++i) in.add(i);
  EXPECT_TRUE(in.is_full());
  in.free_le(200);
  EXPECT_EQ(in.count(), 50u);
  in.free_first_one();
  EXPECT_EQ(in.count(), 49u);
}

TEST(RaftInflightsDeathTest, AddingToAFullWindowAsserts) {
  Inflights in(1);
  in.add(1);
  EXPECT_DEATH(in.add(2), "inflight window overflow");
}

// The window agrees with an obviously correct model (a deque of last indexes) under random
// sequences of sends and acks, long enough to exercise the lazy compaction.
RC_GTEST_PROP(RaftInflights, MatchesDequeModel, ()) {
  const auto capacity = *rc::gen::inRange<size_t>(1, 200);
  Inflights in(capacity);
  std::deque<Index> model;
  Index last = 0;
  const auto ops = *rc::gen::resize(400, rc::gen::container<std::vector<int>>(rc::gen::inRange(0, 4)));
  for (int op : ops) {
    switch (op) {
      case 0:
      case 1:
        if (model.size() < capacity) {
          last += *rc::gen::inRange<Index>(0, 3);
          in.add(last);
          model.push_back(last);
        }
        break;
      case 2: {
        Index to = last >= 5 ? last - *rc::gen::inRange<Index>(0, 5) : last;
        in.free_le(to);
        while (!model.empty() && model.front() <= to) model.pop_front();
        break;
      }
      case 3:
        in.free_first_one();
        if (!model.empty()) {
          Index first = model.front();
          while (!model.empty() && model.front() <= first) model.pop_front();
        }
        break;
    }
    RC_ASSERT(in.count() == model.size());
    RC_ASSERT(in.is_full() == (model.size() >= capacity));
  }
}

}  // namespace
}  // namespace aspen::raft
