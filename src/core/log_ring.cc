#include "core/log_ring.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "core/limits.h"

namespace aspen::log {

LogRing::LogRing() : LogRing(limits::kMaxRecentLogLines, limits::kMaxRecentLogBytes, limits::kMaxRecentLogLineBytes) {}

LogRing::LogRing(size_t max_lines, size_t max_bytes, size_t max_line_bytes)
    : max_lines_(std::max<size_t>(max_lines, 1)),
      max_bytes_(std::max<size_t>(max_bytes, 1)),
      max_line_bytes_(std::min(std::max<size_t>(max_line_bytes, 1), std::max<size_t>(max_bytes, 1))) {}

void LogRing::add(uint64_t time_ms, spdlog::level::level_enum level, std::string_view message) {
  std::lock_guard lock(mutex_);
  add_locked(time_ms, level, message);
}

void LogRing::add_locked(uint64_t time_ms, spdlog::level::level_enum level, std::string_view message) {
  message = message.substr(0, max_line_bytes_);
  while (!lines_.empty() && (lines_.size() >= max_lines_ || bytes_ + message.size() > max_bytes_)) {
    bytes_ -= lines_.front().message.size();
    lines_.pop_front();
  }
  lines_.push_back(RecentLine{time_ms, level, std::string(message)});
  bytes_ += message.size();
}

void LogRing::sink_it_(const spdlog::details::log_msg& msg) {
  // base_sink holds mutex_ here.
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
  add_locked(static_cast<uint64_t>(std::max<int64_t>(ms, 0)), msg.level,
             std::string_view(msg.payload.data(), msg.payload.size()));
}

std::vector<RecentLine> LogRing::recent(size_t max_lines, spdlog::level::level_enum min_level) {
  std::lock_guard lock(mutex_);
  std::vector<RecentLine> out;
  for (auto it = lines_.rbegin(); it != lines_.rend() && out.size() < max_lines; ++it) {
    if (it->level >= min_level) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

size_t LogRing::size() {
  std::lock_guard lock(mutex_);
  return lines_.size();
}

size_t LogRing::bytes() {
  std::lock_guard lock(mutex_);
  return bytes_;
}

namespace {
std::mutex g_ring_mutex;
std::shared_ptr<LogRing> g_ring;
}  // namespace

std::shared_ptr<LogRing> install_recent_log_ring() {
  std::lock_guard lock(g_ring_mutex);
  if (!g_ring) {
    g_ring = std::make_shared<LogRing>();
    spdlog::default_logger()->sinks().push_back(g_ring);
  }
  return g_ring;
}

std::shared_ptr<LogRing> recent_log_ring() {
  std::lock_guard lock(g_ring_mutex);
  return g_ring;
}

}  // namespace aspen::log
