// ReadyCycle: the one driver of the Ready cycle, shared by all three places that run one: the
// node shell and the simulator (over NodeCore), and the Raft unit-test network
// (tests/raft/test_network.h, over a bare RaftCore). So the simulator runs exactly what a node
// does between taking a Ready and acknowledging it (which messages may leave before the fsync,
// what the write must make durable, when clients are answered), and the Raft tests check the
// core under that same sequence.
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
//
// The driver is a template over the core it drives (ReadyCycleCore below), so that the Raft
// tests, which have no KV state machine, run it too; ReadyCycle is the NodeCore one.
#pragma once

#include <concepts>
#include <memory>
#include <optional>
#include <vector>

#include "core/assert.h"
#include "node/node_core.h"

namespace aspen::node {

// What the driver asks of a core, in the order it asks within one step. A Raft-based core
// keeps RaftCore's Ready contract (raft.h) behind these five calls.
template <typename Core>
concept ReadyCycleCore = requires(Core& core, const raft::Ready& rd, const std::vector<pb::Entry>& applied,
                                  const storage::WriteOutcome& outcome) {
  // 1. begin(): the next Ready (nullopt: nothing to do). Taken once; the core hands out no
  //    other before on_persisted() acknowledges this one.
  { core.take_ready() } -> std::same_as<std::optional<raft::Ready>>;
  // 2. begin(), only when early sends are allowed: whether the core leads now
  //    (take_early_messages).
  { core.is_leader() } -> std::convertible_to<bool>;
  // 3. begin(): the committed entries the store applies with this step (`entries`, null for
  //    none: a core may hold some back for a later step) and whether the store may apply
  //    them after finish(), on its own thread (`is_async`; the caller then reports that apply
  //    to the core itself, and on_persisted() gets none of them).
  { core.take_entries_to_apply(rd).entries } -> std::convertible_to<std::shared_ptr<const std::vector<pb::Entry>>>;
  { core.take_entries_to_apply(rd).is_async } -> std::convertible_to<bool>;
  // 4. log_durable(): the Ready's snapshot, entries and hard state are durable and its
  //    messages are with the caller to send; nothing of it is applied yet.
  core.on_log_durable(rd);
  // 5. finish(): the step's synchronous apply is done (`applied`, the store's `outcome`):
  //    the core takes the results (membership, answers, read states) and acknowledges the
  //    Ready (RaftCore::advance).
  core.on_persisted(rd, applied, outcome);
};

template <ReadyCycleCore Core>
class BasicReadyCycle {
 public:
  // `persisted`: the hard state durable in the store when the core was created.
  explicit BasicReadyCycle(pb::HardState persisted) : persisted_(std::move(persisted)) {}

  struct Step {
    std::shared_ptr<raft::Ready> ready;  // shared: `batch` points into it
    std::vector<pb::Message> early;      // may be sent now, before the write (leader only)
    // The committed entries the store applies with this step (Core::take_entries_to_apply;
    // null: none). Shared: `batch` points into it.
    std::shared_ptr<const std::vector<pb::Entry>> to_apply;
    // to_apply may be applied after finish(), on the store's own thread; the caller then
    // reports it to the core (NodeCore::on_applied; NodeCore::ToApply::is_async).
    bool is_apply_async = false;
    storage::WriteBatch batch;           // what to make durable
    // False when the Ready holds only messages and read states: finish() may follow at once.
    bool needs_store = false;
    // False when the log part writes nothing (no entries, no snapshot, no new term or vote:
    // a hard state that only moves the commit index is not written, see write_batch_for).
    // With an asynchronous apply the step is then done at once and only the apply remains.
    bool needs_log_write = false;
    bool is_log_durable = false;  // log_durable() ran
  };

  // Takes the core's next Ready, if any and if none is in flight. `is_early_send` lets a
  // leader's appends leave before its own fsync (take_early_messages); the shell always
  // allows it, the simulator draws it from the seed.
  std::optional<Step> begin(Core& core, bool is_early_send = true);
  // The step's log part (snapshot, entries, hard state) is durable: records the new durable
  // hard state and returns the messages that may now be sent (Ready contract step 3: they
  // depend on the log, never on the apply); the core may answer writes committed and now
  // durable here. Optional: finish() does it if it was not called.
  std::vector<pb::Message> log_durable(Core& core, Step& step);
  // The step's apply is done too (or, for an asynchronous apply, handed off): lets the core
  // take the outcome (answers, membership, reads), advance, and returns any messages
  // log_durable() did not already return.
  std::vector<pb::Message> finish(Core& core, Step& step, const storage::WriteOutcome& outcome);

  bool is_in_flight() const { return is_in_flight_; }
  const pb::HardState& persisted() const { return persisted_; }

 private:
  pb::HardState persisted_;
  bool is_in_flight_ = false;
};

using ReadyCycle = BasicReadyCycle<NodeCore>;
// Instantiated once, in ready_cycle.cc.
extern template class BasicReadyCycle<NodeCore>;

// --- implementation (here because every driver's core instantiates it) ---

template <ReadyCycleCore Core>
auto BasicReadyCycle<Core>::begin(Core& core, bool is_early_send) -> std::optional<Step> {
  if (is_in_flight_) return std::nullopt;
  auto rd = core.take_ready();
  if (!rd) return std::nullopt;
  Step step;
  step.ready = std::make_shared<raft::Ready>(std::move(*rd));
  if (is_early_send) step.early = take_early_messages(*step.ready, core.is_leader(), persisted_);
  auto to_apply = core.take_entries_to_apply(*step.ready);
  step.to_apply = std::move(to_apply.entries);
  step.is_apply_async = to_apply.is_async;
  step.batch = write_batch_for(*step.ready, &persisted_);
  step.batch.committed = step.to_apply.get();
  // A hard state that only moves the commit index needs no write: Raft recomputes the
  // commit index, and a restarted node's is at least its applied index.
  step.needs_log_write = !step.ready->entries.empty() || step.ready->snapshot.has_value() || step.batch.is_sync_required;
  step.needs_store = step.needs_log_write || step.to_apply != nullptr;
  is_in_flight_ = true;
  return step;
}

template <ReadyCycleCore Core>
std::vector<pb::Message> BasicReadyCycle<Core>::log_durable(Core& core, Step& step) {
  ASPEN_ASSERT_MSG(is_in_flight_ && !step.is_log_durable, "log_durable() once per step in flight");
  step.is_log_durable = true;
  if (step.ready->hard_state) persisted_ = *step.ready->hard_state;
  std::vector<pb::Message> messages = std::move(step.ready->messages);
  step.ready->messages.clear();
  core.on_log_durable(*step.ready);
  return messages;
}

template <ReadyCycleCore Core>
std::vector<pb::Message> BasicReadyCycle<Core>::finish(Core& core, Step& step, const storage::WriteOutcome& outcome) {
  ASPEN_ASSERT_MSG(is_in_flight_, "finish() without a step in flight");
  std::vector<pb::Message> messages;
  if (!step.is_log_durable) messages = log_durable(core, step);
  is_in_flight_ = false;
  static const std::vector<pb::Entry> kNone;
  core.on_persisted(*step.ready, step.to_apply && !step.is_apply_async ? *step.to_apply : kNone, outcome);
  return messages;
}

}  // namespace aspen::node
