#include "auth/capability.h"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::auth {
namespace {

constexpr std::array<std::pair<std::string_view, Action>, 6> kActionNames = {{
    {"full", Action::kFull},
    {"read", Action::kRead},
    {"write", Action::kWrite},
    {"delete", Action::kDelete},
    {"delegate", Action::kDelegate},
    {"admin", Action::kAdmin},
}};

// Text quoted in an error: the user's own input, cut short so a pasted blob stays readable.
std::string quoted(std::string_view text) {
  constexpr size_t kMaxShownBytes = 64;
  if (text.size() <= kMaxShownBytes) return fmt::format("'{}'", text);
  return fmt::format("'{}...' ({} bytes)", text.substr(0, kMaxShownBytes), text.size());
}

}  // namespace

std::string_view action_name(Action action) noexcept {
  for (const auto& [name, a] : kActionNames) {
    if (a == action) return name;
  }
  ASPEN_UNREACHABLE();
}

bool is_prefix_scoped(Action action) noexcept {
  return action != Action::kAdmin && action != Action::kDelegate;
}

Status validate_capability(const Capability& capability) {
  if (!is_prefix_scoped(capability.action) && !capability.prefix.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} is not scoped to a key prefix, but has prefix {}",
                                  action_name(capability.action), quoted(capability.prefix)));
  }
  if (capability.prefix.size() > limits::kMaxKeySizeBytes) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("capability prefix is {} bytes; the limit is {} bytes (the key limit)",
                    capability.prefix.size(), limits::kMaxKeySizeBytes));
  }
  return {};
}

Result<Capability> parse_capability(std::string_view text) {
  if (text.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "empty capability (expected read:<prefix>, write:<prefix>, delete:<prefix>, "
                      "full:<prefix>, admin or delegate)");
  }
  const size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const Action* action = nullptr;
  for (const auto& [n, a] : kActionNames) {
    if (n == name) action = &a;
  }
  if (action == nullptr) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("unknown capability action {} in {} (expected read, write, delete, "
                    "full, admin or delegate)",
                    quoted(name), quoted(text)));
  }
  if (!is_prefix_scoped(*action)) {
    if (colon != std::string_view::npos) {
      return make_error(
          ErrorCode::kInvalidArgument,
          fmt::format("capability {}: {} is not scoped to a key prefix (write just '{}')",
                      quoted(text), name, name));
    }
    return Capability{*action, {}};
  }
  if (colon == std::string_view::npos) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("capability {} needs a key prefix: {}:<prefix> ({}: for every key)",
                    quoted(text), name, name));
  }
  Capability capability{*action, std::string(text.substr(colon + 1))};
  if (auto ok = validate_capability(capability); !ok) return std::unexpected(ok.error());
  return capability;
}

std::string format_capability(const Capability& capability) {
  if (!is_prefix_scoped(capability.action)) return std::string(action_name(capability.action));
  return fmt::format("{}:{}", action_name(capability.action), capability.prefix);
}

bool capability_covers(const Capability& parent, const Capability& child) noexcept {
  const bool is_action_covered = parent.action == child.action ||
                                 (parent.action == Action::kFull && is_prefix_scoped(child.action));
  // Admin and Delegate have empty prefixes, so the prefix test passes for them.
  return is_action_covered && child.prefix.starts_with(parent.prefix);
}

}  // namespace aspen::auth
