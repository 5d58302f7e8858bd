// Capability tokens: issuing, verifying, and every way a presented token can be wrong.
#include "auth/token.h"

#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>

#include <string>

#include "core/limits.h"
#include "tests/auth/token_test_util.h"

namespace aspen::auth::testing {
namespace {

const TestKey kRoot = test_key(1);
const TestKey kAlice = test_key(2);
const TestKey kBob = test_key(3);
const TestKey kMallory = test_key(4);

std::string issue(const TokenSpec& spec, const TestKey& issuer = kRoot) {
  auto token = issue_token(issuer.seed, spec);
  EXPECT_TRUE(token) << token.error().to_string();
  return token.value_or("");
}

std::string alice_token(std::vector<Capability> capabilities = caps({"read:app/", "write:app/",
                                                                     "delegate"})) {
  return issue(spec_for(kAlice.public_key, std::move(capabilities), 10));
}

// --- issue and verify ---

TEST(TokenIssue, TokenVerifiesForItsAudience) {
  const TokenSpec spec = spec_for(kAlice.public_key, caps({"read:app/", "admin"}), 7);
  auto verified =
      verify_token(issue(spec), kRoot.public_key, kAlice.public_key, kNow, kNothingRevoked);
  ASSERT_TRUE(verified) << verified.error().to_string();
  EXPECT_EQ(verified->id, spec.id);
  EXPECT_EQ(verified->audience, kAlice.public_key);
  EXPECT_EQ(verified->capabilities, spec.capabilities);
  EXPECT_EQ(verified->not_before_s, spec.not_before_s);
  EXPECT_EQ(verified->expires_s, spec.expires_s);
  EXPECT_EQ(verified->depth, 1u);
  EXPECT_EQ(verified->chain_ids, std::vector<TokenId>{spec.id});
}

TEST(TokenIssue, IssuingIsDeterministic) {
  const TokenSpec spec = spec_for(kAlice.public_key, caps({"read:app/"}), 7);
  EXPECT_EQ(issue(spec), issue(spec));
}

TEST(TokenIssue, EmptyValidityWindowIsRefused) {
  auto token = issue_token(kRoot.seed, spec_for(kAlice.public_key, caps({"read:"}), 1, kNow, kNow));
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(token.error().message().find("empty validity window"), std::string::npos)
      << token.error().message();
}

TEST(TokenIssue, TooManyCapabilitiesAreRefused) {
  std::vector<Capability> many(limits::kMaxTokenCapabilities + 1, Capability{Action::kRead, "a"});
  auto token = issue_token(kRoot.seed, spec_for(kAlice.public_key, many, 1));
  ASSERT_FALSE(token);
  EXPECT_NE(token.error().message().find("at most 32 capabilities"), std::string::npos)
      << token.error().message();
  many.pop_back();
  EXPECT_TRUE(issue_token(kRoot.seed, spec_for(kAlice.public_key, many, 1)));
}

TEST(TokenIssue, PrefixOverKeyLimitIsRefused) {
  const Capability long_prefix{Action::kRead, std::string(limits::kMaxKeySizeBytes + 1, 'k')};
  auto token = issue_token(kRoot.seed, spec_for(kAlice.public_key, {long_prefix}, 1));
  ASSERT_FALSE(token);
  EXPECT_NE(token.error().message().find("prefix is 1025 bytes"), std::string::npos)
      << token.error().message();
}

TEST(TokenIssue, PrefixOnAdminIsRefused) {
  auto token =
      issue_token(kRoot.seed, spec_for(kAlice.public_key, {Capability{Action::kAdmin, "x"}}, 1));
  ASSERT_FALSE(token);
  EXPECT_NE(token.error().message().find("admin is not scoped"), std::string::npos)
      << token.error().message();
}

TEST(TokenIssue, TokenOverSizeLimitIsRefused) {
  const std::vector<Capability> big(
      limits::kMaxTokenCapabilities,
      Capability{Action::kRead, std::string(limits::kMaxKeySizeBytes, 'k')});
  auto token = issue_token(kRoot.seed, spec_for(kAlice.public_key, big, 1));
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(token.error().message().find("the limit is 16384 bytes"), std::string::npos)
      << token.error().message();
}

// --- what verify refuses ---

TEST(TokenVerify, TokenPresentedByAnotherKeyIsRefused) {
  EXPECT_NE(refusal(alice_token(), kRoot.public_key, kBob.public_key)
                .find("not to the key presenting it"),
            std::string::npos);
}

TEST(TokenVerify, ExpiredTokenIsRefusedNamingTheExpiry) {
  const std::string token = alice_token();
  EXPECT_TRUE(
      verify_token(token, kRoot.public_key, kAlice.public_key, kNow + 3599, kNothingRevoked));
  EXPECT_EQ(refusal(token, kRoot.public_key, kAlice.public_key, kNow + 3600),
            "token expired at 2026-01-01T01:00:00Z (1767229200)");
}

TEST(TokenVerify, NotYetValidTokenIsRefused) {
  const std::string token = alice_token();
  EXPECT_TRUE(verify_token(token, kRoot.public_key, kAlice.public_key, kNow - 60, kNothingRevoked));
  EXPECT_EQ(refusal(token, kRoot.public_key, kAlice.public_key, kNow - 61),
            "token not valid before 2025-12-31T23:59:00Z (1767225540)");
}

TEST(TokenVerify, TokenIssuedByAnotherKeyIsRefused) {
  const std::string forged = issue(spec_for(kAlice.public_key, caps({"full:"}), 1), kMallory);
  EXPECT_NE(refusal(forged, kRoot.public_key, kAlice.public_key)
                .find("not issued by the cluster's root key"),
            std::string::npos);
}

TEST(TokenVerify, TokenClaimingTheRootKeyWithAnotherSignatureIsRefused) {
  const authpb::TokenBody body =
      body_for(kRoot.public_key, kAlice.public_key, {{authpb::FULL, ""}}, 1);
  const std::string forged = sign_by_hand(body, kMallory.seed);
  EXPECT_EQ(refusal(forged, kRoot.public_key, kAlice.public_key), "token signature is invalid");
}

// Every byte of the encoding, changed in several ways: each must be refused, and none may
// crash. Over a two-level chain, so the parent's bytes (inside the child's body) are hit too.
TEST(TokenVerify, TamperedTokenIsRefusedAtEveryByte) {
  auto child = delegate_token(alice_token(), kAlice.seed,
                              spec_for(kBob.public_key, caps({"read:app/x"}), 20));
  ASSERT_TRUE(child) << child.error().to_string();
  ASSERT_TRUE(verify_token(*child, kRoot.public_key, kBob.public_key, kNow, kNothingRevoked));
  for (size_t i = 0; i < child->size(); ++i) {
    for (const uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string tampered = *child;
      tampered[i] = static_cast<char>(tampered[i] ^ mask);
      auto verified =
          verify_token(tampered, kRoot.public_key, kBob.public_key, kNow, kNothingRevoked);
      ASSERT_FALSE(verified) << "byte " << i << " xor " << int{mask} << " still verified";
      EXPECT_EQ(verified.error().code(), ErrorCode::kUnauthorized);
    }
  }
}

TEST(TokenVerify, TamperedSignatureIsRefused) {
  authpb::SignedToken signed_pb;
  ASSERT_TRUE(signed_pb.ParseFromString(alice_token()));
  for (size_t i = 0; i < signed_pb.signature().size(); ++i) {
    authpb::SignedToken tampered = signed_pb;
    (*tampered.mutable_signature())[i] ^= 0x10;
    EXPECT_EQ(refusal(tampered.SerializeAsString(), kRoot.public_key, kAlice.public_key),
              "token signature is invalid")
        << "signature byte " << i;
  }
}

// The same body and signature in an envelope protobuf would accept but sign_token never
// writes: fields repeated, reordered, or followed by an unknown field.
TEST(TokenVerify, NonCanonicalEnvelopeIsRefused) {
  const std::string token = alice_token();
  authpb::SignedToken signed_pb;
  ASSERT_TRUE(signed_pb.ParseFromString(token));
  authpb::SignedToken body_only;
  body_only.set_body(signed_pb.body());
  authpb::SignedToken signature_only;
  signature_only.set_signature(signed_pb.signature());
  const std::string unknown_field = "\x18\x01";  // field 3, varint 1
  for (const std::string& variant :
       {token + token, signature_only.SerializeAsString() + body_only.SerializeAsString(),
        token + unknown_field}) {
    authpb::SignedToken reparsed;
    ASSERT_TRUE(reparsed.ParseFromString(variant));
    ASSERT_EQ(reparsed.body(), signed_pb.body());
    EXPECT_EQ(refusal(variant, kRoot.public_key, kAlice.public_key),
              "malformed token: not canonically encoded");
  }
}

TEST(TokenVerify, BodyWithUnknownFieldIsRefused) {
  authpb::TokenBody body =
      body_for(kRoot.public_key, kAlice.public_key, {{authpb::READ, "app/"}}, 1);
  body.GetReflection()->MutableUnknownFields(&body)->AddVarint(
      99, 1);  // a restriction from a later version, say
  EXPECT_EQ(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key),
            "malformed token: its body has fields this node does not know");
}

TEST(TokenVerify, TruncatedTokenIsRefused) {
  const std::string token = alice_token();
  for (size_t n = 0; n < token.size(); ++n) {
    EXPECT_FALSE(verify_token(token.substr(0, n), kRoot.public_key, kAlice.public_key, kNow,
                              kNothingRevoked))
        << "prefix of " << n << " bytes";
  }
}

TEST(TokenVerify, RevokedTokenIsRefused) {
  const std::string token = alice_token();
  const TokenId revoked = test_id(10);
  const std::function<bool(const TokenId&)> is_revoked = [&](const TokenId& id) {
    return id == revoked;
  };
  EXPECT_EQ(refusal(token, kRoot.public_key, kAlice.public_key, kNow, is_revoked),
            "token is revoked (id 0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a)");
}

TEST(TokenVerify, RevokedAncestorRefusesTheWholeChain) {
  auto child = delegate_token(alice_token(), kAlice.seed,
                              spec_for(kBob.public_key, caps({"read:app/"}), 20));
  ASSERT_TRUE(child) << child.error().to_string();
  const std::function<bool(const TokenId&)> parent_revoked = [](const TokenId& id) {
    return id == test_id(10);
  };
  EXPECT_NE(refusal(*child, kRoot.public_key, kBob.public_key, kNow, parent_revoked)
                .find("token at chain level 1 of 2 is revoked"),
            std::string::npos);
  const std::function<bool(const TokenId&)> other_revoked = [](const TokenId& id) {
    return id == test_id(99);
  };
  EXPECT_TRUE(verify_token(*child, kRoot.public_key, kBob.public_key, kNow, other_revoked));
}

TEST(TokenVerify, OversizedInputIsRefusedBeforeParsing) {
  const std::string huge(limits::kMaxTokenSizeBytes + 1, '\0');
  EXPECT_EQ(refusal(huge, kRoot.public_key, kAlice.public_key),
            "token is 16385 bytes; the limit is 16384 bytes");
}

TEST(TokenVerify, GarbageIsRefusedAsMalformed) {
  EXPECT_NE(refusal("not a token", kRoot.public_key, kAlice.public_key).find("malformed token"),
            std::string::npos);
  EXPECT_EQ(refusal("", kRoot.public_key, kAlice.public_key),
            "malformed token: signature is 0 bytes, expected 64");
}

TEST(TokenVerify, UnknownActionIsRefused) {
  authpb::TokenBody body = body_for(kRoot.public_key, kAlice.public_key, {{authpb::READ, "a"}}, 1);
  body.mutable_capabilities(0)->set_action(static_cast<authpb::Action>(99));
  EXPECT_EQ(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key),
            "malformed token: capability #1 has an unknown action (99)");
  body.mutable_capabilities(0)->set_action(authpb::ACTION_UNSPECIFIED);
  EXPECT_EQ(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key),
            "malformed token: capability #1 has an unknown action (0)");
}

