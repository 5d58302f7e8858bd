#include "raft/tracker.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace aspen::raft {

pb::ConfState TrackerConfig::to_conf_state() const {
  pb::ConfState cs;
  for (NodeId id : voters.incoming) cs.add_voters(id);
  for (NodeId id : voters.outgoing) cs.add_voters_outgoing(id);
  for (NodeId id : learners) cs.add_learners(id);
  for (NodeId id : learners_next) cs.add_learners_next(id);
  cs.set_auto_leave(auto_leave);
  return cs;
}

std::string TrackerConfig::to_string() const {
  std::string out = "voters=" + voters.to_string();
  if (!learners.empty()) out += fmt::format(" learners=({})", fmt::join(learners, " "));
  if (!learners_next.empty()) out += fmt::format(" learners_next=({})", fmt::join(learners_next, " "));
  if (auto_leave) out += " autoleave";
  return out;
}

Index ProgressTracker::committed() const {
  return config.voters.committed_index([this](NodeId id) -> std::optional<Index> {
    auto it = progress.find(id);
    if (it == progress.end()) return std::nullopt;
    return it->second.match;
  });
}

bool ProgressTracker::quorum_active() const {
  std::map<NodeId, bool> active;
  for (const auto& [id, pr] : progress) {
    if (!pr.is_learner) active[id] = pr.recent_active;
  }
  return config.voters.vote_result(active) == VoteResult::kWon;
}

ProgressTracker::Tally ProgressTracker::tally_votes() const {
  Tally t;
  for (const auto& [id, pr] : progress) {
    if (pr.is_learner) continue;
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    if (it->second) {
      ++t.granted;
    } else {
      ++t.rejected;
    }
  }
  t.result = config.voters.vote_result(votes);
  return t;
}

}  // namespace aspen::raft
