// ngtcp2 callbacks and stream operations for QuicConnection. Callbacks only record state
// and wake waiters; anything that would write packets is deferred until ngtcp2 returns.
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/log.h"
#include "transport/internal/endpoint_core.h"
#include "transport/internal/quic_connection.h"
#include "transport/internal/stream_state.h"

namespace aspen::transport::internal {

struct Callbacks {
  static QuicConnection* self(void* user_data) { return static_cast<QuicConnection*>(user_data); }

  static void rand(uint8_t* dest, size_t len, const ngtcp2_rand_ctx*) { gnutls_rnd(GNUTLS_RND_RANDOM, dest, len); }

  static int get_new_connection_id(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void* user_data) {
    auto* c = self(user_data);
    cid->datalen = cidlen;
    gnutls_rnd(GNUTLS_RND_NONCE, cid->data, cidlen);
    c->core_.stateless_reset_token(token, cid->data, cidlen);
    c->cids_.emplace_back(reinterpret_cast<const char*>(cid->data), cidlen);
    c->core_.route_cid(c->cids_.back(), c->shared_from_this());
    return 0;
  }

  static int remove_connection_id(ngtcp2_conn*, const ngtcp2_cid* cid, void* user_data) {
    auto* c = self(user_data);
    const std::string key(reinterpret_cast<const char*>(cid->data), cid->datalen);
    c->core_.unroute_cid(key);
    std::erase(c->cids_, key);
    return 0;
  }

  static int handshake_completed(ngtcp2_conn*, void* user_data) {
    auto* c = self(user_data);
    c->alpn_ = c->tls_.selected_alpn();
    if (c->tls_.peer_key()) c->peer_key_ = *c->tls_.peer_key();
    c->channel_binding_ = c->tls_.export_channel_binding();
    // A server has verified the client's certificate by now. A client must wait for
    // HANDSHAKE_DONE: the server checks our certificate after we consider the handshake
    // complete, and may still refuse it.
    if (!c->is_client_) c->become_open();
    return 0;
  }

  static int handshake_confirmed(ngtcp2_conn*, void* user_data) {
    auto* c = self(user_data);
    if (c->is_client_) c->become_open();
    return 0;
  }

  static int recv_stateless_reset(ngtcp2_conn*, const ngtcp2_pkt_stateless_reset*, void* user_data) {
    self(user_data)->was_stateless_reset_ = true;
    return 0;
  }

  static int stream_open(ngtcp2_conn*, int64_t stream_id, void* user_data) {
    auto* c = self(user_data);
    if (!ngtcp2_is_bidi_stream(stream_id)) return 0;
    auto& s = c->add_stream(stream_id);
    if (c->loop_handler_ != nullptr) {
      // A copy per stream: on_stream may give this stream callbacks of its own, and events
      // already queued for it must see them.
      s.callbacks = std::make_shared<StreamCallbacks>(*c->handler_callbacks_);
      c->emit(QuicConnection::LoopEvent(QuicConnection::LoopEvent::Kind::kStreamOpened, s.shared));
      return 0;
    }
    {
      std::lock_guard lock(c->shared_.mu);
      c->shared_.accept_queue.push_back(s.shared);
    }
    c->shared_.cv.notify_all();
    return 0;
  }