TEST(TokenVerify, TooManyCapabilitiesAreRefused) {
  authpb::TokenBody body = body_for(kRoot.public_key, kAlice.public_key, {}, 1);
  for (size_t i = 0; i <= limits::kMaxTokenCapabilities; ++i) {
    authpb::Capability* c = body.add_capabilities();
    c->set_action(authpb::READ);
    c->set_prefix("a");
  }
  EXPECT_EQ(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key),
            "malformed token: 33 capabilities; the limit is 32");
}

TEST(TokenVerify, PrefixOverKeyLimitIsRefused) {
  const authpb::TokenBody body =
      body_for(kRoot.public_key, kAlice.public_key,
               {{authpb::READ, std::string(limits::kMaxKeySizeBytes + 1, 'k')}}, 1);
  EXPECT_NE(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key)
                .find("prefix is 1025 bytes"),
            std::string::npos);
}

TEST(TokenVerify, PrefixOnAdminIsRefused) {
  const authpb::TokenBody body =
      body_for(kRoot.public_key, kAlice.public_key, {{authpb::ADMIN, "x"}}, 1);
  EXPECT_NE(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key)
                .find("admin is not scoped"),
            std::string::npos);
}

TEST(TokenVerify, UnsupportedVersionAndBadFieldSizesAreRefused) {
  authpb::TokenBody body = body_for(kRoot.public_key, kAlice.public_key, {{authpb::READ, ""}}, 1);
  body.set_version(2);
  EXPECT_EQ(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key),
            "unsupported token version 2 (this node knows version 1)");
  body.set_version(1);
  body.set_id("short");
  EXPECT_EQ(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key),
            "malformed token: id is 5 bytes, expected 16");
  body = body_for(kRoot.public_key, kAlice.public_key, {{authpb::READ, ""}}, 1);
  body.set_audience_key(std::string(33, 'a'));
  EXPECT_EQ(refusal(sign_by_hand(body, kRoot.seed), kRoot.public_key, kAlice.public_key),
            "malformed token: audience key is 33 bytes, expected 32");
  authpb::SignedToken no_signature;
  no_signature.set_body(body_for(kRoot.public_key, kAlice.public_key, {}, 1).SerializeAsString());
  EXPECT_EQ(refusal(no_signature.SerializeAsString(), kRoot.public_key, kAlice.public_key),
            "malformed token: signature is 0 bytes, expected 64");
}

}  // namespace
}  // namespace aspen::auth::testing
