#include "storage/apply_entries.h"

#include <fmt/format.h>

#include "core/limits.h"
#include "kv/command_hlc.h"
#include "kv/state_machine.h"
#include "raft/confchange.h"

namespace aspen::storage {

Result<std::vector<AppliedEntry>> apply_entries(kv::KvTables& tables, const std::vector<pb::Entry>& entries,
                                                ApplyState& state) {
  std::vector<AppliedEntry> out;
  for (const auto& e : entries) {
    if (e.index() <= state.applied) continue;
    if (e.index() != state.applied + 1) {
      return make_error(ErrorCode::kCorruption,
                        fmt::format("committed entry {} does not follow the applied index {}", e.index(),
                                    state.applied));
    }
    AppliedEntry a;
    a.index = e.index();
    a.term = e.term();
    a.type = e.type();
    if (e.type() == pb::ENTRY_CONF_CHANGE) {
      pb::ConfChange cc;
      if (cc.ParseFromString(e.data())) state.conf_state = raft::next_conf_state(state.conf_state, cc);
    } else if (!e.data().empty()) {
      kvpb::Command cmd;
      if (!cmd.ParseFromString(e.data())) {
        // Deterministic on every replica: the entry is refused, not the node.
        a.result.set_revision(e.index());
        a.result.set_error_code(static_cast<uint32_t>(ErrorCode::kCorruption));
        a.result.set_error_message("log entry does not decode as a command");
      } else {
        // Refused commands count too: their stamps are in the log all the same.
        if (auto t = kv::command_hlc(cmd); t && (!state.hlc || *t > *state.hlc)) state.hlc = *t;
        auto r = kv::apply_command(tables, cmd, e.index());
        if (!r) return std::unexpected(r.error());
        a.result = std::move(*r);
      }
    }
    state.applied = e.index();
    state.applied_term = e.term();
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<AppliedEntry>> apply_batch(kv::KvTables& tables, const WriteBatch& batch, ApplyState& state) {
  Result<std::vector<AppliedEntry>> results;
  if (!batch.on_history) {
    results = apply_entries(tables, *batch.committed, state);
  } else {
    const Index applied_before = state.applied;
    kv::HistoryRecorder recorder(limits::kMaxWatchEarlyBytes);
    tables.set_history_recorder(&recorder);
    results = apply_entries(tables, *batch.committed, state);
    tables.set_history_recorder(nullptr);
    if (results) report_history(batch, applied_before, recorder);
  }
  if (results && batch.on_results && !results->empty()) batch.on_results(*results);
  return results;
}

}  // namespace aspen::storage
