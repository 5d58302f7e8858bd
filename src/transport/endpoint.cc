// The public handles: thin wrappers that post work to the loop thread and wait for it, or
// wait on the shared state the loop fills in.
#include "transport/endpoint.h"

#include <malloc.h>

#include <chrono>
#include <future>
#include <mutex>

#include <fmt/format.h>

#include "core/assert.h"
#include "transport/internal/endpoint_core.h"

namespace aspen::transport {
namespace {

using Clock = std::chrono::steady_clock;
using internal::EndpointCore;
using internal::QuicConnection;
using internal::StreamShared;

// The loop enforces every deadline itself and always answers; this margin only guards
// against a loop that has stopped.
constexpr auto kLoopAnswerGrace = std::chrono::seconds(2);

template <typename T>
Result<T> wait_for_loop(std::future<Result<T>>& future, uint32_t timeout_ms) {
  if (future.wait_for(std::chrono::milliseconds(timeout_ms) + kLoopAnswerGrace) != std::future_status::ready) {
    return make_error(ErrorCode::kUnavailable, "transport loop is not responding");
  }
  try {
    return future.get();
  } catch (const std::future_error&) {
    return make_error(ErrorCode::kUnavailable, "endpoint closed");
  }
}

Status closed_error() { return make_error(ErrorCode::kUnavailable, "endpoint closed"); }

// Every received frame is a fresh buffer of its full size, handed to the application and
// freed by it, often on another thread. glibc serves blocks over 128 KiB (the threshold
// then adapts) with mmap and gives free space at the top of an arena back to the kernel
// once it passes 128 KiB, so a stream of 1 MiB frames paid a page fault and a page clear
// for every 4 KiB it received: 8% of the CPU of a bulk transfer, and 35% less throughput
// (measured with bench/transport_bench.cc). These thresholds keep frame-sized blocks in the
// arenas; the cost is up to kTrimThresholdBytes of free memory held per arena.
void configure_allocator() {
  constexpr int kMmapThresholdBytes = 16 << 20;  // above the largest frame
  constexpr int kTrimThresholdBytes = 32 << 20;
  static_assert(size_t{kMmapThresholdBytes} > limits::kMaxFrameSizeBytes);
  static std::once_flag once;
  std::call_once(once, [] {
    ::mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
    ::mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
  });
}

// Runs `fn(conn)` on the loop: at once when already there (the packets leave when the
// current loop task ends), otherwise from a posted task that flushes right after.
template <typename F>
void on_loop(EndpointCore& core, const std::shared_ptr<QuicConnection>& conn, F&& fn) {
  if (core.is_loop_thread()) {
    fn(*conn);
    conn->request_flush();
    return;
  }
  core.post([conn, fn = std::forward<F>(fn)]() mutable {
    fn(*conn);
    conn->flush();
  });
}

}  // namespace

// ---------------------------------------------------------------------------------- Stream

Stream::Stream(std::shared_ptr<EndpointCore> core, std::shared_ptr<QuicConnection> conn,
               std::shared_ptr<StreamShared> shared)
    : core_(std::move(core)), conn_(std::move(conn)), shared_(std::move(shared)) {}

int64_t Stream::id() const noexcept { return shared_->id; }

size_t Stream::unacked_bytes() const {
  std::lock_guard lock(shared_->mu);
  return shared_->unacked_bytes;
}

Status Stream::check_message_size(size_t size_bytes) {
  if (size_bytes <= limits::kMaxFrameSizeBytes) return {};
  reset();
  return make_error(ErrorCode::kMessageTooLarge,
                    fmt::format("message of {} bytes exceeds the {}-byte frame limit; stream reset", size_bytes,
                                limits::kMaxFrameSizeBytes));
}

Status Stream::reserve_send_room(size_t frame_bytes, uint32_t timeout_ms) {
  ASPEN_ASSERT(!core_->is_loop_thread());
  if (core_->is_closed()) return closed_error();
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock lock(shared_->mu);
  const bool is_ready = shared_->cv.wait_until(lock, deadline, [&] {
    return shared_->is_finished_locally || shared_->send_error.has_value() || shared_->unacked_bytes <= limits::kMaxStreamUnackedBytes;
  });
  // Our own finish is the reason that stays true; a closed stream's error may or may not
  // have been recorded yet.
  if (shared_->is_finished_locally) return make_error(ErrorCode::kInvalidArgument, "stream already finished");
  if (shared_->send_error) return std::unexpected(*shared_->send_error);
  if (!is_ready) {
    return make_error(ErrorCode::kTimeout, fmt::format("peer did not acknowledge buffered data within {} ms", timeout_ms));
  }
  // The connection's and the process's caps are not waited for: on a client connection the
  // answers held for a peer that does not read are what they bound.
  if (auto refused = charge_send_caps_locked(frame_bytes)) {
    lock.unlock();
    return refuse_over_send_cap(std::move(*refused));
  }
  shared_->unacked_bytes += frame_bytes;
  return {};
}

Status Stream::reserve_send_room_now(size_t frame_bytes) {
  if (core_->is_closed()) return closed_error();
  std::unique_lock lock(shared_->mu);  // uncontended on the loop thread: no syscall
  if (shared_->is_finished_locally) return make_error(ErrorCode::kInvalidArgument, "stream already finished");
  if (shared_->send_error) return std::unexpected(*shared_->send_error);
  if (shared_->unacked_bytes > limits::kMaxStreamUnackedBytes) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("send buffer full: {} bytes unacknowledged", shared_->unacked_bytes));
  }
  if (auto refused = charge_send_caps_locked(frame_bytes)) {
    lock.unlock();
    return refuse_over_send_cap(std::move(*refused));
  }
  shared_->unacked_bytes += frame_bytes;
  return {};
}

