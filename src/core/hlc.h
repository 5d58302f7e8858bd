// Hybrid logical clocks (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014): a
// timestamp that stays close to physical time yet orders causally related events, so that
// an event that could have been caused by another always carries a larger timestamp.
//
// A timestamp is (physical_ms, logical, node_id), ordered in that order: node_id breaks ties
// so that any two events of a cluster are totally ordered. Pure: the caller passes physical
// time in (any clock of milliseconds; it may go backwards, the HLC never does), so the clock
// is property-tested without a clock and runs in the simulator.
//
//   HybridLogicalClock clock(node_id);
//   HlcTimestamp t = clock.now(wall_ms);           // a local event, or stamping a message
//   auto r = clock.update(message_ts, wall_ms);    // a message received: r > message_ts
//
// Guarantees (tests/core/hlc_test.cc): timestamps one clock issues strictly increase; a
// timestamp issued after receiving one is larger than it; physical_ms never runs behind the
// largest physical time the clock was given, nor ahead of it by more than max_offset_ms
// (update refuses, and leaves the clock alone, when a message is further ahead than that).
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/types.h"

namespace aspen {

// How far ahead of this node's physical time a received timestamp may be before it is
// refused: past it, a peer's clock (or a forged timestamp) would drag this node's HLC away
// from physical time.
inline constexpr uint64_t kDefaultHlcMaxOffsetMs = 500;

struct HlcTimestamp {
  uint64_t physical_ms = 0;
  uint32_t logical = 0;
  NodeId node_id = kNoNode;

  friend auto operator<=>(const HlcTimestamp&, const HlcTimestamp&) = default;
  // "1800000000000.3@2" (ms.logical@node).
  std::string to_string() const;
};

class HybridLogicalClock {
 public:
  explicit HybridLogicalClock(NodeId node_id, uint64_t max_offset_ms = kDefaultHlcMaxOffsetMs);

  // A timestamp for a local event (or a message about to be sent): larger than every
  // timestamp this clock issued or received before.
  HlcTimestamp now(uint64_t physical_ms);
  // A message stamped `remote` arrived when physical time was `physical_ms`: advances the
  // clock past `remote` and returns the receive event's timestamp. InvalidArgument, with the
  // clock unchanged, if `remote` is more than max_offset_ms ahead of `physical_ms`.
  Result<HlcTimestamp> update(const HlcTimestamp& remote, uint64_t physical_ms);
  // The last timestamp issued (all zeros but the node id before the first).
  HlcTimestamp last() const { return HlcTimestamp{physical_ms_, logical_, node_id_}; }
  uint64_t max_offset_ms() const { return max_offset_ms_; }

 private:
  // Sets the clock to (l, c), carrying a logical counter that would overflow into the next
  // millisecond (2^32 events in one millisecond: never in practice, still well defined).
  HlcTimestamp set(uint64_t l, uint64_t c);

  const NodeId node_id_;
  const uint64_t max_offset_ms_;
  uint64_t physical_ms_ = 0;
  uint32_t logical_ = 0;
};

}  // namespace aspen
