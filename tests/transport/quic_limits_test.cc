// Admission control with real endpoints on 127.0.0.1: what a dialer sees when the server is
// at its connection limit.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "transport_test_util.h"

namespace aspen::transport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::expect_echo;
using testing::TestNode;
using testing::wait_until;

// A server that takes at most two connections, and clients a and b holding both.
struct QuicLimits : ::testing::Test {
  static EndpointConfig two_connections() {
    EndpointConfig config;
    config.max_client_connections = 2;
    return config;
  }
  TestNode server{two_connections()};
  TestNode a, b, c;
  std::optional<Connection> to_a, to_b;
  void SetUp() override {
    auto ra = a.dial(server);
    ASSERT_TRUE(ra) << ra.error().to_string();
    to_a = *ra;
    auto rb = b.dial(server);
    ASSERT_TRUE(rb) << rb.error().to_string();
    to_b = *rb;
  }
};

TEST_F(QuicLimits, ConnectionOverTheLimitIsRefusedAtOnceWithAClearError) {
  const auto start = std::chrono::steady_clock::now();
  auto to_c = c.dial(server);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(to_c);
  EXPECT_EQ(to_c.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(to_c.error().message().find("connection limit"), std::string::npos) << to_c.error().to_string();
  // Refused rather than timed out: well under the 5 s connect timeout (not a latency bound).
  EXPECT_LT(elapsed, seconds(3));
  EXPECT_GE(server.endpoint->metrics().connections_refused, 1u);
  EXPECT_EQ(c.endpoint->metrics().connections_open, 0u);

  // The connections already in keep working.
  expect_echo(*to_a, "still here");
}

TEST_F(QuicLimits, SlotFreedByACloseCanBeTakenAgain) {
  ASSERT_FALSE(c.dial(server));

  to_a->close();
  // The server lingers in the draining period (3 PTOs) before it frees the slot; each
  // refused attempt returns at once, so retrying costs nothing.
  std::optional<Connection> to_c;
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = c.dial(server);
        if (r) to_c = *r;
        return r.has_value();
      },
      seconds(5)));
  ASSERT_TRUE(to_c.has_value());
  EXPECT_TRUE(to_c->is_open());
}

}  // namespace
}  // namespace aspen::transport
