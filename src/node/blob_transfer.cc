// BlobService (blob_service.h): the transfer protocol on ALPN "aspen-blobs/0", served on
// transport threads (blocking I/O), and the replication fetches the worker makes with it.
#include <chrono>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "blob/pacing.h"
#include "blob/range_encoder.h"
#include "blob/range_verifier.h"
#include "core/encoding.h"
#include "core/log.h"
#include "node/blob_keys.h"
#include "node/blob_service.h"

namespace aspen::node::internal {

namespace {

using blob::Blake3Hash;

std::string raw(const Blake3Hash& h) { return std::string(reinterpret_cast<const char*>(h.data()), h.size()); }

// How long a transfer waits for the peer's next message.
constexpr uint32_t kTransferRecvTimeoutMs = limits::kReadTimeoutMs;

void send_error(transport::Stream& stream, const Error& e) {
  (void)stream.send(rpc::error_response(e).SerializeAsString());
  stream.finish();
}

}  // namespace

// One thread per connection (the transport's); streams are served one after another.
class BlobService::TransferHandler : public transport::ProtocolHandler {
 public:
  explicit TransferHandler(std::weak_ptr<BlobService> service) : service_(std::move(service)) {}
  void on_connection(transport::Connection conn) override {
    for (;;) {
      auto stream = conn.accept_bi();
      if (!stream) {
        if (stream.error().code() == ErrorCode::kTimeout && conn.is_open()) {
          auto s = service_.lock();
          if (s && !s->is_stopping_) continue;
        }
        return;
      }
      auto s = service_.lock();
      if (!s || s->is_stopping_) return;
      s->serve_transfer(std::move(*stream));
    }
  }

