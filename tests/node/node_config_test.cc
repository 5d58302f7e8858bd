// Node configuration: layer priority, defaults, the TOML file, the environment, and one test
// per way a setting can be refused (each naming the flag an operator would fix).
#include "node/node_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace aspen::node {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/aspen-node-config-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    if (made == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path = made == nullptr ? "" : made;
  }
  ~TempDir() {
    if (!path.empty()) std::filesystem::remove_all(path);
  }
  // Owner-only by default: config files in these tests hold the cookie.
  std::string write(const std::string& name, const std::string& content,
                    std::filesystem::perms mode = std::filesystem::perms::owner_read |
                                                  std::filesystem::perms::owner_write) const {
    const std::string file = path + "/" + name;
    std::ofstream(file) << content;
    std::filesystem::permissions(file, mode);
    return file;
  }
};

std::string key_text(uint8_t byte) {
  std::array<uint8_t, transport::kPublicKeySizeBytes> bytes{};
  bytes.fill(byte);
  return transport::PublicKey(bytes).to_string();
}

std::string peer_text(uint64_t id, uint8_t key_byte, const std::string& addr) {
  return std::to_string(id) + "@" + key_text(key_byte) + "@" + addr;
}

// The two required settings, valid.
ConfigLayer required() {
  return {{"node_id", "1"}, {"cookie", "correct-horse-battery"}};
}

ConfigLayer required_with(const ConfigLayer& extra) {
  ConfigLayer layer = required();
  for (const auto& [key, value] : extra) layer.insert_or_assign(key, value);
  return layer;
}

// The ConfigInvalid message for these layers, or a failure if they resolved.
std::string config_error(const std::vector<ConfigLayer>& layers) {
  auto config = resolve_config(layers);
  if (config) {
    ADD_FAILURE() << "config unexpectedly resolved";
    return {};
  }
  EXPECT_EQ(config.error().code(), ErrorCode::kConfigInvalid);
  return config.error().message();
}

std::string config_error(const ConfigLayer& layer) {
  return config_error(std::vector{layer});
}

TEST(NodeConfig, DefaultsFillEverythingButTheRequiredSettings) {
  auto config = resolve_config({required()});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->node_id, 1u);
  EXPECT_EQ(config->cookie, "correct-horse-battery");
  EXPECT_EQ(config->data_dir, "./data/node-1");
  EXPECT_EQ(config->bind, (transport::SocketAddr{"127.0.0.1", 0}));
  EXPECT_EQ(config->storage_backend, StorageBackend::kLmdb);
  EXPECT_EQ(config->knobs.heartbeat_ms, 100u);
  EXPECT_EQ(config->knobs.election_timeout_ms, 1000u);
  EXPECT_TRUE(config->peers.empty());
  EXPECT_FALSE(config->ticket.has_value());
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->ticket_file, "");
}

TEST(NodeConfig, HistoryRetentionIsSetInRevisionsAndSeconds) {
  auto config = resolve_config({required_with({{"history_retention_revisions", "0"}, {"history_retention_s", "60"}})});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->knobs.history_retention_revisions, 0u);
  EXPECT_EQ(config->knobs.history_retention_ms, 60000u);
  EXPECT_NE(config_error(required_with({{"history_retention_s", "an hour"}})).find("--history-retention-s"),
            std::string::npos);
  EXPECT_NE(config_error(required_with({{"history_retention_revisions", "-5"}})).find("--history-retention-revisions"),
            std::string::npos);
  EXPECT_NE(config_error(required_with({{"history_retention_s", "999999999999"}})).find("--history-retention-s"),
            std::string::npos);
}

