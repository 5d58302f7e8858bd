#include "node/routing.h"

#include <fmt/format.h>

#include "core/limits.h"
#include "rpc/error_info.h"

namespace aspen::node {

namespace {
Route refuse(ErrorCode code, std::string message) {
  Route r;
  r.kind = Route::Kind::kRefuse;
  r.error = Error(code, std::move(message));
  return r;
}
}  // namespace

Route route_request(const RouteInput& in, const Knobs& knobs) {
  if (in.is_leader) return Route{Route::Kind::kServeHere, in.self, std::nullopt};
  if (in.leader == kNoNode) return refuse(ErrorCode::kUnavailable, fmt::format("no leader is known; {}", rpc::kElectionUnderWay));
  // Raft names this node but it no longer leads (it is stepping down): nobody to relay to.
  if (in.leader == in.self) {
    return refuse(ErrorCode::kNotLeader, fmt::format("leadership is changing; {}", rpc::kElectionUnderWay));
  }
  // A leader that missed several heartbeats is probably gone: a request relayed to it would
  // only wait out the client's deadline. Refusing it now (nothing was sent: retryable) lets
  // the client retry until the election, which follows within an election timeout, is over.
  if (in.leader_silent_ms > knobs.leader_silence_heartbeats * uint64_t{knobs.heartbeat_ms}) {
    return refuse(ErrorCode::kUnavailable, fmt::format("leader {} has not been heard from for {} ms; {}", in.leader,
                                                       in.leader_silent_ms, rpc::kElectionUnderWay));
  }
  // Bounded hops: nodes that disagree about the leader must not bounce a request forever.
  if (in.forward_hops >= limits::kMaxForwardHops) {
    return refuse(ErrorCode::kNotLeader,
                  fmt::format("node {} is the leader (forwarded {} times already)", in.leader, in.forward_hops));
  }
  if (!in.has_leader_address) return refuse(ErrorCode::kNotLeader, fmt::format("node {} is the leader", in.leader));
  if (in.forwards_in_flight >= knobs.max_forwards_in_flight) {
    return refuse(ErrorCode::kUnavailable,
                  fmt::format("too many requests being relayed to leader {} (limit {}); retry or send them to the leader",
                              in.leader, knobs.max_forwards_in_flight));
  }
  return Route{Route::Kind::kForward, in.leader, std::nullopt};
}

}  // namespace aspen::node
