// What an operator tells a node about gossip discovery (docs/operations.md, "Discovery"):
// whether it runs, how often a node announces itself, and where a node that knows no peer
// looks for its first ones. Kept apart from cluster/gossip.h so that NodeConfig does not pull
// in the protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "transport/address_book.h"

namespace aspen::cluster {

inline constexpr uint32_t kDefaultGossipIntervalMs = 10000;
inline constexpr uint32_t kMinGossipIntervalMs = 50;
inline constexpr uint32_t kMaxGossipIntervalMs = 600000;
// Announcements one peer may send a node per minute before the rest are refused (the issue's
// "12 per minute"): twice what a peer sends at the default interval.
inline constexpr uint32_t kDefaultGossipPeerMessagesPerMin = 12;
inline constexpr uint32_t kMaxGossipPeerMessagesPerMin = 60000;
// Without seeds, a node probes these ports on its own bind address (127.0.0.1 for a
// wildcard bind) until it knows a peer: nodes started on the same machine with the ports the
// docs and scripts use (7001, 7002, ...) find each other with nothing but the cookie.
inline constexpr uint16_t kDefaultGossipProbePortFirst = 7000;
inline constexpr uint16_t kDefaultGossipProbePortLast = 7015;
inline constexpr size_t kMaxGossipProbePorts = 64;
inline constexpr size_t kMaxGossipSeeds = 64;

struct GossipSettings {
  bool is_enabled = true;                                       // --disable-gossip turns it off
  uint32_t interval_ms = kDefaultGossipIntervalMs;              // --gossip-interval-ms
  uint32_t peer_messages_per_min = kDefaultGossipPeerMessagesPerMin;  // --gossip-peer-rate-per-min
  std::vector<transport::SocketAddr> seeds;                     // --gossip-seeds host:port,...
  // --gossip-probe-ports FIRST-LAST ("none": no probing); inclusive.
  uint16_t probe_port_first = kDefaultGossipProbePortFirst;
  uint16_t probe_port_last = kDefaultGossipProbePortLast;

  bool has_probe_ports() const { return probe_port_first != 0 && probe_port_first <= probe_port_last; }
  friend bool operator==(const GossipSettings&, const GossipSettings&) = default;
};

}  // namespace aspen::cluster