// Replication bandwidth: capped by default, settable, 0 for no cap, and bounded above.
TEST(NodeConfig, BlobReplicationBandwidthHasACapByDefaultAndCanBeSetOrLifted) {
  auto config = resolve_config({required()});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->knobs.blob_replication_bytes_per_s, uint64_t{64} << 20);
  config = resolve_config({required_with({{"blob_replication_bytes_per_s", "1048576"}})});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->knobs.blob_replication_bytes_per_s, 1048576u);
  config = resolve_config({required_with({{"blob_replication_bytes_per_s", "0"}})});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->knobs.blob_replication_bytes_per_s, 0u);
  for (const char* bad : {"fast", "-1", "1099511627777"}) {
    const std::string message = config_error(required_with({{"blob_replication_bytes_per_s", bad}}));
    EXPECT_TRUE(message.starts_with("--blob-replication-bytes-per-s: must be bytes per second from 0 (no cap) to "
                                    "1099511627776 (1 TiB/s), got '" + std::string(bad) + "'"))
        << message;
  }
}

// The per-connection request rate: high by default (only a runaway client meets it),
// settable lower for a shared node, 0 for none, and bounded.
TEST(NodeConfig, ClientRequestRateIsAboveWhatANodeServesByDefaultAndCanBeSet) {
  auto config = resolve_config({required()});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->knobs.client_requests_per_s, 100000u);
  EXPECT_EQ(config->knobs.client_request_burst, 20000u);
  config = resolve_config({required_with({{"client_requests_per_s", "5000"}, {"client_request_burst", "1000"}})});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->knobs.client_requests_per_s, 5000u);
  EXPECT_EQ(config->knobs.client_request_burst, 1000u);
  config = resolve_config({required_with({{"client_requests_per_s", "0"}})});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->knobs.client_requests_per_s, 0u);
  for (const char* bad : {"many", "-1", "1000001"}) {
    const std::string message = config_error(required_with({{"client_requests_per_s", bad}}));
    EXPECT_TRUE(message.starts_with("--client-requests-per-s: must be requests per second per client connection "
                                    "from 0 (no limit) to 1000000, got '" + std::string(bad) + "'"))
        << message;
  }
  for (const char* bad : {"0", "x", "1073741825"}) {
    const std::string message = config_error(required_with({{"client_request_burst", bad}}));
    EXPECT_TRUE(message.starts_with("--client-request-burst: must be a number of requests from 1 to 1073741824, got '" +
                                    std::string(bad) + "'"))
        << message;
  }
}

TEST(NodeConfig, EverySettingIsTakenAsGiven) {
  cluster::Ticket ticket;
  ticket.cluster_id = "c";
  ticket.peers.push_back({2, transport::PublicKey(), {{"10.0.0.2", 7002}}});
  const std::string peers =
      peer_text(2, 2, "127.0.0.1:7002") + ", " + peer_text(3, 3, "[::1]:7003") + ",";
  auto config = resolve_config({{{"node_id", "18446744073709551615"},
                                 {"cookie", "correct-horse-battery"},
                                 {"data_dir", "/var/lib/aspen"},
                                 {"bind", "0.0.0.0:7001"},
                                 {"storage_backend", "inmemory"},
                                 {"heartbeat_ms", "50"},
                                 {"election_timeout_ms", "150"},
                                 {"peers", peers},
                                 {"ticket", cluster::encode_ticket(ticket)},
                                 {"log_level", "debug"},
                                 {"ticket_file", "/tmp/ticket"}}});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->node_id, UINT64_MAX);
  EXPECT_EQ(config->data_dir, "/var/lib/aspen");
  EXPECT_EQ(config->bind, (transport::SocketAddr{"0.0.0.0", 7001}));
  EXPECT_EQ(config->storage_backend, StorageBackend::kInMemory);
  EXPECT_EQ(config->knobs.heartbeat_ms, 50u);
  EXPECT_EQ(config->knobs.election_timeout_ms, 150u);
  ASSERT_EQ(config->peers.size(), 2u);
  EXPECT_EQ(config->peers[0].node_id, 2u);
  EXPECT_EQ(config->peers[0].public_key.to_string(), key_text(2));
  EXPECT_EQ(config->peers[0].addr, (transport::SocketAddr{"127.0.0.1", 7002}));
  EXPECT_EQ(config->peers[1].node_id, 3u);
  EXPECT_EQ(config->peers[1].addr, (transport::SocketAddr{"::1", 7003}));
  ASSERT_TRUE(config->ticket.has_value());
  EXPECT_EQ(config->ticket->cluster_id, "c");
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->ticket_file, "/tmp/ticket");
}

