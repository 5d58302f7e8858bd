// The `kv` virtual table: every key of the store as a row, read by range scans that the
// WHERE clause on `key` narrows (key_bounds.h).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/limits.h"
#include "sql/internal/vtab.h"
#include "sql/key_bounds.h"

namespace aspen::sql::internal {

namespace {

enum Column { kKey = 0, kValue, kCreateRevision, kModRevision, kVersion, kLease };

// idxStr letters for LIMIT and OFFSET arguments (the others are KeyOp values).
constexpr char kLimitArg = 'l';
constexpr char kOffsetArg = 'o';
// idxNum bit: no column is read (count(*)): pages ask only for counts.
constexpr int kCountOnly = 1;

struct KvTable : sqlite3_vtab {
  ModuleContext* context = nullptr;
};

struct KvCursor : sqlite3_vtab_cursor {
  ModuleContext* context = nullptr;
  kvpb::RangeRequest request;
  bool is_count_only = false;
  bool is_done = true;
  std::vector<kvpb::KeyValue> page;
  uint64_t page_count = 0;  // rows in the page (count-only pages carry no keys)
  uint64_t pos = 0;
  uint64_t rowid = 0;
  bool has_more = false;
  uint32_t next_limit = static_cast<uint32_t>(limits::kSqlFirstPageKeys);
};

int set_error(sqlite3_vtab* vtab, const Error& e) {
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = sqlite3_mprintf("%s", e.to_string().c_str());
  return SQLITE_ERROR;
}

int kv_connect(sqlite3* db, void* aux, int, const char* const*, sqlite3_vtab** out, char**) {
  int rc = sqlite3_declare_vtab(
      db,
      // WITHOUT ROWID: rows are identified by key. SQLite then tells rows apart by key where
      // it merges scans (an OR of key ranges runs one scan per term and removes duplicates),
      // not by a rowid that one scan cannot keep stable for another.
      "CREATE TABLE x(key TEXT PRIMARY KEY, value, create_revision INTEGER, mod_revision INTEGER, version INTEGER, "
      "lease INTEGER) WITHOUT ROWID");
  if (rc != SQLITE_OK) return rc;
  auto* t = new KvTable();
  t->context = static_cast<ModuleContext*>(aux);
  *out = t;
  return SQLITE_OK;
}

int kv_disconnect(sqlite3_vtab* vtab) {
  delete static_cast<KvTable*>(vtab);
  return SQLITE_OK;
}

std::optional<KeyOp> key_op(unsigned char op) {
  switch (op) {
    case SQLITE_INDEX_CONSTRAINT_EQ: return KeyOp::kEq;
    case SQLITE_INDEX_CONSTRAINT_GT: return KeyOp::kGt;
    case SQLITE_INDEX_CONSTRAINT_GE: return KeyOp::kGe;
    case SQLITE_INDEX_CONSTRAINT_LT: return KeyOp::kLt;
    case SQLITE_INDEX_CONSTRAINT_LE: return KeyOp::kLe;
    case SQLITE_INDEX_CONSTRAINT_LIKE: return KeyOp::kLike;
    case SQLITE_INDEX_CONSTRAINT_GLOB: return KeyOp::kGlob;
    default: return std::nullopt;
  }
}

// Every usable constraint on key becomes an argument; SQLite still checks each row
// (omit = 0), so the bounds only have to hold a superset of the answer.
int kv_best_index(sqlite3_vtab*, sqlite3_index_info* info) {
  std::string ops;
  double rows = 1e6;
  bool is_unique = false;
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (!c.usable) continue;
    char letter = 0;
    if (c.op == SQLITE_INDEX_CONSTRAINT_LIMIT) {
      letter = kLimitArg;
    } else if (c.op == SQLITE_INDEX_CONSTRAINT_OFFSET) {
      letter = kOffsetArg;
    } else if (c.iColumn == kKey) {
      auto op = key_op(c.op);
      if (!op) continue;
      letter = static_cast<char>(*op);
      if (*op == KeyOp::kEq) {
        is_unique = true;
        rows = 1;
      } else {
        rows = std::max(1.0, rows / 10);
      }
    } else {
      continue;
    }
    ops.push_back(letter);
    info->aConstraintUsage[i].argvIndex = static_cast<int>(ops.size());
    info->aConstraintUsage[i].omit = 0;
  }
  info->idxNum = info->colUsed == 0 ? kCountOnly : 0;
  info->idxStr = sqlite3_mprintf("%s", ops.c_str());
  info->needToFreeIdxStr = 1;
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == kKey && !info->aOrderBy[0].desc) {
    info->orderByConsumed = 1;  // scans return keys in byte order, which is BINARY collation's
  }
  info->estimatedRows = static_cast<sqlite3_int64>(rows);
  info->estimatedCost = rows * 10;
  if (is_unique) info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  return SQLITE_OK;
}

int kv_open(sqlite3_vtab* vtab, sqlite3_vtab_cursor** out) {
  auto* c = new KvCursor();
  c->context = static_cast<KvTable*>(vtab)->context;
  *out = c;
  return SQLITE_OK;
}

int kv_close(sqlite3_vtab_cursor* cur) {
  delete static_cast<KvCursor*>(cur);
  return SQLITE_OK;
}

