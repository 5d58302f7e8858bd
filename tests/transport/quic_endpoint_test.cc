// Real endpoints on 127.0.0.1: handshakes, identity pinning, ALPN routing, streams, framing
// limits and hostile input.
#include <gtest/gtest.h>

#include <future>
#include <sodium.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <fmt/format.h>

#include <random>
#include <thread>

#include "core/encoding.h"
#include "transport/internal/testing.h"
#include "transport_test_util.h"

namespace aspen::transport {
namespace {

using testing::expect_echo;
using testing::kEchoAlpn;
using testing::kSinkAlpn;
using testing::TestNode;
using testing::wait_until;

TEST(QuicEndpoint, TwoEndpointsHandshakeAndEcho) {
  TestNode a, b;
  auto conn = a.dial(b);
  ASSERT_TRUE(conn) << conn.error().to_string();
  EXPECT_EQ(conn->peer_key(), b.key());
  EXPECT_EQ(conn->alpn(), kEchoAlpn);
  expect_echo(*conn, "hello");
  expect_echo(*conn, "");  // empty messages are messages too
  // The server's handler saw the client's proven key.
  ASSERT_TRUE(wait_until([&] { return b.echo->peers().size() == 1; }, std::chrono::seconds(5)));
  EXPECT_EQ(b.echo->peers()[0], a.key());
  auto m = a.endpoint->metrics();
  EXPECT_EQ(m.connections_open, 1u);
  EXPECT_GT(m.bytes_in, 0u);
  EXPECT_GT(m.bytes_out, 0u);
  ASSERT_EQ(m.peer_rtts.size(), 1u);
  EXPECT_EQ(m.peer_rtts[0].peer, b.key());
  EXPECT_GT(m.peer_rtts[0].smoothed_rtt_us, 0u);
}

// Timers run on the loop thread, not before their delay, and never after close().
TEST(QuicEndpoint, PostAfterRunsOnTheLoopOnceTheDelayPassed) {
  TestNode a;
  std::promise<std::pair<bool, std::chrono::steady_clock::time_point>> fired;
  const auto posted = std::chrono::steady_clock::now();
  a.endpoint->post_after(30, [&] { fired.set_value({a.endpoint->is_loop_thread(), std::chrono::steady_clock::now()}); });
  auto [is_loop, at] = fired.get_future().get();
  EXPECT_TRUE(is_loop);
  EXPECT_GE(at - posted, std::chrono::milliseconds(30));

  std::atomic<bool> is_late_fired{false};
  a.endpoint->post_after(60000, [&] { is_late_fired = true; });
  a.endpoint->close();  // a pending timer is dropped with the loop
  EXPECT_FALSE(is_late_fired);
}

TEST(QuicEndpoint, ThreeEndpointsEachReachTheOthers) {
  TestNode nodes[3];
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      if (i == j) continue;
      auto conn = nodes[i].dial(nodes[j]);
      ASSERT_TRUE(conn) << conn.error().to_string();
      EXPECT_EQ(conn->peer_key(), nodes[j].key());
      expect_echo(*conn, "from " + std::to_string(i) + " to " + std::to_string(j));
    }
  }
  for (int j = 0; j < 3; ++j) {
    ASSERT_TRUE(wait_until([&] { return nodes[j].echo->peers().size() == 2; }, std::chrono::seconds(5)));
    for (const auto& peer : nodes[j].echo->peers()) EXPECT_NE(peer, nodes[j].key());
  }
}

TEST(QuicEndpoint, ManyConcurrentStreams) {
  TestNode a, b;
  auto conn = a.dial(b);
  ASSERT_TRUE(conn) << conn.error().to_string();
  constexpr int kThreads = 8;
  constexpr int kStreamsPerThread = 25;  // 200 streams in all, more than the 100 limit at once
  constexpr int kMessagesPerStream = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int s = 0; s < kStreamsPerThread; ++s) {
        auto stream = conn->open_bi();
        if (!stream) {
          ADD_FAILURE() << stream.error().to_string();
          return;
        }
        bool is_good = true;
        for (int m = 0; m < kMessagesPerStream && is_good; ++m) {
          const std::string msg = fmt::format("t{} s{} m{} {}", t, s, m, std::string(static_cast<size_t>(m) * 100, 'x'));
          is_good = stream->send(msg).has_value();
          auto reply = stream->recv(10000);
          is_good = is_good && reply && reply->has_value() && **reply == msg;
        }
        stream->finish();
        auto end = stream->recv(10000);
        if (is_good && end && !end->has_value()) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kStreamsPerThread);
  // Closed streams are released on both sides.
  EXPECT_TRUE(wait_until([&] { return a.endpoint->metrics().streams_open == 0; }, std::chrono::seconds(5)));
}

