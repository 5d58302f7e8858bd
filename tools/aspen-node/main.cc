// aspen-node: runs one Aspen server process.
//
// Prints one line "ASPEN_NODE_READY node_id=<id> public_key=<key> addr=<host:port>" on
// stdout when it serves, and "ASPEN_TICKET <ticket>" whenever the cluster ticket changes, so
// scripts can wait for both. Stops gracefully on SIGINT or SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "core/log.h"
#include "core/log_ring.h"
#include "node/node.h"
#include "node/node_config.h"

extern char** environ;

namespace {

constexpr int kExitConfig = 2;
constexpr int kExitStartFailed = 1;

struct FlagSpec {
  const char* flag;
  const char* key;
  const char* help;
};

constexpr FlagSpec kFlags[] = {
    {"--node-id", "node_id", "This node's id in the cluster: a non-zero integer, unique in the cluster."},
    {"--cookie-file", "cookie_file",
     "A file holding the cluster's shared secret (mode 0600; one trailing newline is ignored). Every member must "
     "use the same secret."},
    {"--cookie", "cookie",
     "The cluster's shared secret itself. Prefer --cookie-file or ASPEN_COOKIE: anyone on this machine can read "
     "command-line flags with 'ps'."},
    {"--data-dir", "data_dir", "Where the node keeps its key and data (default ./data/node-<id>)."},
    {"--bind", "bind", "UDP address to listen on, host:port; the host may be a name (default 127.0.0.1:0 = any free port)."},
    {"--storage-backend", "storage_backend", "lmdb (durable, default) or inmemory (lost on exit; tests only)."},
    {"--storage-max-bytes", "storage_max_bytes",
     "The most the state machine may grow to on disk, in bytes or with a suffix: 8GiB (default), 512MiB."},
    {"--storage-quota-bytes", "storage_quota_bytes",
     "Past this size the node raises the cluster's storage alarm and writes that add data are refused until an "
     "operator frees space and runs 'aspen-cli cluster alarm disarm' (default 7/8 of --storage-max-bytes)."},
    {"--storage-min-free-bytes", "storage_min_free_bytes",
     "The node also raises the alarm when its data directory's disk has less free space than this (default 64MiB)."},
    {"--heartbeat-ms", "heartbeat_ms", "Leader heartbeat interval in milliseconds (default 100)."},
    {"--election-timeout-ms", "election_timeout_ms",
     "Followers start an election after this long without a leader, in milliseconds (default 1000)."},
    {"--history-retention-revisions", "history_retention_revisions",
     "How many revisions of history (past versions of keys, for reads at a revision and watches) the cluster keeps "
     "below the newest one; the leader compacts older ones away (default 100000; 0: no count limit)."},
    {"--history-retention-s", "history_retention_s",
     "The leader also compacts away versions older than this many seconds (default 3600; 0: no age limit)."},
    {"--blob-max-size-bytes", "blob_max_size_bytes",
     "The largest blob this node accepts, in bytes (default and maximum 68719476736 = 64 GiB)."},
    {"--blob-gc-grace-s", "blob_gc_grace_s",
     "Blob GC keeps a blob no tag names for this many seconds after it was (last) added (default 3600)."},
    {"--blob-replication-factor", "blob_replication_factor",
     "How many members should hold each tagged blob; members fetch tagged blobs until this many hold them "
     "(default 0: every voter)."},
    {"--blob-replication-bytes-per-s", "blob_replication_bytes_per_s",
     "The most bytes per second this node fetches for blob replication, so replicating a large blob leaves "
     "room for Raft and clients on the same link and disk (default 67108864 = 64 MiB/s; 0: no cap)."},
    {"--client-requests-per-s", "client_requests_per_s",
     "The most requests per second one client connection may make, on average; a request over it is answered "
     "Unavailable and not executed (default 100000, well above what one node serves, so only a runaway client "
     "meets it; 0: no limit)."},
    {"--client-request-burst", "client_request_burst",
     "How many requests a client connection may make at once above that average rate (default 20000)."},
    {"--peers", "peers", "Manually known peers: id@publickey@host:port, comma-separated."},
    {"--ticket", "ticket",
     "A cluster ticket (aspen...) whose members this node should trust when joining (env ASPEN_JOIN_TICKET; "
     "ASPEN_TICKET is aspen-cli's and is ignored here)."},
    {"--log-level", "log_level", "trace, debug, info (default), warn or error."},
    {"--log-format", "log_format",
     "text (default) or json: one JSON object a line (ts, level, node_id, thread, msg) for log shippers."},
    {"--ticket-file", "ticket_file", "Write the cluster ticket to this file whenever it changes."},
    {"--clock-offset-warn-ms", "clock_offset_warn_ms",
     "Log a warning when a peer's clock is further off than this many milliseconds, either way, at most once a "
     "minute per peer (default 500; 0: never). 'aspen-cli cluster status' and the aspen_clock_offset_seconds "
     "metric show the offsets."},
    {"--test-clock-offset-ms", "test_clock_offset_ms",
     "FOR TESTS ONLY: pretend this node's clock is off by this many milliseconds (-86400000 to 86400000; write a "
     "negative value as --test-clock-offset-ms=-700). Shifts only the clock its heartbeats carry, so clock drift "
     "detection sees it; leases and TTLs are unaffected."},
    {"--test-clock-offset-file", "test_clock_offset_file",
     "FOR TESTS ONLY: a file holding a clock offset in milliseconds (e.g. -2000) that replaces "
     "--test-clock-offset-ms while the node runs; the node re-reads it about every 200 ms, so writing it makes the "
     "clock its heartbeats carry jump or drift. A missing file means --test-clock-offset-ms; bad content is logged "
     "and the last offset kept. Off by default."},
    {"--gossip-interval-ms", "gossip_interval_ms",
     "How often this node announces itself to the peers it knows, in milliseconds (default 10000)."},
    {"--gossip-seeds", "gossip_seeds",
     "Addresses (host:port, comma-separated) this node asks for peers while it knows none; their keys need not "
     "be known. Gossip grants no membership."},
    {"--gossip-probe-ports", "gossip_probe_ports",
     "FIRST-LAST: while it knows no peer, a node whose own port is in this range looks for peers on the other "
     "ports of its bind address (default 7000-7015; none: off)."},
    {"--gossip-peer-rate-per-min", "gossip_peer_rate_per_min",
     "Announcements one peer may send per minute; more are refused and counted (default 12)."},
    {"--enable-dns-discovery", "dns_discovery_name",
     "NAME: look up the SRV records at NAME (e.g. _aspen._udp.example.com.) for members to start from; the TXT "
     "record \"aspen id=<id> key=<public key>\" at each SRV target names the node. Off by default; grants no "
     "membership (see docs/discovery.md)."},
    {"--dns-discovery-server", "dns_discovery_server",
     "HOST[:PORT] of the DNS server DNS discovery asks (default: the system resolver, /etc/resolv.conf)."},
    {"--dns-discovery-interval-s", "dns_discovery_interval_s",
     "The longest time between two DNS discovery lookups, in seconds; records with a shorter TTL are looked up "
     "when it runs out, at most every 5 s (default 60)."},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "aspen-node runs one member of an Aspen cluster: a replicated, linearizable key-value store.\n"
      "Settings come from flags, then ASPEN_* environment variables (ASPEN_NODE_ID, ASPEN_COOKIE, ...),\n"
      "then the TOML file named by --config, then defaults.\n\n"
      "Start a new cluster:   (umask 077; head -c 32 /dev/urandom | base64 > cookie)\n"
      "                       aspen-node --node-id 1 --cookie-file cookie --bind 127.0.0.1:7001\n"
      "                       aspen-cli --ticket <printed ticket> cluster init\n"
      "Add a node to it:      aspen-node --node-id 2 --cookie-file cookie --bind 127.0.0.1:7002\n"
      "                       aspen-cli cluster add-learner 2 <its public key> 127.0.0.1:7002",
      "aspen-node"};
  std::map<std::string, std::string> values;
  for (const auto& f : kFlags) app.add_option(f.flag, values[f.key], f.help);
  bool is_gossip_disabled = false;
  app.add_flag("--disable-gossip", is_gossip_disabled,
               "Do not run gossip discovery: peers come only from --peers, a ticket and the cluster's records.");
  bool is_mdns_disabled = false;
  app.add_flag("--disable-mdns", is_mdns_disabled,
               "Do not announce this node or look for others with mDNS (multicast 224.0.0.251:5353 on the LAN of "
               "the bind address; inactive on loopback).");
  std::string config_path;
  app.add_option("--config", config_path, "A TOML file with any of the settings above (keys as in node_id, cookie, ...).");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitConfig;
  }

  aspen::node::ConfigLayer flags;
  for (const auto& f : kFlags) {
    if (app.count(f.flag) > 0) flags[f.key] = values[f.key];
  }
  if (is_gossip_disabled) flags["disable_gossip"] = "true";
  if (is_mdns_disabled) flags["disable_mdns"] = "true";
  std::vector<std::string> env_entries;
  for (char** e = environ; *e != nullptr; ++e) env_entries.emplace_back(*e);
  aspen::node::ConfigLayer env = aspen::node::read_config_env(env_entries);
  if (config_path.empty()) {
    if (const char* p = std::getenv("ASPEN_CONFIG")) config_path = p;
  }
  std::vector<aspen::node::ConfigLayer> layers{flags, env};
  if (!config_path.empty()) {
    auto file = aspen::node::read_config_file(config_path);
    if (!file) {
      std::fprintf(stderr, "aspen-node: %s\n", file.error().message().c_str());
      return kExitConfig;
    }
    layers.push_back(*file);
  }
  auto config = aspen::node::resolve_config(layers);
  if (!config) {
    std::fprintf(stderr, "aspen-node: %s\n", config.error().message().c_str());
    return kExitConfig;
  }
  if (std::getenv("ASPEN_TICKET") != nullptr && !config->ticket) {
    // The CLI's variable names the cluster to talk to; a node joins only with a ticket it
    // was given on purpose (a stale one in the shell once wedged a freshly formed cluster).
    std::fprintf(stderr,
                 "aspen-node: note: ignoring ASPEN_TICKET (it is aspen-cli's); to join with a ticket pass --ticket or "
                 "set ASPEN_JOIN_TICKET\n");
  }
  aspen::log::set_level(config->log_level);
  aspen::log::set_format(config->log_format, config->node_id);
  // The recent lines GetLogs serves (aspen-cli node logs, the TUI's Logs view); before any
  // thread that logs starts.
  aspen::log::install_recent_log_ring();

  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto node = aspen::node::Node::start(*config);
  if (!node) {
    std::fprintf(stderr, "aspen-node: could not start: %s\n", node.error().to_string().c_str());
    return kExitStartFailed;
  }
  std::printf("ASPEN_NODE_READY node_id=%llu public_key=%s addr=%s\n", static_cast<unsigned long long>(config->node_id),
              (*node)->public_key().to_string().c_str(), (*node)->local_addr().to_string().c_str());
  std::fflush(stdout);

  std::string printed_ticket;
  timespec poll{0, 200 * 1000 * 1000};
  for (;;) {
    int sig = sigtimedwait(&signals, nullptr, &poll);
    if (sig == SIGINT || sig == SIGTERM) {
      ASPEN_LOG_INFO("aspen-node: received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    std::string ticket = (*node)->ticket();
    if (!ticket.empty() && ticket != printed_ticket) {
      printed_ticket = ticket;
      std::printf("ASPEN_TICKET %s\n", ticket.c_str());
      std::fflush(stdout);
      if (!config->ticket_file.empty()) {
        std::string tmp = config->ticket_file + ".tmp";
        std::ofstream(tmp) << ticket << "\n";
        std::rename(tmp.c_str(), config->ticket_file.c_str());
      }
    }
  }
  (*node)->stop();
  return 0;
}
