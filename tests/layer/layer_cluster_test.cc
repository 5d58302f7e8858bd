// The layers against a real 3-node cluster through client::Client and aspen-cli: 16 clients
// creating directories at once, and the dir (and sql) commands. One cluster serves the suite.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kv/key_value_store.h"
#include "layer/directory.h"
#include "sql/sql.h"
#include "tests/integration/cli_process.h"
#include "tests/integration/node_process.h"

namespace aspen::testing {
namespace {

class LayerClusterTest : public ::testing::Test {
 protected:
  static inline SharedSetUp shared_;  // set_up_suite runs from the first SetUp (node_process.h)
  static void set_up_suite() {
    dir_ = new TempDir();
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_->path(), "layer-cookie-1");
      nodes_[id]->start();
    }
    auto c = client_for(nodes_, 15000, 5000);
    ASSERT_NE(c, nullptr);
    clientpb::InitClusterResponse init;
    ASSERT_NO_FATAL_FAILURE(form_cluster(*c, nodes_, &init));
    ticket_ = init.ticket();
  }

  static void TearDownTestSuite() {
    shared_ = {};
    for (auto& [id, n] : nodes_) n->kill9();
    nodes_.clear();
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override { ASPEN_SHARED_SET_UP(shared_, set_up_suite); }

  static CliRun cli(std::vector<std::string> args) {
    auto env = operator_env(dir_->path());
    env["ASPEN_TICKET"] = ticket_;
    env["ASPEN_CLI_TIMEOUT_MS"] = "15000";
    return run_cli(args, dir_->path(), "", env);
  }
  static nlohmann::json cli_json(std::vector<std::string> args, int want_exit = 0) {
    args.insert(args.begin(), "--json");
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, want_exit) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
    return j;
  }

  static inline TempDir* dir_ = nullptr;
  static inline NodeMap nodes_;
  static inline std::string ticket_;
};

TEST_F(LayerClusterTest, SixteenConcurrentCreatorsNeverShareOrNestPrefixes) {
  constexpr int kThreads = 16, kPerThread = 6, kShared = 3;
  std::mutex mu;
  std::map<std::string, std::set<std::string>> prefixes_by_path;  // guarded by mu
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto c = client_for(nodes_, 30000, 5000);
      ASSERT_NE(c, nullptr);
      layer::DirectoryLayer dirs(*c, 7000 + t);
      for (int i = 0; i < kPerThread; ++i) {
        layer::Path own{"race", "t" + std::to_string(t) + "-" + std::to_string(i)};
        layer::Path shared{"race", "shared" + std::to_string(i % kShared)};
        for (const layer::Path& p : {own, shared}) {
          auto d = dirs.create_or_open(p);
          ASSERT_TRUE(d.has_value()) << d.error().to_string();
          std::lock_guard lock(mu);
          prefixes_by_path[fmt::format("{}", fmt::join(p, "/"))].insert(d->prefix());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_FALSE(HasFailure());
  std::vector<std::string> all;
  for (const auto& [path, prefixes] : prefixes_by_path) {
    EXPECT_EQ(prefixes.size(), 1u) << path << " was handed more than one prefix";
    all.push_back(*prefixes.begin());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread + kShared));
  std::sort(all.begin(), all.end());
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_NE(all[i - 1], all[i]) << "prefix handed out twice";
    EXPECT_FALSE(all[i].starts_with(all[i - 1])) << "a prefix is a prefix of another";
  }
  auto c = client_for(nodes_);
  layer::DirectoryLayer reader(*c, 1);
  EXPECT_EQ(reader.list({"race"})->size(), all.size());
}

