// aspen-chaos-client and aspen-lincheck as the chaos harness (scripts/chaos.sh) uses them,
// against a real 3-node cluster on 127.0.0.1, without network namespaces: a workload runs
// while the leader is killed and restarted, then the history must check as linearizable
// and the members must converge. And aspen-lincheck's verdicts and exit codes on files.
#include <filesystem>
#include <thread>

#include "cli_process.h"
#include "cluster/ticket.h"

namespace aspen::testing {
namespace {

// Lines of a history file that end with `suffix` (an outcome) or, with is_prefix, start with it.
size_t count_lines(const std::string& path, const std::string& needle, bool is_prefix = false) {
  std::ifstream in(path);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) n += (is_prefix ? line.starts_with(needle) : line.ends_with(needle)) ? 1 : 0;
  return n;
}

CliRun run_lincheck(const std::vector<std::string>& args, const std::string& dir) {
  std::vector<std::string> argv{bin_path("aspen-lincheck")};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, dir, "", {});
}

TEST(ChaosClientTest, HistoryOfAWorkloadAcrossALeaderCrashIsLinearizableAndMembersConverge) {
  TempDir dir;
  NodeMap nodes;
  for (uint64_t id = 1; id <= 3; ++id) {
    nodes[id] = std::make_unique<NodeProcess>(id, dir.path(), "chaos-cookie");
    ASSERT_NO_FATAL_FAILURE(nodes[id]->start());
  }
  auto c = client_for(nodes);
  ASSERT_NE(c, nullptr);
  ASSERT_NO_FATAL_FAILURE(form_cluster(*c, nodes));

  cluster::Ticket ticket;
  for (const auto& [id, n] : nodes) ticket.peers.push_back(n->ticket_peer());
  auto env = operator_env(dir.path());
  env["ASPEN_TICKET"] = cluster::encode_ticket(ticket);
  const std::string history = dir.path() + "/history.txt";
  const std::string workload_dir = dir.path() + "/workload";
  std::filesystem::create_directories(workload_dir);

  CliRun workload;
  std::thread runner([&] {
    workload = run_process({bin_path("aspen-chaos-client"), "run", "--clients", "3", "--keys", "4", "--duration-s",
                            "8", "--think-ms", "5", "--history", history},
                           workload_dir, "", env);
  });
  // Kill the leader once the workload is under way, and bring it back once writes succeed
  // again without it.
  EXPECT_TRUE(wait_until([&] { return count_lines(history, " ok") >= 20; }, 15000));
  auto leader = c->leader();
  ASSERT_TRUE(leader.has_value()) << leader.error().to_string();
  const uint64_t leader_id = leader->leader().node_id();
  ASSERT_TRUE(nodes.contains(leader_id));
  nodes[leader_id]->kill9();
  const size_t ok_at_kill = count_lines(history, " ok");
  EXPECT_TRUE(wait_until([&] { return count_lines(history, " ok") >= ok_at_kill + 20; }, 20000));
  ASSERT_NO_FATAL_FAILURE(nodes[leader_id]->start());
  runner.join();
  ASSERT_EQ(workload.exit_code, 0) << workload.out << workload.err;
  EXPECT_NE(workload.out.find("workload: 3 clients, 4 keys"), std::string::npos) << workload.out;

  CliRun final_reads = run_process({bin_path("aspen-chaos-client"), "final-reads", "--keys", "4", "--history", history},
                                   dir.path(), "", env);
  ASSERT_EQ(final_reads.exit_code, 0) << final_reads.out << final_reads.err;
  EXPECT_EQ(count_lines(history, "0 read ", true), 4u);
  CliRun converge = run_process({bin_path("aspen-chaos-client"), "converge", "--timeout-s", "60"}, dir.path(), "", env);
  ASSERT_EQ(converge.exit_code, 0) << converge.out << converge.err;
  EXPECT_NE(converge.out.find("3 members agree"), std::string::npos) << converge.out;

  CliRun check = run_lincheck({history}, dir.path());
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("verdict: linearizable"), std::string::npos) << check.out;
}

TEST(ChaosClientTest, WithoutATicketTheClientSaysSoAndExits64) {
  TempDir dir;
  CliRun r = run_process({bin_path("aspen-chaos-client"), "converge"}, dir.path(), "", {});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("no ticket"), std::string::npos) << r.err;
}

TEST(LincheckToolTest, VerdictsAndExitCodes) {
  TempDir dir;
  const std::string good = dir.path() + "/good.txt";
  write_bytes(good,
              "# a linearizable history\n"
              "1 write k v1 0 10 ok\n"
              "2 read k v1 5 15 ok\n"
              "3 cas k v1 v2 20 - unknown\n"
              "2 read k v2 40 50 ok\n");
  CliRun r = run_lincheck({good}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("history: 4 operations (3 ok, 0 failed, 1 unknown) on 1 keys"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verdict: linearizable"), std::string::npos) << r.out;

  const std::string stale = dir.path() + "/stale.txt";
  write_bytes(stale,
              "1 write k v1 0 10 ok\n"
              "1 write k v2 11 20 ok\n"
              "2 read k v1 21 25 ok\n");
  r = run_lincheck({stale}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("verdict: NOT linearizable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("key \"k\""), std::string::npos) << r.out;

  const std::string bad = dir.path() + "/bad.txt";
  write_bytes(bad, "1 write k v1 0 10 ok\n1 write k v1 0 10 perhaps\n");
  r = run_lincheck({bad}, dir.path());
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;

  r = run_lincheck({dir.path() + "/missing.txt"}, dir.path());
  EXPECT_EQ(r.exit_code, 66);

  // Standard input, and a budget too small for a verdict is inconclusive, not a violation.
  r = run_process({bin_path("aspen-lincheck"), "--budget-states", "1", "-"}, dir.path(), good, {});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("verdict: inconclusive"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace aspen::testing
