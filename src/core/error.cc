#include "core/error.h"

namespace aspen {

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kOk: return "Ok";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kKeyTooLarge: return "KeyTooLarge";
    case ErrorCode::kValueTooLarge: return "ValueTooLarge";
    case ErrorCode::kBatchTooLarge: return "BatchTooLarge";
    case ErrorCode::kScanTooLarge: return "ScanTooLarge";
    case ErrorCode::kMessageTooLarge: return "MessageTooLarge";
    case ErrorCode::kNotLeader: return "NotLeader";
    case ErrorCode::kTimeout: return "Timeout";
    case ErrorCode::kUnavailable: return "Unavailable";
    case ErrorCode::kInvalidArgument: return "InvalidArgument";
    case ErrorCode::kUnauthorized: return "Unauthorized";
    case ErrorCode::kCorruption: return "Corruption";
    case ErrorCode::kCompacted: return "Compacted";
    case ErrorCode::kUnavailableSnapshot: return "SnapshotTemporarilyUnavailable";
    case ErrorCode::kProposalDropped: return "ProposalDropped";
    case ErrorCode::kConfigInvalid: return "ConfigInvalid";
    case ErrorCode::kInternal: return "Internal";
    case ErrorCode::kTxnTooLarge: return "TxnTooLarge";
    case ErrorCode::kLeaseNotFound: return "LeaseNotFound";
    case ErrorCode::kStorageFull: return "StorageFull";
    case ErrorCode::kSessionExpired: return "SessionExpired";
  }
  return "Unknown";
}

std::string Error::to_string() const {
  std::string out(error_code_name(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace aspen
