// Errors on the client protocol: an aspen::Error travels as a sanitized ErrorInfo (stable
// code, its name, an operator-facing message, and the leader's address with NotLeader).
#pragma once

#include "aspen/client.pb.h"
#include "core/error.h"

namespace aspen::rpc {

clientpb::ErrorInfo to_error_info(const Error& error);
// Unknown codes from a newer peer become Internal, keeping the message.
Error from_error_info(const clientpb::ErrorInfo& info);

// Every refusal a node gives because its cluster has no leader it can reach (none known,
// the known one silent, or itself stepping down) says so with these words. Such a refusal
// ends with the election, a few hundred milliseconds away, so a client retries it sooner
// than other Unavailable answers (an overloaded node's, which need fewer retries, not more).
inline constexpr std::string_view kElectionUnderWay = "an election may be under way";
bool is_election_refusal(const Error& error);

}  // namespace aspen::rpc