int fetch_page(KvCursor* c) {
  c->request.set_limit(c->next_limit);
  c->request.set_is_count_only(c->is_count_only);
  c->request.set_revision(c->context->read_revision);
  auto r = c->context->store->range(c->request);
  if (!r) {
    if (!c->context->store_error) c->context->store_error = r.error();
    return set_error(c->pVtab, r.error());
  }
  if (c->context->read_revision == 0) c->context->read_revision = r->revision();
  c->context->stats->pages++;
  c->context->stats->keys_scanned += r->count();
  c->page.assign(std::make_move_iterator(r->mutable_kvs()->begin()), std::make_move_iterator(r->mutable_kvs()->end()));
  c->page_count = c->is_count_only ? r->count() : c->page.size();
  c->pos = 0;
  c->has_more = r->has_more();
  c->request.set_continuation(r->continuation());
  c->next_limit = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{c->next_limit} * 2, limits::kMaxScanResults));
  return SQLITE_OK;
}

// Moves to the next row that exists, fetching pages as needed (a page may come back empty
// only at the end of the range).
int settle(KvCursor* c) {
  while (c->pos >= c->page_count) {
    if (!c->has_more) {
      c->is_done = true;
      return SQLITE_OK;
    }
    if (int rc = fetch_page(c); rc != SQLITE_OK) return rc;
  }
  c->is_done = false;
  return SQLITE_OK;
}

int kv_filter(sqlite3_vtab_cursor* cur, int idx_num, const char* idx_str, int argc, sqlite3_value** argv) {
  auto* c = static_cast<KvCursor*>(cur);
  c->context->stats->scans++;
  KeyBounds bounds;
  uint64_t limit = 0, offset = 0;
  std::string_view ops = idx_str ? idx_str : "";
  for (int i = 0; i < argc && static_cast<size_t>(i) < ops.size(); ++i) {
    char op = ops[static_cast<size_t>(i)];
    if (op == kLimitArg || op == kOffsetArg) {
      if (sqlite3_value_type(argv[i]) != SQLITE_INTEGER) continue;
      auto n = static_cast<uint64_t>(std::max<sqlite3_int64>(0, sqlite3_value_int64(argv[i])));
      (op == kLimitArg ? limit : offset) = n;
      continue;
    }
    // Only text operands compare with the TEXT key byte for byte; for others SQLite's own
    // check (affinity, type order) decides, over an unnarrowed range.
    if (sqlite3_value_type(argv[i]) != SQLITE_TEXT) continue;
    const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[i]));
    bounds.apply(static_cast<KeyOp>(op), std::string_view(text, static_cast<size_t>(sqlite3_value_bytes(argv[i]))));
  }
  c->request = kvpb::RangeRequest();
  c->is_count_only = (idx_num & kCountOnly) != 0;
  c->page.clear();
  c->page_count = 0;
  c->pos = 0;
  c->rowid = 0;
  if (bounds.is_empty()) {
    c->is_done = true;
    c->has_more = false;
    return SQLITE_OK;
  }
  c->request.set_start(bounds.begin());
  c->request.set_end(bounds.end());
  c->next_limit = static_cast<uint32_t>(limits::kSqlFirstPageKeys);
  if (limit > 0) c->next_limit = static_cast<uint32_t>(std::min<uint64_t>(limit + offset, limits::kMaxScanResults));
  c->has_more = true;
  return settle(c);
}

int kv_next(sqlite3_vtab_cursor* cur) {
  auto* c = static_cast<KvCursor*>(cur);
  c->pos++;
  c->rowid++;
  return settle(c);
}

int kv_eof(sqlite3_vtab_cursor* cur) { return static_cast<KvCursor*>(cur)->is_done ? 1 : 0; }

void result_bytes(sqlite3_context* ctx, const std::string& s, bool as_text) {
  if (as_text) {
    sqlite3_result_text(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  } else {
    sqlite3_result_blob(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
}

int kv_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) {
  auto* c = static_cast<KvCursor*>(cur);
  if (c->is_count_only) {
    sqlite3_result_null(ctx);  // count(*) reads no column; anything else asked gets NULL
    return SQLITE_OK;
  }
  const kvpb::KeyValue& kv = c->page[c->pos];
  switch (col) {
    case kKey: result_bytes(ctx, kv.key(), true); break;
    case kValue: result_bytes(ctx, kv.value(), is_valid_utf8(kv.value())); break;
    case kCreateRevision: sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(kv.create_revision())); break;
    case kModRevision: sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(kv.mod_revision())); break;
    case kVersion: sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(kv.version())); break;
    case kLease: sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(kv.lease_id())); break;
    default: sqlite3_result_null(ctx); break;
  }
  return SQLITE_OK;
}

int kv_rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) {
  *rowid = static_cast<sqlite3_int64>(static_cast<KvCursor*>(cur)->rowid);
  return SQLITE_OK;
}

sqlite3_module make_kv_module() {
  sqlite3_module m{};
  m.iVersion = 0;
  m.xCreate = nullptr;  // eponymous-only: `kv` exists in every database, nobody creates it
  m.xConnect = kv_connect;
  m.xBestIndex = kv_best_index;
  m.xDisconnect = kv_disconnect;
  m.xDestroy = kv_disconnect;
  m.xOpen = kv_open;
  m.xClose = kv_close;
  m.xFilter = kv_filter;
  m.xNext = kv_next;
  m.xEof = kv_eof;
  m.xColumn = kv_column;
  m.xRowid = kv_rowid;
  return m;
}

const sqlite3_module kKvModule = make_kv_module();

}  // namespace

int register_kv_module(sqlite3* db, ModuleContext* context) {
  return sqlite3_create_module_v2(db, "kv", &kKvModule, context, nullptr);
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<uint8_t>(s[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? b : (b & (0xff >> (n + 1)));
    for (size_t k = 1; k < n; ++k) {
      auto cont = static_cast<uint8_t>(s[i + k]);
      if ((cont & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cont & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n;
  }
  return true;
}

}  // namespace aspen::sql::internal
