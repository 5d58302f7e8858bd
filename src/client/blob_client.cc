#include "client/blob_client.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "blob/range_verifier.h"
#include "rpc/error_info.h"

namespace aspen::client {

namespace {

using Clock = std::chrono::steady_clock;

std::string raw(const crypto::Blake3Hash& h) { return std::string(reinterpret_cast<const char*>(h.data()), h.size()); }

Status response_status(const cpb::Response& r) {
  if (r.has_error()) return std::unexpected(rpc::from_error_info(r.error()));
  return {};
}

Result<cpb::Response> call_checked(Client& client, const cpb::Request& req, Target target,
                                   cpb::Response::ResultCase expected) {
  auto r = client.call(req, target);
  if (!r) return std::unexpected(r.error());
  if (r->result_case() != expected) {
    return make_error(ErrorCode::kInternal, "the node answered a blob request with something else");
  }
  return r;
}

// The streams of add and get wait this long for the node's next message.
constexpr uint32_t kStreamRecvTimeoutMs = limits::kReadTimeoutMs;

}  // namespace

Result<cpb::BlobAddResponse> blob_add(Client& client, const BlobSource& source, const BlobAddOptions& options) {
  cpb::Request req;
  auto* a = req.mutable_blob_add();
  if (options.expected_hash) a->set_expected_hash(raw(*options.expected_hash));
  auto ps = client.open_protocol_stream(kBlobAlpn, req, options.target, 10000);
  if (!ps) return std::unexpected(ps.error());
  struct Closer {
    transport::Connection& c;
    ~Closer() { c.close(); }
  } closer{ps->conn};
  uint64_t sent = 0;
  for (;;) {
    std::string buffer(kBlobAddMessageBytes, '\0');
    auto n = source(std::span(reinterpret_cast<uint8_t*>(buffer.data()), buffer.size()));
    if (!n) {
      ps->stream.reset();
      return std::unexpected(n.error());
    }
    if (*n == 0) break;
    buffer.resize(*n);
    // send_owned waits while the node is behind (its flow control), so memory stays bounded.
    if (auto s = ps->stream.send_owned(std::move(buffer)); !s) {
      // The node may have refused the blob (too large) and said why: read its answer.
      auto answer = ps->stream.recv(1000);
      cpb::Response resp;
      if (answer && *answer && resp.ParseFromString(**answer) && resp.has_error()) {
        return std::unexpected(rpc::from_error_info(resp.error()));
      }
      return std::unexpected(s.error());
    }
    sent += *n;
    if (options.progress) options.progress(sent);
  }
  ps->stream.finish();
  // Hashing and syncing a large blob takes the node a while after the last byte.
  const uint32_t wait_ms = kStreamRecvTimeoutMs + static_cast<uint32_t>(std::min<uint64_t>(sent / 1000, 600000));
  auto answer = ps->stream.recv(wait_ms);
  if (!answer) return std::unexpected(answer.error());
  cpb::Response resp;
  if (!*answer || !resp.ParseFromString(**answer)) {
    return make_error(ErrorCode::kUnavailable, "the node ended the add without an answer; add the blob again");
  }
  if (auto s = response_status(resp); !s) return std::unexpected(s.error());
  if (!resp.has_blob_add()) return make_error(ErrorCode::kInternal, "the node answered an add with something else");
  return resp.blob_add();
}

Result<cpb::BlobGetResponse> blob_get(Client& client, const crypto::Blake3Hash& hash, const BlobGetOptions& options,
                                      const BlobSink& sink) {
  std::vector<uint64_t> sources;
  if (options.target.node_id != 0) {
    sources.push_back(options.target.node_id);
  } else {
    auto st = blob_status(client, hash);
    if (!st) return std::unexpected(st.error());
    for (uint64_t id : st->holders()) sources.push_back(id);
    if (sources.empty()) {
      return make_error(ErrorCode::kNotFound, fmt::format("no member holds blob {}", crypto::blake3_to_hex(hash)));
    }
  }
  // Where the verified output stands: bytes before `delivered` went to the sink already.
  std::optional<uint64_t> size;
  uint64_t resume = options.range.start_bytes;
  uint64_t delivered = options.range.start_bytes;
  cpb::BlobGetResponse served;
  std::optional<Error> last_error;
  for (size_t attempt = 0; attempt < 2 * sources.size(); ++attempt) {
    cpb::Request req;
    auto* g = req.mutable_blob_get();
    g->set_hash(raw(hash));
    g->set_start_bytes(resume);
    g->set_end_bytes(options.range.end_bytes == UINT64_MAX ? 0 : options.range.end_bytes);
    auto ps = client.open_protocol_stream(kBlobAlpn, req, Target{sources[attempt % sources.size()]}, 10000);
    if (!ps) {
      last_error = ps.error();
      continue;
    }
    struct Closer {
      transport::Connection& c;
      ~Closer() { c.close(); }
    } closer{ps->conn};
    auto first = ps->stream.recv(kStreamRecvTimeoutMs);
    if (!first) {
      last_error = first.error();
      continue;
    }
    cpb::Response header;
    if (!*first || !header.ParseFromString(**first)) {
      last_error = Error(ErrorCode::kUnavailable, "the node ended the stream without an answer");
      continue;
    }
    if (header.has_error()) {
      last_error = rpc::from_error_info(header.error());
      // A request the node refuses (bad range, no permission) fails everywhere.
      if (last_error->code() == ErrorCode::kInvalidArgument || last_error->code() == ErrorCode::kUnauthorized) break;
      continue;
    }
    if (!header.has_blob_get()) return make_error(ErrorCode::kInternal, "the node answered a get with something else");
    if (size && *size != header.blob_get().size_bytes()) {
      last_error = Error(ErrorCode::kCorruption, "holders disagree on the blob's size");
      continue;
    }
    size = header.blob_get().size_bytes();
    const uint64_t end = std::min(options.range.end_bytes, *size);
    served = header.blob_get();
    served.set_start_bytes(std::min(options.range.start_bytes, *size));
    served.set_end_bytes(end);
    auto verifier = blob::RangeVerifier::create(hash, *size, {resume, options.range.end_bytes});
    if (!verifier) return std::unexpected(verifier.error());
    Status fed;
    while (fed && !verifier->is_complete()) {
      auto msg = ps->stream.recv(kStreamRecvTimeoutMs);
      if (!msg) {
        fed = std::unexpected(msg.error());
        break;
      }
      if (!*msg) break;
      const std::string& bytes = **msg;
      fed = verifier->feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                           [&](uint64_t offset, std::span<const uint8_t> data) -> Status {
                             // Trim the groups to the range, and skip what an earlier holder delivered.
                             const uint64_t from = std::max(offset, delivered);
                             const uint64_t to = std::min(offset + data.size(), end);
                             if (from >= to) return {};
                             if (auto s = sink(from, data.subspan(from - offset, to - from)); !s) return s;
                             delivered = to;
                             if (options.progress) options.progress(delivered - options.range.start_bytes);
                             return {};
                           });
    }
    if (verifier->is_complete()) return served;
    // A sink's own failure is final; a holder's is not.
    if (!fed && fed.error().code() != ErrorCode::kCorruption && fed.error().code() != ErrorCode::kUnavailable &&
        fed.error().code() != ErrorCode::kTimeout) {
      return std::unexpected(fed.error());
    }
    last_error = fed ? verifier->finish().error() : fed.error();
    resume = std::max(resume, verifier->resume_offset_bytes());
    ps->stream.reset();
  }
  return std::unexpected(last_error.value_or(Error(ErrorCode::kUnavailable, "no holder could be reached")));
}

