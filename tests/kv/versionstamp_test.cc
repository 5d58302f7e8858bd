// Versionstamped puts (kv.proto, Put): the state machine fills 10 bytes of the key or value
// with the command's revision and the put's order at commit.
#include <gtest/gtest.h>

#include "core/limits.h"
#include "kv/commands.h"
#include "kv/deterministic_store.h"

namespace aspen::kv {
namespace {

std::string stamp(uint64_t revision, uint16_t order) {
  std::string s(kVersionstampSizeBytes, '\0');
  write_versionstamp(s, 0, revision, order);
  return s;
}

kvpb::Put stamped_key_put(std::string prefix, std::string value) {
  kvpb::Put p;
  p.set_key(prefix + std::string(kVersionstampSizeBytes, '\xff') + "/end");
  p.set_key_versionstamp_offset(static_cast<uint32_t>(prefix.size()));
  p.set_value(std::move(value));
  return p;
}

std::vector<kvpb::KeyValue> all_with_prefix(DeterministicKeyValueStore& s, std::string_view prefix) {
  auto r = scan_prefix(s, prefix);
  EXPECT_TRUE(r.has_value());
  return {r->kvs().begin(), r->kvs().end()};
}

TEST(KvVersionstamp, StampIsTheRevisionThenTheOrderBigEndian) {
  EXPECT_EQ(stamp(0x0102030405060708, 0x090a), std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a", 10));
}

TEST(KvVersionstamp, AStampedKeySortsAfterEveryEarlierOne) {
  DeterministicKeyValueStore s;
  std::vector<uint64_t> revisions;
  for (int i = 0; i < 5; ++i) {
    put(s, "unrelated" + std::to_string(i), "x");  // revisions between the stamped writes
    kvpb::Command cmd;
    *cmd.mutable_put() = stamped_key_put("log/", "event" + std::to_string(i));
    auto r = s.execute(cmd);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    revisions.push_back(r->revision());
  }
  auto kvs = all_with_prefix(s, "log/");
  ASSERT_EQ(kvs.size(), 5u);
  for (size_t i = 0; i < kvs.size(); ++i) {
    // Key order is write order, and each key holds its command's revision.
    EXPECT_EQ(kvs[i].value(), "event" + std::to_string(i));
    EXPECT_EQ(kvs[i].key(), "log/" + stamp(revisions[i], 0) + "/end");
    EXPECT_EQ(kvs[i].mod_revision(), revisions[i]);
  }
}

TEST(KvVersionstamp, PutsOfOneCommandGetDistinctStampsInTheirOrder) {
  DeterministicKeyValueStore s;
  kvpb::Command multi;
  for (int i = 0; i < 3; ++i) *multi.mutable_set_multi()->add_puts() = stamped_key_put("m/", std::to_string(i));
  auto r = s.execute(multi);
  ASSERT_TRUE(r.has_value());
  auto kvs = all_with_prefix(s, "m/");
  ASSERT_EQ(kvs.size(), 3u);
  for (uint16_t i = 0; i < 3; ++i) {
    EXPECT_EQ(kvs[i].key(), "m/" + stamp(r->revision(), i) + "/end");
    EXPECT_EQ(kvs[i].value(), std::to_string(i));
  }
  // In a transaction the order counts its executed puts (the delete and the read do not).
  kvpb::Command txn;
  txn.mutable_txn()->add_success()->mutable_delete_()->set_key("nothing");
  *txn.mutable_txn()->add_success()->mutable_put() = stamped_key_put("t/", "a");
  txn.mutable_txn()->add_success()->mutable_range()->set_start("m/");
  kvpb::Put value_stamped;
  value_stamped.set_key("t/value");
  value_stamped.set_value("at:" + std::string(kVersionstampSizeBytes, '\0'));
  value_stamped.set_value_versionstamp_offset(3);
  *txn.mutable_txn()->add_success()->mutable_put() = value_stamped;
  auto t = s.execute(txn);
  ASSERT_TRUE(t.has_value());
  auto txn_kvs = all_with_prefix(s, "t/");
  ASSERT_EQ(txn_kvs.size(), 2u);
  EXPECT_EQ(txn_kvs[0].key(), "t/" + stamp(t->revision(), 0) + "/end");
  EXPECT_EQ(txn_kvs[1].key(), "t/value");
  EXPECT_EQ(txn_kvs[1].value(), "at:" + stamp(t->revision(), 1));
}

TEST(KvVersionstamp, AnOffsetOutsideTheBytesIsRefused) {
  DeterministicKeyValueStore s;
  kvpb::Command cmd;
  cmd.mutable_put()->set_key("short");
  cmd.mutable_put()->set_key_versionstamp_offset(0);  // 5 bytes cannot hold 10
  EXPECT_EQ(s.execute(cmd).error().code(), ErrorCode::kInvalidArgument);
  cmd.mutable_put()->set_key(std::string(20, 'k'));
  cmd.mutable_put()->set_key_versionstamp_offset(11);  // one byte past the end
  EXPECT_EQ(s.execute(cmd).error().code(), ErrorCode::kInvalidArgument);
  cmd.mutable_put()->set_key_versionstamp_offset(UINT32_MAX);  // offset + 10 overflows 32 bits
  EXPECT_EQ(s.execute(cmd).error().code(), ErrorCode::kInvalidArgument);
  cmd.mutable_put()->clear_key_versionstamp_offset();
  cmd.mutable_put()->set_value("v");
  cmd.mutable_put()->set_value_versionstamp_offset(0);
  EXPECT_EQ(s.execute(cmd).error().code(), ErrorCode::kInvalidArgument);
  // Inside a SetMulti and a transaction too.
  kvpb::Command multi;
  *multi.mutable_set_multi()->add_puts() = cmd.put();
  EXPECT_EQ(s.execute(multi).error().code(), ErrorCode::kInvalidArgument);
  kvpb::Command txn;
  *txn.mutable_txn()->add_failure()->mutable_put() = cmd.put();
  EXPECT_EQ(s.execute(txn).error().code(), ErrorCode::kInvalidArgument);
  // Key size limits still hold for a stamped key; the largest one is stamped at its end.
  kvpb::Command big;
  big.mutable_put()->set_key(std::string(limits::kMaxKeySizeBytes + 1, 'k'));
  big.mutable_put()->set_key_versionstamp_offset(0);
  EXPECT_EQ(s.execute(big).error().code(), ErrorCode::kKeyTooLarge);
  big.mutable_put()->set_key(std::string(limits::kMaxKeySizeBytes, 'k'));
  big.mutable_put()->set_key_versionstamp_offset(limits::kMaxKeySizeBytes - kVersionstampSizeBytes);
  auto ok = s.execute(big);
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(get(s, std::string(limits::kMaxKeySizeBytes - kVersionstampSizeBytes, 'k') + stamp(ok->revision(), 0))
                  ->has_value());
}

}  // namespace
}  // namespace aspen::kv