std::optional<Error> Stream::charge_send_caps_locked(size_t frame_bytes) {
  if (!conn_->is_send_capped()) return std::nullopt;
  // Under shared_->mu, after the send_error check: once a stream's send side has failed
  // nothing more is charged to it, so the loop's final credit (release_send_charge) is final.
  const internal::SendCharge verdict = core_->charge_send(*conn_, frame_bytes);
  if (verdict == internal::SendCharge::kOk) {
    shared_->send_charged_bytes += frame_bytes;
    return std::nullopt;
  }
  return Error(ErrorCode::kUnavailable,
               fmt::format("a {}-byte message was not sent: it would cross the limit of {} (the peer is not reading "
                           "what it was sent); stream reset",
                           frame_bytes, internal::send_limit_text(verdict, core_->send_caps())));
}

Status Stream::refuse_over_send_cap(Error error) {
  on_loop(*core_, conn_,
          [id = shared_->id](QuicConnection& c) { c.stream_reset(id, internal::kAppErrorSendBufferLimit); });
  return std::unexpected(std::move(error));
}

Status Stream::send(std::string_view message, uint32_t timeout_ms) {
  if (auto st = check_message_size(message.size()); !st) return st;
  std::string bytes = core_->send_buffers().take(kFrameHeaderSizeBytes + message.size());
  append_frame_header(bytes, static_cast<uint32_t>(message.size()));
  bytes.append(message);
  return send_bytes(std::move(bytes), timeout_ms);
}

Status Stream::send_bytes(std::string bytes, uint32_t timeout_ms) {
  if (auto st = reserve_send_room(bytes.size(), timeout_ms); !st) return st;
  core_->post([conn = conn_, id = shared_->id, bytes = std::move(bytes)]() mutable {
    conn->stream_send(id, std::move(bytes));
    conn->flush();
  });
  return {};
}

Status Stream::send_owned(std::string message, uint32_t timeout_ms) {
  if (auto st = check_message_size(message.size()); !st) return st;
  if (auto st = reserve_send_room(kFrameHeaderSizeBytes + message.size(), timeout_ms); !st) return st;
  core_->post([conn = conn_, id = shared_->id, message = std::move(message)]() mutable {
    conn->stream_send_owned(id, std::move(message));
    conn->flush();
  });
  return {};
}

