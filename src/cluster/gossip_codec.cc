#include "cluster/gossip_codec.h"

#include <fmt/format.h>
#include <sodium.h>

#include <cstring>

#include "aspen/cluster.pb.h"
#include "core/assert.h"

namespace aspen::cluster {

namespace {

// What a signature covers is this prefix, then the announcement's bytes: a signature made for
// anything else with the same key (a TLS handshake, a capability token) is never one here.
constexpr std::string_view kSignatureDomain = "aspen-gossip-announcement-v1";

std::string signed_bytes(std::string_view announcement) {
  std::string out;
  out.reserve(kSignatureDomain.size() + 1 + announcement.size());
  out.append(kSignatureDomain);
  out.push_back('\0');
  out.append(announcement);
  return out;
}

std::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, "gossip: " + std::move(message));
}

clusterpb::GossipMessage to_proto(const GossipMessage& m) {
  clusterpb::GossipMessage pb;
  if (m.follow_topic) {
    pb.set_follow_topic(m.follow_topic->data(), m.follow_topic->size());
    return pb;
  }
  pb.mutable_sender()->set_announcement(m.sender.announcement);
  pb.mutable_sender()->set_signature(m.sender.signature);
  for (const auto& f : m.forwarded) {
    auto* s = pb.add_forwarded();
    s->set_announcement(f.announcement);
    s->set_signature(f.signature);
  }
  pb.set_wants_reply(m.wants_reply);
  pb.set_is_shuffle(m.is_shuffle);
  return pb;
}

bool is_signed_shape_ok(const clusterpb::SignedGossipAnnouncement& s) {
  // An announcement holds two 32-byte fields, a few integers and the addresses.
  constexpr size_t kMaxAnnouncementBytes =
      kGossipTopicSizeBytes + transport::kPublicKeySizeBytes + 32 + kMaxGossipAddrs * (kMaxGossipAddrSizeBytes + 2);
  return s.signature().size() == kGossipSignatureSizeBytes && !s.announcement().empty() &&
         s.announcement().size() <= kMaxAnnouncementBytes;
}

}  // namespace

SignedAnnouncement sign_announcement(const Announcement& a, const transport::NodeIdentity& identity) {
  ASPEN_ASSERT(a.public_key == identity.public_key());
  ASPEN_ASSERT(a.node_id != kNoNode);
  ASPEN_ASSERT(a.addrs.size() <= kMaxGossipAddrs);
  clusterpb::GossipAnnouncement pb;
  pb.set_topic(a.topic.data(), a.topic.size());
  pb.set_node_id(a.node_id);
  pb.set_public_key(a.public_key.bytes().data(), a.public_key.bytes().size());
  for (const auto& addr : a.addrs) {
    std::string text = addr.to_string();
    ASPEN_ASSERT(text.size() <= kMaxGossipAddrSizeBytes);
    pb.add_addrs(std::move(text));
  }
  pb.set_timestamp_ms(a.timestamp_ms);
  SignedAnnouncement out;
  out.announcement = pb.SerializeAsString();
  std::array<uint8_t, crypto_sign_PUBLICKEYBYTES> pk{};
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> sk{};
  const int rc = crypto_sign_seed_keypair(pk.data(), sk.data(), identity.seed().data());
  ASPEN_ASSERT(rc == 0);
  const std::string message = signed_bytes(out.announcement);
  out.signature.resize(crypto_sign_BYTES);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(out.signature.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(), sk.data());
  sodium_memzero(sk.data(), sk.size());
  static_assert(crypto_sign_BYTES == kGossipSignatureSizeBytes);
  return out;
}

Result<Announcement> open_announcement(const SignedAnnouncement& s) {
  if (s.signature.size() != kGossipSignatureSizeBytes) return invalid("a signature must be 64 bytes");
  clusterpb::GossipAnnouncement pb;
  if (!pb.ParseFromString(s.announcement)) return invalid("an announcement that does not parse");
  if (pb.public_key().size() != transport::kPublicKeySizeBytes) return invalid("an announcement's key must be 32 bytes");
  std::array<uint8_t, transport::kPublicKeySizeBytes> key{};
  std::memcpy(key.data(), pb.public_key().data(), key.size());
  // Verified before anything the announcement says is used.
  const std::string message = signed_bytes(s.announcement);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(s.signature.data()),
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                                  key.data()) != 0) {
    return make_error(ErrorCode::kUnauthorized, "gossip: an announcement's signature does not verify");
  }
  if (pb.topic().size() != kGossipTopicSizeBytes) return invalid("a topic must be 32 bytes");
  if (pb.node_id() == kNoNode) return invalid("an announcement must name a node id");
  if (static_cast<size_t>(pb.addrs_size()) > kMaxGossipAddrs) {
    return invalid(fmt::format("an announcement names {} addresses (at most {})", pb.addrs_size(), kMaxGossipAddrs));
  }
  Announcement a;
  std::memcpy(a.topic.data(), pb.topic().data(), a.topic.size());
  a.node_id = pb.node_id();
  a.public_key = transport::PublicKey(key);
  a.timestamp_ms = pb.timestamp_ms();
  for (const auto& text : pb.addrs()) {
    if (text.size() > kMaxGossipAddrSizeBytes) return invalid("an address is too long");
    auto addr = transport::SocketAddr::parse(text);
    if (!addr) return invalid(fmt::format("a bad address: {}", addr.error().message()));
    a.addrs.push_back(std::move(*addr));
  }
  return a;
}

std::string encode_gossip_message(const GossipMessage& message) { return to_proto(message).SerializeAsString(); }

size_t encoded_size(const GossipMessage& message) { return to_proto(message).ByteSizeLong(); }

Result<GossipMessage> decode_gossip_message(std::string_view bytes) {
  if (bytes.size() > kMaxGossipMessageBytes) {
    return make_error(ErrorCode::kMessageTooLarge, fmt::format("gossip: a message of {} bytes (at most {})",
                                                               bytes.size(), kMaxGossipMessageBytes));
  }
  clusterpb::GossipMessage pb;
  if (!pb.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return invalid("a message that does not parse");
  if (!pb.follow_topic().empty()) {
    // A follow request asks and tells nothing: announcements beside it are a confused or
    // hostile sender, refused whole rather than half taken.
    if (pb.follow_topic().size() != kGossipTopicSizeBytes) return invalid("a follow topic must be 32 bytes");
    if (pb.has_sender() || pb.forwarded_size() != 0) return invalid("a follow request that carries announcements");
    GossipMessage m;
    GossipTopic topic{};
    std::memcpy(topic.data(), pb.follow_topic().data(), topic.size());
    m.follow_topic = topic;
    m.wants_reply = true;  // a follow request is always answered
    return m;
  }
  if (!pb.has_sender() || !is_signed_shape_ok(pb.sender())) return invalid("a message without a well-formed sender");
  if (static_cast<size_t>(pb.forwarded_size()) > kMaxGossipForwarded) {
    return invalid(fmt::format("a message passes on {} announcements (at most {})", pb.forwarded_size(),
                               kMaxGossipForwarded));
  }
  GossipMessage m;
  m.sender = SignedAnnouncement{pb.sender().announcement(), pb.sender().signature()};
  for (const auto& f : pb.forwarded()) {
    if (!is_signed_shape_ok(f)) return invalid("a malformed passed-on announcement");
    m.forwarded.push_back(SignedAnnouncement{f.announcement(), f.signature()});
  }
  m.wants_reply = pb.wants_reply();
  m.is_shuffle = pb.is_shuffle();
  return m;
}

}  // namespace aspen::cluster
