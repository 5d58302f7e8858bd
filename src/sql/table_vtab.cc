// User tables: `CREATE VIRTUAL TABLE t USING aspen(id INTEGER PRIMARY KEY, name TEXT, ...)`
// stores its rows in the directory ["sql", "t"] (layer "sql_table"):
//   dir + pack((0, pk))  = pack((column values except the primary key, in order))
//   dir + pack((1,))     = the column definitions, as declared
// The primary key is one column declared INTEGER, TEXT or BLOB, and its values must have that
// type, so tuple order is SQLite's order for it: ORDER BY pk needs no sort and constraints on
// pk become range scans. Writes are buffered and committed as one optimistic KV transaction
// (ModuleContext, vtab.h).
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "core/limits.h"
#include "kv/key_value_store.h"
#include "layer/kv_ops.h"
#include "layer/tuple.h"
#include "sql/internal/vtab.h"
#include "sql/key_bounds.h"

namespace aspen::sql::internal {

namespace {

constexpr std::string_view kLayerTag = "sql_table";

enum class PkType { kInteger, kText, kBlob };

struct Schema {
  std::vector<std::string> names;
  size_t pk_index = 0;
  PkType pk_type = PkType::kInteger;
  std::string definitions;  // as declared, comma-joined
};

struct Table : sqlite3_vtab {
  ModuleContext* context = nullptr;
  std::string name;
  Schema schema;
  layer::Subspace rows;  // dir + (0,)
};

struct Cursor : sqlite3_vtab_cursor {
  Table* table = nullptr;
  kvpb::RangeRequest request;
  std::vector<kvpb::KeyValue> page;
  size_t pos = 0;
  bool has_more = false;
  bool is_done = true;
  uint32_t next_limit = static_cast<uint32_t>(limits::kSqlFirstPageKeys);
  // The scan's bounds, and the transaction's own writes merged into it: the current row
  // comes from the store page (is_from_page) or from a write; last_key is the last row
  // shown, so writes made while the scan runs are seen once, in key order.
  std::string begin, end;
  std::string last_key;
  bool has_last = false;
  bool is_from_page = false;
  layer::Tuple pk;      // of the current row
  layer::Tuple values;  // of the current row
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

Result<Schema> parse_schema(int argc, const char* const* argv) {
  Schema s;
  int pk_count = 0;
  for (int i = 3; i < argc; ++i) {
    std::string def = trim(argv[i]);
    std::string up = upper(def);
    size_t space = def.find_first_of(" \t");
    std::string name = def.substr(0, space);
    if (name.size() >= 2 && (name[0] == '"' || name[0] == '`' || name[0] == '[')) name = name.substr(1, name.size() - 2);
    if (name.empty() || up.starts_with("PRIMARY KEY") || up.starts_with("UNIQUE") || up.starts_with("CHECK")) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("unsupported table definition '{}'", def));
    }
    if (up.find("PRIMARY KEY") != std::string::npos) {
      ++pk_count;
      s.pk_index = s.names.size();
      std::string type = space == std::string::npos ? "" : upper(trim(def.substr(space)));
      if (type.starts_with("INTEGER") || type.starts_with("INT ")) {
        s.pk_type = PkType::kInteger;
      } else if (type.starts_with("TEXT")) {
        s.pk_type = PkType::kText;
      } else if (type.starts_with("BLOB")) {
        s.pk_type = PkType::kBlob;
      } else {
        return make_error(ErrorCode::kInvalidArgument, "the PRIMARY KEY column must be declared INTEGER, TEXT or BLOB");
      }
    }
    s.names.push_back(name);
    if (!s.definitions.empty()) s.definitions += ", ";
    s.definitions += def;
  }
  if (pk_count != 1) {
    return make_error(ErrorCode::kInvalidArgument, "a table over Aspen needs exactly one column declared PRIMARY KEY");
  }
  return s;
}

Status check_table_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 128 &&
            std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
  if (!ok) return make_error(ErrorCode::kInvalidArgument, "a table name has 1..128 of [A-Za-z0-9_]");
  return {};
}