// Storage sizes take bytes or a binary suffix; the quota defaults to 7/8 of the maximum and
// must stay below it (the room between takes writes already on their way to an alarm).
TEST(NodeConfig, StorageSizesTakeSuffixesAndTheQuotaStaysBelowTheMaximum) {
  auto defaults = resolve_config({required()});
  ASSERT_TRUE(defaults) << defaults.error().to_string();
  EXPECT_EQ(defaults->storage_max_bytes, uint64_t{8} << 30);
  EXPECT_EQ(defaults->storage_quota_bytes, uint64_t{7} << 30);
  EXPECT_EQ(defaults->storage_min_free_bytes, uint64_t{64} << 20);

  auto given = resolve_config({required_with(
      {{"storage_max_bytes", "512MiB"}, {"storage_quota_bytes", "100M"}, {"storage_min_free_bytes", "4096"}})});
  ASSERT_TRUE(given) << given.error().to_string();
  EXPECT_EQ(given->storage_max_bytes, uint64_t{512} << 20);
  EXPECT_EQ(given->storage_quota_bytes, uint64_t{100} << 20);
  EXPECT_EQ(given->storage_min_free_bytes, 4096u);
  auto derived = resolve_config({required_with({{"storage_max_bytes", "1GiB"}})});
  ASSERT_TRUE(derived);
  EXPECT_EQ(derived->storage_quota_bytes, uint64_t{896} << 20);

  for (const char* bad : {"lots", "12XB", "-5", "1.5GiB", "99999999999T"}) {
    EXPECT_NE(config_error(required_with({{"storage_max_bytes", bad}})).find("--storage-max-bytes"),
              std::string::npos)
        << bad;
  }
  EXPECT_NE(config_error(required_with({{"storage_max_bytes", "1MiB"}})).find("at least 16 MiB"), std::string::npos);
  const std::string over =
      config_error(required_with({{"storage_max_bytes", "64MiB"}, {"storage_quota_bytes", "64MiB"}}));
  EXPECT_NE(over.find("--storage-quota-bytes"), std::string::npos) << over;
  EXPECT_NE(over.find("must be below --storage-max-bytes"), std::string::npos) << over;
}

TEST(NodeConfig, FlagBeatsEnvBeatsFileBeatsDefault) {
  TempDir dir;
  const std::string path = dir.write("node.toml", R"(
node_id = 3
cookie = "cookie-from-the-file"
heartbeat_ms = 20
election_timeout_ms = 500
log_level = "warn"
)");
  auto file = read_config_file(path);
  ASSERT_TRUE(file) << file.error().to_string();
  const ConfigLayer env = read_config_env(
      {"ASPEN_HEARTBEAT_MS=30", "ASPEN_ELECTION_TIMEOUT_MS=600", "ASPEN_NODE_ID=4"});
  const ConfigLayer flags = {{"heartbeat_ms", "40"}, {"node_id", "5"}};

  auto config = resolve_config({flags, env, *file});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->knobs.heartbeat_ms, 40u);          // flag over env and file
  EXPECT_EQ(config->node_id, 5u);                // flag over env and file
  EXPECT_EQ(config->knobs.election_timeout_ms, 600u);  // env over file
  EXPECT_EQ(config->cookie, "cookie-from-the-file");
  EXPECT_EQ(config->log_level, "warn");                       // file over default
  EXPECT_EQ(config->storage_backend, StorageBackend::kLmdb);  // default
  EXPECT_EQ(config->data_dir, "./data/node-5");               // default follows the winning node id
}

