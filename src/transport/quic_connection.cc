// Connection setup, packet I/O, timers and closing for one QUIC connection. The ngtcp2
// callbacks and stream operations are in quic_streams.cc.
#include <atomic>
#include "transport/internal/quic_connection.h"

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/log.h"
#include "transport/internal/endpoint_core.h"
#include "transport/internal/stream_state.h"

namespace aspen::transport::internal {

const ngtcp2_callbacks& connection_callbacks(bool is_client);  // quic_streams.cc

namespace {

constexpr size_t kClientDcidLengthBytes = 18;
constexpr size_t kMaxVec = 16;
constexpr size_t kSendBatch = 8;
constexpr uint64_t kPacingOverheadNs = NGTCP2_MILLISECONDS;  // NGTCP2_PKT_PACING_OVERHEAD in 0.12.1
// Loopback has a 64 KiB MTU: large datagrams cut the per-packet CPU cost (syscalls, AEAD
// calls) several-fold. Elsewhere the path MTU is unknown, so ngtcp2's PMTUD default stays.
constexpr size_t kLoopbackUdpPayloadBytes = 65000;
constexpr uint64_t kStreamWindowBytes = uint64_t{4} << 20;
constexpr uint64_t kConnectionWindowBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxStreamWindowBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxConnectionWindowBytes = uint64_t{32} << 20;

bool is_loopback(const PeerAddr& a) {
  if (a.addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a.addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (a.addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

ngtcp2_cid random_cid(size_t len) {
  ngtcp2_cid cid{};
  cid.datalen = len;
  gnutls_rnd(GNUTLS_RND_NONCE, cid.data, len);
  return cid;
}

std::string cid_key(const uint8_t* data, size_t len) { return std::string(reinterpret_cast<const char*>(data), len); }

ngtcp2_transport_params default_params(const EndpointConfig& config) {
  ngtcp2_transport_params params;
  ngtcp2_transport_params_default(&params);
  // All of these are 0 by default: nothing could be sent before they are set.
  params.initial_max_stream_data_bidi_local = kStreamWindowBytes;
  params.initial_max_stream_data_bidi_remote = kStreamWindowBytes;
  params.initial_max_stream_data_uni = 0;
  params.initial_max_data = kConnectionWindowBytes;
  params.initial_max_streams_bidi = limits::kMaxStreamsPerConnection;
  params.initial_max_streams_uni = 0;
  params.max_idle_timeout = uint64_t{config.idle_timeout_ms} * NGTCP2_MILLISECONDS;
  params.active_connection_id_limit = 4;
  params.disable_active_migration = 1;
  // ngtcp2 0.12 puts an ACK into a packet only once the ACK delay, min(max_ack_delay,
  // smoothed_rtt / 8), has passed: a reply written microseconds after its request goes out
  // without the ACK, and a timer then sends a separate ACK-only datagram (a wakeup, a
  // timerfd_settime and a sendto per message on each side). We write once per batch of
  // received datagrams anyway, so acknowledging at once costs at most one ACK per batch.
  // The peer's PTO then lacks the 25 ms ACK-delay allowance; it keeps ngtcp2's 1 ms
  // timer granularity.
  params.max_ack_delay = 0;
  return params;
}

}  // namespace

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

namespace {
std::atomic<uint64_t> g_next_connection_serial{1};
}  // namespace

QuicConnection::QuicConnection(EndpointCore& core)
    : core_(core),
      timer_(std::make_unique<asio::steady_timer>(core.io())),
      serial_(g_next_connection_serial.fetch_add(1, std::memory_order_relaxed)) {}

QuicConnection::~QuicConnection() {
  if (conn_ != nullptr) ngtcp2_conn_del(conn_);
}

Status QuicConnection::init_common(bool is_client, const ngtcp2_cid& dcid, const ngtcp2_cid& scid, uint32_t version,
                                   const ngtcp2_transport_params& params, const PeerAddr& remote,
                                   const ngtcp2_vec* validated_token) {
  is_client_ = is_client;
  remote_ = remote;
  path_.local.addr = const_cast<sockaddr*>(reinterpret_cast<const sockaddr*>(&core_.local_sockaddr()));
  path_.local.addrlen = core_.local_sockaddr_len();
  path_.remote.addr = reinterpret_cast<sockaddr*>(&remote_.addr);
  path_.remote.addrlen = remote_.len;

  ngtcp2_settings settings;
  ngtcp2_settings_default(&settings);
  settings.initial_ts = now_ns();
  settings.max_window = kMaxConnectionWindowBytes;
  settings.max_stream_window = kMaxStreamWindowBytes;
  settings.handshake_timeout = uint64_t{limits::kConnectTimeoutMs} * NGTCP2_MILLISECONDS;
  // ngtcp2 copies it; a server given the token it verified lifts the 3x amplification limit.
  if (validated_token != nullptr) settings.token = *validated_token;
  if (is_loopback(remote_)) {
    // The default 333 ms initial RTT makes the first PTOs and the pacer far too slow for a
    // path whose RTT is tens of microseconds.
    settings.initial_rtt = NGTCP2_MILLISECONDS;
    settings.max_tx_udp_payload_size = kLoopbackUdpPayloadBytes;
    settings.no_tx_udp_payload_size_shaping = 1;
    settings.no_pmtud = 1;
  } else {
    settings.initial_rtt = 50 * NGTCP2_MILLISECONDS;
  }
  const ngtcp2_callbacks& callbacks = connection_callbacks(is_client);
  const int rv = is_client ? ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path_, version, &callbacks, &settings,
                                                    &params, nullptr, this)
                           : ngtcp2_conn_server_new(&conn_, &dcid, &scid, &path_, version, &callbacks, &settings,
                                                    &params, nullptr, this);
  if (rv != 0) return make_error(ErrorCode::kInternal, fmt::format("ngtcp2 conn_new: {}", ngtcp2_strerror(rv)));
  if (core_.config().keep_alive_ms > 0) {
    ngtcp2_conn_set_keep_alive_timeout(conn_, uint64_t{core_.config().keep_alive_ms} * NGTCP2_MILLISECONDS);
  }
  return {};
}

Status QuicConnection::init_client(const PublicKey& peer, const std::string& alpn, const PeerAddr& remote,
                                   ConnectCallback on_connected) {
  const ngtcp2_cid dcid = random_cid(kClientDcidLengthBytes);
  const ngtcp2_cid scid = random_cid(kScidLengthBytes);
  auto st = init_common(true, dcid, scid, NGTCP2_PROTO_VER_V1, default_params(core_.config()), remote);
  if (st) st = tls_.init_client(core_.tls(), conn_, peer, alpn);
  if (!st) return st;
  peer_key_ = peer;
  alpn_ = alpn;
  peer_class_ = PeerClass::kMember;  // we chose to dial it
  on_connected_ = std::move(on_connected);
  cids_.push_back(cid_key(scid.data, scid.datalen));
  core_.route_cid(cids_.back(), shared_from_this());
  return {};
}

Status QuicConnection::init_server(const ngtcp2_pkt_hd& hd, const ngtcp2_cid* odcid, const PeerAddr& remote,
                                   std::vector<std::string> alpns) {
  const ngtcp2_cid scid = random_cid(kScidLengthBytes);
  ngtcp2_transport_params params = default_params(core_.config());
  params.original_dcid = odcid != nullptr ? *odcid : hd.dcid;  // 0.12 has no original_dcid_present flag
  if (odcid != nullptr) {
    // RFC 9000 §7.3: the client checks that we name the Retry it answered (hd.dcid is the
    // Retry's SCID), so an attacker cannot inject a Retry of its own.
    params.retry_scid = hd.dcid;
    params.retry_scid_present = 1;
  }
  params.stateless_reset_token_present = 1;
  core_.stateless_reset_token(params.stateless_reset_token, scid.data, scid.datalen);
  // The client's SCID becomes our DCID.
  auto st = init_common(false, hd.scid, scid, hd.version, params, remote, odcid != nullptr ? &hd.token : nullptr);
  if (st) st = tls_.init_server(core_.tls(), conn_, std::move(alpns));
  if (!st) return st;
  cids_.push_back(cid_key(hd.dcid.data, hd.dcid.datalen));
  cids_.push_back(cid_key(scid.data, scid.datalen));
  for (const auto& cid : cids_) core_.route_cid(cid, shared_from_this());
  return {};
}

void QuicConnection::on_datagram(const uint8_t* data, size_t size, const PeerAddr& from) {
  if (state_ == ConnState::kClosing) {
    // RFC 9000 §10.2.1: answer anything the peer still sends with our CONNECTION_CLOSE.
    if (!close_packet_.empty()) {
      core_.send_datagram(reinterpret_cast<const uint8_t*>(close_packet_.data()), close_packet_.size(), remote_);
    }
    return;
  }
  if (state_ != ConnState::kHandshaking && state_ != ConnState::kOpen) return;
  ngtcp2_path path = path_;
  path.remote.addr = const_cast<sockaddr*>(reinterpret_cast<const sockaddr*>(&from.addr));
  path.remote.addrlen = from.len;
  ngtcp2_pkt_info pi{};
  const int rv = ngtcp2_conn_read_pkt(conn_, &path, &pi, data, size, now_ns());
  if (rv != 0) {
    handle_read_error(rv);
    return;
  }
  process_deferred();
}

Error QuicConnection::close_error_from_peer() const {
  if (was_stateless_reset_) return Error(ErrorCode::kUnavailable, "connection reset by peer (stateless reset)");
  ngtcp2_connection_close_error ccerr;
  ngtcp2_conn_get_connection_close_error(conn_, &ccerr);
  const std::string reason(reinterpret_cast<const char*>(ccerr.reason), ccerr.reasonlen);
  if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT) {
    // TLS alerts travel as transport error 0x100 + alert (RFC 9001 §4.8).
    switch (ccerr.error_code) {
      case 0x100 + 120:
        return Error(ErrorCode::kUnavailable, fmt::format("peer does not serve protocol '{}'", alpn_));
      case 0x100 + 42:
      case 0x100 + 116:
        return Error(ErrorCode::kUnauthorized, "peer refused our identity");
      case NGTCP2_INVALID_TOKEN:
        return Error(ErrorCode::kUnavailable, "peer refused our address validation (Retry) token");
      case NGTCP2_CONNECTION_REFUSED:
        if (reason == kConnectionLimitReason) {
          return Error(ErrorCode::kUnavailable, "peer refused the connection: it is at its connection limit");
        }
        return Error(ErrorCode::kUnavailable, fmt::format("peer refused the connection: {}", reason));
      case 0:
        return Error(ErrorCode::kUnavailable, "connection closed by peer");
      default:
        return Error(ErrorCode::kUnavailable,
                     fmt::format("connection closed by peer: transport error 0x{:x} {}", ccerr.error_code, reason));
    }
  }
  if (ccerr.error_code == kAppErrorShutdown) return Error(ErrorCode::kUnavailable, "peer is shutting down");
  if (ccerr.error_code == kAppErrorNoHandler) {
    return Error(ErrorCode::kUnavailable, fmt::format("peer has no handler for protocol '{}'", alpn_));
  }
  return Error(ErrorCode::kUnavailable, fmt::format("connection closed by peer (code {}) {}", ccerr.error_code, reason));
}

void QuicConnection::handle_read_error(int rv) {
  if (state_ == ConnState::kHandshaking) core_.counters().handshake_failures.fetch_add(1);
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default(&ccerr);
  switch (rv) {
    case NGTCP2_ERR_DRAINING:
      enter_closing_period(ConnState::kDraining, close_error_from_peer());
      return;
    case NGTCP2_ERR_DROP_CONN:
      abort(Error(ErrorCode::kUnavailable, "connection dropped"));
      return;
    case NGTCP2_ERR_CRYPTO: {
      const uint8_t alert = ngtcp2_conn_get_tls_alert(conn_);
      ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, nullptr, 0);
      send_close_packet(ccerr);
      Error error = !tls_.refusal().empty() ? Error(ErrorCode::kUnauthorized, tls_.refusal())
                    : alert == 120      ? Error(ErrorCode::kUnavailable, "no protocol (ALPN) in common with the peer")
                                        : Error(ErrorCode::kUnauthorized, fmt::format("TLS handshake failed (alert {})", alert));
      if (!is_client_) ASPEN_LOG_INFO("transport: refused inbound connection: {}", error.to_string());
      enter_closing_period(ConnState::kClosing, std::move(error));
      return;
    }
    default:
      ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, nullptr, 0);
      send_close_packet(ccerr);
      enter_closing_period(ConnState::kClosing,
                           Error(ErrorCode::kUnavailable, fmt::format("protocol error: {}", ngtcp2_strerror(rv))));
  }
}

