// Gossip discovery between real aspen-node processes on 127.0.0.1 (docs/operations.md,
// "Discovery"): nodes started with nothing but the cookie find each other through the probe
// ports, a cluster is then formed by node ids alone (add-learner takes the key and address
// discovery heard), `aspen-cli cluster peers` shows the sources, and hostile peers (forged,
// replayed, wrong-key, flooding) are refused and counted in the node's metrics.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "cluster/gossip.h"
#include "cluster/gossip_settings.h"
#include "node/gossip_topic.h"
#include "tests/integration/node_process.h"
#include "transport/endpoint.h"

namespace aspen::testing {
namespace {

constexpr char kCookie[] = "gossip-test-cookie-1234";

bool is_udp_port_free(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

// `n` consecutive UDP ports that were free a moment ago.
uint16_t free_port_block(uint16_t n) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    const uint16_t base = free_udp_port();
    if (base > 65535 - n) continue;
    bool ok = true;
    for (uint16_t i = 1; i < n && ok; ++i) ok = is_udp_port_free(static_cast<uint16_t>(base + i));
    if (ok) return base;
  }
  return 0;
}

// An aspen-node started with the cookie, a port and the flags given: no --peers, no ticket.
struct GossipNode {
  uint64_t id = 0;
  uint16_t port = 0;
  std::string log_path;
  std::string key_text;
  pid_t pid = -1;
  ~GossipNode() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port); }
  cluster::TicketPeer ticket_peer() const {
    return cluster::TicketPeer{id, *transport::PublicKey::parse(key_text), {*transport::SocketAddr::parse(addr())}};
  }
};