TEST_F(LayerClusterTest, DirCommandsMakeListMoveAndRemove) {
  auto made = cli_json({"dir", "mkdir", "cli/users", "--layer", "table"});
  EXPECT_EQ(made["path"], "/cli/users");
  EXPECT_EQ(made["layer"], "table");
  std::string prefix_hex = made["prefix_hex"];
  EXPECT_FALSE(prefix_hex.empty());
  auto again = cli({"dir", "mkdir", "cli/users"});
  EXPECT_EQ(again.exit_code, 4) << again.out << again.err;
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;

  ASSERT_EQ(cli({"dir", "mkdir", "cli/orders"}).exit_code, 0);
  auto ls = cli({"dir", "ls", "cli"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, "orders\nusers\n");
  auto mv = cli_json({"dir", "mv", "/cli/users", "/cli/people"});
  EXPECT_EQ(mv["prefix_hex"], prefix_hex);  // a move keeps the prefix
  EXPECT_EQ(cli_json({"dir", "ls", "cli"})["directories"], nlohmann::json::array({"orders", "people"}));
  ASSERT_EQ(cli({"dir", "rm", "cli/people"}).exit_code, 0);
  EXPECT_EQ(cli({"dir", "ls", "cli"}).out, "orders\n");
  auto missing = cli({"dir", "rm", "cli/people"});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << missing.err;
  EXPECT_EQ(cli({"dir", "ls", "nope"}).exit_code, 1);
}

TEST_F(LayerClusterTest, SqlQueryPrintsTableCsvAndJson) {
  auto c = client_for(nodes_);
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(kv::put(*c, fmt::format("sql/{:02}", i), i % 2 ? "odd" : "even, \"quoted\""));
  auto table = cli({"sql", "query", "SELECT key, value FROM kv WHERE key >= 'sql/' AND key < 'sql0' LIMIT 2"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out, "key | value\nsql/00 | even, \"quoted\"\nsql/01 | odd\n");
  EXPECT_NE(table.err.find("(2 rows)"), std::string::npos);
  auto csv = cli({"sql", "query", "--csv", "SELECT key, value FROM kv WHERE key LIKE 'sql/0%' ORDER BY key LIMIT 1"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out, "key,value\nsql/00,\"even, \"\"quoted\"\"\"\n");
  auto j = cli_json({"sql", "query", "SELECT value, count(*) FROM kv WHERE key GLOB 'sql/*' GROUP BY value ORDER BY value"});
  EXPECT_EQ(j["columns"], nlohmann::json::array({"value", "count(*)"}));
  EXPECT_EQ(j["rows"], nlohmann::json::parse(R"([["even, \"quoted\"", 15], ["odd", 15]])"));
  auto bad = cli({"sql", "query", "SELECT FROM WHERE"});
  EXPECT_EQ(bad.exit_code, 4);
  EXPECT_NE(bad.err.find("syntax error"), std::string::npos) << bad.err;
  auto write = cli({"sql", "query", "DELETE FROM kv"});
  EXPECT_EQ(write.exit_code, 4);
}

TEST_F(LayerClusterTest, SqlShellRunsStatementsAcrossLinesAndKeepsHistory) {
  std::string input = dir_->path() + "/shell.in";
  write_bytes(input, ".help\nSELECT count(*)\n  FROM kv WHERE key GLOB 'shell/*';\n.mode csv\nSELECT 1 + 1 AS two;\nSELEC oops;\n.history\n");
  auto c = client_for(nodes_);
  ASSERT_TRUE(kv::put(*c, "shell/a", "1"));
  auto env = operator_env(dir_->path());
  env["ASPEN_TICKET"] = ticket_;
  auto r = run_cli({"sql", "shell", "--history-file", dir_->path() + "/history"}, dir_->path(), input, env);
  EXPECT_EQ(r.exit_code, 1) << r.err;  // one statement failed
  EXPECT_NE(r.out.find("count(*)\n1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("two\n2\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("syntax error"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("2  SELECT 1 + 1 AS two;"), std::string::npos) << r.out;
  EXPECT_EQ(read_bytes(dir_->path() + "/history"),
            "SELECT count(*)   FROM kv WHERE key GLOB 'shell/*';\nSELECT 1 + 1 AS two;\nSELEC oops;\n");
}

TEST_F(LayerClusterTest, UserTablesThroughTheCliPersistAcrossProcesses) {
  auto made = cli({"sql", "query",
                   "CREATE VIRTUAL TABLE people USING aspen(id INTEGER PRIMARY KEY, name TEXT);"
                   "INSERT INTO people VALUES (1, 'ada'), (2, 'alan');"
                   "UPDATE people SET name = upper(name) WHERE id = 2;"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto j = cli_json({"sql", "query", "SELECT id, name FROM people ORDER BY id"});
  EXPECT_EQ(j["rows"], nlohmann::json::parse(R"([[1, "ada"], [2, "ALAN"]])"));
  auto dup = cli({"sql", "query", "INSERT INTO people VALUES (1, 'again')"});
  EXPECT_EQ(dup.exit_code, 4);
  EXPECT_NE(dup.err.find("UNIQUE constraint failed"), std::string::npos) << dup.err;
  EXPECT_EQ(cli({"dir", "ls", "sql"}).out, "people\n");
}

TEST_F(LayerClusterTest, ConcurrentSqlWritersNeverLoseAnUpdate) {
  {
    auto c = client_for(nodes_);
    auto db = sql::Database::open(*c, 1);
    ASSERT_TRUE(db.has_value());
    ASSERT_TRUE((*db)->query("CREATE VIRTUAL TABLE hits USING aspen(id INTEGER PRIMARY KEY, n INTEGER);"
                             "INSERT INTO hits VALUES (1, 0);"));
  }
  constexpr int kThreads = 6, kIncrements = 15;
  std::atomic<int> applied{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto c = client_for(nodes_, 30000, 5000);
      ASSERT_NE(c, nullptr);
      auto db = sql::Database::open(*c, 50 + t);
      ASSERT_TRUE(db.has_value()) << db.error().to_string();
      for (int i = 0; i < kIncrements; ++i) {
        auto r = (*db)->query("UPDATE hits SET n = n + 1 WHERE id = 1");
        if (r) {
          applied++;
        } else if (r.error().message().find("conflict") != std::string::npos) {
          conflicts++;
        } else {
          ADD_FAILURE() << r.error().to_string();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  auto c = client_for(nodes_);
  auto db = sql::Database::open(*c, 2);
  ASSERT_TRUE(db.has_value());
  auto n = (*db)->query("SELECT n FROM hits WHERE id = 1");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->rows.at(0).at(0).integer, applied.load()) << conflicts.load() << " reported conflicts";
  EXPECT_EQ(applied.load() + conflicts.load(), kThreads * kIncrements);
}

}  // namespace
}  // namespace aspen::testing