Result<std::optional<std::string>> Stream::recv(uint32_t timeout_ms) {
  ASPEN_ASSERT(!core_->is_loop_thread());
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock lock(shared_->mu);
  shared_->cv.wait_until(lock, deadline, [&] {
    return !shared_->unread.empty() || shared_->recv_error.has_value() || shared_->is_fin_received;
  });
  if (!shared_->unread.empty()) {
    std::string frame = std::move(shared_->unread.front());
    shared_->unread.pop_front();
    shared_->unread_bytes -= frame.size();
    // Hysteresis: give the withheld credit back once the reader has caught up halfway.
    const bool should_release = shared_->is_credit_withheld && shared_->unread_bytes <= limits::kMaxStreamUnreadBytes / 2;
    if (should_release) shared_->is_credit_withheld = false;
    lock.unlock();
    if (should_release) {
      core_->post([conn = conn_, id = shared_->id] {
        conn->stream_release_credit(id);
        conn->flush();
      });
    }
    return std::optional<std::string>(std::move(frame));
  }
  if (shared_->recv_error) return std::unexpected(*shared_->recv_error);
  if (shared_->is_fin_received) return std::optional<std::string>();
  return make_error(ErrorCode::kTimeout, fmt::format("no message within {} ms", timeout_ms));
}

void Stream::finish() {
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->is_finished_locally) return;
    shared_->is_finished_locally = true;
  }
  on_loop(*core_, conn_, [id = shared_->id](QuicConnection& c) { c.stream_finish(id); });
}

void Stream::reset() {
  on_loop(*core_, conn_, [id = shared_->id](QuicConnection& c) { c.stream_reset(id, internal::kAppErrorStreamCancelled); });
}

Status Stream::send_async(std::string_view message) {
  if (auto st = check_message_size(message.size()); !st) return st;
  if (auto st = reserve_send_room_now(kFrameHeaderSizeBytes + message.size()); !st) return st;
  if (core_->is_loop_thread()) {
    conn_->stream_send_message(shared_->id, message);
    conn_->request_flush();
    return {};
  }
  std::string bytes = core_->send_buffers().take(kFrameHeaderSizeBytes + message.size());
  append_frame_header(bytes, static_cast<uint32_t>(message.size()));
  bytes.append(message);
  core_->post([conn = conn_, id = shared_->id, bytes = std::move(bytes)]() mutable {
    conn->stream_send(id, std::move(bytes));
    conn->flush();
  });
  return {};
}

Status Stream::send_async_owned(std::string message) {
  if (auto st = check_message_size(message.size()); !st) return st;
  if (auto st = reserve_send_room_now(kFrameHeaderSizeBytes + message.size()); !st) return st;
  if (core_->is_loop_thread()) {
    conn_->stream_send_owned(shared_->id, std::move(message));
    conn_->request_flush();
    return {};
  }
  core_->post([conn = conn_, id = shared_->id, message = std::move(message)]() mutable {
    conn->stream_send_owned(id, std::move(message));
    conn->flush();
  });
  return {};
}

void Stream::set_callbacks(StreamCallbacks callbacks) {
  ASPEN_ASSERT(core_->is_loop_thread());
  conn_->set_stream_callbacks(shared_, std::make_shared<StreamCallbacks>(std::move(callbacks)));
}

// ------------------------------------------------------------------------------ Connection

Connection::Connection(std::shared_ptr<EndpointCore> core, std::shared_ptr<QuicConnection> conn)
    : core_(std::move(core)), conn_(std::move(conn)) {}

Result<Stream> Connection::open_bi(uint32_t timeout_ms) {
  ASPEN_ASSERT(!core_->is_loop_thread());
  if (core_->is_closed()) return std::unexpected(closed_error().error());
  using OpenResult = Result<std::shared_ptr<StreamShared>>;
  auto promise = std::make_shared<std::promise<OpenResult>>();
  auto future = promise->get_future();
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  core_->post([conn = conn_, deadline, promise] {
    conn->open_stream(deadline, nullptr, [promise](OpenResult r) { promise->set_value(std::move(r)); });
  });
  auto shared = wait_for_loop(future, timeout_ms);
  if (!shared) return std::unexpected(shared.error());
  return Stream(core_, conn_, std::move(*shared));
}

