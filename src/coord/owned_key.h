// Internal to src/coord: a key owned by one holder through a lease, shared by
// DistributedLock and LeaderElection.
//
// The owner record is created only if the key is absent (version == 0), attached to the
// owner's lease, so an expired or revoked lease deletes it and frees the key for takeover.
// The fencing token is the key's create_revision: the revision of the Txn that took it, which
// strictly increases across successive owners because revisions only grow.
#pragma once

#include <optional>
#include <string>

#include "coord/coord_common.h"

namespace aspen::coord {

struct Owner {
  std::string holder;
  std::string value;  // opaque payload (the election's leader value); empty for locks
  uint64_t lease_id = 0;
  uint64_t fencing_token = 0;
};

std::string encode_owner(const Owner& o);
Result<Owner> decode_owner(const kvpb::KeyValue& kv);

// One attempt to create `key` owned by `owner` (its lease must exist). On success the returned
// Owner carries the fencing token; otherwise it is the current owner (has_value false only if
// the key vanished between compare and read, which a Txn rules out).
struct ClaimResult {
  bool is_claimed = false;
  Owner owner;
};
Result<ClaimResult> claim_owned_key(kv::KeyValueStore& store, const std::string& key, const Owner& owner);

// The current owner, if any.
Result<std::optional<Owner>> read_owner(kv::KeyValueStore& store, const std::string& key);

// Deletes `key` only if it is still the one created with `fencing_token`, then revokes the
// lease (unless it is a session's, which outlives the key). NotFound when the key is no
// longer this owner's (lease expired, taken over).
Status release_owned_key(kv::KeyValueStore& store, const std::string& key, uint64_t fencing_token,
                         uint64_t lease_id, std::string_view what, bool should_revoke_lease = true);

// Keeps the lease alive and checks the key is still this owner's. NotFound when it is not.
Status renew_owned_key(kv::KeyValueStore& store, const std::string& key, uint64_t fencing_token,
                       uint64_t lease_id, std::string_view what);

}  // namespace aspen::coord
