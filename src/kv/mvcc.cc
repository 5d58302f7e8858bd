#include "kv/mvcc.h"

#include <fmt/format.h>

#include <charconv>

#include "core/assert.h"
#include "core/buggify.h"
#include "core/limits.h"
#include "kv/command_hlc.h"
#include "kv/commands.h"

namespace aspen::kv {

namespace {

// The compacted revision and the purge cursor live in the key space under the reserved
// prefix, so snapshots and every replica carry them with the keys. Kept as "<a>" or
// "<a>.<b>" in decimal.
Result<std::pair<uint64_t, uint64_t>> get_pair(KvTables& t, std::string_view key) {
  auto kv = t.get(key);
  if (!kv) return std::unexpected(kv.error());
  if (!*kv) return std::pair<uint64_t, uint64_t>{0, 0};
  const std::string& v = (*kv)->value();
  uint64_t a = 0;
  uint64_t b = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), a);
  if (ec == std::errc() && p != v.data() + v.size() && *p == '.') {
    auto r = std::from_chars(p + 1, v.data() + v.size(), b);
    p = r.ptr;
    ec = r.ec;
  }
  if (ec != std::errc() || p != v.data() + v.size()) {
    return make_error(ErrorCode::kCorruption, fmt::format("the store's record {} does not parse", key));
  }
  return std::pair<uint64_t, uint64_t>{a, b};
}

Result<uint64_t> get_number(KvTables& t, std::string_view key) {
  auto p = get_pair(t, key);
  if (!p) return std::unexpected(p.error());
  return p->first;
}

Status put_value(KvTables& t, std::string_view key, std::string value) {
  kvpb::KeyValue kv;
  kv.set_key(std::string(key));
  kv.set_value(std::move(value));
  kv.set_version(1);
  return t.put(kv);
}

}  // namespace

void HistoryRecorder::record(const kvpb::HistoryEntry& entry) {
  if (is_overflowed_) return;
  bytes_ += entry.ByteSizeLong();
  if (bytes_ > max_bytes_) {
    is_overflowed_ = true;
    entries_ = {};
    return;
  }
  entries_.push_back(entry);
}

Result<Index> store_revision(KvTables& tables) { return tables.last_history_revision(); }
Result<Index> compacted_revision(KvTables& tables) { return get_number(tables, kCompactedRevisionKey); }

void ChangeSet::record_put(const kvpb::KeyValue& after, const std::optional<kvpb::KeyValue>& before) {
  auto [it, is_new] = changes_.try_emplace(after.key());
  if (is_new) it->second.set_prev_mod_revision(before ? before->mod_revision() : 0);
  *it->second.mutable_kv() = after;
  it->second.set_is_delete(false);
}

void ChangeSet::record_delete(const kvpb::KeyValue& before, Index revision) {
  auto [it, is_new] = changes_.try_emplace(before.key());
  if (is_new) it->second.set_prev_mod_revision(before.mod_revision());
  it->second.clear_kv();
  it->second.mutable_kv()->set_key(before.key());
  it->second.mutable_kv()->set_mod_revision(revision);
  it->second.set_is_delete(true);
}

Status ChangeSet::write(KvTables& tables, Index revision, uint64_t timestamp_ms,
                       const std::optional<HlcTimestamp>& hlc) const {
  ASPEN_ASSERT(!changes_.empty());
  ASPEN_ASSERT(changes_.size() <= UINT32_MAX);
  uint32_t position = 0;
  for (const auto& [key, record] : changes_) {
    kvpb::HistoryEntry e;
    e.set_revision(revision);
    e.set_position(position++);
    *e.mutable_record() = record;
    e.mutable_record()->set_timestamp_ms(timestamp_ms);
    // A put's record carries the stamp already (its KeyValue); a delete's gets it here.
    if (record.is_delete() && hlc) to_proto(*hlc, e.mutable_record()->mutable_kv()->mutable_mod_hlc());
    if (auto s = tables.put_history(e); !s) return s;
    if (auto* recorder = tables.history_recorder()) recorder->record(e);
  }
  return {};
}

