// mDNS discovery between real aspen-node processes (docs/discovery.md, "mDNS"). Multicast
// does not work on loopback, so the nodes run in three network namespaces joined by a bridge
// (as scripts/chaos/lib.sh builds them), started with nothing but the cookie and gossip off:
// each must list the other two with source "mdns" in `aspen-cli cluster peers --json`, and a
// cluster is then formed by node ids alone. Needs root (network namespaces); skipped, with
// the reason, where they cannot be made. A node bound to 127.0.0.1 says once that mDNS is
// inactive and why, and runs on: that part needs nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "tests/integration/node_process.h"
#include "transport/identity.h"

namespace aspen::testing {
namespace {

constexpr char kCookie[] = "mdns-test-cookie-1234";
constexpr int kNodes = 3;
constexpr uint16_t kNodePort = 7001;

std::string ip_tool() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

// Runs a shell command quietly; its exit code.
int sh(const std::string& cmd) {
  const int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// The lab: a bridge and kNodes namespaces, named after this process's pid so that parallel
// runs do not collide and a later run can remove what a killed one left.
struct Lab {
  std::string ip;
  std::string bridge;
  std::string subnet;  // "10.79.N"
  std::vector<std::string> namespaces;
  bool is_made = false;

  static std::string prefix() { return "aspm-"; }

  explicit Lab(std::string ip_path) : ip(std::move(ip_path)) {
    const pid_t pid = ::getpid();
    bridge = "aspmb" + std::to_string(pid);
    subnet = "10.79." + std::to_string(pid % 250);
    for (int i = 1; i <= kNodes; ++i) namespaces.push_back(prefix() + std::to_string(pid) + "-" + std::to_string(i));
  }
  std::string node_ip(int i) const { return subnet + "." + std::to_string(i); }
  std::string veth(int i) const { return "aspmv" + std::to_string(::getpid()) + "n" + std::to_string(i); }

  // Namespaces and bridges that runs no longer alive left behind (a kill -9 of the tests).
  void remove_stale() const {
    for (const auto& entry : std::filesystem::directory_iterator("/run/netns", std::filesystem::directory_options::skip_permission_denied)) {
      const std::string name = entry.path().filename();
      if (!name.starts_with(prefix())) continue;
      const pid_t owner = static_cast<pid_t>(std::atoi(name.c_str() + prefix().size()));
      if (owner > 0 && ::kill(owner, 0) == 0) continue;
      sh(ip + " netns del " + name);
      sh(ip + " link del aspmb" + std::to_string(owner));
    }
  }

  // Empty on success, else why the lab cannot be made here.
  std::string make() {
    std::error_code ec;
    if (std::filesystem::exists("/run/netns", ec)) remove_stale();
    is_made = true;  // from here on, clean_up() removes whatever exists
    if (sh(ip + " netns add " + namespaces[0]) != 0) return "ip netns add failed (no CAP_SYS_ADMIN or no netns support)";
    if (sh(ip + " link add " + bridge + " type bridge") != 0) return "cannot create a bridge";
    // Multicast floods to every port: no snooping that waits for an IGMP querier.
    sh(ip + " link set " + bridge + " type bridge mcast_snooping 0");
    if (sh(ip + " addr add " + subnet + ".254/24 dev " + bridge) != 0 || sh(ip + " link set " + bridge + " up") != 0) {
      return "cannot configure the bridge";
    }
    for (int i = 1; i <= kNodes; ++i) {
      const std::string& ns = namespaces[static_cast<size_t>(i - 1)];
      if (i > 1 && sh(ip + " netns add " + ns) != 0) return "ip netns add failed";
      if (sh(ip + " link add " + veth(i) + " type veth peer name eth0 netns " + ns) != 0 ||
          sh(ip + " link set " + veth(i) + " master " + bridge + " up") != 0 ||
          sh(ip + " netns exec " + ns + " ip addr add " + node_ip(i) + "/24 dev eth0") != 0 ||
          sh(ip + " netns exec " + ns + " ip link set eth0 multicast on up") != 0 ||
          sh(ip + " netns exec " + ns + " ip link set lo up") != 0) {
        return "cannot make the veth pair of namespace " + ns;
      }
    }
    return "";
  }

  void clean_up() {
    if (!is_made) return;
    is_made = false;
    for (const auto& ns : namespaces) {
      sh("for p in $(" + ip + " netns pids " + ns + "); do kill -9 $p; done");
      sh(ip + " netns del " + ns);
    }
    sh(ip + " link del " + bridge);
  }
  ~Lab() { clean_up(); }
};

// Ctrl+C or a kill of the test binary still removes the lab.
Lab* g_lab = nullptr;
extern "C" void on_fatal_signal(int sig) {
  if (g_lab != nullptr) g_lab->clean_up();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

struct LabNode {
  int index = 0;
  std::string ns;
  std::string addr;
  std::string log_path;
  std::string key_text;
  pid_t pid = -1;
  ~LabNode() { stop(); }
  void stop() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  // SIGTERM, as an operator stops a node; SIGKILL if it has not exited within 10 s.
  void terminate() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    if (wait_until([&] { return ::waitpid(pid, nullptr, WNOHANG) == pid; }, 10000)) {
      pid = -1;
      return;
    }
    stop();
  }
  cluster::TicketPeer ticket_peer() const {
    return cluster::TicketPeer{static_cast<uint64_t>(index), *transport::PublicKey::parse(key_text),
                               {*transport::SocketAddr::parse(addr)}};
  }
};

// The node ids `cluster peers --json`, run inside the node's namespace, lists with source
// "mdns" and an address on the lab's subnet.
// `token_file`: the operator's token, needed once the cluster exists.
std::set<uint64_t> mdns_peers_of(const Lab& lab, const LabNode& n, const std::string& dir, const std::string& identity,
                                 const std::string& token_file = "") {
  std::set<uint64_t> out;
  const auto r = run_command({lab.ip, "netns", "exec", n.ns, "/usr/bin/env", "ASPEN_IDENTITY=" + identity,
                              "ASPEN_TOKEN_FILE=" + token_file,
                              bin_path("aspen-cli"), "--ticket",
                              cluster::encode_ticket(cluster::Ticket{"", {n.ticket_peer()}}), "--json", "cluster",
                              "peers", "--node", std::to_string(n.index)},
                             dir + "/peers-" + std::to_string(n.index) + ".out");
  if (r.exit_code != 0) return out;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.contains("peers")) return out;
  for (const auto& p : j["peers"]) {
    for (const auto& s : p["sources"]) {
      if (s["source"] == "mdns" && !s["addrs"].empty() &&
          s["addrs"][0].get<std::string>().starts_with(lab.subnet + ".")) {
        out.insert(p["node_id"].get<uint64_t>());
      }
    }
  }
  return out;
}

TEST(MdnsDiscovery, ThreeNodesInNamespacesFindEachOtherByMdnsAloneAndFormACluster) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make network namespaces (mDNS does not work on loopback)";
  const std::string ip = ip_tool();
  if (ip.empty()) GTEST_SKIP() << "the ip tool (iproute2) is not installed";
  TempDir dir;
  Lab lab(ip);
  g_lab = &lab;
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  struct sigaction old_int {}, old_term {};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  struct Restore {
    struct sigaction* i;
    struct sigaction* t;
    ~Restore() {
      ::sigaction(SIGINT, i, nullptr);
      ::sigaction(SIGTERM, t, nullptr);
      g_lab = nullptr;
    }
  } restore{&old_int, &old_term};
  if (const std::string why = lab.make(); !why.empty()) GTEST_SKIP() << "network namespaces unavailable: " << why;

