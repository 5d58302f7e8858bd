#include "fusefs/mapping.h"

#include <fmt/format.h>

#include <cerrno>

#include "core/limits.h"

namespace aspen::fusefs {

std::string normalize_prefix(std::string_view prefix) {
  std::string p(prefix);
  while (p.starts_with('/')) p.erase(0, 1);
  if (!p.empty() && !p.ends_with('/')) p.push_back('/');
  return p;
}

Result<std::string> key_for_path(std::string_view prefix, std::string_view path) {
  std::string key(prefix);
  if (!path.starts_with('/')) return make_error(ErrorCode::kInvalidArgument, "a path must start with '/'");
  path.remove_prefix(1);
  if (path.empty()) return key;
  bool is_first = true;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view part = path.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("path component '{}' is not a file name", part));
    }
    if (part.size() > kMaxNameBytes) {
      return make_error(ErrorCode::kKeyTooLarge, fmt::format("a name of {} bytes (at most {})", part.size(), kMaxNameBytes));
    }
    if (!is_first) key.push_back('/');
    key.append(part);
    is_first = false;
    start = slash + 1;
  }
  if (key.size() + 1 > limits::kMaxKeySizeBytes) {  // + 1: the directory marker of this path must fit too
    return make_error(ErrorCode::kKeyTooLarge,
                      fmt::format("the key would be {} bytes (the store's limit is {})", key.size(), limits::kMaxKeySizeBytes));
  }
  return key;
}

std::string dir_prefix(std::string_view dir_key, bool is_root) {
  if (is_root) return std::string(dir_key);
  return std::string(dir_key) + "/";
}

std::optional<Child> child_of(std::string_view dir, std::string_view key) {
  if (!key.starts_with(dir)) return std::nullopt;
  const std::string_view rest = key.substr(dir.size());
  const size_t slash = rest.find('/');
  const std::string_view seg = rest.substr(0, slash);
  if (seg.empty() || seg == "." || seg == ".." || seg.size() > kMaxNameBytes || seg.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  return Child{std::string(seg), slash != std::string_view::npos};
}

int errno_for(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kNotFound:
    case ErrorCode::kLeaseNotFound: return ENOENT;
    case ErrorCode::kUnauthorized: return EACCES;
    case ErrorCode::kStorageFull: return ENOSPC;
    case ErrorCode::kValueTooLarge: return EFBIG;
    case ErrorCode::kKeyTooLarge: return ENAMETOOLONG;
    case ErrorCode::kInvalidArgument: return EINVAL;
    case ErrorCode::kUnavailable:
    case ErrorCode::kNotLeader:
    case ErrorCode::kProposalDropped: return EAGAIN;
    default: return EIO;  // Timeout: a write that may or may not have been applied
  }
}

}  // namespace aspen::fusefs