Result<Stream> Connection::open_bi_with(std::string message, bool is_last, uint32_t timeout_ms) {
  ASPEN_ASSERT(!core_->is_loop_thread());
  if (message.size() > limits::kMaxFrameSizeBytes) {
    return make_error(ErrorCode::kMessageTooLarge,
                      fmt::format("message of {} bytes exceeds the {}-byte frame limit", message.size(),
                                  limits::kMaxFrameSizeBytes));
  }
  if (core_->is_closed()) return std::unexpected(closed_error().error());
  using OpenResult = Result<std::shared_ptr<StreamShared>>;
  auto promise = std::make_shared<std::promise<OpenResult>>();
  auto future = promise->get_future();
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  core_->post([conn = conn_, deadline, promise, message = std::move(message), is_last]() mutable {
    conn->open_stream(deadline, nullptr,
                      [conn, promise, message = std::move(message), is_last](OpenResult r) mutable {
                        // On the loop, possibly inside an ngtcp2 callback: only queue here.
                        // Not charged to the send caps: they bound answers to what a client
                        // asked for, and a node never opens streams to its clients.
                        if (r) {
                          {
                            std::lock_guard lock((*r)->mu);
                            (*r)->unacked_bytes += kFrameHeaderSizeBytes + message.size();
                            (*r)->is_finished_locally = is_last;
                          }
                          conn->stream_send_owned((*r)->id, std::move(message));
                          if (is_last) conn->stream_finish((*r)->id);
                          conn->request_flush();
                        }
                        promise->set_value(std::move(r));
                      });
  });
  auto shared = wait_for_loop(future, timeout_ms);
  if (!shared) return std::unexpected(shared.error());
  return Stream(core_, conn_, std::move(*shared));
}

void Connection::open_bi_async(StreamCallbacks callbacks, std::function<void(Result<Stream>)> done,
                               uint32_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto cb = std::make_shared<StreamCallbacks>(std::move(callbacks));
  on_loop(*core_, conn_,
          [weak_core = std::weak_ptr(core_), conn = conn_, deadline, cb, done = std::move(done)](QuicConnection& c) mutable {
            c.open_stream(deadline, std::move(cb),
                          [weak_core, conn, done = std::move(done)](Result<std::shared_ptr<StreamShared>> r) {
                            auto core = weak_core.lock();
                            if (!r || !core) {
                              return done(std::unexpected(r ? Error(ErrorCode::kUnavailable, "endpoint closed") : r.error()));
                            }
                            done(Stream(std::move(core), conn, std::move(*r)));
                          });
          });
}

void Connection::serve_on_loop(std::shared_ptr<LoopProtocolHandler> handler) {
  on_loop(*core_, conn_, [handler = std::move(handler)](QuicConnection& c) mutable { c.set_loop_handler(std::move(handler)); });
}

Result<Stream> Connection::accept_bi(uint32_t timeout_ms) {
  ASPEN_ASSERT(!core_->is_loop_thread());
  auto& shared = conn_->shared();
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock lock(shared.mu);
  shared.cv.wait_until(lock, deadline, [&] { return !shared.accept_queue.empty() || shared.error.has_value(); });
  if (!shared.accept_queue.empty()) {
    auto stream = std::move(shared.accept_queue.front());
    shared.accept_queue.pop_front();
    return Stream(core_, conn_, std::move(stream));
  }
  if (shared.error) return std::unexpected(*shared.error);
  return make_error(ErrorCode::kTimeout, fmt::format("peer opened no stream within {} ms", timeout_ms));
}

const PublicKey& Connection::peer_key() const noexcept { return conn_->peer_key(); }
const PublicKey& Stream::peer_key() const noexcept { return conn_->peer_key(); }
const ChannelBinding& Connection::channel_binding() const noexcept { return conn_->channel_binding(); }
uint64_t Connection::serial() const noexcept { return conn_->serial(); }
const ChannelBinding& Stream::channel_binding() const noexcept { return conn_->channel_binding(); }
uint64_t Stream::connection_serial() const noexcept { return conn_->serial(); }
Connection Stream::connection() const { return Connection(core_, conn_); }
const std::string& Connection::alpn() const noexcept { return conn_->alpn(); }

bool Connection::is_open() const {
  std::lock_guard lock(conn_->shared().mu);
  return !conn_->shared().error.has_value();
}

std::optional<Error> Connection::error() const {
  std::lock_guard lock(conn_->shared().mu);
  return conn_->shared().error;
}

void Connection::close() {
  on_loop(*core_, conn_, [](QuicConnection& c) { c.close(internal::kAppErrorNone, ""); });
}

void Connection::set_keep_alive_ms(uint32_t ms) {
  on_loop(*core_, conn_, [ms](QuicConnection& c) { c.set_keep_alive_ms(ms); });
}

// -------------------------------------------------------------------------------- Endpoint

Endpoint::Endpoint(std::shared_ptr<EndpointCore> core) : core_(std::move(core)) {}

