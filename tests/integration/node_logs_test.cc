// GetLogs against a real node: the lines it logged come back from its in-memory ring
// (newest last), the level filter and the line limit hold, and `aspen-cli node logs` prints
// them. Who may ask (admin only) is in auth_test.cc.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "core/limits.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

bool has_line(const clientpb::GetLogsResponse& r, std::string_view text) {
  for (const auto& l : r.lines()) {
    if (l.message().find(text) != std::string::npos) return true;
  }
  return false;
}

class NodeLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nodes_[1] = std::make_unique<NodeProcess>(1, dir_.path(), "node-logs-cookie");
    ASSERT_NO_FATAL_FAILURE(nodes_[1]->start());
    client_ = client_for(nodes_);
    ASSERT_NE(client_, nullptr);
    ASSERT_NO_FATAL_FAILURE(form_cluster(*client_, nodes_));
  }
  TempDir dir_;
  NodeMap nodes_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(NodeLogsTest, ServesTheLinesTheNodeLoggedWithALevelFilter) {
  auto all = client_->recent_logs(client::Target{1});
  ASSERT_TRUE(all.has_value()) << all.error().to_string();
  EXPECT_EQ(all->node_id(), 1u);
  EXPECT_TRUE(has_line(*all, "phase 6/6 running")) << nodes_[1]->log();
  ASSERT_GE(all->lines_size(), 2);
  for (int i = 1; i < all->lines_size(); ++i) EXPECT_LE(all->lines(i - 1).time_ms(), all->lines(i).time_ms());
  const auto now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  EXPECT_LE(all->lines(all->lines_size() - 1).time_ms(), now_ms);
  EXPECT_GT(all->lines(0).time_ms(), now_ms - 3600 * 1000);

  // At warn and above: no info line, so not the startup line.
  auto warn = client_->recent_logs(client::Target{1}, 0, "warn");
  ASSERT_TRUE(warn.has_value()) << warn.error().to_string();
  EXPECT_FALSE(has_line(*warn, "phase 6/6 running"));
  for (const auto& l : warn->lines()) {
    EXPECT_TRUE(l.level() == "warning" || l.level() == "error" || l.level() == "critical") << l.level();
  }
  auto info = client_->recent_logs(client::Target{1}, 0, "info");
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(has_line(*info, "phase 6/6 running"));

  // max_lines counts from the newest line.
  auto two = client_->recent_logs(client::Target{1}, 2, "");
  ASSERT_TRUE(two.has_value());
  ASSERT_EQ(two->lines_size(), 2);
  auto again = client_->recent_logs(client::Target{1}, static_cast<uint32_t>(limits::kMaxRecentLogLines), "");
  ASSERT_TRUE(again.has_value());
  ASSERT_GE(again->lines_size(), 2);
  EXPECT_LE(two->lines(1).time_ms(), again->lines(again->lines_size() - 1).time_ms());
}

TEST_F(NodeLogsTest, RefusesOverTheLimitAndUnknownLevelsClearly) {
  auto over = client_->recent_logs(client::Target{1}, static_cast<uint32_t>(limits::kMaxRecentLogLines + 1), "");
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(over.error().message().find("kMaxRecentLogLines"), std::string::npos) << over.error().message();
  auto bad = client_->recent_logs(client::Target{1}, 10, "loud");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("unknown log level 'loud'"), std::string::npos) << bad.error().message();
  // The node still answers.
  EXPECT_TRUE(client_->recent_logs(client::Target{1}, 1, "").has_value());
}

TEST_F(NodeLogsTest, CliPrintsTheLinesAsTextAndJson) {
  auto env = operator_env(dir_.path());
  auto ticket = client_->cluster_ticket();
  ASSERT_TRUE(ticket.has_value());
  auto text = run_cli({"--ticket", *ticket, "node", "logs", "--node", "1", "--level", "info", "--lines", "2000"},
                      dir_.path(), "", env);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("INFO  node 1: phase 6/6 running"), std::string::npos) << text.out;
  auto json = run_cli({"--ticket", *ticket, "--json", "node", "logs", "--node", "1", "--lines", "5"}, dir_.path(), "", env);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  EXPECT_EQ(j["node_id"], 1);
  ASSERT_TRUE(j["lines"].is_array());
  EXPECT_LE(j["lines"].size(), 5u);
  EXPECT_FALSE(j["lines"].empty());
  for (const auto& l : j["lines"]) EXPECT_TRUE(l.contains("time_ms") && l.contains("level") && l.contains("message"));
  auto over = run_cli({"--ticket", *ticket, "node", "logs", "--lines", "2001"}, dir_.path(), "", env);
  EXPECT_NE(over.exit_code, 0);
  EXPECT_NE(over.err.find("--lines is at most 2000"), std::string::npos) << over.err;
}

}  // namespace
}  // namespace aspen::testing
