// The endpoint's loop-side machinery (internal): UDP socket, connection-ID routing, the set
// of connections, stateless reset and version negotiation, handler dispatch, metrics.
//
// Owned through shared_ptr by the public Endpoint, Connection and Stream handles. All fields
// not marked otherwise belong to the loop thread.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include "transport/endpoint.h"
#include "transport/internal/admission.h"
#include "transport/internal/buffer_pool.h"
#include "transport/internal/quic_connection.h"
#include "transport/internal/retry.h"
#include "transport/internal/tls.h"

namespace aspen::transport::internal {

// Whether a send or receive errno only reports an earlier ICMP error (unreachable.cc).
bool is_icmp_reported_errno(int err);

struct Counters {
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> streams_open{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> handshake_failures{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> member_connections_refused{0};
  std::atomic<uint64_t> client_connections_refused{0};
  std::atomic<uint64_t> address_connections_refused{0};
  std::atomic<uint64_t> handshakes_refused{0};
  std::atomic<uint64_t> member_connections_open{0};
  std::atomic<uint64_t> client_connections_open{0};
  std::atomic<uint64_t> streams_refused_recv_limit{0};
  std::atomic<uint64_t> partial_frame_bytes{0};
  std::atomic<uint64_t> streams_refused_send_limit{0};
  std::atomic<uint64_t> client_unacked_send_bytes{0};
  std::atomic<uint64_t> stateless_resets_sent{0};
  std::atomic<uint64_t> retries_sent{0};
  std::atomic<uint64_t> invalid_tokens{0};
  std::atomic<uint64_t> send_blocked{0};
  std::atomic<uint64_t> datagrams_dropped{0};
  std::atomic<uint64_t> peers_unreachable{0};
};

class EndpointCore : public std::enable_shared_from_this<EndpointCore> {
 public:
  EndpointCore(const NodeIdentity& identity, const EndpointConfig& config);
  ~EndpointCore();

  // --- any thread ---
  Status start();  // bind and start the loop thread
  void shutdown(bool should_notify_peers);
  bool is_loop_thread() const noexcept { return std::this_thread::get_id() == loop_thread_id_.load(); }
  bool is_closed() const noexcept { return is_closed_.load(); }
  template <typename F>
  void post(F&& f) {
    asio::post(io_, std::forward<F>(f));
  }
  const PublicKey& public_key() const noexcept { return identity_.public_key(); }
  SocketAddr local_addr() const;
  Status register_handler(const std::string& alpn, std::shared_ptr<ProtocolHandler> handler);
  std::shared_ptr<ProtocolHandler> find_handler(const std::string& alpn) const;
  TransportMetrics metrics();
  Counters& counters() noexcept { return counters_; }
  BufferPool& send_buffers() noexcept { return send_buffers_; }
  // The send caps of client connections (admission.h): senders charge from their own thread
  // (with the stream's mutex held: stream before budget is the lock order), the loop credits
  // as acknowledgements arrive. A refusal is counted and logged (at most once a second).
  SendCharge charge_send(QuicConnection& conn, size_t bytes);
  void credit_send(QuicConnection& conn, size_t bytes);
  const SendCaps& send_caps() const noexcept { return send_budget_.caps(); }  // immutable

  // --- loop thread ---
  using ConnectDone = std::function<void(Result<std::shared_ptr<QuicConnection>>)>;
  void start_connect(const PublicKey& peer, const SocketAddr& addr, const std::string& alpn,
                     QuicConnection::Clock::time_point deadline, ConnectDone done);
  // Tries `addrs` in order, giving each remaining address an equal share of the time left.
  void connect_any(const PublicKey& peer, std::vector<SocketAddr> addrs, const std::string& alpn,
                   QuicConnection::Clock::time_point deadline, ConnectDone done);
  // Flushes `conn` once the current loop task is done: at the end of the socket read batch,
  // or from a task posted to the loop (no extra wakeup: the loop is running).
  void schedule_flush(std::shared_ptr<QuicConnection> conn);
  asio::io_context& io() noexcept { return io_; }
  const TlsContext& tls() const noexcept { return *tls_; }
  const EndpointConfig& config() const noexcept { return config_; }
  const sockaddr_storage& local_sockaddr() const noexcept { return local_sockaddr_; }
  socklen_t local_sockaddr_len() const noexcept { return local_sockaddr_len_; }
  void send_datagram(const uint8_t* data, size_t size, const PeerAddr& to);
  // `count` datagrams at base, base + stride, ...; one syscall when the kernel takes them all.
  void send_datagrams(const uint8_t* base, size_t stride, const size_t* sizes, size_t count, const PeerAddr& to);
  // True while datagrams the kernel refused (send buffer full) wait for the socket to drain.
  // Connections write no new packets meanwhile: they would only queue behind, and packets
  // written late carry stale acknowledgements and pacing.
  bool is_send_blocked() const noexcept { return !pending_sends_.empty(); }
  // Flushes `conn` again once the queued datagrams are out.
  void wait_for_send_room(std::shared_ptr<QuicConnection> conn);
  // Testing: the next `n` send calls find the socket full (EAGAIN).
  void fail_next_sends_for_testing(size_t n) { sends_to_fail_for_testing_ = n; }
  // Testing: received data is never credited back (a peer whose application never reads).
  void withhold_credit_for_testing() { is_credit_withheld_for_testing_ = true; }
  bool is_credit_withheld_for_testing() const noexcept { return is_credit_withheld_for_testing_; }
  int native_fd_for_testing() { return socket_.native_handle(); }
  void route_cid(const std::string& cid, const std::shared_ptr<QuicConnection>& conn);
  void unroute_cid(const std::string& cid);
  void stateless_reset_token(uint8_t* token_out, const uint8_t* cid, size_t cid_len) const;
  void on_handshake_done(const std::shared_ptr<QuicConnection>& conn);
  // Gives an inbound connection whose handshake is complete a slot of its class, or says
  // why not (the CONNECTION_CLOSE reason).
  std::optional<std::string> admit(QuicConnection& conn);
  RecvBudget& recv_budget() noexcept { return recv_budget_; }
  // Counts (and logs, at most once a second) a stream reset over a receive cap.
  void note_stream_refused_over_cap(const std::string& what);
  void remove_connection(const std::shared_ptr<QuicConnection>& conn);
  // Called on the loop thread with the key of each peer whose connection ended because its
  // address refused our datagrams (unreachable.cc). Any thread.
  void set_peer_unreachable_handler(std::function<void(const PublicKey&)> handler);

 private:
  void wait_readable();
  void on_readable();
  // Reads and handles queued datagrams (up to a budget); true if the socket is now empty.
  bool drain_socket();
  void on_datagram(const uint8_t* data, size_t size, const PeerAddr& from);
  void accept_new(const uint8_t* data, size_t size, const PeerAddr& from);
  // Counts a refused connection attempt and logs refusals at most once a second.
  void note_refusal(std::atomic<uint64_t>& counter, const std::string& reason);
  // Which slot class an inbound connection takes (EndpointConfig::is_member_key).
  PeerClass classify(const QuicConnection& conn) const;
  // Closes a connection attempt without creating any state for it (over the connection
  // limit, an invalid address-validation token).
  void send_stateless_close(const ngtcp2_pkt_hd& hd, uint64_t transport_error, std::string_view reason,
                            const PeerAddr& to);
  // Whether a client Initial without a token is answered with a Retry (config().retry).
  bool should_retry() const;
  void send_retry(const ngtcp2_pkt_hd& hd, const PeerAddr& to);
  void send_version_negotiation(const ngtcp2_version_cid& vc, const PeerAddr& to);
  void maybe_send_stateless_reset(const ngtcp2_version_cid& vc, size_t size, const PeerAddr& to);
  void flush_listed();
  // ICMP errors about our datagrams (unreachable.cc): the socket asks for them (ip(7)
  // IP_RECVERR); a peer's port or host reported unreachable ends every connection with that
  // address at once, instead of after the idle timeout, and tells the handler.
  void enable_error_reports();
  // Reads the error queue into unreachable_reports_; acting on them waits until the
  // datagrams already received are read (act_on_error_reports): the kernel reports a pending
  // ICMP error before the datagrams queued ahead of it, and one of those may be the peer's
  // own CONNECTION_CLOSE, which says more than "unreachable".
  void collect_error_reports();
  void act_on_error_reports();
  void on_address_unreachable(const PeerAddr& addr, int err);
  // A send or receive failed with an errno that only reports an earlier ICMP error (the
  // datagram itself was fine): read the error queue soon, from the loop.
  void schedule_error_drain();
  // Reads the socket until it is empty, over as many turns of the loop as it takes (without
  // touching the readiness wait, which stays armed).
  void continue_drain();
  // Queues datagrams the kernel did not take, and waits for the socket to become writable.
  void queue_unsent(const uint8_t* data, size_t size, const PeerAddr& to);
  void wait_writable();
  void on_writable();
  // A send syscall's errno, or EAGAIN while a test asks for a full socket.
  bool is_socket_full(int err);
  struct ConnectAttempts;
  void connect_next(std::shared_ptr<ConnectAttempts> state);
  void on_connect_attempt(const std::shared_ptr<ConnectAttempts>& state,
                          const Result<std::shared_ptr<QuicConnection>>& result);
  void spawn_handler(std::shared_ptr<ProtocolHandler> handler, std::shared_ptr<QuicConnection> conn);
  std::vector<std::string> alpns() const;

  NodeIdentity identity_;
  EndpointConfig config_;
  std::unique_ptr<TlsContext> tls_;
  uint8_t reset_secret_[32] = {};
  std::optional<RetryTokens> retry_tokens_;  // set by start()

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::ip::udp::socket socket_;
  sockaddr_storage local_sockaddr_{};
  socklen_t local_sockaddr_len_ = 0;
  std::thread loop_thread_;
  std::atomic<std::thread::id> loop_thread_id_{};
  std::atomic<bool> is_closed_{false};

  std::unordered_map<std::string, std::shared_ptr<QuicConnection>> routes_;
  std::set<std::shared_ptr<QuicConnection>> conns_;
  // Refusals over the connection limit are logged at most once per second (a flood would
  // otherwise flood the log); the line says how many were refused since the last one.
  uint64_t last_refusal_log_ns_ = 0;
  uint64_t refusals_since_log_ = 0;
  uint64_t last_recv_refusal_log_ns_ = 0;
  uint64_t recv_refusals_since_log_ = 0;
  ConnectionSlots slots_;
  RecvBudget recv_budget_;
  std::mutex send_budget_mu_;
  SendBudget send_budget_;                     // [send_budget_mu_]
  uint64_t last_send_refusal_log_ns_ = 0;      // [send_budget_mu_]
  uint64_t send_refusals_since_log_ = 0;       // [send_budget_mu_]
  std::vector<std::shared_ptr<QuicConnection>> flush_list_;  // see schedule_flush
  std::vector<std::shared_ptr<QuicConnection>> flushing_;
  bool is_draining_ = false;    // inside drain_socket: it flushes the list when done
  bool is_flush_posted_ = false;
  std::vector<uint8_t> recv_buf_;
  struct PendingDatagram {
    std::vector<uint8_t> bytes;
    PeerAddr to;
  };
  std::deque<PendingDatagram> pending_sends_;
  size_t pending_send_bytes_ = 0;
  bool is_waiting_writable_ = false;
  std::vector<std::shared_ptr<QuicConnection>> send_waiters_;
  size_t sends_to_fail_for_testing_ = 0;
  bool is_credit_withheld_for_testing_ = false;

  mutable std::mutex handlers_mu_;
  std::map<std::string, std::shared_ptr<ProtocolHandler>> handlers_;
  std::function<void(const PublicKey&)> on_peer_unreachable_;  // [handlers_mu_]
  bool is_error_drain_posted_ = false;                          // [loop]
  struct UnreachableReport {
    PeerAddr addr;
    int err = 0;
  };
  std::vector<UnreachableReport> unreachable_reports_;  // [loop] read, not yet acted on

  struct HandlerThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> is_done;
  };
  std::mutex handler_threads_mu_;
  std::vector<HandlerThread> handler_threads_;

  Counters counters_;
  BufferPool send_buffers_;
};

}  // namespace aspen::transport::internal
