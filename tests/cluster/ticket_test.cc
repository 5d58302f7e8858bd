// Cluster tickets: round trip, and every way a pasted ticket can be wrong.
#include "cluster/ticket.h"

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <rapidcheck/gtest.h>

#include <string>

#include "aspen/cluster.pb.h"

namespace aspen::cluster {
namespace {

transport::PublicKey key_filled_with(uint8_t byte) {
  std::array<uint8_t, transport::kPublicKeySizeBytes> bytes{};
  bytes.fill(byte);
  return transport::PublicKey(bytes);
}

Ticket three_node_ticket() {
  Ticket ticket;
  ticket.cluster_id = "c-3f9a";
  ticket.peers.push_back({1, key_filled_with(1), {{"127.0.0.1", 7001}, {"10.0.0.1", 7001}}});
  ticket.peers.push_back({2, key_filled_with(2), {{"::1", 7002}}});
  ticket.peers.push_back({0, key_filled_with(3), {{"192.168.1.9", 65535}}});
  return ticket;
}

// A ticket built from a raw message, for contents that encode_ticket would never produce.
std::string ticket_from_proto(const clusterpb::Ticket& pb) {
  const std::string bytes = pb.SerializeAsString();
  return std::string(kTicketPrefix) +
         transport::base32_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

clusterpb::Ticket one_peer_proto() {
  clusterpb::Ticket pb;
  pb.set_cluster_id("c");
  clusterpb::TicketPeer* peer = pb.add_peers();
  peer->set_node_id(7);
  peer->set_public_key(std::string(transport::kPublicKeySizeBytes, 'k'));
  peer->add_addrs("127.0.0.1:7000");
  return pb;
}

void expect_same(const Ticket& a, const Ticket& b) {
  EXPECT_EQ(a.cluster_id, b.cluster_id);
  ASSERT_EQ(a.peers.size(), b.peers.size());
  for (size_t i = 0; i < a.peers.size(); ++i) {
    EXPECT_EQ(a.peers[i].node_id, b.peers[i].node_id);
    EXPECT_EQ(a.peers[i].public_key, b.peers[i].public_key);
    EXPECT_EQ(a.peers[i].addrs, b.peers[i].addrs);
  }
}

// The decode error, or a failure if the text decoded.
std::string decode_error(std::string_view text) {
  auto decoded = decode_ticket(text);
  if (decoded) {
    ADD_FAILURE() << "ticket unexpectedly decoded: " << text;
    return {};
  }
  EXPECT_EQ(decoded.error().code(), ErrorCode::kInvalidArgument);
  return decoded.error().message();
}

TEST(Ticket, RoundTripKeepsClusterIdPeersKeysAndAddresses) {
  const Ticket ticket = three_node_ticket();
  auto decoded = decode_ticket(encode_ticket(ticket));
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  expect_same(*decoded, ticket);
}

TEST(Ticket, GossipFollowTopicRoundTrips) {
  Ticket ticket = three_node_ticket();
  GossipTopic topic{};
  for (size_t i = 0; i < topic.size(); ++i) topic[i] = static_cast<uint8_t>(i * 7);
  ticket.gossip_follow_topic = topic;
  auto decoded = decode_ticket(encode_ticket(ticket));
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  expect_same(*decoded, ticket);
  EXPECT_EQ(decoded->gossip_follow_topic, topic);
}

TEST(Ticket, ATicketFromBeforeTheFollowTopicStillDecodesWithoutOne) {
  // Bytes as an older node wrote them: fields 1 and 2 only.
  auto decoded = decode_ticket(ticket_from_proto(one_peer_proto()));
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_FALSE(decoded->gossip_follow_topic.has_value());
  EXPECT_EQ(decoded->peers.size(), 1u);
  // And a ticket without one encodes to what an older node reads (no field 3 at all).
  clusterpb::Ticket pb;
  const std::string text = encode_ticket(three_node_ticket());
  auto bytes = transport::base32_decode(text.substr(kTicketPrefix.size()));
  ASSERT_TRUE(bytes);
  ASSERT_TRUE(pb.ParseFromString(*bytes));
  EXPECT_TRUE(pb.gossip_follow_topic().empty());
}

TEST(Ticket, AGossipFollowTopicOfTheWrongSizeIsRefused) {
  for (size_t size : {1, 31, 33, 4000}) {
    clusterpb::Ticket pb = one_peer_proto();
    pb.set_gossip_follow_topic(std::string(size, 't'));
    const std::string text = ticket_from_proto(pb);
    if (text.size() > kMaxTicketSizeBytes) {
      EXPECT_NE(decode_error(text).find("at most 4096 bytes"), std::string::npos);
      continue;
    }
    EXPECT_EQ(decode_error(text), fmt::format("ticket's gossip follow topic is {} bytes, expected 32", size));
  }
}

TEST(Ticket, EncodedTicketIsPrefixedLowercaseBase32) {
  const std::string text = encode_ticket(three_node_ticket());
  ASSERT_TRUE(text.starts_with("aspen"));
  for (char c : text.substr(kTicketPrefix.size())) {
    EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << "unexpected '" << c << "'";
  }
}

TEST(Ticket, SurroundingWhitespaceFromAPasteOrFileIsIgnored) {
  const Ticket ticket = three_node_ticket();
  auto decoded = decode_ticket("  " + encode_ticket(ticket) + "\n");
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  expect_same(*decoded, ticket);
}

TEST(Ticket, EmptyTicketIsRefused) {
  EXPECT_EQ(decode_error(""), "ticket is empty");
  EXPECT_EQ(decode_error(" \n"), "ticket is empty");
}

TEST(Ticket, TicketWithoutAspenPrefixIsRefused) {
  const std::string text = encode_ticket(three_node_ticket());
  EXPECT_NE(decode_error(text.substr(kTicketPrefix.size())).find("must start with 'aspen'"),
            std::string::npos);
  EXPECT_NE(decode_error("ASPEN" + text.substr(5)).find("must start with 'aspen'"),
            std::string::npos);
}

TEST(Ticket, BadBase32IsRefused) {
  EXPECT_NE(decode_error("aspen01!").find("not valid base32"), std::string::npos);
  // A truncated paste leaves non-zero trailing bits.
  const std::string text = encode_ticket(three_node_ticket());
  for (size_t cut = 1; cut <= 8; ++cut) {
    auto decoded = decode_ticket(text.substr(0, text.size() - cut));
    ASSERT_FALSE(decoded) << "cut " << cut;
    EXPECT_EQ(decoded.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(Ticket, MalformedContentsAreRefused) {
  const std::string garbage = "\xff\xff\xff\xff";
  const std::string text =
      "aspen" +
      transport::base32_encode(reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size());
  EXPECT_NE(decode_error(text).find("contents are malformed"), std::string::npos);
}

TEST(Ticket, TicketWithoutPeersIsRefused) {
  Ticket ticket;
  ticket.cluster_id = "c";
  EXPECT_EQ(decode_error(encode_ticket(ticket)), "ticket names no peers");
}

TEST(Ticket, TicketWithTooManyPeersIsRefused) {
  Ticket ticket;
  for (uint64_t id = 1; id <= kMaxTicketPeers + 1; ++id) {
    ticket.peers.push_back({id, key_filled_with(static_cast<uint8_t>(id)), {{"10.0.0.1", 1}}});
  }
  EXPECT_EQ(decode_error(encode_ticket(ticket)), "ticket names 17 peers; at most 16 are allowed");

  ticket.peers.pop_back();
  EXPECT_TRUE(decode_ticket(encode_ticket(ticket)));
}

TEST(Ticket, TooLongTicketIsRefusedBeforeDecoding) {
  // Not base32 either: the length is what gets reported, so no work is spent on the rest.
  const std::string text = "aspen" + std::string(kMaxTicketSizeBytes, '!');
  EXPECT_EQ(decode_error(text), "ticket is 4101 bytes long; at most 4096 bytes are allowed");

  // A well-formed ticket that grew past the limit (too many addresses) is refused too.
  Ticket ticket = three_node_ticket();
  for (uint16_t port = 1; port < 200; ++port) ticket.peers[0].addrs.push_back({"10.1.2.3", port});
  const std::string long_ticket = encode_ticket(ticket);
  ASSERT_GT(long_ticket.size(), kMaxTicketSizeBytes);
  EXPECT_NE(decode_error(long_ticket).find("at most 4096 bytes"), std::string::npos);
}

TEST(Ticket, PeerWithoutAddressesIsRefused) {
  clusterpb::Ticket pb = one_peer_proto();
  pb.mutable_peers(0)->clear_addrs();
  EXPECT_EQ(decode_error(ticket_from_proto(pb)), "ticket peer #1 (node 7) has no addresses");
}

TEST(Ticket, PeerWithUnparsableAddressIsRefused) {
  for (const char* bad : {"localhost:7000", "127.0.0.1", "127.0.0.1:70000", "[::1:7000", ""}) {
    clusterpb::Ticket pb = one_peer_proto();
    pb.mutable_peers(0)->add_addrs(bad);
    const std::string message = decode_error(ticket_from_proto(pb));
    EXPECT_NE(message.find("ticket peer #1 (node 7): bad address '" + std::string(bad) + "'"),
              std::string::npos)
        << message;
  }
}

TEST(Ticket, AddressInErrorIsMadePrintableAndShortened) {
  clusterpb::Ticket pb = one_peer_proto();
  pb.mutable_peers(0)->add_addrs("\x1b[2J" + std::string(100, 'x'));
  const std::string message = decode_error(ticket_from_proto(pb));
  EXPECT_EQ(message.find('\x1b'), std::string::npos);
  EXPECT_NE(message.find("?[2J"), std::string::npos);
  EXPECT_NE(message.find("..."), std::string::npos);
  EXPECT_LT(message.size(), 160u);
}

TEST(Ticket, PublicKeyOfWrongSizeIsRefused) {
  for (size_t size : {size_t{0}, size_t{31}, size_t{33}}) {
    clusterpb::Ticket pb = one_peer_proto();
    pb.mutable_peers(0)->set_public_key(std::string(size, 'k'));
    pb.mutable_peers(0)->set_node_id(0);
    EXPECT_EQ(decode_error(ticket_from_proto(pb)),
              "ticket peer #1: public key is " + std::to_string(size) + " bytes, expected 32");
  }
}

rc::Gen<transport::SocketAddr> gen_addr() {
  return rc::gen::map(
      rc::gen::tuple(rc::gen::arbitrary<std::array<uint8_t, 4>>(), rc::gen::arbitrary<uint16_t>()),
      [](const auto& parts) {
        const auto& [octets, port] = parts;
        return transport::SocketAddr{std::to_string(octets[0]) + "." + std::to_string(octets[1]) +
                                         "." + std::to_string(octets[2]) + "." +
                                         std::to_string(octets[3]),
                                     port};
      });
}

rc::Gen<TicketPeer> gen_peer() {
  return rc::gen::map(
      rc::gen::tuple(rc::gen::arbitrary<uint64_t>(),
                     rc::gen::arbitrary<std::array<uint8_t, transport::kPublicKeySizeBytes>>(),
                     rc::gen::container<std::vector<transport::SocketAddr>>(
                         *rc::gen::inRange<size_t>(1, 4), gen_addr())),
      [](const auto& parts) {
        const auto& [id, key, addrs] = parts;
        return TicketPeer{id, transport::PublicKey(key), addrs};
      });
}

RC_GTEST_PROP(TicketProperty, DecodeNeverCrashesOnArbitraryText, (const std::string& text)) {
  for (const std::string& candidate : {text, "aspen" + text}) {
    auto decoded = decode_ticket(candidate);
    if (!decoded) RC_ASSERT(decoded.error().code() == ErrorCode::kInvalidArgument);
  }
}

RC_GTEST_PROP(TicketProperty, DecodeNeverCrashesOnArbitraryContents, (const std::string& bytes)) {
  // Valid base32 of random bytes reaches the protobuf parser and the field checks.
  const std::string text =
      "aspen" +
      transport::base32_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto decoded = decode_ticket(text);
  if (!decoded) RC_ASSERT(decoded.error().code() == ErrorCode::kInvalidArgument);
}

RC_GTEST_PROP(TicketProperty, RandomTicketsRoundTrip, ()) {
  Ticket ticket;
  // Cluster ids are ASCII: a protobuf string field must be valid UTF-8 to parse back.
  ticket.cluster_id = *rc::gen::container<std::string>(*rc::gen::inRange<size_t>(0, 33),
                                                       rc::gen::inRange<char>('!', '~' + 1));
  ticket.peers = *rc::gen::container<std::vector<TicketPeer>>(
      *rc::gen::inRange<size_t>(1, kMaxTicketPeers + 1), gen_peer());
  if (*rc::gen::arbitrary<bool>()) ticket.gossip_follow_topic = *rc::gen::arbitrary<GossipTopic>();
  const std::string text = encode_ticket(ticket);
  RC_ASSERT(text.size() <= kMaxTicketSizeBytes);  // these bounds always fit
  auto decoded = decode_ticket(text);
  RC_ASSERT(decoded.has_value());
  RC_ASSERT(decoded->cluster_id == ticket.cluster_id);
  RC_ASSERT(decoded->peers.size() == ticket.peers.size());
  RC_ASSERT(decoded->gossip_follow_topic == ticket.gossip_follow_topic);
  for (size_t i = 0; i < ticket.peers.size(); ++i) {
    RC_ASSERT(decoded->peers[i].node_id == ticket.peers[i].node_id);
    RC_ASSERT(decoded->peers[i].public_key == ticket.peers[i].public_key);
    RC_ASSERT(decoded->peers[i].addrs == ticket.peers[i].addrs);
  }
}

}  // namespace
}  // namespace aspen::cluster
