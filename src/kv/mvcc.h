// MVCC: revisions, the history of every key, reads at a past revision, and compaction.
//
// A revision is the Raft index of a command that changed at least one key: every key the
// command changed gets it as mod_revision, and the store revision moves to it. A command
// that changes nothing (a failed CAS, a delete of a missing key, a lease grant) leaves the
// store revision where it was. Revisions are therefore increasing but not consecutive, and
// the revision of a change is its log index: the mapping to the Raft log is the identity,
// and a plain put knows its revision as soon as it is proposed (which is why writes can be
// answered at commit; docs/watch.md explains the choice against etcd's dense counter).
//
// Every version is kept in the history tables (KvTables::put_history) in the same
// transaction as the change, until compaction drops what lies below the compacted revision.
// Compaction is a replicated command (the leader proposes it for retention, an operator may
// too); the physical deletion runs in bounded steps on every apply, in log order, so every
// replica holds the same history.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "core/hlc.h"
#include "core/types.h"
#include "kv/tables.h"

namespace aspen::kv {

inline constexpr std::string_view kCompactedRevisionKey = "__aspen/mvcc/compacted";
// Where the physical deletion below the compacted revision has got to ("<rev>.<pos>").
inline constexpr std::string_view kPurgeCursorKey = "__aspen/mvcc/purged";

// History entries each apply examines for deletion (a Compact command: kPurgePerCompact).
inline constexpr size_t kPurgePerCommand = 64;
inline constexpr size_t kPurgePerCompact = 10000;

// The revision of the last change (the newest history entry; compaction keeps it).
Result<Index> store_revision(KvTables& tables);
Result<Index> compacted_revision(KvTables& tables);

// The changes one command makes, collected while it applies and written when it ends: one
// history entry per key (its final state in the command), in key order.
class ChangeSet {
 public:
  void record_put(const kvpb::KeyValue& after, const std::optional<kvpb::KeyValue>& before);
  void record_delete(const kvpb::KeyValue& before, Index revision);
  bool empty() const { return changes_.empty(); }
  // Writes the history entries, which moves the store revision to `revision`. `hlc`, the
  // command's stamp, goes into delete records (a put's KeyValue carries it already).
  Status write(KvTables& tables, Index revision, uint64_t timestamp_ms,
               const std::optional<HlcTimestamp>& hlc = std::nullopt) const;

 private:
  std::map<std::string, kvpb::HistoryRecord, std::less<>> changes_;
};

// Whether a read at `revision` (not 0) can be served: Compacted naming the compacted
// revision below it, InvalidArgument above the store revision.
Status check_readable_revision(KvTables& tables, Index revision);

// One page of a range as it was at range.revision (checked readable), at most budget_bytes
// of keys and values. The range was validated. Continuation and has_more as for read_range.
Result<kvpb::RangeResult> read_range_at(KvTables& tables, const kvpb::RangeRequest& range, std::string_view end,
                                        const std::optional<std::string>& after, size_t budget_bytes,
                                        size_t& used_bytes);

// A page of history for watchers, read in one transaction: entries from (revision, position)
// on, with the store and compacted revisions they were read at, and (with_prev) each entry's
// previous version where it is still kept.
struct HistoryPage {
  Index revision = 0;   // the store revision
  Index compacted = 0;  // the compacted revision
  // The store's applied index in the same read (set by Store::read_history, 0 by
  // kv::read_history): the page's revisions hold every change up to that log index.
  Index applied = 0;
  std::vector<kvpb::HistoryEntry> entries;
  std::vector<std::optional<kvpb::KeyValue>> prev;  // parallel to entries, with with_prev
};
Result<HistoryPage> read_history(KvTables& tables, Index revision, uint32_t position, size_t limit, size_t max_bytes,
                                 bool with_prev);

// The Compact command: sets the compacted revision (refused at or below the current one, or
// above the store revision) and deletes a first bounded part of what lies below it.
Status apply_compact(KvTables& tables, const kvpb::Compact& compact, kvpb::CommandResult& result);
// Deletes up to `budget` history entries that nothing can read any more: versions below
// the compacted revision that a later version at or below it replaced, and deletions there.
Status purge_history(KvTables& tables, size_t budget);

// What the leader's retention asks to compact to: the highest revision such that at most
// keep_revisions revisions lie above it (by number) and nothing older than max_age_ms
// (leader time) stays, examining at most max_examined history entries. 0 disables a rule.
// nullopt when that is not above the compacted revision (nothing to do).
Result<std::optional<Index>> retention_target(KvTables& tables, uint64_t now_ms, uint64_t keep_revisions, uint64_t max_age_ms,
                               size_t max_examined);

}  // namespace aspen::kv
