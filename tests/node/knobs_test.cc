// Knobs: the defaults are the documented behaviour, validation names the field, and the
// simulator only ever draws valid knobs.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "node/knobs.h"
#include "node/log_compaction.h"
#include "node/node_core.h"
#include "sim/simulation.h"
#include "storage/mem_store.h"

namespace aspen::node {
namespace {

// "name=value" pairs of describe(), which lists every knob.
std::map<std::string, std::string> knob_values(const Knobs& k) {
  std::map<std::string, std::string> out;
  std::istringstream in(describe(k));
  std::string pair;
  while (in >> pair) {
    const size_t eq = pair.find('=');
    out[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return out;
}

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  size_t begin = 0;
  for (size_t at; (at = text.find(sep, begin)) != std::string::npos; begin = at + sep.size()) {
    out.push_back(text.substr(begin, at - begin));
  }
  out.push_back(text.substr(begin));
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '`')) s.erase(s.begin());
  while (!s.empty() && (s.back() == ' ' || s.back() == '`')) s.pop_back();
  return s;
}

// docs/operations.md lists every knob with its default ("Tuning (knobs)"); a default that
// changes without the page, or a page row for a knob that does not exist, fails here.
TEST(Knobs, DefaultsAreTheDocumentedValues) {
  const std::string path = std::string(__FILE__).substr(0, std::string(__FILE__).rfind("tests/")) + "docs/operations.md";
  std::ifstream file(path);
  ASSERT_TRUE(file.is_open()) << path;
  auto values = knob_values(Knobs{});
  std::set<std::string> documented;
  bool is_in_section = false;
  for (std::string line; std::getline(file, line);) {
    if (line.starts_with("#")) is_in_section = line == "### Tuning (knobs)";
    if (!is_in_section || !line.starts_with("| `")) continue;
    auto cells = split(line, " | ");
    ASSERT_GE(cells.size(), 3u) << line;
    auto names = split(cells[0].substr(2), " / ");
    auto defaults = split(cells[1], " / ");
    ASSERT_EQ(names.size(), defaults.size()) << line;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string name = trim(names[i]);
      std::string want = trim(defaults[i]);
      if (want.ends_with(" MiB")) want = std::to_string(std::stoull(want) << 20);
      ASSERT_TRUE(values.contains(name)) << "docs name a knob that does not exist: " << name;
      EXPECT_EQ(values[name], want) << name;
      documented.insert(name);
    }
  }
  for (const auto& [name, value] : values) EXPECT_TRUE(documented.contains(name)) << "undocumented knob " << name;
  // And the flags' documented defaults (node_config.h, the configuration table).
  EXPECT_EQ(values["heartbeat_ms"], "100");
  EXPECT_EQ(values["election_timeout_ms"], "1000");
  EXPECT_TRUE(validate(Knobs{}).has_value());
  // 10 ms ticks: a heartbeat every 10 ticks, elections after 100 to 199.
  EXPECT_EQ(Knobs{}.heartbeat_ticks(), 10u);
  EXPECT_EQ(Knobs{}.election_ticks(), 100u);
}

TEST(Knobs, RaftTicksNeverRoundToZeroOrToTheHeartbeat) {
  Knobs k;
  k.tick_interval_ms = 100;
  k.heartbeat_ms = 150;
  k.election_timeout_ms = 450;
  EXPECT_EQ(k.heartbeat_ticks(), 1u);
  EXPECT_EQ(k.election_ticks(), 4u);
  k.election_timeout_ms = 150;  // invalid, but the tick counts still keep election > heartbeat
  EXPECT_GT(k.election_ticks(), k.heartbeat_ticks());
}

