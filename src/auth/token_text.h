// The text form of a token, for files, environment variables and the command line, and a
// human-readable description of one for `aspen-cli auth token inspect`.
//
// Text form: "aspentoken1" followed by the token bytes in unpadded URL-safe base64 (RFC 4648
// §5), so it survives shells, URLs and copy-paste: encode_token_text(token), and back with
// decode_token_text(text), which tolerates surrounding whitespace (a file's final newline).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace aspen::auth {

inline constexpr std::string_view kTokenTextPrefix = "aspentoken1";

std::string encode_token_text(std::string_view token);

// The token bytes. InvalidArgument naming the problem: no "aspentoken1" prefix, nothing after
// it, a character that is not URL-safe base64 (with its position), longer than a token of
// kMaxTokenSizeBytes can be. Does not look inside the token: verify_token does.
Result<std::string> decode_token_text(std::string_view text);

// A multi-line description of a token's chain, root first: each level's id, issuer, audience,
// capabilities and validity (keys and ids in hex), and the depth. It does NOT verify
// signatures, expiry or revocation, and says so on its first line: it shows what a token
// claims, for an operator deciding what it is. InvalidArgument if the bytes are not a
// well-shaped token (the same shape checks verify_token makes).
Result<std::string> inspect_token(std::string_view token);

}  // namespace aspen::auth
