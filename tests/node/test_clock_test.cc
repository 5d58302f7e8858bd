// The test-only clock offset file (node/test_clock.h): what a node accepts from it, what it
// refuses and says, and that a bad or missing file never leaves the offset somewhere odd.
#include "node/test_clock.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace aspen::node {
namespace {

class TestClockFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/aspen-test-clock-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/offset";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& content) {
    // Written beside and renamed, as the chaos harness does: a reader sees old or new.
    std::ofstream(path_ + ".tmp", std::ios::binary) << content;
    std::filesystem::rename(path_ + ".tmp", path_);
  }
  std::string dir_;
  std::string path_;
};

TEST(TestClockOffset, ParsesSignedMillisecondsWithinADay) {
  EXPECT_EQ(parse_test_clock_offset_ms("-700"), -700);
  EXPECT_EQ(parse_test_clock_offset_ms("+300"), 300);
  EXPECT_EQ(parse_test_clock_offset_ms("0"), 0);
  EXPECT_EQ(parse_test_clock_offset_ms("86400000"), 86'400'000);
  EXPECT_EQ(parse_test_clock_offset_ms("-86400000"), -86'400'000);
  for (const char* bad : {"", "86400001", "-86400001", "+-5", "--5", "5s", " 5", "0x10", "1e3", "-", "+",
                          "99999999999999999999"}) {
    EXPECT_EQ(parse_test_clock_offset_ms(bad), std::nullopt) << bad;
  }
}

TEST(TestClockOffset, AFileMayHaveBlanksAroundItsNumber) {
  EXPECT_EQ(parse_test_clock_offset_file("2000\n").value(), 2000);
  EXPECT_EQ(parse_test_clock_offset_file("  -30000 \r\n").value(), -30000);
  auto bad = parse_test_clock_offset_file("2 s\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "must hold one whole number of milliseconds from -86400000 to 86400000 (e.g. -2000), holds '2 s'");
  auto empty = parse_test_clock_offset_file("\n");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message().find("holds ''"), std::string::npos);
  // What is shown of hostile content is short and printable.
  auto binary = parse_test_clock_offset_file(std::string("\x01\x1b[2J") + std::string(100, 'x'));
  ASSERT_FALSE(binary);
  EXPECT_NE(binary.error().message().find("holds '??[2Jxxxxxxxxxxxxxxxxxxxxxxxxxxx'..."), std::string::npos)
      << binary.error().message();
}

RC_GTEST_PROP(TestClockOffset, AnyContentIsEitherAnOffsetInRangeOrAnError, (const std::string& content)) {
  auto ms = parse_test_clock_offset_file(content);
  if (ms) {
    RC_ASSERT(*ms >= -kMaxTestClockOffsetMs);
    RC_ASSERT(*ms <= kMaxTestClockOffsetMs);
  } else {
    RC_ASSERT(!ms.error().message().empty());
    RC_ASSERT(ms.error().message().size() < 200u);
  }
}

RC_GTEST_PROP(TestClockOffset, EveryOffsetInRangeReadsBackAsWritten, ()) {
  const auto ms = *rc::gen::inRange<int64_t>(-kMaxTestClockOffsetMs, kMaxTestClockOffsetMs + 1);
  RC_ASSERT(parse_test_clock_offset_file(std::to_string(ms) + "\n").value() == ms);
}

TEST_F(TestClockFile, AMissingFileMeansTheStartOffset) {
  std::atomic<int64_t> offset{-700};
  TestClockOffsetFile file(path_, -700, offset);
  auto change = file.poll();
  EXPECT_FALSE(change.new_offset_ms);
  EXPECT_FALSE(change.error);
  EXPECT_EQ(offset.load(), -700);
}

TEST_F(TestClockFile, WritingTheFileMovesTheOffsetAndRemovingItGoesBack) {
  std::atomic<int64_t> offset{0};
  TestClockOffsetFile file(path_, 0, offset);
  write("30000\n");
  EXPECT_EQ(file.poll().new_offset_ms, 30000);
  EXPECT_EQ(offset.load(), 30000);
  EXPECT_FALSE(file.poll().new_offset_ms);  // unchanged: nothing to say
  write("-2000");
  EXPECT_EQ(file.poll().new_offset_ms, -2000);
  std::filesystem::remove(path_);
  EXPECT_EQ(file.poll().new_offset_ms, 0);
  EXPECT_EQ(offset.load(), 0);
}

TEST_F(TestClockFile, BadContentKeepsTheLastOffsetAndIsReportedOnce) {
  std::atomic<int64_t> offset{0};
  TestClockOffsetFile file(path_, 0, offset);
  write("1500\n");
  file.poll();
  write("soon\n");
  auto first = file.poll();
  ASSERT_TRUE(first.error);
  EXPECT_NE(first.error->find("holds 'soon'"), std::string::npos) << *first.error;
  EXPECT_EQ(offset.load(), 1500);
  EXPECT_FALSE(file.poll().error);  // the same problem again: not repeated
  write("86400001\n");
  EXPECT_TRUE(file.poll().error);   // a different problem is
  EXPECT_EQ(offset.load(), 1500);
  write(std::string(200, '1'));
  auto too_long = file.poll();
  ASSERT_TRUE(too_long.error);
  EXPECT_EQ(*too_long.error, "is longer than 64 bytes; it should hold one number");
  write("-1500\n");
  auto fixed = file.poll();
  EXPECT_FALSE(fixed.error);
  EXPECT_EQ(fixed.new_offset_ms, -1500);
}

TEST_F(TestClockFile, ADirectoryOrAFifoIsRefusedWithoutBlocking) {
  std::atomic<int64_t> offset{0};
  std::filesystem::create_directory(path_);
  TestClockOffsetFile dir_file(path_, 0, offset);
  auto dir = dir_file.poll();
  ASSERT_TRUE(dir.error);
  EXPECT_EQ(*dir.error, "is not a regular file");
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  TestClockOffsetFile fifo_file(fifo, 0, offset);
  auto f = fifo_file.poll();
  ASSERT_TRUE(f.error);
  EXPECT_EQ(*f.error, "is not a regular file");
  EXPECT_EQ(offset.load(), 0);
}

}  // namespace
}  // namespace aspen::node
