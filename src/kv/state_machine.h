// The replicated key-value state machine: apply() for commands in committed Raft entries and
// read_range() for reads, both over KvTables.
//
// apply() is deterministic: its only inputs are the tables, the command and the revision
// (the Raft index of the entry). Time comes from the command's leader-stamped timestamp,
// never from a local clock, so every replica reaches the same state. Semantic failures (a
// CAS that does not match, an unknown lease) are results, identical on every replica; an
// Error return means the storage itself failed and the whole batch must be aborted.
#pragma once

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "core/types.h"
#include "kv/tables.h"

namespace aspen::kv {

Result<kvpb::CommandResult> apply_command(KvTables& tables, const kvpb::Command& cmd, Index revision);

// Reads a range (get = a range of one key). Validates the request and its continuation. A
// page ends at the request's limit or once it holds limits::kMaxScanResultBytes of keys and
// values (plus the record that crossed it), so it always fits a frame; has_more and the
// continuation say where the next page starts.
Result<kvpb::RangeResult> read_range(KvTables& tables, const kvpb::RangeRequest& range);
// The same within `budget_bytes` (0: an empty page with has_more); adds the bytes returned to
// `used_bytes`. A transaction's ranges share one budget this way.
Result<kvpb::RangeResult> read_range_within(KvTables& tables, const kvpb::RangeRequest& range, size_t budget_bytes,
                                            size_t& used_bytes);

// Leases whose expiry time is at or before now_ms, oldest first, at most `limit`: what the
// leader proposes in a LeaseExpire command.
Result<std::vector<uint64_t>> expired_leases(KvTables& tables, uint64_t now_ms, size_t limit);

}  // namespace aspen::kv
