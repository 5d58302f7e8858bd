// Test harness: real aspen-node processes on 127.0.0.1.
//
// Each node gets a fixed UDP port (so its address survives restarts), a data directory
// under a per-test temporary directory, and its stdout/stderr in a log file there. Waiting
// is always on a condition with a deadline (wait_until), never a bare sleep.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "auth/token_text.h"
#include "client/client.h"
#include "cluster/ticket.h"
#include "transport/identity.h"

namespace aspen::testing {

inline std::string bin_path(const std::string& name) { return std::string(ASPEN_BIN_DIR) + "/" + name; }

// Polls `cond` every 20 ms until it holds or `timeout_ms` passes.
inline bool wait_until(const std::function<bool()>& cond, uint32_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// A UDP port that was free a moment ago.
inline uint16_t free_udp_port() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Starts argv[0] with stdout (and stderr too, if asked) written to `out_path`.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, bool is_stderr_captured) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    if (is_stderr_captured) ::dup2(fd, 2);
    ::close(fd);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Runs a command to completion; returns its exit code and output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
};
inline CommandResult run_command(const std::vector<std::string>& argv, const std::string& out_path,
                                 bool is_stderr_captured = false) {
  pid_t pid = spawn(argv, out_path, is_stderr_captured);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  return r;
}

// Nodes log at info unless ASPEN_TEST_LOG_LEVEL says otherwise (debug, to chase a failure).
inline std::string log_level() {
  const char* level = std::getenv("ASPEN_TEST_LOG_LEVEL");
  return level != nullptr && *level != '\0' ? level : "info";
}

class NodeProcess {
 public:
  NodeProcess(uint64_t id, std::string dir, std::string cookie)
      : id_(id), dir_(std::move(dir)), cookie_(std::move(cookie)), port_(free_udp_port()) {}
  ~NodeProcess() { kill9(); }

  void set_cookie(std::string cookie) { cookie_ = std::move(cookie); }
  // The next start() binds another free port (a node restarted on a new address).
  void move_to_new_port() { port_ = free_udp_port(); }