int vtab_error(sqlite3_vtab* vtab, const Error& e) {
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = sqlite3_mprintf("%s", e.to_string().c_str());
  return SQLITE_ERROR;
}

int remember_store_error(ModuleContext* ctx, sqlite3_vtab* vtab, const Error& e) {
  if (!ctx->store_error) ctx->store_error = e;
  return vtab_error(vtab, e);
}

// --- values <-> tuple elements ---

std::optional<layer::Element> element_of(sqlite3_value* v) {
  switch (sqlite3_value_type(v)) {
    case SQLITE_NULL: return layer::Element(layer::Null{});
    case SQLITE_INTEGER: return layer::Element(static_cast<int64_t>(sqlite3_value_int64(v)));
    case SQLITE_FLOAT: return layer::Element(sqlite3_value_double(v));
    case SQLITE_TEXT:
      return layer::Element(std::string(reinterpret_cast<const char*>(sqlite3_value_text(v)),
                                        static_cast<size_t>(sqlite3_value_bytes(v))));
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_value_blob(v));
      return layer::Element(layer::Bytes{std::string(p ? p : "", static_cast<size_t>(sqlite3_value_bytes(v)))});
    }
    default: return std::nullopt;
  }
}

// The primary key as its tuple element, if the value has the declared type.
std::optional<layer::Element> pk_element(const Schema& s, sqlite3_value* v) {
  int t = sqlite3_value_type(v);
  if ((s.pk_type == PkType::kInteger && t != SQLITE_INTEGER) || (s.pk_type == PkType::kText && t != SQLITE_TEXT) ||
      (s.pk_type == PkType::kBlob && t != SQLITE_BLOB)) {
    return std::nullopt;
  }
  return element_of(v);
}