void QuicConnection::flush() {
  // Application callbacks first: what they send goes out in the packets written below,
  // together with the acknowledgements of what they were answering.
  is_flushing_ = true;
  bool is_pacing_checked = false;
  while (true) {
    dispatch_events();
    if (state_ != ConnState::kHandshaking && state_ != ConnState::kOpen) break;
    if (core_.is_send_blocked()) {
      // The socket is full: write nothing now, and leave the timer alone (a due pacing
      // deadline would spin). The endpoint flushes us when its queue is out, and that
      // flush re-arms the timer.
      core_.wait_for_send_room(shared_from_this());
      break;
    }
    if (!write_packets()) break;
    if (!events_.empty()) continue;
    // ngtcp2 0.12's expiry includes the pacing deadline, which after a small write is a
    // few microseconds away, and it lets a packet go anyway when that deadline is less
    // than 1 ms ahead (NGTCP2_PKT_PACING_OVERHEAD). With nothing left to send, such a
    // timer would only wake the loop to clear it (a timerfd_settime and a wakeup per
    // message), so clear it now. Anything else due by then is handled as the timer would.
    const uint64_t now = now_ns();
    if (!is_pacing_checked && ngtcp2_conn_get_expiry(conn_) <= now + kPacingOverheadNs &&
        !has_unsent_stream_data()) {
      is_pacing_checked = true;
      if (!handle_expiry(now)) break;
      continue;  // write what the expiry asked for (an ACK, a probe)
    }
    arm_timer();
    break;
  }
  is_flushing_ = false;
  if (!events_.empty()) core_.schedule_flush(shared_from_this());
}

