// Capability tokens against a real three-node cluster: every bad credential is refused for
// every kind of request and changes nothing; capabilities scope by prefix both ways;
// delegation narrows; revocation reaches every member; a follower refuses before relaying.
#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>

#include "aspen/auth.pb.h"
#include "auth/internal/token_wire.h"
#include "auth/token.h"
#include "coord/counter.h"
#include "coord/lock.h"
#include "kv/key_value_store.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

namespace cpb = aspen::clientpb;

uint64_t now_s() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

auth::KeyBytes key_bytes(const transport::NodeIdentity& id) {
  auth::KeyBytes k{};
  std::copy(id.public_key().bytes().begin(), id.public_key().bytes().end(), k.begin());
  return k;
}

auth::TokenSpec spec(const transport::NodeIdentity& audience, std::initializer_list<std::string_view> caps,
                     int64_t expires_in_s = 3600) {
  auth::TokenSpec s;
  s.audience = key_bytes(audience);
  for (auto c : caps) s.capabilities.push_back(*auth::parse_capability(c));
  s.not_before_s = now_s() - 7200;
  s.expires_s = static_cast<uint64_t>(static_cast<int64_t>(now_s()) + expires_in_s);
  randombytes_buf(s.id.data(), s.id.size());
  return s;
}

// A token signed by hand by `signer`, saying whatever `body` says (what an attacker holding
// that key can make).
std::string sign_by_hand(const authpb::TokenBody& body, const auth::SeedBytes& signer) {
  authpb::SignedToken out;
  out.set_body(body.SerializeAsString());
  std::string message(auth::internal::kSignatureContext);
  message += out.body();
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
  crypto_sign_seed_keypair(pk, sk, signer.data());
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(message.data()), message.size(), sk);
  out.set_signature(sig, sizeof(sig));
  return out.SerializeAsString();
}

class AuthTest : public ::testing::Test {
 protected:
  static inline SharedSetUp shared_;  // set_up_suite runs from the first SetUp (node_process.h)
  static void set_up_suite() {
    dir_ = new TempDir();
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_->path(), "auth-cookie-1");
      nodes_[id]->start();
    }
    admin_ = client_for(nodes_).release();
    ASSERT_NE(admin_, nullptr);
    ASSERT_NO_FATAL_FAILURE(form_cluster(*admin_, nodes_));
    std::lock_guard lock(TestOperator::get().mu);
    root_ = TestOperator::get().root_seed;
  }
  void SetUp() override {
    ASPEN_SHARED_SET_UP(shared_, set_up_suite);
  }
  static void TearDownTestSuite() {
    shared_ = {};
    delete admin_;
    admin_ = nullptr;
    for (auto& [id, n] : nodes_) n->kill9();
    nodes_.clear();
    delete dir_;
    dir_ = nullptr;
  }

  static std::unique_ptr<client::Client> client_as(const transport::NodeIdentity& id, std::string token) {
    cluster::Ticket t;
    for (const auto& [nid, n] : nodes_) t.peers.push_back(n->ticket_peer());
    client::ClientOptions o;
    o.timeout_ms = 10000;
    o.identity = id;
    o.token = std::move(token);
    auto c = client::Client::connect(t, o);
    EXPECT_TRUE(c.has_value());
    return c ? std::move(*c) : nullptr;
  }
  static std::string issue(const transport::NodeIdentity& audience, std::initializer_list<std::string_view> caps,
                           int64_t expires_in_s = 3600) {
    auto t = auth::issue_token(root_, spec(audience, caps, expires_in_s));
    EXPECT_TRUE(t.has_value());
    return t ? *t : "";
  }
  static void expect_unauthorized(const Status& s, const std::string& what) {
    ASSERT_FALSE(s.has_value()) << what << " was allowed";
    EXPECT_EQ(s.error().code(), ErrorCode::kUnauthorized) << what << ": " << s.error().to_string();
  }
  template <typename T>
  static Status status_of(const Result<T>& r) {
    if (r) return {};
    return std::unexpected(r.error());
  }
  // Every kind of request, each of which must be refused with Unauthorized.
  static void expect_everything_refused(client::Client& c, const std::string& who) {
    SCOPED_TRACE(who);
    expect_unauthorized(status_of(c.read("app/x")), "read");
    expect_unauthorized(status_of(kv::put(c, "app/new", "v")), "put");
    kvpb::RangeRequest scan;
    scan.set_start("app/");
    scan.set_is_prefix(true);
    expect_unauthorized(status_of(c.scan(scan)), "scan");
    kvpb::Command txn;
    txn.mutable_txn()->add_success()->mutable_put()->set_key("app/txn");
    expect_unauthorized(status_of(c.execute(txn)), "txn");
    kvpb::Command grant;
    grant.mutable_lease_grant()->set_ttl_ms(10000);
    expect_unauthorized(status_of(c.execute(grant)), "lease grant");
    expect_unauthorized(status_of(c.list_leases()), "lease list");
    cpb::NodeAddress stranger;
    stranger.set_node_id(9);
    stranger.set_public_key(transport::NodeIdentity::generate().public_key().to_string());
    stranger.add_addrs("127.0.0.1:9");
    expect_unauthorized(status_of(c.add_learner(stranger)), "add learner");
    expect_unauthorized(status_of(c.change_membership({1}, false)), "change membership");
    expect_unauthorized(status_of(c.trigger_snapshot()), "snapshot");
    expect_unauthorized(status_of(c.metrics_text()), "metrics");
    expect_unauthorized(status_of(c.recent_logs(client::Target{1})), "recent log lines");
    expect_unauthorized(status_of(c.who_am_i()), "who am i");
    coord::AtomicCounter counter(c, "auth-test");
    expect_unauthorized(status_of(counter.increment()), "counter");
    coord::DistributedLock lock(c, "auth-test");
    expect_unauthorized(status_of(lock.try_acquire("intruder", 10000)), "lock");
    // Health needs no token.
    EXPECT_TRUE(c.health().has_value());
  }
  static void expect_nothing_changed() {
    for (const char* key : {"app/new", "app/txn", "__coord:counter:auth-test", "__coord:lock:auth-test"}) {
      auto got = admin_->read(key);
      ASSERT_TRUE(got.has_value()) << got.error().to_string();
      EXPECT_FALSE(got->has_value()) << key << " was written";
    }
    auto leases = admin_->list_leases();
    ASSERT_TRUE(leases.has_value()) << leases.error().to_string();
    EXPECT_TRUE(leases->empty());
    auto m = admin_->raft_metrics(client::Target{1});
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->voters_size(), 3);
    EXPECT_EQ(m->learners_size(), 0);
  }

  static TempDir* dir_;
  static NodeMap nodes_;
  static client::Client* admin_;
  static auth::SeedBytes root_;
};

