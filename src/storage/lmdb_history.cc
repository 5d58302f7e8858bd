// LmdbTables' history (MVCC) tables: versions by (revision, position), and per key an index
// of its versions as sorted LMDB duplicates, so "the version of k at revision r" is one
// cursor seek.
#include <algorithm>
#include <fmt/format.h>

#include "core/encoding.h"
#include "storage/lmdb_internal.h"

namespace aspen::storage {

namespace {

constexpr size_t kPositionKeyBytes = 12;

std::string position_key(Index revision, uint32_t position) {
  std::string out;
  put_u64_be(out, revision);
  put_u32_be(out, position);
  return out;
}

Result<std::pair<Index, uint32_t>> parse_position_key(std::string_view bytes) {
  if (bytes.size() != kPositionKeyBytes) {
    return make_error(ErrorCode::kCorruption, "a history position has the wrong size");
  }
  Decoder d(bytes);
  auto rev = d.get_u64_be();
  auto pos = d.get_u32_be();
  if (!rev || !pos) return make_error(ErrorCode::kCorruption, "a history position does not decode");
  return std::pair<Index, uint32_t>{*rev, *pos};
}

// Closes a cursor when it goes out of scope.
struct Cursor {
  MDB_cursor* cur = nullptr;
  ~Cursor() {
    if (cur != nullptr) mdb_cursor_close(cur);
  }
};

}  // namespace

Result<kvpb::HistoryEntry> LmdbTables::history_at(std::string_view pkey) {
  auto pos = parse_position_key(pkey);
  if (!pos) return std::unexpected(pos.error());
  MDB_val k = to_val(pkey);
  MDB_val v;
  int rc = mdb_get(txn_, dbi_.history, &k, &v);
  if (rc == MDB_NOTFOUND) return make_error(ErrorCode::kCorruption, "the history index names a missing version");
  if (rc != 0) return std::unexpected(lmdb_error(rc, "read history"));
  kvpb::HistoryEntry e;
  if (!e.mutable_record()->ParseFromArray(v.mv_data, static_cast<int>(v.mv_size))) {
    return make_error(ErrorCode::kCorruption, "a stored history record does not parse");
  }
  e.set_revision(pos->first);
  e.set_position(pos->second);
  return e;
}

Status LmdbTables::put_history(const kvpb::HistoryEntry& entry) {
  std::string pkey = position_key(entry.revision(), entry.position());
  std::string bytes = entry.record().SerializeAsString();
  MDB_val k = to_val(pkey);
  MDB_val v = to_val(bytes);
  if (int rc = mdb_put(txn_, dbi_.history, &k, &v, 0); rc != 0) return std::unexpected(lmdb_error(rc, "write history"));
  std::string enc = encode_kv_key(entry.record().kv().key());
  MDB_val ik = to_val(enc);
  MDB_val iv = to_val(pkey);
  int rc = mdb_put(txn_, dbi_.history_keys, &ik, &iv, MDB_NODUPDATA);
  if (rc != 0 && rc != MDB_KEYEXIST) return std::unexpected(lmdb_error(rc, "write history index"));
  return {};
}

Status LmdbTables::erase_history(Index revision, uint32_t position, std::string_view key) {
  std::string pkey = position_key(revision, position);
  MDB_val k = to_val(pkey);
  int rc = mdb_del(txn_, dbi_.history, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "delete history"));
  std::string enc = encode_kv_key(key);
  MDB_val ik = to_val(enc);
  MDB_val iv = to_val(pkey);
  rc = mdb_del(txn_, dbi_.history_keys, &ik, &iv);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "delete history index"));
  return {};
}

Result<std::optional<kvpb::HistoryEntry>> LmdbTables::history_floor(std::string_view key, Index revision) {
  Cursor c;
  if (int rc = mdb_cursor_open(txn_, dbi_.history_keys, &c.cur); rc != 0) {
    return std::unexpected(lmdb_error(rc, "open cursor"));
  }
  std::string enc = encode_kv_key(key);
  // The first version above `revision`, then one back; or the last version if none is above.
  std::string above = revision == UINT64_MAX ? std::string(kPositionKeyBytes, '\xff') : position_key(revision + 1, 0);
  MDB_val k = to_val(enc);
  MDB_val v = to_val(above);
  int rc = mdb_cursor_get(c.cur, &k, &v, MDB_GET_BOTH_RANGE);
  if (rc == 0) {
    rc = mdb_cursor_get(c.cur, &k, &v, MDB_PREV_DUP);
  } else if (rc == MDB_NOTFOUND) {
    k = to_val(enc);
    rc = mdb_cursor_get(c.cur, &k, &v, MDB_SET);
    if (rc == 0) rc = mdb_cursor_get(c.cur, &k, &v, MDB_LAST_DUP);
  }
  if (rc == MDB_NOTFOUND) return std::optional<kvpb::HistoryEntry>{};
  if (rc != 0) return std::unexpected(lmdb_error(rc, "find version"));
  auto e = history_at(from_val(v));
  if (!e) return std::unexpected(e.error());
  if (e->revision() > revision) return std::optional<kvpb::HistoryEntry>{};
  if (e->record().kv().key() != key) return make_error(ErrorCode::kCorruption, "long-key digest collision in history");
  return std::optional<kvpb::HistoryEntry>(std::move(*e));
}

