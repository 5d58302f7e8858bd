// Error and Result: how recoverable failures travel through Aspen.
//
// Every fallible function returns aspen::Result<T> (std::expected<T, Error>). An Error has a
// code that callers branch on and a short message meant for an operator. Messages sent to
// clients must not contain internal paths or stack state. No exceptions cross module
// boundaries: a library's exceptions are caught at the call site and turned into an Error.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace aspen {

enum class ErrorCode : uint8_t {
  kOk = 0,
  kNotFound,
  kKeyTooLarge,
  kValueTooLarge,
  kBatchTooLarge,
  kScanTooLarge,
  kMessageTooLarge,
  kNotLeader,
  kTimeout,
  kUnavailable,
  kInvalidArgument,
  kUnauthorized,
  kCorruption,
  kCompacted,
  kUnavailableSnapshot,
  kProposalDropped,
  kConfigInvalid,
  kInternal,
  kTxnTooLarge,
  kLeaseNotFound,
  kStorageFull,
  kSessionExpired,  // a client session no longer holds what a retried write needs
};

// Stable, human-readable name of a code ("NotLeader"), used in logs and client errors.
std::string_view error_code_name(ErrorCode code) noexcept;

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "NotLeader: leader is node 3".
  std::string to_string() const;

  friend bool operator==(const Error&, const Error&) = default;

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
using Result = std::expected<T, Error>;

// For functions that succeed with no value.
using Status = Result<void>;

inline std::unexpected<Error> make_error(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error(code, std::move(message)));
}

}  // namespace aspen
