#include "core/log_ring.h"

#include <gtest/gtest.h>

#include <spdlog/logger.h>

#include <string>

#include "core/limits.h"

namespace aspen::log {
namespace {

TEST(LogRingTest, KeepsTheNewestLinesWithinTheLineBound) {
  LogRing ring(5, 1 << 20, 100);
  for (int i = 0; i < 12; ++i) ring.add(static_cast<uint64_t>(i), spdlog::level::info, "line " + std::to_string(i));
  ASSERT_EQ(ring.size(), 5u);
  auto lines = ring.recent(100, spdlog::level::trace);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines.front().message, "line 7");  // oldest kept first
  EXPECT_EQ(lines.back().message, "line 11");
  EXPECT_EQ(lines.back().time_ms, 11u);
}

TEST(LogRingTest, KeepsTheNewestLinesWithinTheByteBoundAndCutsLongLines) {
  LogRing ring(1000, 100, 30);
  ring.add(1, spdlog::level::warn, std::string(500, 'x'));
  ASSERT_EQ(ring.size(), 1u);
  EXPECT_EQ(ring.bytes(), 30u);  // cut to the line bound
  for (int i = 0; i < 50; ++i) ring.add(2, spdlog::level::info, std::string(20, 'a'));
  EXPECT_LE(ring.bytes(), 100u);
  EXPECT_EQ(ring.size(), 5u);
  for (const auto& l : ring.recent(1000, spdlog::level::trace)) EXPECT_EQ(l.message, std::string(20, 'a'));
}

TEST(LogRingTest, FiltersByLevelAndCountsFromTheNewest) {
  LogRing ring(100, 1 << 20, 100);
  ring.add(1, spdlog::level::debug, "d1");
  ring.add(2, spdlog::level::warn, "w1");
  ring.add(3, spdlog::level::info, "i1");
  ring.add(4, spdlog::level::err, "e1");
  ring.add(5, spdlog::level::warn, "w2");
  auto warn = ring.recent(100, spdlog::level::warn);
  ASSERT_EQ(warn.size(), 3u);
  EXPECT_EQ(warn[0].message, "w1");
  EXPECT_EQ(warn[1].message, "e1");
  EXPECT_EQ(warn[2].message, "w2");
  auto last_two = ring.recent(2, spdlog::level::trace);
  ASSERT_EQ(last_two.size(), 2u);
  EXPECT_EQ(last_two[0].message, "e1");
  EXPECT_EQ(last_two[1].message, "w2");
  EXPECT_TRUE(ring.recent(100, spdlog::level::critical).empty());
}

TEST(LogRingTest, AsASinkItHoldsTheDefaultBoundsUnderAFlood) {
  auto ring = std::make_shared<LogRing>();
  spdlog::logger logger("ring_test", ring);
  logger.set_level(spdlog::level::trace);
  const std::string big(limits::kMaxRecentLogLineBytes * 2, 'z');
  for (size_t i = 0; i < limits::kMaxRecentLogLines * 3; ++i) {
    if (i % 7 == 3) {  // the last line (i = 5999) is an info line
      logger.error("{}", big);
    } else {
      logger.info("message {}", i);
    }
  }
  EXPECT_LE(ring->size(), limits::kMaxRecentLogLines);
  EXPECT_LE(ring->bytes(), limits::kMaxRecentLogBytes);
  auto lines = ring->recent(limits::kMaxRecentLogLines, spdlog::level::trace);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().message, fmt::format("message {}", limits::kMaxRecentLogLines * 3 - 1));
  for (const auto& l : lines) EXPECT_LE(l.message.size(), limits::kMaxRecentLogLineBytes);
  auto errors = ring->recent(10, spdlog::level::err);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.back().level, spdlog::level::err);
  EXPECT_EQ(errors.back().message.size(), limits::kMaxRecentLogLineBytes);
}

}  // namespace
}  // namespace aspen::log
