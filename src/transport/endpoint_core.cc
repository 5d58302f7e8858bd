#include "transport/internal/endpoint_core.h"

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sodium.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/log.h"

namespace aspen::transport::internal {
namespace {

constexpr int kSocketBufferBytes = 8 << 20;
constexpr size_t kMaxDatagramsPerWakeup = 64;
constexpr size_t kRecvBufferBytes = 65536;
constexpr size_t kRecvBatch = 16;
constexpr std::string_view kResetSecretLabel = "aspen stateless reset v1";
constexpr std::string_view kRetrySecretLabel = "aspen retry token v1";
constexpr std::string_view kInvalidTokenReason = "invalid address validation token";

void set_socket_buffer(int fd, int force_opt, int opt) {
  // The FORCE variants exceed rmem_max/wmem_max but need CAP_NET_ADMIN; fall back quietly.
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &kSocketBufferBytes, sizeof(kSocketBufferBytes)) != 0) {
    ::setsockopt(fd, SOL_SOCKET, opt, &kSocketBufferBytes, sizeof(kSocketBufferBytes));
  }
}

Result<PeerAddr> to_peer_addr(const SocketAddr& addr) {
  asio::error_code ec;
  const auto ip = asio::ip::make_address(addr.ip, ec);
  if (ec) return make_error(ErrorCode::kInvalidArgument, fmt::format("bad address {}", addr.to_string()));
  const asio::ip::udp::endpoint ep(ip, addr.port);
  PeerAddr out;
  std::memcpy(&out.addr, ep.data(), ep.size());
  out.len = static_cast<socklen_t>(ep.size());
  return out;
}

}  // namespace

EndpointCore::EndpointCore(const NodeIdentity& identity, const EndpointConfig& config)
    : identity_(identity),
      config_(config),
      io_(1),  // one thread runs it: posts from that thread need no wakeup
      work_(asio::make_work_guard(io_)),
      socket_(io_),
      slots_(SlotLimits{config.max_member_connections, config.max_client_connections,
                        config.max_client_connections_per_address}),
      recv_budget_(RecvCaps{config.max_connection_partial_frame_bytes, config.max_client_partial_frame_bytes}),
      send_budget_(SendCaps{config.max_connection_unacked_send_bytes, config.max_client_unacked_send_bytes}),
      recv_buf_(kRecvBufferBytes * kRecvBatch) {}

EndpointCore::~EndpointCore() {
  ASPEN_ASSERT(!is_loop_thread());
  shutdown(false);
}

Status EndpointCore::start() {
  auto tls = TlsContext::create(identity_);
  if (!tls) return std::unexpected(tls.error());
  tls_ = std::move(*tls);
  // Derived from the node key, so a restarted node can still reset connections its previous
  // incarnation had (RFC 9000 §10.3): the peer learns quickly instead of idling out.
  crypto_generichash(reset_secret_, sizeof(reset_secret_), identity_.seed().data(), identity_.seed().size(),
                     reinterpret_cast<const uint8_t*>(kResetSecretLabel.data()), kResetSecretLabel.size());
  // Also from the node key (under another label): a token issued just before a restart
  // still validates the client's next Initial.
  uint8_t retry_secret[RetryTokens::kSecretBytes];
  crypto_generichash(retry_secret, sizeof(retry_secret), identity_.seed().data(), identity_.seed().size(),
                     reinterpret_cast<const uint8_t*>(kRetrySecretLabel.data()), kRetrySecretLabel.size());
  retry_tokens_.emplace(retry_secret);
  sodium_memzero(retry_secret, sizeof(retry_secret));

  auto bind_addr = to_peer_addr(config_.bind_addr);
  if (!bind_addr) return std::unexpected(bind_addr.error());
  asio::ip::udp::endpoint ep;
  std::memcpy(ep.data(), &bind_addr->addr, bind_addr->len);
  asio::error_code ec;
  socket_.open(ep.protocol(), ec);
  if (!ec) socket_.bind(ep, ec);
  if (!ec) socket_.non_blocking(true, ec);
  if (ec) {
    return make_error(ErrorCode::kUnavailable, fmt::format("bind {}: {}", config_.bind_addr.to_string(), ec.message()));
  }
  set_socket_buffer(socket_.native_handle(), SO_RCVBUFFORCE, SO_RCVBUF);
  set_socket_buffer(socket_.native_handle(), SO_SNDBUFFORCE, SO_SNDBUF);
  const auto local = socket_.local_endpoint(ec);
  if (ec) return make_error(ErrorCode::kUnavailable, fmt::format("getsockname: {}", ec.message()));
  std::memcpy(&local_sockaddr_, local.data(), local.size());
  local_sockaddr_len_ = static_cast<socklen_t>(local.size());
  enable_error_reports();

  wait_readable();
  loop_thread_ = std::thread([this] {
    io_.run();
    // Once the loop has stopped no thread is the loop thread; a joined thread's id may be
    // given to a new thread (glibc reuses them), which must not pass for the loop.
    loop_thread_id_ = std::thread::id{};
  });
  loop_thread_id_ = loop_thread_.get_id();
  ASPEN_LOG_DEBUG("transport: endpoint {} listening on {}", public_key().short_string(), local_addr().to_string());
  return {};
}

