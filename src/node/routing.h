// Routing: where a client request that needs the leader goes, decided without I/O. The node
// shell asks it for every write, membership change or linearizable request that reaches a
// node; the answer is to serve it here, to relay it to the leader, or to refuse it now with
// an error the client can act on (NotLeader naming the leader, or Unavailable: retry).
#pragma once

#include <cstdint>
#include <optional>

#include "core/error.h"
#include "core/types.h"
#include "node/knobs.h"

namespace aspen::node {

struct RouteInput {
  NodeId self = kNoNode;
  NodeId leader = kNoNode;      // as this node's Raft knows it (kNoNode: none)
  bool is_leader = false;
  uint64_t leader_silent_ms = 0;  // since this node last heard from the leader
  uint32_t forward_hops = 0;      // relays the request already went through
  bool has_leader_address = false;
  size_t forwards_in_flight = 0;  // requests this node relays now, unanswered
};

struct Route {
  enum class Kind : uint8_t { kServeHere, kForward, kRefuse };
  Kind kind = Kind::kRefuse;
  NodeId to = kNoNode;         // kForward: the leader
  std::optional<Error> error;  // kRefuse: what the client is told
};

Route route_request(const RouteInput& in, const Knobs& knobs);

}  // namespace aspen::node
