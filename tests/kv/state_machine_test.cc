// The replicated state machine's semantics, through DeterministicKeyValueStore (which runs
// the same apply() and read path as a node).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "core/limits.h"
#include "kv/commands.h"
#include "kv/deterministic_store.h"
#include "kv/mem_tables.h"
#include "kv/state_machine.h"

namespace aspen::kv {
namespace {

TEST(KvStateMachine, PutTracksVersionsAndRevisions) {
  DeterministicKeyValueStore s;
  auto r1 = put(s, "a", "1");
  ASSERT_TRUE(r1.has_value());
  auto r2 = put(s, "a", "2");
  auto kv = get(s, "a");
  ASSERT_TRUE(kv.has_value() && kv->has_value());
  EXPECT_EQ((*kv)->value(), "2");
  EXPECT_EQ((*kv)->version(), 2u);
  EXPECT_EQ((*kv)->create_revision(), r1->revision());
  EXPECT_EQ((*kv)->mod_revision(), r2->revision());
  EXPECT_GT(r2->revision(), r1->revision());
}

// A key records the leader's time of its last change (the command's timestamp, the same on
// every replica).
TEST(KvStateMachine, AKeyRecordsTheTimeOfItsLastChange) {
  DeterministicKeyValueStore s(5'000'000);
  ASSERT_TRUE(put(s, "t", "1").has_value());
  EXPECT_EQ(get(s, "t").value()->mod_time_ms(), 5'000'000u);
  s.advance_time_ms(1234);
  ASSERT_TRUE(put(s, "t", "2").has_value());
  EXPECT_EQ(get(s, "t").value()->mod_time_ms(), 5'001'234u);
  ASSERT_TRUE(put(s, "other", "x").has_value());
  EXPECT_EQ(get(s, "t").value()->mod_time_ms(), 5'001'234u) << "unchanged by another key's write";
}

TEST(KvStateMachine, DeleteRemovesKeyAndRecreateRestartsVersion) {
  DeterministicKeyValueStore s;
  put(s, "a", "1");
  auto d = del(s, "a");
  EXPECT_EQ(d->deleted(), 1u);
  EXPECT_FALSE(get(s, "a")->has_value());
  EXPECT_EQ(del(s, "a")->deleted(), 0u);
  put(s, "a", "again");
  EXPECT_EQ((*get(s, "a"))->version(), 1u);
}

TEST(KvStateMachine, AddChangesACounterInOneWriteAndRefusesWhatIsNotOne) {
  DeterministicKeyValueStore s;
  auto add = [&](const std::string& key, int64_t delta) {
    kvpb::Command c;
    c.mutable_add()->set_key(key);
    c.mutable_add()->set_delta(delta);
    return s.execute(c);
  };
  auto r = add("n", 5);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->current().value(), "5") << "an absent key counts from 0";
  EXPECT_EQ(add("n", -7)->current().value(), "-2");
  EXPECT_EQ((*get(s, "n"))->version(), 2u);
  put(s, "text", "hello");
  auto bad = add("text", 1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*get(s, "text"))->value(), "hello");
  put(s, "big", std::to_string(INT64_MAX));
  auto overflow = add("big", 1);
  ASSERT_FALSE(overflow.has_value());
  EXPECT_NE(overflow.error().message().find("overflow"), std::string::npos);
  auto lease = lease_grant(s, 10000);
  ASSERT_TRUE(lease.has_value());
  put(s, "leased", "1", lease->id());
  add("leased", 1);
  EXPECT_EQ((*get(s, "leased"))->lease_id(), lease->id()) << "an add keeps the key's lease";
}

TEST(KvStateMachine, CasSucceedsOnlyWhenExpectationHolds) {
  DeterministicKeyValueStore s;
  EXPECT_TRUE(cas(s, "k", std::nullopt, "v1")->succeeded());  // create if absent
  auto stale = cas(s, "k", std::nullopt, "v2");
  EXPECT_FALSE(stale->succeeded());
  EXPECT_EQ(stale->current().value(), "v1");  // the failure tells the caller what is there
  EXPECT_FALSE(cas(s, "k", std::string("wrong"), "v2")->succeeded());
  EXPECT_TRUE(cas(s, "k", std::string("v1"), "v2")->succeeded());
  EXPECT_EQ((*get(s, "k"))->value(), "v2");
}

TEST(KvStateMachine, CadDeletesOnlyMatchingValue) {
  DeterministicKeyValueStore s;
  put(s, "k", "v");
  EXPECT_FALSE(cad(s, "k", "other")->succeeded());
  EXPECT_TRUE(get(s, "k")->has_value());
  EXPECT_TRUE(cad(s, "k", "v")->succeeded());
  EXPECT_FALSE(get(s, "k")->has_value());
  EXPECT_FALSE(cad(s, "k", "v")->succeeded());
}

