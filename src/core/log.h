// Logging facade over spdlog.
//
// Modules log through these macros so the sink, level and format are chosen in one place
// (the binary's main), and so the deterministic core can be silenced in simulation, where
// millions of events would otherwise drown the one line that matters.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace aspen::log {
// Sets the global level from a name: trace, debug, info, warn, error, off.
// Returns false (and leaves the level alone) for an unknown name.
bool set_level(std::string_view level_name);
}  // namespace aspen::log

#define ASPEN_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define ASPEN_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define ASPEN_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define ASPEN_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define ASPEN_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
