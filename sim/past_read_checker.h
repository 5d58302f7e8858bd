// Internal to sim/: reads at past revisions (MVCC, docs/watch.md "Reading the past"). When a
// node's store reaches a new revision, the checker sometimes records the user keys as they
// are then (a checkpoint); after later events it reads some node's store at a recorded
// revision and holds the answer to the checkpoint: a read at revision R returns exactly the
// keys, values, versions and revisions that were current at R, on every replica, until R is
// compacted (then the read fails with Compacted, nothing else).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/types.h"
#include "storage/mem_store.h"

namespace aspen::sim {

class PastReadChecker {
 public:
  // After node `id` changed (applied, restarted, installed a snapshot). A failure's
  // message, or "" if all is well.
  std::string observe(NodeId id, const storage::MemStore& store);
  uint64_t reads_checked() const { return reads_checked_; }
  uint64_t reads_compacted() const { return reads_compacted_; }

 private:
  // revision -> the user keys then, as a serialized RangeResult's kvs.
  std::map<Index, std::string> checkpoints_;
  uint64_t observed_ = 0;
  uint64_t reads_checked_ = 0;
  uint64_t reads_compacted_ = 0;
};

}  // namespace aspen::sim
