// ops/exposition: reading, merging and rendering Prometheus text, as the adapter does with
// every member's page, and the quantile estimate the terminal UI shows.
#include "ops/exposition.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <set>

#include <fmt/format.h>

#include "node/metrics.h"

namespace aspen::ops {
namespace {

node::MetricsView view_of(uint64_t node_id, uint64_t term, uint64_t fsync_us) {
  node::MetricsView v;
  v.node_id = node_id;
  v.term = term;
  node::LatencyHistogram h;
  h.observe_us(fsync_us);
  v.storage_log_write_latency = h.read();
  v.transport.peer_rtts.push_back(transport::PeerRtt{});
  return v;
}

TEST(Exposition, ParsesFamiliesSamplesAndLabels) {
  auto page = parse_exposition(
      "# HELP a_total Things.\n# TYPE a_total counter\na_total{node_id=\"1\",path=\"x\\\"y\\\\z\\n\"} 12\n"
      "# a comment\n\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 3 1700000000000\n"
      "h_sum 2.5\nh_count 3\nbare 1e3\n");
  ASSERT_TRUE(page.has_value()) << page.error().to_string();
  ASSERT_EQ(page->families.size(), 3u);
  EXPECT_EQ(page->families[0].name, "a_total");
  EXPECT_EQ(page->families[0].help, "Things.");
  EXPECT_EQ(page->families[0].type, "counter");
  ASSERT_EQ(page->families[0].samples.size(), 1u);
  EXPECT_EQ(label_value(page->families[0].samples[0], "path"), "x\"y\\z\n");
  EXPECT_EQ(page->families[1].type, "histogram");
  EXPECT_EQ(page->families[1].samples.size(), 4u);  // buckets, sum and count belong to h
  EXPECT_EQ(page->families[2].type, "untyped");
  EXPECT_EQ(sample_value(*page, "bare"), 1000.0);
  EXPECT_EQ(sample_value(*page, "a_total", {{"node_id", "1"}}), 12.0);
  EXPECT_FALSE(sample_value(*page, "a_total", {{"node_id", "2"}}).has_value());
  EXPECT_EQ(sample_value(*page, "h_bucket", {{"le", "+Inf"}}), 3.0);
}

TEST(Exposition, MalformedTextIsRefusedNamingTheLine) {
  for (const char* bad : {"x{a=\"1\" 2\n", "x{a=1} 2\n", "x 1 2 3\n", "x\n", "x abc\n", "{a=\"b\"} 1\n",
                          "# TYPE x sometimes\n", "# TYPE 9x gauge\n", "x{a=\"\\q\"} 1\n", "x{=\"1\"} 1\n"}) {
    auto page = parse_exposition(bad);
    ASSERT_FALSE(page.has_value()) << bad;
    EXPECT_EQ(page.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(page.error().message().find("line 1"), std::string::npos) << page.error().message();
  }
}

TEST(Exposition, PagesOverTheLimitsAreRefusedNamingTheLimit) {
  auto big = parse_exposition(std::string(kMaxExpositionBytes + 1, '#'));
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), ErrorCode::kMessageTooLarge);
  EXPECT_NE(big.error().message().find("kMaxExpositionBytes"), std::string::npos);

  std::string many;
  for (size_t i = 0; i <= kMaxExpositionSamples; ++i) many += "x 1\n";
  auto counted = parse_exposition(many);
  ASSERT_FALSE(counted.has_value());
  EXPECT_NE(counted.error().message().find("kMaxExpositionSamples"), std::string::npos);

  std::string labels = "x{";
  for (size_t i = 0; i <= kMaxLabelsPerSample; ++i) labels += fmt::format("l{}=\"v\",", i);
  auto labelled = parse_exposition(labels + "} 1\n");
  ASSERT_FALSE(labelled.has_value());
  EXPECT_NE(labelled.error().message().find("kMaxLabelsPerSample"), std::string::npos);
}

// Three members' real pages merge into one page with each family once, every member's
// samples in it, and nothing repeated; merging a page twice adds nothing.
TEST(Exposition, MergedMemberPagesHoldEachFamilyOnce) {
  Exposition merged;
  size_t samples = 0;
  std::set<std::string> families;
  for (uint64_t id : {1, 2, 3}) {
    auto page = parse_exposition(node::prometheus_text(view_of(id, 5, 200 * id)));
    ASSERT_TRUE(page.has_value()) << page.error().to_string();
    samples += page->sample_count();
    for (const auto& f : page->families) families.insert(f.name);
    ASSERT_TRUE(merge_into(merged, std::move(*page)).has_value());
  }
  EXPECT_EQ(merged.sample_count(), samples);
  EXPECT_EQ(merged.families.size(), families.size());
  auto again = parse_exposition(node::prometheus_text(view_of(2, 5, 400)));
  ASSERT_TRUE(merge_into(merged, std::move(*again)).has_value());
  EXPECT_EQ(merged.sample_count(), samples);

  auto reread = parse_exposition(render(merged));
  ASSERT_TRUE(reread.has_value()) << reread.error().to_string();
  EXPECT_EQ(reread->sample_count(), samples);
  EXPECT_EQ(reread->families.size(), families.size());
  for (const char* id : {"1", "2", "3"}) {
    EXPECT_EQ(sample_value(*reread, "aspen_raft_term", {{"node_id", id}}), 5.0) << id;
    EXPECT_EQ(sample_value(*reread, "aspen_storage_log_write_duration_seconds_count", {{"node_id", id}}), 1.0) << id;
  }
}

TEST(Exposition, MergeStopsAtTheSampleLimit) {
  std::string text;
  for (size_t i = 0; i < kMaxExpositionSamples; ++i) text += fmt::format("x{{i=\"{}\"}} 1\n", i);
  auto first = parse_exposition(text);
  ASSERT_TRUE(first.has_value());
  Exposition merged;
  ASSERT_TRUE(merge_into(merged, std::move(*first)).has_value());
  auto more = parse_exposition("y 1\n");
  auto s = merge_into(merged, std::move(*more));
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("kMaxExpositionSamples"), std::string::npos);
  EXPECT_EQ(merged.sample_count(), kMaxExpositionSamples);
}

