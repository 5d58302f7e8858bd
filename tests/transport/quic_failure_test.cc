// Failure paths with real endpoints: timeouts, stream limits, dead peers, restarts, the
// connection pool's reuse and backoff.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>

#include <chrono>
#include <thread>

#include "transport/connection_pool.h"
#include "transport/internal/testing.h"
#include "transport_test_util.h"

namespace aspen::transport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::kEchoAlpn;
using testing::kSinkAlpn;
using testing::TestNode;
using testing::wait_until;

uint16_t unused_udp_port() {
  // Bind and release: nothing listens there afterwards (datagrams sent there are answered
  // with ICMP port unreachable).
  TestNode probe;
  const uint16_t port = probe.endpoint->local_addr().port;
  probe.endpoint->close();
  return port;
}

// A UDP port that takes datagrams and never answers: a peer that is silent rather than gone
// (no ICMP comes back, as from a host that drops them).
struct SilentPort {
  int fd = -1;
  uint16_t port = 0;
  SilentPort() {
    fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
  }
  ~SilentPort() { ::close(fd); }
  SilentPort(const SilentPort&) = delete;
  SilentPort& operator=(const SilentPort&) = delete;
};

TEST(QuicTimeouts, RecvTimesOut) {
  TestNode a, b;
  auto conn = a.dial(b);
  ASSERT_TRUE(conn);
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  const auto start = std::chrono::steady_clock::now();
  auto msg = stream->recv(100);
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().code(), ErrorCode::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(100));
  auto accepted = conn->accept_bi(50);
  ASSERT_FALSE(accepted);
  EXPECT_EQ(accepted.error().code(), ErrorCode::kTimeout);
}

TEST(QuicTimeouts, ConnectToSilentAddressTimesOut) {
  TestNode a;
  SilentPort port;
  const SocketAddr silent{"127.0.0.1", port.port};
  const auto start = std::chrono::steady_clock::now();
  auto conn = a.endpoint->connect(NodeIdentity::generate().public_key(), std::vector{silent}, kEchoAlpn, 300);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code(), ErrorCode::kTimeout) << conn.error().to_string();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(290));
  EXPECT_LT(elapsed, seconds(3));
  EXPECT_TRUE(wait_until([&] { return a.endpoint->metrics().connections_open == 0; }, seconds(2)));
}

// Nothing listens there: the ICMP port unreachable that answers the Initial ends the attempt
// at once, with an error that says so, instead of at the connect timeout.
TEST(QuicTimeouts, ConnectToAClosedPortFailsAtOnceAsUnreachable) {
  TestNode a;
  const SocketAddr closed{"127.0.0.1", unused_udp_port()};
  auto conn = a.endpoint->connect(NodeIdentity::generate().public_key(), std::vector{closed}, kEchoAlpn, 30000);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code(), ErrorCode::kUnavailable) << conn.error().to_string();
  EXPECT_NE(conn.error().message().find("is unreachable"), std::string::npos) << conn.error().to_string();
  EXPECT_GE(a.endpoint->metrics().peers_unreachable, 1u);
  EXPECT_TRUE(wait_until([&] { return a.endpoint->metrics().connections_open == 0; }, seconds(2)));
}

TEST(QuicTimeouts, ConnectTriesTheNextAddress) {
  TestNode a, b;
  std::vector<SocketAddr> addrs{{"127.0.0.1", unused_udp_port()}, b.endpoint->local_addr()};
  auto conn = a.endpoint->connect(b.key(), addrs, kEchoAlpn, 600);
  ASSERT_TRUE(conn) << conn.error().to_string();
}

TEST(QuicTimeouts, StreamOpenWaitsForThePeersLimitThenTimesOut) {
  TestNode a, b;
  auto conn = a.dial(b);
  ASSERT_TRUE(conn);
  std::vector<Stream> streams;
  for (size_t i = 0; i < limits::kMaxStreamsPerConnection; ++i) {
    auto s = conn->open_bi();
    ASSERT_TRUE(s) << i << ": " << s.error().to_string();
    streams.push_back(*s);
  }
  auto blocked = conn->open_bi(200);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code(), ErrorCode::kTimeout);
  // Finishing one stream (the echo handler finishes its side too) frees a slot: the peer
  // must grant a new stream when one of ours closes.
  ASSERT_TRUE(streams[0].send("x"));
  streams[0].finish();
  auto reply = streams[0].recv(5000);
  ASSERT_TRUE(reply && reply->has_value());
  auto end = streams[0].recv(5000);
  ASSERT_TRUE(end && !end->has_value());
  auto next = conn->open_bi(5000);
  ASSERT_TRUE(next) << next.error().to_string();
}

