#include "auth/token.h"

#include <fmt/format.h>
#include <sodium.h>

#include "auth/internal/token_wire.h"
#include "core/assert.h"
#include "core/limits.h"

namespace aspen::auth {
namespace {

using internal::TokenLevel;

std::unexpected<Error> refuse(std::string reason) {
  return make_error(ErrorCode::kUnauthorized, std::move(reason));
}

std::string at_level(size_t index, size_t depth) {
  if (depth == 1) return "";
  return fmt::format(" at chain level {} of {}", index + 1, depth);
}

Result<std::string> checked_size(std::string token) {
  if (token.size() > limits::kMaxTokenSizeBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the token would be {} bytes; the limit is {} bytes",
                                  token.size(), limits::kMaxTokenSizeBytes));
  }
  return token;
}

// Signatures and the parent-child rules, root first (the top-of-header list).
Status verify_chain(const std::vector<TokenLevel>& chain, const KeyBytes& root_key,
                    const std::function<bool(const TokenId&)>& is_revoked) {
  const size_t depth = chain.size();
  for (size_t i = 0; i < depth; ++i) {
    const TokenLevel& level = chain[i];
    const std::string where = at_level(i, depth);
    if (i == 0 && level.issuer != root_key) {
      return refuse(fmt::format("token{} was not issued by the cluster's root key (issuer {})",
                                where, internal::hex(level.issuer)));
    }
    if (i > 0 && level.issuer != chain[i - 1].audience) {
      return refuse(
          fmt::format("delegated token{} is signed by {}, not by its parent's audience {}", where,
                      internal::hex(level.issuer), internal::hex(chain[i - 1].audience)));
    }
    if (!internal::signature_is_valid(level))
      return refuse(fmt::format("token signature{} is invalid", where));
    if (i > 0) {
      auto ok = internal::check_narrower(chain[i - 1], level.capabilities, level.not_before_s,
                                         level.expires_s);
      if (!ok)
        return refuse(fmt::format("delegated token{} is not narrower than its parent: {}", where,
                                  ok.error().message()));
    }
    if (is_revoked && is_revoked(level.id)) {
      return refuse(fmt::format("token{} is revoked (id {})", where, internal::hex(level.id)));
    }
  }
  return {};
}

}  // namespace

KeyBytes public_key_of(const SeedBytes& seed) {
  internal::ensure_sodium();
  KeyBytes public_key{};
  unsigned char secret_key[crypto_sign_SECRETKEYBYTES];
  ASPEN_ASSERT(crypto_sign_seed_keypair(public_key.data(), secret_key, seed.data()) == 0);
  sodium_memzero(secret_key, sizeof(secret_key));
  return public_key;
}

Result<std::string> issue_token(const SeedBytes& issuer_seed, const TokenSpec& spec) {
  if (auto ok = internal::validate_spec(spec); !ok) return std::unexpected(ok.error());
  return checked_size(internal::sign_token(issuer_seed, spec, ""));
}

Result<std::string> delegate_token(std::string_view parent_token, const SeedBytes& holder_seed,
                                   const TokenSpec& spec) {
  const auto refuse_delegation = [](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("cannot delegate: {}", why));
  };
  if (parent_token.size() > limits::kMaxTokenSizeBytes) {
    return refuse_delegation(fmt::format("the parent token is {} bytes; the limit is {} bytes",
                                         parent_token.size(), limits::kMaxTokenSizeBytes));
  }
  auto chain = internal::decode_chain(parent_token);
  if (!chain) return refuse_delegation(chain.error().message());
  const TokenLevel& parent = chain->back();
  if (public_key_of(holder_seed) != parent.audience) {
    return refuse_delegation(fmt::format("the signing key is not the parent token's audience ({})",
                                         internal::hex(parent.audience)));
  }
  if (chain->size() + 1 > limits::kMaxTokenChainDepth) {
    return refuse_delegation(fmt::format("the chain would be {} levels deep; the limit is {}",
                                         chain->size() + 1, limits::kMaxTokenChainDepth));
  }
  if (auto ok = internal::validate_spec(spec); !ok) return refuse_delegation(ok.error().message());
  if (auto ok =
          internal::check_narrower(parent, spec.capabilities, spec.not_before_s, spec.expires_s);
      !ok) {
    return refuse_delegation(ok.error().message());
  }
  auto token = checked_size(internal::sign_token(holder_seed, spec, parent_token));
  if (!token) return refuse_delegation(token.error().message());
  return token;
}

Result<VerifiedToken> verify_token(std::string_view token, const KeyBytes& root_key,
                                   const KeyBytes& presenter_key, uint64_t now_s,
                                   const std::function<bool(const TokenId&)>& is_revoked) {
  if (token.size() > limits::kMaxTokenSizeBytes) {
    return refuse(fmt::format("token is {} bytes; the limit is {} bytes", token.size(),
                              limits::kMaxTokenSizeBytes));
  }
  auto chain = internal::decode_chain(token);
  if (!chain) return refuse(chain.error().message());
  ASPEN_ASSERT(!chain->empty() && chain->size() <= limits::kMaxTokenChainDepth);
  if (auto ok = verify_chain(*chain, root_key, is_revoked); !ok) return std::unexpected(ok.error());

  // Each level's capabilities and window lie within its parent's, so the last level's are
  // what the whole chain grants.
  TokenLevel& leaf = chain->back();
  if (leaf.audience != presenter_key) {
    return refuse(fmt::format("token was issued to key {}, not to the key presenting it",
                              internal::hex(leaf.audience)));
  }
  if (now_s < leaf.not_before_s) {
    return refuse(
        fmt::format("token not valid before {}", internal::format_unix_time(leaf.not_before_s)));
  }
  if (now_s >= leaf.expires_s) {
    return refuse(fmt::format("token expired at {}", internal::format_unix_time(leaf.expires_s)));
  }
  VerifiedToken verified;
  verified.id = leaf.id;
  verified.audience = leaf.audience;
  verified.capabilities = std::move(leaf.capabilities);
  verified.not_before_s = leaf.not_before_s;
  verified.expires_s = leaf.expires_s;
  verified.depth = chain->size();
  for (const TokenLevel& level : *chain) verified.chain_ids.push_back(level.id);
  return verified;
}

}  // namespace aspen::auth
