// Internal to sim/: the watch checker. A watcher on every node reads that node's history the
// way the node's WatchService does (Store::read_history from a cursor, after every apply),
// and the checker holds what it delivers to the watch guarantees (docs/watch.md):
// - ordered and unique: each watcher's (revision, position) strictly increase;
// - consistent: every watcher that delivers a revision delivers the same changes for it;
// - reliable: between its start (or a restart after compaction overtook it) and its cursor,
//   a watcher delivers every revision at which a command changed a key (the applied
//   commands say which: their result's revision is their own index).
// Watchers keep their cursor across crashes and snapshot installs of their node, as a client
// resuming from its last revision + 1 does.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/types.h"
#include "storage/mem_store.h"

namespace aspen::sim {

class WatchChecker {
 public:
  // After node `id` applied something: its watcher reads what is new. A failure's message,
  // or "" if all is well.
  std::string observe(NodeId id, const storage::MemStore& store);
  // The command at `index` changed at least one key (on every replica alike).
  std::string note_mutation(Index index, bool is_mutation);
  // At the end: every watcher delivered every mutating revision in the spans it covered.
  std::string check_complete() const;
  uint64_t events_delivered() const { return events_; }
  uint64_t restarts() const { return restarts_; }

 private:
  struct Watcher {
    Index next_revision = 1;
    uint32_t next_position = 0;
    Index span_start = 1;                    // since the last restart
    std::vector<Index> revisions;            // delivered in the current span, ascending
    std::vector<std::pair<Index, Index>> closed_spans;  // [start, last delivered through]
    std::vector<std::vector<Index>> closed_revisions;
    Index delivered_through = 0;             // every change up to here was read
  };
  std::map<NodeId, Watcher> watchers_;
  std::map<Index, uint64_t> digest_;         // revision -> fingerprint of its changes
  std::map<Index, bool> is_mutation_;        // index -> whether its command changed a key
  uint64_t events_ = 0;
  uint64_t restarts_ = 0;
};

}  // namespace aspen::sim
