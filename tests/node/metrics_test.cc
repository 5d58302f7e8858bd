// prometheus_text: the metrics page is valid Prometheus text exposition, one HELP/TYPE pair
// per metric, every sample labelled with the node id.
#include "node/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
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

TEST(Metrics, EveryMetricHasHelpTypeAndALabelledSample) {
  std::string text = prometheus_text(sample_view());
  std::istringstream lines(text);
  std::string line;
  std::set<std::string> helped, typed;
  std::map<std::string, std::string> samples;
  const std::regex help(R"(# HELP (aspen_[a-z_]+) .+)");
  const std::regex type(R"(# TYPE (aspen_[a-z_]+) (gauge|counter))");
  const std::regex sample(R"((aspen_[a-z_]+)\{node_id="7"(,[a-z]+="[^"]*")*\} (\d+))");
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, m, help)) {
      EXPECT_TRUE(helped.insert(m[1]).second) << "HELP twice: " << line;
    } else if (std::regex_match(line, m, type)) {
      EXPECT_TRUE(typed.insert(m[1]).second) << "TYPE twice: " << line;
    } else if (std::regex_match(line, m, sample)) {
      samples[m[1]] = m[3];
    } else {
      ADD_FAILURE() << "not Prometheus text: " << line;
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
