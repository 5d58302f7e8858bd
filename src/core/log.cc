#include "core/log.h"

#include <string>

namespace aspen::log {
bool set_level(std::string_view level_name) {
  auto level = spdlog::level::from_str(std::string(level_name));
  // from_str maps unknown names to "off"; only accept "off" when it was asked for.
  if (level == spdlog::level::off && level_name != "off") return false;
  spdlog::set_level(level);
  return true;
}
}  // namespace aspen::log
