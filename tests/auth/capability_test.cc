// Capabilities: their text form, and which keys and ranges a verified token's set allows.
#include "auth/capability.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <string>

#include "auth/authorize.h"
#include "core/limits.h"

namespace aspen::auth {
namespace {

VerifiedToken token_with(std::initializer_list<std::string_view> texts) {
  VerifiedToken token;
  for (std::string_view text : texts) {
    auto c = parse_capability(text);
    EXPECT_TRUE(c) << c.error().to_string();
    if (c) token.capabilities.push_back(*c);
  }
  return token;
}

std::string parse_error(std::string_view text) {
  auto c = parse_capability(text);
  if (c) {
    ADD_FAILURE() << "capability unexpectedly parsed: " << text;
    return {};
  }
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  return c.error().message();
}

// --- text form ---

TEST(Capability, EveryFormParsesAndFormatsBack) {
  const std::vector<std::pair<std::string_view, Capability>> forms = {
      {"read:app/", {Action::kRead, "app/"}},
      {"write:app/", {Action::kWrite, "app/"}},
      {"delete:app/", {Action::kDelete, "app/"}},
      {"full:app/", {Action::kFull, "app/"}},
      {"read:", {Action::kRead, ""}},
      {"write:a:b", {Action::kWrite, "a:b"}},
      {"admin", {Action::kAdmin, ""}},
      {"delegate", {Action::kDelegate, ""}},
  };
  for (const auto& [text, expected] : forms) {
    auto parsed = parse_capability(text);
    ASSERT_TRUE(parsed) << text << ": " << parsed.error().to_string();
    EXPECT_EQ(*parsed, expected) << text;
    EXPECT_EQ(format_capability(*parsed), text);
  }
}

TEST(Capability, UnknownActionIsRefusedNamingIt) {
  EXPECT_EQ(parse_error("raed:app/"),
            "unknown capability action 'raed' in 'raed:app/' (expected read, write, delete, full, "
            "admin or delegate)");
  EXPECT_NE(parse_error("READ:app/").find("'READ'"), std::string::npos);
}

TEST(Capability, ScopedActionWithoutPrefixIsRefused) {
  EXPECT_EQ(parse_error("read"),
            "capability 'read' needs a key prefix: read:<prefix> (read: for every key)");
}

TEST(Capability, PrefixOnAdminOrDelegateIsRefused) {
  EXPECT_NE(parse_error("admin:x").find("admin is not scoped to a key prefix"), std::string::npos);
  EXPECT_NE(parse_error("delegate:").find("delegate is not scoped to a key prefix"),
            std::string::npos);
}

TEST(Capability, EmptyTextIsRefused) {
  EXPECT_NE(parse_error("").find("empty capability"), std::string::npos);
}

TEST(Capability, PrefixOverKeyLimitIsRefused) {
  EXPECT_TRUE(parse_capability("read:" + std::string(limits::kMaxKeySizeBytes, 'k')));
  EXPECT_EQ(parse_error("read:" + std::string(limits::kMaxKeySizeBytes + 1, 'k')),
            "capability prefix is 1025 bytes; the limit is 1024 bytes (the key limit)");
}

RC_GTEST_PROP(Capability, FormatThenParseIsIdentity, ()) {
  const auto action = *rc::gen::element(Action::kFull, Action::kRead, Action::kWrite,
                                        Action::kDelete, Action::kDelegate, Action::kAdmin);
  Capability c{action, {}};
  if (is_prefix_scoped(action)) {
    c.prefix = *rc::gen::container<std::string>(*rc::gen::inRange<size_t>(0, 40),
                                                rc::gen::arbitrary<char>());
  }
  auto parsed = parse_capability(format_capability(c));
  RC_ASSERT(parsed.has_value());
  RC_ASSERT(*parsed == c);
}

// --- keys ---

TEST(CapabilityScope, PrefixAllowsKeysUnderItOnly) {
  const VerifiedToken token = token_with({"read:app/"});
  EXPECT_TRUE(allows_key(token, Action::kRead, "app/x"));
  EXPECT_TRUE(allows_key(token, Action::kRead, "app/"));
  EXPECT_FALSE(allows_key(token, Action::kRead, "apz"));
  EXPECT_FALSE(allows_key(token, Action::kRead, "ap"));
  EXPECT_FALSE(allows_key(token, Action::kRead, ""));
  EXPECT_FALSE(allows_key(token, Action::kWrite, "app/x"));
  EXPECT_FALSE(allows_key(token, Action::kFull, "app/x"));
}

TEST(CapabilityScope, EmptyPrefixCoversEveryKey) {
  const VerifiedToken token = token_with({"write:"});
  EXPECT_TRUE(allows_key(token, Action::kWrite, ""));
  EXPECT_TRUE(allows_key(token, Action::kWrite, "\xff\xff"));
  EXPECT_FALSE(allows_key(token, Action::kRead, "a"));
}

TEST(CapabilityScope, FullCoversReadWriteDeleteButNotAdminOrDelegate) {
  const VerifiedToken token = token_with({"full:app/"});
  for (Action a : {Action::kRead, Action::kWrite, Action::kDelete, Action::kFull}) {
    EXPECT_TRUE(allows_key(token, a, "app/k")) << action_name(a);
    EXPECT_FALSE(allows_key(token, a, "other")) << action_name(a);
  }
  EXPECT_FALSE(allows_key(token, Action::kAdmin, "app/k"));
  EXPECT_FALSE(allows_key(token, Action::kDelegate, "app/k"));
}

TEST(CapabilityScope, AdminAndDelegateMatchOnlyThemselvesWhateverTheKey) {
  const VerifiedToken token = token_with({"admin", "delegate"});
  EXPECT_TRUE(allows_key(token, Action::kAdmin, "anything"));
  EXPECT_TRUE(allows_key(token, Action::kDelegate, ""));
  EXPECT_TRUE(allows_range(token, Action::kAdmin, "a", "b"));
  for (Action a : {Action::kRead, Action::kWrite, Action::kDelete, Action::kFull}) {
    EXPECT_FALSE(allows_key(token, a, "anything")) << action_name(a);
  }
  EXPECT_FALSE(allows_key(token_with({"full:"}), Action::kAdmin, ""));
}

TEST(CapabilityScope, FullGrantedOnlyByFull) {
  const VerifiedToken token = token_with({"read:", "write:", "delete:"});
  EXPECT_FALSE(allows_key(token, Action::kFull, "k"));
}

// --- ranges ---

TEST(CapabilityScope, RangeInsideThePrefixIsAllowed) {
  const VerifiedToken token = token_with({"read:app/"});
  EXPECT_TRUE(allows_range(token, Action::kRead, "app/a", "app/b"));
  EXPECT_TRUE(allows_range(token, Action::kRead, "app/", "app0"));  // exactly the prefix's range
  EXPECT_FALSE(allows_range(token, Action::kRead, "app/", "app1"));
  EXPECT_FALSE(allows_range(token, Action::kRead, "ap", "app/x"));
  EXPECT_FALSE(allows_range(token, Action::kRead, "app/a", ""));  // to the end of the keyspace
  EXPECT_FALSE(allows_range(token, Action::kWrite, "app/a", "app/b"));
}

TEST(CapabilityScope, EmptyEndNeedsAPrefixReachingTheEndOfTheKeyspace) {
  EXPECT_TRUE(allows_range(token_with({"read:"}), Action::kRead, "", ""));
  EXPECT_TRUE(allows_range(token_with({"read:"}), Action::kRead, "x", ""));
  EXPECT_TRUE(allows_range(token_with({"read:\xff\xff"}), Action::kRead, "\xff\xff", ""));
  EXPECT_FALSE(allows_range(token_with({"read:\xff\xff"}), Action::kRead, "\xff", ""));
}

TEST(CapabilityScope, RangeIsNotPiecedTogetherFromSeveralCapabilities) {
  const VerifiedToken token = token_with({"read:a", "read:b"});
  EXPECT_TRUE(allows_range(token, Action::kRead, "a", "b"));
  EXPECT_TRUE(allows_range(token, Action::kRead, "b", "c"));
  EXPECT_FALSE(allows_range(token, Action::kRead, "a", "c"));
}

TEST(CapabilityScope, PrefixEndSkipsTrailingFfBytes) {
  EXPECT_EQ(prefix_end("app/"), "app0");
  EXPECT_EQ(prefix_end("a\xff"), "b");
  EXPECT_EQ(prefix_end("\xff\xff"), "");
  EXPECT_EQ(prefix_end(""), "");
}

TEST(CapabilityScope, MissingCapabilityNamesActionAndKey) {
  EXPECT_EQ(describe_missing(Action::kRead, "app/x"), "missing capability read:app/x");
  EXPECT_EQ(describe_missing(Action::kDelete, std::string_view("a\0\xff", 3)),
            "missing capability delete:a\\x00\\xff");
  EXPECT_EQ(describe_missing(Action::kAdmin, "ignored"), "missing capability admin");
  EXPECT_EQ(describe_missing(Action::kWrite, std::string(200, 'k')),
            "missing capability write:" + std::string(128, 'k') + "... (200 bytes)");
}

}  // namespace
}  // namespace aspen::auth
