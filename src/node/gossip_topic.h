// The gossip topic of a cluster (cluster/gossip.h): BLAKE3 in derive-key mode over the
// cookie, under a fixed context string. Nodes of one cluster meet on one topic; the cookie
// itself never travels, and the topic does not reveal it. Here rather than in src/cluster
// because BLAKE3 (src/crypto) is linked into the node, not into the cluster module.
#pragma once

#include <string_view>

#include "cluster/gossip_codec.h"

namespace aspen::node {

cluster::GossipTopic gossip_topic(std::string_view cookie);

}  // namespace aspen::node
