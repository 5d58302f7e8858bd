// Which capabilities a client request needs, and whether a verified token grants them,
// decided without I/O (ClientService calls it for every request it serves; unit-tested
// request type by request type).
//
//   reads, batch reads, scans       read on every key / the whole range
//   put, set-multi                  write on every key
//   delete, delete-multi            delete on every key
//   CAS                             read and write on the key (its answer shows the value)
//   CAD                             read and delete on the key
//   txn                             read on every compared key and every range op, write on
//                                   every put, delete on every delete
//   lease grant/keep-alive/revoke   write on some prefix (a lease only matters through the
//                                   keys attached to it, and attaching is a write)
//   lease list, metrics, Raft metrics, membership, snapshots, token revocation: admin
//   leader, node info, ticket, who-am-i: any valid token
//   health: no token (load balancers and scripts poll it)
#pragma once

#include "aspen/client.pb.h"
#include "auth/token.h"
#include "core/error.h"

namespace aspen::node {

// Where the cluster keeps what verification needs (under the reserved prefix, so clients can
// read but never write them): the root public key, written once with the cluster id, and
// one key per revoked token id (lowercase hex), its value the token's expiry in seconds.
inline constexpr std::string_view kAuthRootKeyKey = "__aspen/auth/root_key";
inline constexpr std::string_view kRevokedTokenPrefix = "__aspen/auth/revoked/";
std::string revoked_token_key(const auth::TokenId& id);

// Requests a node answers without a token: health, and InitCluster (which works only on a
// node of no cluster, where there is nothing to protect yet).
bool is_open_request(const clientpb::Request& req);

// Unauthorized naming the first missing capability (e.g. "missing capability write:app/x"),
// or ok. The token has already been verified for the caller.
Status authorize_request(const clientpb::Request& req, const auth::VerifiedToken& token);

}  // namespace aspen::node