Result<std::vector<kvpb::HistoryEntry>> LmdbTables::history_from(Index revision, uint32_t position, size_t limit,
                                                                  size_t max_bytes) {
  std::vector<kvpb::HistoryEntry> out;
  if (limit == 0) return out;
  Cursor c;
  if (int rc = mdb_cursor_open(txn_, dbi_.history, &c.cur); rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  std::string from = position_key(revision, position);
  MDB_val k = to_val(from);
  MDB_val v;
  size_t bytes = 0;
  int rc = 0;
  for (rc = mdb_cursor_get(c.cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c.cur, &k, &v, MDB_NEXT)) {
    auto pos = parse_position_key(from_val(k));
    if (!pos) return std::unexpected(pos.error());
    kvpb::HistoryEntry e;
    if (!e.mutable_record()->ParseFromArray(v.mv_data, static_cast<int>(v.mv_size))) {
      return make_error(ErrorCode::kCorruption, "a stored history record does not parse");
    }
    e.set_revision(pos->first);
    e.set_position(pos->second);
    bytes += e.record().kv().key().size() + e.record().kv().value().size();
    out.push_back(std::move(e));
    if (out.size() >= limit || bytes > max_bytes) break;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "read history"));
  return out;
}

Result<Index> LmdbTables::last_history_revision() {
  Cursor c;
  if (int rc = mdb_cursor_open(txn_, dbi_.history, &c.cur); rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  MDB_val k;
  MDB_val v;
  int rc = mdb_cursor_get(c.cur, &k, &v, MDB_LAST);
  if (rc == MDB_NOTFOUND) return Index{0};
  if (rc != 0) return std::unexpected(lmdb_error(rc, "read history"));
  auto pos = parse_position_key(from_val(k));
  if (!pos) return std::unexpected(pos.error());
  return pos->first;
}

Result<std::vector<std::string>> LmdbTables::history_keys(std::string_view start, std::string_view end,
                                                          const std::optional<std::string>& after, size_t limit) {
  std::vector<std::string> out;
  if (limit == 0) return out;
  Cursor c;
  if (int rc = mdb_cursor_open(txn_, dbi_.history_keys, &c.cur); rc != 0) {
    return std::unexpected(lmdb_error(rc, "open cursor"));
  }
  std::string_view from = after ? std::string_view(*after) : start;
  // As LmdbTables::scan: seek to the start of from's long-key group; long keys sharing a
  // prefix are sorted by their full bytes, which their first version holds.
  std::string seek(from.substr(0, std::min(from.size(), kLongKeyPrefixBytes)));
  MDB_val k = to_val(seek);
  MDB_val v;
  std::vector<std::string> group;
  bool go_on = true;
  auto accept = [&](std::string key) {
    if (!end.empty() && key >= end) return false;
    if (key < start || (after && key <= *after)) return true;
    out.push_back(std::move(key));
    return out.size() < limit;
  };
  auto flush_group = [&] {
    std::sort(group.begin(), group.end());
    for (auto& key : group) {
      if (!(go_on = accept(std::move(key)))) break;
    }
    group.clear();
  };
  int rc = mdb_cursor_get(c.cur, &k, &v, seek.empty() ? MDB_FIRST : MDB_SET_RANGE);
  for (; rc == 0 && go_on; rc = mdb_cursor_get(c.cur, &k, &v, MDB_NEXT_NODUP)) {
    std::string_view enc = from_val(k);
    if (!group.empty() && (!is_long_kv_key(enc) ||
                           enc.substr(0, kLongKeyPrefixBytes) != std::string_view(group.front()).substr(0, kLongKeyPrefixBytes))) {
      flush_group();
      if (!go_on) break;
    }
    if (!is_long_kv_key(enc)) {
      go_on = accept(std::string(enc));
      continue;
    }
    auto e = history_at(from_val(v));  // the cursor sits on the key's first version
    if (!e) return std::unexpected(e.error());
    group.push_back(e->record().kv().key());
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "list history keys"));
  if (go_on && !group.empty()) flush_group();
  return out;
}

}  // namespace aspen::storage
