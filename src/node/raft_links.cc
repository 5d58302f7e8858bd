// Raft traffic between nodes on ALPN "raft-auth".
//
// Each node dials every peer it must send to and keeps one stream per peer open (ordered
// delivery; one connection per peer). The first message on every stream is a RaftHello
// naming the sender and proving the cluster cookie; after it come serialized raft Messages.
// The receiving side checks, in order: the TLS-proven key belongs to a member (or, on a node
// without a membership yet, anyone: the cookie is then the gate), the cookie digest matches,
// the claimed node id matches the key's record, and every message's `from` is that id.
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/assert.h"
#include "core/encoding.h"
#include "core/log.h"
#include "node/internal/shell.h"

namespace aspen::node::internal {

std::string Shell::raft_hello() const {
  clusterpb::RaftHello h;
  h.set_node_id(config_.node_id);
  h.set_cookie_digest(cookie_digest_);
  h.add_addrs(endpoint_->local_addr().to_string());
  return h.SerializeAsString();
}

void Shell::send_raft_messages(std::vector<pb::Message>& msgs) {
  for (auto& m : msgs) {
    if (m.to() == config_.node_id) continue;
    if (m.type() == pb::MSG_SNAP) {
      send_snapshot(m.to(), m);
    } else {
      send_raft(m.to(), m.SerializeAsString());
    }
  }
}

void Shell::send_raft(NodeId to, std::string bytes) {
  auto peer = peers_.lookup(to);
  if (!peer || peer->addrs.empty()) {
    counters_.raft_messages_dropped.fetch_add(1, std::memory_order_relaxed);
    ASPEN_LOG_DEBUG("node {}: no address for node {}; message dropped", config_.node_id, to);
    core_->raft().report_unreachable(to);
    return;
  }
  OutLink& link = out_links_[to];
  if (link.key != peer->key) {
    if (link.stream) link.stream->reset();
    link = OutLink{};
    link.key = peer->key;
  }
  if (link.stream) {
    const size_t size_bytes = bytes.size();
    auto s = link.stream->send_async_owned(std::move(bytes));  // appends can be megabytes: no copy
    if (s) {
      counters_.raft_messages_out.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    counters_.raft_messages_dropped.fetch_add(1, std::memory_order_relaxed);
    if (s.error().code() == ErrorCode::kMessageTooLarge) {
      ASPEN_LOG_ERROR("node {}: message to node {} too large ({} bytes): {}", config_.node_id, to, size_bytes,
                      s.error().message());
    }
    // The stream is failed or over its buffer: start over with a fresh one.
    link.stream->reset();
    link.stream.reset();
    core_->raft().report_unreachable(to);
    return;
  }
  if (link.queue.size() >= config_.knobs.max_queued_raft_messages_per_peer) {
    link.queue.pop_front();
    counters_.raft_messages_dropped.fetch_add(1, std::memory_order_relaxed);
  }
  link.queue.push_back(std::move(bytes));
  dial_raft(to);
}

void Shell::dial_raft(NodeId to) {
  OutLink& link = out_links_[to];
  if (link.is_connecting || link.stream) return;
  auto now = std::chrono::steady_clock::now();
  if (now < link.retry_after) {
    // In backoff: Raft retransmits, so drop rather than pile up.
    counters_.raft_messages_dropped.fetch_add(link.queue.size(), std::memory_order_relaxed);
    link.queue.clear();
    return;
  }
  auto peer = peers_.lookup(to);
  if (!peer) return;
  link.is_connecting = true;
  uint64_t gen = ++link.generation;
  auto fail = [this, to, gen]([[maybe_unused]] const Error& e) {
    auto it = out_links_.find(to);
    if (it == out_links_.end() || it->second.generation != gen) return;
    OutLink& l = it->second;
    l.is_connecting = false;
    l.backoff_ms = std::min<uint32_t>(l.backoff_ms == 0 ? config_.knobs.raft_dial_backoff_min_ms : l.backoff_ms * 2,
                                      config_.knobs.raft_dial_backoff_max_ms);
    l.retry_after = std::chrono::steady_clock::now() + std::chrono::milliseconds(l.backoff_ms);
    counters_.raft_messages_dropped.fetch_add(l.queue.size(), std::memory_order_relaxed);
    l.queue.clear();
    if (e.code() == ErrorCode::kUnauthorized && e.message() != l.last_dial_refusal) {
      // A key mismatch does not heal by retrying: say so where an operator looks, once per cause.
      ASPEN_LOG_WARN("node {}: cannot reach node {}: {} (is the key this node has for it stale? check --peers and "
                     "the join ticket)",
                     config_.node_id, to, e.to_string());
      l.last_dial_refusal = e.message();
    } else {
      ASPEN_LOG_DEBUG("node {}: cannot reach node {}: {}", config_.node_id, to, e.to_string());
    }
    if (core_) core_->raft().report_unreachable(to);
  };
  endpoint_->connect_async(
      peer->key, peer->addrs, kRaftAlpn,
      [self = weak_from_this(), to, gen, fail](Result<transport::Connection> conn) {
        auto s = self.lock();
        if (!s) return;
        if (!conn) return fail(conn.error());
        transport::StreamCallbacks cb;
        cb.on_message = [](transport::Stream&, std::string) {};  // peers answer on their own links
        cb.on_closed = [weak = s->weak_from_this(), to, gen](transport::Stream&, [[maybe_unused]] std::optional<Error> err) {
          auto sh = weak.lock();
          if (!sh) return;
          auto it = sh->out_links_.find(to);
          if (it == sh->out_links_.end() || it->second.generation != gen) return;
          it->second.stream.reset();
          ASPEN_LOG_DEBUG("node {}: raft link to node {} closed: {}", sh->config_.node_id, to,
                          err ? err->to_string() : "finished");
        };
        conn->open_bi_async(std::move(cb), [weak = s->weak_from_this(), to, gen, fail](Result<transport::Stream> st) {
          auto sh = weak.lock();
          if (!sh) return;
          if (!st) return fail(st.error());
          auto it = sh->out_links_.find(to);
          if (it == sh->out_links_.end() || it->second.generation != gen) {
            st->reset();
            return;
          }
          OutLink& l = it->second;
          l.is_connecting = false;
          l.backoff_ms = 0;
          if (auto h = st->send_async(sh->raft_hello()); !h) return fail(h.error());
          l.stream = *st;
          while (!l.queue.empty()) {
            if (!l.stream->send_async(l.queue.front())) break;
            sh->counters_.raft_messages_out.fetch_add(1, std::memory_order_relaxed);
            l.queue.pop_front();
          }
          l.queue.clear();
        });
      });
}

bool Shell::accept_raft_connection(transport::Connection& conn) {
  if (peers_.is_trusted(conn.peer_key())) return true;
  counters_.raft_refused.fetch_add(1, std::memory_order_relaxed);
  ASPEN_LOG_WARN("node {}: refused a Raft connection from key {}: not a member of this cluster", config_.node_id,
                 conn.peer_key().to_string());
  return false;
}


void Shell::on_raft_message(transport::Stream& stream, std::string bytes) {
  if (is_stopping_ || !core_) return;
  auto& inbound = inbound_raft_;
  std::pair<uint64_t, int64_t> k{stream.connection_serial(), stream.id()};
  auto it = inbound.find(k);
  auto refuse = [&](std::string_view why) {
    counters_.raft_refused.fetch_add(1, std::memory_order_relaxed);
    ASPEN_LOG_WARN("node {}: refused Raft traffic from key {}: {}", config_.node_id, stream.peer_key().to_string(),
                   why);
    inbound.erase(k);
    stream.reset();
    stream.connection().close();
  };
  if (it == inbound.end()) {
    clusterpb::RaftHello hello;
    if (!hello.ParseFromString(bytes) || hello.node_id() == kNoNode) return refuse("malformed greeting");
    if (hello.cookie_digest() != cookie_digest_) return refuse("wrong cluster cookie");
    if (hello.node_id() == config_.node_id) return refuse("it claims this node's own id");
    auto known = peers_.lookup(hello.node_id());
    if (known && known->key != stream.peer_key() && peers_.has_membership()) {
      return refuse(fmt::format("node {} is registered with a different key", hello.node_id()));
    }
    if (!peers_.is_trusted(stream.peer_key())) return refuse("not a member of this cluster");
    std::vector<transport::SocketAddr> addrs;
    for (const auto& a : hello.addrs()) {
      if (auto sa = transport::SocketAddr::parse(a)) addrs.push_back(*sa);
    }
    if (auto stale = peers_.learn_from_hello(hello.node_id(), stream.peer_key(), std::move(addrs))) {
      ASPEN_LOG_WARN("node {}: node {} proved key {}, but --peers or the join ticket names key {} for it (a ticket of "
                     "an earlier cluster?); dialling the proven key",
                     config_.node_id, hello.node_id(), stream.peer_key().to_string(), stale->to_string());
    }
    inbound.emplace(k, hello.node_id());
    if (hello.is_snapshot()) {
      InboundSnapshot in;
      in.path = fmt::format("{}/{}-{}{}", config_.data_dir, k.first, k.second, kIncomingSnapshotExtension);
      in.file.reset(std::fopen(in.path.c_str(), "wb"));
      if (!in.file) {
        ASPEN_LOG_ERROR("node {}: cannot create {}: {}", config_.node_id, in.path, std::strerror(errno));
        return refuse("could not store the snapshot");
      }
      inbound_snapshots_.emplace(k, std::move(in));
    }
    return;
  }
  if (auto snap = inbound_snapshots_.find(k); snap != inbound_snapshots_.end()) {
    InboundSnapshot& in = snap->second;
    if (bytes.empty() || !in.message.empty()) {
      std::filesystem::remove(in.path);
      inbound_snapshots_.erase(snap);
      return refuse(bytes.empty() ? "empty snapshot frame" : "snapshot data after its final message");
    }
    if (bytes[0] == kSnapshotMessageTag) {
      in.message = bytes.substr(1);
      return;
    }
    std::string_view chunk = std::string_view(bytes).substr(1);
    std::string prefix;
    put_varint(prefix, chunk.size());
    in.size_bytes += prefix.size() + chunk.size();
    const char* problem = bytes[0] != kSnapshotChunkTag                        ? "unknown snapshot frame"
                          : in.size_bytes > limits::kMaxStreamedSnapshotBytes ? "snapshot over the size limit"
                          : nullptr;
    if (problem == nullptr && (std::fwrite(prefix.data(), 1, prefix.size(), in.file.get()) != prefix.size() ||
                               std::fwrite(chunk.data(), 1, chunk.size(), in.file.get()) != chunk.size())) {
      ASPEN_LOG_ERROR("node {}: cannot write a received snapshot to {}: {}", config_.node_id, in.path,
                      std::strerror(errno));
      problem = "could not store the snapshot (disk full?)";
    }
    if (problem != nullptr) {
      in.file.reset();
      std::filesystem::remove(in.path);
      inbound_snapshots_.erase(snap);
      return refuse(problem);
    }
    return;
  }
  pb::Message m;
  if (!m.ParseFromString(bytes)) return refuse("malformed Raft message");
  if (m.from() != it->second || m.to() != config_.node_id) {
    return refuse(fmt::format("message claims to be from {} to {} on node {}'s stream", m.from(), m.to(), it->second));
  }
  counters_.raft_messages_in.fetch_add(1, std::memory_order_relaxed);
  if (auto s = core_->step(m); !s) {
    ASPEN_LOG_DEBUG("node {}: dropped a message from node {}: {}", config_.node_id, m.from(), s.error().to_string());
  }
  schedule_pump();
}

void Shell::send_snapshot(NodeId to, pb::Message m) {
  // One at a time per peer: the peer's progress stays in snapshot state until that one is
  // reported, so a second request is simply dropped.
  if (is_snapshot_in_flight(to)) return;
  auto peer = peers_.lookup(to);
  if (!peer || peer->addrs.empty() || is_stopping_) {
    core_->raft().report_snapshot(to, true);
    return;
  }
  snapshots_in_flight_.insert(to);
  counters_.snapshots_sent.fetch_add(1, std::memory_order_relaxed);
  clusterpb::RaftHello hello;
  hello.ParseFromString(raft_hello());
  hello.set_is_snapshot(true);
  // Dial from the loop (the endpoint is safe to use here), stream from the snapshot sender:
  // it reads the whole state machine, and blocking sends wait for the peer's flow control,
  // which a loop task must never do.
  endpoint_->connect_async(
      peer->key, peer->addrs, kRaftAlpn,
      [self = weak_from_this(), ep = endpoint_, store = store_, node_id = config_.node_id, to,
       hello = hello.SerializeAsString(), m = std::move(m)](Result<transport::Connection> conn) mutable {
        auto report = [ep, self, to](bool failed) {
          ep->post([self, to, failed] {
            auto s = self.lock();
            if (!s || !s->core_) return;
            s->snapshots_in_flight_.erase(to);
            s->core_->raft().report_snapshot(to, failed);
            if (failed) ASPEN_LOG_WARN("node {}: sending a snapshot to node {} failed", s->config_.node_id, to);
            s->schedule_pump();
          });
        };
        if (!conn) return report(true);
        auto shell = self.lock();
        if (!shell) return;
        auto job = [conn = *conn, hello = std::move(hello), m = std::move(m), store, node_id, to, report]() mutable {
          auto st = conn.open_bi();
          bool ok = st.has_value() && st->send(hello).has_value();
          uint64_t sent_bytes = 0;
          // One read transaction: the chunks and the metadata describe the same instant,
          // which may be later than the core's MsgSnap (the follower then acknowledges a
          // higher index, which the leader's progress accepts).
          auto meta = !ok ? Result<pb::SnapshotMetadata>(make_error(ErrorCode::kUnavailable, "no stream"))
                          : store->stream_snapshot([&](std::string_view chunk) -> Status {
                              std::string frame;
                              frame.reserve(1 + chunk.size());
                              frame.push_back(kSnapshotChunkTag);
                              frame.append(chunk);
                              sent_bytes += frame.size();
                              return st->send_owned(std::move(frame), limits::kReadTimeoutMs);
                            });
          ok = meta.has_value();
          if (ok) {
            m.mutable_snapshot()->clear_data();
            *m.mutable_snapshot()->mutable_metadata() = *meta;
            ok = st->send(std::string(1, kSnapshotMessageTag) + m.SerializeAsString()).has_value();
          }
          if (ok) {
            ASPEN_LOG_INFO("node {}: sent a snapshot at index {} ({} bytes) to node {}", node_id, meta->index(),
                           sent_bytes, to);
            st->finish();
            // The receiver finishes its side once it has stepped the snapshot.
            auto end = st->recv(limits::kReadTimeoutMs * 3);
            ok = end.has_value() && !end->has_value();
          } else if (!meta) {
            ASPEN_LOG_WARN("node {}: snapshot for node {} failed: {}", node_id, to, meta.error().to_string());
          }
          if (st && !ok) st->reset();
          report(!ok);
        };
        if (!shell->snapshot_sender_.submit(std::move(job))) report(true);
      });
}

void Shell::drop_staged_snapshots_up_to(Index index) {
  for (auto it = staged_snapshots_.begin(); it != staged_snapshots_.end();) {
    if (it->first.first > index) {
      ++it;
      continue;
    }
    std::error_code ec;
    std::filesystem::remove(it->second, ec);
    it = staged_snapshots_.erase(it);
  }
}

void Shell::on_raft_stream_closed(transport::Stream& stream, const std::optional<Error>& error) {
  std::pair<uint64_t, int64_t> k{stream.connection_serial(), stream.id()};
  auto greeted = inbound_raft_.find(k);
  auto snap = inbound_snapshots_.find(k);
  if (snap != inbound_snapshots_.end()) {
    InboundSnapshot in = std::move(snap->second);
    inbound_snapshots_.erase(snap);
    const bool is_written = in.file != nullptr && std::fflush(in.file.get()) == 0;
    in.file.reset();
    bool is_staged = false;
    if (greeted != inbound_raft_.end() && !error && core_ && !is_stopping_) {
      pb::Message m;
      if (is_written && m.ParseFromString(in.message) && m.type() == pb::MSG_SNAP && m.from() == greeted->second &&
          m.to() == config_.node_id && m.snapshot().data().empty()) {
        counters_.raft_messages_in.fetch_add(1, std::memory_order_relaxed);
        const auto& meta = m.snapshot().metadata();
        ASPEN_LOG_INFO("node {}: received a snapshot at index {} ({} bytes) from node {}", config_.node_id,
                       meta.index(), in.size_bytes, m.from());
        // The storage thread reads the data from the file when the core asks to install it.
        // The same snapshot received twice keeps its first file, which the storage thread
        // may already be reading.
        auto [it, is_new] = staged_snapshots_.try_emplace({meta.index(), meta.term()}, in.path);
        auto s = core_->step(m);
        if (is_new) {
          // A snapshot the core does not take (older than what it has) is never installed.
          const auto& taken = core_->raft().log().unstable_snapshot();
          is_staged = s.has_value() && taken && taken->metadata().index() == meta.index() &&
                      taken->metadata().term() == meta.term();
          if (!is_staged) staged_snapshots_.erase(it);
        }
        if (s) {
          stream.finish();
          schedule_pump();
        } else {
          stream.reset();
        }
      } else {
        counters_.raft_refused.fetch_add(1, std::memory_order_relaxed);
        ASPEN_LOG_WARN("node {}: refused a malformed snapshot from key {}", config_.node_id,
                       stream.peer_key().to_string());
        stream.reset();
      }
    }
    if (!is_staged) {
      std::error_code ec;
      std::filesystem::remove(in.path, ec);
    }
  }
  if (greeted != inbound_raft_.end()) inbound_raft_.erase(greeted);
}

}  // namespace aspen::node::internal
