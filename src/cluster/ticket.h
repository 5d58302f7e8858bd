// Cluster tickets: one copy-pasteable string that tells a client (or a joining node) which
// cluster to talk to and how to reach it.
//
// Format: "aspen" followed by lowercase base32 (RFC 4648, no padding) of a serialized
// clusterpb::Ticket {cluster id, bootstrap peers' node ids, public keys and addresses, and
// optionally the cluster's gossip follow topic}. Tickets made before the follow topic existed
// still decode (without one).
// Printed by aspen-node at start, returned by GetClusterTicket, accepted by aspen-cli
// (--ticket or ASPEN_TICKET) and the client library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/gossip_codec.h"
#include "core/error.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::cluster {

inline constexpr std::string_view kTicketPrefix = "aspen";
inline constexpr size_t kMaxTicketPeers = 16;
inline constexpr size_t kMaxTicketSizeBytes = 4096;

struct TicketPeer {
  uint64_t node_id = 0;  // 0 = unknown (a bare address)
  transport::PublicKey public_key;
  std::vector<transport::SocketAddr> addrs;
};

struct Ticket {
  std::string cluster_id;
  std::vector<TicketPeer> peers;
  // What lets a holder without the cookie follow gossip (cluster/gossip_follow.h): absent in
  // tickets of nodes with gossip off and in tickets made before it existed.
  std::optional<GossipTopic> gossip_follow_topic = std::nullopt;
};

std::string encode_ticket(const Ticket& ticket);
// InvalidArgument naming what is wrong: missing prefix, bad base32, malformed contents, no
// peers, too many peers (kMaxTicketPeers), too long (kMaxTicketSizeBytes), a peer without
// addresses or with an unparsable address, a gossip follow topic that is not 32 bytes.
Result<Ticket> decode_ticket(std::string_view text);

}  // namespace aspen::cluster
