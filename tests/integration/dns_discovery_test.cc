// DNS discovery between real processes (docs/discovery.md, "DNS discovery"): a local dnsmasq
// serves SRV, A and TXT records naming members; a node started with --enable-dns-discovery
// pointed at it lists them in `aspen-cli cluster peers` as source dns and adds one by id
// alone; malformed records are refused and counted while the node keeps serving; a DNS
// server that does not answer is counted as failed lookups, and the node keeps serving.
//
// dnsmasq comes from Debian's dnsmasq-base (scripts/setup.sh installs it); without it the
// tests that need it are skipped, saying so.
#include <gtest/gtest.h>
#include <pwd.h>

#include <nlohmann/json.hpp>

#include "tests/integration/node_process.h"

namespace aspen::testing {
namespace {

constexpr char kCookie[] = "dns-discovery-test-cookie";
constexpr char kServiceName[] = "_aspen._udp.dns.test.";

std::string dnsmasq_path() {
  for (const char* p : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return {};
}

// A dnsmasq answering only the records it is given, on a free port of 127.0.0.1, with no
// upstream server, no /etc/hosts and no configuration file. Killed when it goes.
class Dnsmasq {
 public:
  ~Dnsmasq() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Use with ASSERT_NO_FATAL_FAILURE.
  void start(const std::string& dir, const std::vector<std::string>& records) {
    port_ = free_udp_port();
    log_path_ = dir + "/dnsmasq.log";
    const passwd* pw = ::getpwuid(::geteuid());
    std::vector<std::string> argv{dnsmasq_path(),
                                  "--no-daemon",
                                  "--port=" + std::to_string(port_),
                                  "--listen-address=127.0.0.1",
                                  "--bind-interfaces",
                                  "--no-resolv",
                                  "--no-hosts",
                                  "--conf-file=/dev/null",
                                  "--pid-file=",
                                  "--log-queries"};
    if (pw != nullptr) argv.push_back(std::string("--user=") + pw->pw_name);
    argv.insert(argv.end(), records.begin(), records.end());
    pid_ = spawn(argv, log_path_, true);
    // "started" is logged once its sockets are bound.
    ASSERT_TRUE(wait_until([&] { return log().find("started, version") != std::string::npos || !is_alive(); }, 10000));
    ASSERT_TRUE(is_alive()) << "dnsmasq exited:\n" << log();
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(log_path_); }
  bool is_alive() {
    if (pid_ < 0) return false;
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string log_path_;
};

// The SRV, A and TXT records that list a node as `host` (dnsmasq's flags).
std::vector<std::string> records_of(const std::string& host, uint16_t port, const std::string& txt) {
  std::vector<std::string> out{"--srv-host=" + std::string(kServiceName) + "," + host + "," + std::to_string(port),
                               "--host-record=" + host + ",127.0.0.1"};
  if (!txt.empty()) out.push_back("--txt-record=" + host + "," + txt);
  return out;
}

std::vector<std::string> dns_flags(const std::string& server) {
  return {"--disable-gossip", "--enable-dns-discovery", kServiceName, "--dns-discovery-server", server};
}

// `aspen-cli --json cluster peers --node 1`, as JSON (null if it failed).
nlohmann::json peers_of_node_1(const std::string& dir, const NodeProcess& n1) {
  const std::string identity_path = dir + "/cli.key";
  if (!std::filesystem::exists(identity_path)) {
    if (!transport::write_identity_file(identity_path, TestOperator::get().identity)) return nullptr;
  }
  const auto r = run_command({"/usr/bin/env", "ASPEN_IDENTITY=" + identity_path, bin_path("aspen-cli"), "--ticket",
                              cluster::encode_ticket(cluster::Ticket{"", {n1.ticket_peer()}}), "--json", "cluster",
                              "peers", "--node", "1"},
                             dir + "/peers.out");
  if (r.exit_code != 0) return nullptr;
  return nlohmann::json::parse(r.out, nullptr, false);
}

// The "dns" source of node `id` in a `cluster peers --json` answer, or null.
nlohmann::json dns_source(const nlohmann::json& peers, uint64_t id) {
  if (peers.is_null() || !peers.contains("peers")) return nullptr;
  for (const auto& p : peers["peers"]) {
    if (p["node_id"] != id) continue;
    for (const auto& s : p["sources"]) {
      if (s["source"] == "dns") return s;
    }
  }
  return nullptr;
}

// One sample of node 1's metrics page, or -1 if it is not there.
double metric(client::Client& c, const std::string& sample) {
  clientpb::Request req;
  req.mutable_get_metrics();
  auto r = c.call(req, client::Target{1}, 2000);
  if (!r || !r->has_get_metrics()) return -1;
  const std::string& text = r->get_metrics().prometheus_text();
  const auto pos = text.find(sample + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + sample.size() + 1));
}

std::string records_sample(const std::string& reason) {
  return "aspen_dns_discovery_records_total{node_id=\"1\",reason=\"" + reason + "\"}";
}

TEST(DnsDiscoveryTest, ANodeListsTheMembersTheZoneNamesAndAddsOneByIdAlone) {
  if (dnsmasq_path().empty()) {
    GTEST_SKIP() << "dnsmasq is not installed (Debian package dnsmasq-base; bash scripts/setup.sh installs it)";
  }
  TempDir dir;
  NodeMap nodes;
  for (uint64_t id = 1; id <= 3; ++id) nodes[id] = std::make_unique<NodeProcess>(id, dir.path(), kCookie);
  // Nodes 2 and 3 first: their keys go into the zone.
  ASSERT_NO_FATAL_FAILURE(nodes[2]->start({"--disable-gossip"}));
  ASSERT_NO_FATAL_FAILURE(nodes[3]->start({"--disable-gossip"}));
  std::vector<std::string> zone;
  for (uint64_t id : {2, 3}) {
    for (auto& r : records_of("node-" + std::to_string(id) + ".dns.test", nodes[id]->port(),
                              "aspen id=" + std::to_string(id) + " key=" + nodes[id]->key_text())) {
      zone.push_back(std::move(r));
    }
  }
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start(dir.path(), zone));
  ASSERT_NO_FATAL_FAILURE(nodes[1]->start(dns_flags(dns.server())));

  nlohmann::json peers;
  const bool listed = wait_until(
      [&] {
        peers = peers_of_node_1(dir.path(), *nodes[1]);
        return !dns_source(peers, 2).is_null() && !dns_source(peers, 3).is_null();
      },
      30000);
  ASSERT_TRUE(listed) << peers.dump(2) << "\n" << nodes[1]->log() << "\n" << dns.log();
  for (uint64_t id : {2, 3}) {
    const auto s = dns_source(peers, id);
    EXPECT_EQ(s["addrs"][0], nodes[id]->addr());
    EXPECT_GT(s["last_seen_ms"].get<uint64_t>(), 0u);
    EXPECT_LE(s["last_seen_ms"].get<uint64_t>(), peers["now_ms"].get<uint64_t>());
    for (const auto& p : peers["peers"]) {
      if (p["node_id"] == id) {
        EXPECT_EQ(p["public_key"], nodes[id]->key_text());
        EXPECT_FALSE(p["is_member"].get<bool>()) << "discovery grants no membership";
      }
    }
  }

  // A cluster by ids: init on node 1, `cluster add-learner 2` with no key or address.
  cluster::Ticket t;
  t.peers.push_back(nodes[1]->ticket_peer());
  client::ClientOptions o;
  o.timeout_ms = 15000;
  o.identity = TestOperator::get().identity;
  auto connected = client::Client::connect(t, o);
  ASSERT_TRUE(connected.has_value()) << connected.error().to_string();
  auto c = std::move(*connected);
  auto init = c->init_cluster();
  ASSERT_TRUE(init.has_value()) << init.error().to_string();
  {
    TestOperator& op = TestOperator::get();
    std::lock_guard lock(op.mu);
    op.token = init->admin_token;
    op.root_seed = init->root_seed;
  }
  c->set_token(TestOperator::get().current_token());
  std::vector<std::string> cli{"/usr/bin/env"};
  for (const auto& [k, v] : operator_env(dir.path())) cli.push_back(k + "=" + v);
  for (const auto& a : std::vector<std::string>{bin_path("aspen-cli"), "--ticket", init->response.ticket(), "cluster",
                                               "add-learner", "2"}) {
    cli.push_back(a);
  }
  const auto add2 = run_command(cli, dir.path() + "/add2.out", true);
  ASSERT_EQ(add2.exit_code, 0) << add2.out << nodes[1]->log();
  auto voters = c->change_membership({1, 2}, false);
  ASSERT_TRUE(voters.has_value()) << voters.error().to_string();
  EXPECT_EQ(voters->voters_size(), 2);
  EXPECT_GE(metric(*c, records_sample("accepted")), 2);
  EXPECT_GE(metric(*c, "aspen_dns_discovery_lookups_total{node_id=\"1\"}"), 1);
  EXPECT_EQ(metric(*c, "aspen_dns_discovery_enabled{node_id=\"1\"}"), 1);
}

TEST(DnsDiscoveryTest, MalformedRecordsAreRefusedAndCountedWhileTheNodeServes) {
  if (dnsmasq_path().empty()) {
    GTEST_SKIP() << "dnsmasq is not installed (Debian package dnsmasq-base; bash scripts/setup.sh installs it)";
  }
  TempDir dir;
  const std::string good_key = transport::NodeIdentity::generate().public_key().to_string();
  std::vector<std::string> zone;
  for (const auto& records :
       {records_of("good.dns.test", 7102, "aspen id=2 key=" + good_key),
        records_of("bad-key.dns.test", 7103, "aspen id=3 key=" + std::string(64, 'z')),
        records_of("bad-txt.dns.test", 7104, "aspen id=zero key=" + good_key),
        records_of("no-txt.dns.test", 7105, ""),
        records_of("binary.dns.test", 7106, std::string("aspen id=6 key=\x01\x02\xff"))}) {
    zone.insert(zone.end(), records.begin(), records.end());
  }
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start(dir.path(), zone));
  NodeMap nodes;
  nodes[1] = std::make_unique<NodeProcess>(1, dir.path(), kCookie);
  ASSERT_NO_FATAL_FAILURE(nodes[1]->start(dns_flags(dns.server())));
  auto c = client_for(nodes);
  ASSERT_NE(c, nullptr);
  const bool counted = wait_until(
      [&] {
        return metric(*c, records_sample("accepted")) >= 1 && metric(*c, records_sample("bad_key")) >= 1 &&
               metric(*c, records_sample("bad_txt")) >= 1 && metric(*c, records_sample("no_txt")) >= 1;
      },
      30000);
  ASSERT_TRUE(counted) << nodes[1]->log() << "\n" << dns.log();
  EXPECT_TRUE(nodes[1]->alive());
  const auto peers = peers_of_node_1(dir.path(), *nodes[1]);
  EXPECT_FALSE(dns_source(peers, 2).is_null()) << peers.dump(2);
  for (uint64_t refused : {3, 6}) EXPECT_TRUE(dns_source(peers, refused).is_null()) << peers.dump(2);
  const std::string log = nodes[1]->log();
  EXPECT_NE(log.find("DNS discovery refused a record: bad-key.dns.test"), std::string::npos) << log;
  EXPECT_NE(log.find("no-txt.dns.test:7105: no usable aspen TXT record"), std::string::npos) << log;
  // And it still serves.
  auto init = c->init_cluster();
  EXPECT_TRUE(init.has_value()) << init.error().to_string();
}

TEST(DnsDiscoveryTest, ADnsServerThatDoesNotAnswerIsCountedAndTheNodeServes) {
  TempDir dir;
  NodeMap nodes;
  nodes[1] = std::make_unique<NodeProcess>(1, dir.path(), kCookie);
  // A port nothing listens on: each lookup fails (refused or timed out).
  ASSERT_NO_FATAL_FAILURE(nodes[1]->start(dns_flags("127.0.0.1:" + std::to_string(free_udp_port()))));
  auto c = client_for(nodes);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(wait_until([&] { return metric(*c, "aspen_dns_discovery_lookup_failures_total{node_id=\"1\"}") >= 1; },
                         30000))
      << nodes[1]->log();
  EXPECT_EQ(metric(*c, "aspen_dns_discovery_known_nodes{node_id=\"1\"}"), 0);
  EXPECT_TRUE(nodes[1]->alive());
  auto init = c->init_cluster();
  EXPECT_TRUE(init.has_value()) << init.error().to_string();
}

}  // namespace
}  // namespace aspen::testing
