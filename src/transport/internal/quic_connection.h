// One QUIC connection: the ngtcp2 state machine, its TLS session, its streams (internal).
//
// Everything here runs on the endpoint's loop thread, except the accessors marked as
// thread-safe. The connection reads datagrams handed to it by the EndpointCore (which routes
// by connection ID), writes packets through it, and keeps one timer for ngtcp2's expiry and
// the closing/draining period. ngtcp2 callbacks only record state; packets are written
// after read_pkt/handle_expiry return (ngtcp2 forbids writing from inside its callbacks).
#pragma once

#include <netinet/in.h>
#include <ngtcp2/ngtcp2.h>
#include <sys/socket.h>

#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "transport/endpoint.h"
#include "transport/frame.h"
#include "transport/internal/admission.h"
#include "transport/internal/shared_state.h"
#include "transport/internal/tls.h"

namespace aspen::transport::internal {

class EndpointCore;

inline constexpr size_t kScidLengthBytes = 16;

struct PeerAddr {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

enum class ConnState : uint8_t { kHandshaking, kOpen, kClosing, kDraining, kClosed };

class QuicConnection : public std::enable_shared_from_this<QuicConnection> {
 public:
  using ConnectCallback = std::function<void(Status)>;
  using OpenCallback = std::function<void(Result<std::shared_ptr<StreamShared>>)>;
  using Clock = std::chrono::steady_clock;

  explicit QuicConnection(EndpointCore& core);
  ~QuicConnection();
  QuicConnection(const QuicConnection&) = delete;
  QuicConnection& operator=(const QuicConnection&) = delete;

  // --- loop thread ---
  Status init_client(const PublicKey& peer, const std::string& alpn, const PeerAddr& remote,
                     ConnectCallback on_connected);
  // `odcid`: the client's original DCID when it came back with a valid Retry token (its
  // address is then validated), else null.
  Status init_server(const ngtcp2_pkt_hd& hd, const ngtcp2_cid* odcid, const PeerAddr& remote,
                     std::vector<std::string> alpns);
  void on_datagram(const uint8_t* data, size_t size, const PeerAddr& from);
  // Writes whatever ngtcp2 has to send now and re-arms the timer.
  void flush();
  // `callbacks` (may be null) receive the stream's messages if the open succeeds.
  void open_stream(Clock::time_point deadline, std::shared_ptr<StreamCallbacks> callbacks, OpenCallback done);
  void stream_send(int64_t id, std::string bytes);
  // Queues one framed message (the caller checked the frame limit and accounted it).
  void stream_send_message(int64_t id, std::string_view message);
  // Queues one framed message whose buffer the stream takes over (same accounting).
  void stream_send_owned(int64_t id, std::string message);
  // Streams the peer opens from now on are delivered to `handler` on the loop, and the
  // connection's end is reported to it.
  void set_loop_handler(std::shared_ptr<LoopProtocolHandler> handler);
  void set_stream_callbacks(const std::shared_ptr<StreamShared>& stream, std::shared_ptr<StreamCallbacks> callbacks);
  // Asks for flush() once the current loop task is done, unless this connection is
  // flushing right now (then the running flush picks the new work up).
  void request_flush();
  void stream_finish(int64_t id);
  void stream_release_credit(int64_t id);
  void stream_reset(int64_t id, uint64_t app_error);
  // Graceful: sends CONNECTION_CLOSE, then lingers in the closing period.
  void close(uint64_t app_error, std::string_view reason);
  // Ends the connection without a word to the peer (connect timeout, endpoint teardown).
  void abort(Error error);
  // A keep-alive PING after `ms` without traffic (0: the endpoint's keep_alive_ms).
  void set_keep_alive_ms(uint32_t ms);
  ConnState state() const noexcept { return state_; }
  bool is_client() const noexcept { return is_client_; }
  // EndpointCore's flush list membership (loop thread).
  bool is_flush_listed = false;
  std::optional<PeerRtt> rtt() const;
  size_t stream_count() const noexcept { return streams_.size(); }
  // The peer reset this connection (RFC 9000 §10.3): it lost the connection's state.
  bool was_stateless_reset() const noexcept { return was_stateless_reset_; }
  const PeerAddr& remote() const noexcept { return remote_; }
  // Inbound: the class admission gave it (kClient until then). Outbound: kMember (this
  // process chose the peer). Decides which caps its receive buffers count against.
  PeerClass peer_class() const noexcept { return peer_class_; }
  // Admission granted a slot of class `c` (EndpointCore, loop thread).
  void set_admitted(PeerClass c, std::string address) {
    peer_class_ = c;
    is_admitted_ = true;
    slot_address_ = std::move(address);
    is_send_capped_.store(c == PeerClass::kClient, std::memory_order_release);
  }
  // Inbound connections that hold a slot of EndpointCore's ConnectionSlots.
  bool is_admitted() const noexcept { return is_admitted_; }
  const std::string& slot_address() const noexcept { return slot_address_; }
  // Partial-frame bytes its streams hold (charged to the endpoint's RecvBudget).
  size_t partial_frame_bytes() const noexcept { return partial_frame_bytes_; }

  // --- thread-safe ---
  // An admitted client connection: what is sent on it is charged to the endpoint's send
  // caps (admission.h SendBudget). Set before any of its streams is handed out.
  bool is_send_capped() const noexcept { return is_send_capped_.load(std::memory_order_acquire); }
  // Its unacknowledged send bytes as charged; only under EndpointCore's send budget mutex.
  size_t& send_charged_bytes_locked() noexcept { return send_charged_bytes_; }

