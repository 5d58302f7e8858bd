#include "kv/deterministic_store.h"

#include "core/limits.h"
#include "kv/commands.h"
#include "kv/state_machine.h"

namespace aspen::kv {

Result<kvpb::CommandResult> DeterministicKeyValueStore::apply_locked(kvpb::Command cmd) {
  cmd.set_timestamp_ms(now_ms_);
  return apply_command(tables_, cmd, ++revision_);
}

Result<kvpb::CommandResult> DeterministicKeyValueStore::execute(kvpb::Command cmd) {
  // The same boundary validation a node performs before proposing.
  if (auto s = validate_command(cmd); !s) return std::unexpected(s.error());
  std::lock_guard lock(mu_);
  auto r = apply_locked(std::move(cmd));
  // As every KeyValueStore: a command refused at apply time is an error.
  if (r) {
    if (auto s = result_status(*r); !s) return std::unexpected(s.error());
  }
  return r;
}

Result<kvpb::RangeResult> DeterministicKeyValueStore::range(const kvpb::RangeRequest& request) {
  std::lock_guard lock(mu_);
  return read_range(tables_, request);
}

Result<std::vector<kvpb::Lease>> DeterministicKeyValueStore::list_leases() {
  std::lock_guard lock(mu_);
  return tables_.list_leases(0, kNoLimit);
}

void DeterministicKeyValueStore::advance_time_ms(uint64_t delta_ms) {
  std::lock_guard lock(mu_);
  now_ms_ += delta_ms;
  auto ids = expired_leases(tables_, now_ms_, limits::kMaxLeasesPerExpire);
  if (!ids || ids->empty()) return;
  kvpb::Command cmd;
  for (uint64_t id : *ids) cmd.mutable_lease_expire()->add_ids(id);
  (void)apply_locked(std::move(cmd));
}

uint64_t DeterministicKeyValueStore::now_ms() const {
  std::lock_guard lock(mu_);
  return now_ms_;
}

uint64_t DeterministicKeyValueStore::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

size_t DeterministicKeyValueStore::history_count() const {
  std::lock_guard lock(mu_);
  return tables_.history_count();
}

}  // namespace aspen::kv
