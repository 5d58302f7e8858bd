// What a node accepts on a "raft-auth" stream, decided without I/O: the greeting that opens
// every stream, its answer, and the Raft messages that follow on an ordinary stream.
// (Snapshot streams continue with SnapshotReception, snapshot_staging.h.) RaftLinks applies
// these to real streams; the fuzz targets (fuzz/) feed them arbitrary bytes.
//
// Both sides prove the cluster cookie before any Raft byte moves, and each proof is bound to
// one connection:
//   dialler  -> RaftHello{id, addrs, proof(dialler)}   acceptor checks it (and the key)
//   acceptor -> RaftHelloAck{id, proof(acceptor)}      dialler checks it
//   dialler  -> Raft messages, or snapshot frames
// proof(role) = BLAKE2b-256 keyed by raft_cookie_key(cookie) over a domain string, the role,
// the prover's node id, the connection's TLS channel binding and both public keys. Someone
// who sees a proof learns nothing about the cookie and cannot use the proof anywhere else;
// someone with a member's stolen key but not the cookie gets no Raft byte.
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

// The cookie, reduced to the key of the greeting's proofs (and used for nothing else).
std::string raft_cookie_key(std::string_view cookie);

// What one connection's proofs are bound to: known to both its ends and to no one else.
struct ChannelFacts {
  transport::ChannelBinding binding{};
  transport::PublicKey dialer;    // the side that opened the connection
  transport::PublicKey acceptor;  // the side that accepted it
};

enum class ProofRole : uint8_t { kDialer = 'd', kAcceptor = 'a' };

// 32 bytes; see the top of this file.
std::string cookie_proof(std::string_view cookie_key, ProofRole role, NodeId prover, const ChannelFacts& facts);

// The first frame the dialler sends on every stream.
std::string make_greeting(NodeId self, std::string_view cookie_key, const ChannelFacts& facts,
                          const std::vector<std::string>& addrs, bool is_snapshot);
// The acceptor's answer to a greeting it accepted.
std::string make_greeting_ack(NodeId self, std::string_view cookie_key, const ChannelFacts& facts);

struct Greeting {
  NodeId from = kNoNode;
  bool is_snapshot = false;
  std::vector<transport::SocketAddr> addrs;  // those that parse; the others are ignored
};

// The first frame of a stream from facts.dialer (proven by TLS) to this node (facts.acceptor):
// a RaftHello whose proof shows this cluster's cookie on this connection, from a member (or
// a trusted key) other than this node, not claiming the id of a member registered with
// another key. Unauthorized names the reason (never anything about the cookie itself).
Result<Greeting> check_greeting(std::string_view frame, NodeId self, std::string_view cookie_key,
                                const PeerRegistry& peers, const ChannelFacts& facts);

// The acceptor's answer, checked by the dialler that expects node `expected` at the other
// end. Unauthorized names the reason.
Status check_greeting_ack(std::string_view frame, NodeId expected, std::string_view cookie_key,
                          const ChannelFacts& facts);

// A later frame of an ordinary stream greeted by `from`: a Raft message from that node to
// this one, and never a snapshot (its data comes only on a snapshot stream, where it is
// staged). InvalidArgument names the reason.
Result<pb::Message> check_stream_message(std::string_view frame, NodeId from, NodeId self);

}  // namespace aspen::node
