// GossipService: gossip discovery in the node shell (docs/operations.md, "Discovery"). It
// carries out what cluster::GossipCore decides: every interval it dials the peers of the
// active view on ALPN "aspen-gossip" and sends each one message; a node that knows no peer
// dials its --gossip-seeds and, when its own port is in --gossip-probe-ports, the other
// ports of that range on its bind address, without knowing their keys (the handshake tells
// them; nothing unsigned is believed). Announcements the core takes go into the peer
// registry as "gossip" (PeerRegistry::learn_from_discovery): addresses, never trust.
//
// It also answers GetPeers (aspen-cli cluster peers): what each source says of each node,
// and when, with or without gossip running. Metrics: aspen_gossip_* (prometheus_samples).
//
// Threads: the loop only; rounds are asio timers on it. Connections it dialled close with
// the endpoint.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "cluster/gossip.h"
#include "core/rng.h"
#include "node/internal/node_env.h"
#include "rpc/handler_registry.h"

namespace aspen::node::internal {

class GossipService : public std::enable_shared_from_this<GossipService> {
 public:
  explicit GossipService(NodeEnv& env);
  GossipService(const GossipService&) = delete;
  GossipService& operator=(const GossipService&) = delete;

  void register_handlers(rpc::HandlerRegistry& handlers);
  // With gossip on: makes the core and registers the ALPN. With it off, the ALPN is not
  // served, so peers' dials are refused in the handshake. [start, before the loop serves]
  Status start();
  // Posts the first round (once the configured peers are in the registry). [start]
  void begin_rounds();
  // The Prometheus samples of aspen_gossip_*. [loop]
  std::string prometheus_samples() const;

 private:
  class Handler;
  void schedule_round(uint32_t delay_ms);  // [loop]
  void run_round();                        // [loop]
  void send_to(const cluster::GossipTarget& target, bool is_shuffle);  // [loop]
  void probe(const transport::SocketAddr& addr);                  // [loop]
  void exchange(transport::Connection conn, bool wants_reply, bool should_close, bool is_shuffle = false);  // [loop]
  void on_received(transport::Stream& stream, std::string message, bool is_inbound);  // [loop]
  void handle_get_peers(const cpb::Request& req, rpc::Reply reply);  // [loop]
  std::vector<transport::SocketAddr> probe_addrs() const;

  NodeEnv& env_;
  std::optional<cluster::GossipCore> core_;  // [loop] set by start() when gossip is on
  Rng rng_;                                  // [loop]
  // Connections dialled to active peers, reused across rounds. [loop]
  std::unordered_map<transport::PublicKey, transport::Connection> conns_;
  uint64_t probes_ = 0;                      // [loop] seed and probe dials
  uint64_t rounds_ = 0;                      // [loop]
};

}  // namespace aspen::node::internal
