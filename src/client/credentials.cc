#include "client/credentials.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "auth/token_text.h"

namespace aspen::client {

namespace {
constexpr size_t kMaxTokenFileBytes = 64 * 1024;  // far above kMaxTokenSizeBytes in text form
}

Result<std::string> read_token_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("token file {}: {}", path, std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return make_error(ErrorCode::kUnauthorized,
                      fmt::format("token file {} may be read by group or others (mode {:o}); run chmod 600 {}", path,
                                  st.st_mode & 0777, path));
  }
  if (static_cast<size_t>(st.st_size) > kMaxTokenFileBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("token file {} is {} bytes: not a token", path, static_cast<size_t>(st.st_size)));
  }
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto token = auth::decode_token_text(text);
  if (!token) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("token file {}: {}", path, token.error().message()));
  }
  return token;
}

Status apply_credentials_from_env(ClientOptions& options) {
  if (const char* path = std::getenv("ASPEN_IDENTITY"); path != nullptr && *path != '\0') {
    auto id = transport::read_identity_file(path);
    if (!id) return make_error(id.error().code(), fmt::format("ASPEN_IDENTITY {}: {}", path, id.error().message()));
    options.identity = std::move(*id);
  }
  if (const char* path = std::getenv("ASPEN_TOKEN_FILE"); path != nullptr && *path != '\0') {
    auto token = read_token_file(path);
    if (!token) return make_error(token.error().code(), fmt::format("ASPEN_TOKEN_FILE: {}", token.error().message()));
    options.token = std::move(*token);
  }
  return {};
}

}  // namespace aspen::client
