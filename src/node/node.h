// Node: one running Aspen server — the shell around NodeCore.
//
// start() brings the node up in phases, logging each: (1) metadata: data directory and the
// node's Ed25519 identity (data_dir/node.key); (2) endpoint: the QUIC socket; (3) storage and
// Raft: the LMDB (or in-memory) store and the NodeCore restored from it, plus the storage
// thread; (4) protocol handlers: "raft-auth" for peers and "aspen-client" for clients; (5)
// peers: manual peers and the join ticket go into the peer registry; (6) the ticker that
// drives elections and heartbeats. stop() undoes them in reverse order.
//
// A node that has never been part of a cluster waits: either a client sends InitCluster
// (it becomes the first member) or a cluster's leader adds it as a learner.
#pragma once

#include <memory>
#include <string>

#include "core/error.h"
#include "node/node_config.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::node {

namespace internal {
class Shell;
}

class Node {
 public:
  static Result<std::unique_ptr<Node>> start(NodeConfig config);
  ~Node();  // stop()
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void stop();

  transport::PublicKey public_key() const;
  transport::SocketAddr local_addr() const;
  // The cluster ticket as of the last membership change (before the cluster exists: this node alone).
  std::string ticket() const;
  bool is_initialized() const;

 private:
  explicit Node(std::shared_ptr<internal::Shell> shell);
  std::shared_ptr<internal::Shell> shell_;
};

}  // namespace aspen::node
