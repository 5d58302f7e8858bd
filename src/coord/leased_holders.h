// Internal to src/coord: holder lists whose members are kept alive by leases, shared by
// DistributedSemaphore and DistributedRWLock.
//
// The object's state key lists holders; each holder also owns a marker key
// "<state key>:<holder>" attached to its lease, written in the same Txn that adds it. A listed
// holder whose marker is gone has lost its lease (crashed or stopped renewing) and is pruned
// by the next writer: markers are only ever deleted by lease expiry or by the Txn that removes
// the holder from the list, so "listed without a marker" can only mean "expired".
#pragma once

#include <set>
#include <string>
#include <vector>

#include "coord/coord_common.h"

namespace aspen::coord {

struct LeasedHolder {
  std::string id;
  uint64_t count = 1;  // permits (semaphore); 1 for lock roles
  uint64_t lease_id = 0;
  friend bool operator==(const LeasedHolder&, const LeasedHolder&) = default;
};

void write_holders(RecordWriter& w, const std::vector<LeasedHolder>& holders);
Result<std::vector<LeasedHolder>> read_holders(RecordReader& r, size_t max_holders);
// Holder ids whose marker exists under "<state_key>:".
Result<std::set<std::string>> live_holder_ids(kv::KeyValueStore& store, const std::string& state_key,
                                              size_t max_holders);
std::string marker_key(const std::string& state_key, std::string_view holder);
// Pure: drops holders that are not live. Returns whether anything was dropped.
bool prune_holders(std::vector<LeasedHolder>& holders, const std::set<std::string>& live);

}  // namespace aspen::coord
