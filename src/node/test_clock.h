// The test-only clock offset (docs/operations.md "Clocks", "Testing with a wrong clock"):
// how far this node pretends its wall clock is off. --test-clock-offset-ms sets it at start;
// --test-clock-offset-file names a file whose integer milliseconds the node re-reads every
// ~200 ms while it runs, so a test (the chaos harness's clock nemesis) can make the clock
// jump or drift under a running node. Both are off by default, and nothing that arrives over
// the network can change the offset: only someone who may write that file on the node's host.
//
// The offset lives in one atomic (NodeEnv::test_clock_offset_ms) that the wall-clock
// function reads, so any thread may read the clock while the loop thread changes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace aspen::node {

// A test clock a day off either way covers any test of drift.
inline constexpr int64_t kMaxTestClockOffsetMs = 86'400'000;
// The offset file holds one number and a newline; anything longer is not an offset.
inline constexpr size_t kMaxTestClockOffsetFileBytes = 64;
// How often a node re-reads its offset file.
inline constexpr uint64_t kTestClockOffsetPollMs = 200;

// "-700", "+300", "300" -> milliseconds, within +-kMaxTestClockOffsetMs; nothing else
// (no spaces, units or hex).
std::optional<int64_t> parse_test_clock_offset_ms(std::string_view text);

// The content of an offset file: one number as above, with blanks or newlines around it.
// InvalidArgument, saying what is wrong, for anything else.
Result<int64_t> parse_test_clock_offset_file(std::string_view content);

// Reads the offset file at `path`: nullopt when it does not exist (the node then uses its
// start value, --test-clock-offset-ms), the offset when it holds a valid one, else an error
// that says why (not a regular file, unreadable, too long, not a number, out of range).
Result<std::optional<int64_t>> read_test_clock_offset_file(const std::string& path);

// Polls the offset file and stores what it says into `offset_ms`. A missing file means the
// start value; bad content keeps the offset it had and is reported (once per distinct
// problem, so a file left broken does not flood the log). [loop]
class TestClockOffsetFile {
 public:
  struct Change {
    std::optional<int64_t> new_offset_ms;  // set when the offset changed
    std::optional<std::string> error;      // set when the file is newly bad (or bad differently)
  };

  TestClockOffsetFile(std::string path, int64_t start_offset_ms, std::atomic<int64_t>& offset_ms)
      : path_(std::move(path)), start_offset_ms_(start_offset_ms), offset_ms_(offset_ms) {}

  Change poll();
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  const int64_t start_offset_ms_;
  std::atomic<int64_t>& offset_ms_;
  std::string last_error_;
};

}  // namespace aspen::node