TEST(QuicEndpoint, HundredMebibyteTransferArrivesIntact) {
  TestNode a, b;
  auto conn = a.dial(b, kSinkAlpn);
  ASSERT_TRUE(conn) << conn.error().to_string();
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  constexpr size_t kTotalBytes = size_t{100} << 20;
  constexpr size_t kMessageBytes = size_t{1} << 20;
  std::mt19937_64 rng(42);
  std::string message(kMessageBytes, '\0');
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 32);
  const auto start = std::chrono::steady_clock::now();
  for (size_t sent = 0; sent < kTotalBytes; sent += kMessageBytes) {
    for (size_t i = 0; i < message.size(); i += 8) {
      const uint64_t r = rng();
      std::memcpy(message.data() + i, &r, 8);
    }
    crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(message.data()), message.size());
    ASSERT_TRUE(stream->send(message, 30000));
  }
  stream->finish();
  auto reply = stream->recv(60000);
  ASSERT_TRUE(reply) << reply.error().to_string();
  ASSERT_TRUE(reply->has_value());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint8_t digest[32];
  crypto_generichash_final(&state, digest, sizeof(digest));
  Decoder d(**reply);
  EXPECT_EQ(*d.get_u64_be(), kTotalBytes);
  EXPECT_EQ(*d.get_bytes(32), std::string_view(reinterpret_cast<const char*>(digest), 32));
  std::printf("100 MiB in %.2f s (%.0f MB/s)\n", seconds, kTotalBytes / seconds / 1e6);
}

// A full kernel send buffer (EAGAIN) used to drop the datagrams, leaving loss recovery to
// resend them and congestion control to back off. Now they wait, in order, for the socket
// to drain, and the connection writes nothing new meanwhile: nothing is lost or dropped.
TEST(QuicEndpoint, FullSendBufferPausesSendingWithoutDroppingData) {
  TestNode a, b;
  auto conn = a.dial(b, kSinkAlpn);
  ASSERT_TRUE(conn) << conn.error().to_string();
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  constexpr size_t kMessages = 16;
  std::mt19937_64 rng(11);
  std::string message(size_t{1} << 20, '\0');
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 32);
  for (size_t i = 0; i < kMessages; ++i) {
    for (auto& c : message) c = static_cast<char>(rng());
    crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(message.data()), message.size());
    EndpointTestAccess::fail_next_sends(*a.endpoint, 1 + i % 3);
    ASSERT_TRUE(stream->send(message, 30000));
  }
  stream->finish();
  auto reply = stream->recv(60000);
  ASSERT_TRUE(reply) << reply.error().to_string();
  ASSERT_TRUE(reply->has_value());
  uint8_t digest[32];
  crypto_generichash_final(&state, digest, sizeof(digest));
  Decoder d(**reply);
  EXPECT_EQ(*d.get_u64_be(), kMessages * message.size());
  EXPECT_EQ(*d.get_bytes(32), std::string_view(reinterpret_cast<const char*>(digest), 32));
  const auto m = a.endpoint->metrics();
  EXPECT_GE(m.send_blocked, 1u);
  EXPECT_EQ(m.datagrams_dropped, 0u);
  // The connection is still good for small exchanges afterwards.
  auto echo = a.dial(b);
  ASSERT_TRUE(echo);
  expect_echo(*echo, "after the pause");
}

// open_bi_with opens a stream and queues its first message in one step (a request/response
// in one hand-off to the loop); with is_last the stream is finished too.
TEST(QuicEndpoint, OpenWithAMessageSendsItAndOptionallyFinishes) {
  TestNode a, b;
  auto conn = a.dial(b);
  ASSERT_TRUE(conn);
  {
    auto stream = conn->open_bi_with("first", false);
    ASSERT_TRUE(stream) << stream.error().to_string();
    ASSERT_TRUE(stream->send("second"));
    for (const char* expected : {"first", "second"}) {
      auto reply = stream->recv(5000);
      ASSERT_TRUE(reply && reply->has_value());
      EXPECT_EQ(**reply, expected);
    }
    stream->finish();
  }
  {
    auto stream = conn->open_bi_with("only", true);
    ASSERT_TRUE(stream);
    auto reply = stream->recv(5000);
    ASSERT_TRUE(reply && reply->has_value());
    EXPECT_EQ(**reply, "only");
    auto end = stream->recv(5000);  // the echo finishes after our finish
    ASSERT_TRUE(end);
    EXPECT_FALSE(end->has_value());
    auto more = stream->send("too late");
    ASSERT_FALSE(more);
    EXPECT_EQ(more.error().code(), ErrorCode::kInvalidArgument);
  }
  auto too_big = conn->open_bi_with(std::string(limits::kMaxFrameSizeBytes + 1, 'x'), true);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), ErrorCode::kMessageTooLarge);
}

