// ReadyCycle: the one driver of NodeCore's Ready cycle, shared by the node shell and the
// simulator, so that the simulator runs exactly what a node does between taking a Ready and
// acknowledging it (which messages may leave before the fsync, what the write must make
// durable, when clients are answered).
//
//   ReadyCycle cycle(store.initial_state().hard_state);   // per NodeCore
//   if (auto step = cycle.begin(core)) {
//     send(step->early);                                 // appends/heartbeats of a leader
//     store.write_log(step->batch);                      // the one fsync (if needs_store)
//     send(cycle.log_durable(core, *step));              // acks, votes; answers at commit
//     auto applied = store.apply(step->batch);           // the state machine, no fsync wait
//     send(cycle.finish(core, *step, {applied}));        // answers, membership, reads
//   }
// A failed write_log or apply is retried later (the same phase, the same batch); neither
// log_durable() nor finish() is called for a phase that failed.
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
    // The committed entries the store applies with this step (NodeCore::take_entries_to_apply;
    // null: none). Shared: `batch` points into it.
    std::shared_ptr<const std::vector<pb::Entry>> to_apply;
    // to_apply may be applied after finish(), on the store's own thread; the driver then
    // reports it with NodeCore::on_applied (NodeCore::ToApply::is_async).
    bool is_apply_async = false;
    storage::WriteBatch batch;           // what to make durable
    // False when the Ready holds only messages and read states: finish() may follow at once.
    bool needs_store = false;
    bool is_log_durable = false;  // log_durable() ran
  };

  // Takes the core's next Ready, if any and if none is in flight. `is_early_send` lets a
  // leader's appends leave before its own fsync (take_early_messages); the shell always
  // allows it, the simulator draws it from the seed.
  std::optional<Step> begin(NodeCore& core, bool is_early_send = true);
  // The step's log part (snapshot, entries, hard state) is durable: records the new durable
  // hard state and returns the messages that may now be sent (Ready contract step 3: they
  // depend on the log, never on the apply); the core may answer writes committed and now
  // durable here. Optional: finish() does it if it was not called.
  std::vector<pb::Message> log_durable(NodeCore& core, Step& step);
  // The step's apply is done too (or, for an asynchronous apply, handed off): lets the core
  // take the outcome (answers, membership, reads), advance, and returns any messages
  // log_durable() did not already return.
  std::vector<pb::Message> finish(NodeCore& core, Step& step, const storage::WriteOutcome& outcome);

  bool is_in_flight() const { return is_in_flight_; }
  const pb::HardState& persisted() const { return persisted_; }

 private:
  pb::HardState persisted_;
  bool is_in_flight_ = false;
};

}  // namespace aspen::node
