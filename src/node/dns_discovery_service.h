// DnsDiscoveryService: DNS discovery in the node shell (docs/discovery.md, "DNS discovery"),
// off unless --enable-dns-discovery NAME is given. Its thread looks up the SRV/TXT records at
// NAME (DnsResolver, c-ares), again when the smallest TTL runs out (within
// [5 s, --dns-discovery-interval-s]) and sooner after a failure (1 s, doubling); each
// outcome is posted to the loop, where cluster::assemble_dns_peers says which nodes it names
// and the peer registry takes them as source "dns" (PeerRegistry::learn_from_discovery):
// addresses and keys for `cluster peers`, gossip and `cluster add-learner ID`; never trust,
// never membership. A successful lookup replaces what the previous one found; a failed one
// keeps it. Every refused record is counted by reason and logged.
//
// Metrics: aspen_dns_discovery_* (prometheus_samples).
//
// Threads: "aspen-dns-disc" (owned: started by start(), woken through an eventfd and joined
// by the destructor) runs the lookups; everything else is on the loop.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "cluster/dns_discovery.h"
#include "node/internal/node_env.h"

namespace aspen::node::internal {

struct DnsLookupOutcome;

class DnsDiscoveryService : public std::enable_shared_from_this<DnsDiscoveryService> {
 public:
  explicit DnsDiscoveryService(NodeEnv& env);
  // Wakes the thread (a lookup in flight is cancelled) and joins it.
  ~DnsDiscoveryService();
  DnsDiscoveryService(const DnsDiscoveryService&) = delete;
  DnsDiscoveryService& operator=(const DnsDiscoveryService&) = delete;

  // With DNS discovery on: sets up c-ares and starts the thread; its first lookup begins at
  // once. Unavailable if c-ares cannot be set up. [loop, once: the first tick]
  Status start();
  // The Prometheus samples of aspen_dns_discovery_*. [loop]
  std::string prometheus_samples() const;

 private:
  void run();                                 // [dns thread]
  void apply(const DnsLookupOutcome& outcome);  // [loop]

  NodeEnv& env_;
  std::shared_ptr<transport::Endpoint> endpoint_;  // [start] kept for the thread's posts
  std::thread thread_;                             // [start] joined by the destructor
  int wake_fd_ = -1;                               // [start] eventfd: readable once stopping
  std::atomic<bool> is_stopping_{false};           // [any]

  uint64_t lookups_ = 0;          // [loop]
  uint64_t lookup_failures_ = 0;  // [loop]
  uint64_t queries_ = 0;          // [loop]
  std::array<uint64_t, cluster::kDnsRecordVerdictCount> records_{};  // [loop] by verdict
  size_t known_nodes_ = 0;        // [loop] nodes the last successful lookup found
  uint64_t last_success_ms_ = 0;  // [loop] wall clock
  std::string last_problems_;     // [loop] so that the same refusals are logged once, not every lookup
  bool has_failed_ = false;       // [loop] the last lookup failed (its error was logged)
};

}  // namespace aspen::node::internal
