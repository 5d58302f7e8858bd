#include "raft/quorum.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace aspen::raft {

Index majority_committed_index(const VoterSet& voters, const AckedIndexFn& acked) {
  if (voters.empty()) return kNoLimit;
  std::vector<Index> indexes;
  indexes.reserve(voters.size());
  for (NodeId id : voters) indexes.push_back(acked(id).value_or(0));
  // The (n/2+1)-th largest index is acked by a majority.
  std::sort(indexes.begin(), indexes.end(), std::greater<>());
  return indexes[voters.size() / 2];
}

VoteResult majority_vote_result(const VoterSet& voters, const std::map<NodeId, bool>& votes) {
  if (voters.empty()) return VoteResult::kWon;
  size_t granted = 0;
  size_t missing = 0;
  for (NodeId id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++granted;
    }
  }
  size_t quorum = voters.size() / 2 + 1;
  if (granted >= quorum) return VoteResult::kWon;
  if (granted + missing >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

VoterSet JointConfig::ids() const {
  VoterSet out = incoming;
  out.insert(outgoing.begin(), outgoing.end());
  return out;
}

Index JointConfig::committed_index(const AckedIndexFn& acked) const {
  return std::min(majority_committed_index(incoming, acked),
                  majority_committed_index(outgoing, acked));
}

VoteResult JointConfig::vote_result(const std::map<NodeId, bool>& votes) const {
  VoteResult r1 = majority_vote_result(incoming, votes);
  VoteResult r2 = majority_vote_result(outgoing, votes);
  if (r1 == r2) return r1;
  if (r1 == VoteResult::kLost || r2 == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;
}

std::string JointConfig::to_string() const {
  if (outgoing.empty()) return fmt::format("({})", fmt::join(incoming, " "));
  return fmt::format("({})&&({})", fmt::join(incoming, " "), fmt::join(outgoing, " "));
}

}  // namespace aspen::raft
