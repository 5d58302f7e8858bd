// Text helpers of the terminal UI, pure so they are unit-tested without a terminal: the node
// markers, sparklines, "0.5s ago", sizes and durations, and hex views of values.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "ops/cluster_poll.h"

namespace aspen::ops {

// `*` leader, `o` follower, `~` learner, `x` offline, `?` anything else (a candidate).
char member_marker(const MemberView& m);
// "leader", "follower", "learner", "offline", or the Raft role as reported.
std::string member_state(const MemberView& m);

// The last `width` points as a sparkline of ASCII levels " _.-=*#" (low to high), scaled to
// the largest point shown; empty points are spaces. ASCII so that every terminal (and
// tmux capture-pane) shows the same.
std::string sparkline(const std::deque<double>& points, size_t width);

// "0.5s ago", "12s ago", "3m ago", "never".
std::string format_ago(std::optional<double> seconds);
// 1536 -> "1.5 KiB".
std::string format_bytes(double bytes);
// 0.00042 -> "420us", 0.012 -> "12.0ms", 1.5 -> "1.50s".
std::string format_seconds(double seconds);
// Printable text as is (one line, cut at `max_chars`); otherwise hex bytes, 16 a line.
std::string format_value(std::string_view value, size_t max_chars);
bool is_printable_text(std::string_view value);

// A log line's time as UTC "2026-12-03 13:05:56.123" (with_date) or "13:05:56.123".
std::string format_log_time(uint64_t time_ms, bool with_date);
// A log level as spdlog names it ("warning", "error", ...) as a fixed 5-letter tag: "TRACE",
// "DEBUG", "INFO ", "WARN ", "ERROR", "CRIT ".
std::string log_level_tag(std::string_view level);
// A logged message on one line: control bytes (and, unless keep_utf8, every byte past ASCII,
// so a terminal column is a byte) become '?'.
std::string printable_log_text(std::string_view message, bool keep_utf8);

}  // namespace aspen::ops