TempDir* AuthTest::dir_ = nullptr;
NodeMap AuthTest::nodes_;
client::Client* AuthTest::admin_ = nullptr;
auth::SeedBytes AuthTest::root_{};

TEST_F(AuthTest, EveryRequestWithoutAValidTokenIsRefusedAndChangesNothing) {
  ASSERT_TRUE(kv::put(*admin_, "app/x", "secret").has_value());
  const auto me = transport::NodeIdentity::generate();
  const auto other = transport::NodeIdentity::generate();
  const std::string all = "full:";

  auto none = client_as(me, "");
  expect_everything_refused(*none, "no token");
  // Followers too (nodes 2 and 3 joined as learners and got the data by replication).
  for (uint64_t node : {2, 3}) {
    expect_unauthorized(status_of(none->read("app/x", cpb::CONSISTENCY_STALE, client::Target{node})),
                        "stale read from node " + std::to_string(node));
  }

  auto foreign = client_as(me, issue(other, {"full:", "admin"}));
  expect_everything_refused(*foreign, "a token for another key");

  auto expired = client_as(me, issue(me, {"full:", "admin"}, -60));
  expect_everything_refused(*expired, "an expired token");

  auth::SeedBytes not_root{};
  randombytes_buf(not_root.data(), not_root.size());
  auto forged = client_as(me, *auth::issue_token(not_root, spec(me, {"full:", "admin"})));
  expect_everything_refused(*forged, "a token signed by another root");

  std::string tampered = issue(me, {"read:app/"});
  // Turn "read" into a wider action inside the signed body: the signature no longer holds.
  authpb::SignedToken st;
  ASSERT_TRUE(st.ParseFromString(tampered));
  authpb::TokenBody body;
  ASSERT_TRUE(body.ParseFromString(st.body()));
  body.mutable_capabilities(0)->set_action(authpb::FULL);
  body.mutable_capabilities(0)->set_prefix("");
  body.add_capabilities()->set_action(authpb::ADMIN);
  st.set_body(body.SerializeAsString());
  auto tampered_client = client_as(me, st.SerializeAsString());
  expect_everything_refused(*tampered_client, "a tampered token");

  // Over-delegated: a holder of read:app/ (with delegate) signs itself a child granting more.
  const auto holder = transport::NodeIdentity::generate();
  const std::string parent = issue(holder, {"read:app/", "delegate"});
  authpb::TokenBody child;
  child.set_version(1);
  auth::TokenId id{};
  randombytes_buf(id.data(), id.size());
  child.set_id(id.data(), id.size());
  child.set_issuer_key(holder.public_key().bytes().data(), 32);
  child.set_audience_key(me.public_key().bytes().data(), 32);
  child.add_capabilities()->set_action(authpb::FULL);
  child.add_capabilities()->set_action(authpb::ADMIN);
  child.set_not_before_s(now_s() - 60);
  child.set_expires_s(now_s() + 600);
  child.set_parent(parent);
  auto over = client_as(me, sign_by_hand(child, holder.seed()));
  expect_everything_refused(*over, "an over-delegated token");

  auto garbage = client_as(me, "not a token at all");
  expect_everything_refused(*garbage, "garbage");

  expect_nothing_changed();
  auto text = admin_->metrics_text(client::Target{1});
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(text->find("aspen_client_unauthorized_total{node_id=\"1\"} 0\n"), std::string::npos);
}