  const std::string cookie_path = dir.path() + "/cookie";
  std::ofstream(cookie_path) << kCookie << "\n";
  std::filesystem::permissions(cookie_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const std::string identity_path = dir.path() + "/cli.key";
  ASSERT_TRUE(transport::write_identity_file(identity_path, TestOperator::get().identity).has_value());

  std::array<LabNode, kNodes> nodes;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 1; i <= kNodes; ++i) {
    LabNode& n = nodes[static_cast<size_t>(i - 1)];
    n.index = i;
    n.ns = lab.namespaces[static_cast<size_t>(i - 1)];
    n.addr = lab.node_ip(i) + ":" + std::to_string(kNodePort);
    n.log_path = dir.path() + "/node-" + std::to_string(i) + ".log";
    // Only the cookie: no --peers, no ticket, no gossip (so mDNS alone must do it).
    n.pid = spawn({ip, "netns", "exec", n.ns, bin_path("aspen-node"), "--node-id", std::to_string(i), "--cookie-file",
                   cookie_path, "--data-dir", dir.path() + "/node-" + std::to_string(i), "--bind", n.addr,
                   "--heartbeat-ms", "50", "--election-timeout-ms", "500", "--disable-gossip", "--log-level",
                   log_level()},
                  n.log_path, true);
    ASSERT_TRUE(wait_until([&] { return read_file(n.log_path).find("ASPEN_NODE_READY") != std::string::npos; }, 15000))
        << read_file(n.log_path);
    const std::string log = read_file(n.log_path);
    const auto pos = log.find("public_key=");
    ASSERT_NE(pos, std::string::npos) << log;
    n.key_text = log.substr(pos + 11, 52);
  }

