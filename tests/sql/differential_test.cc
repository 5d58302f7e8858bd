// Differential test: the same generated queries against the kv virtual table (over the
// in-process store) and against an ordinary SQLite table holding the same rows must give
// identical results, row for row. 10,000+ queries from a seeded generator; a failure prints
// the seed and the query.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fmt/format.h>

#include "core/rng.h"
#include "kv/deterministic_store.h"
#include "sql/sql.h"

namespace aspen::sql {
namespace {

using kv::DeterministicKeyValueStore;

constexpr uint64_t kSeed = 20261203;
constexpr int kQueries = 12000;

// Small alphabets so that generated literals hit existing keys, prefixes and case variants.
const std::vector<std::string> kPieces = {"a", "b", "c", "A", "B", "%", "_", "/", "0", "1", "\xc3\xa9", "'"};

std::string random_text(Rng& rng, size_t max_len) {
  std::string s;
  size_t n = rng.range(0, max_len);
  for (size_t i = 0; i < n; ++i) s += kPieces[rng.uniform(kPieces.size())];
  return s;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

Value column_value(sqlite3_stmt* stmt, int i) {
  Value v;
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER: v.type = Value::Type::kInteger; v.integer = sqlite3_column_int64(stmt, i); break;
    case SQLITE_FLOAT: v.type = Value::Type::kReal; v.real = sqlite3_column_double(stmt, i); break;
    case SQLITE_TEXT:
      v.type = Value::Type::kText;
      v.bytes.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)), static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
      break;
    case SQLITE_BLOB:
      v.type = Value::Type::kBlob;
      if (sqlite3_column_bytes(stmt, i) > 0) {
        v.bytes.assign(static_cast<const char*>(sqlite3_column_blob(stmt, i)), static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
      }
      break;
    default: break;
  }
  return v;
}

class Reference {
 public:
  Reference() { EXPECT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK); }
  ~Reference() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  }
  std::vector<Row> query(const std::string& sql, std::string* error) {
    std::vector<Row> rows;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      *error = sqlite3_errmsg(db_);
      return rows;
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      Row r;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) r.push_back(column_value(stmt, i));
      rows.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) *error = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    return rows;
  }
  sqlite3* db_ = nullptr;
};

class QueryGenerator {
 public:
  explicit QueryGenerator(uint64_t seed) : rng_(seed) {}

  std::string predicate(int depth = 0) {
    uint64_t pick = rng_.uniform(depth >= 2 ? 14 : 18);
    const char* ops[] = {"=", "<", "<=", ">", ">=", "!="};
    std::string lit = quote(random_text(rng_, 3));
    switch (pick) {
      case 0: case 1: case 2: return fmt::format("key {} {}", ops[rng_.uniform(6)], lit);
      case 3: return fmt::format("key BETWEEN {} AND {}", lit, quote(random_text(rng_, 3)));
      case 4: return fmt::format("key LIKE {}", quote(random_text(rng_, 2) + (rng_.chance(1, 2) ? "%" : "_%")));
      case 5: return fmt::format("key GLOB {}", quote(random_text(rng_, 2) + (rng_.chance(3, 4) ? "*" : "?")));
      case 6: return fmt::format("key IN ({}, {}, {})", lit, quote(random_text(rng_, 2)), quote(random_text(rng_, 4)));
      case 7: return fmt::format("key {} {}", ops[rng_.uniform(6)], rng_.range(0, 20));  // integer operand
      case 8: return fmt::format("key {} x'{}'", ops[rng_.uniform(6)], rng_.chance(1, 2) ? "62" : "");  // blob operand
      case 9: return rng_.chance(1, 2) ? "key IS NOT NULL" : "key IS NULL";
      case 10: return fmt::format("value {} {}", ops[rng_.uniform(6)], rng_.chance(1, 2) ? lit : std::to_string(rng_.range(0, 12)));
      case 11: return fmt::format("version {} {}", ops[rng_.uniform(6)], rng_.range(0, 3));
      case 12: return fmt::format("lease {} 0", rng_.chance(1, 2) ? "=" : "!=");
      case 13: return fmt::format("mod_revision > create_revision + {}", rng_.range(0, 50));
      case 14: case 15: return fmt::format("({} AND {})", predicate(depth + 1), predicate(depth + 1));
      case 16: return fmt::format("({} OR {})", predicate(depth + 1), predicate(depth + 1));
      default: return fmt::format("NOT ({})", predicate(depth + 1));
    }
  }

