// The gossip discovery settings of a node (node_config.h, cluster/gossip_settings.h): the
// defaults, each setting from a flag, the environment and TOML, and each way one is refused.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "node/node_config.h"
#include "tests/node/config_test_util.h"

namespace aspen::node {
namespace {

using config_test::required_with;
using config_test::error_of;

TEST(GossipConfig, IsOnByDefaultEveryTenSecondsProbingTheDocumentedPorts) {
  auto c = resolve_config({required_with({})});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_TRUE(c->gossip.is_enabled);
  EXPECT_EQ(c->gossip.interval_ms, 10000u);
  EXPECT_EQ(c->gossip.peer_messages_per_min, 12u);
  EXPECT_TRUE(c->gossip.seeds.empty());
  EXPECT_EQ(c->gossip.probe_port_first, 7000);
  EXPECT_EQ(c->gossip.probe_port_last, 7015);
}

TEST(GossipConfig, EverySettingIsTakenAsGiven) {
  auto c = resolve_config({required_with({{"disable_gossip", "true"},
                                          {"gossip_interval_ms", "250"},
                                          {"gossip_peer_rate_per_min", "600"},
                                          {"gossip_seeds", "127.0.0.1:7001, [::1]:7002,"},
                                          {"gossip_probe_ports", "17000-17007"}})});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_FALSE(c->gossip.is_enabled);
  EXPECT_EQ(c->gossip.interval_ms, 250u);
  EXPECT_EQ(c->gossip.peer_messages_per_min, 600u);
  ASSERT_EQ(c->gossip.seeds.size(), 2u);
  EXPECT_EQ(c->gossip.seeds[0].to_string(), "127.0.0.1:7001");
  EXPECT_EQ(c->gossip.seeds[1].to_string(), "[::1]:7002");
  EXPECT_EQ(c->gossip.probe_port_first, 17000);
  EXPECT_EQ(c->gossip.probe_port_last, 17007);
  auto none = resolve_config({required_with({{"gossip_probe_ports", "none"}, {"disable_gossip", "false"}})});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->gossip.is_enabled);
  EXPECT_FALSE(none->gossip.has_probe_ports());
}

TEST(GossipConfig, TheEnvironmentAndTomlNameEverySetting) {
  auto env = read_config_env({"ASPEN_DISABLE_GOSSIP=1", "ASPEN_GOSSIP_INTERVAL_MS=1000",
                              "ASPEN_GOSSIP_SEEDS=127.0.0.1:9000", "ASPEN_GOSSIP_PROBE_PORTS=9000-9001",
                              "ASPEN_GOSSIP_PEER_RATE_PER_MIN=30"});
  EXPECT_EQ(env.size(), 5u);
  char tmpl[] = "/tmp/aspen-gossip-config-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string file = dir + "/node.toml";
  std::ofstream(file) << "node_id = 1\ncookie = \"a-test-cookie-123\"\ndisable_gossip = true\n"
                         "gossip_seeds = [\"127.0.0.1:9000\", \"127.0.0.1:9001\"]\ngossip_interval_ms = 500\n";
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto layer = read_config_file(file);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(layer) << layer.error().to_string();
  auto c = resolve_config({*layer});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_FALSE(c->gossip.is_enabled);
  EXPECT_EQ(c->gossip.seeds.size(), 2u);
  EXPECT_EQ(c->gossip.interval_ms, 500u);
}

TEST(GossipConfig, BadValuesAreRefusedNamingTheFlag) {
  EXPECT_EQ(error_of(required_with({{"disable_gossip", "maybe"}})),
            "--disable-gossip: must be true or false, got 'maybe'");
  EXPECT_EQ(error_of(required_with({{"gossip_interval_ms", "10"}})),
            "--gossip-interval-ms: must be milliseconds from 50 to 600000, got '10'");
  EXPECT_EQ(error_of(required_with({{"gossip_peer_rate_per_min", "0"}})),
            "--gossip-peer-rate-per-min: must be announcements per minute from 1 to 60000, got '0'");
  EXPECT_TRUE(error_of(required_with({{"gossip_seeds", "nowhere"}})).starts_with("--gossip-seeds: 'nowhere' must be host:port"));
  for (const char* bad : {"7015-7000", "0-5", "7000-8000", "x-y", "7000-"}) {
    EXPECT_EQ(error_of(required_with({{"gossip_probe_ports", bad}})),
              std::string("--gossip-probe-ports: must be FIRST-LAST (at most 64 ports, e.g. 7000-7015) or none, got '") +
                  bad + "'");
  }
}

}  // namespace
}  // namespace aspen::node
