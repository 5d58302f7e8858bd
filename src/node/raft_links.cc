// Raft traffic between nodes on ALPN "raft-auth".
//
// Each node dials every peer it must send to and keeps one stream per peer open (ordered
// delivery; one connection per peer). The first message on every stream is a RaftHello
// naming the sender and proving the cluster cookie on this connection; the receiving side
// answers with its own proof (raft_stream_rules.h), and only then come serialized Raft
// messages. The receiving side checks, in order: the TLS-proven key belongs to a member (or,
// on a node without a membership yet, anyone: the cookie is then the gate), the cookie proof,
// the claimed node id matches the key's record, and every message's `from` is that id.
#include "node/raft_links.h"

#include <fmt/format.h>
#include <sodium.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "aspen/cluster.pb.h"
#include "core/assert.h"
#include "core/log.h"
#include "node/disk_space.h"
#include "node/raft_stream_rules.h"

namespace aspen::node::internal {

RaftLinks::RaftLinks(NodeEnv& env, CorePort& port)
    : env_(env), port_(port), snapshot_sender_("snap-send", limits::kMaxQueuedSnapshotSends) {}

void RaftLinks::stop() { snapshot_sender_.stop(); }

ChannelFacts RaftLinks::dialled_facts(const transport::Connection& conn) const {
  return ChannelFacts{conn.channel_binding(), env_.endpoint->public_key(), conn.peer_key()};
}

ChannelFacts RaftLinks::accepted_facts(const transport::Stream& stream) const {
  return ChannelFacts{stream.channel_binding(), stream.peer_key(), env_.endpoint->public_key()};
}

std::vector<std::string> RaftLinks::own_addrs() const { return {env_.endpoint->local_addr().to_string()}; }

void RaftLinks::send(std::vector<pb::Message>& msgs) {
  const int64_t wall_us = env_.wall_clock_us();
  const uint64_t now_ms = NodeEnv::steady_ms();
  for (auto& m : msgs) {
    if (m.to() == env_.config.node_id) continue;
    if (m.type() == pb::MSG_SNAP) {
      send_snapshot(m.to(), m);
    } else {
      // Heartbeats carry the clock, their answers the echo (clock drift detection).
      env_.peer_monitor.stamp(m, wall_us, now_ms);
      send_one(m.to(), m.SerializeAsString());
    }
  }
}

void RaftLinks::send_one(NodeId to, std::string bytes) {
  auto& counters = env_.counters;
  auto peer = env_.peers.lookup(to);
  if (!peer || peer->addrs.empty()) {
    counters.raft_messages_dropped.fetch_add(1, std::memory_order_relaxed);
    ASPEN_LOG_DEBUG("node {}: no address for node {}; message dropped", env_.config.node_id, to);
    if (auto* core = port_.core()) core->raft().report_unreachable(to);
    return;
  }
  OutLink& link = out_[to];
  if (link.key != peer->key) {
    if (link.stream) link.stream->reset();
    link = OutLink{};
    link.key = peer->key;
  }
  if (link.stream && !link.is_proven && std::chrono::steady_clock::now() > link.proof_deadline) {
    // A peer that holds the stream open without answering the greeting gets nothing.
    link.stream->reset();
    link.stream.reset();
    on_dial_failed(to, link.generation,
                   Error(ErrorCode::kTimeout, "no answer to the greeting (is it an Aspen node of this cluster?)"));
  }
  if (link.stream && link.is_proven) {
    const size_t size_bytes = bytes.size();
    auto s = link.stream->send_async_owned(std::move(bytes));  // appends can be megabytes: no copy
    if (s) {
      counters.raft_messages_out.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    counters.raft_messages_dropped.fetch_add(1, std::memory_order_relaxed);
    if (s.error().code() == ErrorCode::kMessageTooLarge) {
      ASPEN_LOG_ERROR("node {}: message to node {} too large ({} bytes): {}", env_.config.node_id, to, size_bytes,
                      s.error().message());
    }
    // The stream is failed or over its buffer: start over with a fresh one.
    link.stream->reset();
    link.stream.reset();
    if (auto* core = port_.core()) core->raft().report_unreachable(to);
    return;
  }
  if (link.queue.size() >= env_.config.knobs.max_queued_raft_messages_per_peer) {
    link.queue.pop_front();
    counters.raft_messages_dropped.fetch_add(1, std::memory_order_relaxed);
  }
  link.queue.push_back(std::move(bytes));
  if (!link.stream) dial(to);
}

void RaftLinks::flush_queue(OutLink& l) {
  while (!l.queue.empty()) {
    if (!l.stream->send_async(l.queue.front())) break;
    env_.counters.raft_messages_out.fetch_add(1, std::memory_order_relaxed);
    l.queue.pop_front();
  }
  env_.counters.raft_messages_dropped.fetch_add(l.queue.size(), std::memory_order_relaxed);
  l.queue.clear();
}

void RaftLinks::on_greeting_answer(NodeId to, uint64_t generation, transport::Stream& stream, std::string_view bytes) {
  auto it = out_.find(to);
  if (it == out_.end() || it->second.generation != generation || !it->second.stream) return;
  OutLink& l = it->second;
  Status s = l.is_proven ? Status(make_error(ErrorCode::kUnauthorized, "it sent more than one answer on a Raft link"))
                         : check_greeting_ack(bytes, to, env_.cookie_key, dialled_facts(stream.connection()));
  if (!s) {
    env_.counters.raft_refused.fetch_add(1, std::memory_order_relaxed);
    // Once per cause, where an operator looks; the retries back off (on_dial_failed).
    if (s.error().message() != l.last_dial_refusal) {
      ASPEN_LOG_WARN("node {}: refused node {} at key {}: {}", env_.config.node_id, to, stream.peer_key().to_string(),
                     s.error().message());
      l.last_dial_refusal = s.error().message();
    }
    l.stream->reset();
    l.stream.reset();
    return on_dial_failed(to, generation, s.error());
  }
  l.is_proven = true;
  l.backoff_ms = 0;  // only a peer that proved the cookie resets the backoff
  flush_queue(l);
}

void RaftLinks::on_dial_failed(NodeId to, uint64_t generation, const Error& e) {
  auto it = out_.find(to);
  if (it == out_.end() || it->second.generation != generation) return;
  const Knobs& knobs = env_.config.knobs;
  OutLink& l = it->second;
  l.is_connecting = false;
  l.backoff_ms = std::min<uint32_t>(l.backoff_ms == 0 ? knobs.raft_dial_backoff_min_ms : l.backoff_ms * 2,
                                    knobs.raft_dial_backoff_max_ms);
  l.retry_after = std::chrono::steady_clock::now() + std::chrono::milliseconds(l.backoff_ms);
  env_.counters.raft_messages_dropped.fetch_add(l.queue.size(), std::memory_order_relaxed);
  l.queue.clear();
  if (e.code() == ErrorCode::kUnauthorized && e.message() != l.last_dial_refusal) {
    // A key mismatch does not heal by retrying: say so where an operator looks, once per cause.
    ASPEN_LOG_WARN("node {}: cannot reach node {}: {} (is the key this node has for it stale? check --peers and "
                   "the join ticket)",
                   env_.config.node_id, to, e.to_string());
    l.last_dial_refusal = e.message();
  } else {
    ASPEN_LOG_DEBUG("node {}: cannot reach node {}: {}", env_.config.node_id, to, e.to_string());
  }
  env_.peer_monitor.on_unreachable(to, NodeEnv::steady_ms());
  if (auto* core = port_.core()) {
    core->raft().report_unreachable(to);
    port_.schedule_pump();
  }
}

void RaftLinks::dial(NodeId to) {
  OutLink& link = out_[to];
  if (link.is_connecting || link.stream) return;
  auto now = std::chrono::steady_clock::now();
  if (now < link.retry_after) {
    // In backoff: Raft retransmits, so drop rather than pile up.
    env_.counters.raft_messages_dropped.fetch_add(link.queue.size(), std::memory_order_relaxed);
    link.queue.clear();
    return;
  }
  auto peer = env_.peers.lookup(to);
  if (!peer) return;
  link.is_connecting = true;
  const uint64_t gen = ++link.generation;
  env_.endpoint->connect_async(peer->key, peer->addrs, kRaftAlpn, [weak = weak_from_this(), to,
                                                                    gen](Result<transport::Connection> conn) {
    auto self = weak.lock();
    if (!self) return;
    if (!conn) return self->on_dial_failed(to, gen, conn.error());
    // A PING after two heartbeats of silence: a follower's link to a leader whose process
    // died goes quiet, and the PING comes back as ICMP unreachable (on_peer_unreachable).
    conn->set_keep_alive_ms(2 * self->env_.config.knobs.heartbeat_ms);
    transport::StreamCallbacks cb;
    // The peer answers our greeting here, and nothing else: it sends on its own link.
    cb.on_message = [weak, to, gen](transport::Stream& stream, std::string bytes) {
      if (auto links = weak.lock()) links->on_greeting_answer(to, gen, stream, bytes);
    };
    cb.on_closed = [weak, to, gen](transport::Stream&, [[maybe_unused]] std::optional<Error> err) {
      auto links = weak.lock();
      if (!links) return;
      auto it = links->out_.find(to);
      if (it == links->out_.end() || it->second.generation != gen) return;
      it->second.stream.reset();
      ASPEN_LOG_DEBUG("node {}: raft link to node {} closed: {}", links->env_.config.node_id, to,
                      err ? err->to_string() : "finished");
    };
    conn->open_bi_async(std::move(cb), [weak, to, gen](Result<transport::Stream> st) {
      auto links = weak.lock();
      if (!links) return;
      if (!st) return links->on_dial_failed(to, gen, st.error());
      auto it = links->out_.find(to);
      if (it == links->out_.end() || it->second.generation != gen) {
        st->reset();
        return;
      }
      OutLink& l = it->second;
      l.is_connecting = false;
      const NodeEnv& e = links->env_;
      auto hello = make_greeting(e.config.node_id, e.cookie_key, links->dialled_facts(st->connection()),
                                 links->own_addrs(), false);
      if (auto h = st->send_async(hello); !h) return links->on_dial_failed(to, gen, h.error());
      l.stream = *st;
      l.is_proven = false;
      l.proof_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limits::kConnectTimeoutMs);
    });
  });
}

void RaftLinks::on_peer_unreachable(const transport::PublicKey& key) {
  const auto id = env_.peers.node_id_of(key);
  if (!id || *id == env_.config.node_id) return;
  ASPEN_LOG_DEBUG("node {}: node {} is unreachable: its address refused our datagrams", env_.config.node_id, *id);
  env_.peer_monitor.on_unreachable(*id, NodeEnv::steady_ms());
  if (auto* core = port_.core()) {
    core->raft().report_unreachable(*id);
    port_.schedule_pump();
  }
}

void RaftLinks::on_peers_changed() {
  for (auto it = out_.begin(); it != out_.end();) {
    auto p = env_.peers.lookup(it->first);
    if (!p || p->key != it->second.key) {
      if (it->second.stream) it->second.stream->reset();
      it = out_.erase(it);
    } else {
      ++it;
    }
  }
}

bool RaftLinks::accept_connection(transport::Connection& conn) {
  if (env_.peers.is_trusted(conn.peer_key())) return true;
  env_.counters.raft_refused.fetch_add(1, std::memory_order_relaxed);
  ASPEN_LOG_WARN("node {}: refused a Raft connection from key {}: not a member of this cluster", env_.config.node_id,
                 conn.peer_key().to_string());
  return false;
}

void RaftLinks::refuse(transport::Stream& stream, const StreamKey& k, std::string_view why) {
  env_.counters.raft_refused.fetch_add(1, std::memory_order_relaxed);
  ASPEN_LOG_WARN("node {}: refused Raft traffic from key {}: {}", env_.config.node_id, stream.peer_key().to_string(),
                 why);
  if (auto in = inbound_snapshots_.find(k); in != inbound_snapshots_.end()) {
    in->second.file.reset();
    std::error_code ec;
    std::filesystem::remove(in->second.path, ec);
    inbound_snapshots_.erase(in);
  }
  greeted_.erase(k);
  stream.reset();
  stream.connection().close();
}

void RaftLinks::on_message(transport::Stream& stream, std::string bytes) {
  // Read first: the arrival time of a heartbeat (or its answer) is part of the clock estimate.
  const int64_t wall_us = env_.wall_clock_us();
  NodeCore* core = port_.core();
  if (core == nullptr) return;
  const StreamKey k{stream.connection_serial(), stream.id()};
  auto it = greeted_.find(k);
  if (it == greeted_.end()) {
    const ChannelFacts facts = accepted_facts(stream);
    auto greeting = check_greeting(bytes, env_.config.node_id, env_.cookie_key, env_.peers, facts);
    if (!greeting) return refuse(stream, k, greeting.error().message());
    // Our own proof: the dialler sends nothing more until it has checked it.
    if (auto s = stream.send_async(make_greeting_ack(env_.config.node_id, env_.cookie_key, facts)); !s) {
      return refuse(stream, k, "could not answer the greeting");
    }
    const NodeId from = greeting->from;
    if (auto stale = env_.peers.learn_from_hello(from, stream.peer_key(), std::move(greeting->addrs))) {
      ASPEN_LOG_WARN("node {}: node {} proved key {}, but --peers or the join ticket names key {} for it (a ticket of "
                     "an earlier cluster?); dialling the proven key",
                     env_.config.node_id, from, stream.peer_key().to_string(), stale->to_string());
    }
    greeted_.emplace(k, from);
    if (greeting->is_snapshot) {
      Inbound in{SnapshotReception(limits::kMaxStreamedSnapshotBytes), {}, {nullptr, &std::fclose}};
      in.path = fmt::format("{}/{}-{}{}", env_.config.data_dir, k.first, k.second, kIncomingSnapshotExtension);
      in.file.reset(std::fopen(in.path.c_str(), "wb"));
      if (!in.file) {
        ASPEN_LOG_ERROR("node {}: cannot create {}: {}", env_.config.node_id, in.path, std::strerror(errno));
        return refuse(stream, k, "could not store the snapshot");
      }
      inbound_snapshots_.emplace(k, std::move(in));
    }
    return;
  }
  if (inbound_snapshots_.contains(k)) return on_snapshot_frame(stream, k, bytes);
  auto checked = check_stream_message(bytes, it->second, env_.config.node_id);
  if (!checked) return refuse(stream, k, checked.error().message());
  const pb::Message& m = *checked;
  env_.counters.raft_messages_in.fetch_add(1, std::memory_order_relaxed);
  if (auto notice = env_.peer_monitor.on_received(m, wall_us, NodeEnv::steady_ms())) {
    const std::string line = describe(*notice, env_.config.node_id, env_.config.clock_offset_warn_ms);
    if (notice->kind == ClockNotice::Kind::kPastThreshold) {
      ASPEN_LOG_WARN("{}", line);
    } else {
      ASPEN_LOG_INFO("{}", line);
    }
  }
  const uint64_t hlc_refused_before = core->hlc().refused_total();
  auto s = core->step(m);
  if (const uint64_t grew = core->hlc().refused_total() - hlc_refused_before; grew > 0) {
    // A peer's clock (or a forged stamp) far ahead of ours: counted, and logged at the 1st,
    // 2nd, 4th, 8th, ... occurrence. Raft processed the message all the same.
    const uint64_t n = env_.counters.hlc_refused.fetch_add(grew, std::memory_order_relaxed) + grew;
    if (std::bit_floor(n) > n - grew) {  // a power of two in (n - grew, n]
      ASPEN_LOG_WARN("node {}: {} ({} refused so far)", env_.config.node_id, core->last_hlc_refusal(), n);
    }
  }
  if (!s) {
    if (s.error().code() == ErrorCode::kInvalidArgument) {
      // Something no correct peer sends (the core names it). Counted, and logged where an
      // operator looks, at most at the 1st, 2nd, 4th, 8th, ... occurrence.
      const uint64_t n = env_.counters.raft_messages_refused.fetch_add(1, std::memory_order_relaxed) + 1;
      if ((n & (n - 1)) == 0) {
        ASPEN_LOG_WARN("node {}: {} ({} refused so far)", env_.config.node_id, s.error().message(), n);
      }
    } else {
      ASPEN_LOG_DEBUG("node {}: dropped a message from node {}: {}", env_.config.node_id, m.from(),
                      s.error().to_string());
    }
  }
  port_.schedule_pump();
}

void RaftLinks::on_snapshot_frame(transport::Stream& stream, const StreamKey& k, std::string_view bytes) {
  Inbound& in = inbound_snapshots_.at(k);
  auto frame = in.reception.on_frame(bytes);
  if (frame.kind == SnapshotReception::Frame::Kind::kRefuse) return refuse(stream, k, frame.why);
  if (frame.kind != SnapshotReception::Frame::Kind::kAppend) return;
  if (std::fwrite(frame.record.data(), 1, frame.record.size(), in.file.get()) != frame.record.size()) {
    ASPEN_LOG_ERROR("node {}: cannot write a received snapshot to {}: {}", env_.config.node_id, in.path,
                    std::strerror(errno));
    return refuse(stream, k, "could not store the snapshot (disk full?)");
  }
  // Every few MiB: is the reserve still free? A snapshot that cannot fit is refused before
  // it fills the disk the log and the state machine need.
  const uint64_t received = in.reception.size_bytes();
  if (received / kSnapshotSpaceCheckBytes != (received - frame.record.size()) / kSnapshotSpaceCheckBytes) {
    if (auto s = check_snapshot_space(received, false, disk_free_bytes(env_.config.data_dir),
                                      env_.config.storage_min_free_bytes);
        !s) {
      ASPEN_LOG_WARN("node {}: {}", env_.config.node_id, s.error().message());
      return refuse(stream, k, "not enough disk for the snapshot");
    }
  }
}

void RaftLinks::on_stream_closed(transport::Stream& stream, const std::optional<Error>& error) {
  const StreamKey k{stream.connection_serial(), stream.id()};
  auto greeted = greeted_.find(k);
  const NodeId from = greeted == greeted_.end() ? kNoNode : greeted->second;
  if (greeted != greeted_.end()) greeted_.erase(greeted);
  auto snap = inbound_snapshots_.find(k);
  if (snap == inbound_snapshots_.end()) return;
  Inbound in = std::move(snap->second);
  inbound_snapshots_.erase(snap);
  const bool is_written = in.file != nullptr && std::fflush(in.file.get()) == 0;
  in.file.reset();
  if (from != kNoNode && !error && is_written && port_.core() != nullptr) {
    on_snapshot_end(stream, std::move(in), from);
    return;
  }
  std::error_code ec;
  std::filesystem::remove(in.path, ec);
}

void RaftLinks::on_snapshot_end(transport::Stream& stream, Inbound in, NodeId from) {
  NodeCore& core = *port_.core();
  auto m = in.reception.on_end(from, env_.config.node_id);
  std::error_code ec;
  if (!m) {
    env_.counters.raft_refused.fetch_add(1, std::memory_order_relaxed);
    ASPEN_LOG_WARN("node {}: refused a snapshot from key {}: {}", env_.config.node_id, stream.peer_key().to_string(),
                   m.error().message());
    stream.reset();
    std::filesystem::remove(in.path, ec);
    return;
  }
  if (auto space = check_snapshot_space(in.reception.size_bytes(), true, disk_free_bytes(env_.config.data_dir),
                                       env_.config.storage_min_free_bytes);
      !space) {
    // Not stepped: the node keeps its state and the leader sends a snapshot again later.
    ASPEN_LOG_WARN("node {}: refused a snapshot from node {}: {}", env_.config.node_id, from, space.error().message());
    stream.reset();
    std::filesystem::remove(in.path, ec);
    return;
  }
  env_.counters.raft_messages_in.fetch_add(1, std::memory_order_relaxed);
  const auto& meta = m->snapshot().metadata();
  ASPEN_LOG_INFO("node {}: received a snapshot at index {} ({} bytes) from node {}", env_.config.node_id, meta.index(),
                 in.reception.size_bytes(), from);
  // The storage thread reads the data from the file when the core asks to install it.
  const bool is_new = staged_.stage(meta.index(), meta.term(), in.path);
  auto s = core.step(*m);
  const auto& taken = core.raft().log().unstable_snapshot();
  const bool is_taken = s.has_value() && taken && taken->metadata().index() == meta.index() &&
                        taken->metadata().term() == meta.term();
  if (auto drop = staged_.settle(meta.index(), meta.term(), is_new, is_taken)) std::filesystem::remove(*drop, ec);
  if (!is_new) std::filesystem::remove(in.path, ec);
  if (s) {
    stream.finish();
    port_.schedule_pump();
  } else {
    stream.reset();
  }
}

void RaftLinks::drop_staged_up_to(Index index) {
  for (const auto& path : staged_.drop_up_to(index)) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
}

void RaftLinks::send_snapshot(NodeId to, pb::Message m) {
  NodeCore* core = port_.core();
  if (core == nullptr) return;
  // One at a time per peer: the peer's progress stays in snapshot state until that one is
  // reported, so a second request is simply dropped.
  if (snapshots_in_flight_.contains(to)) return;
  auto peer = env_.peers.lookup(to);
  if (!peer || peer->addrs.empty()) {
    core->raft().report_snapshot(to, true);
    return;
  }
  snapshots_in_flight_.insert(to);
  env_.counters.snapshots_sent.fetch_add(1, std::memory_order_relaxed);
  // Dial from the loop (the endpoint is safe to use here), stream from the snapshot sender:
  // it reads the whole state machine, and blocking sends wait for the peer's flow control,
  // which a loop task must never do.
  env_.endpoint->connect_async(
      peer->key, peer->addrs, kRaftAlpn,
      [weak = weak_from_this(), ep = env_.endpoint, store = env_.store, node_id = env_.config.node_id, to,
       cookie_key = env_.cookie_key, local_key = env_.endpoint->public_key(), addrs = own_addrs(),
       send_timeout_ms = env_.config.knobs.snapshot_send_timeout_ms,
       m = std::move(m)](Result<transport::Connection> conn) mutable {
        auto report = [ep, weak, to](bool failed) {
          ep->post([weak, to, failed] {
            auto links = weak.lock();
            if (!links) return;
            links->snapshots_in_flight_.erase(to);
            auto* now_core = links->port_.core();
            if (now_core == nullptr) return;
            now_core->raft().report_snapshot(to, failed);
            if (failed) ASPEN_LOG_WARN("node {}: sending a snapshot to node {} failed", links->env_.config.node_id, to);
            links->port_.schedule_pump();
          });
        };
        if (!conn) return report(true);
        auto links = weak.lock();
        if (!links) return;
        auto job = [conn = *conn, cookie_key = std::move(cookie_key), local_key, addrs = std::move(addrs),
                    m = std::move(m), store, node_id, to, report, send_timeout_ms]() mutable {
          const ChannelFacts facts{conn.channel_binding(), local_key, conn.peer_key()};
          auto st = conn.open_bi();
          bool ok = st.has_value() && st->send(make_greeting(node_id, cookie_key, facts, addrs, true)).has_value();
          if (ok) {
            // Not one byte of the state before the peer proved the cookie.
            auto answer = st->recv(limits::kReadTimeoutMs);
            Status proven = !answer ? Status(std::unexpected(answer.error()))
                            : !answer->has_value()
                                ? Status(make_error(ErrorCode::kUnavailable, "the peer ended the stream"))
                                : check_greeting_ack(**answer, to, cookie_key, facts);
            if (!proven) {
              ASPEN_LOG_WARN("node {}: not sending a snapshot to node {}: {}", node_id, to, proven.error().message());
              ok = false;
            }
          }
          uint64_t sent_bytes = 0;
          const auto send_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(send_timeout_ms);
          // One read transaction: the chunks and the metadata describe the same instant,
          // which may be later than the core's MsgSnap (the follower then acknowledges a
          // higher index, which the leader's progress accepts).
          auto meta = !ok ? Result<pb::SnapshotMetadata>(make_error(ErrorCode::kUnavailable, "no stream"))
                          : store->stream_snapshot([&](std::string_view chunk) -> Status {
                              // The read transaction pins every page it sees: LMDB cannot
                              // reuse pages freed since, so a receiver that reads slowly
                              // would grow the leader's store without bound. Past the
                              // deadline the send is abandoned (and the transaction with it);
                              // the leader sends a fresh snapshot later.
                              if (std::chrono::steady_clock::now() > send_deadline) {
                                return make_error(ErrorCode::kTimeout,
                                                  fmt::format("the snapshot took longer than {} ms to send (knob "
                                                              "snapshot_send_timeout_ms)",
                                                              send_timeout_ms));
                              }
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
        if (!links->snapshot_sender_.submit(std::move(job))) report(true);
      });
}

}  // namespace aspen::node::internal
