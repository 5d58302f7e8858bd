#include "sim/past_read_checker.h"

#include <fmt/format.h>

namespace aspen::sim {

namespace {

// The simulated workload's keys are "k<n>" (sim/simulation.cc); reserved keys change without
// a revision of their own, so they are left out.
constexpr const char* kUserStart = "k";
constexpr const char* kUserEnd = "l";
// Checkpoints kept (the newest), and how often an observation reads one back.
constexpr size_t kMaxCheckpoints = 48;
// (Reads cost simulator time: a few in every eight observations.)
constexpr uint64_t kCheckEvery = 8;
constexpr uint64_t kCheckpointEvery = 8;
constexpr uint64_t kCheckOffset = 4;

kvpb::RangeRequest user_keys(Index revision) {
  kvpb::RangeRequest r;
  r.set_start(kUserStart);
  r.set_end(kUserEnd);
  r.set_revision(revision);
  return r;
}

std::string kvs_of(const kvpb::RangeResult& r) {
  kvpb::RangeResult only;
  *only.mutable_kvs() = r.kvs();
  return only.SerializeAsString();
}

}  // namespace

std::string PastReadChecker::observe(NodeId id, const storage::MemStore& store) {
  ++observed_;
  if (observed_ % kCheckpointEvery == 0) {
    auto now = store.range(user_keys(0));
    if (!now) return fmt::format("node {}: reading the current user keys failed: {}", id, now.error().to_string());
    if (now->has_more()) return "";  // more keys than one page: the checker compares whole pages only
    const Index current = now->revision();
    if (current > 0 && !checkpoints_.contains(current)) {
      checkpoints_.emplace(current, kvs_of(*now));
      if (checkpoints_.size() > kMaxCheckpoints) checkpoints_.erase(checkpoints_.begin());
    } else if (auto it = checkpoints_.find(current); it != checkpoints_.end() && it->second != kvs_of(*now)) {
      return fmt::format("node {}: the user keys at revision {} differ from another replica's at that revision", id,
                         current);
    }
  }
  if (observed_ % kCheckEvery != kCheckOffset || checkpoints_.empty()) return "";
  auto head = store.read_history(UINT64_MAX, 0, 0, 0, false);  // the store revision only
  if (!head) return fmt::format("node {}: reading the store revision failed: {}", id, head.error().to_string());
  const Index current = head->revision;
  // A recorded revision this store has reached, chosen by the observation count.
  auto it = checkpoints_.upper_bound(current);
  const size_t reachable = static_cast<size_t>(std::distance(checkpoints_.begin(), it));
  if (reachable == 0) return "";
  auto pick = checkpoints_.begin();
  std::advance(pick, static_cast<std::ptrdiff_t>((observed_ / kCheckEvery) % reachable));
  auto past = store.range(user_keys(pick->first));
  if (!past) {
    if (past.error().code() == ErrorCode::kCompacted) {
      ++reads_compacted_;
      return "";
    }
    return fmt::format("node {}: a read at revision {} failed: {}", id, pick->first, past.error().to_string());
  }
  ++reads_checked_;
  if (past->revision() != pick->first) {
    return fmt::format("node {}: a read at revision {} reported revision {}", id, pick->first, past->revision());
  }
  if (kvs_of(*past) != pick->second) {
    return fmt::format("node {}: a read at revision {} returned {} keys that differ from the {} current then", id,
                       pick->first, past->kvs_size(), [&] {
                         kvpb::RangeResult then;
                         then.ParseFromString(pick->second);
                         return then.kvs_size();
                       }());
  }
  return "";
}

}  // namespace aspen::sim
