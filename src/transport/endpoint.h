// The transport endpoint: authenticated, multiplexed connections between Aspen nodes.
//
// An Endpoint owns one UDP socket and one event-loop thread. It dials peers by public key
// (connect), and hands each authenticated inbound connection to the ProtocolHandler
// registered for the connection's protocol name (ALPN: "raft-auth", "aspen-client", ...);
// an unknown protocol is refused during the handshake. A Connection carries bidirectional
// Streams; a Stream carries framed messages (at most limits::kMaxFrameSizeBytes each).
//
// Two ways to use it:
// - Blocking: every blocking method (connect, open_bi, accept_bi, send, recv) may be called
//   from any thread except the endpoint's own loop thread. Blocking calls take a timeout and
//   return Result; they never throw. A plain ProtocolHandler runs on a thread of its own
//   per connection, so it may block. Each call crosses to the loop thread and back.
// - Asynchronous, on the loop thread: code that runs on the loop (Endpoint::post, the
//   completion callbacks of connect_async / open_bi_async, LoopProtocolHandler callbacks and
//   StreamCallbacks) works without any thread handoff: send_async queues bytes that leave
//   when the current loop task ends (so a reply shares a packet with the acknowledgement
//   of the request), and received messages are handed to callbacks as they are decoded.
//   Loop callbacks must never block (no blocking method may be called from them; they
//   assert).
//
// Nothing here is specific to QUIC (today's implementation); a TLS-over-TCP backend could
// stand behind the same API.
#pragma once

#include <cstdint>
#include <functional>
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

class Connection;
class LoopProtocolHandler;
class Stream;

// Where a stream's messages go when it is used asynchronously. Both run on the loop thread.
struct StreamCallbacks {
  // One complete message, in order.
  std::function<void(Stream& stream, std::string message)> on_message;
  // Called once when the stream can deliver nothing more: std::nullopt when the peer
  // finished it cleanly (after its last message), otherwise why it failed (reset,
  // connection lost, oversized frame, endpoint closed).
  std::function<void(Stream& stream, std::optional<Error> error)> on_closed;
};

// One bidirectional stream of framed messages. Copies share the same stream.
class Stream {
 public:
  // Queues one message. Blocks (up to timeout_ms) only while more than the send-buffer
  // limit is unacknowledged. A message over the frame limit fails with MessageTooLarge and
  // resets the stream. On an accepted client connection, a message that would cross a send
  // cap (EndpointConfig) fails at once with Unavailable and resets the stream.
  Status send(std::string_view message, uint32_t timeout_ms = limits::kReadTimeoutMs);
  // The same, but the stream takes the message's buffer instead of copying it (worth it for
  // large messages: a 1 MiB copy costs as much CPU as the kernel's own copy of it).
  Status send_owned(std::string message, uint32_t timeout_ms = limits::kReadTimeoutMs);
  // The next message; std::nullopt once the peer finished the stream cleanly. Timeout after
  // timeout_ms without a message.
  Result<std::optional<std::string>> recv(uint32_t timeout_ms = limits::kReadTimeoutMs);
  // No more messages from this side (the peer's recv() returns nullopt after the last one).
  void finish();
  // Abandons the stream in both directions.
  void reset();
  int64_t id() const noexcept;
  // Bytes queued on this stream that the peer has not acknowledged yet: how far behind a
  // reader is (a sender of many messages paces itself by it).
  size_t unacked_bytes() const;
  // The authenticated key of the peer at the other end, and the connection's protocol.
  const PublicKey& peer_key() const noexcept;
  // As Connection::channel_binding.
  const ChannelBinding& channel_binding() const noexcept;
  // Identifies the stream's connection: unique in this process, never reused. Stream ids
  // are unique only within a connection, so (connection_serial, id) names a stream.
  uint64_t connection_serial() const noexcept;
  // A handle on the connection this stream belongs to (e.g. to close it).
  Connection connection() const;

