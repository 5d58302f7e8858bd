// gossip_message: bytes received on "aspen-gossip" from a peer, decoded and taken by a
// gossip core (src/cluster/gossip.h). The first input byte picks the sender: the node whose
// announcement the seeds carry, or a stranger. Properties: no assert fires; a decoded message
// stays within the limits and encodes back to a message that decodes the same; nothing is
// taken from a message over kMaxGossipMessageBytes or without a valid signature (the fuzzer
// cannot forge one, so every announcement taken was signed by a seed's key); the tables stay
// bounded, also when the bytes answer a shuffle this node started. The same bytes are also read as a node's answer to a follow request (what
// aspen-cli cluster discover does with a ticket): every announcement taken is signed by its
// key, of this cluster, fresh, and named once; a follow request in the input is answered.
#include <map>
#include <set>

#include "cluster/gossip.h"
#include "cluster/gossip_follow.h"
#include "fuzz/harness/harness.h"
#include "node/gossip_topic.h"

namespace aspen::fuzz {
namespace {

constexpr uint64_t kNowMs = 1'800'000'000'000;

transport::NodeIdentity identity_from(uint8_t byte) {
  std::array<uint8_t, transport::kSecretSeedSizeBytes> seed{};
  seed.fill(byte);
  return transport::NodeIdentity::from_seed(seed);
}

cluster::GossipTopic topic() { return node::gossip_topic("fuzz-cluster-cookie"); }

// A message node `id` (key from seed byte `id`) sends, passing on `forwarded`.
std::string message_from(NodeId id, uint64_t ts, std::vector<cluster::SignedAnnouncement> forwarded) {
  cluster::Announcement a;
  a.topic = topic();
  a.node_id = id;
  a.public_key = identity_from(static_cast<uint8_t>(id)).public_key();
  a.addrs = {{"127.0.0.1", static_cast<uint16_t>(7000 + id)}};
  a.timestamp_ms = ts;
  cluster::GossipMessage m;
  m.sender = cluster::sign_announcement(a, identity_from(static_cast<uint8_t>(id)));
  m.forwarded = std::move(forwarded);
  m.wants_reply = true;
  return cluster::encode_gossip_message(m);
}

}  // namespace

int gossip_message_one_input(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  auto decoded = cluster::decode_gossip_message(bytes);
  if (decoded) {
    check(bytes.size() <= cluster::kMaxGossipMessageBytes, "a message over the limit was decoded");
    check(decoded->forwarded.size() <= cluster::kMaxGossipForwarded, "too many passed-on announcements");
    auto again = cluster::decode_gossip_message(cluster::encode_gossip_message(*decoded));
    check(again.has_value() && *again == *decoded, "a decoded message does not encode back to itself");
  }
  cluster::GossipCoreConfig config;
  config.node_id = 99;
  config.topic = topic();
  config.peer_messages_per_min = 1000;
  config.follow_topic = node::gossip_follow_topic(config.topic);
  cluster::GossipCore core(config, identity_from(99), [](NodeId) { return std::optional<transport::PublicKey>(); });
  const transport::PublicKey from = identity_from(data[0] % 2 == 0 ? 1 : 200).public_key();
  const auto received = core.on_message(from, bytes, kNowMs);
  if (!decoded) check(received.learned.empty(), "an announcement was taken from an undecodable message");
  for (const auto& n : received.learned) {
    check(n.key == identity_from(static_cast<uint8_t>(n.node_id)).public_key(), "an unsigned announcement was taken");
    check(n.addrs.size() <= cluster::kMaxGossipAddrs, "an announcement kept too many addresses");
  }
  check(core.active_view().size() <= cluster::kGossipActiveViewSize, "the active view grew past its bound");
  check(core.passive_view().size() <= cluster::kGossipPassiveViewSize, "the passive view grew past its bound");
  if (received.verdict == cluster::GossipVerdict::kFollower) {
    check(decoded.has_value() && decoded->follow_topic.has_value() && received.should_reply,
          "a follower was answered without a follow request");
  }
  Rng rng(1);
  check(core.make_message(kNowMs, from, false, rng).size() <= cluster::kMaxGossipMessageBytes,
        "a message this node would send is over the limit");
  // A shuffle (HyParView) the input may have asked for, and one this node starts: both
  // within the limit, and what the answer to it brings stays within the views' bounds.
  if (received.is_shuffle) check(received.should_reply, "a shuffle was not answered");
  check(core.make_shuffle_reply(kNowMs, from, rng).size() <= cluster::kMaxGossipMessageBytes,
        "a shuffle answer this node would send is over the limit");
  check(core.make_shuffle(kNowMs, from, rng).size() <= cluster::kMaxGossipMessageBytes,
        "a shuffle this node would send is over the limit");
  core.on_message(from, bytes, kNowMs + 1);
  check(core.active_view().size() <= cluster::kGossipActiveViewSize, "a shuffle answer grew the active view");
  check(core.passive_view().size() <= cluster::kGossipPassiveViewSize, "a shuffle answer grew the passive view");

  // The bytes as the answer to a follow request, from the node whose connection proved `from`.
  auto followed = cluster::read_follow_reply(bytes, from, *config.follow_topic, node::gossip_follow_topic, kNowMs);
  if (followed) {
    check(decoded.has_value() && !decoded->follow_topic, "a follow answer was read from a non-message");
    check(!followed->empty() && followed->size() <= 1 + cluster::kMaxGossipForwarded, "a follow answer out of bounds");
    check((*followed)[0].public_key == from, "a follow answer's sender is not the node that answered");
    std::set<NodeId> ids;
    for (const auto& a : *followed) {
      check(a.public_key == identity_from(static_cast<uint8_t>(a.node_id)).public_key(),
            "an unsigned announcement was followed");
      check(a.topic == config.topic, "an announcement of another cluster was followed");
      check(ids.insert(a.node_id).second, "a node was followed twice from one answer");
    }
    std::map<NodeId, cluster::Announcement> merged;
    cluster::merge_followed(merged, *followed, nullptr);
    check(merged.size() == followed->size(), "merging one answer lost or made nodes");
  }
  return 0;
}

std::vector<std::string> gossip_message_seeds() {
  const std::string from_1 = message_from(1, kNowMs - 1000, {});
  auto forwarded = cluster::decode_gossip_message(message_from(2, kNowMs - 5000, {}));
  const std::string with_forwarded = message_from(1, kNowMs - 10, {forwarded->sender});
  auto as_shuffle = *cluster::decode_gossip_message(with_forwarded);
  as_shuffle.is_shuffle = true;
  const std::string shuffle = cluster::encode_gossip_message(as_shuffle);
  return {std::string(1, '\0') + from_1, std::string(1, '\0') + with_forwarded, std::string(1, '\1') + from_1,
          std::string(1, '\0') + cluster::encode_follow_request(node::gossip_follow_topic(topic())),
          std::string(1, '\0') + shuffle};
}

}  // namespace aspen::fuzz