void start_node(const std::string& dir, GossipNode& n, const std::vector<std::string>& extra) {
  const std::string cookie_path = dir + "/cookie";
  if (!std::filesystem::exists(cookie_path)) {
    std::ofstream(cookie_path) << kCookie << "\n";
    std::filesystem::permissions(cookie_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  n.log_path = dir + "/node-" + std::to_string(n.id) + ".log";
  std::vector<std::string> argv{bin_path("aspen-node"), "--node-id",     std::to_string(n.id),
                                "--cookie-file",        cookie_path,     "--data-dir",
                                dir + "/node-" + std::to_string(n.id),   "--bind",
                                n.addr(),               "--heartbeat-ms", "50",
                                "--election-timeout-ms", "500",          "--log-level",
                                log_level()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  n.pid = spawn(argv, n.log_path, true);
  ASSERT_TRUE(wait_until([&] { return read_file(n.log_path).find("ASPEN_NODE_READY") != std::string::npos; }, 15000))
      << read_file(n.log_path);
  const std::string log = read_file(n.log_path);
  const auto pos = log.find("public_key=");
  ASSERT_NE(pos, std::string::npos);
  n.key_text = log.substr(pos + 11, 52);
}

std::unique_ptr<client::Client> client_of(const std::vector<const GossipNode*>& nodes) {
  cluster::Ticket t;
  for (const auto* n : nodes) t.peers.push_back(n->ticket_peer());
  client::ClientOptions o;
  o.timeout_ms = 15000;
  o.identity = TestOperator::get().identity;
  o.token = TestOperator::get().current_token();
  auto c = client::Client::connect(t, o);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().to_string());
  return c ? std::move(*c) : nullptr;
}

// The node ids `node` reports having heard of by gossip.
std::set<uint64_t> gossip_peers_of(client::Client& c, uint64_t node) {
  clientpb::Request req;
  req.mutable_get_peers();
  auto r = c.call(req, client::Target{node}, 2000);
  std::set<uint64_t> out;
  if (!r || !r->has_get_peers()) return out;
  for (const auto& p : r->get_peers().peers()) {
    for (const auto& s : p.sources()) {
      if (s.source() == "gossip") out.insert(p.node_id());
    }
  }
  return out;
}

TEST(GossipTest, NodesStartedWithOnlyTheCookieFindEachOtherFormAClusterByIdAndShowTheirSources) {
  TempDir dir;
  const uint16_t base = free_port_block(3);
  ASSERT_NE(base, 0) << "no block of 3 free UDP ports";
  const std::string range = std::to_string(base) + "-" + std::to_string(base + 2);
  std::vector<std::unique_ptr<GossipNode>> nodes;
  for (uint64_t id = 1; id <= 3; ++id) {
    nodes.push_back(std::make_unique<GossipNode>());
    nodes.back()->id = id;
    nodes.back()->port = static_cast<uint16_t>(base + id - 1);
  }
  // The default interval (10 s): finding each other must not wait for rounds, since a
  // newcomer's probes are answered at once.
  const auto started = std::chrono::steady_clock::now();
  for (auto& n : nodes) ASSERT_NO_FATAL_FAILURE(start_node(dir.path(), *n, {"--gossip-probe-ports", range}));
  auto c = client_of({nodes[0].get(), nodes[1].get(), nodes[2].get()});
  ASSERT_NE(c, nullptr);
  const bool found = wait_until(
      [&] {
        for (const auto& n : nodes) {
          auto seen = gossip_peers_of(*c, n->id);
          for (const auto& other : nodes) {
            if (other->id != n->id && !seen.contains(other->id)) return false;
          }
        }
        return true;
      },
      30000);
  ASSERT_TRUE(found) << read_file(nodes[0]->log_path) << read_file(nodes[1]->log_path) << read_file(nodes[2]->log_path);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::printf("[ info ] 3 nodes (started one after another) discovered each other %lld ms after the first start\n",
              static_cast<long long>(ms.count()));

  // aspen-cli cluster peers shows node 2 from gossip, with when and from whom.
  // (Before `cluster init` a node asks for no token; the CLI still needs an identity.)
  const std::string identity_path = dir.path() + "/cli.key";
  ASSERT_TRUE(transport::write_identity_file(identity_path, TestOperator::get().identity).has_value());
  const auto peers = run_command({"/usr/bin/env", "ASPEN_IDENTITY=" + identity_path, bin_path("aspen-cli"), "--ticket",
                                  cluster::encode_ticket(cluster::Ticket{"", {nodes[0]->ticket_peer()}}), "--json",
                                  "cluster", "peers", "--node", "1"},
                                 dir.path() + "/peers.out");
  ASSERT_EQ(peers.exit_code, 0) << peers.out;
  auto j = nlohmann::json::parse(peers.out);
  EXPECT_TRUE(j["is_gossip_enabled"].get<bool>());
  bool has_node_2 = false;
  for (const auto& p : j["peers"]) {
    if (p["node_id"] != 2) continue;
    EXPECT_EQ(p["public_key"], nodes[1]->key_text);
    for (const auto& s : p["sources"]) {
      if (s["source"] != "gossip") continue;
      has_node_2 = true;
      EXPECT_EQ(s["addrs"][0], nodes[1]->addr());
      EXPECT_GT(s["last_seen_ms"].get<uint64_t>(), 0u);
      EXPECT_LE(s["last_seen_ms"].get<uint64_t>(), j["now_ms"].get<uint64_t>());
    }
  }
  EXPECT_TRUE(has_node_2) << peers.out;

  // A cluster by node ids alone: init on node 1, then add-learner with no key or address.
  auto init = c->init_cluster();
  ASSERT_TRUE(init.has_value()) << init.error().to_string();
  {
    TestOperator& op = TestOperator::get();
    std::lock_guard lock(op.mu);
    op.token = init->admin_token;
    op.root_seed = init->root_seed;
  }
  c->set_token(TestOperator::get().current_token());

  // The node's ticket carries the follow topic, with which a client that has no cookie (and
  // no identity or token) lists the nodes gossip announces: read-only, from one ticket peer.
  auto ticket = cluster::decode_ticket(init->response.ticket());
  ASSERT_TRUE(ticket.has_value()) << ticket.error().to_string();
  ASSERT_TRUE(ticket->gossip_follow_topic.has_value());
  EXPECT_EQ(*ticket->gossip_follow_topic, node::gossip_follow_topic(node::gossip_topic(kCookie)));
  const cluster::Ticket one_peer{"", {nodes[0]->ticket_peer()}, ticket->gossip_follow_topic};
  const auto discover = run_command({bin_path("aspen-cli"), "--ticket", cluster::encode_ticket(one_peer), "--json",
                                     "cluster", "discover"},
                                    dir.path() + "/discover.out");
  ASSERT_EQ(discover.exit_code, 0) << discover.out;
  auto dj = nlohmann::json::parse(discover.out);
  std::map<uint64_t, std::pair<std::string, std::string>> followed;
  for (const auto& n : dj["nodes"]) {
    followed[n["node_id"].get<uint64_t>()] = {n["public_key"].get<std::string>(), n["addrs"][0].get<std::string>()};
  }
  for (const auto& n : nodes) {
    ASSERT_TRUE(followed.contains(n->id)) << discover.out;
    EXPECT_EQ(followed[n->id].first, n->key_text);
    EXPECT_EQ(followed[n->id].second, n->addr());
  }
  // A follower is not learned: node 1 still knows only nodes 2 and 3 by gossip.
  EXPECT_EQ(gossip_peers_of(*c, 1), (std::set<uint64_t>{2, 3}));
  // Another cluster's follow topic is refused (counted as wrong_topic), and an old ticket
  // without one is a usage error that says where to get a current one.
  const cluster::Ticket wrong{"", {nodes[0]->ticket_peer()}, node::gossip_follow_topic(node::gossip_topic("x-cookie-y"))};
  const auto other_cluster = run_command({bin_path("aspen-cli"), "--ticket", cluster::encode_ticket(wrong), "cluster",
                                          "discover"},
                                         dir.path() + "/discover-wrong.out");
  EXPECT_NE(other_cluster.exit_code, 0) << other_cluster.out;
  const auto old_ticket = run_command({bin_path("aspen-cli"), "--ticket",
                                cluster::encode_ticket(cluster::Ticket{"", {nodes[0]->ticket_peer()}}), "cluster",
                                "discover"},
                               dir.path() + "/discover-old.out", true);
  EXPECT_NE(old_ticket.exit_code, 0);
  EXPECT_NE(old_ticket.out.find("no gossip follow topic"), std::string::npos) << old_ticket.out;

  clientpb::NodeAddress only_id;
  only_id.set_node_id(2);
  auto added = c->add_learner(only_id);
  ASSERT_TRUE(added.has_value()) << added.error().to_string();
  // And through the CLI: `cluster add-learner 3`.
  auto env = operator_env(dir.path());
  std::vector<std::string> cli{"/usr/bin/env"};
  for (const auto& [k, v] : env) cli.push_back(k + "=" + v);
  for (const auto& a : std::vector<std::string>{bin_path("aspen-cli"), "--ticket", init->response.ticket(), "cluster",
                                               "add-learner", "3"}) {
    cli.push_back(a);
  }
  const auto add3 = run_command(cli, dir.path() + "/add3.out", true);
  ASSERT_EQ(add3.exit_code, 0) << add3.out;
  auto voters = c->change_membership({1, 2, 3}, false);
  ASSERT_TRUE(voters.has_value()) << voters.error().to_string();
  EXPECT_EQ(voters->voters_size(), 3);
  // A node discovery does not know is refused with a clear error.
  clientpb::NodeAddress unknown;
  unknown.set_node_id(42);
  auto refused = c->add_learner(unknown);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find("not known to discovery"), std::string::npos) << refused.error().to_string();
  // The cluster works: a write through node 3's membership.
  auto w = c->execute([] {
    kvpb::Command cmd;
    cmd.mutable_put()->set_key("gossip/formed");
    cmd.mutable_put()->set_value("yes");
    return cmd;
  }());
  EXPECT_TRUE(w.has_value()) << w.error().to_string();
}

// A peer of our own making on the gossip protocol: its identity, a connection to the node,
// and messages it signs (or forges).
struct Attacker {
  explicit Attacker(uint64_t claimed_id) : id(claimed_id) {}
  uint64_t id;
  transport::NodeIdentity identity = transport::NodeIdentity::generate();
  uint64_t ts = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());

  std::string message(NodeId claimed, bool is_forged = false) {
    cluster::Announcement a;
    a.topic = node::gossip_topic(kCookie);
    a.node_id = claimed;
    a.public_key = identity.public_key();
    a.addrs = {{"127.0.0.1", 9}};
    a.timestamp_ms = ++ts;
    auto s = cluster::sign_announcement(a, identity);
    if (is_forged) s.signature[3] = static_cast<char>(s.signature[3] ^ 0x20);
    return cluster::encode_gossip_message(cluster::GossipMessage{s, {}, false});
  }
};

