// Address validation with Retry: the token itself (forged, expired, replayed from another
// address or for another connection ID), and real handshakes through it on 127.0.0.1,
// including a client whose token is tampered with on the way.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "transport/internal/retry.h"
#include "transport_test_util.h"

namespace aspen::transport {
namespace {

using internal::PeerAddr;
using internal::RetryTokens;
using std::chrono::seconds;
using testing::TestNode;

PeerAddr loopback(uint16_t port) {
  PeerAddr a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.addr);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.len = sizeof(sockaddr_in);
  return a;
}

ngtcp2_cid cid_of(uint8_t fill, size_t len) {
  ngtcp2_cid c{};
  c.datalen = len;
  std::memset(c.data, fill, len);
  return c;
}

struct TokenFixture {
  std::array<uint8_t, RetryTokens::kSecretBytes> secret{1, 2, 3};
  RetryTokens tokens{secret};
  PeerAddr client = loopback(4242);
  ngtcp2_cid retry_scid = cid_of(0xaa, 16);
  ngtcp2_cid odcid = cid_of(0xbb, 18);
  uint64_t t0 = 1000 * NGTCP2_SECONDS;
  std::vector<uint8_t> token = tokens.make_token(client, retry_scid, odcid, NGTCP2_PROTO_VER_V1, t0);
};

TEST(QuicRetryToken, ValidTokenGivesBackTheOriginalDcid) {
  TokenFixture f;
  auto odcid = f.tokens.check_token(f.token, f.client, f.retry_scid, NGTCP2_PROTO_VER_V1, f.t0 + NGTCP2_SECONDS);
  ASSERT_TRUE(odcid.has_value());
  EXPECT_TRUE(ngtcp2_cid_eq(&*odcid, &f.odcid));
}

TEST(QuicRetryToken, ExpiredTokenIsRefused) {
  TokenFixture f;
  EXPECT_FALSE(f.tokens.check_token(f.token, f.client, f.retry_scid, NGTCP2_PROTO_VER_V1,
                                    f.t0 + RetryTokens::kLifetimeNs + 1));
}

TEST(QuicRetryToken, ForgedTokenIsRefused) {
  TokenFixture f;
  for (size_t i = 1; i < f.token.size(); ++i) {
    auto forged = f.token;
    forged[i] ^= 0x01;
    EXPECT_FALSE(f.tokens.check_token(forged, f.client, f.retry_scid, NGTCP2_PROTO_VER_V1, f.t0)) << "byte " << i;
  }
  // Sealed under another node's secret.
  std::array<uint8_t, RetryTokens::kSecretBytes> other_secret{9};
  RetryTokens other(other_secret);
  EXPECT_FALSE(other.check_token(f.token, f.client, f.retry_scid, NGTCP2_PROTO_VER_V1, f.t0));
  // Made up from scratch, with the right magic byte.
  std::vector<uint8_t> invented(f.token.size(), 0x42);
  invented[0] = NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY;
  EXPECT_FALSE(f.tokens.check_token(invented, f.client, f.retry_scid, NGTCP2_PROTO_VER_V1, f.t0));
  EXPECT_FALSE(f.tokens.check_token({}, f.client, f.retry_scid, NGTCP2_PROTO_VER_V1, f.t0));
}

TEST(QuicRetryToken, TokenIsBoundToTheClientAddressAndConnectionId) {
  TokenFixture f;
  EXPECT_FALSE(f.tokens.check_token(f.token, loopback(4243), f.retry_scid, NGTCP2_PROTO_VER_V1, f.t0));
  EXPECT_FALSE(f.tokens.check_token(f.token, f.client, cid_of(0xab, 16), NGTCP2_PROTO_VER_V1, f.t0));
}

// Forwards datagrams between one client and a server, flipping a bit in the token of every
// client Initial that carries one: a client that received a Retry then presents a forged
// token.
class TokenTamperingProxy {
 public:
  explicit TokenTamperingProxy(uint16_t server_port) : server_(loopback(server_port)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    PeerAddr any = loopback(0);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&any.addr), any.len), 0);
    sockaddr_in self{};
    socklen_t len = sizeof(self);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&self), &len);
    port_ = ntohs(self.sin_port);
    timeval tv{0, 20000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    thread_ = std::thread([this] { run(); });
  }
  ~TokenTamperingProxy() {
    is_stopped_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int tampered() const { return tampered_.load(); }

 private:
  void run() {
    std::vector<uint8_t> buf(65536);
    PeerAddr client;
    while (!is_stopped_) {
      PeerAddr from;
      from.len = sizeof(from.addr);
      const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from.addr), &from.len);
      if (n <= 0) continue;
      const auto* in = reinterpret_cast<const sockaddr_in*>(&from.addr);
      const bool is_from_server = in->sin_port == reinterpret_cast<const sockaddr_in*>(&server_.addr)->sin_port;
      if (!is_from_server) {
        client = from;
        tamper(buf.data(), static_cast<size_t>(n));
      }
      const PeerAddr& to = is_from_server ? client : server_;
      ::sendto(fd_, buf.data(), static_cast<size_t>(n), 0, reinterpret_cast<const sockaddr*>(&to.addr), to.len);
    }
  }
  void tamper(uint8_t* p, size_t n) {
    // QUIC v1 long header: flags, version, DCID, SCID, then the Initial's token.
    if (n < 7 || (p[0] & 0x80) == 0 || ((p[0] >> 4) & 0x3) != 0) return;
    size_t off = 5;
    off += 1 + p[off];  // DCID
    if (off >= n) return;
    off += 1 + p[off];  // SCID
    if (off >= n) return;
    const size_t varint_len = size_t{1} << (p[off] >> 6);
    uint64_t token_len = p[off] & 0x3f;
    for (size_t i = 1; i < varint_len && off + i < n; ++i) token_len = (token_len << 8) | p[off + i];
    off += varint_len;
    if (token_len == 0 || off + token_len > n) return;
    p[off + token_len - 1] ^= 0x01;
    tampered_.fetch_add(1);
  }

  PeerAddr server_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> is_stopped_{false};
  std::atomic<int> tampered_{0};
  std::thread thread_;
};