  // --- thread-safe (immutable once the connection is handed out) ---
  const PublicKey& peer_key() const noexcept { return peer_key_; }
  const ChannelBinding& channel_binding() const noexcept { return channel_binding_; }
  // Unique among this process's connections, never reused.
  uint64_t serial() const noexcept { return serial_; }
  const std::string& alpn() const noexcept { return alpn_; }
  ConnShared& shared() noexcept { return shared_; }

 private:
  struct StreamState;
  friend struct Callbacks;

  // Work for application code, queued by ngtcp2 callbacks (which must not re-enter
  // ngtcp2) and run by dispatch_events() once ngtcp2 has returned.
  struct LoopEvent {
    enum class Kind : uint8_t { kConnected, kAccepted, kStreamOpened, kMessage, kStreamClosed, kConnectionClosed };
    explicit LoopEvent(Kind k, std::shared_ptr<StreamShared> st = nullptr, std::shared_ptr<StreamCallbacks> cb = nullptr,
                       std::string m = {}, std::optional<Error> e = std::nullopt)
        : kind(k), stream(std::move(st)), callbacks(std::move(cb)), message(std::move(m)), error(std::move(e)) {}
    Kind kind;
    std::shared_ptr<StreamShared> stream;
    std::shared_ptr<StreamCallbacks> callbacks;
    std::string message;
    std::optional<Error> error;
  };

  Status init_common(bool is_client, const ngtcp2_cid& dcid, const ngtcp2_cid& scid, uint32_t version,
                     const ngtcp2_transport_params& params, const PeerAddr& remote,
                     const ngtcp2_vec* validated_token = nullptr);
  void handle_read_error(int rv);
  // ngtcp2_conn_handle_expiry, ending the connection on its errors; false if it ended.
  bool handle_expiry(uint64_t now);
  bool has_unsent_stream_data() const;
  void on_timer();
  void arm_timer();
  bool write_packets();
  void send_close_packet(const ngtcp2_connection_close_error& ccerr);
  void enter_closing_period(ConnState state, Error error);
  void terminate(Error error);
  void release();
  void process_deferred();
  void become_open();
  void mark_writable(StreamState& s);
  StreamState* find_stream(int64_t id);
  // The stream if more may be sent on it; otherwise null, with the sender told why.
  StreamState* stream_for_send(int64_t id);
  StreamState& add_stream(int64_t id);
  void deliver(StreamState& s, std::vector<std::string>& frames, size_t consumed_bytes);
  // Charges (or credits) the change of s's partial-frame bytes to this connection and the
  // endpoint's RecvBudget; false if a cap refuses it (nothing is charged then).
  bool account_partial(StreamState& s);
  // Gives back everything s holds (the stream is going away).
  void release_partial(StreamState& s);
  // Credits everything s has charged to the send caps (the stream is going away; its send
  // side has failed, so nothing more is charged to it).
  void release_send_charge(StreamState& s);
  // Resets a stream whose partial frames would cross a receive cap.
  void refuse_stream_over_cap(StreamState& s, RecvCharge why);
  // Closes a connection admission refused (CONNECTION_REFUSED with `reason`).
  void refuse(const std::string& reason);
  void fail_stream(StreamState& s, Error error, bool also_send_side);
  void try_pending_opens();
  Error close_error_from_peer() const;
  void emit(LoopEvent event);
  void emit_stream_closed(StreamState& s, std::optional<Error> error);
  void dispatch_events();
  void run_event(LoopEvent& event);

  EndpointCore& core_;
  ngtcp2_conn* conn_ = nullptr;
  TlsSession tls_;
  ConnState state_ = ConnState::kHandshaking;
  bool is_client_ = false;
  PeerAddr remote_;
  ngtcp2_path path_{};
  std::vector<std::string> cids_;  // every CID routed to us by the endpoint
  PublicKey peer_key_;
  ChannelBinding channel_binding_{};
  std::string alpn_;
  ConnShared shared_;
  ConnectCallback on_connected_;
  ConnectCallback connected_pending_;  // handshake done; runs from dispatch_events()
  bool was_stateless_reset_ = false;
  PeerClass peer_class_ = PeerClass::kClient;
  bool is_admitted_ = false;
  std::string slot_address_;            // the peer's IP address, the key of its client slot
  size_t partial_frame_bytes_ = 0;
  std::atomic<bool> is_send_capped_{false};  // [any thread] see is_send_capped()
  size_t send_charged_bytes_ = 0;            // [EndpointCore's send budget mutex]
  std::optional<std::string> refusal_;  // admission said no; closed by process_deferred()
  // Server side, when the ALPN's handler runs on the loop: it gets this connection's events.
  std::shared_ptr<LoopProtocolHandler> loop_handler_;
  bool is_accept_reported_ = false;
  std::shared_ptr<StreamCallbacks> handler_callbacks_;  // loop_handler_'s, copied per stream
  std::vector<LoopEvent> events_;
  std::vector<LoopEvent> dispatching_;
  bool is_flushing_ = false;

  std::unordered_map<int64_t, std::unique_ptr<StreamState>> streams_;
  std::deque<int64_t> writable_;  // streams with data or FIN to send, round robin
  std::vector<std::pair<int64_t, uint64_t>> deferred_resets_;
  bool has_new_stream_credit_ = false;

  struct PendingOpen {
    OpenCallback done;
    std::shared_ptr<StreamCallbacks> callbacks;
    std::unique_ptr<asio::steady_timer> timer;
  };
  std::deque<std::shared_ptr<PendingOpen>> pending_opens_;

  std::unique_ptr<asio::steady_timer> timer_;
  const uint64_t serial_;
  uint64_t armed_expiry_ns_ = UINT64_MAX;
  uint64_t timer_generation_ = 0;
  uint64_t close_deadline_ns_ = 0;
  std::string close_packet_;  // resent while in the closing period
};

uint64_t now_ns();

}  // namespace aspen::transport::internal
