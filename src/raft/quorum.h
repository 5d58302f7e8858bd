// Quorum arithmetic for majority and joint configurations (Raft thesis §4.3).
//
// A joint configuration needs a majority of BOTH the incoming and the outgoing voter sets for
// every decision: committing an index and winning an election. An empty outgoing set means
// "not joint" and agrees with everything.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "core/types.h"

namespace aspen::raft {

enum class VoteResult : uint8_t { kPending, kLost, kWon };

using VoterSet = std::set<NodeId>;
// Returns the acked (match) index of a voter, or nullopt if unknown.
using AckedIndexFn = std::function<std::optional<Index>(NodeId)>;

// Largest index acked by a majority of `voters`. An empty set returns kNoLimit so that it
// never holds back a joint decision.
Index majority_committed_index(const VoterSet& voters, const AckedIndexFn& acked);
VoteResult majority_vote_result(const VoterSet& voters, const std::map<NodeId, bool>& votes);

struct JointConfig {
  VoterSet incoming;
  VoterSet outgoing;  // empty unless in a joint configuration

  bool is_joint() const { return !outgoing.empty(); }
  VoterSet ids() const;
  bool contains(NodeId id) const { return incoming.contains(id) || outgoing.contains(id); }
  Index committed_index(const AckedIndexFn& acked) const;
  VoteResult vote_result(const std::map<NodeId, bool>& votes) const;
  std::string to_string() const;
};

}  // namespace aspen::raft
