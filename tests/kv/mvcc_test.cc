// MVCC: revision rules, reads at a past revision, compaction (kv/mvcc.h), through
// DeterministicKeyValueStore, which runs the same apply() and read path as a node (each
// command is the next log index there).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "core/limits.h"
#include "kv/commands.h"
#include "kv/deterministic_store.h"
#include "kv/mem_tables.h"
#include "kv/mvcc.h"
#include "kv/state_machine.h"

namespace aspen::kv {
namespace {

Result<kvpb::RangeResult> range_at(KeyValueStore& s, std::string_view start, std::string_view end, Index revision,
                                   uint32_t limit = 0, std::string continuation = "") {
  kvpb::RangeRequest r;
  r.set_start(std::string(start));
  r.set_end(std::string(end));
  r.set_revision(revision);
  r.set_limit(limit);
  r.set_continuation(std::move(continuation));
  return s.range(r);
}

Result<std::optional<kvpb::KeyValue>> get_at(KeyValueStore& s, std::string_view key, Index revision) {
  kvpb::RangeRequest r = key_range(key);
  r.set_revision(revision);
  auto got = s.range(r);
  if (!got) return std::unexpected(got.error());
  if (got->kvs().empty()) return std::optional<kvpb::KeyValue>{};
  return std::optional<kvpb::KeyValue>(got->kvs(0));
}

Result<kvpb::CommandResult> compact(KeyValueStore& s, Index revision) {
  kvpb::Command c;
  c.mutable_compact()->set_revision(revision);
  return s.execute(c);
}

Index current_revision(KeyValueStore& s) {
  auto r = s.range(key_range("nothing"));
  EXPECT_TRUE(r.has_value());
  return r ? r->revision() : 0;
}

TEST(KvMvcc, RevisionAdvancesOnlyWhenACommandChangesAKey) {
  DeterministicKeyValueStore s;
  auto p = put(s, "a", "1");
  ASSERT_TRUE(p.has_value());
  const Index r1 = p->revision();
  EXPECT_EQ(current_revision(s), r1);
  auto failed_cas = cas(s, "a", std::string("wrong"), "2");
  ASSERT_TRUE(failed_cas.has_value());
  EXPECT_FALSE(failed_cas->succeeded());
  EXPECT_EQ(failed_cas->revision(), r1) << "a failed CAS changes nothing, so the revision stays";
  auto del_nothing = del(s, "missing");
  EXPECT_EQ(del_nothing->revision(), r1);
  auto lease = lease_grant(s, 10000);
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(current_revision(s), r1) << "a lease grant changes no key";
  auto p2 = put(s, "b", "x");
  EXPECT_GT(p2->revision(), r1);
  EXPECT_EQ(current_revision(s), p2->revision());
}

TEST(KvMvcc, AllKeysOfOneCommandShareItsRevision) {
  DeterministicKeyValueStore s;
  kvpb::Command c;
  for (const char* k : {"x", "y", "z"}) {
    auto* p = c.mutable_set_multi()->add_puts();
    p->set_key(k);
    p->set_value("v");
  }
  auto r = s.execute(c);
  ASSERT_TRUE(r.has_value());
  for (const char* k : {"x", "y", "z"}) EXPECT_EQ((*get(s, k))->mod_revision(), r->revision());
  auto all = range_at(s, "", "", r->revision());
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->kvs_size(), 3);
}

TEST(KvMvcc, ReadsAtAPastRevisionSeeTheStoreAsItWas) {
  DeterministicKeyValueStore s;
  const Index r1 = put(s, "a", "1")->revision();
  const Index r2 = put(s, "a", "2")->revision();
  const Index r3 = del(s, "a")->revision();
  const Index r4 = put(s, "b", "b1")->revision();
  EXPECT_EQ((*get_at(s, "a", r1))->value(), "1");
  EXPECT_EQ((*get_at(s, "a", r1))->version(), 1u);
  EXPECT_EQ((*get_at(s, "a", r2))->value(), "2");
  EXPECT_EQ((*get_at(s, "a", r2))->version(), 2u);
  EXPECT_FALSE(get_at(s, "a", r3)->has_value());
  EXPECT_FALSE(get_at(s, "b", r3)->has_value());
  EXPECT_EQ((*get_at(s, "b", r4))->value(), "b1");
  auto at2 = range_at(s, "", "", r2);
  ASSERT_TRUE(at2.has_value());
  ASSERT_EQ(at2->kvs_size(), 1);
  EXPECT_EQ(at2->kvs(0).key(), "a");
  EXPECT_EQ(at2->revision(), r2);
}

TEST(KvMvcc, ReadsOutsideTheHistoryNameTheLimit) {
  DeterministicKeyValueStore s;
  const Index r1 = put(s, "a", "1")->revision();
  const Index r2 = put(s, "a", "2")->revision();
  const Index r3 = put(s, "a", "3")->revision();
  auto future = get_at(s, "a", r3 + 5);
  ASSERT_FALSE(future.has_value());
  EXPECT_EQ(future.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(future.error().message().find(std::to_string(r3)), std::string::npos) << future.error().message();
  ASSERT_TRUE(compact(s, r2).has_value());
  auto old = get_at(s, "a", r1);
  ASSERT_FALSE(old.has_value());
  EXPECT_EQ(old.error().code(), ErrorCode::kCompacted);
  EXPECT_NE(old.error().message().find(std::to_string(r2)), std::string::npos) << old.error().message();
  EXPECT_EQ((*get_at(s, "a", r2))->value(), "2") << "the compacted revision itself stays readable";
}

TEST(KvMvcc, CompactionKeepsOnlyWhatTheCompactedRevisionCanRead) {
  DeterministicKeyValueStore s;
  for (int i = 0; i < 10; ++i) put(s, "a", std::to_string(i));
  put(s, "gone", "x");
  const Index deleted = del(s, "gone")->revision();
  const Index b = put(s, "b", "b")->revision();
  EXPECT_EQ(s.history_count(), 13u);
  ASSERT_TRUE(compact(s, b).has_value());
  // Left: a's last version, and b's; the older versions of a and both records of "gone" go.
  EXPECT_EQ(s.history_count(), 2u);
  EXPECT_EQ((*get_at(s, "a", b))->value(), "9");
  EXPECT_FALSE(get_at(s, "gone", b)->has_value());
  EXPECT_GT(b, deleted);
}

TEST(KvMvcc, CompactRefusesTheCompactedRevisionAndTheFuture) {
  DeterministicKeyValueStore s;
  put(s, "a", "1");
  const Index r2 = put(s, "a", "2")->revision();
  ASSERT_TRUE(compact(s, r2).has_value());
  auto again = compact(s, r2);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kCompacted);
  auto future = compact(s, r2 + 100);
  ASSERT_FALSE(future.has_value());
  EXPECT_EQ(future.error().code(), ErrorCode::kInvalidArgument);
  kvpb::Command zero;
  zero.mutable_compact()->set_revision(0);
  EXPECT_FALSE(s.execute(zero).has_value());
}

TEST(KvMvcc, ATransactionsRangeCanReadAPastRevision) {
  DeterministicKeyValueStore s;
  const Index r1 = put(s, "a", "old")->revision();
  put(s, "a", "new");
  kvpb::Command c;
  auto* op = c.mutable_txn()->add_success()->mutable_range();
  *op = key_range("a");
  op->set_revision(r1);
  auto r = s.execute(c);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->responses_size(), 1);
  ASSERT_EQ(r->responses(0).range().kvs_size(), 1);
  EXPECT_EQ(r->responses(0).range().kvs(0).value(), "old");
}

