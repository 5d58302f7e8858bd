// A node's recent log lines, in memory, for an operator to read over the client protocol
// (GetLogs; aspen-cli node logs, the TUI's Logs view).
//
// LogRing keeps the newest lines within limits::kMaxRecentLogLines and kMaxRecentLogBytes
// (oldest dropped first); a message longer than kMaxRecentLogLineBytes is cut. It is an
// spdlog sink: install_recent_log_ring() adds one to the process's default logger, so it
// sees every line the logger's level lets through, whatever the output format.
//
// Threads: any (one mutex).
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace aspen::log {

struct RecentLine {
  uint64_t time_ms = 0;  // Unix epoch
  spdlog::level::level_enum level = spdlog::level::info;
  std::string message;
};

class LogRing final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Bounds default to the limits; tests pass small ones.
  LogRing();
  LogRing(size_t max_lines, size_t max_bytes, size_t max_line_bytes);

  // Adds one line (what the sink does for every log call).
  void add(uint64_t time_ms, spdlog::level::level_enum level, std::string_view message);
  // The newest lines at `min_level` or above, at most max_lines, oldest first.
  std::vector<RecentLine> recent(size_t max_lines, spdlog::level::level_enum min_level);
  // Lines and message bytes held now.
  size_t size();
  size_t bytes();

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  void add_locked(uint64_t time_ms, spdlog::level::level_enum level, std::string_view message);

  const size_t max_lines_;
  const size_t max_bytes_;
  const size_t max_line_bytes_;
  std::deque<RecentLine> lines_;  // oldest first
  size_t bytes_ = 0;
};

// Adds a LogRing to the default logger (once; later calls return the same ring). The node's
// main calls it; GetLogs answers from it.
std::shared_ptr<LogRing> install_recent_log_ring();
// The installed ring, or null when this process keeps none.
std::shared_ptr<LogRing> recent_log_ring();

}  // namespace aspen::log