TEST(NodeConfig, EmptyValueInAHigherLayerClearsTheLowerOne) {
  const ConfigLayer file = required_with({{"peers", peer_text(2, 2, "127.0.0.1:7002")}});
  auto config = resolve_config({{{"peers", ""}}, file});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_TRUE(config->peers.empty());
}

TEST(NodeConfig, EnvMapsAspenVariablesAndIgnoresTheRest) {
  const ConfigLayer env = read_config_env({
      "ASPEN_NODE_ID=7",
      "ASPEN_COOKIE=a=b=c",  // only the first '=' separates the name
      "ASPEN_STORAGE_BACKEND=inmemory",
      "ASPEN_TICKET_FILE=/t",
      "ASPEN_TICKET=aspen-of-the-cli",  // the CLI's: a node must not join with it by accident
      "ASPEN_JOIN_TICKET=aspen-to-join",
      "ASPEN_CONFIG=/etc/aspen.toml",
      "ASPEN_SOMETHING_ELSE=1",
      "PATH=/usr/bin",
      "aspen_node_id=9",
      "NO_EQUALS_SIGN",
  });
  EXPECT_EQ(env, (ConfigLayer{{"node_id", "7"},
                              {"cookie", "a=b=c"},
                              {"storage_backend", "inmemory"},
                              {"ticket_file", "/t"},
                              {"ticket", "aspen-to-join"}}));
}

TEST(NodeConfig, FileWithEverySettingIsReadIncludingThePeersArray) {
  TempDir dir;
  const std::string peer2 = peer_text(2, 2, "127.0.0.1:7002");
  const std::string peer3 = peer_text(3, 3, "127.0.0.1:7003");
  std::string toml =
      "node_id = 1\n"
      "cookie = \"correct-horse-battery\"\n"
      "data_dir = \"/data\"\n"
      "bind = \"127.0.0.1:7001\"\n"
      "storage_backend = \"inmemory\"\n"
      "heartbeat_ms = 50\n"
      "election_timeout_ms = 500\n"
      "log_level = \"error\"\n"
      "ticket_file = \"/data/ticket\"\n";
  toml += "peers = [\"" + peer2 + "\", \"" + peer3 + "\"]\n";
  const std::string path = dir.write("node.toml", toml);
  auto layer = read_config_file(path);
  ASSERT_TRUE(layer) << layer.error().to_string();
  EXPECT_EQ(layer->at("node_id"), "1");
  EXPECT_EQ(layer->at("heartbeat_ms"), "50");
  EXPECT_EQ(layer->at("peers"), peer2 + "," + peer3);
  EXPECT_EQ(layer->size(), 10u);

  auto config = resolve_config({*layer});
  ASSERT_TRUE(config) << config.error().to_string();
  ASSERT_EQ(config->peers.size(), 2u);
  EXPECT_EQ(config->peers[1].node_id, 3u);
  EXPECT_EQ(config->log_level, "error");
}

TEST(NodeConfig, FileSyntaxErrorNamesFileAndLine) {
  TempDir dir;
  const std::string path = dir.write("bad.toml", "node_id = 1\ncookie = \"unterminated\n");
  auto layer = read_config_file(path);
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), ErrorCode::kConfigInvalid);
  EXPECT_NE(layer.error().message().find("config file '" + path + "' line 2"), std::string::npos)
      << layer.error().message();
}

TEST(NodeConfig, FileWithUnknownKeyNamesItAndListsValidKeys) {
  TempDir dir;
  const std::string path = dir.write("node.toml", "node_id = 1\nheartbeat = 100\n");
  auto layer = read_config_file(path);
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), ErrorCode::kConfigInvalid);
  EXPECT_NE(layer.error().message().find("unknown key 'heartbeat'"), std::string::npos);
  EXPECT_NE(layer.error().message().find("heartbeat_ms"), std::string::npos);
  EXPECT_NE(layer.error().message().find("election_timeout_ms"), std::string::npos);
}

