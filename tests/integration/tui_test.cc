// aspen-tui tested as a person uses it: a real 3-node cluster, the TUI in a detached tmux
// session of 80x24, keys sent with send-keys and the screen read with capture-pane. Every
// wait is on what the screen shows, with a deadline. Skips (saying why) without tmux.
#include <gtest/gtest.h>

#include <sstream>

#include "cli_process.h"
#include "ops_process.h"

namespace aspen::testing {
namespace {

class TuiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmux_ = find_program("tmux");
    if (tmux_.empty()) GTEST_SKIP() << "tmux is not installed (Debian package tmux; scripts/setup.sh)";
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_.path(), "tui-cookie");
      ASSERT_NO_FATAL_FAILURE(nodes_[id]->start());
    }
    client_ = client_for(nodes_);
    ASSERT_NE(client_, nullptr);
    ASSERT_NO_FATAL_FAILURE(form_cluster(*client_, nodes_));
    auto ticket = client_->cluster_ticket();
    ASSERT_TRUE(ticket.has_value()) << ticket.error().to_string();
    ticket_ = *ticket;
    env_ = operator_env(dir_.path());
    socket_ = dir_.path() + "/tmux.sock";
    // The TUI's command line, run by tmux's shell in a pane of exactly 80x24.
    std::string command = "env";
    for (const auto& [name, value] : env_) command += " " + name + "=" + value;
    command += " " + bin_path("aspen-tui") + " --refresh 500 --ticket " + ticket_;
    auto r = tmux({"new-session", "-d", "-s", "tui", "-x", "80", "-y", "24", command});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    is_started_ = true;
  }
  void TearDown() override {
    if (is_started_) (void)tmux({"kill-server"});
  }

  CommandResult tmux(std::vector<std::string> args) {
    std::vector<std::string> argv{tmux_, "-S", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_.path() + "/tmux.out", true);
  }
  std::string screen() {
    auto r = tmux({"capture-pane", "-p", "-t", "tui"});
    return r.exit_code == 0 ? r.out : "";
  }
  void keys(const std::vector<std::string>& names) {
    std::vector<std::string> args{"send-keys", "-t", "tui"};
    args.insert(args.end(), names.begin(), names.end());
    ASSERT_EQ(tmux(args).exit_code, 0);
  }
  void type(const std::string& text) { ASSERT_EQ(tmux({"send-keys", "-t", "tui", "-l", text}).exit_code, 0); }
  // Waits until the screen holds `text`; the last screen is in the failure message.
  ::testing::AssertionResult shows(const std::string& text, uint32_t timeout_ms = 30000) {
    std::string last;
    if (wait_until([&] { return (last = screen()).find(text) != std::string::npos; }, timeout_ms)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "the screen never showed '" << text << "':\n" << last;
  }
  // The node id on the row marked leader ("[2]    * leader"), 0 if none.
  uint64_t leader_on_screen() {
    std::istringstream lines(screen());
    std::string line;
    while (std::getline(lines, line)) {
      auto marker = line.find(" * leader");
      auto open = line.find('[');
      auto close = line.find(']');
      if (marker != std::string::npos && open != std::string::npos && close > open && close < marker) {
        return std::stoull(line.substr(open + 1, close - open - 1));
      }
    }
    return 0;
  }

  TempDir dir_;
  NodeMap nodes_;
  std::unique_ptr<client::Client> client_;
  std::string tmux_;
  std::string socket_;
  std::string ticket_;
  std::map<std::string, std::string> env_;
  bool is_started_ = false;
};

TEST_F(TuiTest, LeaderMarkerMovesWhenTheLeaderIsKilled) {
  ASSERT_TRUE(shows("[Cluster]"));
  uint64_t leader = 0;
  ASSERT_TRUE(wait_until([&] { return (leader = leader_on_screen()) != 0; }, 30000)) << screen();
  ASSERT_TRUE(shows(" o follower"));
  // The screen fits 80 columns and shows every member.
  for (const char* id : {"[1]", "[2]", "[3]"}) EXPECT_TRUE(shows(id)) << id;
  nodes_[leader]->kill9();
  EXPECT_TRUE(shows("[" + std::to_string(leader) + "]    x offline", 60000));
  uint64_t next = 0;
  ASSERT_TRUE(wait_until([&] { return (next = leader_on_screen()) != 0 && next != leader; }, 60000)) << screen();
  // Details of a selected offline member say so; the UI still answers keys.
  keys({"?"});
  EXPECT_TRUE(shows("Tab / Shift+Tab"));
  keys({"q"});
  EXPECT_TRUE(wait_until([&] { return tmux({"has-session", "-t", "tui"}).exit_code != 0; }, 30000))
      << "aspen-tui did not quit on q:\n" << screen();
}