TEST(QuicFailures, PeerDiesMidStream) {
  EndpointConfig quick;
  quick.idle_timeout_ms = 500;
  quick.keep_alive_ms = 100;
  TestNode client(quick), server(quick);
  auto conn = client.dial(server, kSinkAlpn);
  ASSERT_TRUE(conn);
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  ASSERT_TRUE(stream->send(std::string(100000, 'a')));
  ASSERT_TRUE(stream->send("half a conversation"));
  // The client crashes: no CONNECTION_CLOSE. The server's reader must fail, not hang: its
  // keep-alive to the closed port comes back as ICMP port unreachable.
  EndpointTestAccess::kill(*client.endpoint);
  ASSERT_TRUE(wait_until([&] { return server.sink->errors_.load() == 1; }, seconds(5)));
  EXPECT_NE(server.sink->last_error_.find("is unreachable"), std::string::npos) << server.sink->last_error_;
  EXPECT_TRUE(wait_until([&] { return server.endpoint->metrics().connections_open == 0; }, seconds(5)));
}

TEST(QuicFailures, ReaderSeesServerDieMidStream) {
  EndpointConfig quick;
  quick.idle_timeout_ms = 500;
  quick.keep_alive_ms = 100;
  TestNode client(quick), server(quick);
  auto conn = client.dial(server, kSinkAlpn);
  ASSERT_TRUE(conn);
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  ASSERT_TRUE(stream->send("waiting for an answer that never comes"));
  EndpointTestAccess::kill(*server.endpoint);
  auto reply = stream->recv(5000);
  ASSERT_FALSE(reply);
  // The ICMP port unreachable that answers the next keep-alive ends it, not the 5 s read
  // deadline (nor the idle timeout).
  EXPECT_NE(reply.error().message().find("is unreachable"), std::string::npos) << reply.error().to_string();
  EXPECT_FALSE(conn->is_open());
}

// A stream from a to b's echo service that has carried one round trip.
void open_echoed_stream(TestNode& a, TestNode& b, std::optional<Connection>& conn, std::optional<Stream>& stream) {
  auto c = a.dial(b);
  ASSERT_TRUE(c);
  conn.emplace(std::move(*c));
  auto s = conn->open_bi();
  ASSERT_TRUE(s);
  stream.emplace(std::move(*s));
  ASSERT_TRUE(stream->send("x"));
  ASSERT_TRUE(stream->recv(5000));
}

TEST(QuicFailures, GracefulCloseReachesThePeer) {
  TestNode a, b;
  std::optional<Connection> conn;
  std::optional<Stream> stream;
  ASSERT_NO_FATAL_FAILURE(open_echoed_stream(a, b, conn, stream));
  b.endpoint->close();
  auto msg = stream->recv(5000);
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().code(), ErrorCode::kUnavailable);
  // b's CONNECTION_CLOSE says why, even when the ICMP port unreachable that answers our
  // acknowledgement of the echo arrives behind it and is reported first (the next test).
  EXPECT_NE(msg.error().message().find("shutting down"), std::string::npos) << msg.error().message();
}

// The race that once ended the connection above as "unreachable", made to happen: the
// peer's goodbye waits in our socket when the ICMP error answering a later datagram of ours
// arrives. The kernel
// reports the error first; the endpoint still reads the datagrams queued before it, so the
// connection ends with the peer's own reason, not "unreachable".
TEST(QuicFailures, AGoodbyeQueuedBeforeAnIcmpErrorIsReadFirst) {
  TestNode a, b;
  std::optional<Connection> conn;
  std::optional<Stream> stream;
  ASSERT_NO_FATAL_FAILURE(open_echoed_stream(a, b, conn, stream));
  const SocketAddr b_addr = b.endpoint->local_addr();
  {
    auto frozen = EndpointTestAccess::freeze(*a.endpoint);
    b.endpoint->close();  // its CONNECTION_CLOSE now waits, unread, in a's socket
    ASSERT_TRUE(EndpointTestAccess::send_datagram(*a.endpoint, b_addr, "anyone there?"));
    ASSERT_TRUE(wait_until([&] { return EndpointTestAccess::has_error_report(*a.endpoint); }, seconds(5)));
  }
  auto msg = stream->recv(5000);
  ASSERT_FALSE(msg);
  EXPECT_NE(msg.error().message().find("shutting down"), std::string::npos) << msg.error().to_string();
}

// Crashes `node` (no close, no goodbye to peers) and brings it back with the same key on the
// same port, as a restarted process would.
void restart_on_the_same_port(TestNode& node) {
  const SocketAddr addr = node.endpoint->local_addr();
  EndpointTestAccess::kill(*node.endpoint);
  node.endpoint.reset();
  EndpointConfig same_port;
  same_port.bind_addr = addr;
  node.echo = std::make_shared<testing::EchoHandler>();
  node.start(same_port);
}

