// NodeConfig: everything an aspen-node process is told at start, and where it comes from.
//
// Sources, highest priority first: command-line flags, environment variables (ASPEN_*), the
// TOML file named by --config (or ASPEN_CONFIG), built-in defaults. A config file others may
// change is refused; one holding the cookie must be readable by its owner only. Validation errors are
// ConfigInvalid and name the field (as the flag spells it) and what is wrong with it.
//
//   flag                  env                       toml key              default
//   --node-id             ASPEN_NODE_ID             node_id               (required, non-zero u64)
//   --cookie-file         ASPEN_COOKIE_FILE         cookie_file           the cookie, from a file only its owner
//                                                                         may read (preferred: not visible in ps)
//   --cookie              ASPEN_COOKIE              cookie                (one of the two is required;
//                                                                         kUnsafeDefaultCookie refused)
//   --data-dir            ASPEN_DATA_DIR            data_dir              ./data/node-{id}
//   --bind                ASPEN_BIND                bind                  127.0.0.1:0 (host:port)
//   --storage-backend     ASPEN_STORAGE_BACKEND     storage_backend       lmdb (lmdb | inmemory)
//   --storage-max-bytes   ASPEN_STORAGE_MAX_BYTES   storage_max_bytes     8GiB: the state machine's largest size
//   --storage-quota-bytes ASPEN_STORAGE_QUOTA_BYTES storage_quota_bytes   7/8 of the max: past it, a storage alarm
//   --storage-min-free-bytes ASPEN_STORAGE_MIN_FREE_BYTES storage_min_free_bytes  64MiB: less free disk, an alarm
//   --heartbeat-ms        ASPEN_HEARTBEAT_MS        heartbeat_ms          100
//   --election-timeout-ms ASPEN_ELECTION_TIMEOUT_MS election_timeout_ms   1000 (>= 3 x heartbeat)
//   --history-retention-revisions ASPEN_HISTORY_RETENTION_REVISIONS history_retention_revisions  100000
//   --history-retention-s ASPEN_HISTORY_RETENTION_S history_retention_s   3600: versions older are compacted
//   --client-requests-per-s ASPEN_CLIENT_REQUESTS_PER_S client_requests_per_s  100000 per client connection (0: none)
//   --client-request-burst ASPEN_CLIENT_REQUEST_BURST client_request_burst  20000 requests at once above that rate
//   --peers               ASPEN_PEERS               peers (array)         none; "id@publickey@host:port",
//                                                                         comma-separated in flag/env
//   --ticket              ASPEN_TICKET              ticket                none: a cluster to trust for joining
//   --log-level           ASPEN_LOG_LEVEL           log_level             info
//   --log-format          ASPEN_LOG_FORMAT          log_format            text (text | json: one object a line)
//   --ticket-file         ASPEN_TICKET_FILE         ticket_file           none: where to write the ticket
//   --clock-offset-warn-ms ASPEN_CLOCK_OFFSET_WARN_MS clock_offset_warn_ms 500: a peer's clock further off is
//                                                                         logged as a warning (0: never)
//   --test-clock-offset-ms ASPEN_TEST_CLOCK_OFFSET_MS test_clock_offset_ms 0; FOR TESTS ONLY, +-86400000: shifts
//                                                                         the clock heartbeats carry
//   --test-clock-offset-file ASPEN_TEST_CLOCK_OFFSET_FILE test_clock_offset_file  none; FOR TESTS ONLY: a file
//                                                                         whose ms replace that offset, re-read
//                                                                         every ~200 ms (node/test_clock.h)
//   --disable-gossip      ASPEN_DISABLE_GOSSIP      disable_gossip        false (gossip discovery runs)
//   --gossip-interval-ms  ASPEN_GOSSIP_INTERVAL_MS  gossip_interval_ms    10000: how often a node announces itself
//   --gossip-seeds        ASPEN_GOSSIP_SEEDS        gossip_seeds (array)  none; host:port, comma-separated in flag/env
//   --gossip-probe-ports  ASPEN_GOSSIP_PROBE_PORTS  gossip_probe_ports    7000-7015 on the bind address ("none": off)
//   --gossip-peer-rate-per-min ASPEN_GOSSIP_PEER_RATE_PER_MIN gossip_peer_rate_per_min  12 announcements per peer
//   --enable-dns-discovery ASPEN_DNS_DISCOVERY_NAME dns_discovery_name   none (off); the SRV name listing members
//   --dns-discovery-server ASPEN_DNS_DISCOVERY_SERVER dns_discovery_server  the system resolver; HOST[:PORT]
//   --dns-discovery-interval-s ASPEN_DNS_DISCOVERY_INTERVAL_S dns_discovery_interval_s  60: longest time between lookups
//   --disable-mdns        ASPEN_DISABLE_MDNS        disable_mdns          false (mDNS discovery runs on a LAN address)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cluster/dns_discovery_settings.h"
#include "cluster/gossip_settings.h"
#include "cluster/mdns_settings.h"
#include "cluster/ticket.h"
#include "core/error.h"
#include "node/knobs.h"
#include "transport/address_book.h"

