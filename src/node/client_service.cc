// ClientService (client_service.h): the client protocol on ALPN "aspen-client".
//
// Reads are served here (linearizable ones via a batched ReadIndex, which also works on a
// follower); writes and administration need the leader: a follower forwards them over its
// own client connection to the leader (at most limits::kMaxForwardHops hops) and relays the
// answer, or answers NotLeader with the leader's address when it cannot.
#include <chrono>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/log.h"
#include "kv/alarms.h"
#include "kv/commands.h"
#include "kv/sessions.h"
#include "node/client_service.h"
#include "node/request_auth.h"
#include "node/routing.h"
#include "rpc/error_info.h"

namespace aspen::node::internal {

namespace {

RequestKind request_kind(cpb::Request::OpCase op) {
  switch (op) {
    case cpb::Request::kRead: return RequestKind::kRead;
    case cpb::Request::kBatchRead: return RequestKind::kBatchRead;
    case cpb::Request::kScan: return RequestKind::kScan;
    case cpb::Request::kWrite: return RequestKind::kWrite;
    case cpb::Request::kLeaseList: return RequestKind::kLeaseList;
    case cpb::Request::kGetHealth:
    case cpb::Request::kGetMetrics:
    case cpb::Request::kGetRaftMetrics:
    case cpb::Request::kGetLeader:
    case cpb::Request::kGetNodeInfo:
    case cpb::Request::kGetClusterTicket:
    case cpb::Request::kWhoAmI:
    case cpb::Request::kGetLogs:
    case cpb::Request::kGetPeers:
      return RequestKind::kStatus;
    default:
      return RequestKind::kAdmin;
  }
}

bool is_reserved_key(std::string_view key) { return key.starts_with(kReservedPrefix); }
// Client sessions live in the cluster's own keys, which clients cannot write.
static_assert(kv::kSessionKeyPrefix.starts_with(kReservedPrefix) && kv::kSessionCountKey.starts_with(kReservedPrefix));

// Client writes may not touch the cluster's own keys.
Status check_not_reserved(const kvpb::Command& cmd) {
  auto bad = [](std::string_view key) {
    return make_error(ErrorCode::kUnauthorized,
                      fmt::format("keys starting with '{}' are reserved for the cluster; '{}' cannot be written",
                                  kReservedPrefix, key.substr(0, 64)));
  };
  auto check_txn_ops = [&](const auto& ops) -> Status {
    for (const auto& op : ops) {
      if (op.has_put() && is_reserved_key(op.put().key())) return bad(op.put().key());
      if (op.has_delete_() && is_reserved_key(op.delete_().key())) return bad(op.delete_().key());
    }
    return {};
  };
  switch (cmd.op_case()) {
    case kvpb::Command::kPut:
      if (is_reserved_key(cmd.put().key())) return bad(cmd.put().key());
      break;
    case kvpb::Command::kDelete:
      if (is_reserved_key(cmd.delete_().key())) return bad(cmd.delete_().key());
      break;
    case kvpb::Command::kSetMulti:
      for (const auto& p : cmd.set_multi().puts()) {
        if (is_reserved_key(p.key())) return bad(p.key());
      }
      break;
    case kvpb::Command::kDeleteMulti:
      for (const auto& k : cmd.delete_multi().keys()) {
        if (is_reserved_key(k)) return bad(k);
      }
      break;
    case kvpb::Command::kCas:
      if (is_reserved_key(cmd.cas().key())) return bad(cmd.cas().key());
      break;
    case kvpb::Command::kCad:
      if (is_reserved_key(cmd.cad().key())) return bad(cmd.cad().key());
      break;
    case kvpb::Command::kAdd:
      if (is_reserved_key(cmd.add().key())) return bad(cmd.add().key());
      break;
    case kvpb::Command::kTxn:
      if (auto s = check_txn_ops(cmd.txn().success()); !s) return s;
      if (auto s = check_txn_ops(cmd.txn().failure()); !s) return s;
      break;
    case kvpb::Command::kLeaseExpire:
      return make_error(ErrorCode::kInvalidArgument, "LeaseExpire is decided by the leader; clients cannot send it");
    case kvpb::Command::OP_NOT_SET:
      return make_error(ErrorCode::kInvalidArgument, "the write names no command");
    default:
      break;
  }
  return {};
}

// A single-key read is a range over that key; the answer carries the key if it exists.
void fill_read(const kvpb::RangeResult& range, const std::string& key, cpb::ReadResponse* out) {
  for (const auto& kv : range.kvs()) {
    if (kv.key() != key) continue;
    out->set_found(true);
    *out->mutable_kv() = kv;
  }
}

ReadConsistency consistency_of(clientpb::Consistency c) {
  return c == clientpb::CONSISTENCY_STALE ? ReadConsistency::kStale : ReadConsistency::kLinearizable;
}

}  // namespace

cpb::Response error_reply(const NodeEnv& env, NodeCore* core, const Error& e) {
  cpb::Response resp;
  *resp.mutable_error() = rpc::to_error_info(e);
  if (e.code() == ErrorCode::kNotLeader && core != nullptr) {
    if (auto p = env.peers.lookup(core->leader())) *resp.mutable_error()->mutable_leader() = env.address_of(*p);
  }
  return resp;
}

ClientService::ClientService(NodeEnv& env, CorePort& port, rpc::HandlerRegistry& handlers, WatchService& watches)
    : env_(env), port_(port), handlers_(handlers), watches_(watches) {}

void ClientService::register_handlers() {
  using R = cpb::Request;
  auto bind = [this](void (ClientService::*fn)(const cpb::Request&, Reply)) {
    return [this, fn](const cpb::Request& req, Reply reply) { (this->*fn)(req, std::move(reply)); };
  };
  handlers_.add(R::kRead, "read", bind(&ClientService::handle_read));
  handlers_.add(R::kBatchRead, "batch_read", bind(&ClientService::handle_batch_read));
  handlers_.add(R::kScan, "scan", bind(&ClientService::handle_scan));
  handlers_.add(R::kWrite, "write", bind(&ClientService::handle_write));
  handlers_.add(R::kLeaseList, "lease_list", bind(&ClientService::handle_lease_list));
  handlers_.add(R::kRevokeToken, "revoke_token", bind(&ClientService::handle_revoke_token));
  handlers_.add(R::kWatchProgress, "watch_progress", [this](const cpb::Request&, Reply reply) {
    reply(error_reply(Error(ErrorCode::kInvalidArgument, "watch_progress is sent on an open watch's own stream")));
  });
  handlers_.add(R::kLogSubscribe, "log_subscribe", [this](const cpb::Request&, Reply reply) {
    reply(error_reply(Error(ErrorCode::kInvalidArgument,
                            fmt::format("log_subscribe is served on its own protocol: connect with ALPN {}", kLogsAlpn))));
  });
  // Answered in serve(), which holds the verified token.
  handlers_.add(R::kWhoAmI, "who_am_i", [this](const cpb::Request&, Reply reply) {
    reply(error_reply(Error(ErrorCode::kInternal, "who-am-i is answered before dispatch")));
  });
}

void ClientService::serve(transport::Stream& stream, std::string bytes, bool is_log_protocol) {
  env_.counters.client_requests.fetch_add(1, std::memory_order_relaxed);
  if (watches_.is_watch(stream)) {
    // A watch's stream carries further requests (watch_progress) to its watch.
    cpb::Request req;
    if (!req.ParseFromString(bytes)) req.Clear();
    return watches_.on_request(stream, req);
  }
  // One request per stream: a second one (a misbehaving client) is not executed, since its
  // answer could never be delivered; the stream is reset.
  if (!served_streams_.emplace(stream.connection_serial(), stream.id()).second) {
    env_.counters.client_errors.fetch_add(1, std::memory_order_relaxed);
    ASPEN_LOG_DEBUG("node {}: a second request on one client stream from key {}; stream reset", env_.config.node_id,
                    stream.peer_key().short_string());
    stream.reset();
    return;
  }
  transport::Stream st = stream;
  Reply reply = [this, st](cpb::Response resp) mutable {
    if (resp.has_error()) env_.counters.client_errors.fetch_add(1, std::memory_order_relaxed);
    // A relayed answer already names the leader that executed it.
    const bool is_leader_work = resp.has_write() || resp.has_membership();
    if (is_leader_work && !resp.has_served_by()) *resp.mutable_served_by() = env_.self_address();
    if (auto s = st.send_async_owned(resp.SerializeAsString()); !s) {
      ASPEN_LOG_DEBUG("node {}: could not answer a client: {}", env_.config.node_id, s.error().to_string());
      return;
    }
    st.finish();
  };
  // Before any parsing or work: a request over the rate is answered, never executed.
  if (!is_within_rate_limit(stream)) {
    env_.counters.client_rate_limited.fetch_add(1, std::memory_order_relaxed);
    const Knobs& k = env_.config.knobs;
    return reply(error_reply(Error(
        ErrorCode::kUnavailable,
        fmt::format("request rate limit reached: at most {} requests/s per connection (bursts of {}; set by the "
                    "node's --client-requests-per-s); this request was not executed, retry later",
                    k.client_requests_per_s, k.client_request_burst))));
  }
  cpb::Request req;
  if (!req.ParseFromString(bytes)) {
    return reply(error_reply(Error(ErrorCode::kInvalidArgument, "malformed request: not a clientpb.Request")));
  }
  if (port_.core() == nullptr) {
    return reply(error_reply(Error(ErrorCode::kUnavailable, "the node is shutting down")));
  }
  auto access = check_access(stream, req);
  if (!access) {
    env_.counters.client_refused.fetch_add(1, std::memory_order_relaxed);
    return reply(error_reply(access.error()));
  }
  if (req.op_case() == cpb::Request::kWhoAmI) {
    cpb::Response resp;
    auto* w = resp.mutable_who_am_i();
    w->set_public_key(stream.peer_key().to_string());
    if (const auto& t = *access) {
      w->set_token_id(std::string(t->id.begin(), t->id.end()));
      for (const auto& c : t->capabilities) w->add_capabilities(auth::format_capability(c));
      w->set_expires_s(t->expires_s);
      w->set_chain_depth(static_cast<uint32_t>(t->depth));
    }
    return reply(std::move(resp));
  }
  // What this member serves from its store (reads, listings, a watch's start, which also
  // depends on compactions) waits until the store shows every write it has acknowledged;
  // writes are ordered by the log instead. The wait is the apply's commit, well under a
  // millisecond. (Checked first: most requests need not wait, and go on without a closure.)
  if (req.op_case() != cpb::Request::kWrite && port_.is_store_behind_answers()) {
    return port_.when_store_shows_answers(
        [self = weak_from_this(), st = transport::Stream(stream), req = std::move(req), reply = std::move(reply),
         is_log_protocol]() mutable {
          if (auto s = self.lock(); s && s->port_.core() != nullptr) s->dispatch(st, std::move(req), std::move(reply), is_log_protocol);
        });
  }
  dispatch(stream, std::move(req), std::move(reply), is_log_protocol);
}

void ClientService::dispatch(transport::Stream& stream, cpb::Request req, Reply reply, bool is_log_protocol) {
  if (is_log_protocol) {
    if (req.op_case() != cpb::Request::kLogSubscribe) {
      return reply(error_reply(Error(ErrorCode::kInvalidArgument,
                                     fmt::format("ALPN {} serves only log_subscribe; other requests go to ALPN {}",
                                                 kLogsAlpn, kClientAlpn))));
    }
    return watches_.create(stream, watch::watch_request_for_log(req.log_subscribe()));
  }
  if (req.op_case() == cpb::Request::kWatchCreate) return watches_.create(stream, req.watch_create());
  // Timed from here to the answer, by kind (the per-operation latency histogram).
  Reply timed = [this, reply = std::move(reply), kind = request_kind(req.op_case()),
                 start = std::chrono::steady_clock::now()](cpb::Response resp) mutable {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    env_.counters.request_latency[static_cast<size_t>(kind)].observe_us(static_cast<uint64_t>(us.count()));
    reply(std::move(resp));
  };
  handlers_.dispatch(req, std::move(timed));
}

// ---------------------------------------------------------------------------------------
// Authorization (docs/security.md).

Result<std::optional<auth::VerifiedToken>> ClientService::check_access(const transport::Stream& stream,
                                                                       const cpb::Request& req) {
  using None = std::optional<auth::VerifiedToken>;
  if (is_open_request(req)) return None{};
  // A node of no cluster holds nothing to protect: it only waits for `init` or to be added.
  // (Judged by the applied state itself, not the membership view, which is refreshed a
  // moment after a snapshot installs the cluster's data.)
  if (!env_.peers.has_membership() && env_.store->applied_index() == 0) return None{};
  // A member relays requests it has authorized itself (forwarding to the leader).
  if (is_member(stream.peer_key())) return None{};
  env_.load_auth_root_key();
  if (!env_.auth_root_key) {
    return make_error(ErrorCode::kUnauthorized,
                      "this cluster has no root key yet (it is being initialized, or was initialized by a version "
                      "without capability tokens), so no request can be authorized");
  }
  if (req.auth_token().empty()) {
    return make_error(ErrorCode::kUnauthorized,
                      "no capability token was presented (aspen-cli: --token-file or ASPEN_TOKEN_FILE; see "
                      "docs/security.md)");
  }
  auto verified = verified_token(stream, req.auth_token());
  if (!verified) return std::unexpected(verified.error());
  if (auto s = authorize_request(req, *verified); !s) return std::unexpected(s.error());
  return None{std::move(*verified)};
}

Result<auth::VerifiedToken> ClientService::verified_token(const transport::Stream& stream, const std::string& token) {
  const uint64_t now_ms = env_.now_ms();
  const uint64_t serial = stream.connection_serial();
  if (auto it = token_cache_.find(serial); it != token_cache_.end()) {
    const CachedToken& c = it->second;
    if (c.token == token && now_ms < c.verified_at_ms + env_.config.knobs.token_cache_ms &&
        now_ms / 1000 < c.verified.expires_s) {
      return c.verified;
    }
  }
  auth::KeyBytes presenter{};
  const auto& peer = stream.peer_key().bytes();
  std::copy(peer.begin(), peer.end(), presenter.begin());
  auto v = auth::verify_token(token, *env_.auth_root_key, presenter, now_ms / 1000,
                              [this](const auth::TokenId& id) { return is_revoked(id); });
  env_.counters.tokens_verified.fetch_add(1, std::memory_order_relaxed);
  if (!v) {
    token_cache_.erase(serial);
    return std::unexpected(v.error());
  }
  if (token_cache_.size() >= limits::kMaxClientConnections && !token_cache_.contains(serial)) token_cache_.clear();
  token_cache_[serial] = CachedToken{token, *v, now_ms};
  return v;
}

bool ClientService::is_revoked(const auth::TokenId& id) const {
  auto r = env_.store->range(kv::key_range(revoked_token_key(id)));
  // Unreadable state fails closed: better an operator sees a refusal than a revoked token work.
  return !r || r->kvs_size() > 0;
}

bool ClientService::is_member(const transport::PublicKey& key) const {
  auto id = env_.peers.node_id_of(key);
  return id && env_.peers.members().contains(*id) && env_.peers.is_trusted(key, *id);
}

bool ClientService::is_within_rate_limit(const transport::Stream& stream) {
  const Knobs& k = env_.config.knobs;
  if (k.client_requests_per_s == 0) return true;
  const uint64_t now_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                    std::chrono::steady_clock::now().time_since_epoch())
                                                    .count());
  auto it = rate_buckets_.find(stream.connection_serial());
  if (it == rate_buckets_.end()) {
    if (is_member(stream.peer_key())) return true;  // relayed requests were limited where they came in
    it = rate_buckets_.emplace(stream.connection_serial(), TokenBucket(k.client_requests_per_s, k.client_request_burst, now_us))
             .first;
  }
  return it->second.try_take(now_us);
}

