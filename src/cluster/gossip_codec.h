// The gossip wire format (the Gossip* messages of proto/aspen/cluster.proto): signed
// announcements and the message that carries them, with the limits a receiver checks before
// it trusts anything.
//
// Pure: no clock, no socket. The topic (node/gossip_topic.h) is BLAKE3 in derive-key mode
// over the cluster cookie, so nodes of one cluster meet on one topic and the cookie itself
// never travels. An
// announcement is signed with the announcer's Ed25519 node key over a domain-separated copy
// of its exact bytes; open_announcement() verifies the signature before it parses what the
// signature covers. decode_gossip_message() is the decoder of untrusted bytes (fuzzed:
// fuzz/harness, tests/cluster/gossip_codec_test.cc).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/types.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::cluster {

// A message on aspen-gossip: at most this many bytes, so per-node state and traffic stay
// bounded whatever a peer sends.
inline constexpr size_t kMaxGossipMessageBytes = 4096;
// Others' announcements one message passes on.
inline constexpr size_t kMaxGossipForwarded = 12;
// Addresses one announcement may name.
inline constexpr size_t kMaxGossipAddrs = 8;
inline constexpr size_t kGossipTopicSizeBytes = 32;
inline constexpr size_t kGossipSignatureSizeBytes = 64;
// An address is "host:port"; the longest IPv6 form with brackets and port fits.
inline constexpr size_t kMaxGossipAddrSizeBytes = 64;

using GossipTopic = std::array<uint8_t, kGossipTopicSizeBytes>;

inline constexpr std::string_view kGossipAlpn = "aspen-gossip";

struct Announcement {
  GossipTopic topic{};
  NodeId node_id = kNoNode;
  transport::PublicKey public_key;
  std::vector<transport::SocketAddr> addrs;
  uint64_t timestamp_ms = 0;
};

// An announcement as it travels: the serialized Announcement and its signature.
struct SignedAnnouncement {
  std::string announcement;
  std::string signature;
  friend bool operator==(const SignedAnnouncement&, const SignedAnnouncement&) = default;
};

// Either a node's message (sender set, follow_topic absent) or a follow request
// (follow_topic set, sender empty, nothing forwarded): a reader holding a ticket's follow
// topic asks for the announcements a node holds (cluster/gossip_follow.h).
struct GossipMessage {
  SignedAnnouncement sender;
  std::vector<SignedAnnouncement> forwarded;
  bool wants_reply = false;
  std::optional<GossipTopic> follow_topic = std::nullopt;
  // A shuffle (HyParView): `forwarded` samples the sender's views, the answer its receiver's
  // passive view (cluster/gossip.h).
  bool is_shuffle = false;
  friend bool operator==(const GossipMessage&, const GossipMessage&) = default;
};

// Serializes and signs with `identity`, whose public key must be the announcement's.
// Asserts the announcement is within the limits above.
SignedAnnouncement sign_announcement(const Announcement& announcement, const transport::NodeIdentity& identity);
// Unauthorized if the signature does not verify under the key the announcement names;
// InvalidArgument if the bytes are not a well-formed announcement within the limits.
Result<Announcement> open_announcement(const SignedAnnouncement& signed_announcement);

// The bytes of a message; std::nullopt-free: the caller keeps it under the size limit
// (encoded_size tells it how big a message would be).
std::string encode_gossip_message(const GossipMessage& message);
size_t encoded_size(const GossipMessage& message);
// MessageTooLarge over kMaxGossipMessageBytes (checked before parsing), InvalidArgument for
// bytes that are not a message or cross a limit (too many forwarded, a field of the wrong
// size, a follow request that also carries announcements). Signatures are not checked here.
Result<GossipMessage> decode_gossip_message(std::string_view bytes);

}  // namespace aspen::cluster