  // Each node's own view, from inside its namespace, until it lists the other two by mDNS.
  std::array<bool, kNodes> is_done{};
  const bool found = wait_until(
      [&] {
        for (int i = 0; i < kNodes; ++i) {
          if (is_done[static_cast<size_t>(i)]) continue;
          std::set<uint64_t> want;
          for (int j = 1; j <= kNodes; ++j) {
            if (j != i + 1) want.insert(static_cast<uint64_t>(j));
          }
          if (mdns_peers_of(lab, nodes[static_cast<size_t>(i)], dir.path(), identity_path) != want) return false;
          is_done[static_cast<size_t>(i)] = true;
        }
        return true;
      },
      30000);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  ASSERT_TRUE(found) << read_file(nodes[0].log_path) << read_file(nodes[1].log_path) << read_file(nodes[2].log_path);
  std::printf("[ info ] 3 nodes in network namespaces (started one after another, gossip off) listed each other by "
              "mDNS %lld ms after the first start\n",
              static_cast<long long>(ms.count()));
  for (const auto& n : nodes) {
    EXPECT_NE(read_file(n.log_path).find("mDNS: found node"), std::string::npos) << read_file(n.log_path);
  }

  // A cluster by node ids alone, from the host (the bridge has an address on the subnet):
  // init on node 1, add-learner 2 and 3 with neither key nor address.
  cluster::Ticket t;
  t.peers.push_back(nodes[0].ticket_peer());
  client::ClientOptions o;
  o.timeout_ms = 15000;
  o.identity = TestOperator::get().identity;
  // A write's answer may take longer than the default second while other tests or builds
  // load the machine; an unknown outcome would end the test for nothing.
  o.write_attempt_timeout_ms = 10000;
  auto c = client::Client::connect(t, o);
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  auto init = (*c)->init_cluster();
  ASSERT_TRUE(init.has_value()) << init.error().to_string() << read_file(nodes[0].log_path);
  {
    TestOperator& op = TestOperator::get();
    std::lock_guard lock(op.mu);
    op.token = init->admin_token;
    op.root_seed = init->root_seed;
  }
  (*c)->set_token(TestOperator::get().current_token());
  for (uint64_t id : {2, 3}) {
    clientpb::NodeAddress only_id;
    only_id.set_node_id(id);
    auto added = (*c)->add_learner(only_id);
    ASSERT_TRUE(added.has_value()) << "node " << id << ": " << added.error().to_string();
  }
  auto voters = (*c)->change_membership({1, 2, 3}, false);
  ASSERT_TRUE(voters.has_value()) << voters.error().to_string() << read_file(nodes[1].log_path);
  EXPECT_EQ(voters->voters_size(), 3);

  // The metrics count what was sent and heard.
  auto metrics = (*c)->metrics_text(client::Target{1});
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->find("aspen_mdns_active{node_id=\"1\"} 1"), std::string::npos) << *metrics;
  EXPECT_EQ(metrics->find("aspen_mdns_datagrams_received_total{node_id=\"1\",reason=\"accepted\"} 0\n"),
            std::string::npos)
      << *metrics;

  // A node that stops says goodbye: the others forget its mDNS address now, not when its
  // records' TTL (120 s) runs out.
  const auto op = operator_env(dir.path());
  ASSERT_EQ(mdns_peers_of(lab, nodes[0], dir.path(), op.at("ASPEN_IDENTITY"), op.at("ASPEN_TOKEN_FILE")),
            (std::set<uint64_t>{2, 3}));
  nodes[2].terminate();
  EXPECT_TRUE(wait_until(
      [&] {
        return mdns_peers_of(lab, nodes[0], dir.path(), op.at("ASPEN_IDENTITY"), op.at("ASPEN_TOKEN_FILE")) ==
               std::set<uint64_t>{2};
      },
      10000))
      << read_file(nodes[0].log_path);
  EXPECT_NE(read_file(nodes[0].log_path).find("mDNS: node 3 said goodbye"), std::string::npos)
      << read_file(nodes[0].log_path);

  for (auto& n : nodes) n.stop();
  lab.clean_up();
  EXPECT_NE(sh(ip + " netns list | grep -q " + lab.namespaces[0]), 0) << "the namespaces were not removed";
}

TEST(MdnsDiscovery, OnLoopbackItSaysOnceThatItIsInactiveAndTheNodeRuns) {
  TempDir dir;
  NodeProcess node(1, dir.path(), kCookie);
  ASSERT_NO_FATAL_FAILURE(node.start());
  const bool said = wait_until([&] { return node.log().find("mDNS discovery is inactive") != std::string::npos; }, 10000);
  ASSERT_TRUE(said) << node.log();
  const std::string log = node.log();
  const auto first = log.find("mDNS discovery is inactive");
  EXPECT_EQ(log.find("mDNS discovery is inactive", first + 1), std::string::npos) << log;
  EXPECT_NE(log.find("loopback", first), std::string::npos) << log;
  EXPECT_TRUE(node.alive());
}

}  // namespace
}  // namespace aspen::testing
