// What each client request needs from a token (request_auth.h), request type by type.
#include "node/request_auth.h"

#include <gtest/gtest.h>

#include "auth/capability.h"

namespace aspen::node {
namespace {

namespace cpb = clientpb;

auth::VerifiedToken granting(std::initializer_list<std::string_view> caps) {
  auth::VerifiedToken t;
  for (auto c : caps) t.capabilities.push_back(*auth::parse_capability(c));
  t.depth = 1;
  return t;
}

bool allowed(const cpb::Request& req, std::initializer_list<std::string_view> caps) {
  return authorize_request(req, granting(caps)).has_value();
}

cpb::Request put(std::string key) {
  cpb::Request r;
  auto* p = r.mutable_write()->mutable_command()->mutable_put();
  p->set_key(std::move(key));
  p->set_value("v");
  return r;
}

TEST(RequestAuth, ReadsNeedReadOnTheKey) {
  cpb::Request r;
  r.mutable_read()->set_key("app/x");
  EXPECT_TRUE(allowed(r, {"read:app/"}));
  EXPECT_TRUE(allowed(r, {"full:app/"}));
  EXPECT_FALSE(allowed(r, {"write:app/"}));
  EXPECT_FALSE(allowed(r, {"read:apz"}));
  auto refusal = authorize_request(r, granting({"write:app/"}));
  ASSERT_FALSE(refusal.has_value());
  EXPECT_EQ(refusal.error().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(refusal.error().message(), "missing capability read:app/x");
  cpb::Request batch;
  batch.mutable_batch_read()->add_keys("app/a");
  batch.mutable_batch_read()->add_keys("other/b");
  EXPECT_FALSE(allowed(batch, {"read:app/"}));
  EXPECT_TRUE(allowed(batch, {"read:app/", "read:other/"}));
}

TEST(RequestAuth, ScansNeedOneCapabilityCoveringTheWholeRange) {
  cpb::Request prefix;
  prefix.mutable_scan()->mutable_range()->set_start("app/");
  prefix.mutable_scan()->mutable_range()->set_is_prefix(true);
  EXPECT_TRUE(allowed(prefix, {"read:app/"}));
  EXPECT_FALSE(allowed(prefix, {"read:app/x"}));  // narrower than the scan
  cpb::Request wider;
  wider.mutable_scan()->mutable_range()->set_start("ap");
  wider.mutable_scan()->mutable_range()->set_is_prefix(true);
  EXPECT_FALSE(allowed(wider, {"read:app/"}));
  cpb::Request to_end;  // [app/, end of keyspace)
  to_end.mutable_scan()->mutable_range()->set_start("app/");
  EXPECT_FALSE(allowed(to_end, {"read:app/"}));
  EXPECT_TRUE(allowed(to_end, {"read:"}));
  cpb::Request bounded;
  bounded.mutable_scan()->mutable_range()->set_start("app/a");
  bounded.mutable_scan()->mutable_range()->set_end("app/m");
  EXPECT_TRUE(allowed(bounded, {"read:app/"}));
}

TEST(RequestAuth, AOneShotWatchNeedsReadOnItsKeyAndOnTheRangeItReadsBack) {
  cpb::Request r;
  auto* w = r.mutable_watch_create();
  w->set_start("locks/q/b");
  w->set_is_no_put(true);
  w->set_is_once(true);
  w->set_once_timeout_ms(1000);
  w->mutable_then_read()->set_start("locks/q/");
  w->mutable_then_read()->set_is_prefix(true);
  EXPECT_TRUE(allowed(r, {"read:locks/q/"}));
  EXPECT_FALSE(allowed(r, {"read:locks/q/b"})) << "the watched key alone does not cover the read";
  EXPECT_FALSE(allowed(r, {"read:other/"}));
  auto refusal = authorize_request(r, granting({"read:locks/q/b"}));
  ASSERT_FALSE(refusal.has_value());
  EXPECT_EQ(refusal.error().code(), ErrorCode::kUnauthorized);
}

TEST(RequestAuth, WritesNeedWriteAndDeletesNeedDelete) {
  EXPECT_TRUE(allowed(put("app/x"), {"write:app/"}));
  EXPECT_FALSE(allowed(put("app/x"), {"read:app/", "delete:app/"}));
  EXPECT_FALSE(allowed(put("other"), {"write:app/"}));
  cpb::Request del;
  del.mutable_write()->mutable_command()->mutable_delete_()->set_key("app/x");
  EXPECT_TRUE(allowed(del, {"delete:app/"}));
  EXPECT_FALSE(allowed(del, {"write:app/"}));
  cpb::Request multi;
  auto* sm = multi.mutable_write()->mutable_command()->mutable_set_multi();
  sm->add_puts()->set_key("app/a");
  sm->add_puts()->set_key("secret/b");
  EXPECT_FALSE(allowed(multi, {"write:app/"}));
  cpb::Request dm;
  dm.mutable_write()->mutable_command()->mutable_delete_multi()->add_keys("app/a");
  EXPECT_TRUE(allowed(dm, {"delete:app/"}));
}

TEST(RequestAuth, CasAndCadAlsoNeedRead) {
  cpb::Request cas;
  cas.mutable_write()->mutable_command()->mutable_cas()->set_key("app/x");
  EXPECT_FALSE(allowed(cas, {"write:app/"}));
  EXPECT_TRUE(allowed(cas, {"write:app/", "read:app/"}));
  cpb::Request cad;
  cad.mutable_write()->mutable_command()->mutable_cad()->set_key("app/x");
  EXPECT_FALSE(allowed(cad, {"delete:app/"}));
  EXPECT_TRUE(allowed(cad, {"full:app/"}));
}

TEST(RequestAuth, TxnNeedsEveryKeyItTouches) {
  cpb::Request r;
  auto* txn = r.mutable_write()->mutable_command()->mutable_txn();
  txn->add_compares()->set_key("app/flag");
  txn->add_success()->mutable_put()->set_key("app/x");
  txn->add_failure()->mutable_range()->set_start("audit/");
  txn->mutable_failure(0)->mutable_range()->set_is_prefix(true);
  EXPECT_FALSE(allowed(r, {"full:app/"}));  // the failure branch reads audit/
  EXPECT_TRUE(allowed(r, {"full:app/", "read:audit/"}));
  txn->add_success()->mutable_delete_()->set_key("app/old");
  EXPECT_FALSE(allowed(r, {"read:app/", "write:app/", "read:audit/"}));
}

TEST(RequestAuth, LeasesNeedWriteSomewhere) {
  cpb::Request grant;
  grant.mutable_write()->mutable_command()->mutable_lease_grant()->set_ttl_ms(1000);
  EXPECT_TRUE(allowed(grant, {"write:app/"}));
  EXPECT_FALSE(allowed(grant, {"read:", "delete:"}));
  cpb::Request revoke;
  revoke.mutable_write()->mutable_command()->mutable_lease_revoke()->set_id(7);
  EXPECT_FALSE(allowed(revoke, {"read:"}));
}

TEST(RequestAuth, AdministrationNeedsAdmin) {
  std::vector<cpb::Request> admin(10);
  admin[0].mutable_get_metrics();
  admin[1].mutable_get_raft_metrics();
  admin[2].mutable_add_learner();
  admin[3].mutable_change_membership();
  admin[4].mutable_remove_node();
  admin[5].mutable_trigger_snapshot();
  admin[6].mutable_lease_list();
  admin[7].mutable_revoke_token();
  admin[8].mutable_alarm_list();
  admin[9].mutable_alarm_disarm();
  for (const auto& r : admin) {
    EXPECT_FALSE(allowed(r, {"full:", "delegate"})) << r.ShortDebugString();
    EXPECT_TRUE(allowed(r, {"admin"})) << r.ShortDebugString();
    auto refusal = authorize_request(r, granting({"full:"}));
    ASSERT_FALSE(refusal.has_value());
    EXPECT_EQ(refusal.error().message(), "missing capability admin");
  }
}

// Members raise their own alarms (let through before any token is checked); no token, not
// even the root's admin one, lets a client raise one.
TEST(RequestAuth, NoTokenMayRaiseAStorageAlarm) {
  cpb::Request r;
  r.mutable_alarm_raise()->mutable_alarm()->set_member_id(1);
  EXPECT_FALSE(allowed(r, {"full:", "admin", "delegate"}));
  auto refusal = authorize_request(r, granting({"admin"}));
  ASSERT_FALSE(refusal.has_value());
  EXPECT_NE(refusal.error().message().find("only a member"), std::string::npos);
}

TEST(RequestAuth, OnlyHealthAndInitAreOpen) {
  cpb::Request health, init, leader, write = put("k");
  health.mutable_get_health();
  init.mutable_init_cluster();
  leader.mutable_get_leader();
  EXPECT_TRUE(is_open_request(health));
  EXPECT_TRUE(is_open_request(init));
  EXPECT_FALSE(is_open_request(leader));
  EXPECT_FALSE(is_open_request(write));
  // Any valid token may ask who leads or what it is.
  EXPECT_TRUE(allowed(leader, {"read:app/"}));
}

TEST(RequestAuth, ClusterKeysNeedAFullKeyspaceCapability) {
  cpb::Request r;
  r.mutable_read()->set_key(std::string(kAuthRootKeyKey));
  EXPECT_FALSE(allowed(r, {"read:app/"}));
  EXPECT_TRUE(allowed(r, {"read:"}));
  EXPECT_EQ(revoked_token_key(auth::TokenId{}), std::string(kRevokedTokenPrefix) + std::string(32, '0'));
}

}  // namespace
}  // namespace aspen::node
