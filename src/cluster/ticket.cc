#include "cluster/ticket.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "aspen/cluster.pb.h"

namespace aspen::cluster {
namespace {

// A ticket is untrusted text: bytes quoted back in an error are cut short and made printable
// so a garbled paste cannot flood a terminal or a log line with control characters.
constexpr size_t kMaxQuotedBytes = 64;

std::string printable(std::string_view text) {
  std::string out;
  const size_t shown = std::min(text.size(), kMaxQuotedBytes);
  out.reserve(shown + 3);
  for (size_t i = 0; i < shown; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (shown < text.size()) out += "...";
  return out;
}

std::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

// Tickets are pasted from terminals and read from files, so surrounding whitespace (a
// trailing newline above all) is not part of the ticket.
std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

Result<TicketPeer> peer_from_proto(const clusterpb::TicketPeer& pb, size_t index) {
  // Peers are numbered from 1 in messages, as an operator would count them.
  const std::string who = pb.node_id() == 0
                              ? fmt::format("ticket peer #{}", index + 1)
                              : fmt::format("ticket peer #{} (node {})", index + 1, pb.node_id());
  if (pb.public_key().size() != transport::kPublicKeySizeBytes) {
    return invalid(fmt::format("{}: public key is {} bytes, expected {}", who,
                               pb.public_key().size(), transport::kPublicKeySizeBytes));
  }
  if (pb.addrs().empty()) return invalid(fmt::format("{} has no addresses", who));

  TicketPeer peer;
  peer.node_id = pb.node_id();
  std::array<uint8_t, transport::kPublicKeySizeBytes> key{};
  std::memcpy(key.data(), pb.public_key().data(), key.size());
  peer.public_key = transport::PublicKey(key);
  peer.addrs.reserve(static_cast<size_t>(pb.addrs().size()));
  for (const std::string& text : pb.addrs()) {
    auto addr = transport::SocketAddr::parse(text);
    if (!addr) {
      return invalid(fmt::format("{}: bad address '{}' (expected ip:port or [ipv6]:port)", who,
                                 printable(text)));
    }
    peer.addrs.push_back(std::move(*addr));
  }
  return peer;
}

}  // namespace

// No limits are asserted here: the caller decides what to advertise, and decode_ticket is
// where a ticket that names too many peers or is too long is refused.
std::string encode_ticket(const Ticket& ticket) {
  clusterpb::Ticket pb;
  pb.set_cluster_id(ticket.cluster_id);
  for (const TicketPeer& peer : ticket.peers) {
    clusterpb::TicketPeer* out = pb.add_peers();
    out->set_node_id(peer.node_id);
    const auto& key = peer.public_key.bytes();
    out->set_public_key(reinterpret_cast<const char*>(key.data()), key.size());
    for (const transport::SocketAddr& addr : peer.addrs) out->add_addrs(addr.to_string());
  }
  if (ticket.gossip_follow_topic) {
    pb.set_gossip_follow_topic(ticket.gossip_follow_topic->data(), ticket.gossip_follow_topic->size());
  }
  const std::string bytes = pb.SerializeAsString();
  return std::string(kTicketPrefix) +
         transport::base32_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

Result<Ticket> decode_ticket(std::string_view text) {
  // Length first: nothing below should spend work on an oversized input.
  if (text.size() > kMaxTicketSizeBytes) {
    return invalid(fmt::format("ticket is {} bytes long; at most {} bytes are allowed", text.size(),
                               kMaxTicketSizeBytes));
  }
  text = trim(text);
  if (text.empty()) return invalid("ticket is empty");
  if (!text.starts_with(kTicketPrefix)) {
    return invalid(fmt::format("ticket must start with '{}', got '{}'", kTicketPrefix,
                               printable(text.substr(0, 16))));
  }
  auto bytes = transport::base32_decode(text.substr(kTicketPrefix.size()));
  if (!bytes) {
    return invalid(
        fmt::format("ticket is not valid base32 after the '{}' prefix (was it copied completely?)",
                    kTicketPrefix));
  }
  clusterpb::Ticket pb;
  if (!pb.ParseFromString(*bytes)) {
    return invalid("ticket contents are malformed (was it copied completely?)");
  }
  if (pb.peers().empty()) return invalid("ticket names no peers");
  if (static_cast<size_t>(pb.peers().size()) > kMaxTicketPeers) {
    return invalid(fmt::format("ticket names {} peers; at most {} are allowed", pb.peers().size(),
                               kMaxTicketPeers));
  }

  Ticket ticket;
  ticket.cluster_id = pb.cluster_id();
  // Absent (empty) in old tickets and in those of nodes with gossip off: not an error.
  if (!pb.gossip_follow_topic().empty()) {
    if (pb.gossip_follow_topic().size() != kGossipTopicSizeBytes) {
      return invalid(fmt::format("ticket's gossip follow topic is {} bytes, expected {}",
                                 pb.gossip_follow_topic().size(), kGossipTopicSizeBytes));
    }
    GossipTopic topic{};
    std::memcpy(topic.data(), pb.gossip_follow_topic().data(), topic.size());
    ticket.gossip_follow_topic = topic;
  }
  ticket.peers.reserve(static_cast<size_t>(pb.peers().size()));
  for (int i = 0; i < pb.peers().size(); ++i) {
    auto peer = peer_from_proto(pb.peers(i), static_cast<size_t>(i));
    if (!peer) return std::unexpected(peer.error());
    ticket.peers.push_back(std::move(*peer));
  }
  return ticket;
}

}  // namespace aspen::cluster
