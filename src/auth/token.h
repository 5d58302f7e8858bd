// Capability tokens: self-contained credentials that a node verifies offline.
//
// A token says "the holder of key A may do these actions on keys with these prefixes, from
// time T1 until T2", signed (Ed25519) by the cluster's root key. The holder may delegate: it
// signs a narrower child token for another key B, which carries its parent inside it, so a
// verifier needs nothing but the root public key, the presenting peer's key (from the
// connection's authenticated identity), the time and the revocation list:
//
//   TokenSpec spec{.audience = client_key, .capabilities = {*parse_capability("read:app/")},
//                  .not_before_s = now_s, .expires_s = now_s + 3600, .id = random_id};
//   std::string token = *issue_token(root_seed, spec);                 // by the operator
//   std::string child = *delegate_token(token, client_seed, narrower);  // by the client
//   auto verified = verify_token(child, root_key, presenter_key, now_s, is_revoked);
//   if (verified && allows_key(*verified, Action::kRead, "app/x")) ...  // auth/authorize.h
//
// The module is pure: no files, clocks, sockets or random numbers (token ids come in drawn
// by the caller, e.g. with randombytes_buf). Tokens are bytes (a serialized
// authpb::SignedToken, proto/aspen/auth.proto); auth/token_text.h gives the text form for
// files and the CLI. Limits: core/limits.h (kMaxToken*).
//
// What verify_token checks, root first: every level's encoding (canonical, so a token has
// exactly one byte string and the bytes can key a cache) and limits; the root level is
// issued by the root key; each level's signature; each child is signed by its parent's
// audience, whose parent grants Delegate, with every child capability covered by a parent
// capability (capability_covers) and a validity window inside the parent's; the chain is at
// most kMaxTokenChainDepth deep; no id in the chain is revoked; the last level's audience is
// the presenter and now is inside its window.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/capability.h"
#include "core/error.h"

namespace aspen::auth {

inline constexpr size_t kKeySizeBytes = 32;  // an Ed25519 public key, and a secret seed
inline constexpr size_t kTokenIdSizeBytes = 16;

using KeyBytes = std::array<uint8_t, kKeySizeBytes>;
using SeedBytes = std::array<uint8_t, kKeySizeBytes>;
using TokenId = std::array<uint8_t, kTokenIdSizeBytes>;

// What a new token grants. Valid for now_s in [not_before_s, expires_s).
struct TokenSpec {
  KeyBytes audience{};  // the key that will present it
  std::vector<Capability> capabilities;
  uint64_t not_before_s = 0;
  uint64_t expires_s = 0;
  TokenId id{};  // random; what revocation names
};

// A token that verify_token accepted: what its last level grants.
struct VerifiedToken {
  TokenId id{};
  KeyBytes audience{};
  std::vector<Capability> capabilities;
  uint64_t not_before_s = 0;
  uint64_t expires_s = 0;
  size_t depth = 0;                // 1 for a token the root key issued
  std::vector<TokenId> chain_ids;  // root first; the last is `id`

  friend bool operator==(const VerifiedToken&, const VerifiedToken&) = default;
};

// The public key of a secret seed (Ed25519, crypto_sign_seed_keypair).
KeyBytes public_key_of(const SeedBytes& seed);

// A token signed by the key of `issuer_seed` (the root key), as serialized SignedToken bytes.
// InvalidArgument naming the problem: too many capabilities, a bad capability
// (validate_capability), an empty validity window, or an encoding over kMaxTokenSizeBytes.
Result<std::string> issue_token(const SeedBytes& issuer_seed, const TokenSpec& spec);

// A child of `parent_token` signed by its holder (the parent's audience), carrying the parent
// inside it. Checks what it can without the root key or a clock, so that a refused
// delegation fails here rather than at every verify: InvalidArgument naming why if the parent
// is malformed, the holder is not the parent's audience, the parent lacks Delegate, a child
// capability is not covered by a parent capability, the child's window is not inside the
// parent's, or the chain would exceed kMaxTokenChainDepth or kMaxTokenSizeBytes. It does not
// check the parent's signatures, expiry or revocation: verify_token does.
Result<std::string> delegate_token(std::string_view parent_token, const SeedBytes& holder_seed,
                                   const TokenSpec& spec);

// Verifies a token presented by `presenter_key` at `now_s` against the cluster's root key
// (the checks listed at the top of this file). `is_revoked` is asked about every id in the
// chain; an empty function means nothing is revoked. Unauthorized with the reason on any
// failure; never crashes on arbitrary bytes.
Result<VerifiedToken> verify_token(std::string_view token, const KeyBytes& root_key,
                                   const KeyBytes& presenter_key, uint64_t now_s,
                                   const std::function<bool(const TokenId&)>& is_revoked);

}  // namespace aspen::auth