kvpb::Compare compare(std::string key, kvpb::Compare::Target target, kvpb::Compare::Op op,
                      uint64_t number, std::string value = {}) {
  kvpb::Compare c;
  c.set_key(std::move(key));
  c.set_target(target);
  c.set_op(op);
  c.set_number(number);
  c.set_value(std::move(value));
  return c;
}

bool run_txn(DeterministicKeyValueStore& s, const kvpb::Compare& c) {
  kvpb::Command cmd;
  *cmd.mutable_txn()->add_compares() = c;
  auto* op = cmd.mutable_txn()->add_success();
  op->mutable_put()->set_key("marker");
  op->mutable_put()->set_value("then");
  auto* alt = cmd.mutable_txn()->add_failure();
  alt->mutable_range()->set_start("k");
  alt->mutable_range()->set_end("l");
  auto r = s.execute(cmd);
  EXPECT_TRUE(r.has_value());
  return r->succeeded();
}

TEST(KvStateMachine, TxnComparesEveryTargetWithEveryOperator) {
  DeterministicKeyValueStore s;
  auto created = put(s, "k", "b");
  put(s, "k", "b");  // version 2
  using C = kvpb::Compare;
  uint64_t create = created->revision();
  EXPECT_TRUE(run_txn(s, compare("k", C::TARGET_VALUE, C::OP_EQUAL, 0, "b")));
  EXPECT_TRUE(run_txn(s, compare("k", C::TARGET_VALUE, C::OP_NOT_EQUAL, 0, "a")));
  EXPECT_TRUE(run_txn(s, compare("k", C::TARGET_VALUE, C::OP_GREATER, 0, "a")));
  EXPECT_TRUE(run_txn(s, compare("k", C::TARGET_VALUE, C::OP_LESS, 0, "c")));
  EXPECT_FALSE(run_txn(s, compare("k", C::TARGET_VALUE, C::OP_LESS, 0, "a")));
  EXPECT_TRUE(run_txn(s, compare("k", C::TARGET_VERSION, C::OP_EQUAL, 2)));
  EXPECT_FALSE(run_txn(s, compare("k", C::TARGET_VERSION, C::OP_GREATER, 2)));
  EXPECT_TRUE(run_txn(s, compare("k", C::TARGET_CREATE_REVISION, C::OP_EQUAL, create)));
  EXPECT_TRUE(run_txn(s, compare("k", C::TARGET_MOD_REVISION, C::OP_GREATER, create)));
  EXPECT_TRUE(run_txn(s, compare("k", C::TARGET_MOD_REVISION, C::OP_NOT_EQUAL, create)));
  // A missing key has version 0: the "create only if absent" idiom.
  EXPECT_TRUE(run_txn(s, compare("missing", C::TARGET_VERSION, C::OP_EQUAL, 0)));
  EXPECT_FALSE(run_txn(s, compare("missing", C::TARGET_VALUE, C::OP_EQUAL, 0, "")));
}

TEST(KvStateMachine, TxnRunsTheElseBranchAndReturnsItsReads) {
  DeterministicKeyValueStore s;
  put(s, "k1", "x");
  kvpb::Command cmd;
  using C = kvpb::Compare;
  *cmd.mutable_txn()->add_compares() = compare("k1", C::TARGET_VALUE, C::OP_EQUAL, 0, "y");
  cmd.mutable_txn()->add_success()->mutable_put()->set_key("never");
  auto* get_op = cmd.mutable_txn()->add_failure()->mutable_range();
  get_op->set_start("k");
  get_op->set_is_prefix(true);
  cmd.mutable_txn()->add_failure()->mutable_delete_()->set_key("k1");
  auto r = s.execute(cmd);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->succeeded());
  ASSERT_EQ(r->responses_size(), 2);
  EXPECT_EQ(r->responses(0).range().kvs(0).value(), "x");
  EXPECT_EQ(r->responses(1).deleted(), 1u);
  EXPECT_FALSE(get(s, "never")->has_value());
  EXPECT_FALSE(get(s, "k1")->has_value());
}