void EndpointCore::shutdown(bool should_notify_peers) {
  if (is_closed_.exchange(true)) return;
  if (loop_thread_.joinable()) {
    post([this, should_notify_peers] {
      const auto conns = conns_;  // close() and abort() erase from conns_
      for (const auto& c : conns) {
        if (should_notify_peers) {
          c->close(kAppErrorShutdown, "endpoint shutting down");
        }
        c->abort(Error(ErrorCode::kUnavailable, "endpoint closed"));
      }
      flush_listed();  // loop handlers and callbacks hear that their connections ended
      send_waiters_.clear();
      pending_sends_.clear();
      pending_send_bytes_ = 0;
      asio::error_code ec;
      socket_.close(ec);
      io_.stop();
    });
    if (std::this_thread::get_id() != loop_thread_.get_id()) loop_thread_.join();
  }
  std::vector<HandlerThread> threads;
  {
    std::lock_guard lock(handler_threads_mu_);
    threads.swap(handler_threads_);
  }
  for (auto& t : threads) {
    if (t.thread.get_id() == std::this_thread::get_id()) {
      t.thread.detach();  // a handler closing its own endpoint
    } else if (t.thread.joinable()) {
      t.thread.join();
    }
  }  // Handlers may hold Connections (and so this core): let go of them, or neither is freed.
  std::lock_guard lock(handlers_mu_);
  handlers_.clear();
}

SocketAddr EndpointCore::local_addr() const {
  asio::ip::udp::endpoint ep;
  std::memcpy(ep.data(), &local_sockaddr_, local_sockaddr_len_);
  return SocketAddr{ep.address().to_string(), ep.port()};
}

Status EndpointCore::register_handler(const std::string& alpn, std::shared_ptr<ProtocolHandler> handler) {
  if (alpn.empty() || alpn.size() > 255) {
    return make_error(ErrorCode::kInvalidArgument, "protocol name must be 1 to 255 bytes");
  }
  ASPEN_ASSERT(handler != nullptr);
  std::lock_guard lock(handlers_mu_);
  if (!handlers_.emplace(alpn, std::move(handler)).second) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("protocol '{}' already has a handler", alpn));
  }
  return {};
}

std::shared_ptr<ProtocolHandler> EndpointCore::find_handler(const std::string& alpn) const {
  std::lock_guard lock(handlers_mu_);
  auto it = handlers_.find(alpn);
  return it == handlers_.end() ? nullptr : it->second;
}

std::vector<std::string> EndpointCore::alpns() const {
  std::lock_guard lock(handlers_mu_);
  std::vector<std::string> out;
  for (const auto& [alpn, handler] : handlers_) out.push_back(alpn);
  return out;
}

TransportMetrics EndpointCore::metrics() {
  TransportMetrics m;
  m.connections_open = counters_.connections_open.load();
  m.streams_open = counters_.streams_open.load();
  m.bytes_in = counters_.bytes_in.load();
  m.bytes_out = counters_.bytes_out.load();
  m.handshake_failures = counters_.handshake_failures.load();
  m.connections_refused = counters_.connections_refused.load();
  m.member_connections_refused = counters_.member_connections_refused.load();
  m.client_connections_refused = counters_.client_connections_refused.load();
  m.address_connections_refused = counters_.address_connections_refused.load();
  m.handshakes_refused = counters_.handshakes_refused.load();
  m.member_connections_open = counters_.member_connections_open.load();
  m.client_connections_open = counters_.client_connections_open.load();
  m.streams_refused_recv_limit = counters_.streams_refused_recv_limit.load();
  m.partial_frame_bytes = counters_.partial_frame_bytes.load();
  m.streams_refused_send_limit = counters_.streams_refused_send_limit.load();
  m.client_unacked_send_bytes = counters_.client_unacked_send_bytes.load();
  m.stateless_resets_sent = counters_.stateless_resets_sent.load();
  m.retries_sent = counters_.retries_sent.load();
  m.invalid_tokens = counters_.invalid_tokens.load();
  m.send_blocked = counters_.send_blocked.load();
  m.datagrams_dropped = counters_.datagrams_dropped.load();
  m.peers_unreachable = counters_.peers_unreachable.load();
  if (is_closed()) return m;
  if (is_loop_thread()) {
    // Already on the loop (a loop handler serving a metrics request): read directly.
    for (const auto& c : conns_) {
      if (auto r = c->rtt()) m.peer_rtts.push_back(*r);
    }
    return m;
  }
  auto promise = std::make_shared<std::promise<std::vector<PeerRtt>>>();
  auto future = promise->get_future();
  post([this, promise] {
    std::vector<PeerRtt> rtts;
    for (const auto& c : conns_) {
      if (auto r = c->rtt()) rtts.push_back(*r);
    }
    promise->set_value(std::move(rtts));
  });
  if (future.wait_for(std::chrono::seconds(2)) == std::future_status::ready) {
    try {
      m.peer_rtts = future.get();
    } catch (const std::future_error&) {
      // the endpoint closed meanwhile: no RTTs to report
    }
  }
  return m;
}

