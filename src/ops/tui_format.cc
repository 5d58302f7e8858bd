#include "ops/tui_format.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

namespace aspen::ops {

char member_marker(const MemberView& m) {
  if (!m.is_online) return 'x';
  if (m.is_learner) return '~';
  if (m.role == "leader") return '*';
  if (m.role == "follower") return 'o';
  return '?';
}

std::string member_state(const MemberView& m) {
  if (!m.is_online) return "offline";
  if (m.is_learner) return "learner";
  return m.role.empty() ? "unknown" : m.role;
}

std::string sparkline(const std::deque<double>& points, size_t width) {
  static constexpr std::string_view kLevels = " _.-=*#";
  std::string out(width, ' ');
  if (width == 0 || points.empty()) return out;
  const size_t shown = std::min(width, points.size());
  const auto first = points.end() - static_cast<std::ptrdiff_t>(shown);
  double top = 0;
  for (auto it = first; it != points.end(); ++it) top = std::max(top, std::isfinite(*it) ? *it : 0.0);
  size_t col = width - shown;
  for (auto it = first; it != points.end(); ++it, ++col) {
    const double v = std::isfinite(*it) ? std::max(0.0, *it) : 0.0;
    size_t level = 0;
    if (top > 0 && v > 0) {
      level = 1 + static_cast<size_t>(std::floor(v / top * static_cast<double>(kLevels.size() - 2)));
      level = std::min(level, kLevels.size() - 1);
    }
    out[col] = kLevels[level];
  }
  return out;
}

std::string format_ago(std::optional<double> seconds) {
  if (!seconds) return "never";
  const double s = std::max(0.0, *seconds);
  if (s < 10) return fmt::format("{:.1f}s ago", s);
  if (s < 120) return fmt::format("{:.0f}s ago", s);
  if (s < 7200) return fmt::format("{:.0f}m ago", s / 60);
  return fmt::format("{:.0f}h ago", s / 3600);
}

std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (bytes >= 1024 && u + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[u]);
}

std::string format_seconds(double seconds) {
  if (!(seconds > 0)) return "0";
  if (seconds < 0.001) return fmt::format("{:.0f}us", seconds * 1e6);
  if (seconds < 1) return fmt::format("{:.1f}ms", seconds * 1e3);
  return fmt::format("{:.2f}s", seconds);
}

bool is_printable_text(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u < 0x7f) || c == '\t';
  });
}

std::string format_value(std::string_view value, size_t max_chars) {
  if (is_printable_text(value)) {
    if (value.size() <= max_chars) return std::string(value);
    return std::string(value.substr(0, max_chars > 3 ? max_chars - 3 : 0)) + "...";
  }
  std::string out;
  for (size_t i = 0; i < value.size() && out.size() < max_chars; ++i) {
    if (i > 0) out += (i % 16 == 0) ? '\n' : ' ';
    out += fmt::format("{:02x}", static_cast<unsigned char>(value[i]));
  }
  return out;
}

std::string format_log_time(uint64_t time_ms, bool with_date) {
  const std::time_t t = static_cast<std::time_t>(time_ms / 1000);
  std::tm utc{};
  gmtime_r(&t, &utc);
  const auto ms = time_ms % 1000;
  if (!with_date) return fmt::format("{:02}:{:02}:{:02}.{:03}", utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
}

std::string log_level_tag(std::string_view level) {
  if (level == "trace") return "TRACE";
  if (level == "debug") return "DEBUG";
  if (level == "info") return "INFO ";
  if (level == "warning" || level == "warn") return "WARN ";
  if (level == "error" || level == "err") return "ERROR";
  if (level == "critical") return "CRIT ";
  return "?    ";
}

std::string printable_log_text(std::string_view message, bool keep_utf8) {
  std::string out(message);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || (!keep_utf8 && u >= 0x80)) c = '?';
  }
  return out;
}

}  // namespace aspen::ops
