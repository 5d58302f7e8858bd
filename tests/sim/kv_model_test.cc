#include "sim/kv_model.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace aspen::sim {
namespace {

Command write(uint64_t client, uint64_t seq, std::string key, std::string value) {
  return Command{CommandKind::kWrite, client, seq, std::move(key), std::move(value), std::nullopt};
}

TEST(KvModel, DuplicateCommandIsAppliedOnce) {
  KvModel kv;
  kv.apply(write(1, 1, "k", "a"));
  kv.apply(write(2, 1, "k", "b"));
  ApplyResult dup = kv.apply(write(1, 1, "k", "a"));
  EXPECT_TRUE(dup.is_duplicate);
  EXPECT_EQ(kv.get("k"), "b");
}

TEST(KvModel, CasSucceedsOnlyOnExpectedValue) {
  KvModel kv;
  Command cas{CommandKind::kCas, 1, 1, "k", "v1", std::nullopt};
  EXPECT_TRUE(kv.apply(cas).cas_succeeded);  // expected absent
  Command stale{CommandKind::kCas, 1, 2, "k", "v2", std::string("nope")};
  EXPECT_FALSE(kv.apply(stale).cas_succeeded);
  EXPECT_EQ(kv.get("k"), "v1");
  Command good{CommandKind::kCas, 1, 3, "k", "v3", std::string("v1")};
  EXPECT_TRUE(kv.apply(good).cas_succeeded);
  EXPECT_EQ(kv.get("k"), "v3");
}

TEST(KvModel, DuplicateCasReturnsFirstOutcome) {
  KvModel kv;
  Command cas{CommandKind::kCas, 7, 1, "k", "v", std::nullopt};
  EXPECT_TRUE(kv.apply(cas).cas_succeeded);
  ApplyResult again = kv.apply(cas);
  EXPECT_TRUE(again.is_duplicate);
  EXPECT_TRUE(again.cas_succeeded);
}

TEST(KvModel, GarbageCommandIsAnErrorNotACrash) {
  EXPECT_FALSE(decode_command("").has_value());
  EXPECT_FALSE(decode_command("\x09garbage").has_value());
  std::string ok = encode_command(write(1, 1, "k", "v"));
  EXPECT_FALSE(decode_command(ok + "x").has_value());
  EXPECT_FALSE(decode_command(ok.substr(0, ok.size() - 1)).has_value());
  EXPECT_FALSE(KvModel::deserialize("\xff\xff\xff").has_value());
}

RC_GTEST_PROP(KvModel, CommandEncodingRoundTrips,
              (uint64_t client, uint64_t seq, std::string key, std::string value, bool is_cas)) {
  RC_PRE(key.size() <= 1024);
  Command c{is_cas ? CommandKind::kCas : CommandKind::kWrite, client, seq, key, value, std::nullopt};
  if (is_cas && !value.empty()) c.expected = value.substr(1);
  auto back = decode_command(encode_command(c));
  RC_ASSERT(back.has_value());
  RC_ASSERT(back->kind == c.kind);
  RC_ASSERT(back->client_id == client);
  RC_ASSERT(back->seq == seq);
  RC_ASSERT(back->key == key);
  RC_ASSERT(back->value == value);
  RC_ASSERT(back->expected == c.expected);
}

RC_GTEST_PROP(KvModel, SnapshotRoundTripPreservesState,
              (std::vector<std::pair<std::string, std::string>> writes)) {
  KvModel kv;
  uint64_t seq = 0;
  for (const auto& [k, v] : writes) {
    RC_PRE(k.size() <= 1024);
    ++seq;
    kv.apply(write(1 + seq % 3, seq, k, v));
  }
  auto copy = KvModel::deserialize(kv.serialize());
  RC_ASSERT(copy.has_value());
  RC_ASSERT(copy->hash() == kv.hash());
  for (const auto& [k, v] : writes) RC_ASSERT(copy->get(k) == kv.get(k));
}

}  // namespace
}  // namespace aspen::sim
