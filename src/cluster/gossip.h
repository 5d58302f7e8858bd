// Gossip discovery (docs/operations.md, "Discovery"): nodes that share a cookie tell each
// other who they are and where, on ALPN "aspen-gossip". GossipCore holds every decision and
// no I/O: the node shell (node/gossip_service.h) passes in the time, the bytes received and
// a random generator, and carries out what the core returns (whom to dial, what to send).
//
// Each round (every interval, 10 s by default) a node sends each peer of its active view one
// GossipMessage: its own announcement {node id, public key, addresses, timestamp}, signed
// now with its node key, plus a few fresh announcements of other nodes as their announcers
// signed them. A receiver takes an announcement only if
//   - the sender's message fits kMaxGossipMessageBytes and the sender (by the key its
//     connection proved) has sent at most peer_messages_per_min messages this minute;
//   - the signature verifies under the key the announcement names, and the sender's own
//     announcement names the connection's key;
//   - the topic is this cluster's (BLAKE3 of the cookie);
//   - the key is the one any other source (the cluster's records, --peers, the ticket, a
//     greeting) or an earlier announcement holds for that node id;
//   - the timestamp is fresh (at most kMaxGossipAnnouncementAgeMs old, kMaxGossipFutureSkewMs
//     ahead) and newer than the last one taken from that node (else: replayed or duplicate).
// Every refusal is counted by reason (stats(), exported as aspen_gossip_*). Gossip grants no
// membership and no trust: what it learns is only where a node says it is.
//
// A follow request (a message with only a follow topic, from a reader holding a ticket but
// not the cookie) is rate-limited like any message and, with this cluster's follow topic,
// answered (should_reply) with the node's usual message; the reader is not learned, not
// added to a view and not passed on.
//
// Views, after HyParView: a small active view (the peers gossiped with each round) and a
// larger passive view (known peers, promoted when an active one fails or leaves), refreshed
// by a periodic shuffle with a random active peer (kGossipShuffleEveryRounds); both
// bounded, as is the table of nodes (kMaxGossipNodes, least recently seen evicted) and the
// per-sender rate state. A node that knows no peer at all asks for seeds (needs_seeds()): the
// shell then dials --gossip-seeds and the probe ports, whose keys it does not know yet.
//
// Not thread-safe: the node's loop thread owns it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/gossip_codec.h"
#include "core/rng.h"
#include "core/types.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::cluster {

inline constexpr size_t kGossipActiveViewSize = 4;
inline constexpr size_t kGossipPassiveViewSize = 32;
inline constexpr size_t kMaxGossipNodes = 256;
// Senders whose message rate is tracked at once; the stalest window goes first.
inline constexpr size_t kMaxGossipRatePeers = 1024;
inline constexpr uint64_t kGossipRateWindowMs = 60 * 1000;
// How old an announcement may be, and how far ahead of this node's clock (clocks of a
// cluster's nodes are expected to agree far better than this).
inline constexpr uint64_t kMaxGossipAnnouncementAgeMs = 5 * 60 * 1000;
inline constexpr uint64_t kMaxGossipFutureSkewMs = 60 * 1000;
// Failed sends in a row after which a peer leaves the views.
inline constexpr uint32_t kGossipMaxSendFailures = 3;
// HyParView's shuffle: every kGossipShuffleEveryRounds rounds a node sends one random active
// peer up to kGossipShuffleSampleSize announcements of nodes of its views, and the peer
// answers with as many of its passive view; both put what they got in their passive views,
// evicting first what they had sent. The sample fits one message (kMaxGossipForwarded).
inline constexpr uint32_t kGossipShuffleEveryRounds = 3;
inline constexpr size_t kGossipShuffleSampleSize = 8;
static_assert(kGossipShuffleSampleSize <= kMaxGossipForwarded);
static_assert(kGossipShuffleSampleSize <= kGossipPassiveViewSize);

enum class GossipVerdict : uint8_t {
  kAccepted,
  kOversized,       // the message is over kMaxGossipMessageBytes
  kMalformed,       // not a message, or a field crosses a limit
  kRateLimited,     // the sender sent more than its messages per minute
  kBadSignature,    // forged: the signature does not verify
  kWrongTopic,      // another cluster's (another cookie's) announcement
  kSenderMismatch,  // the sender's own announcement names another key than its connection's
  kWrongKey,        // the node id is known with another key
  kReplayed,        // the sender's own announcement is not newer than its last one
  kStale,           // the timestamp is too old or too far ahead
  kDuplicate,       // a passed-on announcement not newer than the one held (normal in gossip)
  kFollower,        // a follow request with this cluster's follow topic: answered, nothing taken
};
inline constexpr size_t kGossipVerdictCount = 12;
// "accepted", "oversized", ...: the reason label of the metrics.
std::string_view gossip_verdict_name(GossipVerdict verdict);

struct GossipCoreConfig {
  NodeId node_id = kNoNode;
  GossipTopic topic{};
  uint32_t peer_messages_per_min = 12;
  // The follow topic tickets carry (node/gossip_topic.h); without one, follow requests are
  // refused as kWrongTopic.
  std::optional<GossipTopic> follow_topic = std::nullopt;
};

// What the table knows of one node.
struct GossipNode {
  NodeId node_id = kNoNode;
  transport::PublicKey key;
  std::vector<transport::SocketAddr> addrs;
  uint64_t announced_ms = 0;    // the newest timestamp taken (signed by the node)
  uint64_t direct_ms = 0;       // the newest one the node sent itself
  uint64_t first_seen_ms = 0;   // this node's clock
  uint64_t last_seen_ms = 0;
  transport::PublicKey via;     // who passed the newest on; all zeros: the node itself
  SignedAnnouncement latest;    // passed on to others as it was signed
};