// 20 ranges over 8 values of 1 MiB each would answer 160 MiB; the ranges share one page's
// budget, so the answer fits a frame and the later ranges say where to go on from.
TEST(KvStateMachine, TxnRangesShareOneByteBudgetAndTheAnswerFitsAFrame) {
  DeterministicKeyValueStore s;
  for (int i = 0; i < 8; ++i) put(s, "big/" + std::to_string(i), std::string(limits::kMaxValueSizeBytes, 'x'));
  kvpb::Command cmd;
  for (int i = 0; i < 20; ++i) {
    auto* r = cmd.mutable_txn()->add_success()->mutable_range();
    r->set_start("big/");
    r->set_is_prefix(true);
  }
  auto r = s.execute(cmd);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  ASSERT_TRUE(r->succeeded());
  EXPECT_LE(r->ByteSizeLong(), limits::kMaxFrameSizeBytes);
  EXPECT_LE(r->ByteSizeLong(), limits::kMaxScanResultBytes + limits::kMaxValueSizeBytes + 4096);
  ASSERT_EQ(r->responses_size(), 20);
  EXPECT_GT(r->responses(0).range().kvs_size(), 0);
  EXPECT_TRUE(r->responses(0).range().has_more());
  const auto& last = r->responses(19).range();
  EXPECT_EQ(last.kvs_size(), 0);
  EXPECT_TRUE(last.has_more());
}

// Found by the client_request fuzzer: a transaction whose range carries a malformed
// continuation token made apply fail as if storage had, which a node retries forever (every
// replica alike). It is a refused command, refused before anything in it runs.
TEST(KvStateMachine, TxnWithABadContinuationIsRefusedAndChangesNothing) {
  MemKvTables t;
  kvpb::Command seed;
  seed.mutable_put()->set_key("k2");
  seed.mutable_put()->set_value("v");
  ASSERT_TRUE(apply_command(t, seed, 1));
  for (const std::string& token : {std::string("k"), std::string("\x01zz"), std::string("\x01a")}) {
    kvpb::Command cmd;
    cmd.mutable_txn()->add_success()->mutable_delete_()->set_key("k2");
    auto* range = cmd.mutable_txn()->add_success()->mutable_range();
    range->set_start("k");
    range->set_end("kz");
    range->set_continuation(token);
    EXPECT_EQ(validate_command(cmd).error().code(), ErrorCode::kInvalidArgument) << token;
    auto r = apply_command(t, cmd, 2);
    ASSERT_TRUE(r.has_value()) << "apply failed on a bad token: " << r.error().to_string();
    EXPECT_EQ(r->error_code(), static_cast<uint32_t>(ErrorCode::kInvalidArgument)) << token;
    kvpb::RangeRequest k2;
    k2.set_start("k2");
    k2.set_end(std::string("k2") + '\0');
    EXPECT_EQ(read_range(t, k2)->kvs_size(), 1) << "the delete before the bad range ran";
  }
}

TEST(KvStateMachine, RangeCutByTheLimitSaysWhetherMoreFollows) {
  DeterministicKeyValueStore s;
  for (int i = 0; i < 3; ++i) put(s, "k" + std::to_string(i), "v");
  kvpb::RangeRequest rr;
  rr.set_start("k");
  rr.set_is_prefix(true);
  rr.set_limit(3);
  auto exact = s.range(rr);
  ASSERT_TRUE(exact.has_value());
  EXPECT_EQ(exact->kvs_size(), 3);
  EXPECT_FALSE(exact->has_more());
  rr.set_limit(2);
  auto cut = s.range(rr);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->kvs_size(), 2);
  EXPECT_TRUE(cut->has_more());
  rr.set_continuation(cut->continuation());
  auto rest = s.range(rr);
  ASSERT_TRUE(rest.has_value());
  ASSERT_EQ(rest->kvs_size(), 1);
  EXPECT_EQ(rest->kvs(0).key(), "k2");
  EXPECT_FALSE(rest->has_more());
}

TEST(KvStateMachine, MultiKeyCommandWithUnknownLeaseChangesNothing) {
  DeterministicKeyValueStore s;
  kvpb::Command cmd;
  auto* a = cmd.mutable_set_multi()->add_puts();
  a->set_key("a");
  a->set_value("1");
  auto* b = cmd.mutable_set_multi()->add_puts();
  b->set_key("b");
  b->set_value("2");
  b->set_lease_id(999);
  auto r = s.execute(cmd);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kLeaseNotFound);
  EXPECT_FALSE(get(s, "a")->has_value());
}

TEST(KvStateMachine, RevokingALeaseDeletesItsKeys) {
  DeterministicKeyValueStore s;
  auto lease = lease_grant(s, 5000);
  ASSERT_TRUE(lease.has_value());
  put(s, "session/a", "1", lease->id());
  put(s, "session/b", "2", lease->id());
  put(s, "session/b", "3");  // re-put without lease detaches b
  put(s, "other", "x");
  ASSERT_TRUE(lease_revoke(s, lease->id()).has_value());
  EXPECT_FALSE(get(s, "session/a")->has_value());
  EXPECT_TRUE(get(s, "session/b")->has_value());
  EXPECT_TRUE(get(s, "other")->has_value());
  EXPECT_EQ(lease_revoke(s, lease->id()).error().code(), ErrorCode::kLeaseNotFound);
}

