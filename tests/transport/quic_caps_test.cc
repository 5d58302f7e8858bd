// Connection classes and receive caps with real endpoints on 127.0.0.1 (EndpointConfig's
// limits, transport/internal/admission.h): member slots survive a client flood, one address
// gets its share of client slots, our own dials take none, and partial frames over a cap
// cost the offending stream, not memory or the connection.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

#include "transport/internal/testing.h"
#include "transport_test_util.h"

namespace aspen::transport {
namespace {

using std::chrono::seconds;
using testing::expect_echo;
using testing::kEchoAlpn;
using testing::kSinkAlpn;
using testing::TestNode;
using testing::wait_until;

constexpr size_t kMiB = size_t{1} << 20;

// A header announcing a maximal frame and `payload_bytes` of it: past the decoder's upfront
// reserve, so the receiver holds a whole frame's buffer for it.
std::string partial_maximal_frame(size_t payload_bytes) {
  std::string bytes;
  append_frame_header(bytes, static_cast<uint32_t>(limits::kMaxFrameSizeBytes));
  bytes.append(payload_bytes, 'p');
  return bytes;
}

TEST(QuicConnectionClasses, MemberSlotsStayFreeWhenClientSlotsAreFull) {
  EndpointConfig config;
  config.max_client_connections = 2;
  config.member_alpns = {kSinkAlpn};
  TestNode server(config), a, b, c;
  auto to_a = a.dial(server);
  auto to_b = b.dial(server);
  ASSERT_TRUE(to_a && to_b);
  auto refused = c.dial(server);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message().find("client connection limit reached (2)"), std::string::npos)
      << refused.error().to_string();
  auto member = c.dial(server, kSinkAlpn);
  ASSERT_TRUE(member) << member.error().to_string();
  const auto m = server.endpoint->metrics();
  EXPECT_EQ(m.client_connections_open, 2u);
  EXPECT_EQ(m.member_connections_open, 1u);
  EXPECT_GE(m.client_connections_refused, 1u);
  EXPECT_GE(m.connections_refused, 1u);
}

TEST(QuicConnectionClasses, MemberKeyDecidesTheClassWhenGiven) {
  TestNode member_node, stranger;
  EndpointConfig config;
  config.max_client_connections = 0;  // no client may connect at all
  config.is_member_key = [key = member_node.key()](const PublicKey& k) { return k == key; };
  TestNode server(config);
  auto from_member = member_node.dial(server);  // on the client protocol, but a member's key
  ASSERT_TRUE(from_member) << from_member.error().to_string();
  expect_echo(*from_member, "relayed");
  auto from_stranger = stranger.dial(server);
  ASSERT_FALSE(from_stranger);
  EXPECT_NE(from_stranger.error().message().find("client connection limit"), std::string::npos);
}

TEST(QuicConnectionClasses, OneAddressGetsAtMostItsShareOfClientSlots) {
  EndpointConfig config;
  config.max_client_connections_per_address = 2;
  TestNode server(config), a, b, c;
  auto to_a = a.dial(server);
  auto to_b = b.dial(server);
  ASSERT_TRUE(to_a && to_b);
  auto to_c = c.dial(server);  // all three come from 127.0.0.1
  ASSERT_FALSE(to_c);
  EXPECT_NE(to_c.error().message().find("per-address client connection limit reached (2)"), std::string::npos)
      << to_c.error().to_string();
  EXPECT_GE(server.endpoint->metrics().address_connections_refused, 1u);
  to_a->close();
  // The slot comes back once the server has released the closed connection (after its
  // closing period).
  EXPECT_TRUE(wait_until([&] { return c.dial(server).has_value(); }, seconds(5)));
}

TEST(QuicConnectionClasses, OwnDialsTakeNoClientSlot) {
  EndpointConfig config;
  config.max_client_connections = 1;
  TestNode server(config), p1, p2, client;
  auto out1 = server.dial(p1);
  auto out2 = server.dial(p2);
  ASSERT_TRUE(out1 && out2);
  auto in = client.dial(server);
  ASSERT_TRUE(in) << in.error().to_string();
  expect_echo(*in, "a client slot was still free");
}

TEST(QuicReceiveCaps, PartialFramesOverTheConnectionCapResetOnlyTheOffendingStreams) {
  TestNode server, client;
  auto conn = client.dial(server);
  ASSERT_TRUE(conn) << conn.error().to_string();
  // Each stream pins a whole maximal frame's buffer: three fit the 32 MiB cap, the rest not.
  constexpr size_t kStreams = 6;
  std::vector<Stream> streams;
  for (size_t i = 0; i < kStreams; ++i) {
    auto s = conn->open_bi();
    ASSERT_TRUE(s) << s.error().to_string();
    ASSERT_TRUE(StreamTestAccess::send_raw(*s, partial_maximal_frame(256 * 1024)));
    streams.push_back(*s);
  }
  const size_t fit = limits::kMaxConnectionPartialFrameBytes / limits::kMaxFrameSizeBytes;
  ASSERT_TRUE(wait_until([&] { return server.endpoint->metrics().streams_refused_recv_limit >= kStreams - fit; },
                         seconds(10)));
  const auto m = server.endpoint->metrics();
  EXPECT_EQ(m.streams_refused_recv_limit, kStreams - fit);
  EXPECT_LE(m.partial_frame_bytes, limits::kMaxConnectionPartialFrameBytes);
  // The refused streams hear why; the connection itself keeps working.
  size_t told = 0;
  for (auto& s : streams) {
    auto r = s.recv(200);
    if (!r && r.error().message().find("receive buffer limit") != std::string::npos) ++told;
  }
  EXPECT_EQ(told, kStreams - fit);
  expect_echo(*conn, "still served");
  conn->close();
  EXPECT_TRUE(wait_until([&] { return server.endpoint->metrics().partial_frame_bytes == 0; }, seconds(5)));
}

TEST(QuicReceiveCaps, ClientTotalCapSparesMemberConnections) {
  EndpointConfig config;
  config.member_alpns = {kSinkAlpn};
  config.max_client_partial_frame_bytes = 15 * kMiB;
  TestNode server(config), hog1, hog2, member;
  // Two client connections, one partial maximal frame each: the second crosses the total.
  for (TestNode* hog : {&hog1, &hog2}) {
    auto conn = hog->dial(server);
    ASSERT_TRUE(conn) << conn.error().to_string();
    auto s = conn->open_bi();
    ASSERT_TRUE(s);
    ASSERT_TRUE(StreamTestAccess::send_raw(*s, partial_maximal_frame(256 * 1024)));
  }
  ASSERT_TRUE(wait_until([&] { return server.endpoint->metrics().streams_refused_recv_limit >= 1; }, seconds(10)));
  // A member still sends a 9 MiB message through, whole.
  auto to_sink = member.dial(server, kSinkAlpn);
  ASSERT_TRUE(to_sink) << to_sink.error().to_string();
  auto s = to_sink->open_bi();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->send(std::string(9 * kMiB, 'm')));
  s->finish();
  auto reply = s->recv(10000);
  ASSERT_TRUE(reply) << reply.error().to_string();
  ASSERT_TRUE(reply->has_value());
  EXPECT_EQ(server.endpoint->metrics().streams_refused_recv_limit, 1u);
}

}  // namespace
}  // namespace aspen::transport