TEST(NodeConfig, FileValueOfWrongTypeIsRefused) {
  TempDir dir;
  struct Case {
    const char* toml;
    const char* expected;
  };
  for (const Case& c : {
           Case{"cookie = true\n", "cookie must be a string or an integer, got a boolean"},
           Case{"heartbeat_ms = 1.5\n", "heartbeat_ms must be a string or an integer, got a float"},
           Case{"[bind]\nhost = \"x\"\n", "bind must be a string or an integer, got a table"},
           Case{"node_id = [1]\n", "node_id must be a string or an integer, got an array"},
           Case{"peers = [1, 2]\n", "peers must be an array of strings, found an integer in it"},
           Case{"peers = true\n", "peers must be an array of strings, got a boolean"},
       }) {
    const std::string path = dir.write("node.toml", c.toml);
    auto layer = read_config_file(path);
    ASSERT_FALSE(layer) << c.toml;
    EXPECT_EQ(layer.error().code(), ErrorCode::kConfigInvalid);
    EXPECT_NE(layer.error().message().find(c.expected), std::string::npos)
        << layer.error().message();
  }
}

TEST(NodeConfig, MissingFileOrDirectoryIsRefusedNamingIt) {
  TempDir dir;
  auto layer = read_config_file(dir.path + "/absent.toml");
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), ErrorCode::kConfigInvalid);
  EXPECT_NE(layer.error().message().find("absent.toml"), std::string::npos);

  auto directory = read_config_file(dir.path);
  ASSERT_FALSE(directory);
  EXPECT_NE(directory.error().message().find("is a directory"), std::string::npos);
}

TEST(NodeConfig, MissingNodeIdSaysWhereToSetIt) {
  EXPECT_EQ(config_error(ConfigLayer{{"cookie", "correct-horse-battery"}}),
            "--node-id: required (set --node-id, ASPEN_NODE_ID or node_id in the config file)");
}

TEST(NodeConfig, NodeIdMustBeANonZeroInteger) {
  for (const char* bad : {"abc", "0", "-1", "1.5", " 1", "18446744073709551616"}) {
    EXPECT_EQ(config_error(required_with({{"node_id", bad}})),
              std::string("--node-id: must be a non-zero integer, got '") + bad + "'");
  }
}

TEST(NodeConfig, MissingCookieSaysWhereToSetIt) {
  EXPECT_EQ(config_error(ConfigLayer{{"node_id", "1"}}),
            "--cookie: required (set --cookie-file, ASPEN_COOKIE or cookie in the config file; the command-line flag "
            "--cookie works too, but anyone on the machine can read it in 'ps')");
}

TEST(NodeConfig, CookieFileIsReadWithoutItsTrailingNewline) {
  TempDir dir;
  const std::string path = dir.write("cookie", "correct-horse-battery\n");
  auto config = resolve_config({ConfigLayer{{"node_id", "1"}, {"cookie_file", path}}});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->cookie, "correct-horse-battery");
}