void result_element(sqlite3_context* ctx, const layer::Element& e) {
  if (e.holds<layer::Integer>()) {
    auto i = e.get<layer::Integer>().as_int64();
    if (i) {
      sqlite3_result_int64(ctx, *i);
    } else {
      sqlite3_result_double(ctx, e.get<layer::Integer>().is_negative ? -static_cast<double>(e.get<layer::Integer>().magnitude)
                                                                     : static_cast<double>(e.get<layer::Integer>().magnitude));
    }
  } else if (e.holds<layer::Double>()) {
    sqlite3_result_double(ctx, e.get<layer::Double>().value);
  } else if (e.holds<layer::Float>()) {
    sqlite3_result_double(ctx, e.get<layer::Float>().value);
  } else if (e.holds<std::string>()) {
    const auto& s = e.get<std::string>();
    sqlite3_result_text(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  } else if (e.holds<layer::Bytes>()) {
    const auto& s = e.get<layer::Bytes>().data;
    sqlite3_result_blob(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  } else if (e.holds<bool>()) {
    sqlite3_result_int(ctx, e.get<bool>() ? 1 : 0);
  } else if (e.holds<layer::Null>()) {
    sqlite3_result_null(ctx);
  } else {
    std::string text = layer::to_string(layer::Tuple{e});
    sqlite3_result_text(ctx, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
}

// --- reads at the statement's revision ---

Result<kvpb::RangeResult> read_page(ModuleContext* ctx, kvpb::RangeRequest& request) {
  request.set_revision(ctx->read_revision);
  auto r = ctx->store->range(request);
  if (!r) return r;
  if (ctx->read_revision == 0) ctx->read_revision = r->revision();
  ctx->stats->pages++;
  ctx->stats->keys_scanned += r->count();
  if (ctx->is_in_txn) {
    for (const auto& kv : r->kvs()) ctx->read_mods.emplace(kv.key(), kv.mod_revision());
  }
  return r;
}

// Whether the row exists as this transaction sees it (its own writes first).
Result<bool> row_exists(ModuleContext* ctx, const std::string& key) {
  if (auto w = ctx->writes.find(key); w != ctx->writes.end()) return w->second.has_value();
  kvpb::RangeRequest req;
  req.set_start(key);
  req.set_end(key + '\0');
  req.set_limit(1);
  auto r = read_page(ctx, req);
  if (!r) return std::unexpected(r.error());
  if (r->kvs_size() == 0) ctx->read_mods.emplace(key, 0);
  return r->kvs_size() == 1;
}

// --- the module ---

int declare(sqlite3* db, const Schema& s) {
  std::string sql = fmt::format("CREATE TABLE x({}) WITHOUT ROWID", s.definitions);
  return sqlite3_declare_vtab(db, sql.c_str());
}

int table_create(sqlite3* db, void* aux, int argc, const char* const* argv, sqlite3_vtab** out, char** err) {
  auto* ctx = static_cast<ModuleContext*>(aux);
  auto fail = [&](const Error& e) {
    *err = sqlite3_mprintf("%s", e.message().c_str());
    return SQLITE_ERROR;
  };
  std::string name = argv[2];
  if (auto s = check_table_name(name); !s) return fail(s.error());
  auto schema = parse_schema(argc, argv);
  if (!schema) return fail(schema.error());
  auto dir = ctx->dirs->create_or_open({"sql", name}, kLayerTag);
  if (!dir) {
    if (!ctx->store_error && dir.error().code() != ErrorCode::kInvalidArgument) ctx->store_error = dir.error();
    return fail(dir.error());
  }
  std::string schema_key = dir->subspace.pack({1});
  auto stored = kv::get(*ctx->store, schema_key);
  if (!stored) return fail(stored.error());
  if (!*stored) {
    auto put = kv::cas(*ctx->store, schema_key, std::nullopt, schema->definitions);
    if (!put) return fail(put.error());
  } else if ((*stored)->value() != schema->definitions) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("table {} exists in the store with columns ({})", name, (*stored)->value())));
  }
  if (int rc = declare(db, *schema); rc != SQLITE_OK) return rc;
  auto* t = new Table();
  t->context = ctx;
  t->name = name;
  t->schema = std::move(*schema);
  t->rows = dir->subspace.sub({0});
  *out = t;
  return SQLITE_OK;
}

int table_disconnect(sqlite3_vtab* vtab) {
  delete static_cast<Table*>(vtab);
  return SQLITE_OK;
}

int table_destroy(sqlite3_vtab* vtab) {
  auto* t = static_cast<Table*>(vtab);
  auto r = t->context->dirs->remove_if_exists({"sql", t->name});
  if (!r) return vtab_error(vtab, r.error());
  delete t;
  return SQLITE_OK;
}

int table_best_index(sqlite3_vtab* vtab, sqlite3_index_info* info) {
  auto* t = static_cast<Table*>(vtab);
  std::string ops;
  double rows = 1e6;
  bool is_unique = false;
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (!c.usable || c.iColumn != static_cast<int>(t->schema.pk_index)) continue;
    KeyOp op;
    switch (c.op) {
      case SQLITE_INDEX_CONSTRAINT_EQ: op = KeyOp::kEq; break;
      case SQLITE_INDEX_CONSTRAINT_GT: op = KeyOp::kGt; break;
      case SQLITE_INDEX_CONSTRAINT_GE: op = KeyOp::kGe; break;
      case SQLITE_INDEX_CONSTRAINT_LT: op = KeyOp::kLt; break;
      case SQLITE_INDEX_CONSTRAINT_LE: op = KeyOp::kLe; break;
      default: continue;
    }
    ops.push_back(static_cast<char>(op));
    info->aConstraintUsage[i].argvIndex = static_cast<int>(ops.size());
    info->aConstraintUsage[i].omit = 0;  // SQLite re-checks: operands of another type are not pushed
    if (op == KeyOp::kEq) {
      is_unique = true;
      rows = 1;
    } else {
      rows = std::max(1.0, rows / 10);
    }
  }
  info->idxStr = sqlite3_mprintf("%s", ops.c_str());
  info->needToFreeIdxStr = 1;
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == static_cast<int>(t->schema.pk_index) && !info->aOrderBy[0].desc) {
    info->orderByConsumed = 1;
  }
  info->estimatedRows = static_cast<sqlite3_int64>(rows);
  info->estimatedCost = rows * 10;
  if (is_unique) info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  return SQLITE_OK;
}