bool QuicConnection::write_packets() {
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  const uint64_t ts = now_ns();
  const size_t max_packet = ngtcp2_conn_get_max_tx_udp_payload_size(conn_);
  // The send quantum (64 KiB at least) would allow a single 65000-byte loopback datagram per
  // write, so every packet would wait on a pacing timer (one timerfd_settime each: 18% of
  // CPU in bulk transfers). A small burst floor keeps that cost per burst instead; the
  // congestion window still bounds what is in flight.
  constexpr size_t kMinBurstDatagrams = 8;
  const size_t max_datagrams = std::max(kMinBurstDatagrams, ngtcp2_conn_get_send_quantum(conn_) / max_packet);
  // Datagrams are collected and handed to the kernel together (one sendmmsg per batch).
  constexpr size_t kSlotBytes = kLoopbackUdpPayloadBytes + 512;
  static thread_local std::vector<uint8_t> batch(kSendBatch * kSlotBytes);
  ASPEN_ASSERT(max_packet <= kSlotBytes);
  size_t sizes[kSendBatch];
  size_t batched = 0;
  auto send_batch = [&] {
    if (batched > 0) core_.send_datagrams(batch.data(), kSlotBytes, sizes, batched, remote_);
    batched = 0;
  };
  size_t datagrams = 0;
  while (datagrams < max_datagrams) {
    uint8_t* const buf = batch.data() + batched * kSlotBytes;
    StreamState* s = nullptr;
    while (!writable_.empty()) {
      s = find_stream(writable_.front());
      if (s != nullptr && !s->is_write_blocked && s->has_pending()) break;
      if (s != nullptr) s->is_in_writable = false;
      writable_.pop_front();
      s = nullptr;
    }
    ngtcp2_vec vec[kMaxVec];
    size_t vec_bytes = 0;
    const size_t nvec = s != nullptr ? s->fill(vec, kMaxVec, &vec_bytes) : 0;
    const bool is_fin = s != nullptr && s->is_fin_requested && s->sent + vec_bytes == s->queued_end;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    if (is_fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    ngtcp2_ssize consumed = -1;
    const ngtcp2_ssize n = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, buf, max_packet, &consumed, flags,
                                                     s != nullptr ? s->id() : -1, vec, nvec, ts);
    if (s != nullptr && consumed >= 0) {
      s->advance(static_cast<size_t>(consumed));
      if (is_fin && static_cast<size_t>(consumed) == vec_bytes) s->is_fin_sent = true;
    }
    if (n == NGTCP2_ERR_WRITE_MORE) continue;
    if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
      s->is_write_blocked = true;
      continue;
    }
    if (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND) {
      fail_stream(*s, Error(ErrorCode::kUnavailable, "stream closed"), true);
      s->is_fin_requested = false;
      s->sent = s->queued_end;  // nothing more can go out on it
      continue;
    }
    if (n < 0) {
      send_batch();
      ngtcp2_connection_close_error ccerr;
      ngtcp2_connection_close_error_default(&ccerr);
      ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, static_cast<int>(n), nullptr, 0);
      send_close_packet(ccerr);
      enter_closing_period(ConnState::kClosing, Error(ErrorCode::kInternal,
                                                      fmt::format("write failed: {}", ngtcp2_strerror(static_cast<int>(n)))));
      return false;
    }
    if (n == 0) break;  // congestion or pacing limited, or nothing to send
    sizes[batched++] = static_cast<size_t>(n);
    ++datagrams;
    if (batched == kSendBatch) {
      send_batch();
      if (core_.is_send_blocked()) break;  // the socket is full: more would only queue
    }
    // Round robin between streams with data, one packet each.
    if (s != nullptr && writable_.size() > 1) {
      writable_.push_back(writable_.front());
      writable_.pop_front();
    }
  }
  send_batch();
  ngtcp2_conn_update_pkt_tx_time(conn_, ts);
  return true;
}

