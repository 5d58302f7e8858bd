// The endpoint's loop-side machinery (internal): UDP socket, connection-ID routing, the set
// of connections, stateless reset and version negotiation, handler dispatch, metrics.
//
// Owned through shared_ptr by the public Endpoint, Connection and Stream handles. All fields
// not marked otherwise belong to the loop thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include "transport/endpoint.h"
#include "transport/internal/quic_connection.h"
#include "transport/internal/tls.h"

namespace aspen::transport::internal {

struct Counters {
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> streams_open{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> handshake_failures{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> stateless_resets_sent{0};
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
  TransportMetrics metrics();
  Counters& counters() noexcept { return counters_; }

  // --- loop thread ---
  void start_connect(const PublicKey& peer, const SocketAddr& addr, const std::string& alpn,
                     QuicConnection::Clock::time_point deadline, std::function<void(Result<std::shared_ptr<QuicConnection>>)> done);
  asio::io_context& io() noexcept { return io_; }
  const TlsContext& tls() const noexcept { return *tls_; }
  const EndpointConfig& config() const noexcept { return config_; }
  const sockaddr_storage& local_sockaddr() const noexcept { return local_sockaddr_; }
  socklen_t local_sockaddr_len() const noexcept { return local_sockaddr_len_; }
  void send_datagram(const uint8_t* data, size_t size, const PeerAddr& to);
  void route_cid(const std::string& cid, const std::shared_ptr<QuicConnection>& conn);
  void unroute_cid(const std::string& cid);
  void stateless_reset_token(uint8_t* token_out, const uint8_t* cid, size_t cid_len) const;
  void on_handshake_done(const std::shared_ptr<QuicConnection>& conn);
  void remove_connection(const std::shared_ptr<QuicConnection>& conn);

 private:
  void wait_readable();
  void drain_socket();
  void on_datagram(const uint8_t* data, size_t size, const PeerAddr& from);
  void accept_new(const uint8_t* data, size_t size, const PeerAddr& from);
  void send_version_negotiation(const ngtcp2_version_cid& vc, const PeerAddr& to);
  void maybe_send_stateless_reset(const ngtcp2_version_cid& vc, size_t size, const PeerAddr& to);
  void spawn_handler(std::shared_ptr<ProtocolHandler> handler, std::shared_ptr<QuicConnection> conn);
  std::vector<std::string> alpns() const;

  NodeIdentity identity_;
  EndpointConfig config_;
  std::unique_ptr<TlsContext> tls_;
  uint8_t reset_secret_[32] = {};

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
  std::vector<std::shared_ptr<QuicConnection>> touched_;  // to flush after a read batch
  std::vector<uint8_t> recv_buf_;

  mutable std::mutex handlers_mu_;
  std::map<std::string, std::shared_ptr<ProtocolHandler>> handlers_;

  struct HandlerThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> is_done;
  };
  std::mutex handler_threads_mu_;
  std::vector<HandlerThread> handler_threads_;

  Counters counters_;
};

}  // namespace aspen::transport::internal