void EndpointCore::wait_readable() {
  // Handlers capture `this`: they only run on the loop thread, which shutdown() joins
  // before the core can be destroyed.
  socket_.async_wait(asio::ip::udp::socket::wait_read, [this](const asio::error_code& ec) {
    // A pending socket error (an ICMP report) wakes this with success too (asio's wait
    // operations complete on EPOLLERR without an error); drain_socket reads the report.
    if (ec) return;
    on_readable();
  });
}

void EndpointCore::on_readable() {
  if (drain_socket()) {
    wait_readable();
    return;
  }
  // Budget spent with datagrams left: other loop work gets a turn first. (Waiting for
  // readiness instead could stall: the socket's readiness edge has already been seen.)
  post([this] {
    if (!is_closed()) on_readable();
  });
}

bool EndpointCore::drain_socket() {
  const int fd = socket_.native_handle();
  is_draining_ = true;
  bool is_empty = false;
  size_t received = 0;
  int error_reports = 0;
  while (received < kMaxDatagramsPerWakeup) {
    // recvmmsg takes what is queued (up to the batch) in one call; a short batch means the
    // socket is empty, so no extra call just to see EAGAIN.
    mmsghdr msgs[kRecvBatch];
    iovec iov[kRecvBatch];
    PeerAddr from[kRecvBatch];
    for (size_t i = 0; i < kRecvBatch; ++i) {
      iov[i] = iovec{recv_buf_.data() + i * kRecvBufferBytes, kRecvBufferBytes};
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_name = &from[i].addr;
      msgs[i].msg_hdr.msg_namelen = sizeof(from[i].addr);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(fd, msgs, kRecvBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (is_icmp_reported_errno(errno) && error_reports++ < 4) {
        // An ICMP report, not the end of the datagrams: read it, then go on receiving; it
        // is acted on once the datagrams queued before it are read.
        collect_error_reports();
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) ASPEN_LOG_DEBUG("transport: recvmmsg: {}", std::strerror(errno));
      is_empty = true;
      break;
    }
    for (int i = 0; i < n; ++i) {
      from[i].len = msgs[i].msg_hdr.msg_namelen;
      const size_t size = msgs[i].msg_len;
      counters_.bytes_in.fetch_add(size);
      on_datagram(static_cast<const uint8_t*>(iov[i].iov_base), size, from[i]);
    }
    received += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < kRecvBatch) {
      is_empty = true;
      break;
    }
  }
  is_draining_ = false;
  if (is_empty) act_on_error_reports();
  // Write once per batch: acknowledgements and replies for several datagrams share packets.
  flush_listed();
  return is_empty;
}

void EndpointCore::schedule_flush(std::shared_ptr<QuicConnection> conn) {
  if (conn->is_flush_listed) return;
  conn->is_flush_listed = true;
  flush_list_.push_back(std::move(conn));
  if (is_draining_ || is_flush_posted_) return;
  is_flush_posted_ = true;
  post([this] {
    is_flush_posted_ = false;
    flush_listed();
  });
}

void EndpointCore::flush_listed() {
  // A flush runs application callbacks, which may list more connections: repeat.
  while (!flush_list_.empty()) {
    flushing_.swap(flush_list_);
    for (auto& c : flushing_) {
      c->is_flush_listed = false;
      c->flush();
    }
    flushing_.clear();
  }
}