  static int recv_stream_data(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id, uint64_t, const uint8_t* data,
                              size_t len, void* user_data, void*) {
    auto* c = self(user_data);
    auto* s = c->find_stream(stream_id);
    if (s == nullptr || s->decoder.is_failed()) {
      ngtcp2_conn_extend_max_offset(conn, len);
      return 0;
    }
    std::vector<std::string> frames;
    const auto status = s->decoder.feed(std::string_view(reinterpret_cast<const char*>(data), len), frames);
    if (status == FrameDecodeStatus::kFrameTooLarge) {
      c->release_partial(*s);
      ngtcp2_conn_extend_max_offset(conn, len);
      c->fail_stream(*s, Error(ErrorCode::kMessageTooLarge,
                               fmt::format("peer sent a {}-byte frame; the limit is {} bytes",
                                           s->decoder.rejected_size_bytes(), limits::kMaxFrameSizeBytes)),
                     true);
      c->deferred_resets_.emplace_back(stream_id, kAppErrorFrameTooLarge);
      return 0;
    }
    // Complete frames go to the reader even when the partial one that follows is refused.
    c->deliver(*s, frames, len);
    if (!c->account_partial(*s)) return 0;  // refuse_stream_over_cap has failed and reset it
    if ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0) {
      if (s->decoder.has_partial_frame()) {
        c->fail_stream(*s, Error(ErrorCode::kCorruption, "stream ended inside a frame"), false);
      } else {
        {
          std::lock_guard lock(s->shared->mu);
          s->shared->is_fin_received = true;
        }
        if (s->callbacks != nullptr) c->emit_stream_closed(*s, std::nullopt);
      }
      s->shared->cv.notify_all();
    }
    return 0;
  }

  static int acked_stream_data_offset(ngtcp2_conn*, int64_t stream_id, uint64_t offset, uint64_t datalen,
                                      void* user_data, void*) {
    auto* c = self(user_data);
    auto* s = c->find_stream(stream_id);
    if (s == nullptr) return 0;
    uint64_t freed_chunk_bytes = 0;
    const uint64_t freed = s->acknowledge(offset + datalen, &c->core_.send_buffers(), &freed_chunk_bytes);
    if (freed == 0) return 0;
    size_t credit = 0;
    {
      std::lock_guard lock(s->shared->mu);
      s->shared->unacked_bytes -= std::min<uint64_t>(freed, s->shared->unacked_bytes);
      // The send caps are credited as memory is freed, a whole chunk at a time: a peer
      // acknowledging all but the last byte of every answer frees nothing.
      credit = static_cast<size_t>(std::min<uint64_t>(freed_chunk_bytes, s->shared->send_charged_bytes));
      s->shared->send_charged_bytes -= credit;
    }
    c->core_.credit_send(*c, credit);
    s->shared->cv.notify_all();
    return 0;
  }