// Sends each message on its own stream and waits for the node to finish it (it has then
// judged the message).
void send_all(transport::Endpoint& ep, const GossipNode& node, const transport::NodeIdentity&,
              const std::vector<std::string>& messages) {
  const auto key = *transport::PublicKey::parse(node.key_text);
  const std::vector<transport::SocketAddr> addrs{*transport::SocketAddr::parse(node.addr())};
  auto conn = ep.connect(key, addrs, std::string(cluster::kGossipAlpn));
  ASSERT_TRUE(conn.has_value()) << conn.error().to_string();
  for (const auto& m : messages) {
    auto stream = conn->open_bi_with(m, true);
    ASSERT_TRUE(stream.has_value()) << stream.error().to_string();
    auto end = stream->recv(5000);
    ASSERT_TRUE(end.has_value()) << end.error().to_string();
  }
  conn->close();
}

uint64_t metric(const std::string& text, const std::string& series) {
  const auto pos = text.find(series + " ");
  if (pos == std::string::npos) return UINT64_MAX;
  return std::stoull(text.substr(pos + series.size() + 1));
}

TEST(GossipTest, ForgedReplayedWrongKeyAndFloodingPeersAreRefusedAndCounted) {
  TempDir dir;
  GossipNode node;
  node.id = 1;
  node.port = free_udp_port();
  ASSERT_NO_FATAL_FAILURE(start_node(dir.path(), node, {}));
  auto c = client_of({&node});
  ASSERT_NE(c, nullptr);

  auto send = [&](Attacker& a, const std::vector<std::string>& messages) {
    transport::EndpointConfig cfg;
    auto ep = transport::Endpoint::bind(a.identity, cfg);
    ASSERT_TRUE(ep.has_value()) << ep.error().to_string();
    send_all(**ep, node, a.identity, messages);
    (*ep)->close();
  };
  Attacker honest(50), forger(51), replayer(52), impostor(53), flooder(54);
  ASSERT_NO_FATAL_FAILURE(send(honest, {honest.message(50)}));
  ASSERT_NO_FATAL_FAILURE(send(forger, {forger.message(51, true)}));
  const std::string once = replayer.message(52);
  ASSERT_NO_FATAL_FAILURE(send(replayer, {once, once}));
  // Claims node 50's id (known, under the honest peer's key) and the node's own id.
  ASSERT_NO_FATAL_FAILURE(send(impostor, {impostor.message(50), impostor.message(1)}));
  std::vector<std::string> flood;
  for (int i = 0; i < 30; ++i) flood.push_back(flooder.message(54));
  ASSERT_NO_FATAL_FAILURE(send(flooder, flood));

  auto text = c->metrics_text(client::Target{1});
  ASSERT_TRUE(text.has_value()) << text.error().to_string();
  auto reason = [&](const char* r) {
    return metric(*text, std::string("aspen_gossip_announcements_total{node_id=\"1\",reason=\"") + r + "\"}");
  };
  EXPECT_EQ(reason("bad_signature"), 1u) << *text;
  EXPECT_EQ(reason("replayed"), 1u) << *text;
  EXPECT_EQ(reason("wrong_key"), 2u) << *text;
  EXPECT_EQ(reason("rate_limited"), 30u - cluster::kDefaultGossipPeerMessagesPerMin) << *text;
  // honest 1, replayer's first 1, flooder's first 12.
  EXPECT_EQ(reason("accepted"), 2u + cluster::kDefaultGossipPeerMessagesPerMin) << *text;
  EXPECT_EQ(metric(*text, "aspen_gossip_enabled{node_id=\"1\"}"), 1u);
  // Only what was taken is in the node's view of its peers.
  auto seen = gossip_peers_of(*c, 1);
  EXPECT_EQ(seen, (std::set<uint64_t>{50, 52, 54}));
}