TEST(KvStateMachine, LeaseExpiresWithoutKeepaliveAndSurvivesWithIt) {
  DeterministicKeyValueStore s;
  auto kept = lease_grant(s, 3000);
  auto dropped = lease_grant(s, 3000);
  put(s, "kept", "1", kept->id());
  put(s, "dropped", "1", dropped->id());
  s.advance_time_ms(2000);
  ASSERT_TRUE(lease_keepalive(s, kept->id()).has_value());
  s.advance_time_ms(1500);  // dropped is past its TTL; kept was renewed 1.5 s ago
  EXPECT_FALSE(get(s, "dropped")->has_value());
  EXPECT_TRUE(get(s, "kept")->has_value());
  EXPECT_EQ(lease_keepalive(s, dropped->id()).error().code(), ErrorCode::kLeaseNotFound);
  s.advance_time_ms(5000);
  EXPECT_FALSE(get(s, "kept")->has_value());
  EXPECT_TRUE(s.list_leases()->empty());
}

// An apply-time refusal comes back as an error from execute(), like every other error: an
// ok result never carries an error code.
TEST(KvStateMachine, PutWithUnknownLeaseIsRefused) {
  DeterministicKeyValueStore s;
  auto r = put(s, "k", "v", 12345);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kLeaseNotFound);
  EXPECT_FALSE(get(s, "k")->has_value());
}

TEST(KvStateMachine, LeaseExpiryIgnoresALeaseRenewedAfterTheDecision) {
  // The leader decided to expire lease L at time t, but a keepalive applied first: the
  // LeaseExpire command must not delete it (apply() re-checks against the entry's time).
  MemKvTables t;
  kvpb::Command grant;
  grant.set_timestamp_ms(1000);
  grant.mutable_lease_grant()->set_id(7);
  grant.mutable_lease_grant()->set_ttl_ms(1000);
  ASSERT_TRUE(apply_command(t, grant, 1).has_value());
  kvpb::Command keepalive;
  keepalive.set_timestamp_ms(1900);
  keepalive.mutable_lease_keepalive()->set_id(7);
  ASSERT_TRUE(apply_command(t, keepalive, 2).has_value());
  kvpb::Command expire;
  expire.set_timestamp_ms(2000);
  expire.mutable_lease_expire()->add_ids(7);
  ASSERT_TRUE(apply_command(t, expire, 3).has_value());
  EXPECT_TRUE(t.get_lease(7)->has_value());
}

TEST(KvValidation, EveryLimitHasItsOwnError) {
  DeterministicKeyValueStore s;
  std::string big_key(limits::kMaxKeySizeBytes + 1, 'k');
  EXPECT_EQ(put(s, big_key, "v").error().code(), ErrorCode::kKeyTooLarge);
  EXPECT_EQ(put(s, "", "v").error().code(), ErrorCode::kInvalidArgument);
  std::string big_value(limits::kMaxValueSizeBytes + 1, 'v');
  auto too_big = put(s, "k", big_value);
  EXPECT_EQ(too_big.error().code(), ErrorCode::kValueTooLarge);
  EXPECT_NE(too_big.error().message().find("1048576"), std::string::npos);
  kvpb::Command multi;
  for (size_t i = 0; i <= limits::kMaxBatchSize; ++i) {
    auto* p = multi.mutable_set_multi()->add_puts();
    p->set_key("k" + std::to_string(i));
  }
  EXPECT_EQ(s.execute(multi).error().code(), ErrorCode::kBatchTooLarge);
  kvpb::Command txn;
  for (size_t i = 0; i <= limits::kMaxTxnOps; ++i) txn.mutable_txn()->add_success()->mutable_delete_()->set_key("k");
  EXPECT_EQ(s.execute(txn).error().code(), ErrorCode::kTxnTooLarge);
  kvpb::RangeRequest scan;
  scan.set_start("a");
  scan.set_limit(limits::kMaxScanResults + 1);
  EXPECT_EQ(s.range(scan).error().code(), ErrorCode::kScanTooLarge);
  EXPECT_EQ(lease_grant(s, 10).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.execute(kvpb::Command{}).error().code(), ErrorCode::kInvalidArgument);
  // The largest legal key and value are accepted.
  EXPECT_TRUE(put(s, std::string(limits::kMaxKeySizeBytes, 'k'), std::string(limits::kMaxValueSizeBytes, 'v')).has_value());
}

