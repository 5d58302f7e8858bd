// MdnsService: mDNS discovery in the node shell (docs/discovery.md, "mDNS"). It owns one UDP
// socket joined to 224.0.0.251:5353 on the interface of the node's address and one thread
// that reads it; cluster::MdnsCore decides what a datagram says and what to send. At start
// the node queries for _aspen._udp.local and announces itself (again after 1 s and 3 s),
// then every kMdnsAnnounceIntervalMs; it answers queries for its service (at most once a
// second). Nodes an announcement names go into the peer registry as source "mdns"
// (PeerRegistry::learn_from_discovery, on the loop): addresses, never trust.
//
// A node bound only to loopback (127.0.0.0/8) or to an IPv6 address has no LAN to announce
// on: the service logs once that it is inactive and why, and does nothing else. A socket
// that cannot be set up (port 5353 taken without SO_REUSEPORT, no multicast route) is
// logged the same way; the node runs on.
//
// Threads: "aspen-mdns", owned and joined by stop() (or the destructor): it alone touches
// the socket and the core. What it learns is posted to the loop; its counters are copied
// under mu_ for the metrics page.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cluster/mdns.h"
#include "node/internal/node_env.h"

namespace aspen::node::internal {

class MdnsService : public std::enable_shared_from_this<MdnsService> {
 public:
  explicit MdnsService(NodeEnv& env);
  ~MdnsService();
  MdnsService(const MdnsService&) = delete;
  MdnsService& operator=(const MdnsService&) = delete;

  // Opens the socket and starts the thread, or logs why mDNS is off or inactive. [loop, once]
  void start();
  // Stops and joins the thread, closes the socket. Idempotent. [the owner's thread]
  void stop();
  // The Prometheus samples of aspen_mdns_*. [loop]
  std::string prometheus_samples() const;

 private:
  void run();                                   // [mdns thread]
  void send(const std::string& bytes, bool is_query);  // [mdns thread]
  void receive_all(uint64_t now_ms, uint64_t& answer_due_ms);  // [mdns thread]
  void learn(const std::vector<cluster::MdnsPeer>& peers);  // [loop]
  void forget(const std::vector<cluster::MdnsPeer>& peers);  // [loop] goodbyes heard
  void inactive(const std::string& why);        // [loop]

  NodeEnv& env_;
  int fd_ = -1;       // [start()] then the mdns thread; closed by stop()
  int wake_fd_ = -1;  // [start()] an eventfd: stop() wakes the thread through it
  std::optional<cluster::MdnsCore> core_;  // [start()] then the mdns thread
  std::thread thread_;                     // [owner]
  mutable std::mutex mu_;
  cluster::MdnsStats stats_;   // [mu_] a copy of the core's, updated by the mdns thread
  std::string state_ = "off";  // [loop] off | inactive | active
};

}  // namespace aspen::node::internal