  void start(const std::vector<std::string>& extra = {}) {
    ASSERT_LT(pid_, 0) << "node " << id_ << " already running";
    ++starts_;
    log_path_ = dir_ + "/node-" + std::to_string(id_) + "." + std::to_string(starts_) + ".log";
    // The cookie from a file, as operators should keep it (flags are visible in ps).
    const std::string cookie_path = dir_ + "/cookie-" + std::to_string(id_);
    std::filesystem::remove(cookie_path);
    {
      std::ofstream(cookie_path) << cookie_ << "\n";
      std::filesystem::permissions(cookie_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    std::vector<std::string> argv{bin_path("aspen-node"),
                                  "--node-id", std::to_string(id_),
                                  "--cookie-file", cookie_path,
                                  "--data-dir", dir_ + "/node-" + std::to_string(id_),
                                  "--bind", "127.0.0.1:" + std::to_string(port_),
                                  "--heartbeat-ms", "50",
                                  "--log-level", log_level()};
    // The tests' election timeout, unless the test gives its own.
    if (std::find(extra.begin(), extra.end(), "--election-timeout-ms") == extra.end()) {
      argv.insert(argv.end(), {"--election-timeout-ms", "500"});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = spawn(argv, log_path_, true);
    ASSERT_TRUE(wait_until([&] { return read_file(log_path_).find("ASPEN_NODE_READY") != std::string::npos || !alive(); },
                           15000))
        << "node " << id_ << " did not start";
    std::string log = read_file(log_path_);
    auto pos = log.find("public_key=");
    ASSERT_NE(pos, std::string::npos) << "node " << id_ << " log:\n" << log;
    key_text_ = log.substr(pos + 11, 52);
  }

  bool alive() {
    if (pid_ < 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      last_exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }

  void kill9() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // SIGSTOP / SIGCONT: a node that hangs (a long GC pause, a stalled disk) and comes back.
  void pause() {
    if (pid_ >= 0) ::kill(pid_, SIGSTOP);
  }
  void resume() {
    if (pid_ >= 0) ::kill(pid_, SIGCONT);
  }

  // Graceful stop; returns the exit code.
  int terminate() {
    if (pid_ < 0) return last_exit_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    last_exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return last_exit_;
  }

  uint64_t id() const { return id_; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& key_text() const { return key_text_; }
  std::string log() const { return read_file(log_path_); }

  cluster::TicketPeer ticket_peer() const {
    cluster::TicketPeer p;
    p.node_id = id_;
    p.public_key = *transport::PublicKey::parse(key_text_);
    p.addrs.push_back(*transport::SocketAddr::parse(addr()));
    return p;
  }
  clientpb::NodeAddress address() const {
    clientpb::NodeAddress a;
    a.set_node_id(id_);
    a.set_public_key(key_text_);
    a.add_addrs(addr());
    return a;
  }

 private:
  uint64_t id_;
  std::string dir_;
  std::string cookie_;
  uint16_t port_;
  pid_t pid_ = -1;
  int starts_ = 0;
  int last_exit_ = -1;
  std::string log_path_;
  std::string key_text_;
};

// A suite's shared set-up (a cluster for all its tests), run once by the first test's SetUp
// through ASPEN_SHARED_SET_UP rather than as SetUpTestSuite: gtest reports every test of a
// suite whose SetUpTestSuite failed as skipped, which would hide a cluster that did not
// form. This way that failure fails the first test, and the tests after it fail in SetUp.
struct SharedSetUp {
  bool has_run = false;
  bool is_ready = false;
};
#define ASPEN_SHARED_SET_UP(state, set_up)                                                        \
  do {                                                                                            \
    if (!(state).has_run) {                                                                       \
      (state).has_run = true;                                                                     \
      ASSERT_NO_FATAL_FAILURE(set_up());                                                          \
      (state).is_ready = true;                                                                    \
    }                                                                                             \
    ASSERT_TRUE((state).is_ready) << "the suite's shared set-up failed: see the first test's failure"; \
  } while (0)

using NodeMap = std::map<uint64_t, std::unique_ptr<NodeProcess>>;

// The operator of the clusters a test forms: one identity for every client the test makes,
// and the admin token `cluster init` gave it (tokens name the key that may present them).
struct TestOperator {
  transport::NodeIdentity identity = transport::NodeIdentity::generate();
  std::mutex mu;
  std::string token;             // [mu] of the last cluster formed
  auth::SeedBytes root_seed{};   // [mu]
  static TestOperator& get() {
    static TestOperator op;
    return op;
  }
  std::string current_token() {
    std::lock_guard lock(mu);
    return token;
  }
};

// Writes the test operator's key and admin token where aspen-cli looks for them (mode 0600),
// for CLI processes to act as the same operator.
inline void write_operator_credentials(const std::string& identity_path, const std::string& token_path) {
  TestOperator& op = TestOperator::get();
  std::filesystem::create_directories(std::filesystem::path(identity_path).parent_path());
  std::filesystem::remove(identity_path);
  ASSERT_TRUE(transport::write_identity_file(identity_path, op.identity).has_value());
  std::filesystem::remove(token_path);
  {
    std::ofstream(token_path) << auth::encode_token_text(op.current_token()) << "\n";
  }
  std::filesystem::permissions(token_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// The environment that makes aspen-cli the test operator (files written under `dir`).
inline std::map<std::string, std::string> operator_env(const std::string& dir) {
  write_operator_credentials(dir + "/operator.key", dir + "/operator.token");
  return {{"ASPEN_IDENTITY", dir + "/operator.key"}, {"ASPEN_TOKEN_FILE", dir + "/operator.token"}};
}

// A client that knows every node in `nodes` (node 1 first: InitCluster goes there).
// write_attempt_timeout_ms 0 keeps the client's default.
inline std::unique_ptr<client::Client> client_for(const NodeMap& nodes, uint32_t timeout_ms = 15000,
                                                  uint32_t write_attempt_timeout_ms = 0) {
  cluster::Ticket t;
  for (const auto& [id, n] : nodes) t.peers.push_back(n->ticket_peer());
  client::ClientOptions o;
  o.timeout_ms = timeout_ms;
  o.identity = TestOperator::get().identity;
  o.token = TestOperator::get().current_token();
  if (write_attempt_timeout_ms != 0) o.write_attempt_timeout_ms = write_attempt_timeout_ms;
  auto c = client::Client::connect(t, o);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().to_string());
  return c ? std::move(*c) : nullptr;
}

// init on node 1, add the others as learners, then make them all voters. Use with
// ASSERT_NO_FATAL_FAILURE. The init answer (cluster id, ticket) goes to `init_out`.
inline void form_cluster(client::Client& c, const NodeMap& nodes, clientpb::InitClusterResponse* init_out = nullptr) {
  auto result = c.init_cluster();
  ASSERT_TRUE(result.has_value()) << result.error().to_string() << "\n" << nodes.at(1)->log();
  {
    TestOperator& op = TestOperator::get();
    std::lock_guard lock(op.mu);
    op.token = result->admin_token;
    op.root_seed = result->root_seed;
  }
  const clientpb::InitClusterResponse* init = &result->response;
  EXPECT_FALSE(init->cluster_id().empty());
  EXPECT_TRUE(init->ticket().starts_with("aspen"));
  if (init_out != nullptr) *init_out = *init;
  std::vector<uint64_t> voters{1};
  for (const auto& [id, n] : nodes) {
    if (id == 1) continue;
    auto r = c.add_learner(n->address());
    ASSERT_TRUE(r.has_value()) << "add-learner " << id << ": " << r.error().to_string();
    voters.push_back(id);
  }
  if (voters.size() > 1) {
    auto r = c.change_membership(voters, false);
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    EXPECT_EQ(static_cast<size_t>(r->voters_size()), voters.size());
    // The answer comes once the cluster has left the joint configuration: before that, node 1
    // alone was still a quorum of its own, and losing it would stop every election.
    auto m = c.raft_metrics(client::Target{1});
    ASSERT_TRUE(m.has_value()) << m.error().to_string();
    EXPECT_EQ(m->voters_outgoing_size(), 0) << "change-membership answered inside the joint configuration";
  }
}

// A per-test temporary directory, removed when the test passes (kept for a failure, and
// always with ASPEN_TEST_KEEP set: a suite's shared cluster outlives the failing test, so its
// node logs are only kept that way).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/aspen-it-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    if (!::testing::Test::HasFailure() && !std::getenv("ASPEN_TEST_KEEP")) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace aspen::testing