namespace aspen::node {

inline constexpr std::string_view kUnsafeDefaultCookie = "aspen-cookie-UNSAFE-CHANGE-ME";
inline constexpr size_t kMinCookieSizeBytes = 8;
inline constexpr size_t kMaxCookieSizeBytes = 256;

enum class StorageBackend : uint8_t { kLmdb, kInMemory };

// Storage space (docs/operations.md "Storage space"). The quota leaves room below the
// maximum for the writes already committed when the alarm goes off.
inline constexpr uint64_t kDefaultStorageMaxBytes = uint64_t{8} << 30;
inline constexpr uint64_t kMinStorageMaxBytes = uint64_t{16} << 20;
inline constexpr uint64_t kDefaultStorageMinFreeBytes = uint64_t{64} << 20;
constexpr uint64_t default_storage_quota(uint64_t max_bytes) { return max_bytes - max_bytes / 8; }

struct ManualPeer {
  uint64_t node_id = 0;
  transport::PublicKey public_key;
  transport::SocketAddr addr;
};

struct NodeConfig {
  uint64_t node_id = 0;
  std::string cookie;
  std::string data_dir;  // default filled in from node_id
  transport::SocketAddr bind{"127.0.0.1", 0};
  StorageBackend storage_backend = StorageBackend::kLmdb;
  uint64_t storage_max_bytes = kDefaultStorageMaxBytes;  // the LMDB map: the state machine never grows past it
  uint64_t storage_quota_bytes = default_storage_quota(kDefaultStorageMaxBytes);  // past it, an alarm
  uint64_t storage_min_free_bytes = kDefaultStorageMinFreeBytes;  // less free disk than this, an alarm
  // Every tuning constant; heartbeat_ms and election_timeout_ms come from the flags above,
  // the rest are the defaults of node/knobs.h.
  Knobs knobs;
  std::vector<ManualPeer> peers;
  std::optional<cluster::Ticket> ticket;
  std::string log_level = "info";
  std::string log_format = "text";  // text | json (core/log.h set_format)
  std::string ticket_file;
  // Clocks (docs/operations.md, "Clocks"): a peer whose clock is further off than this, either
  // way, is logged as a warning, at most once a minute per peer; 0 never warns.
  uint32_t clock_offset_warn_ms = 500;
  // FOR TESTS ONLY: shifts the wall clock this node's heartbeats carry, which clock drift
  // detection reads, by this many ms, as if the node's clock were off. Leases, TTLs, tokens
  // and everything else that decides read the real clock.
  int64_t test_clock_offset_ms = 0;
  // FOR TESTS ONLY: a file holding an offset in ms that replaces test_clock_offset_ms while
  // the node runs (re-read every ~200 ms; a missing file means test_clock_offset_ms, bad
  // content is logged and keeps the last offset). Empty: off. node/test_clock.h.
  std::string test_clock_offset_file;
  cluster::GossipSettings gossip;  // discovery (cluster/gossip.h)
  cluster::DnsDiscoverySettings dns_discovery;  // DNS discovery (cluster/dns_discovery.h); off by default
  cluster::MdnsSettings mdns;  // mDNS discovery (cluster/mdns.h); on by default
};

// The values as given, before defaults and validation: one layer of the priority order.
// Keys are the TOML key names above; values are the text as given.
using ConfigLayer = std::map<std::string, std::string>;

// Reads a TOML file into a layer. ConfigInvalid names the file and the problem (parse error
// with line, unknown key, wrong type).
Result<ConfigLayer> read_config_file(const std::string& path);
// The ASPEN_* variables present in `environ`-style "NAME=value" entries.
ConfigLayer read_config_env(const std::vector<std::string>& environ_entries);

// Merges layers (earlier = higher priority), applies defaults and validates.
Result<NodeConfig> resolve_config(const std::vector<ConfigLayer>& layers_by_priority);

// "id@publickey@host:port".
Result<ManualPeer> parse_manual_peer(std::string_view text);

}  // namespace aspen::node
