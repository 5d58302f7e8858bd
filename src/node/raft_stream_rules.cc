#include "node/raft_stream_rules.h"

#include <fmt/format.h>

#include "aspen/cluster.pb.h"
#include "core/limits.h"

namespace aspen::node {

Result<Greeting> check_greeting(std::string_view frame, NodeId self, std::string_view cookie_digest,
                                const PeerRegistry& peers, const transport::PublicKey& peer_key) {
  auto refuse = [](std::string why) { return make_error(ErrorCode::kUnauthorized, std::move(why)); };
  clusterpb::RaftHello hello;
  if (!hello.ParseFromArray(frame.data(), static_cast<int>(frame.size())) || hello.node_id() == kNoNode) {
    return refuse("malformed greeting");
  }
  if (hello.cookie_digest() != cookie_digest) return refuse("wrong cluster cookie");
  if (hello.node_id() == self) return refuse("it claims this node's own id");
  auto known = peers.lookup(hello.node_id());
  if (known && known->key != peer_key && peers.has_membership()) {
    return refuse(fmt::format("node {} is registered with a different key", hello.node_id()));
  }
  if (!peers.is_trusted(peer_key)) return refuse("not a member of this cluster");
  Greeting g;
  g.from = hello.node_id();
  g.is_snapshot = hello.is_snapshot();
  if (static_cast<size_t>(hello.addrs_size()) > limits::kMaxNodeAddresses) {
    return refuse(fmt::format("greeting names {} addresses; the limit is {}", hello.addrs_size(), limits::kMaxNodeAddresses));
  }
  for (const auto& a : hello.addrs()) {
    if (auto sa = transport::SocketAddr::parse(a)) g.addrs.push_back(*sa);
  }
  return g;
}

Result<pb::Message> check_stream_message(std::string_view frame, NodeId from, NodeId self) {
  pb::Message m;
  if (!m.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
    return make_error(ErrorCode::kInvalidArgument, "malformed Raft message");
  }
  if (m.from() != from || m.to() != self) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("message claims to be from {} to {} on node {}'s stream", m.from(), m.to(), from));
  }
  if (m.type() == pb::MSG_SNAP) {
    // One here would make the core install a state this node never received.
    return make_error(ErrorCode::kInvalidArgument, "a snapshot outside a snapshot stream");
  }
  return m;
}

}  // namespace aspen::node
