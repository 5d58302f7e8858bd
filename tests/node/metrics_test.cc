// prometheus_text: the metrics page is valid Prometheus text exposition, one HELP/TYPE pair
// per metric family, every sample labelled with the node id, histograms cumulative.
// (promtool checks the page of a real node in tests/integration/prometheus_adapter_test.cc.)
#include "node/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

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
  LatencyHistogram fsync;
  fsync.observe_us(80);       // <= 100 us
  fsync.observe_us(100);      // <= 100 us (bounds are inclusive)
  fsync.observe_us(3'000);    // <= 5 ms
  fsync.observe_us(20'000'000);  // above every bound
  v.storage_log_write_latency = fsync.read();
  return v;
}

// A metric name: aspen_ and lower-case letters or underscores.
bool is_metric_name(std::string_view s) {
  if (!s.starts_with("aspen_") || s.size() == 6) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

bool is_number(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == '-'; });
}

// The family a sample belongs to: a histogram's _bucket, _sum and _count samples belong to it.
std::string family_of(std::string_view sample, const std::map<std::string, std::string>& types) {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (sample.ends_with(suffix)) {
      std::string base(sample.substr(0, sample.size() - suffix.size()));
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return std::string(sample);
}

// (std::regex would do, but GCC 12 warns inside it under the sanitizers.)
TEST(Metrics, EveryMetricHasHelpTypeAndALabelledSample) {
  std::string text = prometheus_text(sample_view());
  std::istringstream lines(text);
  std::string line;
  std::set<std::string> helped, typed;
  std::map<std::string, std::string> types;
  std::map<std::string, std::string> samples;
  std::set<std::string> sampled_families;
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
      EXPECT_TRUE(type == "gauge" || type == "counter" || type == "histogram") << line;
      EXPECT_TRUE(typed.insert(std::string(name)).second) << "TYPE twice: " << line;
      types[std::string(name)] = std::string(type);
      if (type == "counter") {
        EXPECT_TRUE(name.ends_with("_total")) << "a counter not named _total: " << line;
      }
      if (type == "histogram") {
        EXPECT_TRUE(name.ends_with("_seconds")) << "a latency not in seconds: " << line;
      }
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
      EXPECT_TRUE(is_number(value)) << line;
      EXPECT_EQ(name.find("microseconds"), std::string_view::npos) << "not in base units: " << line;
      samples[std::string(l.substr(0, close + 1))] = std::string(value);
      samples[std::string(name)] = std::string(value);
      sampled_families.insert(family_of(name, types));
    }
  }
  EXPECT_EQ(helped, typed);
  EXPECT_EQ(sampled_families, typed);  // every sample has a family, no family without a sample
  EXPECT_EQ(samples["aspen_raft_term"], "4");
  EXPECT_EQ(samples["aspen_raft_is_leader"], "1");
  EXPECT_EQ(samples["aspen_raft_applied_index"], "118");
  EXPECT_EQ(samples["aspen_storage_log_writes_total"], "33");
  // The fsync histogram: cumulative buckets, inclusive bounds, +Inf = count, sum in seconds.
  const std::string h = "aspen_storage_log_write_duration_seconds";
  EXPECT_EQ(samples[h + "_bucket{node_id=\"7\",le=\"0.0001\"}"], "2");
  EXPECT_EQ(samples[h + "_bucket{node_id=\"7\",le=\"0.0025\"}"], "2");
  EXPECT_EQ(samples[h + "_bucket{node_id=\"7\",le=\"0.005\"}"], "3");
  EXPECT_EQ(samples[h + "_bucket{node_id=\"7\",le=\"10\"}"], "3");
  EXPECT_EQ(samples[h + "_bucket{node_id=\"7\",le=\"+Inf\"}"], "4");
  EXPECT_EQ(samples[h + "_count{node_id=\"7\"}"], "4");
  EXPECT_EQ(samples[h + "_sum{node_id=\"7\"}"], "20.00318");
  // One latency histogram per client operation.
  for (const char* op : {"read", "batch_read", "scan", "write", "lease_list", "status", "admin"}) {
    EXPECT_EQ(samples[fmt::format("aspen_client_request_duration_seconds_count{{node_id=\"7\",op=\"{}\"}}", op)], "0")
        << op;
  }
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

TEST(Metrics, RequestLatencyIsReadPerKind) {
  NodeCounters c;
  c.request_latency[static_cast<size_t>(RequestKind::kWrite)].observe_us(1500);
  c.leader_changes = 3;
  MetricsView v;
  read_counters(c, v);
  EXPECT_EQ(v.request_latency[static_cast<size_t>(RequestKind::kWrite)].count(), 1u);
  EXPECT_EQ(v.request_latency[static_cast<size_t>(RequestKind::kWrite)].sum_us, 1500u);
  EXPECT_EQ(v.request_latency[static_cast<size_t>(RequestKind::kRead)].count(), 0u);
  EXPECT_EQ(v.leader_changes, 3u);
}

}  // namespace
}  // namespace aspen::node
