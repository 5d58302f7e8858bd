// What an operator tells a node about DNS discovery (docs/discovery.md, "DNS discovery"):
// the SRV name that lists bootstrap members, which DNS server to ask, and how often to ask
// again. Kept apart from cluster/dns_discovery.h so that NodeConfig does not pull in the
// record format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "transport/address_book.h"

namespace aspen::cluster {

// The longest time between two lookups; records with a shorter TTL are looked up again when
// it runs out, but never more often than kMinDnsDiscoveryRefreshS (a TTL of 0, which some
// servers give local records, would otherwise mean a lookup storm).
inline constexpr uint32_t kDefaultDnsDiscoveryIntervalS = 60;
inline constexpr uint32_t kMinDnsDiscoveryIntervalS = 1;
inline constexpr uint32_t kMaxDnsDiscoveryIntervalS = 3600;
inline constexpr uint32_t kMinDnsDiscoveryRefreshS = 5;
// A DNS name in text form: RFC 1035's 255 octets on the wire are at most 253 characters.
inline constexpr size_t kMaxDnsNameSizeBytes = 253;
inline constexpr size_t kMaxDnsLabelSizeBytes = 63;

struct DnsDiscoverySettings {
  // --enable-dns-discovery NAME: the SRV name, e.g. "_aspen._udp.example.test."; empty: off.
  std::string name;
  // --dns-discovery-server HOST[:PORT]: the server to ask; none: the system resolver
  // (/etc/resolv.conf).
  std::optional<transport::SocketAddr> server;
  uint32_t interval_s = kDefaultDnsDiscoveryIntervalS;  // --dns-discovery-interval-s

  bool is_enabled() const { return !name.empty(); }
  friend bool operator==(const DnsDiscoverySettings&, const DnsDiscoverySettings&) = default;
};

}  // namespace aspen::cluster
