// Following gossip without the cookie (docs/discovery.md, "Following gossip with a ticket"):
// a reader holding a ticket with a gossip follow topic (node/gossip_topic.h) asks a node on
// "aspen-gossip" for the announcements it holds, and checks each one itself. Read-only: the
// reader learns where nodes say they are; it is announced to nobody, and membership is
// still granted only by the operator.
//
// Pure: the shell (aspen-cli cluster discover) dials, sends encode_follow_request() and
// passes the one answer to read_follow_reply(). The answer is untrusted bytes (fuzzed:
// fuzz/harness/gossip_message.cc); everything taken from it is signed by the key it names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/gossip_codec.h"
#include "core/error.h"
#include "core/types.h"
#include "transport/identity.h"

namespace aspen::cluster {

// Nodes one follower keeps (the answers of every ticket peer merged): as many as a node holds.
inline constexpr size_t kMaxFollowedNodes = 256;

// Maps an announcement's gossip topic to its follow topic (BLAKE3, node/gossip_topic.h:
// the cluster module does not link BLAKE3).
using FollowTopicOf = std::function<GossipTopic(const GossipTopic&)>;

std::string encode_follow_request(const GossipTopic& follow_topic);

// What one answer says, each announcement verified: its signature under the key it names;
// its topic's follow topic is `follow_topic`; its timestamp at most
// kMaxGossipAnnouncementAgeMs old and kMaxGossipFutureSkewMs ahead of `now_ms` (those of
// gossip.h); and the answering node's own announcement names `from`, the key its connection
// proved. An error if the answer is not a message, is a follow request itself, or its
// sender's announcement fails a check (the node is of another cluster, or lies); a passed-on
// announcement that fails one is left out, and so is a second one for a node id.
Result<std::vector<Announcement>> read_follow_reply(std::string_view bytes, const transport::PublicKey& from,
                                                    const GossipTopic& follow_topic, const FollowTopicOf& follow_topic_of,
                                                    uint64_t now_ms);

// Merges one answer into what earlier ones said: per node id the newest announcement, but
// never one whose key differs from the key held for that id (by `known_key`, e.g. the
// ticket's, or by an earlier answer). Returns how many announcements were left out for
// another key. At most kMaxFollowedNodes are kept (further new ids are left out too).
size_t merge_followed(std::map<NodeId, Announcement>& into, const std::vector<Announcement>& answer,
                      const std::function<std::optional<transport::PublicKey>(NodeId)>& known_key);

}  // namespace aspen::cluster