  // --- asynchronous ---
  // Queues one message without blocking. On the loop thread the bytes go out when the
  // current loop task ends; from another thread they are posted to the loop. Fails with
  // MessageTooLarge (and resets the stream) over the frame limit, with Unavailable if the
  // stream has failed or more than the per-stream send-buffer limit is unacknowledged, and
  // with Unavailable (resetting the stream) if it would cross a send cap, as send().
  Status send_async(std::string_view message);
  // send_async taking the message's buffer instead of copying it.
  Status send_async_owned(std::string message);
  // Loop thread only. Delivers this stream's messages to `callbacks` instead of recv().
  // Messages that arrived before the call are delivered first (from a posted task).
  void set_callbacks(StreamCallbacks callbacks);

 private:
  friend class Connection;
  friend class internal::QuicConnection;
  friend struct StreamTestAccess;
  Stream(std::shared_ptr<internal::EndpointCore> core, std::shared_ptr<internal::QuicConnection> conn,
         std::shared_ptr<internal::StreamShared> shared);
  // Checks the frame limit (resetting the stream over it).
  Status check_message_size(size_t size_bytes);
  // Blocking senders: waits until the send buffer has room, then accounts `frame_bytes`.
  Status reserve_send_room(size_t frame_bytes, uint32_t timeout_ms);
  // Asynchronous senders: accounts `frame_bytes` or fails at once.
  Status reserve_send_room_now(size_t frame_bytes);
  // Both: with shared_->mu held, charges `frame_bytes` to the send caps of a client
  // connection; the refusal's error if a cap says no (the caller then resets the stream).
  std::optional<Error> charge_send_caps_locked(size_t frame_bytes);
  // Resets the stream after a refused charge (the peer reads kAppErrorSendBufferLimit).
  Status refuse_over_send_cap(Error error);
  // Queues already-framed bytes (tests use it to send malformed frames).
  Status send_bytes(std::string bytes, uint32_t timeout_ms);

  std::shared_ptr<internal::EndpointCore> core_;
  std::shared_ptr<internal::QuicConnection> conn_;
  std::shared_ptr<internal::StreamShared> shared_;
};

// An authenticated connection to one peer, for one protocol. Copies share the connection.
class Connection {
 public:
  Result<Stream> open_bi(uint32_t timeout_ms = limits::kStreamOpenTimeoutMs);
  // Opens a stream and queues `message` on it in the same step, finishing the stream after
  // it if `is_last`: for a request/response, one hand-off to the loop thread instead of
  // three (open, send, finish). On success the message is queued, as after send(); on
  // failure nothing was sent. MessageTooLarge over the frame limit.
  Result<Stream> open_bi_with(std::string message, bool is_last,
                              uint32_t timeout_ms = limits::kStreamOpenTimeoutMs);
  // Opens a stream without blocking; `done` runs on the loop thread with the stream (whose
  // messages go to `callbacks`) or why it could not be opened. Any thread.
  void open_bi_async(StreamCallbacks callbacks, std::function<void(Result<Stream>)> done,
                     uint32_t timeout_ms = limits::kStreamOpenTimeoutMs);
  // The next stream the peer opened.
  Result<Stream> accept_bi(uint32_t timeout_ms = limits::kReadTimeoutMs);
  // Streams the peer opens on this connection from now on go to `handler` on the loop
  // thread (on_stream, on_message, on_stream_closed) instead of accept_bi, and
  // on_connection_closed reports the end; on_loop_connection is not called. For connections
  // this side dialled; accepted ones get their ALPN's handler. Any thread.
  void serve_on_loop(std::shared_ptr<LoopProtocolHandler> handler);
  const PublicKey& peer_key() const noexcept;
  // 32 bytes derived from this connection's TLS secrets (an RFC 8446 exporter): equal at
  // both ends, unknown to anyone else, different for every connection. A proof computed
  // over them cannot be replayed on another connection.
  const ChannelBinding& channel_binding() const noexcept;
  // As Stream::connection_serial.
  uint64_t serial() const noexcept;
  const std::string& alpn() const noexcept;
  // False once the connection failed or was closed; error() then says why.
  bool is_open() const;
  std::optional<Error> error() const;
  // Graceful close: the peer sees the connection end; local waiters get Unavailable.
  void close();
  // Sends a keep-alive (QUIC PING) after `ms` without traffic (0: the endpoint's
  // keep_alive_ms). A link that must notice a dead peer quickly sets it low: the PING to a
  // dead process comes back as ICMP unreachable (Endpoint::set_peer_unreachable_handler).
  // Any thread.
  void set_keep_alive_ms(uint32_t ms);

