// Authorization: does a verified token allow this operation on these keys?
//
// A request handler verifies the presented token once (auth/token.h), then asks per key or
// per range; a refusal becomes Unauthorized with describe_missing's message:
//
//   if (!allows_key(token, Action::kWrite, key))
//     return make_error(ErrorCode::kUnauthorized, describe_missing(Action::kWrite, key));
//
// Full covers Read, Write and Delete (and Full). Admin and Delegate are not prefix-scoped and
// match only themselves, whatever key is asked about.
#pragma once

#include <string>
#include <string_view>

#include "auth/capability.h"
#include "auth/token.h"
#include "core/encoding.h"

namespace aspen::auth {

// Whether some capability grants `action` on `key` (the key starts with its prefix).
bool allows_key(const VerifiedToken& token, Action action, std::string_view key);

// Whether one capability grants `action` on every key of [start, end), an empty end meaning
// "to the end of the keyspace": its prefix range [P, prefix_end(P)) must contain the range's
// bounds (an empty P covers everything). The bounds are checked even when start >= end, so a
// range outside every prefix is refused whether or not it holds keys. Ranges are never pieced
// together from several capabilities.
bool allows_range(const VerifiedToken& token, Action action, std::string_view start,
                  std::string_view end);

// "missing capability read:app/x" (non-printable bytes escaped, long keys shortened); for
// Admin and Delegate the key is ignored: "missing capability admin".
std::string describe_missing(Action action, std::string_view key);

// The smallest key greater than every key starting with `prefix`; "" when there is none
// (the prefix is empty or all 0xff bytes), meaning the end of the keyspace (core/encoding.h).
using aspen::prefix_end;

}  // namespace aspen::auth
