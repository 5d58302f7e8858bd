#include "kv/sessions.h"

#include <charconv>

#include <fmt/format.h>

#include "core/buggify.h"
#include "core/limits.h"

namespace aspen::kv {

namespace {

kvpb::CommandResult refused(Index revision, std::string message) {
  kvpb::CommandResult r;
  r.set_revision(revision);
  r.set_succeeded(false);
  r.set_error_code(static_cast<uint32_t>(ErrorCode::kSessionExpired));
  r.set_error_message(std::move(message));
  return r;
}

// A session's stored record (absent for a new session) and what it holds.
struct LoadedSession {
  std::optional<kvpb::KeyValue> kv;
  kvpb::SessionRecord record;
};

// Records in the session table are written only here; one that does not parse is damage.
Result<LoadedSession> load_session(KvTables& tables, uint64_t client_id) {
  auto kv = tables.get(session_key(client_id));
  if (!kv) return std::unexpected(kv.error());
  LoadedSession out;
  out.kv = std::move(*kv);
  if (out.kv && !out.record.ParseFromString(out.kv->value())) {
    return make_error(ErrorCode::kCorruption, fmt::format("the record of client session {:016x} does not parse", client_id));
  }
  return out;
}

// Writes `value` under `key`, whose current record (read earlier in this apply) is `existing`.
Status store_record(KvTables& tables, const std::optional<kvpb::KeyValue>& existing, std::string key,
                    std::string value, Index revision) {
  kvpb::KeyValue kv;
  kv.set_key(std::move(key));
  kv.set_value(std::move(value));
  kv.set_mod_revision(revision);
  kv.set_create_revision(existing ? existing->create_revision() : revision);
  kv.set_version(existing ? existing->version() + 1 : 1);
  return tables.put(kv);
}

// The number of sessions kept, and its record.
Result<std::pair<uint64_t, std::optional<kvpb::KeyValue>>> session_count(KvTables& tables) {
  auto kv = tables.get(kSessionCountKey);
  if (!kv) return std::unexpected(kv.error());
  if (!*kv) return std::pair<uint64_t, std::optional<kvpb::KeyValue>>{0, std::nullopt};
  uint64_t n = 0;
  const std::string& v = (*kv)->value();
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || end != v.data() + v.size()) {
    return make_error(ErrorCode::kCorruption, "the count of client sessions does not parse");
  }
  return std::pair<uint64_t, std::optional<kvpb::KeyValue>>{n, std::move(*kv)};
}

// Makes room for one more session: evicts the longest idle one if it has been idle long
// enough that none of its writes can still be in flight. false: no room.
Result<bool> make_room(KvTables& tables, uint64_t now_ms, uint64_t& count) {
  if (count < limits::kMaxClientSessions) return true;
  ASPEN_PROBE("kv.session_table_full");
  const std::string start(kSessionKeyPrefix);
  std::string end = start;
  end.back() = static_cast<char>(end.back() + 1);
  std::optional<std::string> after;
  std::optional<std::pair<uint64_t, std::string>> idlest;  // (last active, key)
  while (true) {  // in pages, so memory stays bounded by a page of records
    auto page = tables.scan(start, end, after, 256, limits::kMaxScanResultBytes);
    if (!page) return std::unexpected(page.error());
    if (page->empty()) break;
    for (const auto& kv : *page) {
      kvpb::SessionRecord rec;
      if (!rec.ParseFromString(kv.value())) return make_error(ErrorCode::kCorruption, "a client session record does not parse");
      if (!idlest || rec.last_active_ms() < idlest->first) idlest.emplace(rec.last_active_ms(), kv.key());
    }
    after = page->back().key();
  }
  if (!idlest || now_ms < idlest->first + limits::kMinSessionIdleBeforeEvictionMs) return false;
  if (auto s = tables.erase(idlest->second); !s) return std::unexpected(s.error());
  --count;
  return true;
}

// What is kept of an answer: the answer itself, or a summary when it is large.
kvpb::CommandResult kept_form(const kvpb::CommandResult& result) {
  if (result.ByteSizeLong() <= limits::kMaxSessionResultBytes) return result;
  ASPEN_PROBE("kv.session_result_summarized");
  return refused(result.revision(),
                 fmt::format("this write was applied at revision {} ({}), but its answer ({} bytes) was too large to "
                             "keep for a retry",
                             result.revision(), result.succeeded() ? "its condition held" : "its condition failed",
                             result.ByteSizeLong()));
}

}  // namespace

std::string session_key(uint64_t client_id) { return fmt::format("{}{:016x}", kSessionKeyPrefix, client_id); }