TEST_F(TuiTest, AKeyWrittenInTheKeyValueViewIsReadableWithTheCli) {
  ASSERT_TRUE(shows("[Cluster]"));
  keys({"Tab"});
  ASSERT_TRUE(shows("[Metrics]"));
  ASSERT_TRUE(shows("writes/s"));
  keys({"Tab"});
  ASSERT_TRUE(shows("[Key-Value]"));
  keys({"w"});
  ASSERT_TRUE(shows("Write a key"));
  type("tui/greeting");
  keys({"Tab"});
  type("hello from the tui");
  keys({"Enter"});
  ASSERT_TRUE(shows("wrote tui/greeting"));
  auto r = run_cli({"--ticket", ticket_, "kv", "get", "tui/greeting"}, dir_.path(), "", env_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from the tui\n");
  // Browse it back by prefix, and read it with r.
  keys({"/"});
  ASSERT_TRUE(shows("Browse keys by prefix"));
  type("tui/");
  keys({"Enter"});
  ASSERT_TRUE(shows("> tui/greeting"));
  keys({"r"});
  type("tui/greeting");
  keys({"Enter"});
  ASSERT_TRUE(shows("read tui/greeting:"));
  // Shift+Tab goes back; a resize keeps the screen whole.
  keys({"BTab"});
  ASSERT_TRUE(shows("[Metrics]"));
  ASSERT_EQ(tmux({"resize-window", "-t", "tui", "-x", "100", "-y", "30"}).exit_code, 0);
  ASSERT_TRUE(shows("fsync p99"));
  keys({"q"});
  EXPECT_TRUE(wait_until([&] { return tmux({"has-session", "-t", "tui"}).exit_code != 0; }, 30000));
}

TEST_F(TuiTest, TheLogsViewShowsALineTheSelectedNodeLoggedWithALevelFilter) {
  ASSERT_TRUE(shows("[Cluster]"));
  ASSERT_TRUE(shows("> [1]"));  // the first member is selected
  keys({"4"});
  ASSERT_TRUE(shows("[Logs]"));
  ASSERT_TRUE(shows("node 1  level all"));
  // Whatever node 1 logged last appears on the screen (each round takes its newest line anew,
  // so lines logged meanwhile do not matter).
  std::string wanted;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = client_->recent_logs(client::Target{1}, 1, "");
        if (!r || r->lines().empty()) return false;
        wanted = r->lines(0).message().substr(0, 40);
        return screen().find(wanted) != std::string::npos;
      },
      30000))
      << "wanted '" << wanted << "' on:\n" << screen();
  // l cycles the filter: at error, the startup lines (info) are gone.
  keys({"l"});
  ASSERT_TRUE(shows("level info"));
  keys({"l"});
  ASSERT_TRUE(shows("level warn"));
  keys({"l"});
  ASSERT_TRUE(shows("level error"));
  ASSERT_TRUE(wait_until([&] { return screen().find(" INFO  ") == std::string::npos; }, 30000)) << screen();
  keys({"l"});
  ASSERT_TRUE(shows("level all"));
  ASSERT_TRUE(shows(" INFO  "));
  // An unreachable node is reported, and the UI keeps answering keys.
  nodes_[1]->kill9();
  EXPECT_TRUE(shows("node 1 is offline", 60000));
  keys({"?"});
  EXPECT_TRUE(shows("l cycles the level filter"));
  keys({"q"});
  EXPECT_TRUE(wait_until([&] { return tmux({"has-session", "-t", "tui"}).exit_code != 0; }, 30000))
      << "aspen-tui did not quit on q:\n" << screen();
}

}  // namespace
}  // namespace aspen::testing
