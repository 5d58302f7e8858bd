// Delegated tokens: a holder narrows its token for another key; nothing may widen it, whether
// through delegate_token or a child built and signed by hand.
#include <gtest/gtest.h>

#include <string>

#include "core/limits.h"
#include "tests/auth/token_test_util.h"

namespace aspen::auth::testing {
namespace {

const TestKey kRoot = test_key(1);
const TestKey kAlice = test_key(2);
const TestKey kBob = test_key(3);
const TestKey kCarol = test_key(4);

std::string alice_token(std::vector<Capability> capabilities = caps({"read:app/", "write:app/",
                                                                     "delegate"})) {
  auto token = issue_token(kRoot.seed, spec_for(kAlice.public_key, std::move(capabilities), 10));
  EXPECT_TRUE(token) << token.error().to_string();
  return token.value_or("");
}

// The InvalidArgument reason delegate_token gives, or a failure if it delegated.
std::string delegation_refusal(std::string_view parent, const SeedBytes& holder,
                               const TokenSpec& spec) {
  auto child = delegate_token(parent, holder, spec);
  if (child) {
    ADD_FAILURE() << "delegation unexpectedly succeeded";
    return {};
  }
  EXPECT_EQ(child.error().code(), ErrorCode::kInvalidArgument) << child.error().to_string();
  return child.error().message();
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(TokenDelegation, NarrowerChildVerifiesForItsAudience) {
  const TokenSpec spec =
      spec_for(kBob.public_key, caps({"read:app/sub/"}), 20, kNow - 10, kNow + 60);
  auto child = delegate_token(alice_token(), kAlice.seed, spec);
  ASSERT_TRUE(child) << child.error().to_string();
  auto verified = verify_token(*child, kRoot.public_key, kBob.public_key, kNow, kNothingRevoked);
  ASSERT_TRUE(verified) << verified.error().to_string();
  EXPECT_EQ(verified->depth, 2u);
  EXPECT_EQ(verified->id, test_id(20));
  EXPECT_EQ(verified->chain_ids, (std::vector<TokenId>{test_id(10), test_id(20)}));
  EXPECT_EQ(verified->capabilities, spec.capabilities);
  EXPECT_TRUE(allows_key(*verified, Action::kRead, "app/sub/x"));
  EXPECT_FALSE(allows_key(*verified, Action::kRead, "app/x"));
  EXPECT_FALSE(allows_key(*verified, Action::kWrite, "app/sub/x"));
  // The parent's holder cannot present the child.
  EXPECT_FALSE(verify_token(*child, kRoot.public_key, kAlice.public_key, kNow, kNothingRevoked));
}

TEST(TokenDelegation, FullParentCoversNarrowerActions) {
  const std::string parent = alice_token(caps({"full:app/", "delegate"}));
  auto child = delegate_token(
      parent, kAlice.seed,
      spec_for(kBob.public_key,
               caps({"read:app/a", "write:app/", "delete:app/z", "full:app/f", "delegate"}), 20));
  ASSERT_TRUE(child) << child.error().to_string();
  EXPECT_TRUE(verify_token(*child, kRoot.public_key, kBob.public_key, kNow, kNothingRevoked));
}

TEST(TokenDelegation, GrandchildVerifiesWhenEachLevelDelegates) {
  auto child = delegate_token(alice_token(), kAlice.seed,
                              spec_for(kBob.public_key, caps({"read:app/", "delegate"}), 20));
  ASSERT_TRUE(child) << child.error().to_string();
  auto grandchild =
      delegate_token(*child, kBob.seed, spec_for(kCarol.public_key, caps({"read:app/c/"}), 30));
  ASSERT_TRUE(grandchild) << grandchild.error().to_string();
  auto verified =
      verify_token(*grandchild, kRoot.public_key, kCarol.public_key, kNow, kNothingRevoked);
  ASSERT_TRUE(verified) << verified.error().to_string();
  EXPECT_EQ(verified->depth, 3u);
  EXPECT_EQ(verified->chain_ids, (std::vector<TokenId>{test_id(10), test_id(20), test_id(30)}));
}

TEST(TokenDelegation, WideningThePrefixIsRefused) {
  EXPECT_EQ(delegation_refusal(alice_token(), kAlice.seed,
                               spec_for(kBob.public_key, caps({"read:ap"}), 20)),
            "cannot delegate: capability read:ap is not within the parent token's capabilities");
  EXPECT_TRUE(contains(delegation_refusal(alice_token(), kAlice.seed,
                                          spec_for(kBob.public_key, caps({"read:"}), 20)),
                       "read: is not within"));
}

TEST(TokenDelegation, WideningTheActionIsRefused) {
  const std::string parent = alice_token(caps({"read:app/", "delegate"}));
  EXPECT_TRUE(contains(
      delegation_refusal(parent, kAlice.seed, spec_for(kBob.public_key, caps({"write:app/"}), 20)),
      "write:app/ is not within"));
  EXPECT_TRUE(contains(
      delegation_refusal(parent, kAlice.seed, spec_for(kBob.public_key, caps({"full:app/x"}), 20)),
      "full:app/x is not within"));
}

TEST(TokenDelegation, AdminIsGrantedOnlyUnderAdmin) {
  const std::string full_parent = alice_token(caps({"full:", "delegate"}));
  EXPECT_TRUE(contains(
      delegation_refusal(full_parent, kAlice.seed, spec_for(kBob.public_key, caps({"admin"}), 20)),
      "admin is not within"));
  const std::string admin_parent = alice_token(caps({"admin", "delegate"}));
  EXPECT_TRUE(
      delegate_token(admin_parent, kAlice.seed, spec_for(kBob.public_key, caps({"admin"}), 20)));
}

TEST(TokenDelegation, WindowOutsideTheParentsIsRefused) {
  const std::string parent = alice_token();  // valid [kNow - 60, kNow + 3600)
  EXPECT_TRUE(contains(
      delegation_refusal(parent, kAlice.seed,
                         spec_for(kBob.public_key, caps({"read:app/"}), 20, kNow - 61, kNow)),
      "is not within the parent token's"));
  EXPECT_TRUE(contains(
      delegation_refusal(parent, kAlice.seed,
                         spec_for(kBob.public_key, caps({"read:app/"}), 20, kNow, kNow + 3601)),
      "is not within the parent token's"));
}

TEST(TokenDelegation, ParentWithoutDelegateCannotDelegate) {
  const std::string parent = alice_token(caps({"full:"}));
  EXPECT_EQ(
      delegation_refusal(parent, kAlice.seed, spec_for(kBob.public_key, caps({"read:app/"}), 20)),
      "cannot delegate: the parent token does not grant delegate");
}

TEST(TokenDelegation, OnlyTheParentsAudienceCanDelegate) {
  EXPECT_TRUE(contains(delegation_refusal(alice_token(), kBob.seed,
                                          spec_for(kCarol.public_key, caps({"read:app/"}), 20)),
                       "the signing key is not the parent token's audience"));
}

TEST(TokenDelegation, MalformedParentIsRefused) {
  EXPECT_TRUE(contains(delegation_refusal("garbage", kAlice.seed,
                                          spec_for(kBob.public_key, caps({"read:app/"}), 20)),
                       "cannot delegate: malformed token"));
}

// A chain of exactly kMaxTokenChainDepth levels verifies; a further level is refused by
// delegate_token, and by verify_token when built by hand.
TEST(TokenDelegation, ChainDepthIsLimited) {
  std::vector<TestKey> holders;
  for (uint8_t i = 0; i <= limits::kMaxTokenChainDepth; ++i)
    holders.push_back(test_key(static_cast<uint8_t>(100 + i)));
  auto token =
      issue_token(kRoot.seed, spec_for(holders[0].public_key, caps({"read:", "delegate"}), 0));
  ASSERT_TRUE(token);
  for (size_t depth = 2; depth <= limits::kMaxTokenChainDepth; ++depth) {
    token = delegate_token(*token, holders[depth - 2].seed,
                           spec_for(holders[depth - 1].public_key, caps({"read:", "delegate"}),
                                    static_cast<uint8_t>(depth)));
    ASSERT_TRUE(token) << "depth " << depth << ": " << token.error().to_string();
  }
  const size_t last = limits::kMaxTokenChainDepth - 1;
  auto verified =
      verify_token(*token, kRoot.public_key, holders[last].public_key, kNow, kNothingRevoked);
  ASSERT_TRUE(verified) << verified.error().to_string();
  EXPECT_EQ(verified->depth, limits::kMaxTokenChainDepth);
  EXPECT_EQ(verified->chain_ids.size(), limits::kMaxTokenChainDepth);

  const TokenSpec one_more = spec_for(holders[last + 1].public_key, caps({"read:"}), 99);
  EXPECT_EQ(delegation_refusal(*token, holders[last].seed, one_more),
            "cannot delegate: the chain would be 9 levels deep; the limit is 8");
  const authpb::TokenBody body = body_for(holders[last].public_key, holders[last + 1].public_key,
                                          {{authpb::READ, ""}}, 99, *token);
  EXPECT_EQ(refusal(sign_by_hand(body, holders[last].seed), kRoot.public_key,
                    holders[last + 1].public_key),
            "token chain is deeper than the limit of 8 levels");
}

// What limits.h promises: a chain of full depth whose every level scopes one maximal
// prefix fits the size limit.
TEST(TokenDelegation, FullDepthChainWithMaximalPrefixesFits) {
  const Capability read{Action::kRead, std::string(limits::kMaxKeySizeBytes, 'p')};
  const Capability delegate{Action::kDelegate, ""};
  std::vector<TestKey> holders;
  for (uint8_t i = 0; i < limits::kMaxTokenChainDepth; ++i) {
    holders.push_back(test_key(static_cast<uint8_t>(100 + i)));
  }
  auto token = issue_token(kRoot.seed, spec_for(holders[0].public_key, {read, delegate}, 0));
  ASSERT_TRUE(token) << token.error().to_string();
  for (size_t i = 1; i < limits::kMaxTokenChainDepth; ++i) {
    token =
        delegate_token(*token, holders[i - 1].seed,
                       spec_for(holders[i].public_key, {read, delegate}, static_cast<uint8_t>(i)));
    ASSERT_TRUE(token) << "level " << i + 1 << ": " << token.error().to_string();
  }
  EXPECT_LE(token->size(), limits::kMaxTokenSizeBytes);
  EXPECT_TRUE(
      verify_token(*token, kRoot.public_key, holders.back().public_key, kNow, kNothingRevoked));
}

TEST(TokenDelegation, ChildOverTheSizeLimitIsRefused) {
  // A parent of about 10 KiB: its child, which carries it, would be over 16 KiB.
  const std::vector<Capability> wide(10, Capability{Action::kRead, std::string(1000, 'k')});
  std::vector<Capability> with_delegate = wide;
  with_delegate.push_back(Capability{Action::kDelegate, ""});
  const std::string parent = alice_token(with_delegate);
  ASSERT_FALSE(parent.empty());
  EXPECT_TRUE(contains(delegation_refusal(parent, kAlice.seed, spec_for(kBob.public_key, wide, 20)),
                       "the limit is 16384 bytes"));
}

// --- children built by hand, as an attacker holding the parent's key would ---

TEST(TokenDelegation, HandBuiltWideningChildIsRefusedByVerify) {
  const std::string parent = alice_token();
  const authpb::TokenBody wider_prefix =
      body_for(kAlice.public_key, kBob.public_key, {{authpb::READ, "ap"}}, 20, parent);
  EXPECT_EQ(refusal(sign_by_hand(wider_prefix, kAlice.seed), kRoot.public_key, kBob.public_key),
            "delegated token at chain level 2 of 2 is not narrower than its parent: capability "
            "read:ap is not "
            "within the parent token's capabilities");
  const authpb::TokenBody wider_action =
      body_for(kAlice.public_key, kBob.public_key, {{authpb::DELETE, "app/"}}, 20, parent);
  EXPECT_TRUE(
      contains(refusal(sign_by_hand(wider_action, kAlice.seed), kRoot.public_key, kBob.public_key),
               "delete:app/ is not within"));
  const authpb::TokenBody admin =
      body_for(kAlice.public_key, kBob.public_key, {{authpb::ADMIN, ""}}, 20, parent);
  EXPECT_TRUE(contains(refusal(sign_by_hand(admin, kAlice.seed), kRoot.public_key, kBob.public_key),
                       "admin is not within"));
}

TEST(TokenDelegation, HandBuiltChildOutlivingItsParentIsRefusedByVerify) {
  authpb::TokenBody longer =
      body_for(kAlice.public_key, kBob.public_key, {{authpb::READ, "app/"}}, 20, alice_token());
  longer.set_expires_s(kNow + 7200);
  EXPECT_TRUE(
      contains(refusal(sign_by_hand(longer, kAlice.seed), kRoot.public_key, kBob.public_key),
               "is not within the parent token's ["));
}

TEST(TokenDelegation, HandBuiltChildOfParentWithoutDelegateIsRefusedByVerify) {
  const std::string parent = alice_token(caps({"read:app/"}));
  const authpb::TokenBody body =
      body_for(kAlice.public_key, kBob.public_key, {{authpb::READ, "app/"}}, 20, parent);
  EXPECT_TRUE(contains(refusal(sign_by_hand(body, kAlice.seed), kRoot.public_key, kBob.public_key),
                       "the parent token does not grant delegate"));
}

TEST(TokenDelegation, HandBuiltChildSignedByAnotherKeyIsRefusedByVerify) {
  // Carol cannot extend Alice's token, whether she names herself or Alice as the issuer.
  const std::string parent = alice_token();
  const authpb::TokenBody as_carol =
      body_for(kCarol.public_key, kBob.public_key, {{authpb::READ, "app/"}}, 20, parent);
  EXPECT_TRUE(
      contains(refusal(sign_by_hand(as_carol, kCarol.seed), kRoot.public_key, kBob.public_key),
               "not by its parent's audience"));
  const authpb::TokenBody as_alice =
      body_for(kAlice.public_key, kBob.public_key, {{authpb::READ, "app/"}}, 20, parent);
  EXPECT_EQ(refusal(sign_by_hand(as_alice, kCarol.seed), kRoot.public_key, kBob.public_key),
            "token signature at chain level 2 of 2 is invalid");
}

}  // namespace
}  // namespace aspen::auth::testing