TEST(KvMvcc, RetentionCompactsToTheStricterOfItsTwoBounds) {
  MemKvTables t;
  for (Index i = 1; i <= 10; ++i) {
    kvpb::Command c;
    c.set_timestamp_ms(1000 * i);
    c.mutable_put()->set_key("k");
    c.mutable_put()->set_value(std::to_string(i));
    ASSERT_TRUE(apply_command(t, c, i).has_value());
  }
  constexpr size_t kExamined = 100;
  EXPECT_EQ(*retention_target(t, 10000, 0, 0, kExamined), std::nullopt) << "both bounds off";
  EXPECT_EQ(*retention_target(t, 10000, 3, 0, kExamined), Index{7});
  // Older than 4.5 s at time 10 s: the versions stamped 1..5 s; compacting to 6 drops them.
  EXPECT_EQ(*retention_target(t, 10000, 0, 4500, kExamined), Index{6});
  EXPECT_EQ(*retention_target(t, 10000, 3, 4500, kExamined), Index{7});
  EXPECT_EQ(*retention_target(t, 10000, 8, 4500, kExamined), Index{6});
  // A bounded look: with two entries examined it gets as far as the second.
  EXPECT_EQ(*retention_target(t, 10000, 0, 4500, 2), Index{2});
  kvpb::Command compact;
  compact.mutable_compact()->set_revision(7);
  ASSERT_TRUE(apply_command(t, compact, 11).has_value());
  EXPECT_EQ(*retention_target(t, 10000, 3, 0, kExamined), std::nullopt) << "already compacted that far";
}

