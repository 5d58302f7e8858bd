// Properties of tokens over random inputs: verification is total and unforgeable in
// practice, delegation only ever narrows, and the text form round-trips.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <string>

#include "core/limits.h"
#include "tests/auth/token_test_util.h"

namespace aspen::auth::testing {
namespace {

const TestKey kRoot = test_key(1);
const TestKey kAlice = test_key(2);
const TestKey kBob = test_key(3);

// A two-level chain to mutate: Alice's token, delegated to Bob.
const std::string& valid_chain() {
  static const std::string chain = [] {
    auto parent = issue_token(
        kRoot.seed, spec_for(kAlice.public_key, caps({"full:app/", "admin", "delegate"}), 10));
    auto child = delegate_token(*parent, kAlice.seed,
                                spec_for(kBob.public_key, caps({"read:app/x/", "admin"}), 20));
    return child.value_or("");
  }();
  return chain;
}

// Random edits of the kind a corrupting channel or an attacker makes.
std::string mutated(std::string s) {
  const int edits = *rc::gen::inRange(1, 5);
  for (int e = 0; e < edits; ++e) {
    if (s.empty()) s.push_back('\0');
    const size_t at = *rc::gen::inRange<size_t>(0, s.size());
    switch (*rc::gen::inRange(0, 5)) {
      case 0:
        s[at] = *rc::gen::arbitrary<char>();
        break;
      case 1:
        s[at] = static_cast<char>(s[at] ^ (1 << *rc::gen::inRange(0, 8)));
        break;
      case 2:
        s.erase(at, *rc::gen::inRange<size_t>(1, 16));
        break;
      case 3:
        s.insert(at, *rc::gen::container<std::string>(*rc::gen::inRange<size_t>(1, 8),
                                                      rc::gen::arbitrary<char>()));
        break;
      default:
        s.resize(at);
        break;
    }
  }
  return s;
}

RC_GTEST_PROP(TokenProperty, VerifyRefusesArbitraryBytes, ()) {
  const auto bytes = *rc::gen::arbitrary<std::string>();
  auto verified = verify_token(bytes, kRoot.public_key, kBob.public_key, kNow, kNothingRevoked);
  RC_ASSERT(!verified.has_value());
  RC_ASSERT(verified.error().code() == ErrorCode::kUnauthorized);
  (void)inspect_token(bytes);  // must not crash either
}

// Only the original bytes verify: the signature covers the body, the envelope must be
// canonically encoded, and Ed25519 signatures are not malleable.
RC_GTEST_PROP(TokenProperty, MutatedTokenNeverVerifies, ()) {
  const std::string& original = valid_chain();
  RC_PRE(!original.empty());
  const std::string token = mutated(original);
  auto verified = verify_token(token, kRoot.public_key, kBob.public_key, kNow, kNothingRevoked);
  if (!verified) {
    RC_ASSERT(verified.error().code() == ErrorCode::kUnauthorized);
    return;
  }
  RC_ASSERT(token == original);  // the edits cancelled out
}

// Keys from a tiny alphabet, so that random prefixes and keys often overlap.
rc::Gen<std::string> small_key() {
  return rc::gen::container<std::string>(*rc::gen::inRange<size_t>(0, 4),
                                         rc::gen::element('a', 'b', '/', '\xff'));
}

Action any_action() {
  return *rc::gen::element(Action::kFull, Action::kRead, Action::kWrite, Action::kDelete,
                           Action::kDelegate, Action::kAdmin);
}

Capability random_capability() {
  const Action action = any_action();
  return Capability{action, is_prefix_scoped(action) ? *small_key() : ""};
}

// Mostly a narrowing of one of the parent's capabilities, sometimes anything at all.
Capability child_capability(const std::vector<Capability>& parent) {
  if (parent.empty() || *rc::gen::inRange(0, 4) == 0) return random_capability();
  Capability c = *rc::gen::elementOf(parent);
  if (c.action == Action::kFull && *rc::gen::arbitrary<bool>()) {
    c.action = *rc::gen::element(Action::kRead, Action::kWrite, Action::kDelete);
  }
  if (is_prefix_scoped(c.action)) c.prefix += *small_key();
  return c;
}

// Whatever delegate_token accepts verifies and grants no more than its parent; whatever it
// refuses, verify_token refuses too when the holder signs it anyway.
RC_GTEST_PROP(TokenProperty, DelegationOnlyNarrows, ()) {
  std::vector<Capability> parent_caps = *rc::gen::container<std::vector<Capability>>(
      *rc::gen::inRange<size_t>(0, 5), rc::gen::exec(random_capability));
  if (*rc::gen::inRange(0, 5) != 0) parent_caps.push_back(Capability{Action::kDelegate, ""});
  auto parent =
      issue_token(kRoot.seed, spec_for(kAlice.public_key, parent_caps, 10, kNow - 100, kNow + 100));
  RC_ASSERT(parent.has_value());
  auto parent_verified =
      verify_token(*parent, kRoot.public_key, kAlice.public_key, kNow, kNothingRevoked);
  RC_ASSERT(parent_verified.has_value());

  TokenSpec spec;
  spec.audience = kBob.public_key;
  spec.id = test_id(20);
  const size_t n = *rc::gen::inRange<size_t>(0, 5);
  for (size_t i = 0; i < n; ++i) spec.capabilities.push_back(child_capability(parent_caps));
  spec.not_before_s = kNow - *rc::gen::inRange<uint64_t>(0, 110);
  spec.expires_s = kNow + *rc::gen::inRange<uint64_t>(1, 110);
  const uint64_t now_s = spec.not_before_s;  // inside the child's window, maybe not the parent's

  auto child = delegate_token(*parent, kAlice.seed, spec);
  const std::string signed_anyway = internal::sign_token(kAlice.seed, spec, *parent);
  auto verified =
      verify_token(signed_anyway, kRoot.public_key, kBob.public_key, now_s, kNothingRevoked);
  RC_ASSERT(child.has_value() == verified.has_value());
  if (!child) {
    RC_TAG("refused");
    return;
  }
  RC_TAG("delegated");
  RC_ASSERT(*child == signed_anyway);
  RC_ASSERT(verified->capabilities == spec.capabilities);
  for (int i = 0; i < 50; ++i) {
    const Action action = any_action();
    const std::string key = *small_key();
    if (allows_key(*verified, action, key)) RC_ASSERT(allows_key(*parent_verified, action, key));
    const std::string start = *small_key();
    const std::string end = *small_key();
    if (allows_range(*verified, action, start, end))
      RC_ASSERT(allows_range(*parent_verified, action, start, end));
  }
}

RC_GTEST_PROP(TokenProperty, TextFormRoundTrips, ()) {
  const auto size = *rc::gen::inRange<size_t>(0, limits::kMaxTokenSizeBytes + 1);
  const auto bytes = *rc::gen::container<std::string>(size, rc::gen::arbitrary<char>());
  const std::string text = encode_token_text(bytes);
  auto decoded = decode_token_text(text);
  if (bytes.empty()) {
    RC_ASSERT(!decoded.has_value());  // nothing after the prefix
    return;
  }
  RC_ASSERT(decoded.has_value());
  RC_ASSERT(*decoded == bytes);
  RC_ASSERT(*decode_token_text(text + "\n") == bytes);
}

RC_GTEST_PROP(TokenProperty, DecodeTextNeverCrashes, ()) {
  const auto noise = *rc::gen::arbitrary<std::string>();
  (void)decode_token_text(noise);
  (void)decode_token_text(std::string(kTokenTextPrefix) + noise);
}

}  // namespace
}  // namespace aspen::auth::testing