 private:
  std::weak_ptr<BlobService> service_;
};

std::shared_ptr<transport::ProtocolHandler> BlobService::transfer_handler() {
  return std::make_shared<TransferHandler>(weak_from_this());
}

void BlobService::serve_transfer(transport::Stream stream) {
  auto first = stream.recv(kTransferRecvTimeoutMs);
  if (!first || !*first) return stream.reset();
  cpb::Request req;
  if (!req.ParseFromString(**first)) {
    return send_error(stream, Error(ErrorCode::kInvalidArgument, "malformed request: not a clientpb.Request"));
  }
  if (req.op_case() != cpb::Request::kBlobAdd && req.op_case() != cpb::Request::kBlobGet) {
    return send_error(stream, Error(ErrorCode::kInvalidArgument,
                                    fmt::format("ALPN {} carries blob add and get only", kBlobAlpn)));
  }
  const uint32_t max_transfers = env_.config.knobs.blob_max_transfers;
  if (counters_.transfers_active.fetch_add(1) >= max_transfers) {
    counters_.transfers_active.fetch_sub(1);
    counters_.transfers_refused.fetch_add(1);
    return send_error(stream, Error(ErrorCode::kUnavailable,
                                    fmt::format("this node serves at most {} blob transfers at once (knob "
                                                "blob_max_transfers); retry later",
                                                max_transfers)));
  }
  struct Slot {
    std::atomic<uint64_t>& n;
    ~Slot() { n.fetch_sub(1); }
  } slot{counters_.transfers_active};
  // The same check as on the client protocol: a member (replication) passes, anyone else
  // needs a token granting the request.
  cpb::Response access = run_on_loop([this, stream, req](Reply done) {
    auto self = weak_from_this().lock();
    if (!self) return done(rpc::error_response(Error(ErrorCode::kUnavailable, "the node is stopping")));
    auto a = clients_.authorize(stream, req);
    done(a ? cpb::Response{} : clients_.error_reply(a.error()));
  });
  if (access.has_error()) {
    (void)stream.send(access.SerializeAsString());
    return stream.finish();
  }
  if (req.has_blob_get()) return serve_get(stream, req.blob_get());
  serve_add(stream, req.blob_add());
}

void BlobService::serve_get(transport::Stream& stream, const cpb::BlobGetRequest& req) {
  auto hash = blob_hash_from_bytes(req.hash());
  if (!hash) return send_error(stream, hash.error());
  auto handle = store_->open_read(*hash);
  if (!handle) return send_error(stream, handle.error());
  const uint64_t size = (*handle)->info().size_bytes;
  const uint64_t end = req.end_bytes() == 0 ? UINT64_MAX : req.end_bytes();
  auto range = blob::clamp_range(size, {req.start_bytes(), end});
  if (!range) return send_error(stream, range.error());
  auto encoded = blob::encoded_range_size_bytes(size, *range);
  if (!encoded) return send_error(stream, encoded.error());
  cpb::Response header;
  auto* h = header.mutable_blob_get();
  h->set_size_bytes(size);
  h->set_start_bytes(range->start_bytes);
  h->set_end_bytes(range->end_bytes);
  h->set_encoded_bytes(*encoded);
  if (auto s = stream.send(header.SerializeAsString()); !s) return;
  std::string buffer;
  buffer.reserve(kBlobTransferMessageBytes + limits::kBlobChunkGroupBytes);
  uint64_t sent = 0;
  auto flush = [&]() -> Status {
    if (buffer.empty()) return {};
    sent += buffer.size();
    Status s = stream.send_owned(std::move(buffer));
    buffer = std::string();
    buffer.reserve(kBlobTransferMessageBytes + limits::kBlobChunkGroupBytes);
    return s;
  };
  Status s = (*handle)->encode(*range, [&](std::span<const uint8_t> frame) -> Status {
    if (is_stopping_) return make_error(ErrorCode::kUnavailable, "the node is stopping");
    buffer.append(reinterpret_cast<const char*>(frame.data()), frame.size());
    if (buffer.size() >= kBlobTransferMessageBytes) return flush();
    return {};
  });
  if (s) s = flush();
  counters_.bytes_served.fetch_add(sent);
  if (!s) {
    // The reader sees the stream reset and its verifier incomplete: it goes elsewhere.
    stream.reset();
    handle->reset();
    if (s.error().code() == ErrorCode::kCorruption) drop_damaged(*hash);
    return;
  }
  counters_.gets_served.fetch_add(1);
  stream.finish();
}

void BlobService::serve_add(transport::Stream& stream, const cpb::BlobAddRequest& req) {
  std::optional<Blake3Hash> expected;
  if (!req.expected_hash().empty()) {
    auto h = blob_hash_from_bytes(req.expected_hash());
    if (!h) return send_error(stream, h.error());
    expected = *h;
  }
  auto import = store_->begin_import();
  if (!import) return send_error(stream, import.error());
  for (;;) {
    auto msg = stream.recv(kTransferRecvTimeoutMs);
    if (!msg) return stream.reset();  // cut off: the import is abandoned with its temp file
    if (!*msg) break;
    const std::string& bytes = **msg;
    if (auto s = (*import)->append(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())); !s) {
      return send_error(stream, s.error());
    }
    if (is_stopping_) return stream.reset();
  }
  // Pinned until the leader recorded this node as a holder: GC must not take it in between.
  blob::BlobPin pin;
  auto info = (*import)->finish(expected, env_.now_ms(), &pin);
  if (!info) return send_error(stream, info.error());
  // Recorded as held before the answer: a tag can be set as soon as the add returns.
  cpb::Response recorded = run_on_loop([this, hash = info->hash](Reply done) {
    if (auto self = weak_from_this().lock()) update_own_holders({hash}, {}, std::move(done));
  });
  if (recorded.has_error()) {
    return send_error(stream, Error(ErrorCode::kUnavailable,
                                    fmt::format("blob {} was stored on node {}, but recording that with the leader "
                                                "failed ({}); add it again",
                                                blob::hash_to_hex(info->hash), env_.config.node_id,
                                                recorded.error().message())));
  }
  cpb::Response resp;
  auto* out = resp.mutable_blob_add();
  out->set_hash(raw(info->hash));
  out->set_size_bytes(info->size_bytes);
  out->set_was_present(info->was_present);
  out->set_node_id(env_.config.node_id);
  (void)stream.send(resp.SerializeAsString());
  stream.finish();
}

// ---------------------------------------------------------------------------------------
// Replication: fetch a blob from its holders [worker].

