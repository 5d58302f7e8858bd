#include "node/gossip_service.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <map>

#include "core/log.h"
#include "node/gossip_topic.h"

namespace aspen::node::internal {

namespace {

// A gossip dial gives up sooner than a Raft one: a peer that does not answer is tried again
// next round, and a probe of a port nothing listens on should not hold a slot for long.
constexpr uint32_t kGossipConnectTimeoutMs = 2000;

// A wildcard bind says nothing about where to dial; on one machine the loopback does.
transport::SocketAddr dialable(transport::SocketAddr addr) {
  if (addr.ip == "0.0.0.0") addr.ip = "127.0.0.1";
  if (addr.ip == "::") addr.ip = "::1";
  return addr;
}

}  // namespace

class GossipService::Handler : public transport::LoopProtocolHandler {
 public:
  explicit Handler(std::weak_ptr<GossipService> service) : service_(std::move(service)) {}
  void on_message(transport::Stream& stream, std::string message) override {
    if (auto s = service_.lock()) s->on_received(stream, std::move(message), true);
  }

 private:
  std::weak_ptr<GossipService> service_;
};

GossipService::GossipService(NodeEnv& env)
    : env_(env), rng_(randombytes_random() | (uint64_t{randombytes_random()} << 32)) {}

void GossipService::register_handlers(rpc::HandlerRegistry& handlers) {
  handlers.add(cpb::Request::kGetPeers, "get_peers",
               [this](const cpb::Request& req, rpc::Reply reply) { handle_get_peers(req, std::move(reply)); });
}

Status GossipService::start() {
  const auto& settings = env_.config.gossip;
  if (!settings.is_enabled) {
    ASPEN_LOG_INFO("node {}: gossip discovery is off (--disable-gossip)", env_.config.node_id);
    return {};
  }
  cluster::GossipCoreConfig cc;
  cc.node_id = env_.config.node_id;
  cc.topic = gossip_topic(env_.config.cookie);
  cc.follow_topic = gossip_follow_topic(cc.topic);
  cc.peer_messages_per_min = settings.peer_messages_per_min;
  // The core lives on the loop; start() runs before the loop serves anything (phase 3), so
  // this write happens before any of the loop's reads.
  core_.emplace(cc, *env_.identity, [this](NodeId id) { return env_.peers.known_key(id); });
  core_->set_self_addrs({dialable(env_.endpoint->local_addr())});
  auto handler = std::make_shared<Handler>(weak_from_this());
  if (auto s = env_.endpoint->register_handler(std::string(cluster::kGossipAlpn), handler); !s) return s;
  ASPEN_LOG_INFO("node {}: gossip discovery every {} ms on {}; seeds {}, probe ports {}", env_.config.node_id,
                 settings.interval_ms, cluster::kGossipAlpn, settings.seeds.size(),
                 settings.has_probe_ports() ? fmt::format("{}-{}", settings.probe_port_first, settings.probe_port_last)
                                            : std::string("none"));
  return {};
}

void GossipService::begin_rounds() {
  if (!core_) return;
  env_.endpoint->post([self = weak_from_this()] {
    if (auto s = self.lock()) s->run_round();
  });
}

void GossipService::schedule_round(uint32_t delay_ms) {
  env_.endpoint->post_after(delay_ms, [self = weak_from_this()] {
    if (auto s = self.lock()) s->run_round();
  });
}

std::vector<transport::SocketAddr> GossipService::probe_addrs() const {
  const auto& settings = env_.config.gossip;
  const transport::SocketAddr self = dialable(env_.endpoint->local_addr());
  std::vector<transport::SocketAddr> out;
  for (const auto& seed : settings.seeds) {
    if (seed != self) out.push_back(seed);
  }
  // Only a node that itself sits in the range probes it: nodes on ephemeral ports (tests,
  // tools) never knock on other ports.
  if (settings.has_probe_ports() && self.port >= settings.probe_port_first && self.port <= settings.probe_port_last) {
    for (uint32_t port = settings.probe_port_first; port <= settings.probe_port_last; ++port) {
      if (port != self.port) out.push_back(transport::SocketAddr{self.ip, static_cast<uint16_t>(port)});
    }
  }
  return out;
}

void GossipService::run_round() {
  if (!core_) return;
  ++rounds_;
  const uint64_t now = env_.now_ms();
  if (now > cluster::kMaxGossipAnnouncementAgeMs) {
    env_.peers.expire_discovered(now - cluster::kMaxGossipAnnouncementAgeMs, "gossip");
  }
  // Peers other sources know are gossip candidates too (members, --peers, the ticket).
  for (const auto& [source, peer] : env_.peers.static_sources()) {
    if (peer.key != env_.identity->public_key() && !peer.addrs.empty()) {
      core_->add_candidate(cluster::GossipTarget{peer.key, peer.addrs});
    }
  }
  // And nodes other discovery sources found (DNS's bootstrap members): gossip with them tells
  // them of this node, so their leader can add it by id.
  for (const auto& [key, d] : env_.peers.discovered()) {
    if (d.source != "gossip" && d.peer.key != env_.identity->public_key() && !d.peer.addrs.empty()) {
      core_->add_candidate(cluster::GossipTarget{d.peer.key, d.peer.addrs});
    }
  }
  auto targets = core_->round(now, rng_);
  // Every few rounds one active peer gets a shuffle (a sample of the views) instead of the
  // usual message, and answers with a sample of its passive view.
  const auto shuffle = core_->shuffle_target(rng_);
  // Connections to peers that left the active view are closed.
  for (auto it = conns_.begin(); it != conns_.end();) {
    const bool is_active = std::any_of(targets.begin(), targets.end(), [&](const auto& t) { return t.key == it->first; });
    if (!is_active || !it->second.is_open()) {
      if (it->second.is_open()) it->second.close();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& t : targets) send_to(t, shuffle && shuffle->key == t.key);
  if (core_->needs_seeds()) {
    for (const auto& addr : probe_addrs()) probe(addr);
  }
  // ±10% so that nodes started together do not stay in step.
  const uint32_t interval = env_.config.gossip.interval_ms;
  schedule_round(interval - interval / 10 + static_cast<uint32_t>(rng_.uniform(interval / 5 + 1)));
}

void GossipService::send_to(const cluster::GossipTarget& target, bool is_shuffle) {
  if (auto it = conns_.find(target.key); it != conns_.end() && it->second.is_open()) {
    exchange(it->second, false, false, is_shuffle);
    return;
  }
  env_.endpoint->connect_async(
      target.key, target.addrs, std::string(cluster::kGossipAlpn),
      [self = weak_from_this(), key = target.key, is_shuffle](Result<transport::Connection> conn) {
        auto s = self.lock();
        if (!s || !s->core_) return;
        if (!conn) {
          ASPEN_LOG_DEBUG("node {}: gossip: cannot reach {}: {}", s->env_.config.node_id, key.short_string(),
                          conn.error().message());
          s->core_->on_send_failed(key);
          return;
        }
        s->conns_.insert_or_assign(key, *conn);
        s->exchange(*conn, false, false, is_shuffle);
      },
      kGossipConnectTimeoutMs);
}

void GossipService::probe(const transport::SocketAddr& addr) {
  ++probes_;
  // The all-zero key pins nothing: the handshake tells whose node answers.
  env_.endpoint->connect_async(
      transport::PublicKey(), {addr}, std::string(cluster::kGossipAlpn),
      [self = weak_from_this()](Result<transport::Connection> conn) {
        auto s = self.lock();
        if (!s || !s->core_ || !conn) return;
        if (conn->peer_key() == s->env_.identity->public_key()) {
          conn->close();
          return;
        }
        s->exchange(*conn, true, true);
      },
      kGossipConnectTimeoutMs);
}

void GossipService::exchange(transport::Connection conn, bool wants_reply, bool should_close, bool is_shuffle) {
  const transport::PublicKey peer = conn.peer_key();
  std::string message = is_shuffle ? core_->make_shuffle(env_.now_ms(), peer, rng_)
                                   : core_->make_message(env_.now_ms(), peer, wants_reply, rng_);
  transport::StreamCallbacks callbacks;
  callbacks.on_message = [self = weak_from_this()](transport::Stream& stream, std::string reply) {
    if (auto s = self.lock()) s->on_received(stream, std::move(reply), false);
  };
  callbacks.on_closed = [should_close](transport::Stream& stream, std::optional<Error>) {
    if (should_close) stream.connection().close();
  };
  conn.open_bi_async(std::move(callbacks), [self = weak_from_this(), peer, message = std::move(message)](
                                               Result<transport::Stream> stream) mutable {
    auto s = self.lock();
    if (!s || !s->core_) return;
    if (!stream) {
      s->core_->on_send_failed(peer);
      s->conns_.erase(peer);
      return;
    }
    const size_t size = message.size();
    if (auto st = stream->send_async_owned(std::move(message)); !st) {
      s->core_->on_send_failed(peer);
      return;
    }
    stream->finish();
    s->core_->count_bytes_out(size);
    s->core_->on_send_ok(peer);
  });
}

void GossipService::on_received(transport::Stream& stream, std::string message, bool is_inbound) {
  if (!core_) return;
  const uint64_t now = env_.now_ms();
  const transport::PublicKey from = stream.peer_key();
  auto received = core_->on_message(from, message, now);
  if (received.verdict != cluster::GossipVerdict::kAccepted && received.verdict != cluster::GossipVerdict::kFollower) {
    ASPEN_LOG_DEBUG("node {}: gossip: refused a message from {}: {}", env_.config.node_id, from.short_string(),
                    cluster::gossip_verdict_name(received.verdict));
  }
  for (const auto& n : received.learned) {
    const bool is_new = !env_.peers.discovered().contains(DiscoveryKey{n.node_id, "gossip"});
    const std::string via = n.via == transport::PublicKey() ? std::string() : n.via.short_string();
    if (env_.peers.learn_from_discovery(PeerInfo{n.node_id, n.key, n.addrs}, "gossip", now, n.announced_ms, via) &&
        is_new) {
      ASPEN_LOG_INFO("node {}: gossip: found node {} (key {}) at {}", env_.config.node_id, n.node_id,
                     n.key.short_string(), n.addrs.empty() ? std::string("no address") : n.addrs.front().to_string());
    }
  }
  if (!is_inbound) return;
  if (received.should_reply) {
    std::string reply = received.is_shuffle ? core_->make_shuffle_reply(now, from, rng_)
                                            : core_->make_message(now, from, false, rng_);
    const size_t size = reply.size();
    if (stream.send_async_owned(std::move(reply))) core_->count_bytes_out(size);
  }
  stream.finish();
}

void GossipService::handle_get_peers(const cpb::Request&, rpc::Reply reply) {
  cpb::Response resp;
  auto* out = resp.mutable_get_peers();
  const uint64_t now = env_.now_ms();
  out->set_now_ms(now);
  out->set_is_gossip_enabled(core_.has_value());
  if (core_) {
    out->set_gossip_active_view(core_->active_view().size());
    out->set_gossip_passive_view(core_->passive_view().size());
  }
  std::map<NodeId, cpb::PeerReport> by_id;
  auto report = [&](const PeerInfo& p) -> cpb::PeerReport& {
    auto& r = by_id[p.id];
    r.set_node_id(p.id);
    if (r.public_key().empty()) r.set_public_key(p.key.to_string());
    r.set_is_member(env_.peers.members().contains(p.id));
    return r;
  };
  for (const auto& [source, p] : env_.peers.static_sources()) {
    if (p.id == env_.config.node_id) continue;
    auto* s = report(p).add_sources();
    s->set_source(source);
    for (const auto& a : p.addrs) s->add_addrs(a.to_string());
  }
  for (const auto& [key, d] : env_.peers.discovered()) {
    auto* s = report(d.peer).add_sources();
    s->set_source(d.source);
    for (const auto& a : d.peer.addrs) s->add_addrs(a.to_string());
    s->set_first_seen_ms(d.first_seen_ms);
    s->set_last_seen_ms(d.last_seen_ms);
    s->set_announced_ms(d.announced_ms);
    s->set_via(d.via);
  }
  for (auto& [id, r] : by_id) *out->add_peers() = std::move(r);
  reply(std::move(resp));
}

std::string GossipService::prometheus_samples() const {
  std::string out;
  const NodeId node = env_.config.node_id;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP aspen_gossip_{} {}\n# TYPE aspen_gossip_{} {}\n", name, help, name, type);
  };
  auto sample = [&](std::string_view name, uint64_t value) {
    out += fmt::format("aspen_gossip_{}{{node_id=\"{}\"}} {}\n", name, node, value);
  };
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    family(name, type, help);
    sample(name, value);
  };
  const cluster::GossipStats stats = core_ ? core_->stats() : cluster::GossipStats{};
  metric("enabled", "gauge", "1 if gossip discovery runs on this node (--disable-gossip: 0).", core_ ? 1 : 0);
  metric("messages_received_total", "counter", "Gossip messages received.", stats.messages_in);
  metric("messages_sent_total", "counter", "Gossip messages sent (rounds, replies, probes).", stats.messages_out);
  metric("received_bytes_total", "counter", "Bytes of gossip messages received.", stats.bytes_in);
  metric("sent_bytes_total", "counter", "Bytes of gossip messages sent.", stats.bytes_out);
  metric("send_failures_total", "counter", "Sends to a peer of the active view that failed.", stats.send_failures);
  metric("shuffles_sent_total", "counter", "Shuffles (HyParView) this node started with an active peer.",
         stats.shuffles_sent);
  metric("shuffles_answered_total", "counter", "Peers' shuffles this node answered with a sample of its passive view.",
         stats.shuffles_answered);
  metric("probes_total", "counter", "Dials of seeds and probe ports while no peer was known.", probes_);
  metric("rounds_total", "counter", "Gossip rounds.", rounds_);
  metric("active_view", "gauge", "Peers gossiped with each round.", core_ ? core_->active_view().size() : 0);
  metric("passive_view", "gauge", "Peers known but not gossiped with now.", core_ ? core_->passive_view().size() : 0);
  metric("known_nodes", "gauge", "Nodes whose announcements this node holds.", core_ ? core_->nodes().size() : 0);
  family("announcements_total", "counter",
         "Announcements by outcome: accepted, or why refused (forged = bad_signature, replayed, wrong_key, "
         "rate_limited and oversized/malformed count whole messages).");
  for (size_t i = 0; i < cluster::kGossipVerdictCount; ++i) {
    out += fmt::format("aspen_gossip_announcements_total{{node_id=\"{}\",reason=\"{}\"}} {}\n", node,
                       cluster::gossip_verdict_name(static_cast<cluster::GossipVerdict>(i)), stats.verdicts[i]);
  }
  return out;
}

}  // namespace aspen::node::internal