void EndpointCore::on_datagram(const uint8_t* data, size_t size, const PeerAddr& from) {
  ngtcp2_version_cid vc;
  const int rv = ngtcp2_pkt_decode_version_cid(&vc, data, size, kScidLengthBytes);
  if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
    send_version_negotiation(vc, from);
    return;
  }
  if (rv != 0) return;  // not a QUIC packet we can parse: ignore it
  auto it = routes_.find(std::string(reinterpret_cast<const char*>(vc.dcid), vc.dcidlen));
  if (it != routes_.end()) {
    auto conn = it->second;
    conn->on_datagram(data, size, from);
    schedule_flush(std::move(conn));
    return;
  }
  if (vc.version == 0) {
    // A short header with a CID we do not know. It may be a stateless reset from a peer
    // that lost its state: those carry random bytes where the CID would be, so offer the
    // datagram to connections with that peer address (ngtcp2 checks the reset token).
    bool is_reset_for_us = false;
    for (const auto& conn : std::vector(conns_.begin(), conns_.end())) {
      if (conn->remote().len != from.len || std::memcmp(&conn->remote().addr, &from.addr, from.len) != 0) continue;
      const bool was_reset = conn->was_stateless_reset();
      conn->on_datagram(data, size, from);
      is_reset_for_us |= !was_reset && conn->was_stateless_reset();
    }
    // Otherwise it is traffic of a connection we lost (a restart), even when we already
    // have a new connection with that peer (both ends keep one UDP socket, so every
    // connection between two nodes shares the address pair): reset it, or the peer keeps
    // sending into it until its idle timeout. Our reset is smaller than what triggered it,
    // so two endpoints answering each other's resets stop after a few packets.
    if (!is_reset_for_us) maybe_send_stateless_reset(vc, size, from);
    return;
  }
  accept_new(data, size, from);
}

void EndpointCore::accept_new(const uint8_t* data, size_t size, const PeerAddr& from) {
  ngtcp2_pkt_hd hd;
  if (ngtcp2_accept(&hd, data, size) != 0 || is_closed()) return;
  // Before the handshake names the protocol and the key, only the number of handshakes in
  // progress is limited (and, under load, each new one must first prove its address with a
  // Retry): the member and client slots are decided after it (admit()).
  const auto handshakes = static_cast<size_t>(std::count_if(conns_.begin(), conns_.end(), [](const auto& c) {
    return !c->is_client() && c->state() == ConnState::kHandshaking;
  }));
  std::optional<std::string> refusal;
  std::atomic<uint64_t>* counter = nullptr;
  if (handshakes >= config_.max_inbound_handshakes) {
    refusal = fmt::format("handshake limit reached ({} in progress)", config_.max_inbound_handshakes);
    counter = &counters_.handshakes_refused;
  } else if (conns_.size() >= limits::kMaxConnections) {
    refusal = std::string(kConnectionLimitReason);
    counter = &counters_.connections_refused;  // counted once, below
  }
  if (refusal) {
    note_refusal(*counter, *refusal);
    // Say so rather than stay silent: the dialer fails at once with a clear reason instead
    // of waiting out its connect timeout (and retrying into the same wall).
    send_stateless_close(hd, NGTCP2_CONNECTION_REFUSED, *refusal, from);
    return;
  }
  // RFC 9000 §8.1.2: an Initial with our Retry token proves the client's address. One whose
  // token does not verify (forged, expired, from another address) is closed with
  // INVALID_TOKEN rather than sent another Retry: a genuine client never gets there.
  std::optional<ngtcp2_cid> odcid;
  if (RetryTokens::carries_retry_token(hd)) {
    odcid = retry_tokens_->check_token(std::span<const uint8_t>(hd.token.base, hd.token.len), from, hd.dcid,
                                       hd.version, now_ns());
    if (!odcid) {
      counters_.invalid_tokens.fetch_add(1);
      ASPEN_LOG_INFO("transport: refusing an Initial with an invalid Retry token");
      send_stateless_close(hd, NGTCP2_INVALID_TOKEN, kInvalidTokenReason, from);
      return;
    }
  } else if (should_retry()) {
    send_retry(hd, from);
    return;
  }
  auto conn = std::make_shared<QuicConnection>(*this);
  conns_.insert(conn);
  if (auto st = conn->init_server(hd, odcid ? &*odcid : nullptr, from, alpns()); !st) {
    ASPEN_LOG_WARN("transport: cannot accept a connection: {}", st.error().to_string());
    conn->abort(st.error());
    return;
  }
  conn->on_datagram(data, size, from);
  schedule_flush(std::move(conn));
}

void EndpointCore::note_refusal(std::atomic<uint64_t>& counter, const std::string& reason) {
  if (&counter != &counters_.connections_refused) counter.fetch_add(1);
  counters_.connections_refused.fetch_add(1);
  ++refusals_since_log_;
  if (uint64_t now = now_ns(); last_refusal_log_ns_ == 0 || now - last_refusal_log_ns_ >= 1'000'000'000) {
    ASPEN_LOG_WARN("transport: refused {} connection(s); the last one: {}", refusals_since_log_, reason);
    last_refusal_log_ns_ = now;
    refusals_since_log_ = 0;
  }
}

PeerClass EndpointCore::classify(const QuicConnection& conn) const {
  if (config_.is_member_key) return config_.is_member_key(conn.peer_key()) ? PeerClass::kMember : PeerClass::kClient;
  const auto& m = config_.member_alpns;
  return std::find(m.begin(), m.end(), conn.alpn()) != m.end() ? PeerClass::kMember : PeerClass::kClient;
}

