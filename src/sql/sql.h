// SQL over Aspen: an in-memory SQLite database whose virtual tables read (and for user
// tables, write) the key-value store through kv::KeyValueStore, so the same code runs over a
// cluster (client::Client) and over the in-process store in tests.
//
//   auto db = sql::Database::open(client);
//   db->query("SELECT key, value FROM kv WHERE key >= 'a' ORDER BY key LIMIT 10", on_row);
//
// Tables (docs/sql.md):
//   kv(key TEXT, value, create_revision, mod_revision, version, lease): every key in the store,
//     read-only. Constraints on key (=, <, <=, >, >=, BETWEEN, IN, LIKE 'x%', GLOB 'x*') become
//     range scans; ORDER BY key is served in key order without a sort; LIMIT stops the scan
//     (pages grow from the LIMIT, or from a small first page, so little is read past it).
//     value is TEXT when its bytes are valid UTF-8, else BLOB; key is always TEXT (its
//     bytes as they are) so that comparisons follow the store's byte order.
//
// Consistency: a statement reads one snapshot. Its first page is a linearizable read at the
// store's current revision R; every later page of every scan in the statement (joins,
// subqueries, IN lists) reads at R (MVCC, RangeRequest.revision). If R is compacted away
// while the statement runs, it fails with Compacted; run it again.
//
// User tables: CREATE VIRTUAL TABLE t USING aspen(id INTEGER PRIMARY KEY, name TEXT, ...)
// keeps rows in the directory ["sql", "t"], tuple-encoded (docs/sql.md), and is declared again
// by every Database opened over the store. INSERT/UPDATE/DELETE are buffered and committed at
// the end of the SQL transaction as one KV transaction that holds only if every written row
// still has the mod revision this transaction read (absent for new rows). On a conflict an
// autocommit statement runs again (limits::kMaxSqlConflictRetries); inside BEGIN ... COMMIT the commit
// fails with Unavailable ("conflict") and nothing is written. At most limits::kMaxSqlTxnRows (60)
// rows per transaction; reads inside a transaction see its own uncommitted writes.
//
// Errors (SQL syntax, unknown tables, writes to kv, store failures) come back as Results,
// never as exceptions or crashes.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/limits.h"
#include "kv/key_value_store.h"

struct sqlite3;

namespace aspen::sql {

namespace internal {
struct ModuleContext;
}

struct Value {
  enum class Type { kNull, kInteger, kReal, kText, kBlob };
  Type type = Type::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string bytes;  // text or blob
  friend bool operator==(const Value&, const Value&) = default;
};
// For test failure messages: 42, 1.5, 'text', x'00ff', NULL.
std::string to_string(const Value& v);
inline void PrintTo(const Value& v, std::ostream* os) { *os << to_string(v); }
using Row = std::vector<Value>;

struct QueryResult {
  std::vector<std::string> columns;
  std::vector<Row> rows;
};

// Counters of what the virtual tables read from the store, for checking pushdown.
struct ScanStats {
  uint64_t scans = 0;         // xFilter calls (one range scan each)
  uint64_t pages = 0;         // range requests sent
  uint64_t keys_scanned = 0;  // keys the store returned (or counted)
};

// True when `sql` ends a statement (a ';' outside quotes and comments): what a shell waits
// for before it runs what was typed.
bool is_complete_statement(std::string_view sql);

class Database {
 public:
  // Declares the kv table and every user table the store holds. allocator_seed feeds the
  // directory layer's prefix allocator (CREATE VIRTUAL TABLE makes a directory).
  static Result<std::unique_ptr<Database>> open(kv::KeyValueStore& store, uint64_t allocator_seed = 1);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs every statement in `sql`; rows of each statement go to on_row (return false to
  // stop), after on_columns has named them.
  Status execute(std::string_view sql, const std::function<void(const std::vector<std::string>&)>& on_columns,
                 const std::function<bool(const Row&)>& on_row);
  // The rows of the last statement, at most limits::kMaxQueryResultRows.
  Result<QueryResult> query(std::string_view sql);

  const ScanStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  Database() = default;
  sqlite3* db_ = nullptr;
  ScanStats stats_;
  std::unique_ptr<internal::ModuleContext> context_;  // what the modules reach; outlives db_
};

}  // namespace aspen::sql
