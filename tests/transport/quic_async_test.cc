// The asynchronous, loop-thread API: LoopProtocolHandler callbacks, connect_async,
// open_bi_async, send_async and StreamCallbacks, all running on the endpoint's loop thread
// with no thread handoff, next to (and mixed with) the blocking API.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "transport_test_util.h"

namespace aspen::transport {
namespace {

using std::chrono::seconds;
using testing::TestNode;

constexpr const char* kLoopEchoAlpn = "aspen-test-loop-echo";

// Echoes every message on the loop thread; records what it saw and on which thread.
class LoopEcho : public LoopProtocolHandler {
 public:
  explicit LoopEcho(Endpoint*& endpoint) : endpoint_(endpoint) {}
  void on_loop_connection(Connection& conn) override {
    check_thread();
    std::lock_guard lock(mu_);
    peers_.push_back(conn.peer_key());
  }
  void on_stream(Stream&) override {
    check_thread();
    streams_opened_.fetch_add(1);
  }
  void on_message(Stream& stream, std::string message) override {
    check_thread();
    (void)stream.send_async(message);
  }
  void on_stream_closed(Stream& stream, std::optional<Error> error) override {
    check_thread();
    if (error) {
      std::lock_guard lock(mu_);
      stream_errors_.push_back(*error);
    } else {
      streams_finished_.fetch_add(1);
      stream.finish();
    }
  }
  void on_connection_closed(Connection&, const Error&) override {
    check_thread();
    connections_closed_.fetch_add(1);
  }
  std::vector<PublicKey> peers() {
    std::lock_guard lock(mu_);
    return peers_;
  }
  std::vector<Error> stream_errors() {
    std::lock_guard lock(mu_);
    return stream_errors_;
  }

  std::atomic<int> streams_opened_{0};
  std::atomic<int> streams_finished_{0};
  std::atomic<int> connections_closed_{0};
  std::atomic<int> off_loop_calls_{0};