void ClientService::on_connection_closed(uint64_t connection_serial) {
  token_cache_.erase(connection_serial);
  rate_buckets_.erase(connection_serial);
}

void ClientService::on_stream_closed(const transport::Stream& stream, bool is_finished) {
  served_streams_.erase({stream.connection_serial(), stream.id()});
  watches_.on_stream_closed(stream, is_finished);
}

void ClientService::handle_revoke_token(const cpb::Request& req, Reply reply) {
  const auto& r = req.revoke_token();
  if (r.token_id().size() != auth::kTokenIdSizeBytes) {
    return reply(error_reply(Error(ErrorCode::kInvalidArgument,
                                   fmt::format("a token id is {} bytes (32 hex digits), got {} bytes",
                                               auth::kTokenIdSizeBytes, r.token_id().size()))));
  }
  if (!port_.core()->is_leader()) return forward_to_leader(req, std::move(reply));
  auth::TokenId id{};
  std::memcpy(id.data(), r.token_id().data(), id.size());
  const std::string key = revoked_token_key(id);
  kvpb::RangeRequest count;
  count.set_start(std::string(kRevokedTokenPrefix));
  count.set_is_prefix(true);
  count.set_is_count_only(true);
  count.set_limit(limits::kMaxScanResults);
  auto existing = env_.store->range(count);
  if (!existing) return reply(error_reply(existing.error()));
  if (existing->count() >= limits::kMaxRevokedTokens) {
    return reply(error_reply(Error(
        ErrorCode::kInvalidArgument,
        fmt::format("the cluster already holds {} revoked tokens (the limit); issue shorter-lived tokens instead",
                    limits::kMaxRevokedTokens))));
  }
  kvpb::Command cmd;
  cmd.mutable_put()->set_key(key);
  cmd.mutable_put()->set_value(std::to_string(r.expires_s()));
  port_.submit_write(std::move(cmd), [this, reply](const Response& w) {
    if (!w.write) return reply(error_reply(w.write.error()));
    cpb::Response resp;
    resp.mutable_revoke_token();
    reply(std::move(resp));
  });
}

