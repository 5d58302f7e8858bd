// The clock settings of a node (node_config.h): the warning threshold and the test-only clock
// offset, their defaults, each from a flag, the environment and TOML, and every way a bad
// value is refused.
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

TEST(ClockConfig, WarnsPastHalfASecondAndShiftsNothingByDefault) {
  auto c = resolve_config({required_with({})});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->clock_offset_warn_ms, 500u);
  EXPECT_EQ(c->test_clock_offset_ms, 0);
  EXPECT_EQ(c->test_clock_offset_file, "");
}

TEST(ClockConfig, TheOffsetFileIsTakenFromFlagEnvironmentAndToml) {
  auto c = resolve_config({required_with({{"test_clock_offset_file", "/run/aspen/clock-offset"}})});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->test_clock_offset_file, "/run/aspen/clock-offset");
  auto env = read_config_env({"ASPEN_TEST_CLOCK_OFFSET_FILE=relative/offset"});
  auto from_env = resolve_config({required_with(env)});
  ASSERT_TRUE(from_env) << from_env.error().to_string();
  EXPECT_EQ(from_env->test_clock_offset_file, "relative/offset");
}

TEST(ClockConfig, AnOffsetFilePathThatCannotBeAFileIsRefusedNamingTheFlag) {
  const std::string expected =
      "--test-clock-offset-file: (for tests only) must be the path of a file holding this node's clock offset in "
      "milliseconds: not empty, at most 4096 bytes, one line";
  for (const std::string& bad : {std::string(4097, 'a'), std::string("a\nb"), std::string("a\rb"),
                                 std::string("a\0b", 3)}) {
    EXPECT_EQ(error_of(required_with({{"test_clock_offset_file", bad}})), expected) << bad.size();
  }
  EXPECT_EQ(error_of(required_with({{"test_clock_offset_file", std::string(4096, 'a')}})), "(accepted)");
  // Empty, as for every other setting, is the default: off.
  auto off = resolve_config({required_with({{"test_clock_offset_file", ""}})});
  ASSERT_TRUE(off) << off.error().to_string();
  EXPECT_EQ(off->test_clock_offset_file, "");
}

TEST(ClockConfig, ValuesAreTakenAsGivenWithEitherSign) {
  for (const auto& [text, ms] : std::vector<std::pair<std::string, int64_t>>{
           {"-700", -700}, {"+300", 300}, {"300", 300}, {"0", 0}, {"-86400000", -86'400'000}, {"86400000", 86'400'000}}) {
    auto c = resolve_config({required_with({{"test_clock_offset_ms", text}, {"clock_offset_warn_ms", "0"}})});
    ASSERT_TRUE(c) << text << ": " << c.error().to_string();
    EXPECT_EQ(c->test_clock_offset_ms, ms) << text;
    EXPECT_EQ(c->clock_offset_warn_ms, 0u);
  }
  auto c = resolve_config({required_with({{"clock_offset_warn_ms", "3600000"}})});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->clock_offset_warn_ms, 3'600'000u);
}

TEST(ClockConfig, TheEnvironmentAndTomlNameBoth) {
  auto env = read_config_env({"ASPEN_CLOCK_OFFSET_WARN_MS=250", "ASPEN_TEST_CLOCK_OFFSET_MS=-1200"});
  auto from_env = resolve_config({required_with(env)});
  ASSERT_TRUE(from_env) << from_env.error().to_string();
  EXPECT_EQ(from_env->clock_offset_warn_ms, 250u);
  EXPECT_EQ(from_env->test_clock_offset_ms, -1200);
  char tmpl[] = "/tmp/aspen-clock-config-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string file = dir + "/node.toml";
  std::ofstream(file) << "node_id = 1\ncookie = \"a-test-cookie-123\"\nclock_offset_warn_ms = 100\n"
                         "test_clock_offset_ms = -700\n";
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto layer = read_config_file(file);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(layer) << layer.error().to_string();
  auto c = resolve_config({*layer});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->clock_offset_warn_ms, 100u);
  EXPECT_EQ(c->test_clock_offset_ms, -700);
}

TEST(ClockConfig, OutOfRangeAndMalformedValuesAreRefusedNamingTheFlag) {
  for (const char* bad : {"-1", "3600001", "half a second", "1e3", "500ms", "99999999999999999999"}) {
    EXPECT_EQ(error_of(required_with({{"clock_offset_warn_ms", bad}})),
              std::string("--clock-offset-warn-ms: must be milliseconds from 0 (never warn) to 3600000, got '") + bad +
                  "'");
  }
  for (const char* bad : {"86400001", "-86400001", "+-5", "--5", "++5", "5s", "0x10", " 5", "-", "+",
                          "-9223372036854775808", "99999999999999999999"}) {
    EXPECT_EQ(error_of(required_with({{"test_clock_offset_ms", bad}})),
              std::string("--test-clock-offset-ms: (for tests only) must be milliseconds from -86400000 to 86400000 to "
                          "shift this node's clock by, got '") +
                  bad + "'");
  }
}

}  // namespace
}  // namespace aspen::node
