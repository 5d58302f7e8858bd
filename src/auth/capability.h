// Capabilities: what a token lets its holder do, and to which keys.
//
// A capability is an action and a key prefix. Read, Write, Delete and Full (all three) are
// scoped to the keys starting with the prefix (an empty prefix is every key); Admin
// (cluster administration) and Delegate (may sign narrower child tokens) are not
// prefix-scoped and always carry an empty prefix.
//
// The CLI and config files spell them as text:
//   read:app/   write:app/   delete:app/   full:app/   read:   (every key)   admin   delegate
// parse_capability / format_capability convert; format(parse(s)) == s for every valid s.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace aspen::auth {

enum class Action : uint8_t { kFull, kRead, kWrite, kDelete, kDelegate, kAdmin };

struct Capability {
  Action action = Action::kRead;
  std::string prefix;  // empty for kAdmin and kDelegate

  friend bool operator==(const Capability&, const Capability&) = default;
};

// "read", "write", "delete", "full", "delegate", "admin".
std::string_view action_name(Action action) noexcept;

// True for the actions scoped to a key prefix (Full, Read, Write, Delete).
bool is_prefix_scoped(Action action) noexcept;

// InvalidArgument naming the bad text: empty, unknown action, a prefix-scoped action without
// ':', a prefix on admin/delegate, a prefix over kMaxKeySizeBytes.
Result<Capability> parse_capability(std::string_view text);
std::string format_capability(const Capability& capability);

// Checks a capability a caller is about to put in a token (InvalidArgument naming the
// problem): a prefix over kMaxKeySizeBytes, or a prefix on admin/delegate.
Status validate_capability(const Capability& capability);

// Whether `parent` grants everything `child` does: the same action, or a parent Full
// covering Read/Write/Delete/Full; and the child's prefix starts with the parent's. Admin is
// covered only by Admin, Delegate only by Delegate. A delegated token is valid only if each
// of its capabilities is covered by one of its parent's.
bool capability_covers(const Capability& parent, const Capability& child) noexcept;

}  // namespace aspen::auth