TEST(GossipTest, DisabledGossipServesNoGossipProtocolAndSaysSo) {
  TempDir dir;
  GossipNode node;
  node.id = 1;
  node.port = free_udp_port();
  ASSERT_NO_FATAL_FAILURE(start_node(dir.path(), node, {"--disable-gossip"}));
  auto c = client_of({&node});
  ASSERT_NE(c, nullptr);
  Attacker peer(5);
  auto ep = transport::Endpoint::bind(peer.identity, transport::EndpointConfig{});
  ASSERT_TRUE(ep.has_value());
  auto conn = (*ep)->connect(*transport::PublicKey::parse(node.key_text), {{*transport::SocketAddr::parse(node.addr())}},
                             std::string(cluster::kGossipAlpn), 3000);
  EXPECT_FALSE(conn.has_value());
  clientpb::Request req;
  req.mutable_get_peers();
  auto r = c->call(req, client::Target{1}, 5000);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_FALSE(r->get_peers().is_gossip_enabled());
  auto text = c->metrics_text(client::Target{1});
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(metric(*text, "aspen_gossip_enabled{node_id=\"1\"}"), 0u);
  EXPECT_NE(read_file(node.log_path).find("gossip discovery is off"), std::string::npos);
}

}  // namespace
}  // namespace aspen::testing