  static int stream_close(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id, uint64_t app_error_code,
                          void* user_data, void*) {
    auto* c = self(user_data);
    auto it = c->streams_.find(stream_id);
    if (it == c->streams_.end()) return 0;
    c->release_partial(*it->second);
    // Credit withheld for a slow blocking reader would otherwise shrink the connection's
    // window for good.
    if (it->second->withheld_credit_bytes > 0) ngtcp2_conn_extend_max_offset(conn, it->second->withheld_credit_bytes);
    const bool has_code = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) != 0;
    Error error(ErrorCode::kUnavailable, has_code ? fmt::format("stream closed (code {})", app_error_code)
                                                  : std::string("stream closed"));
    c->fail_stream(*it->second, std::move(error), true);
    c->release_send_charge(*it->second);
    c->streams_.erase(it);
    c->core_.counters().streams_open.fetch_sub(1);
    // ngtcp2 0.12 does not grant the peer a new stream by itself when one of its streams
    // closes; without this the peer runs out after initial_max_streams_bidi streams.
    if (!ngtcp2_conn_is_local_stream(conn, stream_id)) ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    return 0;
  }

  static int stream_reset(ngtcp2_conn*, int64_t stream_id, uint64_t, uint64_t app_error_code, void* user_data,
                          void*) {
    auto* c = self(user_data);
    if (auto* s = c->find_stream(stream_id)) c->fail_stream(*s, peer_reset_error(app_error_code), false);
    return 0;
  }

  static int stream_stop_sending(ngtcp2_conn*, int64_t stream_id, uint64_t app_error_code, void* user_data,
                                 void*) {
    auto* c = self(user_data);
    if (auto* s = c->find_stream(stream_id)) {
      std::lock_guard lock(s->shared->mu);
      if (!s->shared->send_error) s->shared->send_error = peer_reset_error(app_error_code);
      s->shared->unacked_bytes = 0;
    }
    if (auto* s = c->find_stream(stream_id)) s->shared->cv.notify_all();
    return 0;
  }

  static int extend_max_stream_data(ngtcp2_conn*, int64_t stream_id, uint64_t, void* user_data, void*) {
    auto* c = self(user_data);
    if (auto* s = c->find_stream(stream_id)) {
      s->is_write_blocked = false;
      c->mark_writable(*s);
    }
    return 0;
  }

  static int extend_max_local_streams_bidi(ngtcp2_conn*, uint64_t, void* user_data) {
    self(user_data)->has_new_stream_credit_ = true;
    return 0;
  }

  static Error peer_reset_error(uint64_t app_error_code) {
    if (app_error_code == kAppErrorFrameTooLarge) {
      return Error(ErrorCode::kMessageTooLarge, "peer refused a frame over the size limit and reset the stream");
    }
    if (app_error_code == kAppErrorRecvBufferLimit) {
      return Error(ErrorCode::kUnavailable,
                   "peer reset the stream: its partial-frame receive buffer limit was reached (too many large "
                   "messages in flight at once); nothing on this stream was executed, retry");
    }
    if (app_error_code == kAppErrorSendBufferLimit) {
      // A request on the stream may have been executed: only its answer was dropped.
      return Error(ErrorCode::kUnavailable,
                   "peer reset the stream: its send buffer limit was reached (too many large answers not yet "
                   "received on this connection); the answer was not sent, read the answers in flight and retry");
    }
    return Error(ErrorCode::kUnavailable, fmt::format("stream reset by peer (code {})", app_error_code));
  }

  static ngtcp2_callbacks make(bool is_client) {
    ngtcp2_callbacks cb{};
    if (is_client) {
      cb.client_initial = ngtcp2_crypto_client_initial_cb;
      cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
    } else {
      cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    }
    cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb.encrypt = ngtcp2_crypto_encrypt_cb;
    cb.decrypt = ngtcp2_crypto_decrypt_cb;
    cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb.update_key = ngtcp2_crypto_update_key_cb;
    cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb.rand = rand;
    cb.get_new_connection_id = get_new_connection_id;
    cb.remove_connection_id = remove_connection_id;
    cb.handshake_completed = handshake_completed;
    cb.handshake_confirmed = handshake_confirmed;
    cb.recv_stateless_reset = recv_stateless_reset;
    cb.stream_open = stream_open;
    cb.recv_stream_data = recv_stream_data;
    cb.acked_stream_data_offset = acked_stream_data_offset;
    cb.stream_close = stream_close;
    cb.stream_reset = stream_reset;
    cb.stream_stop_sending = stream_stop_sending;
    cb.extend_max_stream_data = extend_max_stream_data;
    cb.extend_max_local_streams_bidi = extend_max_local_streams_bidi;
    return cb;
  }
};

const ngtcp2_callbacks& connection_callbacks(bool is_client) {
  static const ngtcp2_callbacks client = Callbacks::make(true);
  static const ngtcp2_callbacks server = Callbacks::make(false);
  return is_client ? client : server;
}

void QuicConnection::become_open() {
  if (state_ != ConnState::kHandshaking) return;
  if (!is_client_) {
    // Admission, now that the protocol and the peer's key are known (admission.h).
    if (auto refusal = core_.admit(*this)) {
      refusal_ = std::move(*refusal);  // closed once ngtcp2 returns: no writes from callbacks
      return;
    }
  }
  state_ = ConnState::kOpen;
  core_.counters().connections_open.fetch_add(1);
  // We are inside an ngtcp2 callback: whoever waits may call back into this connection,
  // so they hear of it once ngtcp2 has returned. The connection was made even if the peer
  // closes it in the same batch of datagrams, so a later terminate() does not take it back.
  if (on_connected_) {
    connected_pending_ = std::exchange(on_connected_, nullptr);
    emit(LoopEvent(LoopEvent::Kind::kConnected));
  }
  if (is_client_) return;
  ASPEN_LOG_DEBUG("transport: {} accepted {} from {} ({})", core_.public_key().short_string(), alpn_,
                  peer_key_.short_string(), tls_.cipher_name());
  auto handler = core_.find_handler(alpn_);
  if (auto loop_handler = std::dynamic_pointer_cast<LoopProtocolHandler>(handler)) {
    set_loop_handler(std::move(loop_handler));
    emit(LoopEvent(LoopEvent::Kind::kAccepted));
    return;
  }
  // Weak: a task still queued when the loop stops must not keep the endpoint alive.
  core_.post([self = shared_from_this(), weak_core = core_.weak_from_this()] {
    auto core = weak_core.lock();
    if (core && self->state_ == ConnState::kOpen) core->on_handshake_done(self);
  });
}

