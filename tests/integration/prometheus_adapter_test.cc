// aspen-prometheus-adapter against a real 3-node cluster: /metrics holds every member's
// series labelled node_id, passes `promtool check metrics`, reports a killed member down
// without stalling; Debian's prometheus scrapes it for a few intervals and its HTTP API
// returns the series. Skips (saying why) where promtool or prometheus is not installed.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

#include "ops/exposition.h"
#include "ops_process.h"

namespace aspen::testing {
namespace {

class PrometheusAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_.path(), "adapter-cookie");
      ASSERT_NO_FATAL_FAILURE(nodes_[id]->start());
    }
    client_ = client_for(nodes_);
    ASSERT_NE(client_, nullptr);
    ASSERT_NO_FATAL_FAILURE(form_cluster(*client_, nodes_));
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(kv::put(*client_, "adapter/" + std::to_string(i), "v").has_value());
    }
    auto ticket = client_->cluster_ticket();
    ASSERT_TRUE(ticket.has_value()) << ticket.error().to_string();
    auto env = operator_env(dir_.path());
    env["ASPEN_TICKET"] = *ticket;
    adapter_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{bin_path("aspen-prometheus-adapter"), "--listen", "127.0.0.1:0", "--member-timeout-ms",
                                 "1500"},
        dir_.path() + "/adapter.log", env);
    ASSERT_TRUE(wait_until([&] { return adapter_->output().find("ASPEN_ADAPTER_READY") != std::string::npos || !adapter_->alive(); },
                           15000));
    const std::string out = adapter_->output();
    auto pos = out.find("listen=127.0.0.1:");
    ASSERT_NE(pos, std::string::npos) << out;
    port_ = std::stoi(out.substr(pos + 17));
  }

  // GET path on the adapter; status 0 when it did not answer.
  httplib::Result get(const std::string& path) {
    httplib::Client http("127.0.0.1", port_);
    http.set_read_timeout(30, 0);
    return http.Get(path.c_str());
  }

  TempDir dir_;
  NodeMap nodes_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<ChildProcess> adapter_;
  int port_ = 0;
};

TEST_F(PrometheusAdapterTest, ServesEveryMemberLabelledWithItsNodeId) {
  auto res = get("/metrics");
  ASSERT_TRUE(res) << "no answer from the adapter:\n" << adapter_->output();
  ASSERT_EQ(res->status, 200);
  EXPECT_TRUE(res->get_header_value("Content-Type").starts_with("text/plain; version=0.0.4"));
  auto page = ops::parse_exposition(res->body);
  ASSERT_TRUE(page.has_value()) << page.error().to_string();
  std::set<std::string> names;
  for (const auto& f : page->families) EXPECT_TRUE(names.insert(f.name).second) << "family twice: " << f.name;
  for (const char* id : {"1", "2", "3"}) {
    EXPECT_EQ(ops::sample_value(*page, "aspen_adapter_member_up", {{"node_id", id}}), 1.0) << id;
    EXPECT_TRUE(ops::sample_value(*page, "aspen_raft_term", {{"node_id", id}}).has_value()) << id;
    EXPECT_GT(ops::sample_value(*page, "aspen_storage_log_write_duration_seconds_count", {{"node_id", id}}).value_or(0), 0)
        << "node " << id << " recorded no fsync";
  }
  // The leader answered the writes: its per-operation histogram counted them.
  double writes = 0;
  for (const auto* s : ops::samples_named(*page, "aspen_client_request_duration_seconds_count", {{"op", "write"}})) {
    writes += s->value;
  }
  EXPECT_GE(writes, 20);
  auto health = get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(adapter_->stop(), 0) << adapter_->output();
}

