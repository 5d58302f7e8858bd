// aspen-cli against real aspen-node processes: an operator forms a 3-node cluster with the
// CLI alone, writes and reads keys, and scripts can rely on --json and the exit codes.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "cli_process.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

class CliTest : public ::testing::Test {
 protected:
  // The operator's key and token live in the test's directory, never in the user's home.
  CommandResult cli(std::vector<std::string> args) {
    std::vector<std::string> argv{bin_path("aspen-cli"), "--ticket",       ticket_,
                                  "--timeout-ms",        "15000",          "--identity",
                                  dir_.path() + "/operator.key",           "--token-file",
                                  dir_.path() + "/operator.token"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_.path() + "/cli.out");
  }
  // Another user of the same cluster, with its own key and token files.
  CommandResult cli_as(const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> argv{bin_path("aspen-cli"), "--ticket", ticket_, "--timeout-ms", "15000",
                                  "--identity", dir_.path() + "/" + who + ".key", "--token-file",
                                  dir_.path() + "/" + who + ".token"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_.path() + "/cli.out");
  }
  nlohmann::json cli_json(std::vector<std::string> args, int want_exit = 0) {
    args.insert(args.begin(), "--json");
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, want_exit) << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
    return j;
  }

  TempDir dir_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::string ticket_;
};

TEST_F(CliTest, OperatorFormsAClusterAndReadsAndWritesWithTheCli) {
  for (uint64_t id = 1; id <= 3; ++id) {
    nodes_.push_back(std::make_unique<NodeProcess>(id, dir_.path(), "cli-test-cookie"));
    nodes_.back()->start();
  }
  // Before init, a node's ticket names only itself: enough for `cluster init`.
  cluster::Ticket first;
  first.peers.push_back(nodes_[0]->ticket_peer());
  ticket_ = cluster::encode_ticket(first);

  auto init = cli({"cluster", "init", "--root-key-file", dir_.path() + "/root.key"});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  EXPECT_NE(init.out.find("export ASPEN_TOKEN_FILE=" + dir_.path() + "/operator.token"), std::string::npos) << init.out;
  namespace fs = std::filesystem;
  for (const char* f : {"/root.key", "/operator.token", "/operator.key"}) {
    EXPECT_EQ(fs::status(dir_.path() + f).permissions() & (fs::perms::group_all | fs::perms::others_all),
              fs::perms::none)
        << f << " may be read by others";
  }
  for (size_t i = 1; i < nodes_.size(); ++i) {
    auto r = cli({"cluster", "add-learner", std::to_string(nodes_[i]->id()), nodes_[i]->key_text(), nodes_[i]->addr()});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  auto promote = cli({"cluster", "change-membership", "1", "2", "3"});
  ASSERT_EQ(promote.exit_code, 0) << promote.out;

  // The cluster's own ticket now names all three members.
  auto t = cli({"cluster", "ticket"});
  ASSERT_EQ(t.exit_code, 0) << t.out;
  std::string full = t.out.substr(0, t.out.find_first_of("\r\n"));
  auto decoded = cluster::decode_ticket(full);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().to_string();
  EXPECT_EQ(decoded->peers.size(), 3u);
  EXPECT_FALSE(decoded->cluster_id.empty());
  ticket_ = full;

  auto status = cli_json({"cluster", "status"});
  EXPECT_EQ(status["members"].size(), 3u) << status.dump();
  EXPECT_NE(status["leader_id"].get<uint64_t>(), 0u);

  ASSERT_EQ(cli({"kv", "set", "greeting", "hello"}).exit_code, 0);
  auto got = cli({"kv", "get", "greeting"});
  EXPECT_EQ(got.exit_code, 0);
  EXPECT_EQ(got.out, "hello\n");
  // A stale read from a follower, and a linearizable one served by it.
  EXPECT_EQ(cli({"kv", "get", "greeting", "--node", "3"}).out, "hello\n");

  // Exit codes scripts can branch on: 1 = operation failed, 4 = refused argument.
  EXPECT_EQ(cli({"kv", "get", "no-such-key"}).exit_code, 1);
  EXPECT_EQ(cli({"kv", "cas", "greeting", "x", "--expected", "wrong"}).exit_code, 1);
  EXPECT_EQ(cli({"kv", "set", std::string(2000, 'k'), "v"}).exit_code, 4);

  auto lease = cli_json({"lease", "grant", "60"});
  ASSERT_TRUE(lease.contains("lease")) << lease.dump();
  auto scan = cli_json({"kv", "scan", "gr"});
  EXPECT_EQ(scan.dump().find("greeting") != std::string::npos, true) << scan.dump();

  auto metrics = cli({"metrics", "--node", "2"});
  EXPECT_EQ(metrics.exit_code, 0);
  EXPECT_NE(metrics.out.find("aspen_raft_applied_index"), std::string::npos);

  // A second user: its key, a read-only token the operator makes for it with the root key.
  auto who = cli_as("reader", {"identity", "show"});
  ASSERT_EQ(who.exit_code, 0) << who.out;
  const std::string reader_key = who.out.substr(0, who.out.find('\n'));
  ASSERT_EQ(reader_key.size(), 52u) << who.out;
  // No token yet: refused, exit 5.
  auto none = cli_as("reader", {"kv", "get", "greeting"});
  EXPECT_EQ(none.exit_code, 5) << none.out;
  auto made = cli({"auth", "token", "create", "--root-key-file", dir_.path() + "/root.key", "--can", "read:gr",
                   "--for", reader_key, "--expires-in", "1h", "-o", dir_.path() + "/reader.token"});
  ASSERT_EQ(made.exit_code, 0) << made.out;
  // Mistakes in a token request are refused before anything is signed, naming the problem.
  const std::string root = dir_.path() + "/root.key";
  auto bad_duration = cli({"auth", "token", "create", "--root-key-file", root, "--can", "read:gr", "--for", reader_key,
                           "--expires-in", "5x"});
  EXPECT_EQ(bad_duration.exit_code, 4);
  auto bad_capability = cli({"auth", "token", "create", "--root-key-file", root, "--can", "fly:gr", "--for",
                             reader_key});
  EXPECT_EQ(bad_capability.exit_code, 4);
  auto bad_key = cli({"auth", "token", "create", "--root-key-file", root, "--can", "read:gr", "--for", "not-a-key"});
  EXPECT_EQ(bad_key.exit_code, 4);
  auto no_root = cli({"auth", "token", "create", "--can", "read:gr", "--for", reader_key});
  EXPECT_EQ(no_root.exit_code, 2);
  EXPECT_EQ(cli_as("reader", {"kv", "get", "greeting"}).out, "hello\n");
  auto refused = cli_as("reader", {"kv", "set", "greeting", "overwritten"});
  EXPECT_EQ(refused.exit_code, 5) << refused.out;
  EXPECT_EQ(cli({"kv", "get", "greeting"}).out, "hello\n");
  auto whoami = cli_as("reader", {"--json", "auth", "whoami"});
  EXPECT_NE(whoami.out.find("read:gr"), std::string::npos) << whoami.out;
  auto inspect = cli({"auth", "token", "inspect", dir_.path() + "/reader.token"});
  EXPECT_EQ(inspect.exit_code, 0) << inspect.out;
  EXPECT_NE(inspect.out.find("NOT VERIFIED"), std::string::npos) << inspect.out;
  // Revoked: refused from then on (within the node's 1 s token cache).
  ASSERT_EQ(cli({"auth", "token", "revoke", dir_.path() + "/reader.token"}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return cli_as("reader", {"kv", "get", "greeting"}).exit_code == 5; }, 10000));
}

