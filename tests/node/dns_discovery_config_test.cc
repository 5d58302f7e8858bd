// The DNS discovery settings of a node (node_config.h, cluster/dns_discovery_settings.h): off
// by default, each setting from a flag, the environment and TOML, and each way one is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "node/node_config.h"
#include "tests/node/config_test_util.h"

namespace aspen::node {
namespace {

using config_test::required_with;
using config_test::error_of;

TEST(DnsDiscoveryConfig, IsOffByDefault) {
  auto c = resolve_config({required_with({})});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_FALSE(c->dns_discovery.is_enabled());
  EXPECT_FALSE(c->dns_discovery.server.has_value());
  EXPECT_EQ(c->dns_discovery.interval_s, 60u);
}

TEST(DnsDiscoveryConfig, EverySettingIsTakenAsGiven) {
  auto c = resolve_config({required_with({{"dns_discovery_name", "_aspen._udp.example.test."},
                                          {"dns_discovery_server", "127.0.0.1:5353"},
                                          {"dns_discovery_interval_s", "15"}})});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_TRUE(c->dns_discovery.is_enabled());
  EXPECT_EQ(c->dns_discovery.name, "_aspen._udp.example.test.");
  ASSERT_TRUE(c->dns_discovery.server.has_value());
  EXPECT_EQ(c->dns_discovery.server->to_string(), "127.0.0.1:5353");
  EXPECT_EQ(c->dns_discovery.interval_s, 15u);
}

TEST(DnsDiscoveryConfig, AServerWithoutAPortIsAskedOnPort53) {
  for (const auto& [given, expected] : std::vector<std::pair<std::string, std::string>>{
           {"10.0.0.53", "10.0.0.53:53"}, {"::1", "[::1]:53"}, {"[::1]", "[::1]:53"}, {"[::1]:5353", "[::1]:5353"}}) {
    auto c = resolve_config({required_with({{"dns_discovery_name", "_aspen._udp.test"}, {"dns_discovery_server", given}})});
    ASSERT_TRUE(c) << given << ": " << c.error().to_string();
    EXPECT_EQ(c->dns_discovery.server->to_string(), expected);
  }
}

TEST(DnsDiscoveryConfig, TheEnvironmentAndTomlNameEverySetting) {
  auto env = read_config_env({"ASPEN_DNS_DISCOVERY_NAME=_aspen._udp.env.test", "ASPEN_DNS_DISCOVERY_SERVER=127.0.0.1:53",
                              "ASPEN_DNS_DISCOVERY_INTERVAL_S=30"});
  EXPECT_EQ(env.size(), 3u);
  auto c = resolve_config({required_with({}), env});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->dns_discovery.name, "_aspen._udp.env.test");
  EXPECT_EQ(c->dns_discovery.interval_s, 30u);

  const auto path = std::filesystem::temp_directory_path() / "aspen-dns-discovery-config-test.toml";
  {
    std::ofstream out(path);
    out << "dns_discovery_name = \"_aspen._udp.toml.test.\"\ndns_discovery_server = \"127.0.0.1:5300\"\n"
           "dns_discovery_interval_s = 120\n";
  }
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto file = read_config_file(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(file) << file.error().to_string();
  auto t = resolve_config({required_with({}), *file});
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->dns_discovery.name, "_aspen._udp.toml.test.");
  EXPECT_EQ(t->dns_discovery.server->to_string(), "127.0.0.1:5300");
  EXPECT_EQ(t->dns_discovery.interval_s, 120u);
}

TEST(DnsDiscoveryConfig, BadValuesAreRefusedNamingTheFlag) {
  const std::string name = "_aspen._udp.test.";
  struct Case {
    ConfigLayer layer;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{{"dns_discovery_name", "a..b"}}, "--enable-dns-discovery: 'a..b' is not a DNS name: it has an empty label"},
      {{{"dns_discovery_name", "has space.test"}}, "--enable-dns-discovery: 'has space.test' is not a DNS name"},
      {{{"dns_discovery_name", name}, {"dns_discovery_server", "127.0.0.1:0"}}, "--dns-discovery-server: must be"},
      {{{"dns_discovery_name", name}, {"dns_discovery_server", "127.0.0.1:99999"}}, "--dns-discovery-server: must be"},
      {{{"dns_discovery_name", name}, {"dns_discovery_interval_s", "0"}},
       "--dns-discovery-interval-s: must be seconds from 1 to 3600, got '0'"},
      {{{"dns_discovery_name", name}, {"dns_discovery_interval_s", "3601"}}, "--dns-discovery-interval-s: must be"},
      {{{"dns_discovery_name", name}, {"dns_discovery_interval_s", "1m"}}, "--dns-discovery-interval-s: must be"},
      {{{"dns_discovery_server", "127.0.0.1:53"}}, "--dns-discovery-server: DNS discovery is off"},
      {{{"dns_discovery_interval_s", "30"}}, "--dns-discovery-interval-s: DNS discovery is off"},
  };
  for (const auto& c : cases) {
    const std::string error = error_of(required_with(c.layer));
    EXPECT_NE(error.find(c.says), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace aspen::node
