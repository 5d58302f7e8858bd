// DnsResolver: DNS discovery's lookups with c-ares (docs/discovery.md, "DNS discovery"). One
// lookup asks for the SRV records at the configured name, then, for each target kept
// (cluster::take_srv_records), its TXT, A and AAAA records, all at once on one c-ares
// channel, and hands back the raw facts; cluster::assemble_dns_peers decides what they mean.
//
// Blocking, on the calling thread: DnsDiscoveryService's own thread, never the event loop.
// A lookup ends when every query has an answer or gave up (c-ares' timeout, 2 s, 2 tries per
// server), or at once when `wake_fd` becomes readable (the node is stopping). Answers larger
// than cluster::kMaxDnsAnswerBytes are not parsed.
//
// Threads: one at a time (the service's).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cluster/dns_discovery.h"
#include "cluster/dns_discovery_settings.h"
#include "core/error.h"

namespace aspen::node::internal {

struct DnsLookupOutcome {
  // Unavailable with c-ares' reason when the SRV lookup failed (no answer, SERVFAIL,
  // REFUSED, a timeout); an answer that says the name has no SRV records is an empty answer.
  Result<cluster::DnsLookupAnswer> answer = cluster::DnsLookupAnswer{};
  std::optional<uint32_t> min_ttl_s;  // the smallest TTL of every answer read
  uint32_t queries = 0;                // DNS queries sent
  bool is_stopped = false;             // ended early: wake_fd was readable
};

class DnsResolver {
 public:
  // Unavailable when c-ares cannot be set up (no usable resolver configuration, a bad server).
  static Result<std::unique_ptr<DnsResolver>> create(const cluster::DnsDiscoverySettings& settings);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  DnsLookupOutcome lookup(const std::string& name, int wake_fd);

 private:
  struct Channel;
  explicit DnsResolver(std::unique_ptr<Channel> channel);
  std::unique_ptr<Channel> channel_;
};

}  // namespace aspen::node::internal
