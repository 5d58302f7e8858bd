#include "node/node_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include "node/test_clock.h"

#include "blob/pacing.h"
#include "cluster/dns_discovery.h"
#include "core/assert.h"

namespace aspen::node {
namespace {

// One row of the table in node_config.h. The TOML key is the layer key; the flag is how
// errors name the field, since that is the spelling an operator sees first in --help.
struct Setting {
  std::string_view key;
  std::string_view flag;
  std::string_view env;
};

// Sized by its entries, so that adding a setting is one line.
constexpr auto kSettings = std::to_array<Setting>({
    {"node_id", "--node-id", "ASPEN_NODE_ID"},
    {"cookie", "--cookie", "ASPEN_COOKIE"},
    {"cookie_file", "--cookie-file", "ASPEN_COOKIE_FILE"},
    {"data_dir", "--data-dir", "ASPEN_DATA_DIR"},
    {"bind", "--bind", "ASPEN_BIND"},
    {"storage_backend", "--storage-backend", "ASPEN_STORAGE_BACKEND"},
    {"storage_max_bytes", "--storage-max-bytes", "ASPEN_STORAGE_MAX_BYTES"},
    {"storage_quota_bytes", "--storage-quota-bytes", "ASPEN_STORAGE_QUOTA_BYTES"},
    {"storage_min_free_bytes", "--storage-min-free-bytes", "ASPEN_STORAGE_MIN_FREE_BYTES"},
    {"heartbeat_ms", "--heartbeat-ms", "ASPEN_HEARTBEAT_MS"},
    {"election_timeout_ms", "--election-timeout-ms", "ASPEN_ELECTION_TIMEOUT_MS"},
    {"history_retention_revisions", "--history-retention-revisions", "ASPEN_HISTORY_RETENTION_REVISIONS"},
    {"history_retention_s", "--history-retention-s", "ASPEN_HISTORY_RETENTION_S"},
    {"blob_max_size_bytes", "--blob-max-size-bytes", "ASPEN_BLOB_MAX_SIZE_BYTES"},
    {"blob_gc_grace_s", "--blob-gc-grace-s", "ASPEN_BLOB_GC_GRACE_S"},
    {"blob_replication_factor", "--blob-replication-factor", "ASPEN_BLOB_REPLICATION_FACTOR"},
    {"blob_replication_bytes_per_s", "--blob-replication-bytes-per-s", "ASPEN_BLOB_REPLICATION_BYTES_PER_S"},
    {"client_requests_per_s", "--client-requests-per-s", "ASPEN_CLIENT_REQUESTS_PER_S"},
    {"client_request_burst", "--client-request-burst", "ASPEN_CLIENT_REQUEST_BURST"},
    {"peers", "--peers", "ASPEN_PEERS"},
    {"ticket", "--ticket", "ASPEN_JOIN_TICKET"},
    {"log_level", "--log-level", "ASPEN_LOG_LEVEL"},
    {"log_format", "--log-format", "ASPEN_LOG_FORMAT"},
    {"ticket_file", "--ticket-file", "ASPEN_TICKET_FILE"},
    {"clock_offset_warn_ms", "--clock-offset-warn-ms", "ASPEN_CLOCK_OFFSET_WARN_MS"},
    {"test_clock_offset_ms", "--test-clock-offset-ms", "ASPEN_TEST_CLOCK_OFFSET_MS"},
    {"test_clock_offset_file", "--test-clock-offset-file", "ASPEN_TEST_CLOCK_OFFSET_FILE"},
    {"disable_gossip", "--disable-gossip", "ASPEN_DISABLE_GOSSIP"},
    {"gossip_interval_ms", "--gossip-interval-ms", "ASPEN_GOSSIP_INTERVAL_MS"},
    {"gossip_seeds", "--gossip-seeds", "ASPEN_GOSSIP_SEEDS"},
    {"gossip_probe_ports", "--gossip-probe-ports", "ASPEN_GOSSIP_PROBE_PORTS"},
    {"gossip_peer_rate_per_min", "--gossip-peer-rate-per-min", "ASPEN_GOSSIP_PEER_RATE_PER_MIN"},
    {"dns_discovery_name", "--enable-dns-discovery", "ASPEN_DNS_DISCOVERY_NAME"},
    {"dns_discovery_server", "--dns-discovery-server", "ASPEN_DNS_DISCOVERY_SERVER"},
    {"dns_discovery_interval_s", "--dns-discovery-interval-s", "ASPEN_DNS_DISCOVERY_INTERVAL_S"},
    {"disable_mdns", "--disable-mdns", "ASPEN_DISABLE_MDNS"},
});

// Timing bounds. A heartbeat below 10 ms is busy-looping; an election timeout must cover a
// few lost heartbeats (Raft §5.2: broadcastTime << electionTimeout) and stay short enough
// that a dead leader is replaced within a minute.
constexpr uint32_t kMinHeartbeatMs = 10;
constexpr uint32_t kMaxHeartbeatMs = 10000;
constexpr uint32_t kMaxElectionTimeoutMs = 60000;
static_assert(kMaxHeartbeatMs * kMinElectionToHeartbeatRatio <= kMaxElectionTimeoutMs,
              "every valid heartbeat must leave room for a valid election timeout");
static_assert(kMinHeartbeatMs >= Knobs{}.tick_interval_ms, "a heartbeat lasts at least one tick of the shell");

constexpr std::array<std::string_view, 5> kLogLevels = {"trace", "debug", "info", "warn", "error"};

const Setting* find_setting(std::string_view key) {
  for (const Setting& s : kSettings) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

const Setting& setting(std::string_view key) {
  const Setting* s = find_setting(key);
  ASPEN_ASSERT(s != nullptr);
  return *s;
}

std::string valid_keys() {
  std::string out;
  for (const Setting& s : kSettings) {
    if (!out.empty()) out += ", ";
    out += s.key;
  }
  return out;
}

std::unexpected<Error> config_error(std::string message) {
  return make_error(ErrorCode::kConfigInvalid, std::move(message));
}

std::unexpected<Error> field_error(std::string_view key, std::string_view problem) {
  return config_error(fmt::format("{}: {}", setting(key).flag, problem));
}

template <typename T>
std::optional<T> parse_unsigned(std::string_view text) {
  T value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
}

std::string_view toml_type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// One TOML value as layer text: strings as written, integers in decimal, the peers array
// comma-joined (the flag and env spelling).
Result<std::string> toml_value_text(const std::string& path, const std::string& key,
                                    const toml::node& value) {
  if (const auto* s = value.as_string()) return s->get();
  if (const auto* i = value.as_integer()) return std::to_string(i->get());
  const bool is_flag_key = key == "disable_gossip" || key == "disable_mdns";  // a switch: a boolean in TOML
  if (const auto* b = value.as_boolean(); b != nullptr && is_flag_key) return std::string(b->get() ? "true" : "false");
  const bool is_list_key = key == "peers" || key == "gossip_seeds";
  if (const auto* array = value.as_array(); array != nullptr && is_list_key) {
    std::string joined;
    for (const toml::node& element : *array) {
      const auto* s = element.as_string();
      if (s == nullptr) {
        return config_error(
            fmt::format("config file '{}': {} must be an array of strings, "
                        "found {} in it",
                        path, key, toml_type_name(element.type())));
      }
      if (!joined.empty()) joined += ',';
      joined += s->get();
    }
    return joined;
  }
  return config_error(fmt::format("config file '{}': {} must be {}, got {}", path, key,
                                  is_list_key   ? "an array of strings"
                                  : is_flag_key ? "a boolean (or \"true\"/\"false\")"
                                                : "a string or an integer",
                                  toml_type_name(value.type())));
}

// The merged layers. An empty value counts as not set, so `--peers ''` or `ASPEN_TICKET=`
// at a higher layer clears what a lower layer said and leaves the default.
class Merged {
 public:
  std::optional<std::string_view> get(std::string_view key) const {
    ASPEN_ASSERT(find_setting(key) != nullptr);
    auto it = values_.find(std::string(key));
    if (it == values_.end() || it->second.empty()) return std::nullopt;
    return it->second;
  }
  // Layers are added highest priority first, so the first value seen for a key wins.
  void add_layer(const ConfigLayer& layer) {
    for (const auto& [key, value] : layer) values_.emplace(key, value);
  }

 private:
  ConfigLayer values_;
};

std::unexpected<Error> missing(std::string_view key) {
  const Setting& s = setting(key);
  return config_error(fmt::format("{}: required (set {}, {} or {} in the config file)", s.flag,
                                  s.flag, s.env, s.key));
}

// A file holding a secret: only its owner may read it (the rule node.key follows). One
// trailing newline is not part of the secret (editors and `echo` add it).
Result<std::string> read_secret_file(std::string_view path_text) {
  const std::string path(path_text);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return config_error(fmt::format("'{}': {}", path, std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return config_error(fmt::format("'{}' is not a regular file", path));
  if ((st.st_mode & 077) != 0) {
    return config_error(fmt::format("'{}' may be read by group or others (mode {:o}); run: chmod 600 {}", path,
                                    st.st_mode & 0777, path));
  }
  if (static_cast<size_t>(st.st_size) > kMaxCookieSizeBytes + 2) {
    return config_error(fmt::format("'{}' holds {} bytes; a cookie is at most {} bytes", path,
                                    static_cast<size_t>(st.st_size), kMaxCookieSizeBytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return config_error(fmt::format("'{}': cannot be opened: {}", path, std::strerror(errno)));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.ends_with('\n')) text.pop_back();
  if (text.ends_with('\r')) text.pop_back();
  return text;
}

Status resolve_identity(const Merged& merged, NodeConfig& config) {
  const auto node_id = merged.get("node_id");
  if (!node_id) return missing("node_id");
  const auto id = parse_unsigned<uint64_t>(*node_id);
  if (!id || *id == 0) {
    return field_error("node_id", fmt::format("must be a non-zero integer, got '{}'", *node_id));
  }
  config.node_id = *id;

  // The cookie is a secret: errors say what is wrong with it, never what it is.
  std::optional<std::string> from_file;
  if (auto path = merged.get("cookie_file")) {
    if (merged.get("cookie")) {
      return field_error("cookie_file", "give the cookie once: --cookie-file or --cookie/ASPEN_COOKIE, not both");
    }
    auto text = read_secret_file(*path);
    if (!text) return field_error("cookie_file", text.error().message());
    from_file = std::move(*text);
  }
  const std::optional<std::string_view> cookie = from_file ? std::optional<std::string_view>(*from_file)
                                                           : merged.get("cookie");
  if (!cookie) {
    const Setting& s = setting("cookie");
    return config_error(fmt::format("{}: required (set --cookie-file, {} or {} in the config file; the command-line "
                                    "flag {} works too, but anyone on the machine can read it in 'ps')",
                                    s.flag, s.env, s.key, s.flag));
  }
  if (*cookie == kUnsafeDefaultCookie) {
    return field_error("cookie", "the built-in example cookie is not allowed; choose a secret");
  }
  if (cookie->size() < kMinCookieSizeBytes || cookie->size() > kMaxCookieSizeBytes) {
    return field_error("cookie",
                       fmt::format("must be {} to {} bytes long, got {} bytes", kMinCookieSizeBytes,
                                   kMaxCookieSizeBytes, cookie->size()));
  }
  config.cookie = std::string(*cookie);
  config.data_dir = std::string(merged.get("data_dir").value_or(""));
  if (config.data_dir.empty()) config.data_dir = fmt::format("./data/node-{}", config.node_id);
  return {};
}

// A size in bytes, or with a binary suffix: 8GiB, 512MiB, 64KiB (K/M/G/T also read as KiB...).
std::optional<uint64_t> parse_size_bytes(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const auto number = parse_unsigned<uint64_t>(text.substr(0, digits));
  if (!number) return std::nullopt;
  std::string_view suffix = text.substr(digits);
  if (suffix.ends_with("iB")) suffix.remove_suffix(2);
  if (suffix.ends_with('B') && suffix.size() == 2) suffix.remove_suffix(1);
  int shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else if (suffix == "K" || suffix == "k") {
    shift = 10;
  } else if (suffix == "M") {
    shift = 20;
  } else if (suffix == "G") {
    shift = 30;
  } else if (suffix == "T") {
    shift = 40;
  } else {
    return std::nullopt;
  }
  if (*number > (UINT64_MAX >> shift)) return std::nullopt;
  return *number << shift;
}

Status resolve_storage_sizes(const Merged& merged, NodeConfig& config) {
  auto size_of = [&](std::string_view key, uint64_t& out) -> Status {
    const auto text = merged.get(key);
    if (!text) return {};
    const auto bytes = parse_size_bytes(*text);
    if (!bytes) {
      return field_error(key, fmt::format("must be a size in bytes, optionally with a suffix (e.g. 8GiB, 512MiB), "
                                          "got '{}'",
                                          *text));
    }
    out = *bytes;
    return {};
  };
  if (auto s = size_of("storage_max_bytes", config.storage_max_bytes); !s) return s;
  config.storage_quota_bytes = 0;
  if (auto s = size_of("storage_quota_bytes", config.storage_quota_bytes); !s) return s;
  if (auto s = size_of("storage_min_free_bytes", config.storage_min_free_bytes); !s) return s;
  if (config.storage_max_bytes < kMinStorageMaxBytes) {
    return field_error("storage_max_bytes", fmt::format("must be at least {} MiB, got {} bytes",
                                                        kMinStorageMaxBytes >> 20, config.storage_max_bytes));
  }
  if (config.storage_quota_bytes == 0) config.storage_quota_bytes = default_storage_quota(config.storage_max_bytes);
  if (config.storage_quota_bytes >= config.storage_max_bytes) {
    return field_error("storage_quota_bytes",
                       fmt::format("must be below --storage-max-bytes ({} bytes), got {} bytes: the room between "
                                   "them takes the writes already on their way when the alarm goes off",
                                   config.storage_max_bytes, config.storage_quota_bytes));
  }
  return {};
}

Status resolve_storage(const Merged& merged, NodeConfig& config) {
  if (const auto bind = merged.get("bind")) {
    auto addr = transport::SocketAddr::resolve(*bind);
    if (!addr) {
      return field_error("bind", fmt::format("must be host:port (e.g. 127.0.0.1:7000, [::1]:7000 or "
                                             "node-1.example:7000), got '{}': {}",
                                             *bind, addr.error().message()));
    }
    config.bind = std::move(*addr);
  }
  if (const auto backend = merged.get("storage_backend")) {
    if (*backend == "lmdb") {
      config.storage_backend = StorageBackend::kLmdb;
    } else if (*backend == "inmemory") {
      config.storage_backend = StorageBackend::kInMemory;
    } else {
      return field_error("storage_backend",
                         fmt::format("must be lmdb or inmemory, got '{}'", *backend));
    }
  }
  return resolve_storage_sizes(merged, config);
}

Status resolve_blobs(const Merged& merged, NodeConfig& config) {
  if (const auto text = merged.get("blob_max_size_bytes")) {
    const auto n = parse_unsigned<uint64_t>(*text);
    if (!n || *n == 0 || *n > limits::kMaxBlobSizeBytes) {
      return field_error("blob_max_size_bytes",
                         fmt::format("must be bytes from 1 to {} (64 GiB), got '{}'", limits::kMaxBlobSizeBytes, *text));
    }
    config.knobs.blob_max_size_bytes = *n;
  }
  if (const auto text = merged.get("blob_gc_grace_s")) {
    constexpr uint64_t kMaxGraceS = uint64_t{365} * 24 * 3600;
    const auto s = parse_unsigned<uint64_t>(*text);
    if (!s || *s > kMaxGraceS) {
      return field_error("blob_gc_grace_s", fmt::format("must be seconds from 0 to {}, got '{}'", kMaxGraceS, *text));
    }
    config.knobs.blob_gc_grace_ms = *s * 1000;
  }
  if (const auto text = merged.get("blob_replication_factor")) {
    const auto n = parse_unsigned<uint32_t>(*text);
    if (!n || *n > limits::kMaxClusterVoters + limits::kMaxClusterLearners) {
      return field_error("blob_replication_factor",
                         fmt::format("must be a number of members from 0 (every voter) to {}, got '{}'",
                                     limits::kMaxClusterVoters + limits::kMaxClusterLearners, *text));
    }
    config.knobs.blob_replication_factor = *n;
  }
  if (const auto text = merged.get("blob_replication_bytes_per_s")) {
    const auto n = parse_unsigned<uint64_t>(*text);
    if (!n || *n > blob::kMaxPacedBytesPerS) {
      return field_error("blob_replication_bytes_per_s",
                         fmt::format("must be bytes per second from 0 (no cap) to {} (1 TiB/s), got '{}'",
                                     blob::kMaxPacedBytesPerS, *text));
    }
    config.knobs.blob_replication_bytes_per_s = *n;
  }
  return {};
}

Status resolve_client_admission(const Merged& merged, NodeConfig& config) {
  if (const auto text = merged.get("client_requests_per_s")) {
    const auto n = parse_unsigned<uint32_t>(*text);
    if (!n || *n > limits::kMaxClientRequestsPerSecond) {
      return field_error("client_requests_per_s",
                         fmt::format("must be requests per second per client connection from 0 (no limit) to {}, "
                                     "got '{}'",
                                     limits::kMaxClientRequestsPerSecond, *text));
    }
    config.knobs.client_requests_per_s = *n;
  }
  if (const auto text = merged.get("client_request_burst")) {
    constexpr uint32_t kMaxBurst = 1u << 30;  // knobs.cc validates the same bound
    const auto n = parse_unsigned<uint32_t>(*text);
    if (!n || *n < 1 || *n > kMaxBurst) {
      return field_error("client_request_burst",
                         fmt::format("must be a number of requests from 1 to {}, got '{}'", kMaxBurst, *text));
    }
    config.knobs.client_request_burst = *n;
  }
  return {};
}

Status resolve_timing(const Merged& merged, NodeConfig& config) {
  if (const auto text = merged.get("history_retention_revisions")) {
    const auto n = parse_unsigned<uint64_t>(*text);
    if (!n) {
      return field_error("history_retention_revisions",
                         fmt::format("must be a number of revisions (0 keeps them all), got '{}'", *text));
    }
    config.knobs.history_retention_revisions = *n;
  }
  if (const auto text = merged.get("history_retention_s")) {
    constexpr uint64_t kMaxRetentionS = uint64_t{10} * 365 * 24 * 3600;
    const auto s = parse_unsigned<uint64_t>(*text);
    if (!s || *s > kMaxRetentionS) {
      return field_error("history_retention_s", fmt::format("must be seconds from 0 (no age limit) to {}, got '{}'",
                                                            kMaxRetentionS, *text));
    }
    config.knobs.history_retention_ms = *s * 1000;
  }
  if (const auto text = merged.get("heartbeat_ms")) {
    const auto ms = parse_unsigned<uint32_t>(*text);
    if (!ms || *ms < kMinHeartbeatMs || *ms > kMaxHeartbeatMs) {
      return field_error("heartbeat_ms",
                         fmt::format("must be an integer from {} to {} (milliseconds), got '{}'",
                                     kMinHeartbeatMs, kMaxHeartbeatMs, *text));
    }
    config.knobs.heartbeat_ms = *ms;
  }
  if (const auto text = merged.get("election_timeout_ms")) {
    const auto ms = parse_unsigned<uint32_t>(*text);
    if (!ms) {
      return field_error("election_timeout_ms",
                         fmt::format("must be an integer (milliseconds), got '{}'", *text));
    }
    config.knobs.election_timeout_ms = *ms;
  }
  // Checked after both are known, so a lone --heartbeat-ms 500 against the default election
  // timeout is reported too.
  const uint32_t min_election_ms = kMinElectionToHeartbeatRatio * config.knobs.heartbeat_ms;
  if (config.knobs.election_timeout_ms < min_election_ms) {
    return field_error(
        "election_timeout_ms",
        fmt::format("must be at least {} x --heartbeat-ms ({} ms), got {}",
                    kMinElectionToHeartbeatRatio, min_election_ms, config.knobs.election_timeout_ms));
  }
  if (config.knobs.election_timeout_ms > kMaxElectionTimeoutMs) {
    return field_error("election_timeout_ms",
                       fmt::format("must be at most {} ms, got {}", kMaxElectionTimeoutMs,
                                   config.knobs.election_timeout_ms));
  }
  // The flags' own ranges imply the knobs' relations; this keeps the two from drifting apart.
  return validate(config.knobs);
}

Status resolve_peers(const Merged& merged, NodeConfig& config) {
  const auto text = merged.get("peers");
  if (!text) return {};
  size_t begin = 0;
  while (begin <= text->size()) {
    size_t end = text->find(',', begin);
    if (end == std::string_view::npos) end = text->size();
    const std::string_view entry = trim(text->substr(begin, end - begin));
    begin = end + 1;
    if (entry.empty()) continue;  // "a,b," and "a, ,b" are forgiven
    auto peer = parse_manual_peer(entry);
    if (!peer) return field_error("peers", peer.error().message());
    for (const ManualPeer& other : config.peers) {
      if (other.node_id == peer->node_id) {
        return field_error("peers", fmt::format("node {} is listed twice", peer->node_id));
      }
      if (other.public_key == peer->public_key) {
        return field_error("peers", fmt::format("nodes {} and {} have the same public key",
                                                other.node_id, peer->node_id));
      }
    }
    config.peers.push_back(std::move(*peer));
  }
  return {};
}

// Clocks (docs/operations.md, "Clocks"). Past an hour, a warning threshold says nothing;
// the test clock's bounds are node/test_clock.h's.
constexpr uint32_t kMaxClockOffsetWarnMs = 3'600'000;
// A longer path than PATH_MAX could not be opened anyway.
constexpr size_t kMaxTestClockOffsetPathBytes = 4096;

Status resolve_clock(const Merged& merged, NodeConfig& config) {
  if (const auto text = merged.get("clock_offset_warn_ms")) {
    const auto ms = parse_unsigned<uint32_t>(*text);
    if (!ms || *ms > kMaxClockOffsetWarnMs) {
      return field_error("clock_offset_warn_ms",
                         fmt::format("must be milliseconds from 0 (never warn) to {}, got '{}'", kMaxClockOffsetWarnMs,
                                     *text));
    }
    config.clock_offset_warn_ms = *ms;
  }
  if (const auto text = merged.get("test_clock_offset_ms")) {
    const auto ms = parse_test_clock_offset_ms(*text);
    if (!ms) {
      return field_error("test_clock_offset_ms",
                         fmt::format("(for tests only) must be milliseconds from -{} to {} to shift this node's clock "
                                     "by, got '{}'",
                                     kMaxTestClockOffsetMs, kMaxTestClockOffsetMs, *text));
    }
    config.test_clock_offset_ms = *ms;
  }
  if (const auto path = merged.get("test_clock_offset_file")) {
    // Checked here, where a typo is one clear error at start; what the file holds is checked
    // each time it is read (node/test_clock.h), as it may change at any moment.
    if (path->empty() || path->size() > kMaxTestClockOffsetPathBytes ||
        path->find_first_of(std::string_view("\0\n\r", 3)) != std::string_view::npos) {
      return field_error("test_clock_offset_file",
                         fmt::format("(for tests only) must be the path of a file holding this node's clock offset in "
                                     "milliseconds: not empty, at most {} bytes, one line",
                                     kMaxTestClockOffsetPathBytes));
    }
    config.test_clock_offset_file = std::string(*path);
  }
  return {};
}

Status resolve_misc(const Merged& merged, NodeConfig& config) {
  if (const auto text = merged.get("ticket")) {
    auto ticket = cluster::decode_ticket(*text);
    if (!ticket) return field_error("ticket", ticket.error().message());
    config.ticket = std::move(*ticket);
  }
  if (const auto level = merged.get("log_level")) {
    if (std::ranges::find(kLogLevels, *level) == kLogLevels.end()) {
      return field_error("log_level", fmt::format("must be one of {}, got '{}'",
                                                  fmt::join(kLogLevels, ", "), *level));
    }
    config.log_level = std::string(*level);
  }
  if (const auto format = merged.get("log_format")) {
    if (*format != "text" && *format != "json") {
      return field_error("log_format", fmt::format("must be text or json, got '{}'", *format));
    }
    config.log_format = std::string(*format);
  }
  config.ticket_file = std::string(merged.get("ticket_file").value_or(""));
  return resolve_clock(merged, config);
}

// Splits a comma-separated list, dropping empty entries ("a,b," and "a, ,b" are forgiven).
std::vector<std::string_view> split_list(std::string_view text) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view entry = trim(text.substr(begin, end - begin));
    begin = end + 1;
    if (!entry.empty()) out.push_back(entry);
  }
  return out;
}

Status resolve_gossip(const Merged& merged, NodeConfig& config) {
  cluster::GossipSettings& g = config.gossip;
  if (const auto text = merged.get("disable_gossip")) {
    if (*text == "true" || *text == "1") {
      g.is_enabled = false;
    } else if (*text != "false" && *text != "0") {
      return field_error("disable_gossip", fmt::format("must be true or false, got '{}'", *text));
    }
  }
  if (const auto text = merged.get("gossip_interval_ms")) {
    const auto ms = parse_unsigned<uint32_t>(*text);
    if (!ms || *ms < cluster::kMinGossipIntervalMs || *ms > cluster::kMaxGossipIntervalMs) {
      return field_error("gossip_interval_ms", fmt::format("must be milliseconds from {} to {}, got '{}'",
                                                           cluster::kMinGossipIntervalMs,
                                                           cluster::kMaxGossipIntervalMs, *text));
    }
    g.interval_ms = *ms;
  }
  if (const auto text = merged.get("gossip_peer_rate_per_min")) {
    const auto n = parse_unsigned<uint32_t>(*text);
    if (!n || *n == 0 || *n > cluster::kMaxGossipPeerMessagesPerMin) {
      return field_error("gossip_peer_rate_per_min", fmt::format("must be announcements per minute from 1 to {}, got '{}'",
                                                                 cluster::kMaxGossipPeerMessagesPerMin, *text));
    }
    g.peer_messages_per_min = *n;
  }
  if (const auto text = merged.get("gossip_seeds")) {
    for (std::string_view entry : split_list(*text)) {
      auto addr = transport::SocketAddr::resolve(entry);
      if (!addr) {
        return field_error("gossip_seeds", fmt::format("'{}' must be host:port: {}", entry, addr.error().message()));
      }
      if (g.seeds.size() >= cluster::kMaxGossipSeeds) {
        return field_error("gossip_seeds", fmt::format("at most {} seeds", cluster::kMaxGossipSeeds));
      }
      g.seeds.push_back(std::move(*addr));
    }
  }
  if (const auto text = merged.get("gossip_probe_ports")) {
    if (*text == "none") {
      g.probe_port_first = 0;
      g.probe_port_last = 0;
    } else {
      const size_t dash = text->find('-');
      const auto first = parse_unsigned<uint16_t>(text->substr(0, dash));
      const auto last = dash == std::string_view::npos ? first : parse_unsigned<uint16_t>(text->substr(dash + 1));
      if (!first || !last || *first == 0 || *last < *first ||
          size_t{*last} - *first + 1 > cluster::kMaxGossipProbePorts) {
        return field_error("gossip_probe_ports",
                           fmt::format("must be FIRST-LAST (at most {} ports, e.g. 7000-7015) or none, got '{}'",
                                       cluster::kMaxGossipProbePorts, *text));
      }
      g.probe_port_first = *first;
      g.probe_port_last = *last;
    }
  }
  return {};
}

// DNS discovery (docs/discovery.md, "DNS discovery"): off unless a name is given.
Status resolve_dns_discovery(const Merged& merged, NodeConfig& config) {
  cluster::DnsDiscoverySettings& d = config.dns_discovery;
  if (const auto name = merged.get("dns_discovery_name")) {
    if (auto s = cluster::validate_dns_name(*name); !s) {
      return field_error("dns_discovery_name",
                         fmt::format("{} (give the SRV name that lists the members, e.g. _aspen._udp.example.com.)",
                                     s.error().message()));
    }
    d.name = std::string(*name);
  }
  if (const auto text = merged.get("dns_discovery_server")) {
    // A bare address means the DNS port: 10.0.0.53, ::1 and [::1] are port 53.
    std::string with_port(*text);
    if (text->starts_with('[')) {
      if (text->find("]:") == std::string_view::npos) with_port += ":53";
    } else if (const auto colons = std::count(text->begin(), text->end(), ':'); colons == 0) {
      with_port += ":53";
    } else if (colons > 1) {
      with_port = fmt::format("[{}]:53", *text);
    }
    auto addr = transport::SocketAddr::resolve(with_port);
    if (!addr || addr->port == 0) {
      return field_error("dns_discovery_server",
                         fmt::format("must be a DNS server's HOST or HOST:PORT (e.g. 10.0.0.53, 127.0.0.1:5353 or "
                                     "[::1]:53), got '{}'{}",
                                     *text, addr ? std::string() : ": " + addr.error().message()));
    }
    d.server = std::move(*addr);
  }
  if (const auto text = merged.get("dns_discovery_interval_s")) {
    const auto s = parse_unsigned<uint32_t>(*text);
    if (!s || *s < cluster::kMinDnsDiscoveryIntervalS || *s > cluster::kMaxDnsDiscoveryIntervalS) {
      return field_error("dns_discovery_interval_s",
                         fmt::format("must be seconds from {} to {}, got '{}'", cluster::kMinDnsDiscoveryIntervalS,
                                     cluster::kMaxDnsDiscoveryIntervalS, *text));
    }
    d.interval_s = *s;
  }
  if (!d.is_enabled() && (d.server || merged.get("dns_discovery_interval_s"))) {
    return field_error(d.server ? "dns_discovery_server" : "dns_discovery_interval_s",
                       "DNS discovery is off: --dns-discovery-server and --dns-discovery-interval-s need "
                       "--enable-dns-discovery NAME");
  }
  return {};
}

// mDNS discovery (docs/discovery.md, "mDNS"): on unless disabled.
Status resolve_mdns(const Merged& merged, NodeConfig& config) {
  if (const auto text = merged.get("disable_mdns")) {
    if (*text == "true" || *text == "1") {
      config.mdns.is_enabled = false;
    } else if (*text != "false" && *text != "0") {
      return field_error("disable_mdns", fmt::format("must be true or false, got '{}'", *text));
    }
  }
  return {};
}

}  // namespace

Result<ConfigLayer> read_config_file(const std::string& path) {
  // A directory opens as an empty stream on Linux and would read as an empty file.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return config_error(fmt::format("config file '{}': is a directory", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return config_error(
        fmt::format("config file '{}': cannot be opened: {}", path, std::strerror(errno)));
  }
  // Whoever may change the file decides what this node trusts (peers, tickets, the cookie).
  struct stat st {};
  const bool has_mode = ::stat(path.c_str(), &st) == 0;
  if (has_mode && (st.st_mode & 022) != 0) {
    return config_error(fmt::format("config file '{}': may be changed by group or others (mode {:o}); run: "
                                    "chmod go-w {}",
                                    path, st.st_mode & 0777, path));
  }
  std::ostringstream content;
  content << in.rdbuf();

  toml::table table;
  try {
    table = toml::parse(content.str(), path);
  } catch (const toml::parse_error& e) {
    return config_error(fmt::format("config file '{}' line {}, column {}: {}", path,
                                    e.source().begin.line, e.source().begin.column,
                                    e.description()));
  }

  ConfigLayer layer;
  for (const auto& [toml_key, value] : table) {
    const std::string key(toml_key.str());
    if (find_setting(key) == nullptr) {
      return config_error(fmt::format("config file '{}': unknown key '{}' (valid keys: {})", path,
                                      key, valid_keys()));
    }
    if (key == "cookie" && has_mode && (st.st_mode & 077) != 0) {
      return config_error(fmt::format("config file '{}': holds the cookie and may be read by group or others (mode "
                                      "{:o}); run: chmod 600 {} (or keep the cookie in a --cookie-file)",
                                      path, st.st_mode & 0777, path));
    }
    auto text = toml_value_text(path, key, value);
    if (!text) return std::unexpected(text.error());
    layer.emplace(key, std::move(*text));
  }
  return layer;
}

ConfigLayer read_config_env(const std::vector<std::string>& environ_entries) {
  ConfigLayer layer;
  for (const std::string& entry : environ_entries) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string_view name = std::string_view(entry).substr(0, eq);
    // Unknown ASPEN_* names (ASPEN_CONFIG among them, which names the file rather than a
    // value) are left alone: other tools share the prefix.
    for (const Setting& s : kSettings) {
      if (s.env == name) {
        layer.insert_or_assign(std::string(s.key), entry.substr(eq + 1));
        break;
      }
    }
  }
  return layer;
}

Result<NodeConfig> resolve_config(const std::vector<ConfigLayer>& layers_by_priority) {
  Merged merged;
  for (const ConfigLayer& layer : layers_by_priority) {
    for (const auto& entry : layer) {
      if (find_setting(entry.first) == nullptr) {
        return config_error(
            fmt::format("unknown setting '{}' (valid settings: {})", entry.first, valid_keys()));
      }
    }
    merged.add_layer(layer);
  }

  NodeConfig config;
  for (auto* step :
       {resolve_identity, resolve_storage, resolve_blobs, resolve_client_admission, resolve_timing, resolve_peers,
        resolve_misc, resolve_gossip,
        resolve_dns_discovery, resolve_mdns}) {
    if (auto status = step(merged, config); !status) return std::unexpected(status.error());
  }
  return config;
}

Result<ManualPeer> parse_manual_peer(std::string_view text) {
  const size_t first = text.find('@');
  const size_t second = first == std::string_view::npos ? first : text.find('@', first + 1);
  if (second == std::string_view::npos || text.find('@', second + 1) != std::string_view::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("peer '{}' must look like id@publickey@host:port", text));
  }
  const std::string_view id_text = text.substr(0, first);
  const std::string_view key_text = text.substr(first + 1, second - first - 1);
  const std::string_view addr_text = text.substr(second + 1);

  ManualPeer peer;
  const auto id = parse_unsigned<uint64_t>(id_text);
  if (!id || *id == 0) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("peer '{}': node id must be a non-zero integer, got '{}'", text, id_text));
  }
  peer.node_id = *id;
  auto key = transport::PublicKey::parse(key_text);
  if (!key) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("peer '{}': bad public key ({})", text, key.error().message()));
  }
  peer.public_key = *key;
  auto addr = transport::SocketAddr::resolve(addr_text);
  if (!addr) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("peer '{}': bad address ({})", text, addr.error().message()));
  }
  peer.addr = std::move(*addr);
  return peer;
}

}  // namespace aspen::node