std::optional<std::string> EndpointCore::admit(QuicConnection& conn) {
  ASPEN_ASSERT(!conn.is_client() && !conn.is_admitted());
  const PeerClass cls = classify(conn);
  // Slots are per IP address, whatever the port: one host opening many connections from
  // many ports is still one host.
  std::string address;
  const auto& a = conn.remote().addr;
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    address.assign(reinterpret_cast<const char*>(&in->sin_addr), sizeof(in->sin_addr));
  } else if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    address.assign(reinterpret_cast<const char*>(&in6->sin6_addr), sizeof(in6->sin6_addr));
  }
  const Admission verdict = slots_.admit(cls, address);
  if (verdict == Admission::kAdmitted) {
    conn.set_admitted(cls, std::move(address));
    (cls == PeerClass::kMember ? counters_.member_connections_open : counters_.client_connections_open).fetch_add(1);
    return std::nullopt;
  }
  std::string reason = refusal_reason(verdict, slots_.limits());
  note_refusal(verdict == Admission::kMemberLimit   ? counters_.member_connections_refused
               : verdict == Admission::kClientLimit ? counters_.client_connections_refused
                                                    : counters_.address_connections_refused,
               fmt::format("{} from {} ({})", reason, conn.peer_key().short_string(), conn.alpn()));
  return reason;
}

void EndpointCore::note_stream_refused_over_cap(const std::string& what) {
  counters_.streams_refused_recv_limit.fetch_add(1);
  ++recv_refusals_since_log_;
  if (uint64_t now = now_ns(); last_recv_refusal_log_ns_ == 0 || now - last_recv_refusal_log_ns_ >= 1'000'000'000) {
    ASPEN_LOG_WARN("transport: reset {} stream(s) over a receive buffer limit; the last one: {}",
                   recv_refusals_since_log_, what);
    last_recv_refusal_log_ns_ = now;
    recv_refusals_since_log_ = 0;
  }
}

SendCharge EndpointCore::charge_send(QuicConnection& conn, size_t bytes) {
  std::lock_guard lock(send_budget_mu_);
  const SendCharge verdict = send_budget_.charge(conn.send_charged_bytes_locked(), bytes);
  if (verdict == SendCharge::kOk) {
    counters_.client_unacked_send_bytes.store(send_budget_.client_held(), std::memory_order_relaxed);
    return verdict;
  }
  counters_.streams_refused_send_limit.fetch_add(1);
  ++send_refusals_since_log_;
  if (uint64_t now = now_ns(); last_send_refusal_log_ns_ == 0 || now - last_send_refusal_log_ns_ >= 1'000'000'000) {
    ASPEN_LOG_WARN("transport: refused {} message(s) over a send buffer limit; the last one: {} bytes to {}, over the "
                   "limit of {}",
                   send_refusals_since_log_, bytes, conn.peer_key().short_string(),
                   send_limit_text(verdict, send_budget_.caps()));
    last_send_refusal_log_ns_ = now;
    send_refusals_since_log_ = 0;
  }
  return verdict;
}

void EndpointCore::credit_send(QuicConnection& conn, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard lock(send_budget_mu_);
  send_budget_.credit(conn.send_charged_bytes_locked(), bytes);
  counters_.client_unacked_send_bytes.store(send_budget_.client_held(), std::memory_order_relaxed);
}

bool EndpointCore::should_retry() const {
  switch (config_.retry) {
    case RetryPolicy::kAlways:
      return true;
    case RetryPolicy::kNever:
      return false;
    case RetryPolicy::kUnderLoad:
      break;
  }
  // A scan of at most limits::kMaxConnections entries, only for a new connection attempt: cheaper
  // than keeping a counter in step with every state change.
  const auto handshakes = std::count_if(conns_.begin(), conns_.end(), [](const auto& c) {
    return !c->is_client() && c->state() == ConnState::kHandshaking;
  });
  return static_cast<size_t>(handshakes) >= config_.max_handshakes_without_retry;
}

