// --log-format: text or json, validated like every setting; in json every line is one
// object that carries the node id, whatever the message holds.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "core/log.h"
#include "node/node_config.h"

namespace aspen::node {
namespace {

ConfigLayer base() { return {{"node_id", "7"}, {"cookie", "correct-horse-battery"}}; }

TEST(LogFormat, TextByDefaultJsonOnRequestAndNothingElse) {
  auto config = resolve_config({base()});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->log_format, "text");
  auto layer = base();
  layer["log_format"] = "json";
  config = resolve_config({layer});
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_EQ(config->log_format, "json");
  layer["log_format"] = "xml";
  config = resolve_config({layer});
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code(), ErrorCode::kConfigInvalid);
  EXPECT_NE(config.error().message().find("--log-format"), std::string::npos) << config.error().message();
}

TEST(LogFormat, JsonLinesAreObjectsWithTheNodeIdWhateverTheMessage) {
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>("json-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  ASSERT_TRUE(log::set_format("json", 42));
  log::set_level("info");
  ASPEN_LOG_INFO("a \"quoted\" path C:\\x, a tab\t, a newline\n and a bell \a");
  ASPEN_LOG_WARN("second");
  EXPECT_FALSE(log::set_format("yaml", 42));
  spdlog::set_default_logger(previous);
  ASSERT_TRUE(log::set_format("text", 0));

  std::istringstream lines(out.str());
  std::string line;
  std::vector<nlohmann::json> objects;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    objects.push_back(j);
  }
  ASSERT_EQ(objects.size(), 2u) << out.str();
  EXPECT_EQ(objects[0]["node_id"], 42);
  EXPECT_EQ(objects[0]["level"], "info");
  EXPECT_EQ(objects[0]["msg"], "a \"quoted\" path C:\\x, a tab\t, a newline\n and a bell \a");
  EXPECT_TRUE(objects[0]["ts"].get<std::string>().ends_with("Z"));
  EXPECT_EQ(objects[1]["level"], "warning");
  EXPECT_EQ(objects[1]["node_id"], 42);
}

}  // namespace
}  // namespace aspen::node
