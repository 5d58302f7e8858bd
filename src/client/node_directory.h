// The nodes a Client knows: each node's identity and addresses, at most one open
// "aspen-client" connection per node (shared by every call to it), and which node is believed
// to lead. Internal to the client library (client.cc); not part of its API.
//
// Nodes are named by public key, the only identity a ticket always carries (a ticket peer's
// node id may be 0 = unknown); node ids are filled in when a response names them. The order
// in which nodes were learned is kept: ticket peers first, so the first ticket peer is found
// at index 0 (InitCluster goes there).
//
// Thread-safe. Concurrent callers wanting the same node share one dial: the first dials
// without holding the lock, the others wait for its outcome (bounded by their deadlines).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "aspen/client.pb.h"
#include "core/error.h"
#include "transport/address_book.h"
#include "transport/endpoint.h"
#include "transport/identity.h"

namespace aspen::client::internal {

using Clock = std::chrono::steady_clock;

inline constexpr const char* kClientAlpn = "aspen-client";
inline constexpr const char* kLogsAlpn = "aspen-logs";  // log subscriptions
// The dial timeout per node when the directory knows other nodes to fail over to.
inline constexpr uint32_t kFailoverConnectTimeoutMs = 1000;
// How long an unreachable or silent node is avoided.
inline constexpr uint32_t kSuspectMs = 1500;

// While a request waits for its answer, its connection sends a keep-alive PING after this
// much silence (an idle connection waits the endpoint's keep_alive_ms). A node killed with
// requests in flight that it had already acknowledged at the QUIC level sends nothing more,
// and nothing of ours is left to resend: the PING is what meets the ICMP "port unreachable"
// that ends the attempts at once (transport/unreachable.cc). Two Raft heartbeats, as the
// nodes' own links use.
inline constexpr uint32_t kAwaitingAnswerKeepAliveMs = 200;

// A connection handed out by the directory, with the generation that lets a caller drop
// exactly this connection (and not a newer one another thread dialled meanwhile), and the
// count of requests awaiting answers on it (AwaitingAnswer).
struct NodeConnection {
  transport::Connection conn;
  uint64_t generation = 0;
  std::shared_ptr<std::atomic<uint32_t>> awaiting;
};

// Held while a request on `nc` waits for its answer: the first one switches the connection
// to the short keep-alive, the last one back to the idle one. Two threads crossing zero at
// once may leave the idle keep-alive on while one request waits; that only slows the notice
// of a dead node back to the idle keep-alive, until the next request.
class AwaitingAnswer {
 public:
  explicit AwaitingAnswer(NodeConnection& nc);
  ~AwaitingAnswer();
  AwaitingAnswer(const AwaitingAnswer&) = delete;
  AwaitingAnswer& operator=(const AwaitingAnswer&) = delete;

 private:
  NodeConnection& nc_;
};

class NodeDirectory {
 public:
  NodeDirectory(transport::Endpoint& endpoint, uint32_t connect_timeout_ms);

  // Adds a node or updates what is known about it: a non-zero node id replaces 0, non-empty
  // addresses replace the old ones.
  void upsert(uint64_t node_id, const transport::PublicKey& key, std::vector<transport::SocketAddr> addrs);
  // The same from a wire NodeAddress. InvalidArgument for a bad key or address; an address
  // with no key (node_id only) is ignored.
  Status upsert(const clientpb::NodeAddress& address);

  size_t size() const;
  // Keys in the order nodes were learned (ticket peers first).
  std::vector<transport::PublicKey> keys() const;
  std::optional<transport::PublicKey> find(uint64_t node_id) const;
  uint64_t node_id_of(const transport::PublicKey& key) const;
  // "node 3 (abcdefghij)" or "abcdefghij" when the id is unknown, for error messages.
  std::string describe(const transport::PublicKey& key) const;
  std::vector<clientpb::NodeAddress> addresses() const;
  // The addresses known for a node (empty if it is unknown): for dialling another protocol.
  std::vector<transport::SocketAddr> addrs_of(const transport::PublicKey& key) const;

  std::optional<transport::PublicKey> leader() const;
  void set_leader(const transport::PublicKey& key);
  // Forgets the leader only if it is still `key` (another thread may have learned better).
  void forget_leader(const transport::PublicKey& key);

  // A node that could not be reached or went silent is avoided for a while: rotation skips
  // it while other nodes remain, and a NotLeader hint naming it (a follower that has not yet
  // noticed the leader died) is not followed. Any answer from the node clears it.
  void mark_suspect(const transport::PublicKey& key);
  void clear_suspect(const transport::PublicKey& key);
  bool is_suspect(const transport::PublicKey& key) const;
  // The first node at or after `rotation` (in learned order) that is not suspect; if all are,
  // the node at `rotation`.
  transport::PublicKey pick(uint64_t rotation) const;

  // The node's open connection, dialling it if needed. Dialling waits at most the connect
  // timeout and never past `deadline`.
  Result<NodeConnection> connection(const transport::PublicKey& key, Clock::time_point deadline);
  // Closes and forgets the connection of that generation (no-op if it was already replaced).
  void drop(const transport::PublicKey& key, uint64_t generation);

 private:
  struct Node {
    uint64_t node_id = 0;
    transport::PublicKey key;
    std::vector<transport::SocketAddr> addrs;
    std::optional<transport::Connection> conn;
    std::shared_ptr<std::atomic<uint32_t>> awaiting;  // of conn: see NodeConnection
    uint64_t generation = 0;   // bumped by every dial that finishes, success or not
    bool is_dialing = false;
    std::optional<Error> last_dial_error;
    Clock::time_point suspect_until{};
  };
  Node* find_locked(const transport::PublicKey& key);
  const Node* find_locked(const transport::PublicKey& key) const;

  transport::Endpoint& endpoint_;
  const uint32_t connect_timeout_ms_;
  mutable std::mutex mu_;
  std::condition_variable dial_done_;
  // unique_ptr: Node addresses stay stable while a dialling thread works without the lock.
  std::vector<std::unique_ptr<Node>> nodes_;
  std::optional<transport::PublicKey> leader_;
};

}  // namespace aspen::client::internal