void ClientService::handle_read(const cpb::Request& req, Reply reply) {
  port_.submit_read(kv::key_range(req.read().key()), consistency_of(req.read().consistency()),
              [this, reply, key = req.read().key()](const Response& r) {
                if (!r.read) return reply(error_reply(r.read.error()));
                cpb::Response resp;
                fill_read(*r.read, key, resp.mutable_read());
                reply(std::move(resp));
              });
}

void ClientService::handle_batch_read(const cpb::Request& req, Reply reply) {
  const auto& keys = req.batch_read().keys();
  if (static_cast<size_t>(keys.size()) > limits::kMaxBatchSize) {
    return reply(error_reply(Error(
        ErrorCode::kBatchTooLarge, fmt::format("{} keys in one batch read; the limit is {}", keys.size(), limits::kMaxBatchSize))));
  }
  // All keys join the same ReadIndex batch; answers are gathered in order.
  struct Gather {
    cpb::Response resp;
    size_t remaining = 0;
    std::optional<Error> error;
    Reply reply;
  };
  auto g = std::make_shared<Gather>();
  g->remaining = static_cast<size_t>(keys.size());
  g->reply = std::move(reply);
  for (int i = 0; i < keys.size(); ++i) g->resp.mutable_batch_read()->add_results();
  if (keys.empty()) return g->reply(std::move(g->resp));
  for (int i = 0; i < keys.size(); ++i) {
    port_.submit_read(kv::key_range(keys[i]), consistency_of(req.batch_read().consistency()),
                [this, g, i, key = keys[i]](const Response& r) {
                  if (!r.read) {
                    if (!g->error) g->error = r.read.error();
                  } else {
                    fill_read(*r.read, key, g->resp.mutable_batch_read()->mutable_results(i));
                  }
                  if (--g->remaining > 0) return;
                  if (g->error) return g->reply(error_reply(*g->error));
                  g->reply(std::move(g->resp));
                });
  }
}

