// The text form of tokens and `auth token inspect`'s description.
#include "auth/token_text.h"

#include <gtest/gtest.h>

#include <string>

#include "core/limits.h"
#include "tests/auth/token_test_util.h"

namespace aspen::auth::testing {
namespace {

const TestKey kRoot = test_key(1);
const TestKey kAlice = test_key(2);
const TestKey kBob = test_key(3);

std::string text_error(std::string_view text) {
  auto decoded = decode_token_text(text);
  if (decoded) {
    ADD_FAILURE() << "text unexpectedly decoded: " << text;
    return {};
  }
  EXPECT_EQ(decoded.error().code(), ErrorCode::kInvalidArgument);
  return decoded.error().message();
}

TEST(TokenText, RoundTripKeepsTheTokenBytes) {
  auto token = issue_token(kRoot.seed, spec_for(kAlice.public_key, caps({"read:app/"}), 1));
  ASSERT_TRUE(token);
  const std::string text = encode_token_text(*token);
  ASSERT_TRUE(text.starts_with("aspentoken1"));
  for (char c : text.substr(kTokenTextPrefix.size())) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')
        << "unexpected '" << c << "'";
  }
  auto decoded = decode_token_text(text);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(*decoded, *token);
}

TEST(TokenText, SurroundingWhitespaceIsIgnored) {
  const std::string text = encode_token_text("token bytes");
  auto decoded = decode_token_text("  \t" + text + "\r\n");
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(*decoded, "token bytes");
}

TEST(TokenText, TextWithoutThePrefixIsRefused) {
  EXPECT_EQ(text_error("aspen2abc"),
            "not an Aspen token: expected text starting with 'aspentoken1'");
  EXPECT_EQ(text_error(""), "not an Aspen token: expected text starting with 'aspentoken1'");
}

TEST(TokenText, NothingAfterThePrefixIsRefused) {
  EXPECT_EQ(text_error("aspentoken1\n"), "token text has nothing after 'aspentoken1'");
}

TEST(TokenText, CharacterOutsideUrlSafeBase64IsRefusedWithItsPosition) {
  EXPECT_EQ(text_error("aspentoken1ab+d"),
            "token text has a character that is not URL-safe base64 at position 14");
  EXPECT_EQ(text_error("aspentoken1abc="),
            "token text has a character that is not URL-safe base64 at position 15");
  EXPECT_EQ(text_error("aspentoken1ab cd"),
            "token text has a character that is not URL-safe base64 at position 14");
  // libsodium 1.0.18 alone would read any byte >= 0x80 as '_'.
  EXPECT_EQ(text_error("aspentoken1AAA\x8c"),
            "token text has a character that is not URL-safe base64 at position 15");
}

TEST(TokenText, TruncatedBase64IsRefused) {
  // One character carries 6 bits, not a whole byte; "AB" leaves non-zero spare bits.
  EXPECT_EQ(text_error("aspentoken1A"),
            "token text is not valid URL-safe base64 (truncated or corrupted?)");
  EXPECT_EQ(text_error("aspentoken1AB"),
            "token text is not valid URL-safe base64 (truncated or corrupted?)");
}

TEST(TokenText, TextLongerThanAnyTokenIsRefused) {
  const std::string at_limit = encode_token_text(std::string(limits::kMaxTokenSizeBytes, 'x'));
  EXPECT_TRUE(decode_token_text(at_limit));
  EXPECT_NE(text_error(at_limit + "AAAA").find("a token of at most 16384 bytes"),
            std::string::npos);
}

TEST(TokenText, InspectDescribesTheChainWithoutVerifying) {
  auto parent =
      issue_token(kRoot.seed, spec_for(kAlice.public_key, caps({"read:app/", "delegate"}), 0xab));
  ASSERT_TRUE(parent);
  auto child = delegate_token(
      *parent, kAlice.seed,
      spec_for(kBob.public_key, {Capability{Action::kRead, "app/\x01"}}, 0xcd, kNow, kNow + 60));
  ASSERT_TRUE(child) << child.error().to_string();
  auto description = inspect_token(*child);
  ASSERT_TRUE(description) << description.error().to_string();
  const std::string expected =
      "capability token: NOT VERIFIED (signatures, expiry and revocation were not checked)\n"
      "chain depth:    2 (delegated)\n"
      "level 1 (claims the root key as issuer):\n"
      "  id:           abababababababababababababababab\n"
      "  issuer:       " +
      internal::hex(kRoot.public_key) +
      "\n"
      "  audience:     " +
      internal::hex(kAlice.public_key) +
      "\n"
      "  capabilities: read:app/ delegate\n"
      "  not before:   2025-12-31T23:59:00Z (1767225540)\n"
      "  expires:      2026-01-01T01:00:00Z (1767229200)\n"
      "level 2 (the presented token):\n"
      "  id:           cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\n"
      "  issuer:       " +
      internal::hex(kAlice.public_key) +
      "\n"
      "  audience:     " +
      internal::hex(kBob.public_key) +
      "\n"
      "  capabilities: read:app/\\x01\n"
      "  not before:   2026-01-01T00:00:00Z (1767225600)\n"
      "  expires:      2026-01-01T00:01:00Z (1767225660)\n";
  EXPECT_EQ(*description, expected);
}

TEST(TokenText, InspectShowsEvenATokenThatWouldNotVerify) {
  // Signed by the wrong key and long expired: inspect still shows what it claims.
  auto forged = issue_token(kAlice.seed, spec_for(kBob.public_key, caps({"full:"}), 1, 0, 1));
  ASSERT_TRUE(forged);
  auto description = inspect_token(*forged);
  ASSERT_TRUE(description) << description.error().to_string();
  EXPECT_NE(description->find("NOT VERIFIED"), std::string::npos);
  EXPECT_NE(description->find("expires:      1970-01-01T00:00:01Z (1)"), std::string::npos);
}

TEST(TokenText, InspectRefusesMalformedBytes) {
  auto description = inspect_token("garbage");
  ASSERT_FALSE(description);
  EXPECT_EQ(description.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(description.error().message(), "malformed token: not a signed token");
}

TEST(TokenText, TimesPastYear9999AreShownAsNumbers) {
  EXPECT_EQ(internal::format_unix_time(253402300799), "9999-12-31T23:59:59Z (253402300799)");
  EXPECT_EQ(internal::format_unix_time(253402300800), "253402300800");
  EXPECT_EQ(internal::format_unix_time(951782400), "2000-02-29T00:00:00Z (951782400)");
}

}  // namespace
}  // namespace aspen::auth::testing
