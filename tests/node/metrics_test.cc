// prometheus_text: the metrics page is valid Prometheus text exposition, one HELP/TYPE pair
// per metric, every sample labelled with the node id.
#include "node/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace aspen::node {
namespace {

MetricsView sample_view() {
  MetricsView v;
  v.node_id = 7;
  v.term = 4;
  v.leader = 7;
  v.is_leader = true;
  v.commit = 120;
  v.applied = 118;
  v.storage_log_writes = 33;
  v.transport.peer_rtts.push_back(transport::PeerRtt{});
  return v;
}

// A metric name: aspen_ and lower-case letters or underscores.
bool is_metric_name(std::string_view s) {
  if (!s.starts_with("aspen_") || s.size() == 6) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// (std::regex would do, but GCC 12 warns inside it under the sanitizers.)
TEST(Metrics, EveryMetricHasHelpTypeAndALabelledSample) {
  std::string text = prometheus_text(sample_view());
  std::istringstream lines(text);
  std::string line;
  std::set<std::string> helped, typed;
  std::map<std::string, std::string> samples;
  while (std::getline(lines, line)) {
    std::string_view l = line;
    if (l.starts_with("# HELP ")) {
      l.remove_prefix(7);
      auto name = l.substr(0, l.find(' '));
      EXPECT_TRUE(is_metric_name(name) && name.size() + 1 < l.size()) << line;
      EXPECT_TRUE(helped.insert(std::string(name)).second) << "HELP twice: " << line;
    } else if (l.starts_with("# TYPE ")) {
      l.remove_prefix(7);
      auto name = l.substr(0, l.find(' '));
      auto type = l.substr(name.size() + 1);
      EXPECT_TRUE(is_metric_name(name)) << line;
      EXPECT_TRUE(type == "gauge" || type == "counter") << line;
      EXPECT_TRUE(typed.insert(std::string(name)).second) << "TYPE twice: " << line;
    } else {
      auto brace = l.find('{');
      auto close = l.find("} ");
      ASSERT_TRUE(brace != std::string_view::npos && close != std::string_view::npos && close > brace)
          << "not Prometheus text: " << line;
      auto name = l.substr(0, brace);
      auto labels = l.substr(brace + 1, close - brace - 1);
      auto value = l.substr(close + 2);
      EXPECT_TRUE(is_metric_name(name)) << line;
      EXPECT_TRUE(labels.starts_with("node_id=\"7\"")) << line;
      EXPECT_TRUE(is_digits(value)) << line;
      samples[std::string(name)] = std::string(value);
    }
  }
  EXPECT_EQ(helped, typed);
  for (const auto& [name, value] : samples) EXPECT_TRUE(typed.contains(name)) << name;
  EXPECT_EQ(samples.size(), typed.size());  // no metric without a sample
  EXPECT_EQ(samples["aspen_raft_term"], "4");
  EXPECT_EQ(samples["aspen_raft_is_leader"], "1");
  EXPECT_EQ(samples["aspen_raft_applied_index"], "118");
  EXPECT_EQ(samples["aspen_storage_log_writes_total"], "33");
}

TEST(Metrics, CountersAreReadIntoTheView) {
  NodeCounters c;
  c.client_requests = 5;
  c.raft_refused = 2;
  MetricsView v;
  read_counters(c, v);
  EXPECT_EQ(v.client_requests, 5u);
  EXPECT_EQ(v.raft_refused, 2u);
}

}  // namespace
}  // namespace aspen::node