TEST(Knobs, ValidateNamesTheFieldThatIsOutOfRange) {
  struct Case {
    const char* field;
    void (*mutate)(Knobs&);
  };
  const Case cases[] = {
      {"tick_interval_ms", [](Knobs& k) { k.tick_interval_ms = 0; }},
      {"tick_interval_ms", [](Knobs& k) { k.tick_interval_ms = 5000; }},
      {"heartbeat_ms", [](Knobs& k) { k.heartbeat_ms = 5; }},
      {"election_timeout_ms", [](Knobs& k) { k.election_timeout_ms = 250; }},
      {"request_timeout_ms", [](Knobs& k) { k.request_timeout_ms = 0; }},
      {"lease_check_interval_ms", [](Knobs& k) { k.lease_check_interval_ms = 0; }},
      {"leader_silence_heartbeats", [](Knobs& k) { k.leader_silence_heartbeats = 0; }},
      {"storage_retry_delay_ms", [](Knobs& k) { k.storage_retry_delay_ms = 0; }},
      {"raft_dial_backoff_max_ms", [](Knobs& k) { k.raft_dial_backoff_max_ms = 10; }},
      {"max_pending_requests", [](Knobs& k) { k.max_pending_requests = 0; }},
      {"max_forwards_in_flight", [](Knobs& k) { k.max_forwards_in_flight = 0; }},
      {"max_queued_raft_messages_per_peer", [](Knobs& k) { k.max_queued_raft_messages_per_peer = 0; }},
      {"max_inflight_appends", [](Knobs& k) { k.max_inflight_appends = 0; }},
      {"max_append_bytes", [](Knobs& k) { k.max_append_bytes = uint64_t{64} << 20; }},
      {"compact_keep_entries", [](Knobs& k) { k.compact_keep_entries = k.compact_threshold_entries; }},
      {"compact_keep_bytes", [](Knobs& k) { k.compact_keep_bytes = k.compact_threshold_bytes + 1; }},
  };
  for (const Case& c : cases) {
    Knobs k;
    c.mutate(k);
    auto s = validate(k);
    ASSERT_FALSE(s.has_value()) << c.field;
    EXPECT_EQ(s.error().code(), ErrorCode::kConfigInvalid);
    EXPECT_NE(s.error().message().find(std::string("knob ") + c.field + ":"), std::string::npos)
        << c.field << ": " << s.error().message();
  }
}

TEST(Knobs, NodeCoreRefusesInvalidKnobs) {
  storage::MemStore store;
  NodeCoreConfig cfg;
  cfg.raft.id = 1;
  cfg.incarnation = 1;
  cfg.knobs.max_pending_requests = 0;
  auto core = NodeCore::create(cfg, store);
  ASSERT_FALSE(core.has_value());
  EXPECT_NE(core.error().message().find("max_pending_requests"), std::string::npos);
}

TEST(Knobs, CompactionFollowsTheKnobs) {
  Knobs k;
  EXPECT_EQ(compaction_point(1, 300, 300, 300 * 100, k), 0u) << "far below the default thresholds";
  k.compact_threshold_entries = 100;
  k.compact_keep_entries = 20;
  EXPECT_EQ(compaction_point(1, 300, 300, 300 * 100, k), 280u);
  k.compact_threshold_entries = 1000;
  k.compact_threshold_bytes = 10000;
  k.compact_keep_bytes = 2000;  // 100-byte entries: keep 20
  EXPECT_EQ(compaction_point(1, 300, 300, 300 * 100, k), 280u);
}

TEST(Knobs, SimulatorDrawsOnlyValidKnobsAndVariesThem) {
  bool saw_small_queue = false;
  bool saw_default_queue = false;
  bool saw_byte_compaction = false;
  bool saw_short_request_timeout = false;
  std::set<uint32_t> ticks;
  for (uint64_t seed = 1; seed <= 2000; ++seed) {
    Rng rng(seed);
    const uint64_t floor_ms = rng.range(0, 1500);
    const Knobs k = sim::draw_sim_knobs(rng, floor_ms);
    auto s = validate(k);
    ASSERT_TRUE(s.has_value()) << "seed " << seed << ": " << s.error().message() << "\n" << describe(k);
    EXPECT_GE(k.election_timeout_ms, std::min<uint64_t>(std::max<uint64_t>(floor_ms, 30), 3000)) << "seed " << seed;
    EXPECT_LE(k.compact_threshold_entries, 200u) << "compaction must happen in every run";
    saw_small_queue |= k.max_pending_requests < 10;
    saw_default_queue |= k.max_pending_requests == Knobs{}.max_pending_requests;
    saw_byte_compaction |= k.compact_threshold_bytes < Knobs{}.compact_threshold_bytes;
    saw_short_request_timeout |= k.request_timeout_ms < k.election_timeout_ms;
    ticks.insert(k.tick_interval_ms);
  }
  EXPECT_TRUE(saw_small_queue && saw_default_queue && saw_byte_compaction && saw_short_request_timeout);
  EXPECT_GE(ticks.size(), 3u);
}

TEST(Knobs, SimOptionsFromTheSameSeedDrawTheSameKnobs) {
  auto a = sim::SimOptions::from_seed(77, 1000, sim::FaultSet{});
  auto b = sim::SimOptions::from_seed(77, 1000, sim::FaultSet{});
  auto c = sim::SimOptions::from_seed(78, 1000, sim::FaultSet{});
  EXPECT_EQ(a.knobs, b.knobs);
  EXPECT_NE(a.knobs, c.knobs);
  EXPECT_NE(a.describe().find(describe(a.knobs)), std::string::npos) << "replay output shows the knobs";
}

}  // namespace
}  // namespace aspen::node