// The next use of a connection to a peer that lost it ends in the peer's stateless reset,
// long before any idle timeout. (The reset may already have arrived, answering a keep-alive
// or an acknowledgement of the stale connection: then opening a stream fails with it. And a
// datagram that reached the port in the instant between the crash and the restart is
// answered with ICMP port unreachable, which ends the connection as promptly: that is the
// fast failure detection of transport/unreachable.cc, and as good an answer here.) Sets
// `was_reset` when the answer was the stateless reset rather than the ICMP error.
void expect_reset_on_next_use(Connection& stale, bool* was_reset = nullptr) {
  std::optional<Error> error;
  auto stream = stale.open_bi();
  if (!stream) {
    error = stream.error();
  } else {
    (void)stream->send("anyone there?");
    auto reply = stream->recv(5000);
    ASSERT_FALSE(reply);
    error = reply.error();
  }
  const bool is_reset = error->message().find("stateless reset") != std::string::npos;
  const bool is_unreachable = error->message().find("is unreachable") != std::string::npos;
  EXPECT_TRUE(is_reset || is_unreachable) << error->to_string();
  if (was_reset != nullptr) *was_reset = is_reset;
}

TEST(QuicFailures, RestartedPeerResetsStaleConnectionAndPoolReconnects) {
  TestNode a, b;
  auto book = std::make_shared<AddressBook>();
  book->set(b.key(), b.addrs());
  ConnectionPool pool(*a.endpoint, book, ConnectionPoolOptions{.connect_timeout_ms = 1000, .initial_backoff_ms = 50,
                                                               .max_backoff_ms = 200});
  auto first = pool.get(b.key(), kEchoAlpn);
  ASSERT_TRUE(first) << first.error().to_string();
  auto again = pool.get(b.key(), kEchoAlpn);
  ASSERT_TRUE(again);
  EXPECT_EQ(a.endpoint->metrics().connections_open, 1u);  // reused, not redialled

  restart_on_the_same_port(b);

  bool was_reset = false;
  ASSERT_NO_FATAL_FAILURE(expect_reset_on_next_use(*first, &was_reset));
  if (was_reset) {  // then the restarted b must have counted the reset it sent
    EXPECT_TRUE(wait_until([&] { return b.endpoint->metrics().stateless_resets_sent >= 1; }, seconds(5)));
  }

  auto fresh = pool.get(b.key(), kEchoAlpn);
  ASSERT_TRUE(fresh) << fresh.error().to_string();
  testing::expect_echo(*fresh, "hello again");
}

// The restarted peer has already dialled us back before our stale connection speaks: both
// connections share the address pair (one UDP socket per endpoint), and the stale one must
// still be reset rather than have its packets taken for a possible reset of the new one.
// (Without this, a node whose peer restarted and dialled it first kept sending Raft
// messages into the dead connection until its idle timeout: elections stalled for 20 s+.)
TEST(QuicFailures, StaleConnectionIsResetEvenWhenTheRestartedPeerDialledUsFirst) {
  TestNode a, b;
  auto first = a.dial(b);
  ASSERT_TRUE(first) << first.error().to_string();
  ASSERT_NO_FATAL_FAILURE(testing::expect_echo(*first, "before"));

  restart_on_the_same_port(b);
  auto back = b.dial(a);  // the restarted peer speaks first, from the same address
  ASSERT_TRUE(back) << back.error().to_string();
  ASSERT_NO_FATAL_FAILURE(testing::expect_echo(*back, "i am back"));

  ASSERT_NO_FATAL_FAILURE(expect_reset_on_next_use(*first));
  ASSERT_NO_FATAL_FAILURE(testing::expect_echo(*back, "the new connection is unharmed"));
}

TEST(QuicFailures, PoolBacksOffAfterFailedDial) {
  TestNode a;
  auto book = std::make_shared<AddressBook>();
  const PublicKey ghost = NodeIdentity::generate().public_key();
  SilentPort silent;
  book->set(ghost, {SocketAddr{"127.0.0.1", silent.port}});
  ConnectionPool pool(*a.endpoint, book, ConnectionPoolOptions{.connect_timeout_ms = 200, .initial_backoff_ms = 1000,
                                                               .max_backoff_ms = 2000});
  auto first = pool.get(ghost, kEchoAlpn);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code(), ErrorCode::kTimeout);
  const auto start = std::chrono::steady_clock::now();
  auto second = pool.get(ghost, kEchoAlpn);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message().find("backoff"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(100));  // failed fast
  auto unknown = pool.get(NodeIdentity::generate().public_key(), kEchoAlpn);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("no known address"), std::string::npos);
}

TEST(TransportAddressBook, UpdatesAtRunTime) {
  AddressBook book;
  const PublicKey k = NodeIdentity::generate().public_key();
  EXPECT_TRUE(book.get(k).empty());
  book.add(k, {"127.0.0.1", 1});
  book.add(k, {"127.0.0.1", 2});
  book.add(k, {"127.0.0.1", 1});  // moves to the front, no duplicate
  ASSERT_EQ(book.get(k).size(), 2u);
  EXPECT_EQ(book.get(k)[0].port, 1);
  book.remove(k, {"127.0.0.1", 1});
  book.remove(k, {"127.0.0.1", 2});
  EXPECT_TRUE(book.get(k).empty());
  EXPECT_EQ(book.size(), 0u);
}

}  // namespace
}  // namespace aspen::transport
