// token_verify: bytes presented as a capability token (verify_token), read as a token's text
// form (decode_token_text) and described (inspect_token). Properties: no assert fires;
// verification only ever accepts the seeds' tokens byte for byte (nothing else is signed by
// the root key here, and a token has one encoding); inspection accepts everything
// verification does; text that decodes re-encodes to itself (the text form is canonical).
#include <algorithm>

#include "auth/token.h"
#include "auth/token_text.h"
#include "fuzz/harness/harness.h"

namespace aspen::fuzz {
namespace {

using auth::Capability;
using auth::KeyBytes;
using auth::SeedBytes;
using auth::TokenSpec;

constexpr uint64_t kNowS = 1767225600;

SeedBytes seed_of(uint8_t byte) {
  SeedBytes seed{};
  seed.fill(byte);
  return seed;
}

struct Keys {
  SeedBytes root = seed_of(1);
  SeedBytes alice = seed_of(2);
  SeedBytes carol = seed_of(3);
  KeyBytes root_public = auth::public_key_of(root);
  KeyBytes alice_public = auth::public_key_of(alice);
  KeyBytes carol_public = auth::public_key_of(carol);
  KeyBytes bob_public = auth::public_key_of(seed_of(4));  // the presenter
};

const Keys& keys() {
  static const Keys k;
  return k;
}

TokenSpec spec(const KeyBytes& audience, std::vector<Capability> capabilities, uint8_t id) {
  TokenSpec s{audience, std::move(capabilities), kNowS - 60, kNowS + 3600, {}};
  s.id.fill(id);
  return s;
}

// Tokens Bob may present: one from the root, and a three-level chain root -> Alice -> Carol -> Bob.
const std::vector<std::string>& valid_tokens() {
  static const std::vector<std::string> tokens = [] {
    const Keys& k = keys();
    const Capability delegate{auth::Action::kDelegate, ""};
    std::vector<std::string> out;
    out.push_back(
        *auth::issue_token(k.root, spec(k.bob_public, {{auth::Action::kRead, "app/"}}, 1)));
    auto a = auth::issue_token(k.root,
                               spec(k.alice_public, {{auth::Action::kFull, "app/"}, delegate}, 2));
    auto c = auth::delegate_token(
        *a, k.alice, spec(k.carol_public, {{auth::Action::kWrite, "app/c/"}, delegate}, 3));
    out.push_back(*auth::delegate_token(
        *c, k.carol, spec(k.bob_public, {{auth::Action::kWrite, "app/c/b"}}, 4)));
    return out;
  }();
  return tokens;
}

std::string_view trimmed(std::string_view text) {
  const auto is_space = [](char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

void check_token(std::string_view token) {
  const Keys& k = keys();
  auto verified = auth::verify_token(token, k.root_public, k.bob_public, kNowS, {});
  auto description = auth::inspect_token(token);
  if (!verified) {
    check(verified.error().code() == ErrorCode::kUnauthorized,
          "verify_token failed with a code other than Unauthorized");
    return;
  }
  const auto& valid = valid_tokens();
  check(std::find(valid.begin(), valid.end(), token) != valid.end(),
        "a token verified that was never issued");
  check(description.has_value(), "inspect_token refused a token that verifies");
}

}  // namespace

int token_verify_one_input(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_token(input);
  auto decoded = auth::decode_token_text(input);
  if (decoded) {
    check(auth::encode_token_text(*decoded) == trimmed(input),
          "decoded token text does not re-encode to itself");
    check_token(*decoded);
  }
  return 0;
}

std::vector<std::string> token_verify_seeds() {
  std::vector<std::string> seeds = valid_tokens();
  for (const std::string& token : valid_tokens())
    seeds.push_back(auth::encode_token_text(token) + "\n");
  return seeds;
}

}  // namespace aspen::fuzz
