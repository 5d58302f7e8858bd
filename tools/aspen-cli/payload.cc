// Payloads in and out of aspen-cli: bounded binary-safe reads, exact writes, hex and base64.
#include "payload.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "completion.h"
#include "core/assert.h"
#include "core/encoding.h"

namespace aspen::cli {

namespace {

// Past the limit, an input is only read on to say how large it was; beyond this many bytes
// the message says "more than", so that `kv set k < /dev/zero` ends.
constexpr size_t kMaxCountedOverLimitFactor = 16;

struct BoundedRead {
  std::string bytes;          // at most limit + 1 bytes
  size_t total_bytes = 0;     // every byte seen, up to the counting cap
  bool is_truncated = false;  // the counting cap was reached: total_bytes is a lower bound
};

// Reads fd to its end, keeping at most max_bytes + 1 bytes.
Result<BoundedRead> read_bounded(int fd, size_t max_bytes, const std::string& source) {
  ASPEN_ASSERT(max_bytes > 0);
  BoundedRead out;
  const size_t count_cap = max_bytes * kMaxCountedOverLimitFactor;
  char buf[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return make_error(ErrorCode::kInvalidArgument, fmt::format("cannot read {}: {}", source, std::strerror(errno)));
    if (n == 0) break;
    const auto got = static_cast<size_t>(n);
    if (out.bytes.size() <= max_bytes) {
      out.bytes.append(buf, std::min(got, max_bytes + 1 - out.bytes.size()));
    }
    out.total_bytes += got;
    if (out.total_bytes > count_cap) {
      out.is_truncated = true;
      break;
    }
  }
  return out;
}

Result<std::string> read_source(bool is_stdin, const std::string& path, PayloadLimit limit, std::string_view what) {
  const std::string source = is_stdin ? std::string("stdin") : path;
  int fd = 0;
  if (!is_stdin) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return make_error(ErrorCode::kInvalidArgument, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  } else if (::isatty(0) == 1) {
    std::cerr << "reading the " << what << " from stdin; end it with Ctrl+D\n";
  }
  auto r = read_bounded(fd, limit.max_bytes, source);
  if (!is_stdin) ::close(fd);
  if (!r) return std::unexpected(r.error());
  if (r->total_bytes > limit.max_bytes) {
    return make_error(ErrorCode::kValueTooLarge,
                      fmt::format("{} from {} is {}{} bytes; the limit is {} ({})", what, source,
                                  r->is_truncated ? "more than " : "", r->total_bytes, limit.max_bytes, limit.name));
  }
  return std::move(r->bytes);
}

}  // namespace

Result<std::string> read_payload(const PayloadSource& source, PayloadLimit limit, std::string_view what) {
  if (source.has_arg && source.arg != "-") {
    if (source.arg.size() > limit.max_bytes) {
      return make_error(ErrorCode::kValueTooLarge, fmt::format("{} is {} bytes; the limit is {} ({})", what,
                                                               source.arg.size(), limit.max_bytes, limit.name));
    }
    return source.arg;
  }
  const bool is_stdin = source.is_stdin();
  return read_source(is_stdin, is_stdin ? std::string() : source.file, limit, what);
}

namespace {

// "1 MiB", "60 KiB", "100 bytes": a limit for help texts.
std::string size_text(size_t bytes) {
  if (bytes % (1 << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes % (1 << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

}  // namespace

void add_payload_options(CLI::App* cmd, PayloadSource& source, const std::string& name, const std::string& file_flag,
                         const std::string& what, PayloadLimit limit) {
  auto* arg = cmd->add_option_function<std::string>(
      name,
      [&source](const std::string& value) {
        source.arg = value;
        source.has_arg = true;
      },
      fmt::format("The {} (at most {}); omitted or '-': read from stdin", what, size_text(limit.max_bytes)));
  auto* file = cmd->add_option(file_flag, source.file,
                               fmt::format("Read the {} from this file, byte for byte ('-': stdin)", what))
                   ->type_name(kPathTypeName);
  arg->excludes(file);
}

int payload_error(const Context& ctx, const Error& error) {
  if (error.code() == ErrorCode::kValueTooLarge) return fail(ctx, error);
  return usage_error(ctx, error.message());
}

namespace {

Status write_all(int fd, std::string_view bytes, const std::string& target) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return make_error(ErrorCode::kInvalidArgument, fmt::format("cannot write {}: {}", target, std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Status write_stdout_bytes(std::string_view bytes) {
  std::cout.flush();  // whatever went through std::cout first stays first
  return write_all(1, bytes, "stdout");
}

Status write_file_bytes(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return make_error(ErrorCode::kInvalidArgument, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  auto s = write_all(fd, bytes, path);
  if (::close(fd) != 0 && s) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  return s;
}

std::string base64_encode(std::string_view bytes) {
  const size_t size = sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(size, '\0');  // includes the terminating NUL libsodium writes
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(size - 1);
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t size = 0;
  // No end pointer: the whole text must be base64, or the call fails.
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &size, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "not valid base64 (RFC 4648, with padding)");
  }
  out.resize(size);
  return out;
}

Result<std::string> key_from_arg(std::string_view arg, bool is_hex) {
  if (!is_hex) return std::string(arg);
  auto key = from_hex(arg);
  if (!key) return make_error(ErrorCode::kInvalidArgument, "--key-hex: the key " + key.error().message());
  return key;
}

}  // namespace aspen::cli
