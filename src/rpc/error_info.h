// Errors on the client protocol: an aspen::Error travels as a sanitized ErrorInfo (stable
// code, its name, an operator-facing message, and the leader's address with NotLeader).
#pragma once

#include "aspen/client.pb.h"
#include "core/error.h"

namespace aspen::rpc {

clientpb::ErrorInfo to_error_info(const Error& error);
// Unknown codes from a newer peer become Internal, keeping the message.
Error from_error_info(const clientpb::ErrorInfo& info);

}  // namespace aspen::rpc
