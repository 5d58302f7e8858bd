#include "cluster/gossip_follow.h"

#include <fmt/format.h>

#include <set>

#include "cluster/gossip.h"
#include "core/assert.h"

namespace aspen::cluster {

namespace {

std::unexpected<Error> refused(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, "gossip follow: " + std::move(message));
}

bool is_fresh(uint64_t timestamp_ms, uint64_t now_ms) {
  return timestamp_ms + kMaxGossipAnnouncementAgeMs >= now_ms && timestamp_ms <= now_ms + kMaxGossipFutureSkewMs;
}

// The announcement, if it passes every check of read_follow_reply; else why not.
Result<Announcement> check(const SignedAnnouncement& s, const GossipTopic& follow_topic,
                           const FollowTopicOf& follow_topic_of, uint64_t now_ms) {
  auto a = open_announcement(s);
  if (!a) return std::unexpected(a.error());
  if (follow_topic_of(a->topic) != follow_topic) return refused("an announcement of another cluster");
  if (!is_fresh(a->timestamp_ms, now_ms)) return refused("a stale announcement (or a clock far off)");
  return a;
}

}  // namespace

std::string encode_follow_request(const GossipTopic& follow_topic) {
  GossipMessage m;
  m.follow_topic = follow_topic;
  m.wants_reply = true;
  return encode_gossip_message(m);
}

Result<std::vector<Announcement>> read_follow_reply(std::string_view bytes, const transport::PublicKey& from,
                                                    const GossipTopic& follow_topic, const FollowTopicOf& follow_topic_of,
                                                    uint64_t now_ms) {
  ASPEN_ASSERT(follow_topic_of != nullptr);
  auto message = decode_gossip_message(bytes);  // size-checked before parsing
  if (!message) return std::unexpected(message.error());
  if (message->follow_topic) return refused("the node answered with a follow request");
  auto sender = check(message->sender, follow_topic, follow_topic_of, now_ms);
  if (!sender) return refused(fmt::format("the node's own announcement: {}", sender.error().message()));
  if (sender->public_key != from) return refused("the node's own announcement names another key than it proved");
  std::vector<Announcement> out;
  out.reserve(1 + message->forwarded.size());
  std::set<NodeId> ids{sender->node_id};
  out.push_back(std::move(*sender));
  for (const auto& f : message->forwarded) {
    auto a = check(f, follow_topic, follow_topic_of, now_ms);
    if (!a || !ids.insert(a->node_id).second) continue;
    out.push_back(std::move(*a));
  }
  ASPEN_ASSERT(out.size() <= 1 + kMaxGossipForwarded);
  return out;
}

size_t merge_followed(std::map<NodeId, Announcement>& into, const std::vector<Announcement>& answer,
                      const std::function<std::optional<transport::PublicKey>(NodeId)>& known_key) {
  size_t other_key = 0;
  for (const auto& a : answer) {
    if (auto known = known_key ? known_key(a.node_id) : std::nullopt; known && *known != a.public_key) {
      ++other_key;
      continue;
    }
    auto it = into.find(a.node_id);
    if (it == into.end()) {
      if (into.size() < kMaxFollowedNodes) into.emplace(a.node_id, a);
      continue;
    }
    if (it->second.public_key != a.public_key) {
      ++other_key;
      continue;
    }
    if (a.timestamp_ms > it->second.timestamp_ms) it->second = a;
  }
  ASPEN_ASSERT(into.size() <= kMaxFollowedNodes);
  return other_key;
}

}  // namespace aspen::cluster
