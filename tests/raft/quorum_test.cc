// Quorum arithmetic (thesis §4.3) checked against a brute-force model: enumerate every subset
// of the voters and ask directly "is there a majority that ...?".
#include "raft/quorum.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <vector>

#include "raft/tracker.h"

namespace aspen::raft {
namespace {

constexpr NodeId kMaxId = 7;
constexpr Index kMaxIndex = 10;

std::vector<std::vector<NodeId>> majorities(const VoterSet& voters) {
  std::vector<NodeId> v(voters.begin(), voters.end());
  std::vector<std::vector<NodeId>> out;
  for (uint32_t mask = 0; mask < (1u << v.size()); ++mask) {
    std::vector<NodeId> s;
    for (size_t i = 0; i < v.size(); ++i) {
      if (mask & (1u << i)) s.push_back(v[i]);
    }
    if (2 * s.size() > v.size()) out.push_back(s);
  }
  return out;
}

// Some majority of `voters` has every member satisfying `pred` (an empty set always agrees).
template <typename Pred>
bool some_majority_all(const VoterSet& voters, Pred pred) {
  if (voters.empty()) return true;
  for (const auto& s : majorities(voters)) {
    if (std::all_of(s.begin(), s.end(), pred)) return true;
  }
  return false;
}

struct Model {
  std::map<NodeId, std::optional<Index>> acked;
  std::map<NodeId, bool> votes;

