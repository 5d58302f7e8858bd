// Send caps with real endpoints on 127.0.0.1 (EndpointConfig's max_*_unacked_send_bytes,
// transport/internal/admission.h SendBudget): a client that asks for large answers and does
// not read them (its endpoint frozen: no acknowledgements, no flow-control credit) costs the
// answers over its connection's cap, not memory or the connection; the cap over all client
// connections spares members; every charge is given back once the answers are read.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "transport/internal/testing.h"
#include "transport_test_util.h"

namespace aspen::transport {
namespace {

using std::chrono::seconds;
using testing::serve_streams;
using testing::TestNode;
using testing::wait_until;

constexpr size_t kMiB = size_t{1} << 20;
constexpr const char* kGatedAlpn = "aspen-test-gated";
constexpr const char* kGatedMemberAlpn = "aspen-test-gated-member";

// Reads one request per stream (the size of the answer it wants, as text) and, once the
// gate is open, answers it with that many bytes; records what send() said.
class GatedAnswerHandler : public ProtocolHandler {
 public:
  void on_connection(Connection conn) override {
    serve_streams(conn, [this](Stream s) {
      auto request = s.recv(10000);
      if (!request || !*request) return;
      const size_t size_bytes = std::stoul(**request);
      std::unique_lock lock(mu_);
      ++received_;
      cv_.wait(lock, [&] { return is_open_; });
      lock.unlock();
      auto sent = s.send(std::string(size_bytes, 'a'));
      lock.lock();
      if (sent) {
        ++accepted_;
      } else {
        refusals_.push_back(sent.error());
      }
      lock.unlock();
      if (sent) s.finish();
    });
  }
  void open_gate() {
    std::lock_guard lock(mu_);
    is_open_ = true;
    cv_.notify_all();
  }
  size_t received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  size_t answered() {
    std::lock_guard lock(mu_);
    return accepted_ + refusals_.size();
  }
  size_t accepted() {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  std::vector<Error> refusals() {
    std::lock_guard lock(mu_);
    return refusals_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool is_open_ = false;
  size_t received_ = 0;
  size_t accepted_ = 0;
  std::vector<Error> refusals_;
};

// Opens `n` streams on `conn`, each asking for an answer of `size_bytes`.
std::vector<Stream> ask(Connection& conn, size_t n, size_t size_bytes) {
  std::vector<Stream> streams;
  for (size_t i = 0; i < n; ++i) {
    auto s = conn.open_bi_with(std::to_string(size_bytes), true);
    EXPECT_TRUE(s) << s.error().to_string();
    if (s) streams.push_back(*s);
  }
  return streams;
}

struct Outcome {
  size_t answered = 0;  // whole answers read, then a clean end
  size_t told_limit = 0;  // reset, naming the send buffer limit
};

Outcome read_all(std::vector<Stream>& streams, size_t size_bytes) {
  Outcome o;
  for (auto& s : streams) {
    auto answer = s.recv(20000);
    if (!answer) {
      if (answer.error().message().find("send buffer limit") != std::string::npos) ++o.told_limit;
      continue;
    }
    EXPECT_TRUE(answer->has_value());
    if (!answer->has_value()) continue;
    EXPECT_EQ((*answer)->size(), size_bytes);
    auto end = s.recv(5000);
    if (end && !end->has_value()) ++o.answered;
  }
  return o;
}

TEST(QuicSendCaps, AnswersOverTheConnectionCapResetOnlyTheirStreams) {
  TestNode server, client;
  auto gated = std::make_shared<GatedAnswerHandler>();
  ASSERT_TRUE(server.endpoint->register_handler(kGatedAlpn, gated));
  auto conn = client.dial(server, kGatedAlpn);
  ASSERT_TRUE(conn) << conn.error().to_string();
  constexpr size_t kStreams = 8;
  constexpr size_t kAnswerBytes = 8 * kMiB;
  auto streams = ask(*conn, kStreams, kAnswerBytes);
  ASSERT_EQ(streams.size(), kStreams);
  ASSERT_TRUE(wait_until([&] { return gated->received() == kStreams; }, seconds(10)));

  // The client stops reading, acknowledging and granting credit: nothing the server queues
  // for it is freed until it comes back.
  auto freeze = EndpointTestAccess::freeze(*client.endpoint);
  gated->open_gate();
  ASSERT_TRUE(wait_until([&] { return gated->answered() == kStreams; }, seconds(10)));
  const size_t frame_bytes = kFrameHeaderSizeBytes + kAnswerBytes;
  const size_t fit = limits::kMaxConnectionUnackedSendBytes / frame_bytes;
  ASSERT_EQ(fit, 3u);
  EXPECT_EQ(gated->accepted(), fit);
  for (const Error& e : gated->refusals()) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(e.message().find("unacknowledged answers per connection"), std::string::npos) << e.to_string();
  }
  auto m = server.endpoint->metrics();
  EXPECT_EQ(m.streams_refused_send_limit, kStreams - fit);
  EXPECT_EQ(m.client_unacked_send_bytes, fit * frame_bytes);

  // Once it reads again it gets the answers that fit, and hears why the others never came.
  freeze->resume();
  const Outcome o = read_all(streams, kAnswerBytes);
  EXPECT_EQ(o.answered, fit);
  EXPECT_EQ(o.told_limit, kStreams - fit);
  // The connection itself kept working.
  auto more = ask(*conn, 1, 1000);
  gated->open_gate();
  EXPECT_EQ(read_all(more, 1000).answered, 1u);
  EXPECT_TRUE(wait_until([&] { return server.endpoint->metrics().client_unacked_send_bytes == 0; }, seconds(5)));
}

TEST(QuicSendCaps, ClientTotalCapSparesMemberConnections) {
  EndpointConfig config;
  config.member_alpns = {kGatedMemberAlpn};
  config.max_client_unacked_send_bytes = 20 * kMiB;
  TestNode server(config), hog1, hog2, member;
  auto to_clients = std::make_shared<GatedAnswerHandler>();
  auto to_members = std::make_shared<GatedAnswerHandler>();
  ASSERT_TRUE(server.endpoint->register_handler(kGatedAlpn, to_clients));
  ASSERT_TRUE(server.endpoint->register_handler(kGatedMemberAlpn, to_members));
  auto c1 = hog1.dial(server, kGatedAlpn);
  auto c2 = hog2.dial(server, kGatedAlpn);
  auto cm = member.dial(server, kGatedMemberAlpn);
  ASSERT_TRUE(c1 && c2 && cm);
  constexpr size_t kAnswerBytes = 8 * kMiB;
  auto s1 = ask(*c1, 2, kAnswerBytes);
  auto s2 = ask(*c2, 1, kAnswerBytes);
  auto sm = ask(*cm, 3, kAnswerBytes);
  ASSERT_TRUE(wait_until([&] { return to_clients->received() == 3 && to_members->received() == 3; }, seconds(10)));
  auto freeze1 = EndpointTestAccess::freeze(*hog1.endpoint);
  auto freeze2 = EndpointTestAccess::freeze(*hog2.endpoint);
  auto freeze_member = EndpointTestAccess::freeze(*member.endpoint);
  to_clients->open_gate();
  to_members->open_gate();
  ASSERT_TRUE(wait_until([&] { return to_clients->answered() == 3 && to_members->answered() == 3; }, seconds(10)));
  // Two 8 MiB answers fit the 20 MiB over all clients, whichever connections they are on;
  // the third crosses it although its own connection's cap has room.
  EXPECT_EQ(to_clients->accepted(), 2u);
  ASSERT_EQ(to_clients->refusals().size(), 1u);
  EXPECT_NE(to_clients->refusals()[0].message().find("across all client connections"), std::string::npos)
      << to_clients->refusals()[0].to_string();
  // A member is sent all it asked for, 24 MiB, past the clients' total.
  EXPECT_EQ(to_members->accepted(), 3u);
  EXPECT_EQ(server.endpoint->metrics().streams_refused_send_limit, 1u);
  EXPECT_EQ(server.endpoint->metrics().client_unacked_send_bytes, 2 * (kFrameHeaderSizeBytes + kAnswerBytes));

  freeze1->resume();
  freeze2->resume();
  freeze_member->resume();
  const Outcome o1 = read_all(s1, kAnswerBytes);
  const Outcome o2 = read_all(s2, kAnswerBytes);
  EXPECT_EQ(o1.answered + o2.answered, 2u);
  EXPECT_EQ(o1.told_limit + o2.told_limit, 1u);
  EXPECT_EQ(read_all(sm, kAnswerBytes).answered, 3u);
  EXPECT_TRUE(wait_until([&] { return server.endpoint->metrics().client_unacked_send_bytes == 0; }, seconds(5)));
}

TEST(QuicSendCaps, AConnectionThatEndsGivesBackEverythingItHeld) {
  EndpointConfig config;
  config.idle_timeout_ms = 2000;
  TestNode server(config), client;
  auto gated = std::make_shared<GatedAnswerHandler>();
  ASSERT_TRUE(server.endpoint->register_handler(kGatedAlpn, gated));
  auto conn = client.dial(server, kGatedAlpn);
  ASSERT_TRUE(conn) << conn.error().to_string();
  auto streams = ask(*conn, 2, 8 * kMiB);
  ASSERT_TRUE(wait_until([&] { return gated->received() == 2; }, seconds(10)));
  auto freeze = EndpointTestAccess::freeze(*client.endpoint);
  gated->open_gate();
  ASSERT_TRUE(wait_until([&] { return gated->answered() == 2; }, seconds(10)));
  EXPECT_EQ(server.endpoint->metrics().client_unacked_send_bytes, 2 * (kFrameHeaderSizeBytes + 8 * kMiB));
  // The client hangs holding them; the server gives up on it after its idle timeout, and
  // the connection's streams give their charges back as it ends.
  EXPECT_TRUE(wait_until([&] { return server.endpoint->metrics().client_connections_open == 0; }, seconds(20)));
  EXPECT_EQ(server.endpoint->metrics().client_unacked_send_bytes, 0u);
  freeze->resume();
}

}  // namespace
}  // namespace aspen::transport
