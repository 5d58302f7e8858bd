#include "rpc/error_info.h"

namespace aspen::rpc {

clientpb::ErrorInfo to_error_info(const Error& error) {
  clientpb::ErrorInfo info;
  info.set_code(static_cast<uint32_t>(error.code()));
  info.set_code_name(std::string(error_code_name(error.code())));
  info.set_message(error.message());
  return info;
}

Error from_error_info(const clientpb::ErrorInfo& info) {
  if (info.code() == 0 || info.code() > static_cast<uint32_t>(ErrorCode::kSessionExpired)) {
    return Error(ErrorCode::kInternal, info.message().empty() ? std::string("unknown error") : info.message());
  }
  return Error(static_cast<ErrorCode>(info.code()), info.message());
}

bool is_election_refusal(const Error& error) {
  return (error.code() == ErrorCode::kUnavailable || error.code() == ErrorCode::kNotLeader) &&
         error.message().find(kElectionUnderWay) != std::string::npos;
}

}  // namespace aspen::rpc