Status validate_session(const kvpb::Session& s) {
  if (s.client_id() == 0) return make_error(ErrorCode::kInvalidArgument, "a session's client id must be non-zero");
  if (s.sequence() == 0) return make_error(ErrorCode::kInvalidArgument, "a session's writes are numbered from 1");
  if (s.first_incomplete() == 0 || s.first_incomplete() > s.sequence()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("first_incomplete {} must be in [1, sequence {}]", s.first_incomplete(), s.sequence()));
  }
  return {};
}

bool session_has_seen(const kvpb::SessionRecord& record, uint64_t sequence) {
  if (sequence < record.first_incomplete()) return true;
  for (const auto& kept : record.results()) {
    if (kept.sequence() == sequence) return true;
  }
  return false;
}

Result<kvpb::CommandResult> apply_in_session(KvTables& tables, const kvpb::Command& cmd, Index revision,
                                             const std::function<Result<kvpb::CommandResult>()>& apply) {
  const kvpb::Session& s = cmd.session();
  auto loaded = load_session(tables, s.client_id());
  if (!loaded) return std::unexpected(loaded.error());
  kvpb::SessionRecord& rec = loaded->record;
  const bool is_new = !loaded->kv.has_value();
  uint64_t count = 0;
  std::optional<kvpb::KeyValue> count_kv;
  if (is_new) {
    auto n = session_count(tables);
    if (!n) return std::unexpected(n.error());
    count = n->first;
    count_kv = std::move(n->second);
    auto has_room = make_room(tables, cmd.timestamp_ms(), count);
    if (!has_room) return std::unexpected(has_room.error());
    if (!*has_room) {
      return refused(revision, fmt::format("the cluster keeps {} client sessions, all active in the last {} s; retry "
                                           "later",
                                           limits::kMaxClientSessions, limits::kMinSessionIdleBeforeEvictionMs / 1000));
    }
    rec.set_client_id(s.client_id());
    rec.set_first_incomplete(1);
  } else {
    for (const auto& kept : rec.results()) {
      if (kept.sequence() != s.sequence()) continue;
      // A repeat: answered as the first time, and nothing is applied.
      ASPEN_PROBE("kv.session_repeat_answered");
      return kept.result();
    }
    if (s.sequence() < rec.first_incomplete()) {
      ASPEN_PROBE("kv.session_stale_write_refused");
      return refused(revision, fmt::format("write {} of session {:016x} may have been applied already, and the session "
                                           "no longer keeps its answer",
                                           s.sequence(), s.client_id()));
    }
  }

  auto result = apply();
  if (!result) return result;

  // Keep the answer; drop those the client has seen (below its first incomplete write), then
  // the oldest while over the bound (a retry of one of those is refused, never re-applied).
  const uint64_t first_incomplete = std::max(rec.first_incomplete(), s.first_incomplete());
  kvpb::SessionRecord next;
  next.set_client_id(s.client_id());
  next.set_last_active_ms(std::max(rec.last_active_ms(), cmd.timestamp_ms()));
  bool is_placed = false;
  for (const auto& kept : rec.results()) {
    if (kept.sequence() < first_incomplete) continue;
    if (!is_placed && s.sequence() < kept.sequence()) {
      auto* k = next.add_results();
      k->set_sequence(s.sequence());
      *k->mutable_result() = kept_form(*result);
      is_placed = true;
    }
    *next.add_results() = kept;
  }
  if (!is_placed) {
    auto* k = next.add_results();
    k->set_sequence(s.sequence());
    *k->mutable_result() = kept_form(*result);
  }
  uint64_t floor = first_incomplete;
  const auto excess = static_cast<size_t>(next.results_size()) > limits::kMaxSessionResults
                          ? static_cast<size_t>(next.results_size()) - limits::kMaxSessionResults
                          : 0;
  if (excess > 0) {
    ASPEN_PROBE("kv.session_results_over_bound");
    floor = next.results(static_cast<int>(excess) - 1).sequence() + 1;
    next.mutable_results()->DeleteSubrange(0, static_cast<int>(excess));
  }
  next.set_first_incomplete(floor);
  if (auto st = store_record(tables, loaded->kv, session_key(s.client_id()), next.SerializeAsString(), revision); !st) {
    return std::unexpected(st.error());
  }
  if (is_new) {
    if (auto st = store_record(tables, count_kv, std::string(kSessionCountKey), std::to_string(count + 1), revision); !st) {
      return std::unexpected(st.error());
    }
  }
  return result;
}

}  // namespace aspen::kv