Endpoint::~Endpoint() { close(); }

Result<std::unique_ptr<Endpoint>> Endpoint::bind(const NodeIdentity& identity, const EndpointConfig& config) {
  configure_allocator();
  auto core = std::make_shared<EndpointCore>(identity, config);
  if (auto st = core->start(); !st) {
    core->shutdown(false);
    return std::unexpected(st.error());
  }
  return std::unique_ptr<Endpoint>(new Endpoint(std::move(core)));
}

const PublicKey& Endpoint::public_key() const noexcept { return core_->public_key(); }
SocketAddr Endpoint::local_addr() const { return core_->local_addr(); }

Status Endpoint::register_handler(const std::string& alpn, std::shared_ptr<ProtocolHandler> handler) {
  return core_->register_handler(alpn, std::move(handler));
}

Result<Connection> Endpoint::connect(const PublicKey& peer, std::span<const SocketAddr> addrs, const std::string& alpn,
                                     uint32_t timeout_ms) {
  ASPEN_ASSERT(!core_->is_loop_thread());
  if (addrs.empty()) return make_error(ErrorCode::kInvalidArgument, fmt::format("no address for {}", peer.to_string()));
  if (alpn.empty() || alpn.size() > 255) return make_error(ErrorCode::kInvalidArgument, "bad protocol name");
  if (core_->is_closed()) return std::unexpected(closed_error().error());
  using ConnectResult = Result<std::shared_ptr<QuicConnection>>;
  auto promise = std::make_shared<std::promise<ConnectResult>>();
  auto future = promise->get_future();
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  // Tasks capture the core weakly: one still queued when the loop stops must not keep the
  // endpoint (which owns the queue) alive.
  core_->post([weak_core = std::weak_ptr(core_), peer, addrs = std::vector(addrs.begin(), addrs.end()), alpn, deadline,
               promise] {
    if (auto core = weak_core.lock()) {
      core->connect_any(peer, addrs, alpn, deadline, [promise](ConnectResult r) { promise->set_value(std::move(r)); });
    }
  });
  auto conn = wait_for_loop(future, timeout_ms);
  if (!conn) return std::unexpected(conn.error());
  return Connection(core_, std::move(*conn));
}

void Endpoint::connect_async(const PublicKey& peer, std::vector<SocketAddr> addrs, std::string alpn,
                             std::function<void(Result<Connection>)> done, uint32_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  core_->post([weak_core = std::weak_ptr(core_), peer, addrs = std::move(addrs), alpn = std::move(alpn), deadline,
               done = std::move(done)]() mutable {
    auto core = weak_core.lock();
    if (!core) return;
    if (addrs.empty()) return done(make_error(ErrorCode::kInvalidArgument, fmt::format("no address for {}", peer.to_string())));
    if (alpn.empty() || alpn.size() > 255) return done(make_error(ErrorCode::kInvalidArgument, "bad protocol name"));
    core->connect_any(peer, std::move(addrs), alpn, deadline,
                      [weak_core, done = std::move(done)](Result<std::shared_ptr<QuicConnection>> r) {
                        auto c = weak_core.lock();
                        if (!r || !c) return done(std::unexpected(r ? Error(ErrorCode::kUnavailable, "endpoint closed") : r.error()));
                        done(Connection(std::move(c), std::move(*r)));
                      });
  });
}

void Endpoint::post(std::function<void()> fn) { core_->post(std::move(fn)); }

void Endpoint::post_after(uint32_t delay_ms, std::function<void()> fn) {
  // The timer is made on the loop, which owns every asio object of the endpoint.
  core_->post([core = core_, delay_ms, fn = std::move(fn)]() mutable {
    auto timer = std::make_shared<asio::steady_timer>(core->io(), std::chrono::milliseconds(delay_ms));
    timer->async_wait([timer, fn = std::move(fn)](const asio::error_code& ec) {
      if (!ec) fn();
    });
  });
}

bool Endpoint::is_loop_thread() const noexcept { return core_->is_loop_thread(); }

TransportMetrics Endpoint::metrics() const { return core_->metrics(); }

void Endpoint::set_peer_unreachable_handler(std::function<void(const PublicKey&)> handler) {
  core_->set_peer_unreachable_handler(std::move(handler));
}

void Endpoint::close() { core_->shutdown(true); }

}  // namespace aspen::transport
