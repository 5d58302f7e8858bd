// Keys, specs and hand-built tokens shared by the token tests.
#pragma once

#include <gtest/gtest.h>
#include <sodium.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aspen/auth.pb.h"
#include "auth/authorize.h"
#include "auth/capability.h"
#include "auth/internal/token_wire.h"
#include "auth/token.h"
#include "auth/token_text.h"

namespace aspen::auth::testing {

// 2026-01-01T00:00:00Z.
inline constexpr uint64_t kNow = 1767225600;

struct TestKey {
  SeedBytes seed{};
  KeyBytes public_key{};
};

inline TestKey test_key(uint8_t byte) {
  TestKey key;
  key.seed.fill(byte);
  key.public_key = public_key_of(key.seed);
  return key;
}

inline TokenId test_id(uint8_t byte) {
  TokenId id{};
  id.fill(byte);
  return id;
}

inline std::vector<Capability> caps(std::initializer_list<std::string_view> texts) {
  std::vector<Capability> out;
  for (std::string_view text : texts) {
    auto c = parse_capability(text);
    EXPECT_TRUE(c) << text << ": " << c.error().to_string();
    if (c) out.push_back(*c);
  }
  return out;
}

inline TokenSpec spec_for(const KeyBytes& audience, std::vector<Capability> capabilities,
                          uint8_t id, uint64_t not_before_s = kNow - 60,
                          uint64_t expires_s = kNow + 3600) {
  return TokenSpec{audience, std::move(capabilities), not_before_s, expires_s, test_id(id)};
}

inline const std::function<bool(const TokenId&)> kNothingRevoked;

// A SignedToken over `body`, signed by `signer` as issue_token/delegate_token would: what an
// attacker holding that key can build by hand, whatever the body says.
inline std::string sign_by_hand(const authpb::TokenBody& body, const SeedBytes& signer) {
  authpb::SignedToken signed_pb;
  signed_pb.set_body(body.SerializeAsString());
  std::string message(internal::kSignatureContext);
  message += signed_pb.body();
  unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
  unsigned char secret_key[crypto_sign_SECRETKEYBYTES];
  EXPECT_EQ(crypto_sign_seed_keypair(public_key, secret_key, signer.data()), 0);
  unsigned char signature[crypto_sign_BYTES];
  EXPECT_EQ(crypto_sign_detached(signature, nullptr,
                                 reinterpret_cast<const unsigned char*>(message.data()),
                                 message.size(), secret_key),
            0);
  signed_pb.set_signature(signature, sizeof(signature));
  return signed_pb.SerializeAsString();
}

// The body of a well-formed token, to be altered by a test and signed by hand.
inline authpb::TokenBody body_for(
    const KeyBytes& issuer, const KeyBytes& audience,
    std::initializer_list<std::pair<authpb::Action, std::string>> capabilities, uint8_t id,
    std::string parent = "") {
  authpb::TokenBody body;
  body.set_version(1);
  const TokenId token_id = test_id(id);
  body.set_id(token_id.data(), token_id.size());
  body.set_issuer_key(issuer.data(), issuer.size());
  body.set_audience_key(audience.data(), audience.size());
  for (const auto& [action, prefix] : capabilities) {
    authpb::Capability* c = body.add_capabilities();
    c->set_action(action);
    c->set_prefix(prefix);
  }
  body.set_not_before_s(kNow - 60);
  body.set_expires_s(kNow + 3600);
  body.set_parent(std::move(parent));
  return body;
}

// The Unauthorized reason verify_token gives, or a failure if the token verified.
inline std::string refusal(std::string_view token, const KeyBytes& root, const KeyBytes& presenter,
                           uint64_t now_s = kNow,
                           const std::function<bool(const TokenId&)>& is_revoked = {}) {
  auto verified = verify_token(token, root, presenter, now_s, is_revoked);
  if (verified) {
    ADD_FAILURE() << "token unexpectedly verified";
    return {};
  }
  EXPECT_EQ(verified.error().code(), ErrorCode::kUnauthorized) << verified.error().to_string();
  return verified.error().message();
}

}  // namespace aspen::auth::testing
