// A node's hybrid logical clock and the stamps of its Raft log (issue 17, "Time"). Pure: the
// physical time is passed in. NodeCore owns one and uses it on its single thread:
//   - every Raft message it sends carries the clock (raft.proto Message.hlc_*): stamp();
//   - every message it receives advances the clock past the message's stamp and past the
//     stamps of the entries it carries: receive();
//   - every command the leader proposes is stamped (kv.proto Command.hlc): stamp_proposal().
//
// The log invariant: stamped entries' stamps strictly increase with the log index. A leader
// holds it by stamping each proposal above both its clock and the largest stamp it has seen
// in any log entry (log_max). Raft's log matching makes every log a prefix of some leader's
// log at some time, so every log, and the committed log, keeps the order.
//
// A stamp further ahead of this node's physical time than max_offset_ms (a peer's clock far
// ahead, or a forged stamp) is refused by the clock, which stays within max_offset_ms of
// physical time, and counted; the message is still stepped (Raft's safety never depends on
// the HLC). But an entry's stamp is part of the log and cannot be refused: log_max still
// records it, so the next proposal is stamped above it (the order invariant wins over the
// distance from physical time for the entries after it, until physical time catches up).
// Stamps are clamped (kv/command_hlc.h), so a forged 2^64 cannot overflow anything.
#pragma once

#include <optional>
#include <string>

#include "aspen/raft.pb.h"
#include "core/hlc.h"

namespace aspen::node {

class NodeHlc {
 public:
  explicit NodeHlc(NodeId self, uint64_t max_offset_ms = kDefaultHlcMaxOffsetMs) : clock_(self, max_offset_ms) {}

  // Stamps an outgoing message with a new clock reading.
  void stamp(raftpb::Message& m, uint64_t physical_ms);
  // A message arrived: advances the clock past its stamp and its entries' stamps, and
  // log_max past its entries'. Returns why a stamp was refused (too far ahead), if one was.
  std::optional<std::string> receive(const raftpb::Message& m, uint64_t physical_ms);
  // The stamp for a command this node (the leader) proposes now: above the clock's every
  // earlier reading and above log_max. Becomes the new log_max.
  HlcTimestamp stamp_proposal(uint64_t physical_ms);
  // The log or the applied state holds a stamp `t`: a restart passes the store's applied stamp
  // and the last stamped log entry, a snapshot install its applied stamp.
  void saw_log_stamp(const HlcTimestamp& t);

  HlcTimestamp clock_last() const { return clock_.last(); }
  std::optional<HlcTimestamp> log_max() const { return log_max_; }
  uint64_t refused_total() const { return refused_total_; }

 private:
  std::optional<std::string> advance(const HlcTimestamp& remote, uint64_t physical_ms);

  HybridLogicalClock clock_;
  std::optional<HlcTimestamp> log_max_;
  uint64_t refused_total_ = 0;
};

// The message's HLC stamp (node id = the sender), clamped; nullopt when it carries none.
std::optional<HlcTimestamp> message_hlc(const raftpb::Message& m);

}  // namespace aspen::node
