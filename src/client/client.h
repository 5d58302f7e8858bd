// The Aspen client library: what aspen-cli, aspen-bench, tests and applications use to talk
// to a cluster over the client protocol (ALPN "aspen-client", proto/aspen/client.proto).
//
// A Client is created from a cluster ticket (or a list of peers). It owns a QUIC endpoint
// with the identity it is given (a fresh one otherwise), dials nodes by their public keys,
// and sends one request per stream, each carrying the client's capability token (whose
// audience must be the client's key; docs/security.md). Requests that must reach the leader (writes, linearizable reads, administration)
// go to the node believed to lead; on NotLeader the client follows the leader hint in the
// error, on Unavailable/Timeout/connection failures it retries on another node with bounded
// exponential backoff until the call's deadline. A Client is also a kv::KeyValueStore, so
// the coordination primitives run unchanged against a real cluster.
//
// Writes (and membership changes, InitCluster) are resent only when they surely did not
// execute: NotLeader, Unavailable, ProposalDropped, or no connection/stream before sending.
// A write whose outcome is unknown (the node answered Timeout, the connection died after
// the request left, or the deadline passed while waiting) fails with Timeout and a message
// saying it may or may not have been applied; it is never resent behind the caller's back.
// Validation that needs no cluster (key and value sizes, command shape) happens before
// anything is sent.
//
// Thread-safe: many threads may call one Client concurrently (each call is its own stream).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aspen/client.pb.h"
#include "auth/token.h"
#include "client/watch.h"
#include "cluster/ticket.h"
#include "core/error.h"
#include "kv/key_value_store.h"

namespace aspen::client {

namespace cpb = aspen::clientpb;

struct ClientOptions {
  // The whole call, retries included.
  uint32_t timeout_ms = 10000;
  uint32_t connect_timeout_ms = 5000;
  uint32_t initial_backoff_ms = 20;
  uint32_t max_backoff_ms = 250;
  // How long one attempt of a retryable request (a read, a status query) waits for its
  // answer before it is tried on another node.
  uint32_t attempt_timeout_ms = 5000;
  // How long a write waits for its answer before the call gives up on that node with an
  // ambiguous Timeout (the write may have applied; it is not resent). A healthy cluster
  // answers in milliseconds; this bounds how long a crashed leader can hold a caller.
  uint32_t write_attempt_timeout_ms = 1000;
  // Who the client is (the key its tokens name). Unset: a fresh key, good for `cluster init`
  // (which makes a token for it) or for requests that need no token (health).
  std::optional<transport::NodeIdentity> identity;
  // A capability token (serialized SignedToken bytes, auth/token_text.h decodes the text
  // form) presented with every request. Empty: none.
  std::string token;
};

// What `cluster init` leaves with the operator: the cluster's root secret (never sent
// anywhere; keep it offline, mode 0600) and a token made with it for the client's own key,
// granting everything (full on every key, admin, delegate). The client uses it from then on.
struct InitResult {
  cpb::InitClusterResponse response;
  auth::SeedBytes root_seed{};
  std::string admin_token;
};
// How long the admin token of `cluster init` is valid.
inline constexpr uint64_t kInitAdminTokenTtlS = 365ull * 24 * 3600;

// Where a call goes.
struct Target {
  // 0 = the leader (found and followed automatically). Otherwise exactly this node, with
  // no redirect (health, metrics, node info of one node, stale reads from one node).
  uint64_t node_id = 0;
};

class Client : public kv::KeyValueStore, public kv::ChangeNotifier {
 public:
  static Result<std::unique_ptr<Client>> connect(std::string_view ticket, ClientOptions options = {});
  static Result<std::unique_ptr<Client>> connect(cluster::Ticket ticket, ClientOptions options = {});
  ~Client() override;

  // One request, with leader finding and retries as described above. The response's error
  // (ErrorInfo) is turned into the Error; retryable errors are retried until the deadline.
  Result<cpb::Response> call(const cpb::Request& request, Target target = {});
  Result<cpb::Response> call(const cpb::Request& request, Target target, uint32_t timeout_ms);

