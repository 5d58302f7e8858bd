// ops/tui_format: what the terminal UI prints for markers, sparklines, ages, sizes, values.
#include "ops/tui_format.h"

#include <gtest/gtest.h>

#include <limits>

namespace aspen::ops {
namespace {

TEST(TuiFormat, MarkersNameLeaderFollowerLearnerAndOffline) {
  MemberView m;
  m.is_online = true;
  m.role = "leader";
  EXPECT_EQ(member_marker(m), '*');
  m.role = "follower";
  EXPECT_EQ(member_marker(m), 'o');
  m.is_learner = true;
  EXPECT_EQ(member_marker(m), '~');
  EXPECT_EQ(member_state(m), "learner");
  m.is_online = false;
  EXPECT_EQ(member_marker(m), 'x');
  EXPECT_EQ(member_state(m), "offline");
  m = MemberView{};
  m.is_online = true;
  m.role = "candidate";
  EXPECT_EQ(member_marker(m), '?');
}

TEST(TuiFormat, SparklineScalesToTheLargestPointAndKeepsItsWidth) {
  std::deque<double> points = {0, 1, 2, 4, 8};
  EXPECT_EQ(sparkline(points, 5), " _.-#");
  EXPECT_EQ(sparkline(points, 8), "    _.-#");     // right-aligned: newest at the right edge
  EXPECT_EQ(sparkline(points, 2), "-#");          // only the newest that fit
  EXPECT_EQ(sparkline({}, 3), "   ");
  EXPECT_EQ(sparkline({0, 0}, 2), "  ");
  EXPECT_EQ(sparkline({std::numeric_limits<double>::quiet_NaN(), 1}, 2), " #");
}

TEST(TuiFormat, AgesSizesDurationsAndValues) {
  EXPECT_EQ(format_ago(0.5), "0.5s ago");
  EXPECT_EQ(format_ago(42), "42s ago");
  EXPECT_EQ(format_ago(600), "10m ago");
  EXPECT_EQ(format_ago(std::nullopt), "never");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_seconds(0.00042), "420us");
  EXPECT_EQ(format_seconds(0.012), "12.0ms");
  EXPECT_EQ(format_seconds(1.5), "1.50s");
  EXPECT_EQ(format_value("hello", 10), "hello");
  EXPECT_EQ(format_value("hello world", 8), "hello...");
  EXPECT_EQ(format_value(std::string("\x00\xff\x10", 3), 100), "00 ff 10");
  EXPECT_FALSE(is_printable_text("a\nb"));
}

TEST(TuiFormat, LogLinesShowUtcTimeATagAndOneLineOfText) {
  // 2026-12-03 13:05:56.123 UTC
  EXPECT_EQ(format_log_time(1796303156123, true), "2026-12-03 13:05:56.123");
  EXPECT_EQ(format_log_time(1796303156123, false), "13:05:56.123");
  EXPECT_EQ(log_level_tag("warning"), "WARN ");
  EXPECT_EQ(log_level_tag("error"), "ERROR");
  EXPECT_EQ(log_level_tag("info"), "INFO ");
  EXPECT_EQ(printable_log_text("a\nb\x1b[2J", true), "a?b?[2J");
  EXPECT_EQ(printable_log_text("caf\xc3\xa9", true), "caf\xc3\xa9");
  EXPECT_EQ(printable_log_text("caf\xc3\xa9", false), "caf??");
}

}  // namespace
}  // namespace aspen::ops