// A model of the store: the whole key space after every revision. Random puts, deletes,
// multi-key commands, failed CASes and compactions; then every read at every readable
// revision, paged with small limits, equals the model's state at that revision.
RC_GTEST_PROP(KvMvcc, ReadsAtEveryRevisionMatchAModel, ()) {
  DeterministicKeyValueStore s;
  std::map<Index, std::map<std::string, std::string>> states;  // revision -> key space
  std::map<std::string, std::string> now;
  Index compacted = 0;
  const auto steps = *rc::gen::inRange(1, 60);
  for (int i = 0; i < steps; ++i) {
    const std::string key = std::string(1, static_cast<char>('a' + *rc::gen::inRange(0, 6)));
    const int what = *rc::gen::inRange(0, 10);
    Result<kvpb::CommandResult> r = make_error(ErrorCode::kInternal, "unset");
    if (what < 5) {
      std::string value = std::to_string(i);
      r = put(s, key, value);
      now[key] = value;
    } else if (what < 7) {
      r = del(s, key);
      now.erase(key);
    } else if (what == 7) {
      r = cas(s, key, std::string("no such value"), "x");  // always fails
    } else if (what == 8) {
      kvpb::Command c;
      for (const char* k : {"m1", "m2"}) {
        auto* p = c.mutable_set_multi()->add_puts();
        p->set_key(k);
        p->set_value(std::to_string(i));
        now[k] = std::to_string(i);
      }
      r = s.execute(c);
    } else if (!states.empty()) {
      auto it = states.upper_bound(compacted);
      if (it != states.end()) {
        auto pick = *rc::gen::inRange<size_t>(0, static_cast<size_t>(std::distance(it, states.end())));
        std::advance(it, static_cast<long>(pick));
        RC_ASSERT(compact(s, it->first).has_value());
        compacted = it->first;
      }
      continue;
    } else {
      continue;
    }
    RC_ASSERT(r.has_value());
    if (r->revision() != 0) states[r->revision()] = now;  // 0: nothing changed yet
  }
  for (const auto& [rev, state] : states) {
    auto first = range_at(s, "", "", rev);
    if (rev < compacted) {
      RC_ASSERT(!first.has_value());
      RC_ASSERT(first.error().code() == ErrorCode::kCompacted);
      continue;
    }
    std::map<std::string, std::string> seen;
    std::string continuation;
    for (int page = 0; page < 100; ++page) {
      auto r = range_at(s, "", "", rev, 2, continuation);
      RC_ASSERT(r.has_value());
      RC_ASSERT(r->revision() == rev);
      for (const auto& kv : r->kvs()) {
        if (kv.key().starts_with("__aspen/")) continue;
        RC_ASSERT(seen.emplace(kv.key(), kv.value()).second);
        RC_ASSERT(kv.mod_revision() <= rev);
      }
      if (!r->has_more()) break;
      continuation = r->continuation();
    }
    RC_ASSERT(seen == state);
  }
}

}  // namespace
}  // namespace aspen::kv