  // --- key-value ---
  Result<std::optional<kvpb::KeyValue>> read(std::string_view key,
                                             cpb::Consistency consistency = cpb::CONSISTENCY_LINEARIZABLE,
                                             Target target = {});
  Result<kvpb::RangeResult> scan(const kvpb::RangeRequest& range,
                                 cpb::Consistency consistency = cpb::CONSISTENCY_LINEARIZABLE,
                                 Target target = {});
  // Watches a key, a prefix or a range (client/watch.h); open once this returns. The Client
  // must outlive the Watch.
  Result<std::unique_ptr<Watch>> watch(const WatchOptions& options);
  // Subscribes to the committed log (ALPN "aspen-logs", client/watch.h): every entry that
  // changed a key under the prefix, whole, in index order. Open once this returns.
  Result<std::unique_ptr<Watch>> subscribe_log(const LogSubscribeOptions& options);
  // kv::KeyValueStore
  Result<kvpb::CommandResult> execute(kvpb::Command cmd) override;
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& request) override;
  Result<std::vector<kvpb::Lease>> list_leases() override;
  // kv::ChangeNotifier, through a watch on the key.
  Result<uint64_t> wait_for_delete(std::string_view key, uint64_t after_revision, uint64_t timeout_ms) override;
  // A stale read at that revision from the believed leader (which serves the watches), which
  // waits for its own apply if the event came before it.
  Result<kvpb::RangeResult> range_at(const kvpb::RangeRequest& request, uint64_t revision) override;
  // One exchange, a one-shot watch (WatchCreateRequest.is_once) that a member (the believed
  // leader first) answers when the key goes, with the range as of that revision; another
  // member takes over the wait if that one is lost.
  Result<kv::DeletionSeen> wait_for_delete_then_read(std::string_view key, uint64_t after_revision,
                                                     const kvpb::RangeRequest* then_read, uint64_t timeout_ms) override;
  Result<std::unique_ptr<kv::ChangeWaiter>> watch_range(std::string_view start, std::string_view end) override;

  // --- cluster ---
  Result<cpb::GetHealthResponse> health(Target target = {});
  Result<cpb::GetRaftMetricsResponse> raft_metrics(Target target = {});
  Result<std::string> metrics_text(Target target = {});
  // The node's recent log lines (its in-memory ring), oldest first: at most max_lines (0: the
  // node's default, limits::kDefaultGetLogsLines) at min_level or above ("" = all). Admin only.
  Result<cpb::GetLogsResponse> recent_logs(Target target = {}, uint32_t max_lines = 0, std::string_view min_level = {});
  Result<cpb::GetLeaderResponse> leader();
  Result<cpb::GetNodeInfoResponse> node_info(Target target = {});
  Result<std::string> cluster_ticket();
  // To the ticket's first peer (a node that is not yet in any cluster): creates the root key,
  // hands its public half to the node and returns the secret and an admin token (above).
  Result<InitResult> init_cluster();
  Result<cpb::MembershipResponse> add_learner(const cpb::NodeAddress& node);
  Result<cpb::MembershipResponse> change_membership(const std::vector<uint64_t>& voters, bool retain_as_learners);
  Result<cpb::MembershipResponse> remove_node(uint64_t node_id);
  Result<cpb::TriggerSnapshotResponse> trigger_snapshot(Target target = {});
  // Storage alarms raised in the cluster (as the answering node's applied state has them).
  Result<std::vector<kvpb::StorageAlarm>> alarm_list(Target target = {});
  // Clears the alarm of one member (0: of every member); returns those cleared. Needs admin.
  Result<std::vector<kvpb::StorageAlarm>> alarm_disarm(uint64_t member_id = 0);

  // The nodes this client knows (from the ticket, then from leader hints).
  std::vector<cpb::NodeAddress> known_nodes() const;

  // A stream to one node (the believed leader when target.node_id is 0) on another protocol
  // the node serves (ALPN `alpn`: blob transfers, client/blob_client.h), on a connection of
  // its own, with `request` (and the client's token) sent as its first message. No retries.
  // Close the connection when done with the stream.
  struct ProtocolStream {
    transport::Connection conn;
    transport::Stream stream;
    uint64_t node_id = 0;  // 0 when not known yet
  };
  Result<ProtocolStream> open_protocol_stream(const std::string& alpn, const cpb::Request& request, Target target,
                                              uint32_t timeout_ms);

  // --- identity and authorization ---
  const transport::PublicKey& public_key() const;
  // The token presented from the next request on (empty: none). Thread-safe.
  void set_token(std::string token);
  // What the node verified the token to grant.
  Result<cpb::WhoAmIResponse> who_am_i(Target target = {});
  // Revokes a token (and every token delegated from it) cluster-wide. Needs admin.
  Status revoke_token(const auth::TokenId& id, uint64_t expires_s);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  // Opens the streams of a watch or (is_log_protocol) a log subscription.
  static Watch::Opener watch_opener(Impl* impl, uint64_t pinned_node_id, bool is_log_protocol);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aspen::client