void QuicConnection::set_loop_handler(std::shared_ptr<LoopProtocolHandler> handler) {
  ASPEN_ASSERT(handler != nullptr);
  loop_handler_ = std::move(handler);
  handler_callbacks_ = std::make_shared<StreamCallbacks>();
  handler_callbacks_->on_message = [h = loop_handler_](Stream& st, std::string m) { h->on_message(st, std::move(m)); };
  handler_callbacks_->on_closed = [h = loop_handler_](Stream& st, std::optional<Error> e) {
    h->on_stream_closed(st, std::move(e));
  };
  if (is_accept_reported_) return;
  is_accept_reported_ = true;
  // Already over: the handler still hears of the end, once.
  std::optional<Error> error;
  {
    std::lock_guard lock(shared_.mu);
    error = shared_.error;
  }
  if (error) emit(LoopEvent(LoopEvent::Kind::kConnectionClosed, nullptr, nullptr, std::string(), std::move(error)));
}

void QuicConnection::request_flush() {
  if (!is_flushing_) core_.schedule_flush(shared_from_this());
}

void QuicConnection::emit(LoopEvent event) {
  events_.push_back(std::move(event));
  request_flush();
}

void QuicConnection::emit_stream_closed(StreamState& s, std::optional<Error> error) {
  if (s.callbacks == nullptr || s.is_close_reported) return;
  s.is_close_reported = true;
  emit(LoopEvent(LoopEvent::Kind::kStreamClosed, s.shared, s.callbacks, std::string(), std::move(error)));
}

// Runs queued application callbacks. Never called from inside ngtcp2 (flush() is not), so
// the callbacks may use this connection freely; what they send leaves in the same flush.
void QuicConnection::dispatch_events() {
  ASPEN_ASSERT(dispatching_.empty());  // callbacks never re-enter flush()
  while (!events_.empty()) {
    dispatching_.swap(events_);
    for (auto& event : dispatching_) run_event(event);
    dispatching_.clear();
  }
}

void QuicConnection::run_event(LoopEvent& event) {
  using Kind = LoopEvent::Kind;
  auto self = shared_from_this();
  auto core = core_.shared_from_this();
  switch (event.kind) {
    case Kind::kConnected:
      if (auto cb = std::exchange(connected_pending_, nullptr)) cb(Status{});
      return;
    case Kind::kAccepted: {
      Connection conn(core, self);
      loop_handler_->on_loop_connection(conn);
      return;
    }
    case Kind::kConnectionClosed: {
      Connection conn(core, self);
      loop_handler_->on_connection_closed(conn, *event.error);
      return;
    }
    case Kind::kStreamOpened: {
      Stream stream(core, self, std::move(event.stream));
      loop_handler_->on_stream(stream);
      return;
    }
    case Kind::kMessage: {
      Stream stream(core, self, std::move(event.stream));
      if (event.callbacks->on_message) event.callbacks->on_message(stream, std::move(event.message));
      return;
    }
    case Kind::kStreamClosed: {
      Stream stream(core, self, std::move(event.stream));
      if (event.callbacks->on_closed) event.callbacks->on_closed(stream, std::move(event.error));
      return;
    }
  }
}