// A node's recent log lines may name keys, peers and addresses: admin only.
TEST_F(AuthTest, RecentLogLinesNeedAdmin) {
  const auto reader = transport::NodeIdentity::generate();
  auto c = client_as(reader, issue(reader, {"full:"}));
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->read("app/anything").has_value());  // the token works for what it grants
  expect_unauthorized(status_of(c->recent_logs(client::Target{2})), "recent log lines without admin");
  auto logs = admin_->recent_logs(client::Target{2});
  ASSERT_TRUE(logs.has_value()) << logs.error().to_string();
  EXPECT_EQ(logs->node_id(), 2u);
  EXPECT_FALSE(logs->lines().empty());
}

TEST_F(AuthTest, CapabilitiesScopeByPrefixBothWays) {
  ASSERT_TRUE(kv::put(*admin_, "app/x", "1").has_value());
  ASSERT_TRUE(kv::put(*admin_, "apz", "2").has_value());
  const auto me = transport::NodeIdentity::generate();
  auto reader = client_as(me, issue(me, {"read:app/"}));
  auto got = reader->read("app/x");
  ASSERT_TRUE(got.has_value()) << got.error().to_string();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value(), "1");
  expect_unauthorized(status_of(reader->read("apz")), "read outside the prefix");
  expect_unauthorized(status_of(reader->read("ap")), "read of the prefix's own parent");
  kvpb::RangeRequest inside;
  inside.set_start("app/");
  inside.set_is_prefix(true);
  EXPECT_TRUE(reader->scan(inside).has_value());
  kvpb::RangeRequest wider;
  wider.set_start("ap");
  wider.set_is_prefix(true);
  expect_unauthorized(status_of(reader->scan(wider)), "scan wider than the prefix");
  expect_unauthorized(status_of(kv::put(*reader, "app/x", "changed")), "write with read only");

  auto writer = client_as(me, issue(me, {"write:app/"}));
  EXPECT_TRUE(kv::put(*writer, "app/y", "w").has_value());
  expect_unauthorized(status_of(writer->read("app/y")), "read with write only");
  expect_unauthorized(status_of(kv::put(*writer, "apz", "w")), "write outside the prefix");
  auto x = admin_->read("app/x");
  ASSERT_TRUE(x.has_value() && x->has_value());
  EXPECT_EQ((*x)->value(), "1");

  auto who = reader->who_am_i();
  ASSERT_TRUE(who.has_value()) << who.error().to_string();
  EXPECT_EQ(who->public_key(), me.public_key().to_string());
  ASSERT_EQ(who->capabilities_size(), 1);
  EXPECT_EQ(who->capabilities(0), "read:app/");
}