void EndpointCore::send_retry(const ngtcp2_pkt_hd& hd, const PeerAddr& to) {
  // The client's next Initial goes to this new CID; no state is kept for it here, the
  // token carries all the server needs.
  ngtcp2_cid retry_scid{};
  retry_scid.datalen = kScidLengthBytes;
  gnutls_rnd(GNUTLS_RND_NONCE, retry_scid.data, retry_scid.datalen);
  uint8_t buf[256 + NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
  const size_t n = retry_tokens_->write_retry(buf, hd, retry_scid, to, now_ns());
  if (n == 0) return;
  counters_.retries_sent.fetch_add(1);
  send_datagram(buf, n, to);
}

void EndpointCore::send_stateless_close(const ngtcp2_pkt_hd& hd, uint64_t transport_error, std::string_view reason,
                                        const PeerAddr& to) {
  // An Initial carrying CONNECTION_CLOSE, sealed with the Initial keys of the client's DCID,
  // and no connection state kept. It is smaller than the client's padded Initial (at least
  // 1200 bytes), so it cannot amplify a spoofed datagram.
  uint8_t buf[512];
  ASPEN_ASSERT(reason.size() <= 256);
  const ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(
      buf, sizeof(buf), hd.version, &hd.scid, &hd.dcid, transport_error,
      reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  if (n > 0) send_datagram(buf, static_cast<size_t>(n), to);
}

void EndpointCore::send_version_negotiation(const ngtcp2_version_cid& vc, const PeerAddr& to) {
  uint8_t buf[256];
  uint8_t unused = 0;
  gnutls_rnd(GNUTLS_RND_NONCE, &unused, 1);
  const uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
  // Our SCID is the client's DCID and vice versa.
  const ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(buf, sizeof(buf), unused, vc.scid, vc.scidlen, vc.dcid,
                                                              vc.dcidlen, versions, 1);
  if (n > 0) send_datagram(buf, static_cast<size_t>(n), to);
}

void EndpointCore::maybe_send_stateless_reset(const ngtcp2_version_cid& vc, size_t size, const PeerAddr& to) {
  // RFC 9000 §10.3: a reset must be shorter than the packet that provoked it, so two
  // endpoints that both lost state cannot ping-pong resets forever.
  constexpr size_t kMaxRandBytes = 40;
  if (vc.dcidlen != kScidLengthBytes || size <= NGTCP2_STATELESS_RESET_TOKENLEN + NGTCP2_MIN_STATELESS_RESET_RANDLEN + 1) {
    return;
  }
  const size_t rand_len = std::min(kMaxRandBytes, size - 1 - NGTCP2_STATELESS_RESET_TOKENLEN);
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  uint8_t rand[kMaxRandBytes];
  uint8_t buf[kMaxRandBytes + NGTCP2_STATELESS_RESET_TOKENLEN + 1];
  stateless_reset_token(token, vc.dcid, vc.dcidlen);
  gnutls_rnd(GNUTLS_RND_NONCE, rand, rand_len);
  const ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rand, rand_len);
  if (n <= 0) return;
  // Count before sending: a test (or operator) that sees the peer react must see the count.
  counters_.stateless_resets_sent.fetch_add(1);
  send_datagram(buf, static_cast<size_t>(n), to);
}

void EndpointCore::stateless_reset_token(uint8_t* token_out, const uint8_t* cid, size_t cid_len) const {
  ngtcp2_cid c;
  ngtcp2_cid_init(&c, cid, cid_len);
  const int rv = ngtcp2_crypto_generate_stateless_reset_token(token_out, reset_secret_, sizeof(reset_secret_), &c);
  ASPEN_ASSERT(rv == 0);
}

void EndpointCore::send_datagrams(const uint8_t* base, size_t stride, const size_t* sizes, size_t count,
                                  const PeerAddr& to) {
  if (count == 1) return send_datagram(base, sizes[0], to);
  constexpr size_t kMaxBatch = 64;
  ASPEN_ASSERT(count <= kMaxBatch);
  size_t done = 0;
  if (!is_send_blocked()) {
    mmsghdr msgs[kMaxBatch];
    iovec iov[kMaxBatch];
    for (size_t i = 0; i < count; ++i) {
      iov[i] = iovec{const_cast<uint8_t*>(base + i * stride), sizes[i]};
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr_storage*>(&to.addr);
      msgs[i].msg_hdr.msg_namelen = to.len;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int error_reports = 0;
    while (done < count) {
      const int n = sends_to_fail_for_testing_ > 0
                        ? -1
                        : ::sendmmsg(socket_.native_handle(), msgs + done, static_cast<unsigned>(count - done), 0);
      if (n < 0) {
        const int err = errno;
        if (err == EINTR && sends_to_fail_for_testing_ == 0) continue;
        if (is_icmp_reported_errno(err) && error_reports++ < 4) {
          // The socket reported an earlier ICMP error, not one about this batch: send again.
          schedule_error_drain();
          continue;
        }
        if (is_socket_full(err)) break;  // the rest waits below
        // Anything else (unreachable, ...) drops the batch; QUIC loss recovery resends it.
        ASPEN_LOG_DEBUG("transport: sendmmsg: {}", std::strerror(err));
        return;
      }
      for (size_t i = done; i < done + static_cast<size_t>(n); ++i) counters_.bytes_out.fetch_add(sizes[i]);
      done += static_cast<size_t>(n);
    }
  }
  for (size_t i = done; i < count; ++i) queue_unsent(base + i * stride, sizes[i], to);
}

void EndpointCore::send_datagram(const uint8_t* data, size_t size, const PeerAddr& to) {
  if (!is_send_blocked()) {
    ssize_t n = sends_to_fail_for_testing_ > 0
                    ? -1
                    : ::sendto(socket_.native_handle(), data, size, 0, reinterpret_cast<const sockaddr*>(&to.addr), to.len);
    if (n < 0 && sends_to_fail_for_testing_ == 0 && is_icmp_reported_errno(errno)) {
      // The socket reported an earlier ICMP error, not one about this datagram: send again.
      schedule_error_drain();
      n = ::sendto(socket_.native_handle(), data, size, 0, reinterpret_cast<const sockaddr*>(&to.addr), to.len);
    }
    if (n >= 0) {
      counters_.bytes_out.fetch_add(size);
      return;
    }
    const int err = errno;
    if (!is_socket_full(err)) {
      ASPEN_LOG_DEBUG("transport: sendto: {}", std::strerror(err));
      return;  // dropped; QUIC loss recovery resends what mattered
    }
  }
  queue_unsent(data, size, to);
}

bool EndpointCore::is_socket_full(int err) {
  if (sends_to_fail_for_testing_ > 0) {
    --sends_to_fail_for_testing_;
    return true;
  }
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}

void EndpointCore::queue_unsent(const uint8_t* data, size_t size, const PeerAddr& to) {
  // Enough for a few full send batches. Past it, datagrams are dropped as a full socket
  // used to drop them: loss recovery resends their contents, congestion control slows down.
  constexpr size_t kMaxPendingSendBytes = size_t{2} << 20;
  if (pending_send_bytes_ + size > kMaxPendingSendBytes) {
    counters_.datagrams_dropped.fetch_add(1);
    return;
  }
  if (pending_sends_.empty()) counters_.send_blocked.fetch_add(1);
  pending_sends_.push_back(PendingDatagram{std::vector<uint8_t>(data, data + size), to});
  pending_send_bytes_ += size;
  wait_writable();
}

void EndpointCore::wait_writable() {
  if (is_waiting_writable_ || is_closed()) return;
  is_waiting_writable_ = true;
  socket_.async_wait(asio::ip::udp::socket::wait_write, [this](const asio::error_code& ec) {
    is_waiting_writable_ = false;
    if (!ec && !is_closed()) on_writable();
  });
}

void EndpointCore::on_writable() {
  while (!pending_sends_.empty()) {
    PendingDatagram& d = pending_sends_.front();
    const ssize_t n = sends_to_fail_for_testing_ > 0
                          ? -1
                          : ::sendto(socket_.native_handle(), d.bytes.data(), d.bytes.size(), 0,
                                     reinterpret_cast<const sockaddr*>(&d.to.addr), d.to.len);
    if (n < 0) {
      const int err = errno;
      if (is_socket_full(err)) {
        wait_writable();  // still full: keep the datagram and its place
        return;
      }
      ASPEN_LOG_DEBUG("transport: sendto: {}", std::strerror(err));
    } else {
      counters_.bytes_out.fetch_add(d.bytes.size());
    }
    pending_send_bytes_ -= d.bytes.size();
    pending_sends_.pop_front();
  }
  auto waiters = std::exchange(send_waiters_, {});
  for (auto& c : waiters) schedule_flush(std::move(c));
}

void EndpointCore::wait_for_send_room(std::shared_ptr<QuicConnection> conn) {
  if (std::find(send_waiters_.begin(), send_waiters_.end(), conn) == send_waiters_.end()) {
    send_waiters_.push_back(std::move(conn));
  }
}

void EndpointCore::route_cid(const std::string& cid, const std::shared_ptr<QuicConnection>& conn) {
  routes_[cid] = conn;
}

void EndpointCore::unroute_cid(const std::string& cid) { routes_.erase(cid); }

void EndpointCore::remove_connection(const std::shared_ptr<QuicConnection>& conn) {
  if (conns_.erase(conn) == 0) return;
  if (conn->is_admitted()) {
    slots_.release(conn->peer_class(), conn->slot_address());
    (conn->peer_class() == PeerClass::kMember ? counters_.member_connections_open : counters_.client_connections_open)
        .fetch_sub(1);
  }
}

struct EndpointCore::ConnectAttempts {
  PublicKey peer;
  std::vector<SocketAddr> addrs;
  std::string alpn;
  QuicConnection::Clock::time_point deadline;
  ConnectDone done;
  size_t next = 0;
  Error last;
};

void EndpointCore::connect_any(const PublicKey& peer, std::vector<SocketAddr> addrs, const std::string& alpn,
                               QuicConnection::Clock::time_point deadline, ConnectDone done) {
  connect_next(std::make_shared<ConnectAttempts>(ConnectAttempts{
      peer, std::move(addrs), alpn, deadline, std::move(done), 0,
      Error(ErrorCode::kTimeout, fmt::format("no handshake with {} before the deadline", peer.short_string()))}));
}

void EndpointCore::connect_next(std::shared_ptr<ConnectAttempts> state) {
  const auto now = QuicConnection::Clock::now();
  if (state->next >= state->addrs.size() || now >= state->deadline || is_closed()) {
    return state->done(std::unexpected(state->last));
  }
  // An equal share of the time left for each remaining address: one black hole cannot eat
  // the whole budget.
  const size_t remaining = state->addrs.size() - state->next;
  const auto attempt_deadline = now + (state->deadline - now) / static_cast<int64_t>(remaining);
  const SocketAddr addr = state->addrs[state->next++];
  start_connect(state->peer, addr, state->alpn, attempt_deadline,
                [this, state](Result<std::shared_ptr<QuicConnection>> r) { on_connect_attempt(state, r); });
}

void EndpointCore::on_connect_attempt(const std::shared_ptr<ConnectAttempts>& state,
                                      const Result<std::shared_ptr<QuicConnection>>& result) {
  if (result.has_value()) return state->done(result);
  // Keep the most telling error: a refusal says more than a later timeout.
  if (state->last.code() == ErrorCode::kTimeout || result.error().code() != ErrorCode::kTimeout) {
    state->last = result.error();
  }
  connect_next(state);
}

void EndpointCore::start_connect(const PublicKey& peer, const SocketAddr& addr, const std::string& alpn,
                                 QuicConnection::Clock::time_point deadline, ConnectDone done) {
  if (is_closed()) return done(make_error(ErrorCode::kUnavailable, "endpoint closed"));
  const auto outbound =
      static_cast<size_t>(std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return c->is_client(); }));
  if (outbound >= config_.max_outbound_connections || conns_.size() >= limits::kMaxConnections) {
    return done(make_error(ErrorCode::kUnavailable,
                           fmt::format("too many connections: {} dialled (limit {}), {} in all", outbound,
                                       config_.max_outbound_connections, conns_.size())));
  }
  auto remote = to_peer_addr(addr);
  if (!remote) return done(std::unexpected(remote.error()));
  if (remote->addr.ss_family != local_sockaddr_.ss_family) {
    return done(make_error(ErrorCode::kInvalidArgument, fmt::format("{}: wrong address family", addr.to_string())));
  }
  auto conn = std::make_shared<QuicConnection>(*this);
  auto timer = std::make_shared<asio::steady_timer>(io_, deadline);
  std::weak_ptr<QuicConnection> weak = conn;
  conns_.insert(conn);
  auto st = conn->init_client(peer, alpn, *remote, [done, timer, weak](Status result) {
    timer->cancel();
    auto c = weak.lock();
    if (result && c) return done(c);
    done(std::unexpected(result ? Error(ErrorCode::kUnavailable, "connection lost") : result.error()));
  });
  if (!st) {
    conn->abort(st.error());
    return done(std::unexpected(st.error()));
  }
  timer->async_wait([weak, addr](const asio::error_code& ec) {
    if (ec) return;
    if (auto c = weak.lock()) {
      c->abort(Error(ErrorCode::kTimeout, fmt::format("no handshake with {} before the deadline", addr.to_string())));
    }
  });
  conn->flush();
}