  Index acked_or_zero(NodeId id) const {
    auto it = acked.find(id);
    return it == acked.end() ? 0 : it->second.value_or(0);
  }
  AckedIndexFn fn() const {
    return [this](NodeId id) -> std::optional<Index> {
      auto it = acked.find(id);
      return it == acked.end() ? std::nullopt : it->second;
    };
  }
  // The largest index acked by a majority of each config (kNoLimit if every config is empty).
  Index committed(const std::vector<VoterSet>& configs) const {
    std::vector<Index> candidates = {kNoLimit};
    for (Index i = 0; i <= kMaxIndex; ++i) candidates.push_back(i);
    Index best = 0;
    bool found = false;
    for (Index c : candidates) {
      bool ok = true;
      for (const auto& cfg : configs) {
        ok = ok && some_majority_all(cfg, [&](NodeId id) { return acked_or_zero(id) >= c; });
      }
      if (ok && (!found || c > best)) {
        best = c;
        found = true;
      }
    }
    return best;
  }
  bool won(const std::vector<VoterSet>& configs, bool missing_as_yes) const {
    for (const auto& cfg : configs) {
      bool ok = some_majority_all(cfg, [&](NodeId id) {
        auto it = votes.find(id);
        return it == votes.end() ? missing_as_yes : it->second;
      });
      if (!ok) return false;
    }
    return true;
  }
  VoteResult vote_result(const std::vector<VoterSet>& configs) const {
    if (won(configs, false)) return VoteResult::kWon;
    if (!won(configs, true)) return VoteResult::kLost;  // cannot win even if all the rest say yes
    return VoteResult::kPending;
  }
};

// lowest_mask 1 makes the set non-empty by construction (a precondition that discards empty
// sets would discard most cases at small sizes, where rapidcheck draws masks near 0).
rc::Gen<VoterSet> gen_voters(uint32_t lowest_mask = 0) {
  return rc::gen::map(rc::gen::inRange<uint32_t>(lowest_mask, 1u << kMaxId), [](uint32_t mask) {
    VoterSet s;
    for (NodeId id = 1; id <= kMaxId; ++id) {
      if (mask & (1u << (id - 1))) s.insert(id);
    }
    return s;
  });
}

Model gen_model() {
  Model m;
  for (NodeId id = 1; id <= kMaxId; ++id) {
    // Unknown (no progress) or an index in [0, kMaxIndex].
    if (*rc::gen::inRange(0, 4) != 0) m.acked[id] = *rc::gen::inRange<Index>(0, kMaxIndex + 1);
    int vote = *rc::gen::inRange(0, 3);  // 0 missing, 1 yes, 2 no
    if (vote != 0) m.votes[id] = vote == 1;
  }
  return m;
}

RC_GTEST_PROP(RaftQuorum, MajorityCommittedIndexMatchesBruteForce, ()) {
  const VoterSet voters = *gen_voters();
  const Model m = gen_model();
  RC_ASSERT(majority_committed_index(voters, m.fn()) == m.committed({voters}));
}

RC_GTEST_PROP(RaftQuorum, MajorityVoteResultMatchesBruteForce, ()) {
  const VoterSet voters = *gen_voters();
  const Model m = gen_model();
  RC_ASSERT(majority_vote_result(voters, m.votes) == m.vote_result({voters}));
}

RC_GTEST_PROP(RaftQuorum, JointConfigMatchesBruteForce, ()) {
  JointConfig jc;
  jc.incoming = *gen_voters();
  jc.outgoing = *gen_voters();
  const Model m = gen_model();
  RC_ASSERT(jc.committed_index(m.fn()) == m.committed({jc.incoming, jc.outgoing}));
  RC_ASSERT(jc.vote_result(m.votes) == m.vote_result({jc.incoming, jc.outgoing}));
  RC_ASSERT(jc.is_joint() == !jc.outgoing.empty());
  VoterSet all = jc.incoming;
  all.insert(jc.outgoing.begin(), jc.outgoing.end());
  RC_ASSERT(jc.ids() == all);
}

// The tracker wires progress and votes into the same arithmetic.
RC_GTEST_PROP(RaftQuorum, TrackerAgreesWithJointConfig, ()) {
  ProgressTracker trk(4);
  trk.config.voters.incoming = *gen_voters(1);
  trk.config.voters.outgoing = *gen_voters();
  const Model m = gen_model();
  for (NodeId id : trk.config.voters.ids()) {
    Progress pr(1, 4, false);
    pr.match = m.acked_or_zero(id);
    trk.progress.insert_or_assign(id, std::move(pr));
    auto it = m.votes.find(id);
    if (it != m.votes.end()) trk.record_vote(id, it->second);
  }
  std::vector<VoterSet> configs = {trk.config.voters.incoming, trk.config.voters.outgoing};
  RC_ASSERT(trk.committed() == m.committed(configs));
  std::map<NodeId, bool> voter_votes;
  for (NodeId id : trk.config.voters.ids()) {
    if (m.votes.contains(id)) voter_votes[id] = m.votes.at(id);
  }
  Model only_voters = m;
  only_voters.votes = voter_votes;
  RC_ASSERT(trk.tally_votes().result == only_voters.vote_result(configs));
}

TEST(RaftQuorum, Examples) {
  auto acked = [](std::map<NodeId, Index> m) {
    return [m](NodeId id) -> std::optional<Index> {
      auto it = m.find(id);
      return it == m.end() ? std::nullopt : std::optional<Index>(it->second);
    };
  };
  EXPECT_EQ(majority_committed_index({}, acked({})), kNoLimit);
  EXPECT_EQ(majority_committed_index({1}, acked({{1, 5}})), 5u);
  EXPECT_EQ(majority_committed_index({1, 2, 3}, acked({{1, 5}, {2, 3}, {3, 9}})), 5u);
  EXPECT_EQ(majority_committed_index({1, 2, 3, 4}, acked({{1, 5}, {2, 3}, {3, 9}, {4, 1}})), 3u);
  EXPECT_EQ(majority_committed_index({1, 2, 3}, acked({{1, 5}})), 0u) << "unknown counts as 0";
  EXPECT_EQ(majority_vote_result({1, 2, 3}, {{1, true}}), VoteResult::kPending);
  EXPECT_EQ(majority_vote_result({1, 2, 3}, {{1, true}, {2, true}}), VoteResult::kWon);
  EXPECT_EQ(majority_vote_result({1, 2, 3}, {{1, false}, {2, false}}), VoteResult::kLost);
  EXPECT_EQ(majority_vote_result({1, 2, 3, 4}, {{1, true}, {2, true}, {3, false}}), VoteResult::kPending);
  EXPECT_EQ(majority_vote_result({}, {}), VoteResult::kWon);

  JointConfig jc{{1, 2, 3}, {3, 4, 5}};
  EXPECT_EQ(jc.to_string(), "(1 2 3)&&(3 4 5)");
  JointConfig simple{{1, 2}, {}};
  EXPECT_EQ(simple.to_string(), "(1 2)");
  EXPECT_TRUE(jc.contains(5));
  EXPECT_FALSE(jc.contains(6));
  // 1, 2 win the incoming config but only 3 of {3, 4, 5} is not enough.
  EXPECT_EQ(jc.vote_result({{1, true}, {2, true}, {3, true}}), VoteResult::kPending);
  EXPECT_EQ(jc.vote_result({{1, true}, {2, true}, {3, true}, {4, true}}), VoteResult::kWon);
  EXPECT_EQ(jc.vote_result({{1, true}, {2, true}, {4, false}, {5, false}}), VoteResult::kLost);
}

}  // namespace
}  // namespace aspen::raft