Status check_readable_revision(KvTables& tables, Index revision) {
  auto compacted = compacted_revision(tables);
  if (!compacted) return std::unexpected(compacted.error());
  if (revision < *compacted) {
    return make_error(ErrorCode::kCompacted,
                      fmt::format("revision {} was compacted: the oldest readable revision is {}", revision, *compacted));
  }
  auto current = store_revision(tables);
  if (!current) return std::unexpected(current.error());
  if (revision > *current) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("revision {} is in the future: the store is at revision {}", revision, *current));
  }
  return {};
}

Result<kvpb::RangeResult> read_range_at(KvTables& tables, const kvpb::RangeRequest& range, std::string_view end,
                                        const std::optional<std::string>& after, size_t budget_bytes,
                                        size_t& used_bytes) {
  ASPEN_ASSERT(range.revision() != 0);
  constexpr size_t kKeysPerStep = 256;
  // Keys that have history but no version at the revision (created later) cost a look each;
  // a page stops after this many looks, so its cost stays bounded whatever the history.
  constexpr size_t kMaxExaminedPerPage = 4 * limits::kMaxScanResults;
  const size_t limit = range.limit() == 0 ? limits::kDefaultScanLimit : range.limit();
  kvpb::RangeResult out;
  out.set_revision(range.revision());
  std::optional<std::string> cursor = after;
  size_t examined = 0;
  size_t bytes = 0;
  uint64_t count = 0;
  bool is_cut = false;
  while (!is_cut) {
    auto keys = tables.history_keys(range.start(), end, cursor, kKeysPerStep);
    if (!keys) return std::unexpected(keys.error());
    for (auto& key : *keys) {
      if (count == limit || bytes > budget_bytes || examined == kMaxExaminedPerPage) {
        is_cut = true;
        break;
      }
      ++examined;
      auto version = tables.history_floor(key, range.revision());
      if (!version) return std::unexpected(version.error());
      cursor = std::move(key);
      if (!*version || (*version)->record().is_delete()) continue;
      ++count;
      const auto& kv = (*version)->record().kv();
      bytes += kv.key().size() + kv.value().size();
      if (!range.is_count_only()) *out.add_kvs() = kv;
    }
    if (keys->size() < kKeysPerStep) break;
  }
  if (is_cut) {
    // More keys with history follow (not all need exist at the revision: a next page may be
    // empty, and says so with has_more false).
    ASPEN_PROBE("kv.range_at_revision_cut");
    out.set_has_more(true);
    out.set_continuation(std::string(1, kContinuationVersion) + *cursor);
  }
  out.set_count(count);
  used_bytes += bytes;
  return out;
}

Result<HistoryPage> read_history(KvTables& tables, Index revision, uint32_t position, size_t limit, size_t max_bytes,
                                 bool with_prev) {
  HistoryPage page;
  auto compacted = compacted_revision(tables);
  if (!compacted) return std::unexpected(compacted.error());
  auto current = store_revision(tables);
  if (!current) return std::unexpected(current.error());
  page.compacted = *compacted;
  page.revision = *current;
  // Below the compacted revision the history has gaps: nothing is served from there.
  if (revision < page.compacted) return page;
  auto entries = tables.history_from(revision, position, limit, max_bytes);
  if (!entries) return std::unexpected(entries.error());
  page.entries = std::move(*entries);
  if (!with_prev) return page;
  page.prev.reserve(page.entries.size());
  for (const auto& e : page.entries) {
    const Index prev_rev = e.record().prev_mod_revision();
    if (prev_rev == 0) {
      page.prev.emplace_back();
      continue;
    }
    auto prev = tables.history_floor(e.record().kv().key(), prev_rev);
    if (!prev) return std::unexpected(prev.error());
    // Compacted away (an older kept version is not the one replaced): none.
    if (*prev && (*prev)->revision() == prev_rev && !(*prev)->record().is_delete()) {
      page.prev.emplace_back((*prev)->record().kv());
    } else {
      page.prev.emplace_back();
    }
  }
  return page;
}