void EndpointCore::on_handshake_done(const std::shared_ptr<QuicConnection>& conn) {
  std::shared_ptr<ProtocolHandler> handler;
  {
    std::lock_guard lock(handlers_mu_);
    auto it = handlers_.find(conn->alpn());
    if (it != handlers_.end()) handler = it->second;
  }
  if (handler == nullptr) {  // unregistered between ClientHello and now; TLS refused all others
    conn->close(kAppErrorNoHandler, "no handler");
    return;
  }
  spawn_handler(std::move(handler), conn);
}

void EndpointCore::spawn_handler(std::shared_ptr<ProtocolHandler> handler, std::shared_ptr<QuicConnection> conn) {
  std::lock_guard lock(handler_threads_mu_);
  // Reap handlers that have returned, so a long-lived node does not accumulate threads.
  std::erase_if(handler_threads_, [](HandlerThread& t) {
    if (!t.is_done->load()) return false;
    t.thread.join();
    return true;
  });
  auto is_done = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([core = shared_from_this(), handler = std::move(handler), conn = std::move(conn), is_done] {
    handler->on_connection(Connection(core, conn));
    is_done->store(true);
  });
  handler_threads_.push_back(HandlerThread{std::move(thread), std::move(is_done)});
}

}  // namespace aspen::transport::internal
