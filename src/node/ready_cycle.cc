#include "node/ready_cycle.h"

#include "core/assert.h"

namespace aspen::node {

std::optional<ReadyCycle::Step> ReadyCycle::begin(NodeCore& core, bool is_early_send) {
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
  step.needs_store = !step.ready->entries.empty() || step.ready->snapshot.has_value() || step.batch.is_sync_required ||
                     step.to_apply != nullptr;
  is_in_flight_ = true;
  return step;
}

std::vector<pb::Message> ReadyCycle::log_durable(NodeCore& core, Step& step) {
  ASPEN_ASSERT_MSG(is_in_flight_ && !step.is_log_durable, "log_durable() once per step in flight");
  step.is_log_durable = true;
  if (step.ready->hard_state) persisted_ = *step.ready->hard_state;
  std::vector<pb::Message> messages = std::move(step.ready->messages);
  step.ready->messages.clear();
  core.on_log_durable(*step.ready);
  return messages;
}

std::vector<pb::Message> ReadyCycle::finish(NodeCore& core, Step& step, const storage::WriteOutcome& outcome) {
  ASPEN_ASSERT_MSG(is_in_flight_, "finish() without a step in flight");
  std::vector<pb::Message> messages;
  if (!step.is_log_durable) messages = log_durable(core, step);
  is_in_flight_ = false;
  static const std::vector<pb::Entry> kNone;
  core.on_persisted(*step.ready, step.to_apply && !step.is_apply_async ? *step.to_apply : kNone, outcome);
  return messages;
}

}  // namespace aspen::node