Result<cpb::BlobStatusResponse> blob_status(Client& client, const crypto::Blake3Hash& hash, Target target) {
  cpb::Request req;
  req.mutable_blob_status()->set_hash(raw(hash));
  auto r = call_checked(client, req, target, cpb::Response::kBlobStatus);
  if (!r) return std::unexpected(r.error());
  return r->blob_status();
}

Result<cpb::BlobListResponse> blob_list(Client& client, const std::optional<crypto::Blake3Hash>& after, uint32_t limit,
                                        Target target) {
  cpb::Request req;
  auto* l = req.mutable_blob_list();
  if (after) l->set_after_hash(raw(*after));
  l->set_limit(limit);
  auto r = call_checked(client, req, target, cpb::Response::kBlobList);
  if (!r) return std::unexpected(r.error());
  return r->blob_list();
}

Status blob_tag_set(Client& client, const std::string& name, const crypto::Blake3Hash& hash) {
  cpb::Request req;
  req.mutable_blob_tag_set()->set_name(name);
  req.mutable_blob_tag_set()->set_hash(raw(hash));
  auto r = call_checked(client, req, {}, cpb::Response::kBlobTag);
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<bool> blob_tag_delete(Client& client, const std::string& name) {
  cpb::Request req;
  req.mutable_blob_tag_delete()->set_name(name);
  auto r = call_checked(client, req, {}, cpb::Response::kBlobTag);
  if (!r) return std::unexpected(r.error());
  return r->blob_tag().was_present();
}

Result<cpb::BlobTagResponse> blob_tag_list(Client& client, const std::string& after_name, uint32_t limit) {
  cpb::Request req;
  req.mutable_blob_tag_list()->set_after_name(after_name);
  req.mutable_blob_tag_list()->set_limit(limit);
  auto r = call_checked(client, req, {}, cpb::Response::kBlobTag);
  if (!r) return std::unexpected(r.error());
  return r->blob_tag();
}

Result<cpb::BlobGcResponse> blob_gc(Client& client, Target target) {
  cpb::Request req;
  req.mutable_blob_gc();
  // A GC of many blobs takes a while: one attempt, a long wait.
  auto r = client.call(req, target, 120000);
  if (!r) return std::unexpected(r.error());
  if (!r->has_blob_gc()) return make_error(ErrorCode::kInternal, "the node answered GC with something else");
  return r->blob_gc();
}

Result<cpb::BlobStatusResponse> blob_wait_replicas(Client& client, const crypto::Blake3Hash& hash, size_t replicas,
                                                   uint32_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  uint32_t pause_ms = 20;
  for (;;) {
    auto st = blob_status(client, hash);
    if (st && static_cast<size_t>(st->holders_size()) >= replicas) return st;
    if (Clock::now() >= deadline) {
      return make_error(ErrorCode::kTimeout,
                        fmt::format("{} of {} members hold blob {} after {} ms; replication goes on in the background",
                                    st ? st->holders_size() : 0, replicas, crypto::blake3_to_hex(hash), timeout_ms));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    pause_ms = std::min<uint32_t>(pause_ms * 2, 500);
  }
}

}  // namespace aspen::client
