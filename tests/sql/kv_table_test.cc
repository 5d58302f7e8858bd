// The kv virtual table over the in-process store: answers, pushdown (counted in keys the
// store returned), ORDER BY without a sort, LIMIT stopping the scan, and errors.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <fmt/format.h>

#include "kv/deterministic_store.h"
#include "sql/key_bounds.h"
#include "sql/sql.h"

namespace aspen::sql {
namespace {

using kv::DeterministicKeyValueStore;

Value text(std::string s) { return Value{Value::Type::kText, 0, 0, std::move(s)}; }
Value integer(int64_t i) { return Value{Value::Type::kInteger, i, 0, {}}; }

class KvTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2000; ++i) ASSERT_TRUE(kv::put(store_, fmt::format("k{:04}", i), fmt::format("v{}", i % 7)));
    ASSERT_TRUE(kv::put(store_, "Apple", "red"));
    ASSERT_TRUE(kv::put(store_, "apricot", "orange"));
    ASSERT_TRUE(kv::put(store_, "banana", "yellow"));
    ASSERT_TRUE(kv::put(store_, std::string("bin\xff", 4), std::string("\xff\x01", 2)));
    auto db = Database::open(store_);
    ASSERT_TRUE(db.has_value());
    db_ = std::move(*db);
  }
  QueryResult q(const std::string& sql) {
    db_->reset_stats();
    auto r = db_->query(sql);
    EXPECT_TRUE(r.has_value()) << sql << ": " << r.error().to_string();
    return r ? *r : QueryResult{};
  }
  DeterministicKeyValueStore store_;
  std::unique_ptr<Database> db_;
};

TEST_F(KvTableTest, SeedQueryReadsKeysFromTheBound) {
  auto r = q("SELECT key, value FROM kv WHERE key >= 'a' LIMIT 3");
  EXPECT_EQ(r.columns, (std::vector<std::string>{"key", "value"}));
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0], (Row{text("apricot"), text("orange")}));
  EXPECT_EQ(r.rows[1], (Row{text("banana"), text("yellow")}));
  EXPECT_EQ(r.rows[2][0], text(std::string("bin\xff", 4)));
  EXPECT_EQ(r.rows[2][1].type, Value::Type::kBlob);  // not UTF-8
  EXPECT_LE(db_->stats().keys_scanned, 3u);  // LIMIT sized the only page
}

TEST_F(KvTableTest, PointQueryScansOneKey) {
  auto r = q("SELECT value, version, create_revision > 0, mod_revision = create_revision, lease FROM kv WHERE key = 'k0042'");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0], (Row{text("v0"), integer(1), integer(1), integer(1), integer(0)}));
  EXPECT_EQ(db_->stats().keys_scanned, 1u);
  EXPECT_EQ(q("SELECT * FROM kv WHERE key = 'nope'").rows.size(), 0u);
  EXPECT_EQ(db_->stats().keys_scanned, 0u);
}

TEST_F(KvTableTest, RangeAndPrefixConstraintsArePushedDown) {
  EXPECT_EQ(q("SELECT count(*) FROM kv WHERE key BETWEEN 'k0100' AND 'k0199'").rows[0][0], integer(100));
  EXPECT_EQ(db_->stats().keys_scanned, 100u);
  EXPECT_EQ(q("SELECT count(*) FROM kv WHERE key > 'k0100' AND key < 'k0110'").rows[0][0], integer(9));
  EXPECT_EQ(db_->stats().keys_scanned, 9u);
  EXPECT_EQ(q("SELECT count(*) FROM kv WHERE key GLOB 'k01*'").rows[0][0], integer(100));
  EXPECT_EQ(db_->stats().keys_scanned, 100u);
  // LIKE ignores ASCII case: 'ap%' reads the range of every case variant ['AP', 'aq').
  auto like = q("SELECT key FROM kv WHERE key LIKE 'ap%' ORDER BY key");
  EXPECT_EQ(like.rows, (std::vector<Row>{{text("Apple")}, {text("apricot")}}));
  EXPECT_EQ(db_->stats().keys_scanned, 2u);
  EXPECT_EQ(q("SELECT key FROM kv WHERE key IN ('k0001', 'k1999', 'zz')").rows.size(), 2u);
  EXPECT_EQ(db_->stats().keys_scanned, 2u);
}

