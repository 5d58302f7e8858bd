#include "credentials.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "client/credentials.h"

namespace aspen::cli {

namespace {

namespace fs = std::filesystem;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

std::string config_dir() {
  if (auto xdg = env_or_empty("XDG_CONFIG_HOME"); !xdg.empty() && fs::path(xdg).is_absolute()) {
    return (fs::path(xdg) / "aspen").string();
  }
  if (auto home = env_or_empty("HOME"); !home.empty()) return (fs::path(home) / ".config" / "aspen").string();
  return "";
}

Status ensure_parent_dir(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return {};
  std::error_code ec;
  if (fs::exists(parent, ec)) return {};
  fs::create_directories(parent, ec);
  if (ec) return make_error(ErrorCode::kUnavailable, fmt::format("cannot create {}: {}", parent.string(), ec.message()));
  fs::permissions(parent, fs::perms::owner_all, ec);
  return {};
}

Result<std::string> read_token_file(const std::string& path) { return client::read_token_file(path); }

Status write_private_file(const std::string& path, const std::string& content) {
  if (auto s = ensure_parent_dir(path); !s) return s;
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorCode::kUnavailable, fmt::format("create {}: {}", tmp, std::strerror(errno)));
  const bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::kUnavailable, fmt::format("write {}: {}", path, std::strerror(err)));
  }
  return {};
}

Result<Credentials> load_credentials(const std::string& identity_flag, const std::string& token_flag) {
  Credentials c;
  const std::string dir = config_dir();
  c.identity_path = !identity_flag.empty()                   ? identity_flag
                    : !env_or_empty("ASPEN_IDENTITY").empty() ? env_or_empty("ASPEN_IDENTITY")
                    : dir.empty()                             ? ""
                                                              : dir + "/identity.key";
  if (!c.identity_path.empty()) {
    if (auto s = ensure_parent_dir(c.identity_path); !s) return std::unexpected(s.error());
    auto id = transport::load_or_create_identity_file(c.identity_path);
    if (!id) {
      return make_error(id.error().code(), fmt::format("identity {}: {}", c.identity_path, id.error().message()));
    }
    c.identity = std::move(*id);
  }
  const bool is_token_named = !token_flag.empty() || !env_or_empty("ASPEN_TOKEN_FILE").empty();
  c.token_path = !token_flag.empty() ? token_flag
                 : is_token_named    ? env_or_empty("ASPEN_TOKEN_FILE")
                 : dir.empty()       ? ""
                                     : dir + "/token";
  std::error_code ec;
  if (!c.token_path.empty() && (is_token_named || fs::exists(c.token_path, ec))) {
    // A named token file that does not exist is fine for `cluster init`, which creates it;
    // every other command then fails at the node with a clear Unauthorized.
    if (fs::exists(c.token_path, ec)) {
      auto token = read_token_file(c.token_path);
      if (!token) return std::unexpected(token.error());
      c.token = std::move(*token);
    }
  }
  return c;
}

Result<uint64_t> parse_duration_s(std::string_view text) {
  uint64_t unit = 1;
  std::string_view digits = text;
  if (!text.empty()) {
    switch (text.back()) {
      case 's': unit = 1; digits.remove_suffix(1); break;
      case 'm': unit = 60; digits.remove_suffix(1); break;
      case 'h': unit = 3600; digits.remove_suffix(1); break;
      case 'd': unit = 86400; digits.remove_suffix(1); break;
      default: break;
    }
  }
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n == 0 ||
      n > (uint64_t{100} * 365 * 86400) / unit) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' is not a duration (examples: 90s, 30m, 24h, 7d; at most 100 years)", text));
  }
  return n * unit;
}

}  // namespace aspen::cli
