// How aspen-fuse maps keys to paths and errors to errno (docs/fuse.md). Pure functions.
//
// A mount shows the keys under a prefix P (empty: every key). The file MOUNT/a/b/c is the key
// P + "a/b/c"; a directory is a key prefix ending in '/', present while any key lies below it
// or an empty marker key P + "a/b/" (what mkdir writes) exists. Every path maps to a key that
// starts with P: path components "", ".", ".." are refused, so no path leaves the prefix.
//
// Keys that are not valid file names are hidden from listings (still readable with aspen-cli):
// an empty segment (a key "a//b", or one starting with '/'), a segment "." or "..", a segment
// holding a NUL byte, or one over kMaxNameBytes. A key that is a file and also has keys below
// it ("a" and "a/b") shows as the file; the keys below it are hidden.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace aspen::fusefs {

inline constexpr size_t kMaxNameBytes = 255;  // NAME_MAX

// "app" and "app/" are the same prefix ("app/"); "" is the whole store.
std::string normalize_prefix(std::string_view prefix);

// The key of an absolute path below the mount ("/" is the prefix itself). Errors:
// InvalidArgument for an empty, "." or ".." component, KeyTooLarge for a component over
// kMaxNameBytes or a key over the store's key limit.
Result<std::string> key_for_path(std::string_view prefix, std::string_view path);

// The marker key of a directory key ("a/b" -> "a/b/"); the root's is the prefix itself.
std::string dir_prefix(std::string_view dir_key, bool is_root);

struct Child {
  std::string name;
  bool is_dir = false;
};
// The entry a key shows as in the directory whose keys start with `dir` (dir_prefix form):
// the first segment after `dir`, a directory if more follows. nullopt: the key is the
// directory's marker or hidden (see above).
std::optional<Child> child_of(std::string_view dir, std::string_view key);

// The errno a user expects for a store error (positive; callers negate it for FUSE):
// NotFound -> ENOENT, Unauthorized -> EACCES, StorageFull -> ENOSPC, ValueTooLarge -> EFBIG,
// KeyTooLarge -> ENAMETOOLONG, InvalidArgument -> EINVAL, Unavailable/NotLeader/
// ProposalDropped (nothing was done) -> EAGAIN, Timeout and everything else (a write that
// may or may not have been applied) -> EIO.
int errno_for(const Error& error);

}  // namespace aspen::fusefs