// History from the CLI: a key's past values by revision, a consistent scan, and compaction
// (which only an admin may run) making older revisions unreadable with a clear error.
TEST_F(CliTest, PastRevisionsAreReadableUntilCompacted) {
  nodes_.push_back(std::make_unique<NodeProcess>(1, dir_.path(), "cli-test-cookie"));
  nodes_.back()->start();
  cluster::Ticket first;
  first.peers.push_back(nodes_[0]->ticket_peer());
  ticket_ = cluster::encode_ticket(first);
  ASSERT_EQ(cli({"cluster", "init", "--root-key-file", dir_.path() + "/root.key"}).exit_code, 0);

  auto v1 = cli_json({"kv", "set", "config/mode", "blue"});
  const uint64_t r1 = v1["revision"].get<uint64_t>();
  auto failed = cli_json({"kv", "cas", "config/mode", "x", "--expected", "wrong"}, 1);
  EXPECT_EQ(failed["revision"].get<uint64_t>(), r1) << "a failed CAS does not move the revision: " << failed.dump();
  auto v2 = cli_json({"kv", "set", "config/mode", "green"});
  const uint64_t r2 = v2["revision"].get<uint64_t>();
  ASSERT_GT(r2, r1);
  ASSERT_EQ(cli({"kv", "set", "config/size", "3"}).exit_code, 0);

  EXPECT_EQ(cli({"kv", "get", "config/mode", "--revision", std::to_string(r1)}).out, "blue\n");
  EXPECT_EQ(cli({"kv", "get", "config/mode"}).out, "green\n");
  EXPECT_EQ(cli({"kv", "get", "config/size", "--revision", std::to_string(r2)}).exit_code, 1) << "not yet written then";
  auto scan = cli_json({"kv", "scan", "config/", "--revision", std::to_string(r2)});
  EXPECT_EQ(scan["count"].get<uint64_t>(), 1u) << scan.dump();
  EXPECT_EQ(scan["revision"].get<uint64_t>(), r2);

  // A reader without admin cannot take history away.
  auto who = cli_as("reader", {"identity", "show"});
  const std::string reader_key = who.out.substr(0, who.out.find('\n'));
  ASSERT_EQ(cli({"auth", "token", "create", "--root-key-file", dir_.path() + "/root.key", "--can", "full:config/",
                 "--for", reader_key, "--expires-in", "1h", "-o", dir_.path() + "/reader.token"})
                .exit_code,
            0);
  EXPECT_EQ(cli_as("reader", {"kv", "compact", std::to_string(r2)}).exit_code, 5);

  auto compacted = cli_json({"kv", "compact", std::to_string(r2)});
  EXPECT_EQ(compacted["compacted_revision"].get<uint64_t>(), r2) << compacted.dump();
  auto gone = cli_json({"kv", "get", "config/mode", "--revision", std::to_string(r1)}, 1);
  EXPECT_EQ(gone["error"]["code"], "Compacted") << gone.dump();
  EXPECT_NE(gone["error"]["message"].get<std::string>().find(std::to_string(r2)), std::string::npos) << gone.dump();
  EXPECT_EQ(cli({"kv", "get", "config/mode", "--revision", std::to_string(r2)}).out, "green\n");
  auto future = cli_json({"kv", "get", "config/mode", "--revision", "999999999"}, 4);
  EXPECT_EQ(future["error"]["code"], "InvalidArgument") << future.dump();
}

