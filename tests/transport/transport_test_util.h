// Helpers for transport tests: endpoints on 127.0.0.1 with fresh identities, an echo
// handler, a checksum sink, and waiting on conditions with deadlines (never sleeping).
#pragma once

#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/encoding.h"
#include "transport/endpoint.h"

namespace aspen::transport::testing {

inline constexpr const char* kEchoAlpn = "aspen-test-echo";
inline constexpr const char* kSinkAlpn = "aspen-test-sink";

inline bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // poll interval, not a wait
  }
  return condition();
}

// Runs fn for each stream the peer opens, each on its own thread; returns when the
// connection ends.
inline void serve_streams(Connection conn, const std::function<void(Stream)>& fn) {
  std::vector<std::thread> threads;
  while (true) {
    auto stream = conn.accept_bi(60000);
    if (!stream) break;
    threads.emplace_back([fn, s = *stream] { fn(s); });
  }
  for (auto& t : threads) t.join();
}

// Echoes every message back until the peer finishes, then finishes too.
class EchoHandler : public ProtocolHandler {
 public:
  void on_connection(Connection conn) override {
    {
      std::lock_guard lock(mu_);
      peers_.push_back(conn.peer_key());
    }
    connections_.fetch_add(1);
    serve_streams(conn, [](Stream s) {
      while (true) {
        auto msg = s.recv(60000);
        if (!msg || !*msg) break;
        if (!s.send(**msg)) break;
      }
      s.finish();
    });
  }
  std::vector<PublicKey> peers() {
    std::lock_guard lock(mu_);
    return peers_;
  }
  std::atomic<int> connections_{0};

 private:
  std::mutex mu_;
  std::vector<PublicKey> peers_;
};

// Reads every message until the peer finishes, then answers with one message:
// total bytes (u64 BE) + BLAKE2b-256 of the concatenated messages.
class SinkHandler : public ProtocolHandler {
 public:
  void on_connection(Connection conn) override {
    serve_streams(conn, [this](Stream s) {
      crypto_generichash_state state;
      crypto_generichash_init(&state, nullptr, 0, 32);
      uint64_t total = 0;
      while (true) {
        auto msg = s.recv(60000);
        if (!msg) {
          last_error_ = msg.error().to_string();
          errors_.fetch_add(1);
          return;
        }
        if (!*msg) break;
        total += (*msg)->size();
        crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>((*msg)->data()), (*msg)->size());
      }
      uint8_t digest[32];
      crypto_generichash_final(&state, digest, sizeof(digest));
      std::string reply;
      put_u64_be(reply, total);
      reply.append(reinterpret_cast<const char*>(digest), sizeof(digest));
      (void)s.send(reply);
      s.finish();
    });
  }
  std::atomic<int> errors_{0};
  std::string last_error_;
};

struct TestNode {
  NodeIdentity identity = NodeIdentity::generate();
  std::unique_ptr<Endpoint> endpoint;
  std::shared_ptr<EchoHandler> echo = std::make_shared<EchoHandler>();
  std::shared_ptr<SinkHandler> sink = std::make_shared<SinkHandler>();

  explicit TestNode(EndpointConfig config = {}) { start(config); }
  void start(EndpointConfig config = {}) {
    auto e = Endpoint::bind(identity, config);
    EXPECT_TRUE(e.has_value()) << e.error().to_string();
    endpoint = std::move(*e);
    EXPECT_TRUE(endpoint->register_handler(kEchoAlpn, echo));
    EXPECT_TRUE(endpoint->register_handler(kSinkAlpn, sink));
  }
  const PublicKey& key() const { return identity.public_key(); }
  std::vector<SocketAddr> addrs() const { return {endpoint->local_addr()}; }
  Result<Connection> dial(TestNode& other, const std::string& alpn = kEchoAlpn, uint32_t timeout_ms = 5000) {
    return endpoint->connect(other.key(), other.addrs(), alpn, timeout_ms);
  }
};

// One message round trip on a new stream of an echo connection, then a clean finish on both
// sides. Use with ASSERT_NO_FATAL_FAILURE where what follows depends on it.
inline void expect_echo(Connection& conn, const std::string& message) {
  auto stream = conn.open_bi();
  ASSERT_TRUE(stream) << stream.error().to_string();
  ASSERT_TRUE(stream->send(message));
  auto reply = stream->recv(5000);
  ASSERT_TRUE(reply) << reply.error().to_string();
  ASSERT_TRUE(reply->has_value());
  EXPECT_EQ(**reply, message);
  stream->finish();
  auto end = stream->recv(5000);
  ASSERT_TRUE(end) << end.error().to_string();
  EXPECT_FALSE(end->has_value());
}

}  // namespace aspen::transport::testing