TEST_F(KvTableTest, OrderByKeyNeedsNoSortAndLimitStopsTheScan) {
  auto plan = q("EXPLAIN QUERY PLAN SELECT key FROM kv WHERE key > 'k1' ORDER BY key LIMIT 5");
  for (const auto& row : plan.rows) EXPECT_EQ(row.back().bytes.find("ORDER BY"), std::string::npos) << row.back().bytes;
  auto r = q("SELECT key FROM kv WHERE key > 'k1' ORDER BY key LIMIT 5");
  ASSERT_EQ(r.rows.size(), 5u);
  EXPECT_EQ(r.rows[0][0], text("k1000"));
  EXPECT_LE(db_->stats().keys_scanned, 5u);
  // Descending order is sorted by SQLite (the store scans forward only).
  EXPECT_EQ(q("SELECT key FROM kv WHERE key GLOB 'k*' ORDER BY key DESC LIMIT 1").rows[0][0], text("k1999"));
}

TEST_F(KvTableTest, CountOfEveryKeyReadsCountsOnly) {
  EXPECT_EQ(q("SELECT count(*) FROM kv").rows[0][0], integer(2004));
  EXPECT_EQ(db_->stats().keys_scanned, 2004u);
}

TEST_F(KvTableTest, WholeSqlWorksOnTop) {
  auto r = q("SELECT value, count(*) AS n FROM kv WHERE key GLOB 'k*' GROUP BY value HAVING n > 285 ORDER BY value");
  ASSERT_EQ(r.rows.size(), 5u);  // 2000 keys over 7 values: v0..v4 have 286, v5 and v6 285
  EXPECT_EQ(r.rows[0], (Row{text("v0"), integer(286)}));
  EXPECT_EQ(r.rows[4], (Row{text("v4"), integer(286)}));
  auto j = q("SELECT a.key FROM kv a JOIN kv b ON b.key = 'k' || substr(a.key, 2) WHERE a.key GLOB 'k000*' ORDER BY 1");
  EXPECT_EQ(j.rows.size(), 10u);
  auto sub = q("SELECT count(*) FROM kv WHERE key IN (SELECT key FROM kv WHERE value = 'yellow')");
  EXPECT_EQ(sub.rows[0][0], integer(1));
}

TEST_F(KvTableTest, ErrorsAreResultsNotCrashes) {
  auto syntax = db_->query("SELEC key FROM kv");
  ASSERT_FALSE(syntax.has_value());
  EXPECT_EQ(syntax.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(syntax.error().message().find("syntax error"), std::string::npos);
  auto write = db_->query("DELETE FROM kv WHERE key = 'banana'");
  ASSERT_FALSE(write.has_value());
  EXPECT_NE(write.error().message().find("may not be modified"), std::string::npos) << write.error().message();
  EXPECT_EQ(db_->query("SELECT * FROM nope").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(db_->query("ATTACH DATABASE '/tmp/x.db' AS x").error().code(), ErrorCode::kInvalidArgument);
  // A bound longer than any key is shortened, not sent to be refused.
  EXPECT_EQ(q("SELECT count(*) FROM kv WHERE key > '" + std::string(5000, 'k') + "'").rows[0][0], integer(0));
  EXPECT_EQ(q("SELECT count(*) FROM kv WHERE key < '" + std::string(5000, 'a') + "'").rows[0][0], integer(1));
}

class FailingStore : public kv::KeyValueStore {
 public:
  Result<kvpb::CommandResult> execute(kvpb::Command) override { return make_error(ErrorCode::kUnavailable, "down"); }
  // The directory layer's lookups (under 0xfe) find nothing; every other read fails.
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& r) override {
    if (is_down || !r.start().starts_with("\xfe")) return make_error(ErrorCode::kUnavailable, "no leader");
    return kvpb::RangeResult();
  }
  bool is_down = false;
  Result<std::vector<kvpb::Lease>> list_leases() override { return make_error(ErrorCode::kUnavailable, "down"); }
};

TEST(KvTable, StoreErrorsKeepTheirCode) {
  FailingStore store;
  auto db = Database::open(store);
  ASSERT_TRUE(db.has_value());
  auto r = (*db)->query("SELECT * FROM kv");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().message(), "no leader");
  store.is_down = true;
  EXPECT_EQ(Database::open(store).error().code(), ErrorCode::kUnavailable);
}

