// PeerRegistry: which node id is which public key at which addresses, and whom to trust.
//
// Three sources, from most to least authoritative (but see learn_from_hello: a greeting
// that proved the cookie beats a manual entry naming another key for the same id):
//   - member records in the replicated KV (`__aspen/cluster/node/<id>`), written by the
//     leader before the conf change that adds the node, so every replica learns them;
//   - manual peers from the configuration (--peers) and the ticket a joining node was given;
//   - greetings: the RaftHello of a peer that proved the cluster cookie, remembered only
//     while this node has no membership of its own (a fresh node being added as a learner
//     must be able to answer the leader before it has applied any record). A member whose
//     record exists and whose greeting comes from the record's key announces where it is
//     now: those addresses are dialled first (a node restarted on a new port stays
//     reachable), and the leader writes them into the member's record.
// Trust for Raft traffic follows membership: once this node has a membership, only keys of
// current voters and learners are accepted (a manual peer too, only while it is a member).
//
// Loop-thread only (no locking): the node shell owns it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aspen/cluster.pb.h"
#include "aspen/kv.pb.h"
#include "aspen/raft.pb.h"
#include "core/error.h"
#include "core/types.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::node {

// Keys under this prefix belong to the cluster; clients may read but not write them.
inline constexpr std::string_view kReservedPrefix = "__aspen/";
inline constexpr std::string_view kNodeRecordPrefix = "__aspen/cluster/node/";
inline constexpr std::string_view kClusterIdKey = "__aspen/cluster/id";

std::string node_record_key(NodeId id);
std::string encode_node_record(NodeId id, const transport::PublicKey& key,
                               const std::vector<transport::SocketAddr>& addrs);

struct PeerInfo {
  NodeId id = kNoNode;
  transport::PublicKey key;
  std::vector<transport::SocketAddr> addrs;
};

// What a discovery source (gossip, dns) reported about a node, and when: where it says it
// is, never whether to trust it. One entry per node and source; every source's entries for a
// node name the same key (a second key is refused). Bounded per source: kMaxDiscoveredPeers,
// the least recently seen of that source go.
inline constexpr size_t kMaxDiscoveredPeers = 256;
struct DiscoveredPeer {
  PeerInfo peer;
  std::string source;          // "gossip", "dns"
  uint64_t first_seen_ms = 0;  // this node's wall clock
  uint64_t last_seen_ms = 0;
  uint64_t announced_ms = 0;   // gossip: the timestamp the node signed; 0 for dns
  std::string via;             // gossip: who passed it on (a short key), empty if the node itself
};
// (node id, source)
using DiscoveryKey = std::pair<NodeId, std::string>;

class PeerRegistry {
 public:
  // Replaces what the KV records say (a scan of kNodeRecordPrefix). Malformed records are
  // skipped and counted.
  void set_records(const std::vector<kvpb::KeyValue>& kvs);
  void add_manual(const PeerInfo& peer);
  // A peer that proved the cookie (and, by TLS, its key). For an id the records know, only
  // its addresses are taken, and only if the key is the record's. A greeting whose key
  // differs from a manual peer's (--peers, or a ticket of an earlier cluster at the same
  // addresses) is dialled instead of it until records exist; the stale key is returned so
  // the shell can tell the operator.
  std::optional<transport::PublicKey> learn_from_hello(NodeId id, const transport::PublicKey& key,
                                                       std::vector<transport::SocketAddr> addrs);
  void set_membership(const raftpb::ConfState& cs);

  // A node a discovery source reports (gossip: its announcement was signed by `peer.key`;
  // dns: the operator's records). Refused (false) when another source (records, --peers, a
  // ticket, a greeting, or another discovery source) holds a different key for the id; a
  // source's own earlier entry is replaced. Consulted by lookup() only when no other source
  // knows the id; never for trust.
  bool learn_from_discovery(const PeerInfo& peer, std::string_view source, uint64_t now_ms, uint64_t announced_ms,
                            std::string via);
  // Discovered peers not heard of since `cutoff_ms` are forgotten: those of `source` only,
  // or of every source when it is empty.
  void expire_discovered(uint64_t cutoff_ms, std::string_view source = {});
  // Forgets what `source` reported of node `id` under `key` (the node said goodbye); true if
  // there was such an entry. An entry under another key stays.
  bool forget_discovered(NodeId id, const transport::PublicKey& key, std::string_view source);
  const std::map<DiscoveryKey, DiscoveredPeer>& discovered() const { return discovered_; }
  // What discovery knows of the id: the most recently heard source's entry, with the other
  // sources' addresses after its own (at most limits::kMaxNodeAddresses).
  std::optional<DiscoveredPeer> find_discovered(NodeId id) const;
  // The key the records, the configuration, the ticket or a greeting hold for the id.
  std::optional<transport::PublicKey> known_key(NodeId id) const;
  // Every source's view of every node, for `aspen-cli cluster peers`: (source, peer).
  std::vector<std::pair<std::string, PeerInfo>> static_sources() const;

  std::optional<PeerInfo> lookup(NodeId id) const;
  // The node id a key belongs to, if any source names it.
  std::optional<NodeId> node_id_of(const transport::PublicKey& key) const;
  // May this key send Raft messages claiming to be `claimed_id`? (claimed_id 0: any id.)
  bool is_trusted(const transport::PublicKey& key, NodeId claimed_id = kNoNode) const;
  bool has_membership() const { return !members_.empty(); }
  const std::set<NodeId>& members() const { return members_; }
  // Members with a known key and address (for tickets and the members list).
  std::vector<PeerInfo> reachable_members() const;
  size_t malformed_records() const { return malformed_records_; }
  // A member whose announced addresses differ from its record: the record to write.
  std::optional<PeerInfo> outdated_record() const;

 private:
  std::map<NodeId, PeerInfo> records_;
  std::map<NodeId, PeerInfo> manual_;
  std::map<NodeId, PeerInfo> greeted_;
  std::map<NodeId, std::vector<transport::SocketAddr>> announced_;  // members' greetings
  std::set<NodeId> members_;
  std::map<DiscoveryKey, DiscoveredPeer> discovered_;  // gossip, dns; consulted last, never for trust
  size_t malformed_records_ = 0;
};

}  // namespace aspen::node
