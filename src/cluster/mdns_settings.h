// What an operator tells a node about mDNS discovery (docs/discovery.md, "mDNS"): only
// whether it runs. Kept apart from cluster/mdns.h so that NodeConfig does not pull in the
// protocol.
#pragma once

#include <cstdint>

namespace aspen::cluster {

// A node announces itself this often (and twice more in its first seconds, RFC 6762 8.3),
// well inside the records' TTL (kMdnsTtlS, 120 s), so receivers never forget a live node.
inline constexpr uint32_t kMdnsAnnounceIntervalMs = 20000;

struct MdnsSettings {
  bool is_enabled = true;  // --disable-mdns turns it off
  friend bool operator==(const MdnsSettings&, const MdnsSettings&) = default;
};

}  // namespace aspen::cluster
