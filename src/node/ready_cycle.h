// ReadyCycle: the one driver of NodeCore's Ready cycle, shared by the node shell and the
// simulator, so that the simulator runs exactly what a node does between taking a Ready and
// acknowledging it (which messages may leave before the fsync, what the write must make
// durable, when clients are answered).
//
//   ReadyCycle cycle(store.initial_state().hard_state);   // per NodeCore
//   if (auto step = cycle.begin(core)) {
//     send(step->early);                                 // appends/heartbeats of a leader
//     Result<WriteOutcome> out = step->needs_store ? store.write(step->batch)   // the fsync
//                                                   : WriteOutcome{};
//     // on failure: retry the same step's write later; never call finish() for it
//     send(cycle.finish(core, *step, *out));              // after durability; answers queued
//   }
// One Ready is in flight at a time (is_in_flight()); what arrives meanwhile forms the next,
// bigger batch (group commit). The store write may run on another thread; begin() and
// finish() run where the core runs.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "node/node_core.h"

namespace aspen::node {

class ReadyCycle {
 public:
  // `persisted`: the hard state durable in the store when the core was created.
  explicit ReadyCycle(pb::HardState persisted) : persisted_(std::move(persisted)) {}

  struct Step {
    std::shared_ptr<raft::Ready> ready;  // shared: `batch` points into it
    std::vector<pb::Message> early;      // may be sent now, before the write (leader only)
    storage::WriteBatch batch;           // what to make durable
    // False when the Ready holds only messages and read states: finish() may follow at once.
    bool needs_store = false;
  };

  // Takes the core's next Ready, if any and if none is in flight. `is_early_send` lets a
  // leader's appends leave before its own fsync (take_early_messages); the shell always
  // allows it, the simulator draws it from the seed.
  std::optional<Step> begin(NodeCore& core, bool is_early_send = true);
  // The step's write is durable (or needed none): records the new durable hard state, lets
  // the core apply the outcome (answers, membership, reads) and returns the messages that
  // may now be sent (Ready contract step 3).
  std::vector<pb::Message> finish(NodeCore& core, const Step& step, const storage::WriteOutcome& outcome);

  bool is_in_flight() const { return is_in_flight_; }
  const pb::HardState& persisted() const { return persisted_; }

 private:
  pb::HardState persisted_;
  bool is_in_flight_ = false;
};

}  // namespace aspen::node