void QuicConnection::arm_timer() {
  if (state_ == ConnState::kClosed) return;
  const bool is_closing = state_ == ConnState::kClosing || state_ == ConnState::kDraining;
  const uint64_t expiry = is_closing ? close_deadline_ns_ : ngtcp2_conn_get_expiry(conn_);
  // Re-arming costs a timerfd syscall; only move the timer earlier. A timer that fires
  // before the (later) real expiry just re-arms.
  if (expiry == UINT64_MAX || expiry >= armed_expiry_ns_) return;
  armed_expiry_ns_ = expiry;
  const uint64_t generation = ++timer_generation_;
  timer_->expires_at(Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(expiry))));
  timer_->async_wait([weak = weak_from_this(), generation](const asio::error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (self && self->timer_generation_ == generation) self->on_timer();
  });
}

void QuicConnection::on_timer() {
  auto self = shared_from_this();
  armed_expiry_ns_ = UINT64_MAX;
  const uint64_t now = now_ns();
  if (state_ == ConnState::kClosing || state_ == ConnState::kDraining) {
    if (now >= close_deadline_ns_) {
      release();
    } else {
      arm_timer();
    }
    return;
  }
  if (state_ == ConnState::kClosed) return;
  if (!handle_expiry(now)) return;
  flush();
}