void ClientService::handle_scan(const cpb::Request& req, Reply reply) {
  port_.submit_read(req.scan().range(), consistency_of(req.scan().consistency()), [this, reply](const Response& r) {
    if (!r.read) return reply(error_reply(r.read.error()));
    cpb::Response resp;
    *resp.mutable_scan()->mutable_result() = *r.read;
    reply(std::move(resp));
  });
}

void ClientService::handle_write(const cpb::Request& req, Reply reply) {
  if (auto s = check_not_reserved(req.write().command()); !s) return reply(error_reply(s.error()));
  if (!port_.core()->is_leader()) return forward_to_leader(req, std::move(reply));
  if (kv::grows_store(req.write().command())) {
    // While a storage alarm is raised, nothing that adds data is proposed (kv/alarms.h).
    auto kept = env_.store->range(kv::alarm_range(1));
    if (!kept) return reply(error_reply(kept.error()));
    if (auto alarms = kv::decode_alarms(*kept); !alarms.empty() && !is_session_repeat(req.write().command())) {
      return reply(error_reply(kv::alarm_refusal(alarms.front())));
    }
  }
  port_.submit_write(req.write().command(), [this, reply](const Response& r) {
    if (!r.write) return reply(error_reply(r.write.error()));
    cpb::Response resp;
    *resp.mutable_write()->mutable_result() = *r.write;
    reply(std::move(resp));
  });
}

