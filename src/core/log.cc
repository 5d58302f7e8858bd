#include "core/log.h"

#include <chrono>
#include <ctime>
#include <iterator>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <spdlog/formatter.h>

namespace aspen::log {

namespace {

// One JSON object a line: what log shippers (journald's JSON export, Vector, Fluent Bit,
// Promtail) parse without a custom pattern.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(uint64_t node_id) : node_id_(node_id) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs).count();
    const std::time_t t = static_cast<std::time_t>(secs.count());
    std::tm utc{};
    gmtime_r(&t, &utc);
    const auto level = spdlog::level::to_string_view(msg.level);
    fmt::format_to(std::back_inserter(dest),
                   "{{\"ts\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"node_id\":{},"
                   "\"thread\":{},\"msg\":\"{}\"}}\n",
                   utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms,
                   std::string_view(level.data(), level.size()), node_id_, msg.thread_id,
                   json_escape(std::string_view(msg.payload.data(), msg.payload.size())));
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(node_id_); }

 private:
  const uint64_t node_id_;
};

}  // namespace

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

bool set_format(std::string_view format_name, uint64_t node_id) {
  if (format_name == "json") {
    spdlog::set_formatter(std::make_unique<JsonFormatter>(node_id));
    return true;
  }
  if (format_name == "text") {
    // spdlog's default line, with the node id after the level.
    spdlog::set_pattern(node_id == 0 ? "[%Y-%m-%d %H:%M:%S.%e] [%l] [%s:%#] %v"
                                     : fmt::format("[%Y-%m-%d %H:%M:%S.%e] [%l] [node {}] [%s:%#] %v", node_id));
    return true;
  }
  return false;
}

bool set_level(std::string_view level_name) {
  auto level = spdlog::level::from_str(std::string(level_name));
  // from_str maps unknown names to "off"; only accept "off" when it was asked for.
  if (level == spdlog::level::off && level_name != "off") return false;
  spdlog::set_level(level);
  return true;
}
}  // namespace aspen::log