bool QuicConnection::handle_expiry(uint64_t now) {
  const int rv = ngtcp2_conn_handle_expiry(conn_, now);
  if (rv == NGTCP2_ERR_IDLE_CLOSE || rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    // The peer is gone: there is nobody to say goodbye to (RFC 9000 §10.1).
    if (state_ == ConnState::kHandshaking) core_.counters().handshake_failures.fetch_add(1);
    abort(Error(ErrorCode::kTimeout, rv == NGTCP2_ERR_IDLE_CLOSE ? "connection idle timeout" : "handshake timeout"));
    return false;
  }
  if (rv != 0) {
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_default(&ccerr);
    ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, nullptr, 0);
    send_close_packet(ccerr);
    enter_closing_period(ConnState::kClosing,
                         Error(ErrorCode::kUnavailable, fmt::format("connection failed: {}", ngtcp2_strerror(rv))));
    return false;
  }
  process_deferred();
  return true;
}

bool QuicConnection::has_unsent_stream_data() const {
  for (const int64_t id : writable_) {
    auto it = streams_.find(id);
    if (it != streams_.end() && !it->second->is_write_blocked && it->second->has_pending()) return true;
  }
  return false;
}

void QuicConnection::send_close_packet(const ngtcp2_connection_close_error& ccerr) {
  if (conn_ == nullptr || ngtcp2_conn_is_in_closing_period(conn_) || ngtcp2_conn_is_in_draining_period(conn_)) return;
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  std::string packet(ngtcp2_conn_get_max_tx_udp_payload_size(conn_), '\0');
  const ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, reinterpret_cast<uint8_t*>(packet.data()),
                                                            packet.size(), &ccerr, now_ns());
  if (n <= 0) return;
  packet.resize(static_cast<size_t>(n));
  close_packet_ = std::move(packet);
  core_.send_datagram(reinterpret_cast<const uint8_t*>(close_packet_.data()), close_packet_.size(), remote_);
}