  std::string query() {
    std::string p = predicate();
    uint64_t limit = rng_.range(0, 30);
    std::string limit_clause = rng_.chance(1, 2) ? "" : fmt::format(" LIMIT {}{}", limit, rng_.chance(1, 3) ? fmt::format(" OFFSET {}", rng_.range(0, 10)) : "");
    switch (rng_.uniform(9)) {
      case 0: return fmt::format("SELECT key, value, version FROM T WHERE {} ORDER BY key{}", p, limit_clause);
      case 1: return fmt::format("SELECT count(*) FROM T WHERE {}", p);
      case 2: return rng_.chance(1, 4) ? "SELECT count(*) FROM T" : fmt::format("SELECT count(key), count(value) FROM T WHERE {}", p);
      case 3: return fmt::format("SELECT value, count(*), min(key), max(key) FROM T WHERE {} GROUP BY value ORDER BY value", p);
      case 4: return fmt::format("SELECT key FROM T WHERE {} ORDER BY key DESC LIMIT {}", p, limit);
      case 5:
        return fmt::format("SELECT a.key, b.key FROM T a JOIN T b ON a.value = b.value AND a.key < b.key "
                           "WHERE a.{} ORDER BY a.key, b.key LIMIT 40",
                           p.starts_with("key") ? p : "key >= " + quote(random_text(rng_, 2)));
      case 6: return fmt::format("SELECT key FROM T WHERE key IN (SELECT key FROM T WHERE {}) AND {} ORDER BY key", p, predicate());
      case 7: return fmt::format("SELECT * FROM T WHERE {} ORDER BY key{}", p, limit_clause);
      default: return fmt::format("SELECT key, length(value), upper(key) FROM T WHERE {} AND {} ORDER BY key{}", p, predicate(), limit_clause);
    }
  }

 private:
  Rng rng_;
};

std::string replace_table(std::string sql, const std::string& name) {
  for (size_t at = 0; (at = sql.find(" T", at)) != std::string::npos; at += name.size()) {
    size_t after = at + 2;
    if (after < sql.size() && sql[after] != ' ') {
      ++at;
      continue;
    }
    sql.replace(at + 1, 1, name);
  }
  return sql;
}

TEST(SqlDifferential, KvTableAnswersLikeAPlainSqliteTable) {
  DeterministicKeyValueStore store;
  Rng rng(kSeed);
  auto lease = kv::lease_grant(store, 60000);
  ASSERT_TRUE(lease.has_value());
  for (int i = 0; i < 400; ++i) {
    std::string key = random_text(rng, 5);
    if (key.empty()) continue;
    std::string value = rng.chance(1, 3) ? std::to_string(rng.range(0, 12)) : random_text(rng, 2);
    ASSERT_TRUE(kv::put(store, key, value, rng.chance(1, 8) ? lease->id() : 0));
  }
  Reference ref;
  ref.exec("CREATE TABLE ref(key TEXT, value, create_revision INTEGER, mod_revision INTEGER, version INTEGER, lease INTEGER)");
  kvpb::RangeRequest all;
  all.set_limit(10000);
  auto rows = store.range(all);
  ASSERT_TRUE(rows.has_value());
  ASSERT_FALSE(rows->has_more());
  for (const auto& kv : rows->kvs()) {
    ref.exec(fmt::format("INSERT INTO ref VALUES ({}, {}, {}, {}, {}, {})", quote(kv.key()), quote(kv.value()),
                         kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease_id()));
  }
  auto db = Database::open(store);
  ASSERT_TRUE(db.has_value());

  QueryGenerator gen(kSeed);
  int failures = 0;
  uint64_t nonempty = 0;
  for (int i = 0; i < kQueries && failures < 5; ++i) {
    std::string q = gen.query();
    std::string ref_error;
    auto expected = ref.query(replace_table(q, "ref"), &ref_error);
    ASSERT_TRUE(ref_error.empty()) << ref_error << "\n" << q;
    auto actual = (*db)->query(replace_table(q, "kv"));
    if (!actual) {
      ADD_FAILURE() << "seed " << kSeed << " query " << i << ": " << q << "\n" << actual.error().to_string();
      ++failures;
      continue;
    }
    if (!expected.empty()) ++nonempty;
    if (actual->rows != expected) {
      ADD_FAILURE() << "seed " << kSeed << " query " << i << ": " << q << "\nkv: " << actual->rows.size()
                    << " rows, plain SQLite: " << expected.size() << " rows"
                    << (actual->rows.empty() || expected.empty() ? ""
                                                                  : "\nfirst kv row " + to_string(actual->rows[0][0]) +
                                                                        ", first plain row " + to_string(expected[0][0]));
      ++failures;
    }
  }
  // The generator must produce queries that return something, or the test proves little.
  EXPECT_GT(nonempty, static_cast<uint64_t>(kQueries / 2));
}

}  // namespace
}  // namespace aspen::sql