TEST(NodeConfig, CookieFileOthersMayReadIsRefused) {
  TempDir dir;
  namespace fs = std::filesystem;
  const std::string path =
      dir.write("cookie", "correct-horse-battery", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  const std::string message = config_error(ConfigLayer{{"node_id", "1"}, {"cookie_file", path}});
  EXPECT_TRUE(message.starts_with("--cookie-file: '" + path + "' may be read by group or others (mode 640)")) << message;
  EXPECT_NE(message.find("chmod 600"), std::string::npos) << message;
  EXPECT_EQ(message.find("correct-horse-battery"), std::string::npos);
}

TEST(NodeConfig, CookieGivenTwiceOrFromAMissingFileIsRefused) {
  TempDir dir;
  const std::string path = dir.write("cookie", "correct-horse-battery");
  EXPECT_TRUE(config_error(ConfigLayer{{"node_id", "1"}, {"cookie_file", path}, {"cookie", "another-cookie"}})
                  .starts_with("--cookie-file: give the cookie once"));
  const std::string missing = config_error(ConfigLayer{{"node_id", "1"}, {"cookie_file", dir.path + "/nope"}});
  EXPECT_TRUE(missing.starts_with("--cookie-file: '" + dir.path + "/nope': No such file")) << missing;
  const std::string big = dir.write("big", std::string(kMaxCookieSizeBytes + 10, 'c'));
  EXPECT_NE(config_error(ConfigLayer{{"node_id", "1"}, {"cookie_file", big}}).find("a cookie is at most 256 bytes"),
            std::string::npos);
}

TEST(NodeConfig, ConfigFileOthersMayChangeIsRefused) {
  TempDir dir;
  namespace fs = std::filesystem;
  const std::string path = dir.write("node.toml", "node_id = 1\n",
                                     fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                         fs::perms::group_write | fs::perms::others_read);
  auto file = read_config_file(path);
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message().find("may be changed by group or others (mode 664)"), std::string::npos)
      << file.error().message();
}

TEST(NodeConfig, ConfigFileHoldingTheCookieMustBeOwnerOnly) {
  TempDir dir;
  namespace fs = std::filesystem;
  const auto world_readable = fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read;
  const std::string with_cookie = dir.write("a.toml", "node_id = 1\ncookie = \"correct-horse-battery\"\n", world_readable);
  auto refused = read_config_file(with_cookie);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("holds the cookie and may be read by group or others"), std::string::npos)
      << refused.error().message();
  EXPECT_EQ(refused.error().message().find("correct-horse-battery"), std::string::npos);
  // Without a secret in it, a world-readable file is fine.
  EXPECT_TRUE(read_config_file(dir.write("b.toml", "node_id = 1\n", world_readable)));
}

TEST(NodeConfig, ExampleCookieIsRefused) {
  EXPECT_EQ(config_error(required_with({{"cookie", std::string(kUnsafeDefaultCookie)}})),
            "--cookie: the built-in example cookie is not allowed; choose a secret");
}

TEST(NodeConfig, CookieLengthIsBoundedAndNeverEchoed) {
  const std::string too_short(kMinCookieSizeBytes - 1, 's');
  const std::string too_long(kMaxCookieSizeBytes + 1, 'l');
  for (const std::string& cookie : {too_short, too_long}) {
    const std::string message = config_error(required_with({{"cookie", cookie}}));
    EXPECT_TRUE(message.starts_with("--cookie: must be 8 to 256 bytes long")) << message;
    EXPECT_EQ(message.find(cookie), std::string::npos);
  }
  EXPECT_TRUE(resolve_config({required_with({{"cookie", std::string(kMinCookieSizeBytes, 'c')}})}));
  EXPECT_TRUE(resolve_config({required_with({{"cookie", std::string(kMaxCookieSizeBytes, 'c')}})}));
}

// Host names are looked up once, where they are given (members exchange IP addresses).
// localhost comes from /etc/hosts: no DNS server is needed.
TEST(NodeConfig, HostNamesInBindAndPeersAreResolved) {
  auto config = resolve_config({{{"node_id", "1"},
                                 {"cookie", "correct-horse-battery"},
                                 {"bind", "localhost:7001"},
                                 {"peers", peer_text(2, 2, "localhost:7002")}}});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_TRUE(config->bind.ip == "127.0.0.1" || config->bind.ip == "::1") << config->bind.to_string();
  EXPECT_EQ(config->bind.port, 7001);
  ASSERT_EQ(config->peers.size(), 1u);
  EXPECT_TRUE(config->peers[0].addr.ip == "127.0.0.1" || config->peers[0].addr.ip == "::1");
  EXPECT_EQ(config->peers[0].addr.port, 7002);
}