int table_open(sqlite3_vtab* vtab, sqlite3_vtab_cursor** out) {
  auto* c = new Cursor();
  c->table = static_cast<Table*>(vtab);
  *out = c;
  return SQLITE_OK;
}

int table_close(sqlite3_vtab_cursor* cur) {
  delete static_cast<Cursor*>(cur);
  return SQLITE_OK;
}

// Decodes the row at pos; a row that does not decode is an error, not a crash.
// Decodes a row; a row that does not decode is an error, not a crash.
int load_row(Cursor* c, const std::string& key, const std::string& value) {
  auto pk = c->table->rows.unpack(key);
  auto values = layer::unpack(value);
  if (!pk || pk->size() != 1 || !values || values->size() + 1 != c->table->schema.names.size()) {
    return vtab_error(c->pVtab, Error(ErrorCode::kCorruption, fmt::format("a row of table {} does not decode", c->table->name)));
  }
  c->pk = std::move(*pk);
  c->values = std::move(*values);
  c->last_key = key;
  c->has_last = true;
  return SQLITE_OK;
}

// The transaction's next own write inside the scan's bounds, after the last row shown.
const std::pair<const std::string, std::optional<std::string>>* next_write(Cursor* c) {
  const auto& writes = c->table->context->writes;
  auto it = c->has_last ? writes.upper_bound(c->last_key) : writes.lower_bound(c->begin);
  if (it == writes.end() || (!c->end.empty() && it->first >= c->end)) return nullptr;
  return &*it;
}

// Moves to the next row: the smaller of the store's next key and the transaction's next own
// write (which wins over the store's row of the same key, and hides it when a delete).
int settle(Cursor* c) {
  for (;;) {
    while (c->pos >= c->page.size() && c->has_more) {
      c->request.set_limit(c->next_limit);
      auto r = read_page(c->table->context, c->request);
      if (!r) return remember_store_error(c->table->context, c->pVtab, r.error());
      c->page.assign(std::make_move_iterator(r->mutable_kvs()->begin()), std::make_move_iterator(r->mutable_kvs()->end()));
      c->pos = 0;
      c->has_more = r->has_more();
      c->request.set_continuation(r->continuation());
      c->next_limit = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{c->next_limit} * 2, limits::kMaxScanResults));
    }
    const kvpb::KeyValue* stored = c->pos < c->page.size() ? &c->page[c->pos] : nullptr;
    if (stored && c->has_last && stored->key() <= c->last_key) {
      c->pos++;  // shown already (as a write of the same key)
      continue;
    }
    auto* write = next_write(c);
    if (!stored && !write) {
      c->is_done = true;
      return SQLITE_OK;
    }
    c->is_done = false;
    if (write && (!stored || write->first <= stored->key())) {
      c->is_from_page = false;
      if (!write->second) {  // deleted by this transaction
        c->last_key = write->first;
        c->has_last = true;
        continue;
      }
      return load_row(c, write->first, *write->second);
    }
    c->is_from_page = true;
    return load_row(c, stored->key(), stored->value());
  }
}

int table_filter(sqlite3_vtab_cursor* cur, int, const char* idx_str, int argc, sqlite3_value** argv) {
  auto* c = static_cast<Cursor*>(cur);
  c->table->context->stats->scans++;
  layer::KeyRange all = c->table->rows.range();
  KeyBounds bounds;
  bounds.apply(KeyOp::kGe, all.begin);
  bounds.apply(KeyOp::kLt, all.end);
  std::string_view ops = idx_str ? idx_str : "";
  for (int i = 0; i < argc && static_cast<size_t>(i) < ops.size(); ++i) {
    auto e = pk_element(c->table->schema, argv[i]);
    if (!e) continue;  // another type: SQLite's own comparison decides, over the whole table
    bounds.apply(static_cast<KeyOp>(ops[static_cast<size_t>(i)]), c->table->rows.pack({*e}));
  }
  c->request = kvpb::RangeRequest();
  c->page.clear();
  c->pos = 0;
  c->next_limit = static_cast<uint32_t>(limits::kSqlFirstPageKeys);
  c->has_more = !bounds.is_empty();
  c->begin = bounds.begin();
  c->end = bounds.end();
  c->has_last = false;
  if (bounds.is_empty()) {
    c->is_done = true;
    return SQLITE_OK;
  }
  c->request.set_start(c->begin);
  c->request.set_end(c->end);
  return settle(c);
}

