#include <sqlite3.h>

#include <fmt/format.h>

#include "core/assert.h"
#include "sql/internal/vtab.h"
#include "sql/sql.h"

namespace aspen::sql {

namespace {

Value column_value(sqlite3_stmt* stmt, int i) {
  Value v;
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      v.type = Value::Type::kInteger;
      v.integer = sqlite3_column_int64(stmt, i);
      break;
    case SQLITE_FLOAT:
      v.type = Value::Type::kReal;
      v.real = sqlite3_column_double(stmt, i);
      break;
    case SQLITE_TEXT: {
      v.type = Value::Type::kText;
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      v.bytes.assign(p, static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
      break;
    }
    case SQLITE_BLOB: {
      v.type = Value::Type::kBlob;
      const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, i));
      v.bytes.assign(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
      break;
    }
    default:
      break;
  }
  return v;
}

}  // namespace

std::string to_string(const Value& v) {
  switch (v.type) {
    case Value::Type::kNull: return "NULL";
    case Value::Type::kInteger: return std::to_string(v.integer);
    case Value::Type::kReal: return fmt::format("{}", v.real);
    case Value::Type::kText: return "'" + v.bytes + "'";
    case Value::Type::kBlob: {
      std::string out = "x'";
      for (char c : v.bytes) out += fmt::format("{:02x}", static_cast<uint8_t>(c));
      return out + "'";
    }
  }
  return "?";
}

bool is_complete_statement(std::string_view sql) { return sqlite3_complete(std::string(sql).c_str()) != 0; }

Result<std::unique_ptr<Database>> Database::open(kv::KeyValueStore& store, uint64_t allocator_seed) {
  std::unique_ptr<Database> d(new Database());
  d->context_ = std::make_unique<internal::ModuleContext>();
  d->context_->store = &store;
  d->context_->stats = &d->stats_;
  d->context_->dirs = std::make_unique<layer::DirectoryLayer>(store, allocator_seed);
  int rc = sqlite3_open_v2(":memory:", &d->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) return make_error(ErrorCode::kInternal, "cannot open an in-memory SQLite database");
  // The database is a window on the store: no files of this machine are attached.
  sqlite3_limit(d->db_, SQLITE_LIMIT_ATTACHED, 0);
  if (internal::register_kv_module(d->db_, d->context_.get()) != SQLITE_OK) {
    return make_error(ErrorCode::kInternal, "cannot register the kv table");
  }
  if (internal::register_table_module(d->db_, d->context_.get()) != SQLITE_OK) {
    return make_error(ErrorCode::kInternal, "cannot register the aspen table module");
  }
  if (auto s = internal::attach_user_tables(d->db_, d->context_.get()); !s) return std::unexpected(s.error());
  return d;
}

Database::~Database() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Status Database::execute(std::string_view sql, const std::function<void(const std::vector<std::string>&)>& on_columns,
                         const std::function<bool(const Row&)>& on_row) {
  std::string text(sql);
  const char* rest = text.c_str();
  size_t retries = 0;
  while (*rest != '\0') {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    context_->store_error.reset();
    context_->is_conflict = false;
    context_->read_revision = 0;  // each statement reads the store as of its first page
    int rc = sqlite3_prepare_v2(db_, rest, -1, &stmt, &tail);
    if (rc != SQLITE_OK) {
      if (context_->store_error) return std::unexpected(*context_->store_error);
      return make_error(ErrorCode::kInvalidArgument, fmt::format("SQL: {}", sqlite3_errmsg(db_)));
    }
    if (stmt == nullptr) {  // whitespace or a comment
      rest = tail;
      continue;
    }
    int n = sqlite3_column_count(stmt);
    if (n > 0) {
      std::vector<std::string> names;
      for (int i = 0; i < n; ++i) names.emplace_back(sqlite3_column_name(stmt, i));
      on_columns(names);
    }
    bool is_stopped = false;
    size_t rows = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      ++rows;
      Row row;
      row.reserve(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) row.push_back(column_value(stmt, i));
      if (!on_row(row)) {
        is_stopped = true;
        break;
      }
    }
    std::string message = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    if (is_stopped) return {};
    if (rc != SQLITE_DONE) {
      // A lost optimistic race of a statement that committed by itself: nothing was
      // written and nothing was shown, so running it again is safe.
      if (context_->is_conflict && sqlite3_get_autocommit(db_) && rows == 0 && retries < limits::kMaxSqlConflictRetries) {
        ++retries;
        continue;
      }
      if (context_->is_conflict) {
        return make_error(ErrorCode::kUnavailable, "conflict: rows this transaction writes were changed by another "
                                                   "writer since it read them; nothing was written, run it again");
      }
      if (context_->store_error) return std::unexpected(*context_->store_error);
      return make_error(ErrorCode::kInvalidArgument, fmt::format("SQL: {}", message));
    }
    rest = tail;
    retries = 0;
  }
  return {};
}

Result<QueryResult> Database::query(std::string_view sql) {
  QueryResult out;
  bool is_truncated = false;
  auto s = execute(
      sql,
      [&](const std::vector<std::string>& names) {
        out.columns = names;
        out.rows.clear();
      },
      [&](const Row& row) {
        if (out.rows.size() >= limits::kMaxQueryResultRows) {
          is_truncated = true;
          return false;
        }
        out.rows.push_back(row);
        return true;
      });
  if (!s) return std::unexpected(s.error());
  if (is_truncated) {
    return make_error(ErrorCode::kScanTooLarge,
                      fmt::format("query returns more than {} rows; use LIMIT or stream", limits::kMaxQueryResultRows));
  }
  return out;
}

}  // namespace aspen::sql