bool ClientService::is_session_repeat(const kvpb::Command& cmd) const {
  // A write sent again in its session may already be applied; refusing it would tell the
  // client it was not. The session answers it (with its first result) instead.
  if (!cmd.has_session()) return false;
  auto rec = env_.store->range(kv::key_range(kv::session_key(cmd.session().client_id())));
  if (!rec || rec->kvs_size() == 0) return false;
  kvpb::SessionRecord r;
  return r.ParseFromString(rec->kvs(0).value()) && kv::session_has_seen(r, cmd.session().sequence());
}

void ClientService::handle_lease_list(const cpb::Request& req, Reply reply) {
  const auto& r = req.lease_list();
  const size_t limit = r.limit() == 0 ? limits::kMaxLeaseListPage
                                      : std::min<size_t>(r.limit(), limits::kMaxLeaseListPage);
  // One more than the page tells whether there is more.
  auto leases = env_.store->list_leases(r.after_id(), limit + 1);
  if (!leases) return reply(error_reply(leases.error()));
  cpb::Response resp;
  auto* out = resp.mutable_lease_list();  // set even when there is no lease: the answer is "none"
  out->set_has_more(leases->size() > limit);
  if (leases->size() > limit) leases->resize(limit);
  for (auto& l : *leases) *out->add_leases() = std::move(l);
  reply(std::move(resp));
}

