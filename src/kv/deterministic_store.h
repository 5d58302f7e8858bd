// DeterministicKeyValueStore: a single-process KeyValueStore with the exact semantics of the
// replicated state machine (same apply() and read path), no Raft and no disk. Time is a
// parameter: tests advance it with advance_time_ms(), and expired leases are removed the way
// a leader would (a LeaseExpire command). For unit-testing layers above the KV store.
#pragma once

#include <mutex>

#include "kv/key_value_store.h"
#include "core/types.h"
#include "kv/mem_tables.h"

namespace aspen::kv {

class DeterministicKeyValueStore final : public KeyValueStore {
 public:
  explicit DeterministicKeyValueStore(uint64_t start_time_ms = 1'000'000) : now_ms_(start_time_ms) {}

  Result<kvpb::CommandResult> execute(kvpb::Command cmd) override;
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& request) override;
  Result<std::vector<kvpb::Lease>> list_leases() override;

  // Moves the clock forward and expires leases whose TTL ran out.
  void advance_time_ms(uint64_t delta_ms);
  uint64_t now_ms() const;
  // The last log index used (one per command), not the store revision (kv/mvcc.h).
  uint64_t revision() const;
  // Versions kept in the history (for tests of compaction).
  size_t history_count() const;

 private:
  Result<kvpb::CommandResult> apply_locked(kvpb::Command cmd);

  mutable std::mutex mu_;  // layers may call from several threads in tests
  MemKvTables tables_;
  uint64_t now_ms_;
  Index revision_ = 0;
};

}  // namespace aspen::kv