void QuicConnection::close(uint64_t app_error, std::string_view reason) {
  if (state_ != ConnState::kHandshaking && state_ != ConnState::kOpen) return;
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default(&ccerr);
  ngtcp2_connection_close_error_set_application_error(
      &ccerr, app_error, reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  send_close_packet(ccerr);
  enter_closing_period(ConnState::kClosing, Error(ErrorCode::kUnavailable, "connection closed"));
}

void QuicConnection::enter_closing_period(ConnState state, Error error) {
  ASPEN_ASSERT(state == ConnState::kClosing || state == ConnState::kDraining);
  if (state_ == ConnState::kClosed) return;
  terminate(std::move(error));
  state_ = state;
  // RFC 9000 §10.2: linger three PTOs so late packets meet a CONNECTION_CLOSE (closing) or
  // are absorbed (draining) instead of provoking stateless resets.
  close_deadline_ns_ = now_ns() + 3 * ngtcp2_conn_get_pto(conn_);
  armed_expiry_ns_ = UINT64_MAX;
  ++timer_generation_;
  arm_timer();
}

void QuicConnection::set_keep_alive_ms(uint32_t ms) {
  if (conn_ == nullptr || state_ == ConnState::kClosed) return;
  const uint32_t effective_ms = ms != 0 ? ms : core_.config().keep_alive_ms;
  ngtcp2_conn_set_keep_alive_timeout(conn_, uint64_t{effective_ms} * NGTCP2_MILLISECONDS);  // 0: none
  request_flush();  // re-arms the timer for the new deadline
}

void QuicConnection::abort(Error error) {
  if (state_ == ConnState::kClosed) return;
  terminate(std::move(error));
  release();
}

// Fails every waiter: the connect callback, pending stream opens, stream readers/writers
// and accept_bi callers. Idempotent: the first error is the one reported.
void QuicConnection::terminate(Error error) {
  {
    std::lock_guard lock(shared_.mu);
    if (shared_.error) return;
    shared_.error = error;
  }
  shared_.cv.notify_all();
  if (state_ == ConnState::kOpen) core_.counters().connections_open.fetch_sub(1);
  if (auto cb = std::exchange(on_connected_, nullptr)) cb(std::unexpected(error));
  for (auto& p : std::exchange(pending_opens_, {})) {
    p->timer->cancel();
    p->done(std::unexpected(error));
  }
  for (auto& [id, s] : streams_) {
    release_partial(*s);
    fail_stream(*s, error, true);
    release_send_charge(*s);
  }
  core_.counters().streams_open.fetch_sub(streams_.size());
  streams_.clear();
  writable_.clear();
  if (is_accept_reported_) emit(LoopEvent(LoopEvent::Kind::kConnectionClosed, nullptr, nullptr, std::string(), error));
}

void QuicConnection::release() {
  auto self = shared_from_this();
  state_ = ConnState::kClosed;
  ++timer_generation_;
  timer_.reset();
  for (const auto& cid : cids_) core_.unroute_cid(cid);
  cids_.clear();
  core_.remove_connection(self);
  if (conn_ != nullptr) {
    ngtcp2_conn_del(conn_);
    conn_ = nullptr;
  }
}

std::optional<PeerRtt> QuicConnection::rtt() const {
  if (conn_ == nullptr || state_ != ConnState::kOpen) return std::nullopt;
  ngtcp2_conn_stat st;
  ngtcp2_conn_get_conn_stat(conn_, &st);
  return PeerRtt{peer_key_, alpn_, st.smoothed_rtt / 1000, st.min_rtt / 1000};
}

}  // namespace aspen::transport::internal