// Without a home directory, `cluster init` needs to be told where the root key and the
// admin token go, and says so before it initializes anything: a root key with nowhere to
// be kept would be lost with the cluster it made.
TEST_F(CliTest, InitWithNowhereToKeepTheRootKeyChangesNothing) {
  nodes_.push_back(std::make_unique<NodeProcess>(1, dir_.path(), "cli-test-cookie"));
  nodes_.back()->start();
  cluster::Ticket first;
  first.peers.push_back(nodes_[0]->ticket_peer());
  ticket_ = cluster::encode_ticket(first);
  auto r = run_cli({"--ticket", ticket_, "--identity", dir_.path() + "/operator.key", "cluster", "init"}, dir_.path(),
                   "", {});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--root-key-file"), std::string::npos) << r.err;
  auto health = cli({"--json", "node", "health", "--node", "1"});
  EXPECT_NE(health.out.find("uninitialized"), std::string::npos) << health.out;
}

TEST_F(CliTest, UnreachableClusterExitsWithThree) {
  // A ticket naming a node that is not running.
  nodes_.push_back(std::make_unique<NodeProcess>(1, dir_.path(), "cli-test-cookie"));
  nodes_.back()->start();
  cluster::Ticket t;
  t.peers.push_back(nodes_[0]->ticket_peer());
  ticket_ = cluster::encode_ticket(t);
  nodes_[0]->kill9();
  std::vector<std::string> argv{bin_path("aspen-cli"), "--ticket", ticket_, "--timeout-ms", "1500",
                                "--identity", dir_.path() + "/operator.key", "kv", "get", "k"};
  EXPECT_EQ(run_command(argv, dir_.path() + "/cli.out").exit_code, 3);
}

TEST_F(CliTest, BadNodeConfigurationStopsAtStartWithAMessageNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::string dir = dir_.path() + "/bad-config-node";
  std::vector<Case> cases{
      {{"--node-id", "1", "--data-dir", dir}, "--cookie"},
      {{"--node-id", "0", "--cookie", "long-enough-cookie", "--data-dir", dir}, "--node-id"},
      {{"--node-id", "abc", "--cookie", "long-enough-cookie", "--data-dir", dir}, "--node-id"},
      {{"--node-id", "1", "--cookie", "aspen-cookie-UNSAFE-CHANGE-ME", "--data-dir", dir}, "--cookie"},
      {{"--node-id", "1", "--cookie", "long-enough-cookie", "--data-dir", dir, "--storage-backend", "rocks"},
       "--storage-backend"},
      {{"--node-id", "1", "--cookie", "long-enough-cookie", "--data-dir", dir, "--bind", "nowhere"}, "--bind"},
      {{"--node-id", "1", "--cookie", "long-enough-cookie", "--data-dir", dir, "--peers", "2@notakey@127.0.0.1:1"},
       "--peers"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{bin_path("aspen-node")};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run_command(argv, dir_.path() + "/node-config.out", true);
    const std::string& out = r.out;
    EXPECT_EQ(r.exit_code, 2) << c.expected << ": " << out;
    EXPECT_NE(out.find(c.expected), std::string::npos) << "the message should name " << c.expected << ": " << out;
  }
}

}  // namespace
}  // namespace aspen::testing
