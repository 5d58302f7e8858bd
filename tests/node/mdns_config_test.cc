// The mDNS discovery setting of a node (node_config.h, cluster/mdns_settings.h): on by
// default, off by flag, environment or TOML (a boolean), and a bad value refused naming the
// flag.
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

TEST(MdnsConfig, IsOnByDefaultAndOffWhenDisabled) {
  auto on = resolve_config({required_with({})});
  ASSERT_TRUE(on) << on.error().to_string();
  EXPECT_TRUE(on->mdns.is_enabled);
  auto off = resolve_config({required_with({{"disable_mdns", "true"}})});
  ASSERT_TRUE(off) << off.error().to_string();
  EXPECT_FALSE(off->mdns.is_enabled);
  auto still_on = resolve_config({required_with({{"disable_mdns", "0"}})});
  ASSERT_TRUE(still_on);
  EXPECT_TRUE(still_on->mdns.is_enabled);
}

TEST(MdnsConfig, TheEnvironmentAndTomlNameIt) {
  auto env = read_config_env({"ASPEN_DISABLE_MDNS=1"});
  ASSERT_EQ(env.count("disable_mdns"), 1u);
  auto from_env = resolve_config({required_with(env)});
  ASSERT_TRUE(from_env);
  EXPECT_FALSE(from_env->mdns.is_enabled);
  char tmpl[] = "/tmp/aspen-mdns-config-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string file = dir + "/node.toml";
  std::ofstream(file) << "node_id = 1\ncookie = \"a-test-cookie-123\"\ndisable_mdns = true\n";
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto layer = read_config_file(file);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(layer) << layer.error().to_string();
  auto c = resolve_config({*layer});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_FALSE(c->mdns.is_enabled);
}

TEST(MdnsConfig, ABadValueIsRefusedNamingTheFlag) {
  auto c = resolve_config({required_with({{"disable_mdns", "sometimes"}})});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "--disable-mdns: must be true or false, got 'sometimes'");
}

}  // namespace
}  // namespace aspen::node