// Writes land between the pages of one statement: the statement still reads one revision.
class InterferingStore : public kv::KeyValueStore {
 public:
  explicit InterferingStore(DeterministicKeyValueStore& inner) : inner_(inner) {}
  Result<kvpb::CommandResult> execute(kvpb::Command cmd) override { return inner_.execute(std::move(cmd)); }
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& r) override {
    if (++ranges_ == 2) {
      EXPECT_TRUE(kv::put(inner_, "k1500", "changed"));
      EXPECT_TRUE(kv::del(inner_, "k1999"));
      EXPECT_TRUE(kv::put(inner_, "k5000", "new"));
    }
    return inner_.range(r);
  }
  Result<std::vector<kvpb::Lease>> list_leases() override { return inner_.list_leases(); }
  int ranges_ = 0;

 private:
  DeterministicKeyValueStore& inner_;
};

TEST_F(KvTableTest, AStatementReadsOneRevisionAcrossPages) {
  InterferingStore interfering(store_);
  auto db = Database::open(interfering);
  ASSERT_TRUE(db.has_value());
  interfering.ranges_ = 0;  // opening looked for user tables
  auto r = (*db)->query("SELECT count(key), sum(value = 'changed'), max(key) FROM kv WHERE key GLOB 'k*'");
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_GT(interfering.ranges_, 2);  // it did read several pages
  EXPECT_EQ(r->rows[0], (Row{integer(2000), integer(0), text("k1999")}));
  // The next statement sees the writes.
  auto after = (*db)->query("SELECT count(key), max(key) FROM kv WHERE key GLOB 'k*'");
  EXPECT_EQ(after->rows[0], (Row{integer(2000), text("k5000")}));
}

// Bounds hold every key the constraint accepts (a model of each operator).
bool model_accepts(KeyOp op, const std::string& key, const std::string& v) {
  auto lower = [](std::string s) {
    for (char& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return s;
  };
  switch (op) {
    case KeyOp::kEq: return key == v;
    case KeyOp::kGt: return key > v;
    case KeyOp::kGe: return key >= v;
    case KeyOp::kLt: return key < v;
    case KeyOp::kLe: return key <= v;
    case KeyOp::kGlob: return key.starts_with(glob_prefix(v));
    case KeyOp::kLike: return lower(key).starts_with(lower(like_prefix(v)));
  }
  return false;
}

RC_GTEST_PROP(KeyBoundsProperty, BoundsHoldEveryAcceptedKey, ()) {
  auto alphabet = rc::gen::element<char>('a', 'b', 'A', 'B', '\0', '\xff', '%', '_', '*');
  auto gen_str = rc::gen::container<std::string>(alphabet);
  std::string key = *gen_str;
  KeyBounds b;
  bool accepted = true;
  for (int i = *rc::gen::inRange(1, 4); i > 0; --i) {
    auto op = *rc::gen::element(KeyOp::kEq, KeyOp::kGt, KeyOp::kGe, KeyOp::kLt, KeyOp::kLe, KeyOp::kGlob, KeyOp::kLike);
    std::string v = *rc::gen::oneOf(gen_str, rc::gen::just(key));
    b.apply(op, v);
    accepted = accepted && model_accepts(op, key, v);
  }
  if (accepted) {
    RC_ASSERT(!b.is_empty());
    RC_ASSERT(key >= b.begin());
    RC_ASSERT(b.end().empty() || key < b.end());
  }
}

}  // namespace
}  // namespace aspen::sql
