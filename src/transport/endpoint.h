// The transport endpoint: authenticated, multiplexed connections between Aspen nodes.
//
// An Endpoint owns one UDP socket and one event-loop thread. It dials peers by public key
// (connect), and hands each authenticated inbound connection to the ProtocolHandler
// registered for the connection's protocol name (ALPN: "raft-auth", "aspen-client", ...);
// an unknown protocol is refused during the handshake. A Connection carries bidirectional
// Streams; a Stream carries framed messages (at most limits::kMaxFrameSizeBytes each).
//
// Threading: every method of Endpoint, Connection and Stream may be called from any thread
// except the endpoint's own loop thread. Blocking calls take a timeout and return
// Result; they never throw. Handlers run on their own threads, so they may block.
//
// Nothing here is specific to QUIC (today's implementation); a TLS-over-TCP backend could
// stand behind the same API.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/limits.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::transport {

namespace internal {
class EndpointCore;
class QuicConnection;
struct StreamShared;
}  // namespace internal

// One bidirectional stream of framed messages. Copies share the same stream.
class Stream {
 public:
  // Queues one message. Blocks (up to timeout_ms) only while more than the send-buffer
  // limit is unacknowledged. A message over the frame limit fails with MessageTooLarge and
  // resets the stream.
  Status send(std::string_view message, uint32_t timeout_ms = limits::kReadTimeoutMs);
  // The next message; std::nullopt once the peer finished the stream cleanly. Timeout after
  // timeout_ms without a message.
  Result<std::optional<std::string>> recv(uint32_t timeout_ms = limits::kReadTimeoutMs);
  // No more messages from this side (the peer's recv() returns nullopt after the last one).
  void finish();
  // Abandons the stream in both directions.
  void reset();
  int64_t id() const noexcept;

 private:
  friend class Connection;
  friend struct StreamTestAccess;
  Stream(std::shared_ptr<internal::EndpointCore> core, std::shared_ptr<internal::QuicConnection> conn,
         std::shared_ptr<internal::StreamShared> shared);
  Status send_bytes(std::string bytes, uint32_t timeout_ms);

  std::shared_ptr<internal::EndpointCore> core_;
  std::shared_ptr<internal::QuicConnection> conn_;
  std::shared_ptr<internal::StreamShared> shared_;
};

// An authenticated connection to one peer, for one protocol. Copies share the connection.
class Connection {
 public:
  Result<Stream> open_bi(uint32_t timeout_ms = limits::kStreamOpenTimeoutMs);
  // The next stream the peer opened.
  Result<Stream> accept_bi(uint32_t timeout_ms = limits::kReadTimeoutMs);
  const PublicKey& peer_key() const noexcept;
  const std::string& alpn() const noexcept;
  // False once the connection failed or was closed; error() then says why.
  bool is_open() const;
  std::optional<Error> error() const;
  // Graceful close: the peer sees the connection end; local waiters get Unavailable.
  void close();

 private:
  friend class Endpoint;
  friend class internal::EndpointCore;
  Connection(std::shared_ptr<internal::EndpointCore> core, std::shared_ptr<internal::QuicConnection> conn);

  std::shared_ptr<internal::EndpointCore> core_;
  std::shared_ptr<internal::QuicConnection> conn_;
};

// Serves one protocol (ALPN). on_connection runs on a thread of its own for each
// authenticated inbound connection and may block for the connection's lifetime (typically
// looping on accept_bi). Check conn.peer_key() to decide whether to serve the peer.
class ProtocolHandler {
 public:
  virtual ~ProtocolHandler() = default;
  virtual void on_connection(Connection conn) = 0;
};

struct PeerRtt {
  PublicKey peer;
  std::string alpn;
  uint64_t smoothed_rtt_us = 0;
  uint64_t min_rtt_us = 0;
};

struct TransportMetrics {
  uint64_t connections_open = 0;
  uint64_t streams_open = 0;
  uint64_t bytes_in = 0;   // UDP payload bytes received
  uint64_t bytes_out = 0;  // UDP payload bytes sent
  uint64_t handshake_failures = 0;
  uint64_t connections_refused = 0;  // over the connection limit
  uint64_t stateless_resets_sent = 0;
  std::vector<PeerRtt> peer_rtts;
};

struct EndpointConfig {
  SocketAddr bind_addr{"127.0.0.1", 0};
  uint32_t idle_timeout_ms = 30000;
  // Sends PINGs after this much quiet, so idle connections stay open. 0 = off.
  uint32_t keep_alive_ms = 10000;
  size_t max_connections = limits::kMaxConnections;
};

class Endpoint {
 public:
  // Binds the UDP socket and starts the loop thread.
  static Result<std::unique_ptr<Endpoint>> bind(const NodeIdentity& identity, const EndpointConfig& config);
  ~Endpoint();  // close()
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  const PublicKey& public_key() const noexcept;
  SocketAddr local_addr() const;

  // Routes inbound connections offering `alpn` to `handler`. Register before peers dial.
  Status register_handler(const std::string& alpn, std::shared_ptr<ProtocolHandler> handler);

  // Dials `peer` at the first address that answers, offering `alpn`. Fails with Unauthorized
  // if the peer does not hold `peer`'s key (or refuses ours), Unavailable if it does not
  // serve `alpn` or cannot be reached, Timeout after timeout_ms.
  Result<Connection> connect(const PublicKey& peer, std::span<const SocketAddr> addrs, const std::string& alpn,
                             uint32_t timeout_ms = limits::kConnectTimeoutMs);

  TransportMetrics metrics() const;

  // Closes every connection gracefully, stops the loop and joins handler threads.
  void close();

 private:
  friend struct EndpointTestAccess;
  explicit Endpoint(std::shared_ptr<internal::EndpointCore> core);
  std::shared_ptr<internal::EndpointCore> core_;
};

}  // namespace aspen::transport