 private:
  void check_thread() {
    if (endpoint_ == nullptr || !endpoint_->is_loop_thread()) off_loop_calls_.fetch_add(1);
  }
  Endpoint*& endpoint_;
  std::mutex mu_;
  std::vector<PublicKey> peers_;
  std::vector<Error> stream_errors_;
};

struct LoopNode : TestNode {
  Endpoint* raw = nullptr;
  std::shared_ptr<LoopEcho> loop_echo = std::make_shared<LoopEcho>(raw);
  LoopNode() {
    raw = endpoint.get();
    EXPECT_TRUE(endpoint->register_handler(kLoopEchoAlpn, loop_echo));
  }
  // Close before `raw` goes away: closing still runs handler callbacks.
  ~LoopNode() { endpoint->close(); }
};

template <typename T>
T wait_for(std::future<T>& f) {
  if (f.wait_for(seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "no answer within 10 s";
    std::abort();  // the alternative is hanging in get()
  }
  return f.get();
}

// A client that dials, opens a stream and runs `rounds` request/response exchanges, each
// request sent from the callback that received the previous reply: the whole conversation
// runs on the client's loop thread.
struct PingPong : std::enable_shared_from_this<PingPong> {
  Endpoint* endpoint = nullptr;
  int rounds = 0;
  int received = 0;
  bool is_all_on_loop = true;
  std::optional<Stream> stream;
  std::promise<Result<int>> done;

  void check_thread() { is_all_on_loop = is_all_on_loop && endpoint->is_loop_thread(); }

  void start(const PublicKey& peer, std::vector<SocketAddr> addrs) {
    endpoint->connect_async(peer, std::move(addrs), kLoopEchoAlpn, [self = shared_from_this()](Result<Connection> c) {
      self->check_thread();
      if (!c) return self->done.set_value(std::unexpected(c.error()));
      StreamCallbacks cb;
      cb.on_message = [self](Stream& s, std::string m) { self->on_reply(s, std::move(m)); };
      cb.on_closed = [self](Stream&, std::optional<Error> e) {
        self->check_thread();
        self->stream.reset();  // no cycle through the stream's callbacks
        self->done.set_value(e ? Result<int>(std::unexpected(*e)) : Result<int>(self->received));
      };
      Connection conn = *c;
      conn.open_bi_async(std::move(cb), [self](Result<Stream> s) {
        self->check_thread();
        if (!s) return self->done.set_value(std::unexpected(s.error()));
        self->stream = *s;
        (void)self->stream->send_async("ping 0");
      });
    });
  }

  void on_reply(Stream& s, std::string m) {
    check_thread();
    EXPECT_EQ(m, "ping " + std::to_string(received));
    ++received;
    if (received < rounds) {
      ASSERT_TRUE(s.send_async("ping " + std::to_string(received)));
    } else {
      s.finish();  // the echo finishes too; on_closed then reports the result
    }
  }
};

TEST(QuicAsync, LoopHandlerAndLoopClientExchangeMessagesWithoutLeavingTheLoop) {
  LoopNode server;
  TestNode client;
  auto pp = std::make_shared<PingPong>();
  pp->endpoint = client.endpoint.get();
  pp->rounds = 200;
  auto result_future = pp->done.get_future();
  pp->start(server.key(), server.addrs());
  auto result = wait_for(result_future);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(*result, 200);
  EXPECT_TRUE(pp->is_all_on_loop);
  EXPECT_EQ(server.loop_echo->off_loop_calls_.load(), 0);
  ASSERT_EQ(server.loop_echo->peers().size(), 1u);
  EXPECT_EQ(server.loop_echo->peers()[0], client.key());
  EXPECT_EQ(server.loop_echo->streams_opened_.load(), 1);
  EXPECT_TRUE(testing::wait_until([&] { return server.loop_echo->streams_finished_.load() == 1; }, seconds(5)));
}

TEST(QuicAsync, BlockingClientTalksToLoopHandler) {
  LoopNode server;
  TestNode client;
  auto conn = client.dial(server, kLoopEchoAlpn);
  ASSERT_TRUE(conn) << conn.error().to_string();
  for (int s = 0; s < 3; ++s) {
    auto stream = conn->open_bi();
    ASSERT_TRUE(stream) << stream.error().to_string();
    for (int i = 0; i < 20; ++i) {
      const std::string msg(static_cast<size_t>(i) * 500, static_cast<char>('a' + s));
      ASSERT_TRUE(stream->send(msg));
      auto reply = stream->recv(5000);
      ASSERT_TRUE(reply && reply->has_value()) << (reply ? "finished" : reply.error().to_string());
      EXPECT_EQ(**reply, msg);
    }
    stream->finish();
    auto end = stream->recv(5000);
    ASSERT_TRUE(end) << end.error().to_string();
    EXPECT_FALSE(end->has_value());
  }
  EXPECT_EQ(server.loop_echo->streams_opened_.load(), 3);
  EXPECT_TRUE(testing::wait_until([&] { return server.loop_echo->streams_finished_.load() == 3; }, seconds(5)));
  EXPECT_EQ(server.loop_echo->off_loop_calls_.load(), 0);
}

TEST(QuicAsync, LoopHandlerHearsResetStreamAndClosedConnection) {
  LoopNode server;
  TestNode client;
  auto conn = client.dial(server, kLoopEchoAlpn);
  ASSERT_TRUE(conn) << conn.error().to_string();
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  ASSERT_TRUE(stream->send("hello"));
  ASSERT_TRUE(stream->recv(5000));
  stream->reset();
  ASSERT_TRUE(testing::wait_until([&] { return server.loop_echo->stream_errors().size() == 1; }, seconds(5)));
  EXPECT_NE(server.loop_echo->stream_errors()[0].message().find("reset by peer"), std::string::npos)
      << server.loop_echo->stream_errors()[0].to_string();
  conn->close();
  EXPECT_TRUE(testing::wait_until([&] { return server.loop_echo->connections_closed_.load() == 1; }, seconds(5)));
  EXPECT_EQ(server.loop_echo->off_loop_calls_.load(), 0);
}

TEST(QuicAsync, ConnectAsyncReportsWrongKeyOnTheLoop) {
  LoopNode server;
  TestNode client;
  std::promise<std::pair<Result<Connection>, bool>> p;
  auto f = p.get_future();
  client.endpoint->connect_async(NodeIdentity::generate().public_key(), server.addrs(), kLoopEchoAlpn,
                                 [&p, e = client.endpoint.get()](Result<Connection> c) {
                                   p.set_value({std::move(c), e->is_loop_thread()});
                                 });
  auto [conn, was_on_loop] = wait_for(f);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code(), ErrorCode::kUnauthorized) << conn.error().to_string();
  EXPECT_TRUE(was_on_loop);
}

TEST(QuicAsync, SendAsyncOverTheFrameLimitFailsAndResetsTheStream) {
  LoopNode server;
  TestNode client;
  auto conn = client.dial(server, kLoopEchoAlpn);
  ASSERT_TRUE(conn);
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  ASSERT_TRUE(stream->send("hello"));  // the server knows the stream before it is reset
  ASSERT_TRUE(stream->recv(5000));
  std::promise<Status> p;
  auto f = p.get_future();
  client.endpoint->post([&] { p.set_value(stream->send_async(std::string(limits::kMaxFrameSizeBytes + 1, 'x'))); });
  auto st = wait_for(f);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kMessageTooLarge);
  ASSERT_TRUE(testing::wait_until([&] { return server.loop_echo->stream_errors().size() == 1; }, seconds(5)));
  EXPECT_TRUE(conn->is_open());
}

// send_async_owned from the loop thread and from another thread: the echo returns each
// message unchanged, large and small.
TEST(QuicAsync, SendAsyncOwnedFromLoopAndOtherThreadsArrivesIntact) {
  LoopNode server;
  TestNode client;
  auto conn = client.dial(server, kLoopEchoAlpn);
  ASSERT_TRUE(conn);
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  const std::string big(2 << 20, 'b');
  std::promise<Status> p;
  auto f = p.get_future();
  client.endpoint->post([&] { p.set_value(stream->send_async_owned(std::string(big))); });
  ASSERT_TRUE(wait_for(f));
  ASSERT_TRUE(stream->send_async_owned("small"));  // not on the loop: posted
  auto first = stream->recv(10000);
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ(**first, big);
  auto second = stream->recv(10000);
  ASSERT_TRUE(second && second->has_value());
  EXPECT_EQ(**second, "small");
  auto st = stream->send_async_owned(std::string(limits::kMaxFrameSizeBytes + 1, 'x'));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kMessageTooLarge);
}

