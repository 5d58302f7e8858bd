// Assertions that stay on in release builds.
//
// ASPEN_ASSERT documents an invariant and enforces it: a broken invariant is a programmer
// error, so the process aborts with the file, line and condition instead of limping on with
// corrupt state. Recoverable conditions (bad input, I/O failure) use aspen::Result instead.
#pragma once

namespace aspen::detail {
[[noreturn]] void assert_fail(const char* condition, const char* file, int line,
                              const char* message) noexcept;
}  // namespace aspen::detail

#define ASPEN_ASSERT(cond)                                                  \
  do {                                                                      \
    if (!(cond)) [[unlikely]] {                                             \
      ::aspen::detail::assert_fail(#cond, __FILE__, __LINE__, nullptr);     \
    }                                                                       \
  } while (0)

#define ASPEN_ASSERT_MSG(cond, msg)                                         \
  do {                                                                      \
    if (!(cond)) [[unlikely]] {                                             \
      ::aspen::detail::assert_fail(#cond, __FILE__, __LINE__, (msg));       \
    }                                                                       \
  } while (0)

#define ASPEN_UNREACHABLE() ::aspen::detail::assert_fail("unreachable", __FILE__, __LINE__, nullptr)
