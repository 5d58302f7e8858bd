#include "auth/authorize.h"

#include <fmt/format.h>

#include "auth/internal/token_wire.h"

namespace aspen::auth {
namespace {

bool action_grants(Action granted, Action wanted) {
  return granted == wanted || (granted == Action::kFull && is_prefix_scoped(wanted));
}

// Whether [start, end) lies within [prefix, prefix_end(prefix)); "" as an end is +infinity.
bool range_within_prefix(std::string_view prefix, std::string_view start, std::string_view end) {
  if (start < prefix) return false;  // bytewise: char_traits<char> compares as unsigned char
  const std::string limit = prefix_end(prefix);
  if (limit.empty()) return true;  // the prefix reaches the end of the keyspace
  return !end.empty() && end <= limit;
}

}  // namespace

bool allows_key(const VerifiedToken& token, Action action, std::string_view key) {
  for (const Capability& c : token.capabilities) {
    if (!action_grants(c.action, action)) continue;
    if (!is_prefix_scoped(action) || key.starts_with(c.prefix)) return true;
  }
  return false;
}

bool allows_range(const VerifiedToken& token, Action action, std::string_view start,
                  std::string_view end) {
  for (const Capability& c : token.capabilities) {
    if (!action_grants(c.action, action)) continue;
    if (!is_prefix_scoped(action) || range_within_prefix(c.prefix, start, end)) return true;
  }
  return false;
}

std::string describe_missing(Action action, std::string_view key) {
  if (!is_prefix_scoped(action)) return fmt::format("missing capability {}", action_name(action));
  constexpr size_t kMaxShownKeyBytes = 128;
  return fmt::format("missing capability {}:{}", action_name(action),
                     internal::escape_bytes(key, kMaxShownKeyBytes));
}

}  // namespace aspen::auth