int table_next(sqlite3_vtab_cursor* cur) {
  auto* c = static_cast<Cursor*>(cur);
  if (c->is_from_page) c->pos++;
  return settle(c);
}

int table_eof(sqlite3_vtab_cursor* cur) { return static_cast<Cursor*>(cur)->is_done ? 1 : 0; }

int table_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) {
  auto* c = static_cast<Cursor*>(cur);
  auto index = static_cast<size_t>(col);
  size_t pk = c->table->schema.pk_index;
  if (index == pk) {
    result_element(ctx, c->pk[0]);
  } else {
    size_t at = index < pk ? index : index - 1;
    if (at < c->values.size()) result_element(ctx, c->values[at]);
  }
  return SQLITE_OK;
}

int table_rowid(sqlite3_vtab_cursor*, sqlite3_int64* rowid) {
  *rowid = 0;  // WITHOUT ROWID: never asked
  return SQLITE_OK;
}

int table_update(sqlite3_vtab* vtab, int argc, sqlite3_value** argv, sqlite3_int64*) {
  auto* t = static_cast<Table*>(vtab);
  ModuleContext* ctx = t->context;
  const Schema& s = t->schema;
  auto key_of = [&](sqlite3_value* v) -> std::optional<std::string> {
    auto e = pk_element(s, v);
    if (!e) return std::nullopt;
    return t->rows.pack({*e});
  };
  std::optional<std::string> old_key;
  if (sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    old_key = key_of(argv[0]);
    if (!old_key) return vtab_error(vtab, Error(ErrorCode::kInvalidArgument, "row has a primary key of the wrong type"));
    if (auto e = row_exists(ctx, *old_key); !e) return remember_store_error(ctx, vtab, e.error());
  }
  if (argc == 1) {
    ctx->writes[*old_key] = std::nullopt;
  } else {
    if (static_cast<size_t>(argc - 2) != s.names.size()) return SQLITE_ERROR;
    sqlite3_value* pk_value = argv[2 + s.pk_index];
    auto new_key = key_of(pk_value);
    if (!new_key) {
      const char* want = s.pk_type == PkType::kInteger ? "INTEGER" : s.pk_type == PkType::kText ? "TEXT" : "BLOB";
      return vtab_error(vtab, Error(ErrorCode::kInvalidArgument,
                                    fmt::format("{}.{} must be a non-NULL {}", t->name, s.names[s.pk_index], want)));
    }
    if (new_key != old_key) {
      auto exists = row_exists(ctx, *new_key);
      if (!exists) return remember_store_error(ctx, vtab, exists.error());
      if (*exists) {
        sqlite3_free(vtab->zErrMsg);
        vtab->zErrMsg = sqlite3_mprintf("UNIQUE constraint failed: %s.%s", t->name.c_str(), s.names[s.pk_index].c_str());
        return SQLITE_CONSTRAINT;
      }
      if (old_key) ctx->writes[*old_key] = std::nullopt;
    }
    layer::Tuple values;
    for (size_t i = 0; i < s.names.size(); ++i) {
      if (i != s.pk_index) values.push_back(*element_of(argv[2 + i]));
    }
    std::string encoded = layer::pack(values);
    if (encoded.size() > limits::kMaxValueSizeBytes || new_key->size() > limits::kMaxKeySizeBytes) {
      return vtab_error(vtab, Error(ErrorCode::kValueTooLarge, "a row is larger than a key-value pair may be"));
    }
    ctx->writes[*new_key] = std::move(encoded);
  }
  if (ctx->writes.size() > limits::kMaxSqlTxnRows) {
    return vtab_error(vtab, Error(ErrorCode::kTxnTooLarge,
                                  fmt::format("a transaction over Aspen writes at most {} rows", limits::kMaxSqlTxnRows)));
  }
  return SQLITE_OK;
}

