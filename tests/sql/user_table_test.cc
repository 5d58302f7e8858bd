// User tables over a directory: declared once, stored tuple-encoded, seen by every Database
// over the store; writes as one optimistic KV transaction; concurrent writers never lose an
// update.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <fmt/format.h>

#include "kv/deterministic_store.h"
#include "layer/directory.h"
#include "layer/tuple.h"
#include "sql/sql.h"

namespace aspen::sql {
namespace {

using kv::DeterministicKeyValueStore;

Value text(std::string s) { return Value{Value::Type::kText, 0, 0, std::move(s)}; }
Value integer(int64_t i) { return Value{Value::Type::kInteger, i, 0, {}}; }
Value real(double d) { return Value{Value::Type::kReal, 0, d, {}}; }
Value null() { return Value{}; }

std::unique_ptr<Database> open_db(kv::KeyValueStore& store, uint64_t seed = 1) {
  auto db = Database::open(store, seed);
  EXPECT_TRUE(db.has_value()) << db.error().to_string();
  return db ? std::move(*db) : nullptr;
}

QueryResult q(Database& db, const std::string& sql) {
  auto r = db.query(sql);
  EXPECT_TRUE(r.has_value()) << sql << ": " << r.error().to_string();
  return r ? *r : QueryResult{};
}

TEST(UserTable, CreateInsertSelectUpdateDeleteAndTheKeyLayout) {
  DeterministicKeyValueStore store;
  auto db = open_db(store);
  q(*db, "CREATE VIRTUAL TABLE users USING aspen(id INTEGER PRIMARY KEY, name TEXT, score REAL, photo BLOB)");
  q(*db, "INSERT INTO users VALUES (2, 'bob', 1.5, NULL), (1, 'ann', NULL, x'00ff'), (-7, 'neg', 3, NULL)");
  auto all = q(*db, "SELECT id, name, score, hex(photo) FROM users ORDER BY id");
  ASSERT_EQ(all.rows.size(), 3u);
  EXPECT_EQ(all.rows[0], (Row{integer(-7), text("neg"), integer(3), text("")}));
  EXPECT_EQ(all.rows[1], (Row{integer(1), text("ann"), null(), text("00FF")}));
  EXPECT_EQ(all.rows[2], (Row{integer(2), text("bob"), real(1.5), text("")}));
  // Rows live at dir + (0, pk) as tuples of the other columns.
  layer::DirectoryLayer dirs(store, 9);
  auto dir = dirs.open({"sql", "users"}, "sql_table");
  ASSERT_TRUE(dir.has_value());
  auto row = kv::get(store, dir->subspace.pack({0, 2}));
  ASSERT_TRUE(row.has_value() && row->has_value());
  EXPECT_EQ((*row)->value(), layer::pack({"bob", 1.5, layer::Null{}}));

  q(*db, "UPDATE users SET score = score * 2 WHERE id = 2");
  q(*db, "UPDATE users SET id = 10 WHERE name = 'ann'");  // a new primary key moves the row
  q(*db, "DELETE FROM users WHERE id < 0");
  auto after = q(*db, "SELECT id, name, score FROM users ORDER BY id");
  EXPECT_EQ(after.rows, (std::vector<Row>{{integer(2), text("bob"), real(3.0)}, {integer(10), text("ann"), null()}}));
  EXPECT_FALSE(kv::get(store, dir->subspace.pack({0, 1}))->has_value());
}

TEST(UserTable, PrimaryKeyConstraintsArePushedDownAndOrderNeedsNoSort) {
  DeterministicKeyValueStore store;
  auto db = open_db(store);
  q(*db, "CREATE VIRTUAL TABLE t USING aspen(k TEXT PRIMARY KEY, v INTEGER)");
  for (int batch = 0; batch < 10; ++batch) {
    std::string sql = "INSERT INTO t VALUES ";
    for (int i = 0; i < 50; ++i) sql += fmt::format("{}('k{:03}', {})", i ? ", " : "", batch * 50 + i, i);
    q(*db, sql);
  }
  db->reset_stats();
  EXPECT_EQ(q(*db, "SELECT v FROM t WHERE k = 'k123'").rows, (std::vector<Row>{{integer(23)}}));
  EXPECT_EQ(db->stats().keys_scanned, 1u);
  db->reset_stats();
  EXPECT_EQ(q(*db, "SELECT count(*) FROM t WHERE k >= 'k100' AND k < 'k200'").rows[0][0], integer(100));
  EXPECT_EQ(db->stats().keys_scanned, 100u);
  auto plan = q(*db, "EXPLAIN QUERY PLAN SELECT k FROM t ORDER BY k");
  for (const auto& r : plan.rows) EXPECT_EQ(r.back().bytes.find("ORDER BY"), std::string::npos);
  // An operand of another type is not pushed down; SQLite's comparison still answers.
  EXPECT_EQ(q(*db, "SELECT count(*) FROM t WHERE k > 5").rows[0][0], integer(500));
  EXPECT_EQ(q(*db, "SELECT count(*) FROM t WHERE v = 7").rows[0][0], integer(10));
}

TEST(UserTable, TablesPersistAcrossDatabasesAndDropRemovesThem) {
  DeterministicKeyValueStore store;
  {
    auto db = open_db(store);
    q(*db, "CREATE VIRTUAL TABLE notes USING aspen(id INTEGER PRIMARY KEY, body TEXT)");
    q(*db, "INSERT INTO notes VALUES (1, 'kept')");
  }
  auto db = open_db(store, 2);
  EXPECT_EQ(q(*db, "SELECT body FROM notes").rows, (std::vector<Row>{{text("kept")}}));
  // Declaring it again with the same columns opens it; with others is refused.
  q(*db, "CREATE VIRTUAL TABLE IF NOT EXISTS notes USING aspen(id INTEGER PRIMARY KEY, body TEXT)");
  auto other = open_db(store, 3);
  q(*other, "DROP TABLE notes");
  auto fresh = open_db(store, 4);
  EXPECT_EQ(fresh->query("SELECT * FROM notes").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(*layer::DirectoryLayer(store, 5).exists({"sql", "notes"}));
}

TEST(UserTable, BadDeclarationsAndWritesAreErrors) {
  DeterministicKeyValueStore store;
  auto db = open_db(store);
  auto no_pk = db->query("CREATE VIRTUAL TABLE a USING aspen(x INTEGER, y TEXT)");
  ASSERT_FALSE(no_pk.has_value());
  EXPECT_NE(no_pk.error().message().find("PRIMARY KEY"), std::string::npos) << no_pk.error().message();
  EXPECT_FALSE(db->query("CREATE VIRTUAL TABLE b USING aspen(x REAL PRIMARY KEY)").has_value());
  q(*db, "CREATE VIRTUAL TABLE c USING aspen(id INTEGER PRIMARY KEY, v TEXT)");
  EXPECT_FALSE(open_db(store, 2)->query("CREATE VIRTUAL TABLE c USING aspen(id INTEGER PRIMARY KEY)").has_value());
  EXPECT_FALSE(db->query("CREATE VIRTUAL TABLE \"bad name\" USING aspen(id INTEGER PRIMARY KEY)").has_value());
  q(*db, "INSERT INTO c VALUES (1, 'a')");
  auto dup = db->query("INSERT INTO c VALUES (1, 'again')");
  ASSERT_FALSE(dup.has_value());
  EXPECT_NE(dup.error().message().find("UNIQUE constraint failed: c.id"), std::string::npos) << dup.error().message();
  auto wrong_type = db->query("INSERT INTO c VALUES ('x', 'a')");
  ASSERT_FALSE(wrong_type.has_value());
  EXPECT_NE(wrong_type.error().message().find("must be a non-NULL INTEGER"), std::string::npos);
  EXPECT_FALSE(db->query("INSERT INTO c VALUES (NULL, 'a')").has_value());
  std::string many = "INSERT INTO c VALUES ";
  for (int i = 0; i <= 60; ++i) many += fmt::format("{}({}, 'x')", i ? ", " : "", 100 + i);
  auto too_many = db->query(many);
  ASSERT_FALSE(too_many.has_value());
  EXPECT_NE(too_many.error().message().find("at most 60 rows"), std::string::npos) << too_many.error().message();
  // Nothing of the failed statements was written.
  EXPECT_EQ(q(*db, "SELECT count(*), max(v) FROM c").rows[0], (Row{integer(1), text("a")}));
}

TEST(UserTable, ExplicitTransactionCommitsEveryTableAtOnce) {
  DeterministicKeyValueStore store;
  auto db = open_db(store);
  q(*db, "CREATE VIRTUAL TABLE acct USING aspen(id INTEGER PRIMARY KEY, balance INTEGER)");
  q(*db, "CREATE VIRTUAL TABLE log USING aspen(id INTEGER PRIMARY KEY, what TEXT)");
  q(*db, "INSERT INTO acct VALUES (1, 100), (2, 0)");
  uint64_t before = store.revision();
  q(*db, "BEGIN; UPDATE acct SET balance = balance - 30 WHERE id = 1; UPDATE acct SET balance = balance + 30 WHERE id = 2; "
         "INSERT INTO log VALUES (1, 'moved 30'); COMMIT;");
  EXPECT_EQ(store.revision(), before + 1);  // one KV transaction
  EXPECT_EQ(q(*db, "SELECT sum(balance) FROM acct").rows[0][0], integer(100));
  q(*db, "BEGIN; DELETE FROM log; ROLLBACK;");
  EXPECT_EQ(q(*db, "SELECT count(*) FROM log").rows[0][0], integer(1));
}

TEST(UserTable, ATransactionReadsItsOwnWrites) {
  DeterministicKeyValueStore store;
  auto db = open_db(store);
  q(*db, "CREATE VIRTUAL TABLE t USING aspen(id INTEGER PRIMARY KEY, v TEXT)");
  q(*db, "INSERT INTO t VALUES (1, 'one'), (3, 'three'), (5, 'five')");
  q(*db, "BEGIN");
  q(*db, "INSERT INTO t VALUES (2, 'two'), (9, 'nine')");
  q(*db, "UPDATE t SET v = 'THREE' WHERE id = 3");
  q(*db, "DELETE FROM t WHERE id = 5");
  auto inside = q(*db, "SELECT id, v FROM t ORDER BY id");
  EXPECT_EQ(inside.rows, (std::vector<Row>{{integer(1), text("one")}, {integer(2), text("two")}, {integer(3), text("THREE")},
                                           {integer(9), text("nine")}}));
  EXPECT_EQ(q(*db, "SELECT v FROM t WHERE id = 2").rows, (std::vector<Row>{{text("two")}}));
  EXPECT_TRUE(q(*db, "SELECT v FROM t WHERE id = 5").rows.empty());
  EXPECT_EQ(q(*db, "SELECT count(*) FROM t WHERE id > 1 AND id < 9").rows[0][0], integer(2));
  // Another database over the store sees none of it before COMMIT.
  auto other = open_db(store, 2);
  EXPECT_EQ(q(*other, "SELECT count(*), sum(id) FROM t").rows[0], (Row{integer(3), integer(9)}));
  q(*db, "COMMIT");
  EXPECT_EQ(q(*other, "SELECT group_concat(v) FROM (SELECT v FROM t ORDER BY id)").rows[0][0], text("one,two,THREE,nine"));
}

// A store that changes the row behind the statement's back on the first commits.
class RacingStore : public kv::KeyValueStore {
 public:
  RacingStore(DeterministicKeyValueStore& inner, std::string key, int races) : inner_(inner), key_(std::move(key)), races_(races) {}
  Result<kvpb::CommandResult> execute(kvpb::Command cmd) override {
    if (cmd.has_txn() && races_ > 0) {
      --races_;
      auto cur = kv::get(inner_, key_);
      EXPECT_TRUE(kv::put(inner_, key_, (*cur)->value()));  // same value, new mod revision
    }
    return inner_.execute(std::move(cmd));
  }
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& r) override { return inner_.range(r); }
  Result<std::vector<kvpb::Lease>> list_leases() override { return inner_.list_leases(); }

 private:
  DeterministicKeyValueStore& inner_;
  std::string key_;
  int races_;
};

TEST(UserTable, ConflictingCommitRunsAutocommitStatementAgainOrReportsIt) {
  DeterministicKeyValueStore store;
  auto setup = open_db(store);
  q(*setup, "CREATE VIRTUAL TABLE n USING aspen(id INTEGER PRIMARY KEY, v INTEGER)");
  q(*setup, "INSERT INTO n VALUES (1, 0)");
  auto dir = layer::DirectoryLayer(store, 3).open({"sql", "n"});
  std::string row_key = dir->subspace.pack({0, 1});
  {
    RacingStore racing(store, row_key, 3);
    auto db = open_db(racing);
    q(*db, "UPDATE n SET v = v + 1 WHERE id = 1");  // lost three races, then won
  }
  EXPECT_EQ(q(*setup, "SELECT v FROM n").rows[0][0], integer(1));
  {
    RacingStore racing(store, row_key, 1);
    auto db = open_db(racing);
    auto r = db->query("BEGIN; UPDATE n SET v = v + 1 WHERE id = 1; COMMIT;");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
    EXPECT_NE(r.error().message().find("conflict"), std::string::npos);
    q(*db, "ROLLBACK");
  }
  EXPECT_EQ(q(*setup, "SELECT v FROM n").rows[0][0], integer(1));
}

TEST(UserTable, ConcurrentWritersNeverLoseAnUpdate) {
  DeterministicKeyValueStore store;
  auto setup = open_db(store);
  q(*setup, "CREATE VIRTUAL TABLE counters USING aspen(id INTEGER PRIMARY KEY, n INTEGER)");
  q(*setup, "INSERT INTO counters VALUES (1, 0)");
  constexpr int kThreads = 8, kIncrements = 40;
  std::atomic<int> applied{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto db = open_db(store, 100 + t);
      for (int i = 0; i < kIncrements; ++i) {
        auto r = db->query("UPDATE counters SET n = n + 1 WHERE id = 1");
        if (r) {
          applied++;
        } else if (r.error().message().find("conflict") != std::string::npos) {
          conflicts++;  // reported, not applied: allowed, but must not be counted as done
        } else {
          ADD_FAILURE() << r.error().to_string();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(q(*setup, "SELECT n FROM counters").rows[0][0], integer(applied.load()));
  EXPECT_EQ(applied.load() + conflicts.load(), kThreads * kIncrements);
  EXPECT_GT(applied.load(), 0);
}

}  // namespace
}  // namespace aspen::sql