TEST(QuicAsync, SetCallbacksHandsOverMessagesAlreadyReceived) {
  TestNode server, client;  // the threaded echo handler
  auto conn = client.dial(server);
  ASSERT_TRUE(conn);
  auto stream = conn->open_bi();
  ASSERT_TRUE(stream);
  ASSERT_TRUE(stream->send("first"));
  ASSERT_TRUE(stream->send("second"));
  stream->finish();
  // Take the first reply the blocking way; the second and the end may already be buffered.
  auto first = stream->recv(5000);
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ(**first, "first");
  std::promise<std::vector<std::string>> p;
  auto f = p.get_future();
  auto seen = std::make_shared<std::vector<std::string>>();
  client.endpoint->post([&, seen] {
    StreamCallbacks cb;
    cb.on_message = [seen](Stream&, std::string m) { seen->push_back(std::move(m)); };
    cb.on_closed = [seen, &p](Stream&, std::optional<Error> e) {
      seen->push_back(e ? "error: " + e->to_string() : "end");
      p.set_value(*seen);
    };
    stream->set_callbacks(std::move(cb));
  });
  EXPECT_EQ(wait_for(f), (std::vector<std::string>{"second", "end"}));
}

TEST(QuicAsync, DialledConnectionServesThePeersStreamsOnTheLoop) {
  // The server's handler waits for the client's "go", then opens a stream of its own
  // towards the client and expects it echoed.
  struct Caller : ProtocolHandler {
    std::promise<std::string> reply;
    void on_connection(Connection conn) override {
      auto go = conn.accept_bi(5000);
      if (!go || !go->recv(5000)) return reply.set_value("no go");
      auto s = conn.open_bi();
      if (!s) return reply.set_value("open: " + s.error().to_string());
      if (!s->send("ping back")) return reply.set_value("send failed");
      auto r = s->recv(5000);
      reply.set_value(r && r->has_value() ? **r : "no reply");
      s->finish();
    }
  };
  TestNode server, client;
  auto caller = std::make_shared<Caller>();
  auto reply = caller->reply.get_future();
  ASSERT_TRUE(server.endpoint->register_handler("aspen-test-caller", caller));
  Endpoint* raw = client.endpoint.get();
  auto echo = std::make_shared<LoopEcho>(raw);
  auto conn = client.dial(server, "aspen-test-caller");
  ASSERT_TRUE(conn) << conn.error().to_string();
  conn->serve_on_loop(echo);  // posted before the "go" below, so it is in place in time
  auto go = conn->open_bi();
  ASSERT_TRUE(go);
  ASSERT_TRUE(go->send("go"));
  EXPECT_EQ(wait_for(reply), "ping back");
  EXPECT_EQ(echo->streams_opened_.load(), 1);
  conn->close();
  EXPECT_TRUE(testing::wait_until([&] { return echo->connections_closed_.load() == 1; }, seconds(5)));
  EXPECT_EQ(echo->off_loop_calls_.load(), 0);
  client.endpoint->close();  // before `raw` goes away
}

}  // namespace
}  // namespace aspen::transport
