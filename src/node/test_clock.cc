#include "node/test_clock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace aspen::node {

std::optional<int64_t> parse_test_clock_offset_ms(std::string_view text) {
  // Signed: "+300", "300" and "-700" (from_chars takes no '+').
  const bool has_plus = text.starts_with('+');
  const std::string_view digits = has_plus ? text.substr(1) : text;
  if (has_plus && digits.starts_with('-')) return std::nullopt;
  int64_t ms = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (ms < -kMaxTestClockOffsetMs || ms > kMaxTestClockOffsetMs) return std::nullopt;
  return ms;
}

Result<int64_t> parse_test_clock_offset_file(std::string_view content) {
  constexpr std::string_view kBlanks = " \t\r\n";
  const size_t first = content.find_first_not_of(kBlanks);
  const std::string_view text =
      first == std::string_view::npos ? std::string_view{} : content.substr(first, content.find_last_not_of(kBlanks) - first + 1);
  if (auto ms = parse_test_clock_offset_ms(text)) return *ms;
  std::string shown;
  for (char c : text.substr(0, 32)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  return std::unexpected(Error(ErrorCode::kInvalidArgument,
                               fmt::format("must hold one whole number of milliseconds from -{} to {} (e.g. -2000), "
                                           "holds '{}'{}",
                                           kMaxTestClockOffsetMs, kMaxTestClockOffsetMs, shown,
                                           text.size() > 32 ? "..." : "")));
}

Result<std::optional<int64_t>> read_test_clock_offset_file(const std::string& path) {
  // O_NONBLOCK: a FIFO put there must not stall the loop; it is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<int64_t>{};
    return std::unexpected(Error(ErrorCode::kInvalidArgument, fmt::format("cannot be opened: {}", std::strerror(errno))));
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return std::unexpected(Error(ErrorCode::kInvalidArgument, "is not a regular file"));
  }
  char buf[kMaxTestClockOffsetFileBytes + 1];
  size_t size = 0;
  while (size < sizeof buf) {
    const ssize_t n = ::read(fd, buf + size, sizeof buf - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return std::unexpected(Error(ErrorCode::kInvalidArgument, fmt::format("cannot be read: {}", std::strerror(err))));
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  ::close(fd);
  if (size > kMaxTestClockOffsetFileBytes) {
    return std::unexpected(Error(ErrorCode::kInvalidArgument,
                                 fmt::format("is longer than {} bytes; it should hold one number",
                                             kMaxTestClockOffsetFileBytes)));
  }
  auto ms = parse_test_clock_offset_file(std::string_view(buf, size));
  if (!ms) return std::unexpected(ms.error());
  return std::optional<int64_t>{*ms};
}

TestClockOffsetFile::Change TestClockOffsetFile::poll() {
  Change change;
  auto read = read_test_clock_offset_file(path_);
  if (!read) {
    if (read.error().message() != last_error_) {
      last_error_ = read.error().message();
      change.error = last_error_;
    }
    return change;  // keeps the offset it had
  }
  last_error_.clear();
  const int64_t ms = read->value_or(start_offset_ms_);
  if (offset_ms_.exchange(ms, std::memory_order_relaxed) != ms) change.new_offset_ms = ms;
  return change;
}

}  // namespace aspen::node