// ---------------------------------------------------------------------------------------
// Forwarding to the leader.

void ClientService::forward_to_leader(cpb::Request req, Reply reply) {
  // The decision is route_request's (routing.h, unit-tested); this only carries it out.
  RouteInput in;
  in.self = env_.config.node_id;
  NodeCore& core = *port_.core();
  in.leader = core.leader();
  in.is_leader = core.is_leader();
  in.leader_silent_ms = uint64_t{core.raft().ticks_since_leader_contact()} * env_.config.knobs.tick_interval_ms;
  in.forward_hops = req.forward_hops();
  auto p = in.leader == kNoNode ? std::nullopt : env_.peers.lookup(in.leader);
  in.has_leader_address = p && !p->addrs.empty();
  in.forwards_in_flight = forwards_.size();
  const Route route = route_request(in, env_.config.knobs);
  if (route.kind == Route::Kind::kRefuse) return reply(error_reply(*route.error));
  ASPEN_ASSERT_MSG(route.kind == Route::Kind::kForward, "forward_to_leader is called on followers only");
  const NodeId leader = route.to;
  req.set_forward_hops(req.forward_hops() + 1);
  env_.counters.forwarded_requests.fetch_add(1, std::memory_order_relaxed);
  auto done = std::make_shared<bool>(false);
  uint64_t fid = next_forward_id_++;
  auto finish = [this, fid, done, reply](cpb::Response resp) {
    if (*done) return;
    *done = true;
    forwards_.erase(fid);
    reply(std::move(resp));
  };
  auto is_sent = std::make_shared<bool>(false);
  forwards_.emplace(fid, InFlight{leader, finish, is_sent});
  // Once answered (on_leader_changed says "not relayed, retry"), the request must never be
  // sent: the client's retry would apply it a second time. So every step below checks `done`.
  with_leader_connection([this, req = std::move(req), finish, done, is_sent](Result<transport::Connection> conn) {
    if (*done) return;
    if (!conn) {
      return finish(error_reply(
          Error(ErrorCode::kUnavailable, fmt::format("cannot reach the leader: {}", conn.error().message()))));
    }
    transport::StreamCallbacks cb;
    cb.on_message = [this, finish](transport::Stream&, std::string bytes) {
      cpb::Response resp;
      if (!resp.ParseFromString(bytes)) {
        return finish(error_reply(Error(ErrorCode::kInternal, "malformed answer from the leader")));
      }
      finish(std::move(resp));
    };
    cb.on_closed = [this, finish](transport::Stream&, std::optional<Error> err) {
      // A write whose answer was lost may have applied: say so (Timeout = unknown outcome).
      finish(error_reply(Error(
          ErrorCode::kTimeout, fmt::format("the connection to the leader ended before it answered ({}); the request "
                                           "may or may not have been applied",
                                           err ? err->message() : "stream finished"))));
    };
    conn->open_bi_async(std::move(cb), [this, bytes = req.SerializeAsString(), finish, done,
                                         is_sent](Result<transport::Stream> st) {
      if (*done) {
        if (st) st->reset();
        return;
      }
      if (!st) {
        forward_link_.conn.reset();
        return finish(error_reply(
            Error(ErrorCode::kUnavailable, fmt::format("cannot reach the leader: {}", st.error().message()))));
      }
      if (auto s = st->send_async(bytes); !s) return finish(error_reply(s.error()));
      *is_sent = true;
      st->finish();
    });
  });
}

