// PeerMonitor: what a node knows about each peer's liveness and clock, from its Raft traffic
// (issue 17: failure detection and clock drift detection). Sans-I/O: the shell passes every
// clock reading in, so the rules here are unit-tested without a node.
//
// Reachability: when a Raft message last arrived from the peer, and whether the transport
// reported the peer's address dead (ICMP unreachable, a failed dial) since. Only peers this
// node expects messages from are judged: the leader hears every member (heartbeat answers),
// a follower hears only its leader; the rest are "unknown".
//
// Clocks: the shell stamps outgoing heartbeats and heartbeat answers (stamp) and feeds every
// received message (on_received). The leader estimates each follower's offset from the four
// timestamps of a heartbeat round (clock_offset.h) and tells each follower its own offset in
// later heartbeats, so every node knows its offset from the leader, and the offsets of two
// followers from each other follow. RaftCore never sees any of this.
//
//   PeerMonitor m(warn_ms);
//   m.stamp(msg, wall_us, now_ms);                     // each outgoing message [loop]
//   if (auto n = m.on_received(msg, wall_us, now_ms))  // each checked incoming message
//     log(describe(*n, self, warn_ms));
//   m.on_unreachable(peer, now_ms);  m.on_leader(leader, now_ms);
//   m.peer_view(peer, ...);  m.own_offset_from_leader(now_ms);
//
// Bounded: one small record per peer, and only for members (the shell feeds only messages
// that passed the Raft link's checks), at most kMaxMonitoredPeers.
//
// Threads: the loop's only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aspen/raft.pb.h"
#include "core/types.h"
#include "node/clock_offset.h"

namespace aspen::node {

namespace pb = aspen::raftpb;

// More peers than any membership holds (voters + learners + those leaving); records beyond
// it are not made.
inline constexpr size_t kMaxMonitoredPeers = 256;
// At most one clock notice per peer this often, however the offset moves around the
// threshold: a clock that is off stays in the log without flooding it.
inline constexpr uint64_t kClockNoticeIntervalMs = 60'000;
// A leader's word on this node's offset is shown while newer than this.
inline constexpr uint64_t kToldOffsetMaxAgeMs = 30'000;

enum class Reachability : uint8_t { kUnknown, kReachable, kSuspect, kUnreachable };
// unknown | reachable | suspect | unreachable
const char* reachability_name(Reachability r);

struct ReachabilityInput {
  bool expects_messages = false;           // the leader: every peer; a follower: its leader
  uint64_t expected_since_ms = 0;          // when it began to expect them (leader change)
  std::optional<uint64_t> last_heard_ms;   // the peer's last Raft message
  std::optional<uint64_t> last_unreachable_ms;  // the transport's last report of it as dead
  uint64_t now_ms = 0;
  uint32_t heartbeat_ms = 100;
  uint32_t election_timeout_ms = 1000;
};

// reachable: heard within two heartbeat intervals; suspect: silent longer, up to the election
// timeout; unreachable: silent longer than that, or reported dead since its last message;
// unknown: not expected to speak. Silence counts from the later of its last message and
// expected_since_ms, so a new leader does not call everyone unreachable at once.
Reachability classify_reachability(const ReachabilityInput& in);

// Something about a clock worth a line in the log.
struct ClockNotice {
  enum class Kind : uint8_t { kPastThreshold, kBackWithin };
  Kind kind = Kind::kPastThreshold;
  NodeId peer = kNoNode;      // the peer measured; the leader when is_own_offset
  bool is_own_offset = false; // this node's offset from the leader, as the leader measured it
  // is_own_offset: this node's clock minus the leader's; else the peer's clock minus this
  // node's.
  int64_t offset_us = 0;
  int64_t rtt_us = 0;  // the round trip behind it (0: not known here)
  friend bool operator==(const ClockNotice&, const ClockNotice&) = default;
};

// The log line for a notice, for an operator (names the knob and what drift affects).
std::string describe(const ClockNotice& n, NodeId self, uint32_t warn_ms);

// The members a node watches: voters, learners and outgoing voters of `cs` but itself, sorted.
std::vector<NodeId> monitored_peers(const pb::ConfState& cs, NodeId self);

class PeerMonitor {
 public:
  // warn_ms: an offset past it (in either direction) is a notice; 0: never.
  explicit PeerMonitor(uint32_t warn_ms) : warn_ms_(warn_ms) {}

  // Stamps an outgoing message: a heartbeat gets the wall clock (t1) and, when known, the
  // recipient's offset; an answer to a heartbeat echoes that heartbeat's t1 and arrival time
  // (t2) with the wall clock now (t3). Other messages are left alone.
  void stamp(pb::Message& m, int64_t wall_us, uint64_t now_ms);
  // A message from `m.from()` that passed the link's checks, received at wall_us (this
  // node's wall clock) and now_ms (a monotonic clock). A notice, when a clock crossed the
  // threshold (rate-limited: kClockNoticeIntervalMs per peer).
  std::optional<ClockNotice> on_received(const pb::Message& m, int64_t wall_us, uint64_t now_ms);
  // The transport found the peer's address dead.
  void on_unreachable(NodeId peer, uint64_t now_ms);
  // The leader this node knows changed (kNoNode: none); is_self: this node leads.
  void on_leader(NodeId leader, bool is_self, uint64_t now_ms);

  struct PeerView {
    Reachability reachability = Reachability::kUnknown;
    std::optional<uint64_t> last_heard_ago_ms;
    std::optional<ClockSample> clock;  // the peer's clock minus this node's (rtt 0: not measured here)
  };
  PeerView peer_view(NodeId peer, uint64_t now_ms, uint32_t heartbeat_ms, uint32_t election_timeout_ms) const;
  // This node's clock minus the leader's, as the leader last told it (0 on the leader).
  std::optional<int64_t> own_offset_from_leader(uint64_t now_ms) const;
  // Warnings given (kPastThreshold notices).
  uint64_t warnings() const { return warnings_; }
  // The metrics page's samples (HELP and TYPE included) for `peers`, labelled node_id=self:
  // aspen_peer_reachability{peer,state}, aspen_peer_last_heard_seconds{peer},
  // aspen_clock_offset_seconds{peer}, aspen_clock_rtt_seconds{peer},
  // aspen_clock_offset_from_leader_seconds, aspen_clock_offset_warnings_total.
  std::string prometheus_samples(NodeId self, const std::vector<NodeId>& peers, uint64_t now_ms,
                                 uint32_t heartbeat_ms, uint32_t election_timeout_ms) const;

 private:
  struct Peer {
    std::optional<uint64_t> last_heard_ms;
    std::optional<uint64_t> last_unreachable_ms;
    // The last heartbeat from this peer, until answered: its t1 and our t2.
    std::optional<std::pair<int64_t, int64_t>> pending_echo;
    ClockFilter filter;  // as leader: this follower's offset
    std::optional<uint64_t> last_notice_ms;
    bool is_past_threshold = false;
  };
  Peer* peer(NodeId id);
  std::optional<ClockNotice> check_threshold(Peer& p, ClockNotice candidate, uint64_t now_ms);

  uint32_t warn_ms_;
  std::map<NodeId, Peer> peers_;
  NodeId leader_ = kNoNode;
  bool is_leader_ = false;
  uint64_t leader_since_ms_ = 0;
  // What the leader last told about this node's offset.
  struct Told {
    NodeId leader = kNoNode;
    int64_t offset_us = 0;
    uint64_t at_ms = 0;
  };
  std::optional<Told> told_;
  uint64_t warnings_ = 0;
};

}  // namespace aspen::node
