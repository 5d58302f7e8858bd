// PeerRegistry: records, greetings, and members that come back on another address.
#include <gtest/gtest.h>

#include "node/peer_registry.h"

namespace aspen::node {
namespace {

using transport::SocketAddr;

kvpb::KeyValue record(NodeId id, const transport::PublicKey& key, const std::string& addr) {
  kvpb::KeyValue kv;
  kv.set_key(node_record_key(id));
  kv.set_value(encode_node_record(id, key, {*SocketAddr::parse(addr)}));
  return kv;
}

raftpb::ConfState voters(std::initializer_list<NodeId> ids) {
  raftpb::ConfState cs;
  for (auto id : ids) cs.add_voters(id);
  return cs;
}

struct Registry {
  transport::NodeIdentity n2 = transport::NodeIdentity::generate();
  PeerRegistry reg;
  Registry() {
    reg.set_records({record(2, n2.public_key(), "127.0.0.1:7002")});
    reg.set_membership(voters({1, 2}));
  }
};

TEST(PeerRegistry, MemberRestartedOnANewAddressIsDialledThereFirst) {
  Registry r;
  EXPECT_FALSE(r.reg.outdated_record().has_value());
  r.reg.learn_from_hello(2, r.n2.public_key(), {*SocketAddr::parse("127.0.0.1:7999")});
  auto p = r.reg.lookup(2);
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->addrs.size(), 2u);
  EXPECT_EQ(p->addrs[0].to_string(), "127.0.0.1:7999");
  EXPECT_EQ(p->addrs[1].to_string(), "127.0.0.1:7002");  // the record's, as a fallback
  auto outdated = r.reg.outdated_record();
  ASSERT_TRUE(outdated.has_value());
  EXPECT_EQ(outdated->id, 2u);
  EXPECT_EQ(outdated->key, r.n2.public_key());
  ASSERT_EQ(outdated->addrs.size(), 1u);
  EXPECT_EQ(outdated->addrs[0].to_string(), "127.0.0.1:7999");
  // Once the leader rewrote the record, nothing is outdated and the address is not doubled.
  r.reg.set_records({record(2, r.n2.public_key(), "127.0.0.1:7999")});
  EXPECT_FALSE(r.reg.outdated_record().has_value());
  ASSERT_EQ(r.reg.lookup(2)->addrs.size(), 1u);
}

TEST(PeerRegistry, GreetingFromAnotherKeyDoesNotMoveAMember) {
  Registry r;
  auto impostor = transport::NodeIdentity::generate();
  r.reg.learn_from_hello(2, impostor.public_key(), {*SocketAddr::parse("127.0.0.1:6666")});
  auto p = r.reg.lookup(2);
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->addrs.size(), 1u);
  EXPECT_EQ(p->addrs[0].to_string(), "127.0.0.1:7002");
  EXPECT_EQ(p->key, r.n2.public_key());
  EXPECT_FALSE(r.reg.outdated_record().has_value());
}

TEST(PeerRegistry, WildcardAnnouncementIsIgnored) {
  Registry r;
  r.reg.learn_from_hello(2, r.n2.public_key(), {*SocketAddr::parse("0.0.0.0:7002")});
  EXPECT_EQ(r.reg.lookup(2)->addrs.size(), 1u);
  EXPECT_FALSE(r.reg.outdated_record().has_value());
}

TEST(PeerRegistry, RemovedMembersRecordIsNotRewritten) {
  Registry r;
  r.reg.learn_from_hello(2, r.n2.public_key(), {*SocketAddr::parse("127.0.0.1:7999")});
  r.reg.set_membership(voters({1}));
  EXPECT_FALSE(r.reg.outdated_record().has_value());
}

// A node being added, started with a ticket of an earlier cluster at the same addresses:
// the leader's greeting proves another key for node 1 than the ticket names. Dialling the
// ticket's key could only fail the TLS check, so the greeting wins until records exist.
TEST(PeerRegistry, GreetingBeatsAStaleManualKeyUntilARecordExists) {
  PeerRegistry reg;
  auto stale = transport::NodeIdentity::generate();
  auto leader = transport::NodeIdentity::generate();
  reg.add_manual(PeerInfo{1, stale.public_key(), {*SocketAddr::parse("127.0.0.1:7001")}});
  EXPECT_EQ(reg.lookup(1)->key, stale.public_key());

  auto conflict = reg.learn_from_hello(1, leader.public_key(), {*SocketAddr::parse("127.0.0.1:7001")});
  ASSERT_TRUE(conflict.has_value()) << "the shell is told, to warn the operator";
  EXPECT_EQ(*conflict, stale.public_key());
  EXPECT_EQ(reg.lookup(1)->key, leader.public_key());

  // A greeting that agrees with the manual entry is no conflict.
  EXPECT_FALSE(reg.learn_from_hello(1, stale.public_key(), {}).has_value());

  // The replicated record is the last word.
  auto recorded = transport::NodeIdentity::generate();
  reg.learn_from_hello(1, leader.public_key(), {*SocketAddr::parse("127.0.0.1:7001")});
  reg.set_records({record(1, recorded.public_key(), "127.0.0.1:7001")});
  EXPECT_EQ(reg.lookup(1)->key, recorded.public_key());
}

// A peer named at start-up (--peers) is trusted while it is a member; once the membership no
// longer includes it, its key is a stranger's.
TEST(PeerRegistry, RemovedManualPeerIsNoLongerTrusted) {
  Registry r;
  auto n3 = transport::NodeIdentity::generate();
  r.reg.add_manual(PeerInfo{3, n3.public_key(), {*SocketAddr::parse("127.0.0.1:7003")}});
  r.reg.set_membership(voters({1, 2, 3}));
  EXPECT_TRUE(r.reg.is_trusted(n3.public_key(), 3));
  r.reg.set_membership(voters({1, 2}));
  EXPECT_FALSE(r.reg.is_trusted(n3.public_key(), 3));
  EXPECT_FALSE(r.reg.is_trusted(n3.public_key()));
  EXPECT_TRUE(r.reg.is_trusted(r.n2.public_key(), 2));
}

}  // namespace
}  // namespace aspen::node
