// Internals of the token module: the wire form (authpb::SignedToken) decoded into a chain of
// checked levels, signing, and the helpers the messages share.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/capability.h"
#include "auth/token.h"
#include "core/error.h"

namespace aspen::auth::internal {

inline constexpr uint32_t kTokenVersion = 1;
inline constexpr size_t kSignatureSizeBytes = 64;
// Signed before the body bytes, so a token signature can never be mistaken for (or made to
// serve as) a signature over anything else an Aspen key signs.
inline constexpr std::string_view kSignatureContext{"aspen token v1\0", 15};

// One level of a chain whose shape has been checked (sizes, version, limits, known
// actions), but not its signature nor its relation to its parent.
struct TokenLevel {
  std::string body_bytes;  // exactly the bytes the signature covers, after kSignatureContext
  std::string signature;   // kSignatureSizeBytes
  TokenId id{};
  KeyBytes issuer{};
  KeyBytes audience{};
  std::vector<Capability> capabilities;
  uint64_t not_before_s = 0;
  uint64_t expires_s = 0;
};

// Root first; the last level is the token itself. InvalidArgument ("malformed token: ...",
// "unsupported token version ...", "token chain is deeper than ...") on anything that is not
// a well-shaped chain of at most kMaxTokenChainDepth levels. The caller bounds the size.
Result<std::vector<TokenLevel>> decode_chain(std::string_view token);

// Whether level.signature is level.issuer's Ed25519 signature over the context and body.
bool signature_is_valid(const TokenLevel& level);

// Checks a spec's own shape: capability count and each capability, and a non-empty window.
Status validate_spec(const TokenSpec& spec);

// Whether a child with these capabilities and window may be delegated from `parent`:
// InvalidArgument naming the first reason it may not (no Delegate, a capability not
// covered, a window outside the parent's).
Status check_narrower(const TokenLevel& parent, const std::vector<Capability>& capabilities,
                      uint64_t not_before_s, uint64_t expires_s);

// The serialized SignedToken for `spec` with this parent ("" for none), signed by the key of
// `seed`. The caller has validated the spec.
std::string sign_token(const SeedBytes& seed, const TokenSpec& spec, std::string_view parent);

// "2026-01-02T03:04:05Z (1767322245)"; just the number past the year 9999.
std::string format_unix_time(uint64_t unix_s);
// Lowercase hex of a key or id.
std::string hex(const uint8_t* data, size_t size);
template <size_t N>
std::string hex(const std::array<uint8_t, N>& bytes) {
  return hex(bytes.data(), bytes.size());
}
// Bytes for a message: printable ASCII as is, the rest as \xNN, cut after max_shown_bytes.
std::string escape_bytes(std::string_view bytes, size_t max_shown_bytes);
// A capability for a message (format_capability with the prefix escaped).
std::string display_capability(const Capability& capability);

void ensure_sodium();

}  // namespace aspen::auth::internal
