#include "node/gossip_topic.h"

#include <cstring>
#include <span>

#include "crypto/blake3.h"

namespace aspen::node {

namespace {
// BLAKE3 derive-key contexts are hard-coded, globally unique strings.
constexpr std::string_view kTopicContext = "aspen 2026-12-03 gossip topic from cluster cookie";
constexpr std::string_view kFollowTopicContext = "aspen 2026-12-03 gossip follow topic from gossip topic";
}  // namespace

cluster::GossipTopic gossip_topic(std::string_view cookie) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(cookie.data());
  const crypto::Blake3Hash hash = crypto::blake3_derive_key(kTopicContext, std::span<const uint8_t>(bytes, cookie.size()));
  static_assert(std::tuple_size_v<crypto::Blake3Hash> == cluster::kGossipTopicSizeBytes);
  cluster::GossipTopic topic{};
  std::memcpy(topic.data(), hash.data(), topic.size());
  return topic;
}

cluster::GossipTopic gossip_follow_topic(const cluster::GossipTopic& topic) {
  const crypto::Blake3Hash hash = crypto::blake3_derive_key(kFollowTopicContext, std::span<const uint8_t>(topic));
  cluster::GossipTopic out{};
  std::memcpy(out.data(), hash.data(), out.size());
  return out;
}

}  // namespace aspen::node