TEST(NodeConfig, EachInvalidSettingIsRefusedNamingItsFlag) {
  const std::string good_peer = peer_text(2, 2, "127.0.0.1:7002");
  struct Case {
    ConfigLayer overrides;
    std::string expected_prefix;
  };
  const std::vector<Case> cases = {
      {{{"bind", "localhost:notaport"}}, "--bind: must be host:port"},
      {{{"bind", "127.0.0.1"}}, "--bind: must be host:port"},
      {{{"storage_backend", "rocksdb"}},
       "--storage-backend: must be lmdb or inmemory, got 'rocksdb'"},
      {{{"heartbeat_ms", "9"}}, "--heartbeat-ms: must be an integer from 10 to 10000"},
      {{{"heartbeat_ms", "10001"}}, "--heartbeat-ms: must be an integer from 10 to 10000"},
      {{{"heartbeat_ms", "fast"}}, "--heartbeat-ms: must be an integer from 10 to 10000"},
      {{{"election_timeout_ms", "soon"}}, "--election-timeout-ms: must be an integer"},
      {{{"election_timeout_ms", "299"}},
       "--election-timeout-ms: must be at least 3 x --heartbeat-ms (300 ms), got 299"},
      {{{"heartbeat_ms", "400"}},  // against the default election timeout of 1000
       "--election-timeout-ms: must be at least 3 x --heartbeat-ms (1200 ms), got 1000"},
      {{{"election_timeout_ms", "60001"}}, "--election-timeout-ms: must be at most 60000 ms"},
      {{{"peers", "2@" + key_text(2)}}, "--peers: peer '2@"},
      {{{"peers", "x@" + key_text(2) + "@127.0.0.1:1"}}, "--peers: peer 'x@"},
      {{{"peers", "0@" + key_text(2) + "@127.0.0.1:1"}}, "--peers: peer '0@"},
      {{{"peers", "2@nokey@127.0.0.1:1"}}, "--peers: peer '2@nokey@127.0.0.1:1': bad public key"},
      {{{"peers", "2@" + key_text(2) + "@host:1"}}, "--peers: peer '2@"},
      {{{"peers", good_peer + "," + peer_text(2, 3, "127.0.0.1:7003")}},
       "--peers: node 2 is listed twice"},
      {{{"peers", good_peer + "," + peer_text(3, 2, "127.0.0.1:7003")}},
       "--peers: nodes 2 and 3 have the same public key"},
      {{{"ticket", "not-a-ticket"}}, "--ticket: ticket must start with 'aspen'"},
      {{{"ticket", "aspen"}}, "--ticket: ticket names no peers"},
      {{{"log_level", "verbose"}},
       "--log-level: must be one of trace, debug, info, warn, error, got 'verbose'"},
  };
  for (const Case& c : cases) {
    const std::string message = config_error(required_with(c.overrides));
    EXPECT_TRUE(message.starts_with(c.expected_prefix))
        << "expected '" << c.expected_prefix << "...', got '" << message << "'";
  }
}

TEST(NodeConfig, UnknownSettingInALayerIsRefused) {
  const std::string message = config_error(required_with({{"heartbeat", "100"}}));
  EXPECT_TRUE(message.starts_with("unknown setting 'heartbeat'")) << message;
}

TEST(NodeConfig, ManualPeerParsesIdKeyAndAddress) {
  auto peer = parse_manual_peer(peer_text(42, 9, "[::1]:7000"));
  ASSERT_TRUE(peer) << peer.error().to_string();
  EXPECT_EQ(peer->node_id, 42u);
  EXPECT_EQ(peer->public_key.to_string(), key_text(9));
  EXPECT_EQ(peer->addr, (transport::SocketAddr{"::1", 7000}));

  for (const std::string& bad :
       {std::string(""), std::string("42"), key_text(9), peer_text(42, 9, "1.2.3.4:1") + "@x"}) {
    auto refused = parse_manual_peer(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message().find("must look like id@publickey@host:port"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace aspen::node
