// aspen-node --log-format json: every line the node logs, from start to a served request,
// is one JSON object carrying its node id (what a log shipper needs to tell members apart).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "node_process.h"

namespace aspen::testing {
namespace {

TEST(NodeLogFormat, JsonLinesCarryTheNodeId) {
  TempDir dir;
  NodeMap nodes;
  nodes[1] = std::make_unique<NodeProcess>(1, dir.path(), "log-format-cookie");
  ASSERT_NO_FATAL_FAILURE(nodes[1]->start({"--log-format", "json"}));
  auto c = client_for(nodes);
  ASSERT_NE(c, nullptr);
  ASSERT_NO_FATAL_FAILURE(form_cluster(*c, nodes));
  ASSERT_TRUE(wait_until([&] { return nodes[1]->log().find("\"level\":\"info\"") != std::string::npos; }, 15000));
  std::istringstream lines(nodes[1]->log());
  std::string line;
  size_t logged = 0;
  while (std::getline(lines, line)) {
    // The lines scripts wait for (ASPEN_NODE_READY, ASPEN_TICKET) are printed, not logged.
    if (line.starts_with("ASPEN_") || line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_EQ(j["node_id"], 1) << line;
    EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg")) << line;
    ++logged;
  }
  EXPECT_GT(logged, 3u);
}

}  // namespace
}  // namespace aspen::testing