 private:
  friend class Endpoint;
  friend class Stream;
  friend class internal::EndpointCore;
  friend class internal::QuicConnection;
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

// A handler that runs on the endpoint's loop thread, with no thread handoff: what the
// node's event loop uses. Every callback runs on the loop thread and must not block; reply
// with Stream::send_async. Inbound streams deliver to on_message / on_stream_closed unless
// on_stream gives the stream other callbacks (Stream::set_callbacks).
class LoopProtocolHandler : public ProtocolHandler {
 public:
  // An authenticated inbound connection (conn.peer_key() says who). Close it to refuse.
  virtual void on_loop_connection(Connection& conn) { (void)conn; }
  // The peer opened a stream; called before its first message.
  virtual void on_stream(Stream& stream) { (void)stream; }
  virtual void on_message(Stream& stream, std::string message) = 0;
  // As StreamCallbacks::on_closed.
  virtual void on_stream_closed(Stream& stream, std::optional<Error> error) {
    (void)stream;
    (void)error;
  }
  // An accepted connection ended (after on_stream_closed for its open streams).
  virtual void on_connection_closed(Connection& conn, const Error& error) {
    (void)conn;
    (void)error;
  }

 private:
  void on_connection(Connection) final {}  // loop handlers get on_loop_connection instead
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
  uint64_t connections_refused = 0;  // every refusal below, plus over limits::kMaxConnections in all
  uint64_t member_connections_refused = 0;   // over EndpointConfig::max_member_connections
  uint64_t client_connections_refused = 0;   // over max_client_connections
  uint64_t address_connections_refused = 0;  // over max_client_connections_per_address
  uint64_t handshakes_refused = 0;           // over max_inbound_handshakes (class not known yet)
  uint64_t member_connections_open = 0;      // inbound, admitted
  uint64_t client_connections_open = 0;      // inbound, admitted
  // Streams reset because their partial frames would cross a receive cap, and the bytes
  // partial frames hold now.
  uint64_t streams_refused_recv_limit = 0;
  uint64_t partial_frame_bytes = 0;
  // Messages refused (their streams reset) because they would cross a send cap, and the
  // unacknowledged send bytes client connections hold now.
  uint64_t streams_refused_send_limit = 0;
  uint64_t client_unacked_send_bytes = 0;
  uint64_t stateless_resets_sent = 0;
  uint64_t retries_sent = 0;    // address validation challenges (RetryPolicy)
  uint64_t invalid_tokens = 0;  // Initials with a forged, expired or replayed Retry token
  // Times the kernel's send buffer was full (EAGAIN): sending paused until it drained.
  uint64_t send_blocked = 0;
  // Datagrams dropped because even the wait queue behind a full send buffer was full.
  uint64_t datagrams_dropped = 0;
  // Connections ended because their peer's address answered with ICMP unreachable (its
  // process is gone, or its host): see Endpoint::set_peer_unreachable_handler.
  uint64_t peers_unreachable = 0;
  std::vector<PeerRtt> peer_rtts;
};

// When a server makes a new client prove it owns its source address (a QUIC Retry, RFC 9000
// §8.1.2) before it creates any state or runs a TLS handshake (an Ed25519 signature) for it.
// The proof costs the client one extra round trip.
enum class RetryPolicy : uint8_t {
  // Only while EndpointConfig::max_handshakes_without_retry inbound handshakes are in
  // progress: normal dials pay nothing, a flood of spoofed Initials gets one small stateless
  // reply each instead of a connection each.
  kUnderLoad,
  kAlways,
  kNever,
};

// Enough for a cluster's peers and clients all (re)connecting at once without the extra
// round trip; small enough that spoofed Initials cannot pin many handshakes.
inline constexpr size_t kDefaultMaxHandshakesWithoutRetry = 16;

// Limits (docs/operations.md, "Limits"). Inbound connections are admitted once their
// handshake is complete, by class: a member's or a client's (see is_member_key); a refused
// dialer fails at once with CONNECTION_REFUSED and a reason naming the limit. Partial
// frames are capped per connection and over all client connections; a stream that would
// cross a cap is reset (its peer reads an Unavailable error that says so). Unacknowledged
// send bytes are capped the same way for client connections (members are exempt): a message
// that would cross a cap is not queued, send fails with Unavailable naming the limit, and
// the stream is reset (the peer reads why); the connection's other streams carry on.
struct EndpointConfig {
  SocketAddr bind_addr{"127.0.0.1", 0};
  uint32_t idle_timeout_ms = 30000;
  // Sends PINGs after this much quiet, so idle connections stay open. 0 = off.
  uint32_t keep_alive_ms = 10000;
  // Whether an inbound connection is a member's, from its authenticated key (called on the
  // loop thread). Unset: a connection is a member's when its protocol is in member_alpns.
  std::function<bool(const PublicKey&)> is_member_key;
  std::vector<std::string> member_alpns;
  size_t max_member_connections = limits::kMaxMemberConnections;
  size_t max_client_connections = limits::kMaxClientConnections;
  size_t max_client_connections_per_address = limits::kMaxClientConnectionsPerAddress;
  // Inbound connections still handshaking (their class not known yet), and those this
  // endpoint dials; neither takes a member or client slot.
  size_t max_inbound_handshakes = limits::kMaxInboundHandshakes;
  size_t max_outbound_connections = limits::kMaxOutboundConnections;
  size_t max_connection_partial_frame_bytes = limits::kMaxConnectionPartialFrameBytes;
  size_t max_client_partial_frame_bytes = limits::kMaxClientPartialFrameBytes;
  size_t max_connection_unacked_send_bytes = limits::kMaxConnectionUnackedSendBytes;
  size_t max_client_unacked_send_bytes = limits::kMaxClientUnackedSendBytes;
  RetryPolicy retry = RetryPolicy::kUnderLoad;
  // For kUnderLoad: inbound handshakes in progress from which new clients get a Retry.
  size_t max_handshakes_without_retry = kDefaultMaxHandshakesWithoutRetry;
};

class Endpoint {
 public:
  // Binds the UDP socket and starts the loop thread. The first bind in a process also sets
  // glibc's malloc thresholds so that frame-sized buffers (up to 10 MiB) are reused rather
  // than returned to the kernel and faulted in again; see configure_allocator in endpoint.cc.
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
  // As connect, without blocking: `done` runs on the loop thread. Any thread.
  void connect_async(const PublicKey& peer, std::vector<SocketAddr> addrs, std::string alpn,
                     std::function<void(Result<Connection>)> done, uint32_t timeout_ms = limits::kConnectTimeoutMs);

  // Runs `fn` on the loop thread (after the current loop task, if called from it). Any
  // thread. Tasks posted after close() never run.
  void post(std::function<void()> fn);
  // Runs `fn` on the loop thread once `delay_ms` have passed (an asio timer on the loop: no
  // thread of its own). Any thread. Timers still pending at close() never fire.
  void post_after(uint32_t delay_ms, std::function<void()> fn);
  bool is_loop_thread() const noexcept;

  // Any thread, the loop thread included.
  TransportMetrics metrics() const;

  // `handler` runs on the loop thread with the key of each peer whose connection just ended
  // because its address answered our datagrams with ICMP port (or host) unreachable: its
  // process is gone, noticed at once rather than after the idle timeout. Any thread.
  void set_peer_unreachable_handler(std::function<void(const PublicKey&)> handler);

  // Closes every connection gracefully, stops the loop and joins handler threads.
  void close();

 private:
  friend struct EndpointTestAccess;
  explicit Endpoint(std::shared_ptr<internal::EndpointCore> core);
  std::shared_ptr<internal::EndpointCore> core_;
};

}  // namespace aspen::transport
