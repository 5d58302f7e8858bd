// route_request: where a request that needs the leader goes (serve, relay, refuse), for each
// situation a follower can be in.
#include "node/routing.h"

#include <gtest/gtest.h>

#include "core/limits.h"
#include "rpc/error_info.h"

namespace aspen::node {
namespace {

RouteInput follower_with_leader(NodeId leader = 2) {
  RouteInput in;
  in.self = 1;
  in.leader = leader;
  in.has_leader_address = true;
  return in;
}

TEST(Routing, LeaderServesItself) {
  RouteInput in = follower_with_leader();
  in.is_leader = true;
  in.leader = 1;
  EXPECT_EQ(route_request(in, Knobs{}).kind, Route::Kind::kServeHere);
}

TEST(Routing, FollowerRelaysToAKnownLeader) {
  Route r = route_request(follower_with_leader(3), Knobs{});
  EXPECT_EQ(r.kind, Route::Kind::kForward);
  EXPECT_EQ(r.to, 3u);
  EXPECT_FALSE(r.error.has_value());
}

TEST(Routing, NoKnownLeaderIsUnavailableSoTheClientRetries) {
  Route r = route_request(follower_with_leader(kNoNode), Knobs{});
  ASSERT_EQ(r.kind, Route::Kind::kRefuse);
  EXPECT_EQ(r.error->code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error->message().find("no leader"), std::string::npos);
}

TEST(Routing, NodeThatStillNamesItselfButNoLongerLeadsRefuses) {
  Route r = route_request(follower_with_leader(1), Knobs{});
  ASSERT_EQ(r.kind, Route::Kind::kRefuse);
  EXPECT_EQ(r.error->code(), ErrorCode::kNotLeader);
}

// A leader silent for more than leader_silence_heartbeats heartbeats is probably gone: the
// request is refused before anything is sent (retryable), not relayed into the void.
TEST(Routing, SilentLeaderIsNotRelayedTo) {
  Knobs k;
  RouteInput in = follower_with_leader();
  in.leader_silent_ms = k.leader_silence_heartbeats * uint64_t{k.heartbeat_ms};
  EXPECT_EQ(route_request(in, k).kind, Route::Kind::kForward) << "at the limit: still relayed";
  in.leader_silent_ms += 1;
  Route r = route_request(in, k);
  ASSERT_EQ(r.kind, Route::Kind::kRefuse);
  EXPECT_EQ(r.error->code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error->message().find("has not been heard from"), std::string::npos);
}

TEST(Routing, HopsAreBoundedSoDisagreeingNodesCannotBounceARequestForever) {
  RouteInput in = follower_with_leader();
  in.forward_hops = limits::kMaxForwardHops - 1;
  EXPECT_EQ(route_request(in, Knobs{}).kind, Route::Kind::kForward);
  in.forward_hops = limits::kMaxForwardHops;
  Route r = route_request(in, Knobs{});
  ASSERT_EQ(r.kind, Route::Kind::kRefuse);
  EXPECT_EQ(r.error->code(), ErrorCode::kNotLeader);
  EXPECT_NE(r.error->message().find("forwarded"), std::string::npos);
}

TEST(Routing, LeaderWithoutAKnownAddressIsNamedInstead) {
  RouteInput in = follower_with_leader(4);
  in.has_leader_address = false;
  Route r = route_request(in, Knobs{});
  ASSERT_EQ(r.kind, Route::Kind::kRefuse);
  EXPECT_EQ(r.error->code(), ErrorCode::kNotLeader);
  EXPECT_NE(r.error->message().find("node 4"), std::string::npos);
}

TEST(Routing, RelaysInFlightAreBoundedByTheKnob) {
  Knobs k;
  k.max_forwards_in_flight = 3;
  RouteInput in = follower_with_leader();
  in.forwards_in_flight = 2;
  EXPECT_EQ(route_request(in, k).kind, Route::Kind::kForward);
  in.forwards_in_flight = 3;
  Route r = route_request(in, k);
  ASSERT_EQ(r.kind, Route::Kind::kRefuse);
  EXPECT_EQ(r.error->code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error->message().find("limit 3"), std::string::npos);
}

// The refusals that end with an election say so in words the client recognises (it retries
// them sooner); the others, e.g. too many relays in flight, do not.
TEST(Routing, RefusalsBetweenLeadersAreRecognisedAsElectionRefusalsAndNoOthers) {
  RouteInput no_leader = follower_with_leader(kNoNode);
  RouteInput stepping_down = follower_with_leader(1);
  RouteInput silent = follower_with_leader(2);
  silent.leader_silent_ms = 10 * uint64_t{Knobs{}.heartbeat_ms} * Knobs{}.leader_silence_heartbeats;
  for (const RouteInput& in : {no_leader, stepping_down, silent}) {
    Route r = route_request(in, Knobs{});
    ASSERT_EQ(r.kind, Route::Kind::kRefuse);
    EXPECT_TRUE(rpc::is_election_refusal(*r.error)) << r.error->to_string();
    // It survives the trip to the client.
    EXPECT_TRUE(rpc::is_election_refusal(rpc::from_error_info(rpc::to_error_info(*r.error))));
  }
  RouteInput busy = follower_with_leader(2);
  busy.forwards_in_flight = Knobs{}.max_forwards_in_flight;
  Route r = route_request(busy, Knobs{});
  ASSERT_EQ(r.kind, Route::Kind::kRefuse);
  EXPECT_FALSE(rpc::is_election_refusal(*r.error)) << r.error->to_string();
  EXPECT_FALSE(rpc::is_election_refusal(Error(ErrorCode::kUnavailable, "request rate limit reached")));
  EXPECT_FALSE(rpc::is_election_refusal(Error(ErrorCode::kInvalidArgument, std::string(rpc::kElectionUnderWay))));
}

}  // namespace
}  // namespace aspen::node
