// AdminService: cluster administration and introspection on the client protocol, one
// component of the shell. Health, metrics, Raft status, leader, node info and ticket are
// answered by any node; InitCluster by an uninitialized one; AddLearner, ChangeMembership
// and RemoveNode need the leader (followers relay them through ClientService);
// TriggerSnapshot compacts this node's log.
//
// It also carries out the leader's duties on every tick (the cluster id, member records;
// what to write is next_leader_duty's decision, leader_duties.h), and owns gossip discovery
// (gossip_service.h: the "aspen-gossip" protocol, GetPeers, its metrics), whose rounds it
// starts at the first tick, once the configured peers are known, and DNS discovery
// (dns_discovery_service.h: SRV/TXT lookups on its own thread, its metrics), begun then too.
//
// Threads: the loop only.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "node/client_service.h"
#include "node/dns_discovery_service.h"
#include "node/gossip_service.h"
#include "node/internal/node_env.h"
#include "node/mdns_service.h"
#include "rpc/handler_registry.h"

namespace aspen::node::internal {

class AdminService {
 public:
  using Reply = rpc::Reply;
  AdminService(NodeEnv& env, CorePort& port, ClientService& clients, rpc::HandlerRegistry& handlers);
  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;

  void register_handlers();
  // Every tick: answers InitCluster once the new cluster is ready and a membership change once
  // the cluster left its joint configuration; runs a due leader duty.
  void on_tick();
  // Entries up to `applied` are applied: a leader duty's write may wait for that to refresh
  // the cluster view.
  void on_applied(Index applied);

 private:
  void handle_health(const cpb::Request& req, Reply reply);
  void handle_metrics(const cpb::Request& req, Reply reply);
  void handle_raft_metrics(const cpb::Request& req, Reply reply);
  void handle_leader(const cpb::Request& req, Reply reply);
  void handle_node_info(const cpb::Request& req, Reply reply);
  void handle_ticket(const cpb::Request& req, Reply reply);
  void handle_logs(const cpb::Request& req, Reply reply);
  void handle_init(const cpb::Request& req, Reply reply);
  void handle_add_learner(const cpb::Request& req, Reply reply);
  void handle_change_membership(const cpb::Request& req, Reply reply);
  void handle_remove_node(const cpb::Request& req, Reply reply);
  void handle_snapshot(const cpb::Request& req, Reply reply);
  void reply_membership(Reply reply, const Response& r);
  void run_leader_duties();
  cpb::Response error_reply(const Error& e) const { return clients_.error_reply(e); }
  cpb::Response error_reply(ErrorCode code, std::string message) const {
    return error_reply(Error(code, std::move(message)));
  }

  NodeEnv& env_;
  CorePort& port_;
  ClientService& clients_;
  rpc::HandlerRegistry& handlers_;                // [start]
  // Answers waiting on the applied state (InitCluster, a membership change leaving its joint
  // configuration); polled every tick, each ends by its deadline. true = answered, drop it.
  std::vector<std::function<bool()>> answer_waiters_;  // [loop]
  bool is_duty_in_flight_ = false;                // [loop]
  uint64_t last_duty_ms_ = 0;                     // [loop]
  Index refresh_at_applied_ = 0;  // [loop] refresh the cluster view once this is applied (0: none)
  std::shared_ptr<GossipService> gossip_;  // [start]
  bool has_begun_gossip_ = false;          // [loop] also starts DNS discovery
  std::shared_ptr<DnsDiscoveryService> dns_;  // [start] its thread is joined when this goes
  // mDNS discovery (mdns_service.h), started at the first tick; its thread is joined when
  // this goes.
  std::shared_ptr<MdnsService> mdns_;  // [start]
  bool has_begun_mdns_ = false;        // [loop]
};

}  // namespace aspen::node::internal
