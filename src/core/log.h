// Logging facade over spdlog.
//
// Modules log through these macros so the sink, level and format are chosen in one place
// (the binary's main), and so the deterministic core can be silenced in simulation, where
// millions of events would otherwise drown the one line that matters.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace aspen::log {
// Sets the global level from a name: trace, debug, info, warn, error, off.
// Returns false (and leaves the level alone) for an unknown name.
bool set_level(std::string_view level_name);

// How lines look: "text" (a timestamp, the level and "node <id>" before the message) or
// "json" (one object a line for log shippers: ts (UTC, ms), level, node_id, thread, msg).
// node_id 0 leaves it out of text lines (tools that are not a node). False (and nothing
// changed) for an unknown format name.
bool set_format(std::string_view format_name, uint64_t node_id);

// A message as a JSON string literal's contents: quotes, backslashes and control bytes
// escaped (RFC 8259); other bytes as they are.
std::string json_escape(std::string_view text);
}  // namespace aspen::log

#define ASPEN_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define ASPEN_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define ASPEN_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define ASPEN_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define ASPEN_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