// send_owned hands the buffer over instead of copying it; large owned messages become send
// chunks of their own, small ones are merged. Mixed with copied sends, everything arrives
// intact and in order.
TEST(QuicEndpoint, OwnedSendsArriveIntactAndInOrderWithCopiedOnes) {
  TestNode a, b;
  auto conn = a.dial(b);
  ASSERT_TRUE(conn);
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  std::vector<std::string> sent;
  std::mt19937_64 rng(7);
  for (size_t size : {size_t{10}, size_t{3} << 20, size_t{100}, size_t{70000}, size_t{1} << 20, size_t{5}}) {
    std::string m(size, '\0');
    for (auto& c : m) c = static_cast<char>(rng());
    sent.push_back(m);
    ASSERT_TRUE(stream->send_owned(std::move(m)));
    ASSERT_TRUE(stream->send(sent.back()));  // and the same again, copied
  }
  for (const auto& expected : sent) {
    for (int copy = 0; copy < 2; ++copy) {
      auto reply = stream->recv(10000);
      ASSERT_TRUE(reply) << reply.error().to_string();
      ASSERT_TRUE(reply->has_value());
      ASSERT_EQ(**reply, expected);
    }
  }
  auto too_big = stream->send_owned(std::string(limits::kMaxFrameSizeBytes + 1, 'x'));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), ErrorCode::kMessageTooLarge);
}

TEST(QuicEndpoint, OwnedSendOnAFinishedStreamFails) {
  TestNode a, b;
  auto conn = a.dial(b);
  ASSERT_TRUE(conn);
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  stream->finish();
  auto st = stream->send_owned(std::string(1 << 20, 'x'));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
}

TEST(QuicEndpoint, WrongPeerKeyIsRefused) {
  TestNode a, b;
  const PublicKey impostor = NodeIdentity::generate().public_key();
  auto conn = a.endpoint->connect(impostor, b.addrs(), kEchoAlpn, 5000);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(conn.error().message().find("expected " + impostor.to_string()), std::string::npos)
      << conn.error().message();
  EXPECT_GE(a.endpoint->metrics().handshake_failures, 1u);
  EXPECT_TRUE(wait_until([&] { return b.endpoint->metrics().handshake_failures >= 1; }, std::chrono::seconds(5)));
  EXPECT_EQ(b.echo->connections_.load(), 0);
  // The right key still works afterwards.
  EXPECT_TRUE(a.dial(b));
}

TEST(QuicEndpoint, UnknownAlpnIsRefused) {
  TestNode a, b;
  auto conn = a.dial(b, "no-such-protocol");
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(conn.error().message().find("does not serve protocol 'no-such-protocol'"), std::string::npos)
      << conn.error().message();
  EXPECT_EQ(b.echo->connections_.load(), 0);
}

TEST(QuicEndpoint, OversizedFrameClosesOnlyThatStream) {
  TestNode a, b;
  auto conn = a.dial(b);
  ASSERT_TRUE(conn);
  // Locally: refused before anything is sent.
  {
    auto stream = conn->open_bi();
    ASSERT_TRUE(stream);
    auto st = stream->send(std::string(limits::kMaxFrameSizeBytes + 1, 'x'));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code(), ErrorCode::kMessageTooLarge);
  }
  // From a misbehaving peer: the receiver refuses the header and resets the stream.
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  std::string header;
  put_u32_be(header, static_cast<uint32_t>(limits::kMaxFrameSizeBytes + 1));
  ASSERT_TRUE(StreamTestAccess::send_raw(*stream, header + "some bytes"));
  auto reply = stream->recv(5000);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), ErrorCode::kMessageTooLarge) << reply.error().to_string();
  // The connection and the node are fine.
  EXPECT_TRUE(conn->is_open());
  expect_echo(*conn, "still here");
}

TEST(QuicEndpoint, GarbageDatagramsAreIgnored) {
  TestNode a, b;
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(b.endpoint->local_addr().port);
  ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(1 + rng() % 1500, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (i % 3 == 0) junk[0] = static_cast<char>(junk[0] | 0xc0);  // long header: Initial-like
    if (i % 3 == 1) junk[0] = static_cast<char>((junk[0] & 0x7f) | 0x40);  // short header
    if (i % 10 == 0 && junk.size() >= 5) std::memcpy(junk.data() + 1, "\x00\x00\x00\x01", 4);  // QUIC v1
    ::sendto(fd, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  }
  ::close(fd);
  auto conn = a.dial(b);
  ASSERT_TRUE(conn) << conn.error().to_string();
  expect_echo(*conn, "after the junk");
}

TEST(QuicEndpoint, HandlerThatRefusesPeerClosesConnection) {
  struct PickyHandler : ProtocolHandler {
    void on_connection(Connection conn) override { conn.close(); }
  };
  TestNode a, b;
  ASSERT_TRUE(b.endpoint->register_handler("picky", std::make_shared<PickyHandler>()));
  auto conn = a.dial(b, "picky");
  ASSERT_TRUE(conn);
  EXPECT_TRUE(wait_until([&] { return !conn->is_open(); }, std::chrono::seconds(5)));
  auto stream = conn->open_bi(500);
  EXPECT_FALSE(stream);
}

TEST(QuicEndpoint, DuplicateHandlerIsRejected) {
  TestNode a;
  auto st = a.endpoint->register_handler(kEchoAlpn, std::make_shared<testing::EchoHandler>());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace aspen::transport