QuicConnection::StreamState* QuicConnection::find_stream(int64_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

QuicConnection::StreamState& QuicConnection::add_stream(int64_t id) {
  auto [it, inserted] = streams_.emplace(id, std::make_unique<StreamState>(id));
  ASPEN_ASSERT(inserted);
  core_.counters().streams_open.fetch_add(1);
  return *it->second;
}

void QuicConnection::mark_writable(StreamState& s) {
  if (s.is_in_writable || !s.has_pending()) return;
  s.is_in_writable = true;
  writable_.push_back(s.id());
}

// Hands complete frames to the reader, and gives the sender its flow-control credit back
// unless the reader has fallen too far behind (then the credit waits for the reader).
void QuicConnection::deliver(StreamState& s, std::vector<std::string>& frames, size_t consumed_bytes) {
  if (core_.is_credit_withheld_for_testing()) {
    s.withheld_credit_bytes += consumed_bytes;
    consumed_bytes = 0;  // the frames still go to the reader, who never reads them
  }
  if (s.callbacks != nullptr) {
    // Asynchronous reader: it takes each message as it is dispatched, so the credit goes
    // back at once.
    for (auto& f : frames) {
      emit(LoopEvent(LoopEvent::Kind::kMessage, s.shared, s.callbacks, std::move(f)));
    }
    ngtcp2_conn_extend_max_stream_offset(conn_, s.id(), consumed_bytes);
    ngtcp2_conn_extend_max_offset(conn_, consumed_bytes);
    return;
  }
  bool should_withhold = false;
  {
    std::lock_guard lock(s.shared->mu);
    for (auto& f : frames) {
      s.shared->unread_bytes += f.size();
      s.shared->unread.push_back(std::move(f));
    }
    should_withhold = s.shared->unread_bytes > limits::kMaxStreamUnreadBytes;
    if (should_withhold) s.shared->is_credit_withheld = true;
  }
  if (!frames.empty()) s.shared->cv.notify_all();
  if (should_withhold) {
    s.withheld_credit_bytes += consumed_bytes;
    return;
  }
  ngtcp2_conn_extend_max_stream_offset(conn_, s.id(), consumed_bytes);
  ngtcp2_conn_extend_max_offset(conn_, consumed_bytes);
}

bool QuicConnection::account_partial(StreamState& s) {
  const size_t held = s.decoder.held_bytes();
  if (held <= s.held_bytes) {
    const size_t freed = s.held_bytes - held;
    if (freed > 0) {
      core_.recv_budget().credit(peer_class_, freed);
      partial_frame_bytes_ -= freed;
      s.held_bytes = held;
      core_.counters().partial_frame_bytes.store(core_.recv_budget().total_held(), std::memory_order_relaxed);
    }
    return true;
  }
  const size_t grow = held - s.held_bytes;
  const RecvCharge charge = core_.recv_budget().charge(peer_class_, partial_frame_bytes_, grow);
  if (charge != RecvCharge::kOk) {
    refuse_stream_over_cap(s, charge);
    return false;
  }
  partial_frame_bytes_ += grow;
  s.held_bytes = held;
  core_.counters().partial_frame_bytes.store(core_.recv_budget().total_held(), std::memory_order_relaxed);
  return true;
}

void QuicConnection::release_partial(StreamState& s) {
  if (s.held_bytes == 0) return;
  core_.recv_budget().credit(peer_class_, s.held_bytes);
  ASPEN_ASSERT(partial_frame_bytes_ >= s.held_bytes);
  partial_frame_bytes_ -= s.held_bytes;
  s.held_bytes = 0;
  core_.counters().partial_frame_bytes.store(core_.recv_budget().total_held(), std::memory_order_relaxed);
}

void QuicConnection::release_send_charge(StreamState& s) {
  size_t charged = 0;
  {
    std::lock_guard lock(s.shared->mu);
    ASPEN_ASSERT(s.shared->send_error.has_value());  // no new charge can follow
    charged = std::exchange(s.shared->send_charged_bytes, 0);
  }
  core_.credit_send(*this, charged);
}

void QuicConnection::refuse_stream_over_cap(StreamState& s, RecvCharge why) {
  const auto& caps = core_.recv_budget().caps();
  const std::string limit =
      why == RecvCharge::kOverConnectionCap
          ? fmt::format("{} bytes of partial frames per connection", caps.per_connection_bytes)
          : fmt::format("{} bytes of partial frames across all client connections", caps.client_total_bytes);
  core_.note_stream_refused_over_cap(fmt::format("stream {} from {}: over the limit of {}", s.id(),
                                                 peer_key_.short_string(), limit));
  release_partial(s);  // what it held before this chunk
  s.decoder.discard();
  fail_stream(s, Error(ErrorCode::kUnavailable, fmt::format("stream refused: receive buffer limit of {} reached", limit)),
              true);
  deferred_resets_.emplace_back(s.id(), kAppErrorRecvBufferLimit);
}

void QuicConnection::fail_stream(StreamState& s, Error error, bool also_send_side) {
  {
    std::lock_guard lock(s.shared->mu);
    if (!s.shared->recv_error && !s.shared->is_fin_received) s.shared->recv_error = error;
    if (also_send_side && !s.shared->send_error) s.shared->send_error = error;
    if (also_send_side) s.shared->unacked_bytes = 0;
  }
  s.shared->cv.notify_all();
  emit_stream_closed(s, std::move(error));
}

void QuicConnection::process_deferred() {
  if (refusal_) return refuse(*std::exchange(refusal_, std::nullopt));
  for (auto [id, code] : std::exchange(deferred_resets_, {})) stream_reset(id, code);
  if (std::exchange(has_new_stream_credit_, false)) try_pending_opens();
}

void QuicConnection::refuse(const std::string& reason) {
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default(&ccerr);
  // A transport-level refusal: the dialer has not finished its handshake yet (it waits for
  // HANDSHAKE_DONE), and reports the reason (close_error_from_peer).
  ngtcp2_connection_close_error_set_transport_error(&ccerr, NGTCP2_CONNECTION_REFUSED,
                                                    reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  send_close_packet(ccerr);
  enter_closing_period(ConnState::kClosing, Error(ErrorCode::kUnavailable, "refused: " + reason));
}

void QuicConnection::open_stream(Clock::time_point deadline, std::shared_ptr<StreamCallbacks> callbacks,
                                 OpenCallback done) {
  if (state_ != ConnState::kOpen) {
    Error error(ErrorCode::kUnavailable, "connection is not open");
    {
      std::lock_guard lock(shared_.mu);
      if (shared_.error) error = *shared_.error;
    }
    done(std::unexpected(std::move(error)));  // not under the lock: done may query the connection
    return;
  }
  auto pending = std::make_shared<PendingOpen>();
  pending->done = std::move(done);
  pending->callbacks = std::move(callbacks);
  pending->timer = std::make_unique<asio::steady_timer>(core_.io(), deadline);
  pending->timer->async_wait([weak = weak_from_this(), p = std::weak_ptr(pending)](const asio::error_code& ec) {
    auto self = weak.lock();
    auto pending_open = p.lock();
    if (ec || !self || !pending_open) return;
    auto& q = self->pending_opens_;
    auto it = std::find(q.begin(), q.end(), pending_open);
    if (it == q.end()) return;
    q.erase(it);
    pending_open->done(
        make_error(ErrorCode::kTimeout, "no stream available: the peer's stream limit is reached"));
  });
  pending_opens_.push_back(std::move(pending));
  try_pending_opens();
}

void QuicConnection::try_pending_opens() {
  while (!pending_opens_.empty() && state_ == ConnState::kOpen) {
    int64_t id = -1;
    if (streams_.size() >= limits::kMaxStreamsPerConnection) return;
    const int rv = ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr);
    if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return;  // retried on extend_max_local_streams_bidi
    auto pending = pending_opens_.front();
    pending_opens_.pop_front();
    pending->timer->cancel();
    if (rv != 0) {
      pending->done(make_error(ErrorCode::kInternal, fmt::format("open stream: {}", ngtcp2_strerror(rv))));
      continue;
    }
    auto& s = add_stream(id);
    s.callbacks = std::move(pending->callbacks);
    pending->done(s.shared);
  }
}

QuicConnection::StreamState* QuicConnection::stream_for_send(int64_t id) {
  auto* s = find_stream(id);
  if (s != nullptr && !s->is_fin_requested) return s;
  if (s != nullptr) {
    std::lock_guard lock(s->shared->mu);
    if (!s->shared->send_error) s->shared->send_error = Error(ErrorCode::kInvalidArgument, "stream already finished");
  }
  return nullptr;  // a closed stream: the sender already sees send_error
}

void QuicConnection::stream_send(int64_t id, std::string bytes) {
  auto* s = stream_for_send(id);
  if (s == nullptr) return;
  s->enqueue(std::move(bytes));
  mark_writable(*s);
}

void QuicConnection::stream_send_owned(int64_t id, std::string message) {
  auto* s = stream_for_send(id);
  if (s == nullptr) return;
  s->enqueue_owned_frame(std::move(message));
  mark_writable(*s);
}

void QuicConnection::stream_send_message(int64_t id, std::string_view message) {
  auto* s = find_stream(id);
  if (s == nullptr || s->is_fin_requested) return;  // the sender already sees send_error
  if (message.size() >= BufferPool::kMinPooledBytes) {
    std::string bytes = core_.send_buffers().take(kFrameHeaderSizeBytes + message.size());
    append_frame_header(bytes, static_cast<uint32_t>(message.size()));
    bytes.append(message);
    s->enqueue(std::move(bytes));
  } else {
    s->enqueue_frame(message);
  }
  mark_writable(*s);
}

void QuicConnection::set_stream_callbacks(const std::shared_ptr<StreamShared>& stream,
                                          std::shared_ptr<StreamCallbacks> callbacks) {
  ASPEN_ASSERT(callbacks != nullptr);
  auto* s = find_stream(stream->id);
  if (s != nullptr && s->shared != stream) s = nullptr;
  if (s != nullptr) {
    // Assign in place: events already queued for this stream hold the same pointer.
    if (s->callbacks != nullptr) {
      *s->callbacks = std::move(*callbacks);
      callbacks = s->callbacks;
    } else {
      s->callbacks = callbacks;
    }
  }
  // Hand over what the blocking reader had not taken yet, then the end if it came.
  std::deque<std::string> unread;
  std::optional<Error> end_error;
  bool has_ended = false;
  bool was_withheld = false;
  {
    std::lock_guard lock(stream->mu);
    unread.swap(stream->unread);
    stream->unread_bytes = 0;
    was_withheld = std::exchange(stream->is_credit_withheld, false);
    has_ended = stream->is_fin_received || stream->recv_error.has_value();
    end_error = stream->is_fin_received ? std::nullopt : stream->recv_error;
  }
  for (auto& m : unread) {
    emit(LoopEvent(LoopEvent::Kind::kMessage, stream, callbacks, std::move(m)));
  }
  if (has_ended && (s == nullptr || !s->is_close_reported)) {
    if (s != nullptr) s->is_close_reported = true;
    emit(LoopEvent(LoopEvent::Kind::kStreamClosed, stream, callbacks, std::string(), end_error));
  }
  if (was_withheld) stream_release_credit(stream->id);
  request_flush();
}

void QuicConnection::stream_finish(int64_t id) {
  auto* s = find_stream(id);
  if (s == nullptr || s->is_fin_requested) return;
  s->is_fin_requested = true;
  mark_writable(*s);
}

void QuicConnection::stream_release_credit(int64_t id) {
  auto* s = find_stream(id);
  if (s == nullptr || s->withheld_credit_bytes == 0 || conn_ == nullptr) return;
  ngtcp2_conn_extend_max_stream_offset(conn_, id, s->withheld_credit_bytes);
  ngtcp2_conn_extend_max_offset(conn_, s->withheld_credit_bytes);
  s->withheld_credit_bytes = 0;
}

void QuicConnection::stream_reset(int64_t id, uint64_t app_error) {
  auto* s = find_stream(id);
  if (s == nullptr || conn_ == nullptr) return;
  fail_stream(*s, Error(ErrorCode::kUnavailable, "stream reset"), true);
  ngtcp2_conn_shutdown_stream(conn_, id, app_error);
}

}  // namespace aspen::transport::internal