void BlobService::fetch(const Blake3Hash& hash, const std::vector<FetchSource>& sources) {
  struct Done {
    BlobService& s;
    Blake3Hash h;
    ~Done() {
      std::lock_guard lock(s.worker_mu_);
      s.fetching_.erase(h);
    }
  } done{*this, hash};
  const std::string hex = blob::hash_to_hex(hash);
  std::unique_ptr<blob::BlobImport> import;
  uint64_t size = 0;
  uint64_t resume = 0;
  bool is_complete = false;
  const uint64_t bytes_per_s = env_.config.knobs.blob_replication_bytes_per_s;
  const auto started = std::chrono::steady_clock::now();
  uint64_t received = 0;
  // Each holder is tried in turn (twice round at most), resuming where the verified data
  // ended: a holder that sends a bad group or goes away costs only what it sent since.
  for (size_t attempt = 0; attempt < 2 * sources.size() && !is_complete && !is_stopping_; ++attempt) {
    const FetchSource& src = sources[attempt % sources.size()];
    auto fail = [&](const std::string& why) {
      counters_.fetch_attempts_failed.fetch_add(1);
      ASPEN_LOG_DEBUG("node {}: fetching blob {} from node {} stopped at byte {}: {}", env_.config.node_id, hex, src.id,
                      resume, why);
    };
    auto conn = env_.endpoint->connect(src.key, src.addrs, kBlobAlpn);
    if (!conn) {
      fail(conn.error().message());
      continue;
    }
    cpb::Request req;
    auto* g = req.mutable_blob_get();
    g->set_hash(raw(hash));
    g->set_start_bytes(resume);
    auto stream = conn->open_bi_with(req.SerializeAsString(), true);
    if (!stream) {
      fail(stream.error().message());
      continue;
    }
    auto first = stream->recv(kTransferRecvTimeoutMs);
    cpb::Response header;
    if (!first || !*first || !header.ParseFromString(**first)) {
      fail("no answer");
      continue;
    }
    if (header.has_error() || !header.has_blob_get()) {
      fail(header.error().message());
      continue;
    }
    const uint64_t claimed = header.blob_get().size_bytes();
    if (!import) {
      auto imp = store_->begin_import(claimed);
      if (!imp) {
        ASPEN_LOG_WARN("node {}: cannot fetch blob {}: {}", env_.config.node_id, hex, imp.error().message());
        counters_.fetches_failed.fetch_add(1);
        return;
      }
      import = std::move(*imp);
      size = claimed;
    } else if (claimed != size) {
      fail("the holder names another size");
      continue;
    }
    // The range runs to the blob's end, so the verifier also proves the size.
    auto verifier = blob::RangeVerifier::create(hash, size, {resume, UINT64_MAX});
    if (!verifier) {
      fail(verifier.error().message());
      continue;
    }
    Status fed;
    while (fed && !verifier->is_complete() && !is_stopping_) {
      auto msg = stream->recv(kTransferRecvTimeoutMs);
      if (!msg) {
        fed = std::unexpected(msg.error());
        break;
      }
      if (!*msg) break;
      const std::string& bytes = **msg;
      received += bytes.size();
      fed = verifier->feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                           [&](uint64_t offset, std::span<const uint8_t> data) { return import->write_at(offset, data); });
      if (bytes_per_s != 0) {
        // Paced: never ahead of the byte budget since the fetch began. The wait ends early
        // when the node stops, so a slow pace cannot hold up shutdown.
        const auto due = started + std::chrono::microseconds(blob::paced_elapsed_us(received, bytes_per_s));
        std::unique_lock lock(worker_mu_);
        worker_cv_.wait_until(lock, due, [this] { return is_stopping_.load(); });
      }
    }
    resume = verifier->resume_offset_bytes();
    if (verifier->is_complete()) {
      is_complete = true;
      stream->finish();
      break;
    }
    stream->reset();
    fail(fed ? verifier->finish().error().message() : fed.error().message());
  }
  if (!is_complete) {
    counters_.fetches_failed.fetch_add(1);
    return;
  }
  blob::BlobPin pin;
  auto info = import->finish(hash, env_.now_ms(), &pin);
  if (!info) {
    counters_.fetches_failed.fetch_add(1);
    ASPEN_LOG_WARN("node {}: fetched blob {} but could not store it: {}", env_.config.node_id, hex, info.error().message());
    return;
  }
  counters_.fetches_completed.fetch_add(1);
  counters_.bytes_fetched.fetch_add(size);
  cpb::Response r = run_on_loop([this, hash](Reply d) {
    if (auto self = weak_from_this().lock()) update_own_holders({hash}, {}, std::move(d));
  });
  ASPEN_LOG_INFO("node {}: replicated blob {} ({}){}", env_.config.node_id, hex, format_mib(size),
                 r.has_error() ? "; recording it failed: " + r.error().message() : "");
}

}  // namespace aspen::node::internal
