// The gossip topic of a cluster (cluster/gossip.h): BLAKE3 in derive-key mode over the
// cookie, under a fixed context string. Nodes of one cluster meet on one topic; the cookie
// itself never travels, and the topic does not reveal it. Here rather than in src/cluster
// because BLAKE3 (src/crypto) is linked into the node, not into the cluster module.
#pragma once

#include <string_view>

#include "cluster/gossip_codec.h"

namespace aspen::node {

cluster::GossipTopic gossip_topic(std::string_view cookie);

// The follow topic tickets carry: BLAKE3 derive-key over the gossip topic under another
// context. It lets a ticket's holder ask nodes for the announcements they hold (read-only,
// cluster/gossip_follow.h) and check that an announcement's topic is this cluster's, but not
// sign announcements nodes would take: the gossip topic cannot be computed back from it.
cluster::GossipTopic gossip_follow_topic(const cluster::GossipTopic& topic);

}  // namespace aspen::node