void reset_txn(ModuleContext* ctx) {
  ctx->is_in_txn = false;
  ctx->is_committed = false;
  ctx->read_mods.clear();
  ctx->writes.clear();
}

int table_begin(sqlite3_vtab* vtab) {
  ModuleContext* ctx = static_cast<Table*>(vtab)->context;
  if (!ctx->is_in_txn) {
    reset_txn(ctx);
    ctx->is_in_txn = true;
  }
  return SQLITE_OK;
}

// Phase one of the commit: the only place a commit may still fail. Every table in the
// transaction gets xSync; the first sends the one KV transaction for all of them.
int table_sync(sqlite3_vtab* vtab) {
  ModuleContext* ctx = static_cast<Table*>(vtab)->context;
  if (ctx->is_committed || ctx->writes.empty()) return SQLITE_OK;
  layer::Txn txn;
  for (const auto& [key, value] : ctx->writes) {
    auto read = ctx->read_mods.find(key);
    if (read == ctx->read_mods.end()) {
      // xUpdate reads every key it writes; without that read there is nothing to compare.
      return vtab_error(vtab, Error(ErrorCode::kInternal, "a written row was never read; nothing was written"));
    }
    txn.compares.push_back(layer::cmp_mod_revision(key, read->second));
    txn.success.push_back(value ? layer::op_put(key, *value) : layer::op_delete(key));
  }
  auto r = layer::run_txn(*ctx->store, std::move(txn));
  if (!r) return remember_store_error(ctx, vtab, r.error());
  if (!r->succeeded()) {
    ctx->is_conflict = true;
    sqlite3_free(vtab->zErrMsg);
    vtab->zErrMsg = sqlite3_mprintf("conflict: a row this transaction writes changed since it was read; run it again");
    return SQLITE_BUSY;
  }
  ctx->is_committed = true;
  return SQLITE_OK;
}

int table_commit(sqlite3_vtab* vtab) {
  reset_txn(static_cast<Table*>(vtab)->context);
  return SQLITE_OK;
}

int table_rollback(sqlite3_vtab* vtab) {
  reset_txn(static_cast<Table*>(vtab)->context);
  return SQLITE_OK;
}

sqlite3_module make_table_module() {
  sqlite3_module m{};
  m.iVersion = 1;
  m.xCreate = table_create;
  m.xConnect = table_create;
  m.xBestIndex = table_best_index;
  m.xDisconnect = table_disconnect;
  m.xDestroy = table_destroy;
  m.xOpen = table_open;
  m.xClose = table_close;
  m.xFilter = table_filter;
  m.xNext = table_next;
  m.xEof = table_eof;
  m.xColumn = table_column;
  m.xRowid = table_rowid;
  m.xUpdate = table_update;
  m.xBegin = table_begin;
  m.xSync = table_sync;
  m.xCommit = table_commit;
  m.xRollback = table_rollback;
  return m;
}

const sqlite3_module kTableModule = make_table_module();

}  // namespace

int register_table_module(sqlite3* db, ModuleContext* context) {
  return sqlite3_create_module_v2(db, "aspen", &kTableModule, context, nullptr);
}

Status attach_user_tables(sqlite3* db, ModuleContext* ctx) {
  auto names = ctx->dirs->list({"sql"});
  if (!names) return names.error().code() == ErrorCode::kNotFound ? Status{} : Status(std::unexpected(names.error()));
  for (const auto& name : *names) {
    if (!check_table_name(name)) continue;  // not made by CREATE VIRTUAL TABLE
    auto dir = ctx->dirs->open({"sql", name}, kLayerTag);
    if (!dir) continue;  // another layer's directory
    auto schema = kv::get(*ctx->store, dir->subspace.pack({1}));
    if (!schema) return std::unexpected(schema.error());
    if (!*schema) continue;
    std::string sql = fmt::format("CREATE VIRTUAL TABLE \"{}\" USING aspen({})", name, (*schema)->value());
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = err ? err : "unknown error";
      sqlite3_free(err);
      return make_error(ErrorCode::kCorruption, fmt::format("cannot declare stored table {}: {}", name, message));
    }
  }
  return {};
}

}  // namespace aspen::sql::internal
