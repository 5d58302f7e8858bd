// What a node accepts on an inbound "raft-auth" stream, decided without I/O: the greeting
// that opens every stream, and the Raft messages that follow on an ordinary stream.
// (Snapshot streams continue with SnapshotReception, snapshot_staging.h.) RaftLinks applies
// these to real streams; the fuzz targets (fuzz/) feed them arbitrary bytes.
#pragma once

#include <string_view>
#include <vector>

#include "aspen/raft.pb.h"
#include "core/error.h"
#include "core/types.h"
#include "node/peer_registry.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::node {

namespace pb = aspen::raftpb;

struct Greeting {
  NodeId from = kNoNode;
  bool is_snapshot = false;
  std::vector<transport::SocketAddr> addrs;  // those that parse; the others are ignored
};

// The first frame of a stream from `peer_key` (proven by TLS): a RaftHello with this
// cluster's cookie digest, from a member (or a trusted key) other than this node, and not
// claiming the id of a member registered with another key. Unauthorized names the reason.
Result<Greeting> check_greeting(std::string_view frame, NodeId self, std::string_view cookie_digest,
                                const PeerRegistry& peers, const transport::PublicKey& peer_key);

// A later frame of an ordinary stream greeted by `from`: a Raft message from that node to
// this one, and never a snapshot (its data comes only on a snapshot stream, where it is
// staged). InvalidArgument names the reason.
Result<pb::Message> check_stream_message(std::string_view frame, NodeId from, NodeId self);

}  // namespace aspen::node