EndpointConfig retry_always() {
  EndpointConfig config;
  config.retry = RetryPolicy::kAlways;
  return config;
}

TEST(QuicRetry, HandshakeSucceedsThroughRetry) {
  TestNode server(retry_always());
  TestNode client;
  auto conn = client.dial(server);
  ASSERT_TRUE(conn) << conn.error().to_string();
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream) << stream.error().to_string();
  ASSERT_TRUE(stream->send("validated"));
  auto reply = stream->recv(5000);
  ASSERT_TRUE(reply && reply->has_value());
  EXPECT_EQ(**reply, "validated");
  const auto m = server.endpoint->metrics();
  EXPECT_GE(m.retries_sent, 1u);
  EXPECT_EQ(m.invalid_tokens, 0u);
}

TEST(QuicRetry, NoRetryBelowTheLoadThresholdByDefault) {
  TestNode server;
  TestNode client;
  auto conn = client.dial(server);
  ASSERT_TRUE(conn) << conn.error().to_string();
  EXPECT_EQ(server.endpoint->metrics().retries_sent, 0u);
}

TEST(QuicRetry, RetryUnderLoadWhenTheThresholdIsReached) {
  EndpointConfig config;
  config.retry = RetryPolicy::kUnderLoad;
  config.max_handshakes_without_retry = 0;  // every new handshake counts as load
  TestNode server(config);
  TestNode client;
  auto conn = client.dial(server);
  ASSERT_TRUE(conn) << conn.error().to_string();
  EXPECT_GE(server.endpoint->metrics().retries_sent, 1u);
}

TEST(QuicRetry, ForgedTokenIsRefusedAtOnce) {
  TestNode server(retry_always());
  TestNode client;
  TokenTamperingProxy proxy(server.endpoint->local_addr().port);
  const std::vector<SocketAddr> via_proxy{SocketAddr{"127.0.0.1", proxy.port()}};
  const auto start = std::chrono::steady_clock::now();
  auto conn = client.endpoint->connect(server.key(), via_proxy, testing::kEchoAlpn, 5000);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(conn.error().message().find("token"), std::string::npos) << conn.error().to_string();
  // Refused rather than timed out: well under the 5 s connect timeout (not a latency bound).
  EXPECT_LT(elapsed, seconds(3));
  EXPECT_GE(proxy.tampered(), 1);
  const auto m = server.endpoint->metrics();
  EXPECT_GE(m.retries_sent, 1u);
  EXPECT_GE(m.invalid_tokens, 1u);
  EXPECT_EQ(m.connections_open, 0u);
}

}  // namespace
}  // namespace aspen::transport