TEST(KvScan, ContinuationTokenFromAnotherRangeIsRejected) {
  DeterministicKeyValueStore s;
  for (int i = 0; i < 5; ++i) put(s, "a" + std::to_string(i), "v");
  auto page = scan_prefix(s, "a", 2);
  ASSERT_TRUE(page.has_value());
  ASSERT_TRUE(page->has_more());
  EXPECT_EQ(scan_prefix(s, "b", 2, page->continuation()).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(scan_prefix(s, "a", 2, "garbage").error().code(), ErrorCode::kInvalidArgument);
}

TEST(KvScan, PrefixEndHandlesTrailingFF) {
  EXPECT_EQ(prefix_end("ab"), "ac");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end(std::string("\xff\xff", 2)), "");
}

// Paging through a prefix with any page size returns exactly the model's keys, in order,
// once each; count-only agrees.
RC_GTEST_PROP(KvScan, PaginationMatchesASortedModel,
              (std::vector<std::string> keys, uint8_t page_size_raw)) {
  DeterministicKeyValueStore s;
  std::map<std::string, std::string> model;
  for (auto k : keys) {
    k = "p/" + k.substr(0, 40);
    RC_ASSERT(put(s, k, "v" + k).has_value());
    model[k] = "v" + k;
  }
  put(s, "q", "outside");
  uint32_t page_size = 1 + page_size_raw % 7;
  std::vector<std::string> seen;
  std::string token;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = scan_prefix(s, "p/", page_size, token);
    RC_ASSERT(page.has_value());
    RC_ASSERT(page->kvs_size() <= static_cast<int>(page_size));
    for (const auto& kv : page->kvs()) seen.push_back(kv.key());
    if (!page->has_more()) break;
    token = page->continuation();
  }
  std::vector<std::string> expected;
  for (const auto& [k, v] : model) expected.push_back(k);
  RC_ASSERT(seen == expected);
  kvpb::RangeRequest count;
  count.set_start("p/");
  count.set_is_prefix(true);
  count.set_is_count_only(true);
  count.set_limit(10000);
  auto c = s.range(count);
  RC_ASSERT(c->count() == model.size());
  RC_ASSERT(c->kvs_size() == 0);
}

}  // namespace
}  // namespace aspen::kv

namespace aspen::kv {
namespace {

// A Txn compare agrees with a direct evaluation on the key's record, for every target and
// operator, present or absent keys.
RC_GTEST_PROP(KvTxn, CompareAgreesWithAModel, (bool is_present, uint8_t writes_raw, uint8_t target_raw,
                                                 uint8_t op_raw, uint8_t number_raw, std::string value)) {
  DeterministicKeyValueStore s;
  int writes = is_present ? 1 + writes_raw % 4 : 0;
  for (int i = 0; i < writes; ++i) put(s, "k", "v" + std::to_string(i));
  auto target = static_cast<kvpb::Compare::Target>(target_raw % 4);
  auto op = static_cast<kvpb::Compare::Op>(op_raw % 4);
  uint64_t number = number_raw % 8;
  auto kv = get(s, "k");
  RC_ASSERT(kv.has_value());
  auto cmp = [op](auto a, auto b) {
    switch (op) {
      case kvpb::Compare::OP_EQUAL: return a == b;
      case kvpb::Compare::OP_NOT_EQUAL: return a != b;
      case kvpb::Compare::OP_LESS: return a < b;
      default: return a > b;
    }
  };
  bool expected = false;
  const kvpb::KeyValue* k = kv->has_value() ? &**kv : nullptr;
  switch (target) {
    case kvpb::Compare::TARGET_VALUE:
      expected = k ? cmp(k->value(), value) : op == kvpb::Compare::OP_NOT_EQUAL;
      break;
    case kvpb::Compare::TARGET_VERSION: expected = cmp(k ? k->version() : 0, number); break;
    case kvpb::Compare::TARGET_CREATE_REVISION: expected = cmp(k ? k->create_revision() : 0, number); break;
    default: expected = cmp(k ? k->mod_revision() : 0, number); break;
  }
  kvpb::Command cmd;
  auto* c = cmd.mutable_txn()->add_compares();
  c->set_key("k");
  c->set_target(target);
  c->set_op(op);
  c->set_number(number);
  c->set_value(value);
  auto r = s.execute(cmd);
  RC_ASSERT(r.has_value());
  RC_ASSERT(r->succeeded() == expected);
}

}  // namespace
}  // namespace aspen::kv