TEST_F(AuthTest, DelegatedTokenGrantsOnlyItsNarrowerPart) {
  ASSERT_TRUE(kv::put(*admin_, "app/public/a", "pub").has_value());
  ASSERT_TRUE(kv::put(*admin_, "app/secret", "sec").has_value());
  const auto team = transport::NodeIdentity::generate();
  const auto member = transport::NodeIdentity::generate();
  const std::string team_token = issue(team, {"full:app/", "delegate"});
  auto child = auth::delegate_token(team_token, team.seed(), spec(member, {"read:app/public/"}, 600));
  ASSERT_TRUE(child.has_value()) << child.error().to_string();
  auto c = client_as(member, *child);
  auto got = c->read("app/public/a");
  ASSERT_TRUE(got.has_value()) << got.error().to_string();
  EXPECT_TRUE(got->has_value());
  expect_unauthorized(status_of(c->read("app/secret")), "read beyond the delegated prefix");
  expect_unauthorized(status_of(kv::put(*c, "app/public/a", "x")), "write with a read-only child");
  // The team's own token presented by the member is someone else's.
  auto stolen = client_as(member, team_token);
  expect_unauthorized(status_of(stolen->read("app/public/a")), "a token presented by another key");
  auto who = c->who_am_i();
  ASSERT_TRUE(who.has_value());
  EXPECT_EQ(who->chain_depth(), 2u);
}

TEST_F(AuthTest, RevokedTokenAndItsChildrenAreRefusedOnEveryMember) {
  ASSERT_TRUE(kv::put(*admin_, "app/r", "v").has_value());
  const auto me = transport::NodeIdentity::generate();
  const auto friend_key = transport::NodeIdentity::generate();
  auth::TokenSpec s = spec(me, {"read:app/", "delegate"});
  const std::string token = *auth::issue_token(root_, s);
  auto child = auth::delegate_token(token, me.seed(), spec(friend_key, {"read:app/"}, 600));
  ASSERT_TRUE(child.has_value());
  auto c = client_as(me, token);
  auto f = client_as(friend_key, *child);
  for (uint64_t node : {1, 2, 3}) {
    ASSERT_TRUE(c->read("app/r", cpb::CONSISTENCY_STALE, client::Target{node}).has_value()) << node;
  }
  ASSERT_TRUE(f->read("app/r").has_value());
  ASSERT_TRUE(admin_->revoke_token(s.id, s.expires_s).has_value());
  // Each member stops accepting it once the revocation is applied there and its
  // per-connection cache (token_cache_ms, 1 s) has expired.
  for (uint64_t node : {1, 2, 3}) {
    ASSERT_TRUE(wait_until(
        [&] {
          auto r = c->read("app/r", cpb::CONSISTENCY_STALE, client::Target{node});
          return !r && r.error().code() == ErrorCode::kUnauthorized;
        },
        10000))
        << "node " << node << " still accepts a revoked token";
  }
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = f->read("app/r");
        return !r && r.error().code() == ErrorCode::kUnauthorized;
      },
      10000));
  // Only an admin may revoke.
  auto other = client_as(me, issue(me, {"full:"}));
  expect_unauthorized(other->revoke_token(s.id, s.expires_s), "revoke without admin");
  // A token id of the wrong size is refused, naming the size.
  cpb::Request bad;
  bad.mutable_revoke_token()->set_token_id("short");
  auto r = admin_->call(bad);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("32 hex digits"), std::string::npos) << r.error().message();
}

// A write sent to a follower with a token that does not allow it is refused there, not
// relayed for the leader to decide.
TEST_F(AuthTest, FollowerRefusesBeforeRelaying) {
  auto leader = admin_->leader();
  ASSERT_TRUE(leader.has_value());
  const uint64_t follower = leader->leader().node_id() == 1 ? 2 : 1;
  const auto me = transport::NodeIdentity::generate();
  auto reader = client_as(me, issue(me, {"read:"}));
  cpb::Request put;
  put.mutable_write()->mutable_command()->mutable_put()->set_key("relayed");
  put.mutable_write()->mutable_command()->mutable_put()->set_value("v");
  auto r = reader->call(put, client::Target{follower});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized) << r.error().to_string();
  auto writer = client_as(me, issue(me, {"write:relayed"}));
  auto ok = writer->call(put, client::Target{follower});
  ASSERT_TRUE(ok.has_value()) << ok.error().to_string();
  auto got = admin_->read("relayed");
  ASSERT_TRUE(got.has_value() && got->has_value());
}

}  // namespace
}  // namespace aspen::testing