void ClientService::on_leader_changed(NodeId leader) {
  std::vector<InFlight> stale;
  for (const auto& [id, f] : forwards_) {
    if (f.leader != leader) stale.push_back(f);
  }
  for (auto& f : stale) {
    if (!*f.is_sent) {
      // Never reached the old leader: safe to retry anywhere.
      f.finish(error_reply(Error(ErrorCode::kUnavailable, "leadership changed before the request was relayed; retry")));
      continue;
    }
    // The old leader may be gone: its answer would never come. The request may still commit
    // (its entry may have reached others), so the outcome is unknown, as with a timeout.
    f.finish(error_reply(Error(ErrorCode::kTimeout,
                                       "leadership changed while the request was relayed to the old leader; it may or "
                                       "may not have been applied")));
  }
}

void ClientService::with_leader_connection(std::function<void(Result<transport::Connection>)> fn) {
  auto p = env_.peers.lookup(port_.core()->leader());
  if (!p) return fn(make_error(ErrorCode::kUnavailable, "the leader's address is unknown"));
  ForwardLink& fl = forward_link_;
  if (fl.key == p->key && fl.conn && fl.conn->is_open()) return fn(*fl.conn);
  if (fl.key != p->key) {
    if (fl.conn) fl.conn->close();
    fl.conn.reset();
    fl.is_connecting = false;
    fl.key = p->key;
    auto stale = std::move(fl.waiters);
    fl.waiters.clear();
    for (auto& w : stale) w(make_error(ErrorCode::kUnavailable, "the leader changed while connecting; retry"));
  }
  fl.waiters.push_back(std::move(fn));
  if (fl.is_connecting) return;
  fl.is_connecting = true;
  env_.endpoint->connect_async(p->key, p->addrs, kClientAlpn,
                           [self = weak_from_this(), key = p->key](Result<transport::Connection> conn) {
                             auto s = self.lock();
                             if (!s) return;
                             ForwardLink& l = s->forward_link_;
                             if (l.key != key) return;  // the leader changed meanwhile
                             l.is_connecting = false;
                             if (conn) l.conn = *conn;
                             auto waiters = std::move(l.waiters);
                             l.waiters.clear();
                             for (auto& w : waiters) w(conn);
                           });
}

}  // namespace aspen::node::internal
