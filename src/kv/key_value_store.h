// KeyValueStore: what Aspen's key-value service offers to everything above it (coordination
// primitives, layers, the CLI). The node, the remote client and DeterministicKeyValueStore
// implement it, so upper layers are tested without a cluster and run unchanged on one.
//
// Writes go through execute() with a kvpb::Command; the free functions below build the
// common ones. Reads are linearizable unless an implementation documents otherwise.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aspen/kv.pb.h"
#include "core/error.h"

namespace aspen::kv {

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;

  // Applies a write command; the result says whether conditions held (CAS, Txn) and carries
  // the revision. Errors: validation errors (KeyTooLarge, ...), NotLeader, Timeout, ..., and
  // a command refused when it was applied (LeaseNotFound, ...): an ok result never carries
  // an error code.
  virtual Result<kvpb::CommandResult> execute(kvpb::Command cmd) = 0;
  virtual Result<kvpb::RangeResult> range(const kvpb::RangeRequest& request) = 0;
  virtual Result<std::vector<kvpb::Lease>> list_leases() = 0;
};

// A store that can tell when a key changes (the remote client, through a watch) implements
// this too; the coordination primitives then wait for the change instead of polling.
// Reports changes to a range of keys, from when it was opened (ChangeNotifier::watch_range).
class ChangeWaiter {
 public:
  virtual ~ChangeWaiter() = default;
  // Waits until a key of the range changed since the waiter opened, or since the last wait()
  // that returned true, for at most timeout_ms. true: changed; false: the time ran out.
  virtual Result<bool> wait(uint64_t timeout_ms) = 0;
};

// What ChangeNotifier::wait_for_delete_then_read saw.
struct DeletionSeen {
  uint64_t revision = 0;                  // as wait_for_delete returns it (0: the time ran out)
  std::optional<kvpb::RangeResult> read;  // the range as of `revision`, if asked and it could be read
};

class ChangeNotifier {
 public:
  virtual ~ChangeNotifier() = default;
  // Starts reporting changes to the keys in [start, end) (empty end: to the end of the key
  // space). A blocking primitive opens one before it reads, so no change between its read
  // and its wait is missed.
  virtual Result<std::unique_ptr<ChangeWaiter>> watch_range(std::string_view start, std::string_view end) = 0;
  // Waits until `key` is deleted at a revision above `after_revision` (a deletion that
  // already happened after it counts), for at most timeout_ms. Returns a revision at which
  // the key is known to be gone (that of the deletion, or a later one), or 0 when the time
  // ran out.
  virtual Result<uint64_t> wait_for_delete(std::string_view key, uint64_t after_revision, uint64_t timeout_ms) = 0;
  // Reads a range as it was at `revision`, one a wait above reported: a committed, consistent
  // view, possibly older than what a linearizable read would show, served without the
  // quorum round such a read costs. Sound for a question whose answer cannot change back
  // once true (a key deleted stays deleted; a new key never gets an older create revision).
  // Any error (compacted, not served at once) leaves the caller to read linearizably.
  virtual Result<kvpb::RangeResult> range_at(const kvpb::RangeRequest& request, uint64_t revision) = 0;
  // wait_for_delete, then (then_read set, the key gone) range_at the revision it reported. A
  // read that fails is left out (the caller reads linearizably). This default makes the two
  // calls; the remote client asks for both in one exchange.
  virtual Result<DeletionSeen> wait_for_delete_then_read(std::string_view key, uint64_t after_revision,
                                                         const kvpb::RangeRequest* then_read, uint64_t timeout_ms);
};

// --- convenience over any KeyValueStore ---
Result<std::optional<kvpb::KeyValue>> get(KeyValueStore& store, std::string_view key);
Result<std::vector<std::optional<kvpb::KeyValue>>> batch_get(KeyValueStore& store,
                                                             const std::vector<std::string>& keys);
Result<kvpb::CommandResult> put(KeyValueStore& store, std::string_view key, std::string_view value,
                                uint64_t lease_id = 0);
Result<kvpb::CommandResult> del(KeyValueStore& store, std::string_view key);
// expected == nullopt: succeed only if the key is absent.
Result<kvpb::CommandResult> cas(KeyValueStore& store, std::string_view key,
                                const std::optional<std::string>& expected, std::string_view new_value,
                                uint64_t lease_id = 0);
Result<kvpb::CommandResult> cad(KeyValueStore& store, std::string_view key, std::string_view expected);
Result<kvpb::RangeResult> scan_prefix(KeyValueStore& store, std::string_view prefix, uint32_t limit = 0,
                                      std::string continuation = {});
Result<kvpb::Lease> lease_grant(KeyValueStore& store, uint64_t ttl_ms, uint64_t id = 0);
Status lease_revoke(KeyValueStore& store, uint64_t id);
Result<kvpb::Lease> lease_keepalive(KeyValueStore& store, uint64_t id);

// Turns a CommandResult that carries an apply-time error into an Error (what every
// KeyValueStore::execute does before returning).
Status result_status(const kvpb::CommandResult& r);

}  // namespace aspen::kv