// A peer to gossip with.
struct GossipTarget {
  transport::PublicKey key;
  std::vector<transport::SocketAddr> addrs;
};

struct GossipReceived {
  GossipVerdict verdict = GossipVerdict::kMalformed;  // of the message (its sender's announcement)
  std::vector<GossipNode> learned;                    // announcements taken, the sender's first
  bool should_reply = false;
  bool is_shuffle = false;  // answer with make_shuffle_reply (a sample of the passive view)
};

struct GossipStats {
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // Announcements (and, for kOversized/kMalformed/kRateLimited, messages) by verdict.
  std::array<uint64_t, kGossipVerdictCount> verdicts{};
  uint64_t send_failures = 0;
  uint64_t shuffles_sent = 0;      // shuffles this node started
  uint64_t shuffles_answered = 0;  // peers' shuffles this node answered
};

class GossipCore {
 public:
  // The key another source holds for a node id, if any.
  using KnownKey = std::function<std::optional<transport::PublicKey>(NodeId)>;

  GossipCore(GossipCoreConfig config, transport::NodeIdentity identity, KnownKey known_key);

  // Where this node accepts connections (announced from the next message on).
  void set_self_addrs(std::vector<transport::SocketAddr> addrs);
  // A message from the peer whose connection proved `from`.
  GossipReceived on_message(const transport::PublicKey& from, std::string_view bytes, uint64_t now_ms);
  // This node's message to `to`: its own announcement signed now (timestamps strictly
  // increase) and fresh announcements of others, within kMaxGossipMessageBytes.
  std::string make_message(uint64_t now_ms, const transport::PublicKey& to, bool wants_reply, Rng& rng);
  // A peer known from elsewhere (the cluster's records, --peers, a seed's answer).
  void add_candidate(const GossipTarget& peer);
  // The start of a round: forgets nodes not heard of for kMaxGossipAnnouncementAgeMs, fills
  // the active view from the passive one, and returns the active view (whom to send to).
  std::vector<GossipTarget> round(uint64_t now_ms, Rng& rng);
  // After round(): the active peer to shuffle with, when a shuffle is due (every
  // kGossipShuffleEveryRounds rounds, and only with a peer to shuffle with).
  std::optional<GossipTarget> shuffle_target(Rng& rng);
  // A shuffle to `to`: this node's announcement signed now and a random sample of the
  // announcements it holds of nodes in its views (not `to`'s), asking for an answer.
  std::string make_shuffle(uint64_t now_ms, const transport::PublicKey& to, Rng& rng);
  // The answer to a shuffle from `to`: this node's announcement and a random sample of its
  // passive view's announcements.
  std::string make_shuffle_reply(uint64_t now_ms, const transport::PublicKey& to, Rng& rng);
  void on_send_failed(const transport::PublicKey& peer);
  void on_send_ok(const transport::PublicKey& peer);
  // No peer to gossip with: the shell should dial seeds and probe ports.
  bool needs_seeds() const { return active_.empty() && passive_.empty(); }

  const std::map<NodeId, GossipNode>& nodes() const { return nodes_; }
  const std::vector<GossipTarget>& active_view() const { return active_; }
  const std::vector<GossipTarget>& passive_view() const { return passive_; }
  const GossipStats& stats() const { return stats_; }
  void count_bytes_out(size_t bytes) {
    stats_.bytes_out += bytes;
    ++stats_.messages_out;
  }

 private:
  struct RateWindow {
    uint64_t start_ms = 0;
    uint32_t count = 0;
  };
  bool take_rate(const transport::PublicKey& from, uint64_t now_ms);
  // Checks one announcement and, if it is taken, records it. `from` is the sender's key;
  // `is_sender` whether this is the sender's own announcement.
  GossipVerdict take(const SignedAnnouncement& s, const transport::PublicKey& from, bool is_sender, uint64_t now_ms,
                     std::vector<GossipNode>& learned);
  void count(GossipVerdict v) { ++stats_.verdicts[static_cast<size_t>(v)]; }
  void remember(GossipNode node);
  void upsert_view(const GossipTarget& peer, bool prefer_active);
  void drop_from_views(const transport::PublicKey& key);
  // Room for one more in the passive view: evicts what the last shuffle sent, else the oldest.
  void evict_from_passive();
  // This node's own announcement, signed now.
  GossipMessage self_message(uint64_t now_ms, bool wants_reply);
  // Fills m.forwarded with up to `limit` announcements of `pool`, in random order, while the
  // message fits kMaxGossipMessageBytes; returns their keys.
  std::vector<transport::PublicKey> add_sample(GossipMessage& m, std::vector<const GossipNode*> pool, size_t limit,
                                               Rng& rng);
  // The fresh held announcements of nodes whose key is in `views` (and not `except`).
  std::vector<const GossipNode*> held_in(const std::vector<const std::vector<GossipTarget>*>& views,
                                         const transport::PublicKey& except, uint64_t now_ms) const;

  const GossipCoreConfig config_;
  const transport::NodeIdentity identity_;
  const KnownKey known_key_;
  std::vector<transport::SocketAddr> self_addrs_;
  uint64_t last_self_ms_ = 0;
  std::map<NodeId, GossipNode> nodes_;
  std::vector<GossipTarget> active_;
  std::vector<GossipTarget> passive_;
  std::unordered_map<transport::PublicKey, uint32_t> failures_;
  std::unordered_map<transport::PublicKey, RateWindow> rates_;
  uint32_t rounds_since_shuffle_ = 0;
  // What the last shuffle sent (at most kGossipShuffleSampleSize): evicted first from the
  // passive view when the answer brings new peers, as HyParView does.
  std::vector<transport::PublicKey> shuffle_sent_;
  GossipStats stats_;
};

}  // namespace aspen::cluster
