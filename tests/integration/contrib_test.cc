// contrib/: the files operators install are checked against the real thing — the example
// TOML resolves with aspen-node's own config reader, systemd-analyze accepts the unit, and
// the Grafana dashboard queries only metrics that nodes and the adapter serve.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

#include "node/metrics.h"
#include "node/node_config.h"
#include "ops/exposition.h"
#include "ops_process.h"

namespace aspen::testing {
namespace {

const std::string kContrib = std::string(ASPEN_SOURCE_DIR) + "/contrib";

TEST(Contrib, ExampleConfigResolvesWithTheNodesReader) {
  TempDir dir;
  auto file = node::read_config_file(kContrib + "/aspen-node.example.toml");
  ASSERT_TRUE(file.has_value()) << file.error().to_string();
  // What the systemd unit passes on the command line, with paths of this test.
  const std::string cookie = dir.path() + "/cookie";
  std::ofstream(cookie) << "a-long-random-cluster-secret\n";
  std::filesystem::permissions(cookie, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  node::ConfigLayer flags{{"cookie_file", cookie}, {"data_dir", dir.path() + "/data"}};
  auto config = node::resolve_config({flags, *file});
  ASSERT_TRUE(config.has_value()) << config.error().to_string();
  EXPECT_EQ(config->node_id, 1u);
  EXPECT_EQ(config->log_format, "json");
  EXPECT_EQ(config->bind, (transport::SocketAddr{"10.0.0.1", 7001}));
  EXPECT_EQ(config->storage_max_bytes, uint64_t{8} << 30);
}

TEST(Contrib, SystemdUnitPassesSystemdAnalyze) {
  const std::string analyze = find_program("systemd-analyze");
  if (analyze.empty()) GTEST_SKIP() << "systemd-analyze is not installed (Debian package systemd)";
  TempDir dir;
  // An instance of the template, with ExecStart pointing at the binary this build made
  // (verify checks that the command exists and is executable).
  std::string unit = read_file(kContrib + "/systemd/aspen-node@.service");
  const std::string installed = "/usr/local/bin/aspen-node";
  ASSERT_NE(unit.find(installed), std::string::npos);
  unit.replace(unit.find(installed), installed.size(), bin_path("aspen-node"));
  const std::string path = dir.path() + "/aspen-node@test.service";
  std::ofstream(path) << unit;
  auto r = run_command({analyze, "verify", path}, dir.path() + "/verify.out", true);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "") << "systemd-analyze has remarks:\n" << r.out;
}

// Every aspen_ metric a panel queries: a family of a node's page or the adapter's, or a
// histogram's _bucket/_sum/_count series.
TEST(Contrib, GrafanaDashboardQueriesOnlyServedMetrics) {
  auto dashboard = nlohmann::json::parse(read_file(kContrib + "/grafana/aspen.json"), nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded()) << "contrib/grafana/aspen.json is not JSON";
  node::MetricsView v;
  v.node_id = 1;
  v.transport.peer_rtts.push_back(transport::PeerRtt{});
  auto page = ops::parse_exposition(node::prometheus_text(v) +
                                    "# TYPE aspen_adapter_member_up gauge\naspen_adapter_member_up{node_id=\"1\"} 1\n");
  ASSERT_TRUE(page.has_value());
  std::set<std::string> served;
  for (const auto& f : page->families) {
    served.insert(f.name);
    if (f.type == "histogram") {
      for (const char* s : {"_bucket", "_sum", "_count"}) served.insert(f.name + s);
    }
  }
  size_t queried = 0;
  for (const auto& panel : dashboard["panels"]) {
    if (!panel.contains("targets")) continue;
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      for (size_t pos = expr.find("aspen_"); pos != std::string::npos; pos = expr.find("aspen_", pos + 1)) {
        size_t end = pos;
        while (end < expr.size() && (std::islower(static_cast<unsigned char>(expr[end])) || expr[end] == '_')) ++end;
        const std::string name = expr.substr(pos, end - pos);
        EXPECT_TRUE(served.contains(name)) << panel["title"] << " queries " << name << ", which nothing serves";
        ++queried;
        pos = end;
      }
    }
  }
  EXPECT_GT(queried, 20u);
}

}  // namespace
}  // namespace aspen::testing