TEST_F(PrometheusAdapterTest, ExpositionPassesPromtool) {
  const std::string promtool = find_program("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool is not installed (Debian package prometheus; scripts/setup.sh)";
  auto res = get("/metrics");
  ASSERT_TRUE(res);
  const std::string page_path = dir_.path() + "/page.txt";
  std::ofstream(page_path) << res->body;
  // promtool reads the page on stdin: sh does the redirection.
  auto r = run_command({"/bin/sh", "-c", promtool + " check metrics < " + page_path}, dir_.path() + "/promtool.out", true);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "") << "promtool has remarks:\n" << r.out;
}

TEST_F(PrometheusAdapterTest, AKilledMemberIsReportedDownAndTheOthersStillServed) {
  nodes_[3]->kill9();
  ASSERT_TRUE(wait_until(
      [&] {
        auto res = get("/metrics");
        if (!res || res->status != 200) return false;
        auto page = ops::parse_exposition(res->body);
        if (!page) return false;
        const std::vector<ops::Label> one{{"node_id", "1"}}, two{{"node_id", "2"}}, three{{"node_id", "3"}};
        const bool is_three_down = ops::sample_value(*page, "aspen_adapter_member_up", three) == 0.0;
        const bool is_one_up = ops::sample_value(*page, "aspen_adapter_member_up", one) == 1.0;
        const bool has_two = ops::sample_value(*page, "aspen_raft_term", two).has_value();
        const bool has_three = ops::sample_value(*page, "aspen_raft_term", three).has_value();
        return is_three_down && is_one_up && has_two && !has_three;
      },
      60000))
      << adapter_->output();
  auto health = get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(PrometheusAdapterTest, PrometheusScrapesTheAdapterAndAnswersQueries) {
  const std::string prometheus = find_program("prometheus");
  if (prometheus.empty()) GTEST_SKIP() << "prometheus is not installed (Debian package prometheus; scripts/setup.sh)";
  const uint16_t prom_port = free_tcp_port();
  const std::string config = dir_.path() + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: aspen\n    static_configs:\n"
                        << "      - targets: ['127.0.0.1:" << port_ << "']\n";
  std::filesystem::create_directories(dir_.path() + "/tsdb");
  ChildProcess prom({prometheus, "--config.file=" + config, "--storage.tsdb.path=" + dir_.path() + "/tsdb",
                     "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=warn"},
                    dir_.path() + "/prometheus.log");
  httplib::Client api("127.0.0.1", prom_port);
  api.set_read_timeout(10, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = api.Get("/-/ready");
        return (r && r->status == 200) || !prom.alive();
      },
      60000))
      << prom.output();
  ASSERT_TRUE(prom.alive()) << prom.output();
  // A few scrape intervals later the series of all three members are in Prometheus.
  auto query = [&](const std::string& promql) -> nlohmann::json {
    auto r = api.Get(("/api/v1/query?query=" + httplib::detail::encode_query_param(promql)).c_str());
    if (!r || r->status != 200) return nlohmann::json();
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return nlohmann::json();
    return j["data"]["result"];
  };
  std::set<std::string> seen;
  ASSERT_TRUE(wait_until(
      [&] {
        seen.clear();
        for (const auto& series : query("aspen_raft_commit_index")) seen.insert(series["metric"].value("node_id", ""));
        return seen == std::set<std::string>{"1", "2", "3"};
      },
      60000))
      << "series seen for node_ids: " << seen.size() << "\n" << prom.output();
  // The target is up, and a histogram can be queried as operators do.
  auto up = query("up{job=\"aspen\"}");
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0]["value"][1], "1");
  auto fsyncs = query("sum(aspen_storage_log_write_duration_seconds_count)");
  ASSERT_EQ(fsyncs.size(), 1u);
  EXPECT_GT(std::stod(fsyncs[0]["value"][1].get<std::string>()), 0);
  ASSERT_TRUE(wait_until([&] { return query("histogram_quantile(0.99, sum by (le) (rate(aspen_storage_log_write_duration_seconds_bucket[1m])))").size() == 1u; },
                         60000));
}

}  // namespace
}  // namespace aspen::testing
