// ClientService: the client protocol on ALPN "aspen-client", one component of the shell.
// One request per stream, answered once; except a watch, whose stream WatchService serves.
//
// Reads are served here (linearizable ones via a batched ReadIndex, which also works on a
// follower); writes and administration need the leader: a follower relays them over its
// own client connection to the leader and relays the answer back, or refuses with the
// leader's address; which of these happens is route_request's decision (routing.h).
//
// Threads: the loop only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "core/token_bucket.h"
#include "node/internal/node_env.h"
#include "node/watch_service.h"
#include "rpc/handler_registry.h"

namespace aspen::node::internal {

class ClientService : public std::enable_shared_from_this<ClientService> {
 public:
  using Reply = rpc::Reply;
  ClientService(NodeEnv& env, CorePort& port, rpc::HandlerRegistry& handlers, WatchService& watches);
  ClientService(const ClientService&) = delete;
  ClientService& operator=(const ClientService&) = delete;

  // Registers the key-value handlers (read, batch read, scan, write, lease list).
  void register_handlers();
  // One request from a client stream: parsed, dispatched, answered on the same stream. On
  // ALPN "aspen-logs" (is_log_protocol) the only request is log_subscribe, served as a watch.
  void serve(transport::Stream& stream, std::string bytes, bool is_log_protocol = false);
  // Relays a request that needs the leader (route_request decides whether it may).
  void forward_to_leader(cpb::Request req, Reply reply);
  // A new leader (or none) is known: requests relayed to another one can no longer be
  // answered by it.
  void on_leader_changed(NodeId leader);
  // A client connection ended: its verified token is forgotten.
  void on_connection_closed(uint64_t connection_serial);
  // A client stream can deliver nothing more.
  // is_finished: the client finished its side cleanly (it may still read the answer).
  void on_stream_closed(const transport::Stream& stream, bool is_finished);
  cpb::Response error_reply(const Error& e) const { return internal::error_reply(env_, port_.core(), e); }
  // May the caller at the other end of `stream` make this request (a request arriving on
  // another ALPN of the node, e.g. blob transfers)? As for the client protocol's own.
  Result<std::optional<auth::VerifiedToken>> authorize(const transport::Stream& stream, const cpb::Request& req) {
    return check_access(stream, req);
  }

 private:
  // serve()'s work once the request passed the checks (and, for all but writes, once the
  // store shows every acknowledged write: CorePort::when_store_shows_answers).
  void dispatch(transport::Stream& stream, cpb::Request req, Reply reply, bool is_log_protocol);
  // A node-to-node connection to the leader, for relaying client requests.
  struct ForwardLink {
    transport::PublicKey key;
    std::optional<transport::Connection> conn;
    bool is_connecting = false;
    std::vector<std::function<void(Result<transport::Connection>)>> waiters;
  };
  // A request relayed to a leader and not answered yet.
  struct InFlight {
    NodeId leader = kNoNode;
    std::function<void(cpb::Response)> finish;
    std::shared_ptr<bool> is_sent;  // the leader may have received it
  };

  void handle_read(const cpb::Request& req, Reply reply);
  void handle_batch_read(const cpb::Request& req, Reply reply);
  void handle_scan(const cpb::Request& req, Reply reply);
  void handle_write(const cpb::Request& req, Reply reply);
  void handle_lease_list(const cpb::Request& req, Reply reply);
  void handle_revoke_token(const cpb::Request& req, Reply reply);
  // May the caller at the other end of `stream` make this request? Verifies its token (or
  // takes the verification cached for its connection) and checks the request's needs
  // (request_auth.h). The verified token, when there was one to check.
  Result<std::optional<auth::VerifiedToken>> check_access(const transport::Stream& stream, const cpb::Request& req);
  Result<auth::VerifiedToken> verified_token(const transport::Stream& stream, const std::string& token);
  bool is_revoked(const auth::TokenId& id) const;
  // Takes a token from the connection's request-rate bucket (knobs.client_requests_per_s);
  // false when it is empty. Members relaying requests are not limited.
  bool is_within_rate_limit(const transport::Stream& stream);
  bool is_member(const transport::PublicKey& key) const;
  // Whether `cmd` is a write its session has seen before (a client's resend).
  bool is_session_repeat(const kvpb::Command& cmd) const;
  void with_leader_connection(std::function<void(Result<transport::Connection>)> fn);

  NodeEnv& env_;
  CorePort& port_;
  rpc::HandlerRegistry& handlers_;            // [start] filled before serving, then read-only
  WatchService& watches_;                     // [start] streams whose first request was watch_create
  // A token verified for a connection; reused while the same bytes come on it, for at most
  // knobs.token_cache_ms (so a revocation takes effect within that time). Bounded by
  // limits::kMaxClientConnections: the map is cleared when it would grow past it.
  struct CachedToken {
    std::string token;
    auth::VerifiedToken verified;
    uint64_t verified_at_ms = 0;
  };
  std::map<uint64_t, CachedToken> token_cache_;  // [loop] by connection serial
  // Streams that delivered their one request and are still open (bounded by the transport's
  // stream limits): a second request on one is refused, never executed.
  std::set<std::pair<uint64_t, int64_t>> served_streams_;  // [loop]
  // One request-rate bucket per client connection, by serial; dropped when the connection
  // ends, so bounded by the transport's client connection limit.
  std::map<uint64_t, TokenBucket> rate_buckets_;  // [loop]
  ForwardLink forward_link_;                  // [loop]
  std::map<uint64_t, InFlight> forwards_;     // [loop] by forward id; bounded by route_request
  uint64_t next_forward_id_ = 1;              // [loop] never leaves the process
};

}  // namespace aspen::node::internal