Status purge_history(KvTables& tables, size_t budget) {
  auto compacted = compacted_revision(tables);
  if (!compacted) return std::unexpected(compacted.error());
  auto cursor = get_pair(tables, kPurgeCursorKey);
  if (!cursor) return std::unexpected(cursor.error());
  auto [rev, pos] = *cursor;
  if (rev >= *compacted || budget == 0) return {};
  // Bounded in bytes too: deciding loads the values.
  auto entries = tables.history_from(rev, static_cast<uint32_t>(pos), budget, limits::kMaxScanResultBytes);
  if (!entries) return std::unexpected(entries.error());
  bool is_done = entries->size() < budget;
  for (const auto& e : *entries) {
    if (e.revision() >= *compacted) {
      is_done = true;
      break;
    }
    const std::string& key = e.record().kv().key();
    // The version this one replaced, if it is still there, lies below an earlier compacted
    // revision (which kept it as the key's version then): this one, at or below the new
    // compacted revision, replaces it for every readable revision.
    if (e.revision() > 0) {
      auto before = tables.history_floor(key, e.revision() - 1);
      if (!before) return std::unexpected(before.error());
      if (*before) {
        ASPEN_PROBE("kv.history_purged");
        if (auto s = tables.erase_history((*before)->revision(), (*before)->position(), key); !s) return s;
      }
    }
    auto kept = tables.history_floor(key, *compacted);
    if (!kept) return std::unexpected(kept.error());
    const bool is_the_kept_version =
        *kept && (*kept)->revision() == e.revision() && (*kept)->position() == e.position();
    if (!is_the_kept_version || e.record().is_delete()) {
      if (!is_the_kept_version) ASPEN_PROBE("kv.history_purged");
      if (auto s = tables.erase_history(e.revision(), e.position(), key); !s) return s;
    }
    rev = e.revision();
    pos = uint64_t{e.position()} + 1;
  }
  if (is_done) {
    rev = *compacted;
    pos = 0;
  }
  return put_value(tables, kPurgeCursorKey, fmt::format("{}.{}", rev, pos));
}

Status apply_compact(KvTables& tables, const kvpb::Compact& compact, kvpb::CommandResult& result) {
  auto compacted = compacted_revision(tables);
  if (!compacted) return std::unexpected(compacted.error());
  auto current = store_revision(tables);
  if (!current) return std::unexpected(current.error());
  auto refuse = [&](ErrorCode code, std::string message) {
    result.set_succeeded(false);
    result.set_error_code(static_cast<uint32_t>(code));
    result.set_error_message(std::move(message));
    return Status{};
  };
  if (compact.revision() <= *compacted) {
    return refuse(ErrorCode::kCompacted, fmt::format("revision {} is already compacted (the store is compacted to {})",
                                                     compact.revision(), *compacted));
  }
  if (compact.revision() > *current) {
    return refuse(ErrorCode::kInvalidArgument, fmt::format("cannot compact to revision {}: the store is at revision {}",
                                                           compact.revision(), *current));
  }
  if (auto s = put_value(tables, kCompactedRevisionKey, std::to_string(compact.revision())); !s) return s;
  return purge_history(tables, kPurgePerCompact);
}

Result<std::optional<Index>> retention_target(KvTables& tables, uint64_t now_ms, uint64_t keep_revisions, uint64_t max_age_ms,
                               size_t max_examined) {
  auto compacted = compacted_revision(tables);
  if (!compacted) return std::unexpected(compacted.error());
  auto current = store_revision(tables);
  if (!current) return std::unexpected(current.error());
  Index target = *compacted;
  if (keep_revisions > 0 && *current > keep_revisions) target = std::max(target, *current - keep_revisions);
  if (max_age_ms > 0 && now_ms > max_age_ms) {
    const uint64_t cutoff_ms = now_ms - max_age_ms;
    auto entries = tables.history_from(*compacted, 0, max_examined, limits::kMaxScanResultBytes);
    if (!entries) return std::unexpected(entries.error());
    Index by_age = *compacted;
    for (const auto& e : *entries) {
      // Everything below the first young entry is old: compacting to it drops only those.
      by_age = e.revision();
      if (e.record().timestamp_ms() > cutoff_ms) break;
    }
    target = std::max(target, by_age);
  }
  target = std::min(target, *current);
  if (target <= *compacted) return std::optional<Index>{};
  return std::optional<Index>(target);
}

}  // namespace aspen::kv