TEST(Exposition, HistogramQuantileInterpolatesWithinTheBucket) {
  auto page = parse_exposition(
      "# TYPE h histogram\n"
      "h_bucket{op=\"a\",le=\"0.1\"} 50\nh_bucket{op=\"a\",le=\"0.2\"} 90\nh_bucket{op=\"a\",le=\"+Inf\"} 100\n"
      "h_bucket{op=\"b\",le=\"0.1\"} 0\nh_bucket{op=\"b\",le=\"0.2\"} 0\nh_bucket{op=\"b\",le=\"+Inf\"} 0\n");
  ASSERT_TRUE(page.has_value());
  auto a = histogram_buckets(*page, "h", {{"op", "a"}});
  ASSERT_EQ(a.size(), 3u);
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.5, a), 0.1);
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.7, a), 0.15);
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.99, a), 0.2);  // in +Inf: the highest finite bound
  EXPECT_FALSE(histogram_quantile(0.5, histogram_buckets(*page, "h", {{"op", "b"}})).has_value());
  auto both = histogram_buckets(*page, "h");  // summed over op
  EXPECT_EQ(both.back().count, 100);
  auto delta = bucket_deltas(a, a);
  EXPECT_FALSE(histogram_quantile(0.5, delta).has_value());  // nothing new since
}

// Hostile pages: any bytes parse or fail cleanly, and what parses renders to a page that
// parses to the same samples (the adapter re-serves what members send).
RC_GTEST_PROP(ExpositionProperty, AnyBytesParseOrFailCleanly, (std::string bytes)) {
  auto page = parse_exposition(bytes);
  if (!page) {
    RC_ASSERT(page.error().code() == ErrorCode::kInvalidArgument ||
              page.error().code() == ErrorCode::kMessageTooLarge);
    return;
  }
  RC_ASSERT(page->sample_count() <= kMaxExpositionSamples);
  Exposition merged;
  const size_t n = page->sample_count();
  RC_ASSERT(merge_into(merged, std::move(*page)).has_value());
  RC_ASSERT(merged.sample_count() <= n);
  auto again = parse_exposition(render(merged));
  RC_ASSERT(again.has_value());
  RC_ASSERT(again->sample_count() == merged.sample_count());
}

// Pages made of lines that look right (names, labels with escapes, values) in any order.
RC_GTEST_PROP(ExpositionProperty, LineShapedInputRoundTrips, ()) {
  const auto lines = *rc::gen::container<std::vector<std::string>>(rc::gen::oneOf(
      rc::gen::element<std::string>("# HELP m_total A counter.", "# TYPE m_total counter", "# TYPE h histogram",
                                    "# TYPE g gauge", "# just a comment", ""),
      rc::gen::map(rc::gen::tuple(rc::gen::element<std::string>("m_total", "h_bucket", "h_sum", "g", "other"),
                                  rc::gen::inRange(0, 5), rc::gen::element<std::string>("a", "q\\\"", "\\\\", "\\n")),
                   [](const std::tuple<std::string, int, std::string>& t) {
                     return fmt::format("{}{{node_id=\"{}\",v=\"{}\"}} {}", std::get<0>(t), std::get<1>(t),
                                        std::get<2>(t), std::get<1>(t) * 1.5);
                   })));
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  auto page = parse_exposition(text);
  RC_ASSERT(page.has_value());
  Exposition merged;
  RC_ASSERT(merge_into(merged, std::move(*page)).has_value());
  auto again = parse_exposition(render(merged));
  RC_ASSERT(again.has_value());
  RC_ASSERT(again->sample_count() == merged.sample_count());
  std::set<std::string> names;
  for (const auto& f : again->families) RC_ASSERT(names.insert(f.name).second);  // each family once
}

}  // namespace
}  // namespace aspen::ops
