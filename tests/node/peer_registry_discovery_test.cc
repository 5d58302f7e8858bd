// PeerRegistry's discovered peers (learn_from_discovery): where gossip or DNS says a node is,
// taken only under the key other sources hold, consulted last, never trusted, bounded and
// expired, one entry per source.
#include <gtest/gtest.h>

#include "node/peer_registry.h"

namespace aspen::node {
namespace {

using transport::SocketAddr;

transport::PublicKey key_of(uint8_t byte) {
  std::array<uint8_t, transport::kPublicKeySizeBytes> raw{};
  raw.fill(byte);
  return transport::PublicKey(raw);
}

PeerInfo peer(NodeId id, uint8_t key, const std::string& addr) { return PeerInfo{id, key_of(key), {*SocketAddr::parse(addr)}}; }

TEST(PeerRegistryDiscovery, ADiscoveredNodeIsFoundButNotTrustedOnceThereIsAMembership) {
  PeerRegistry reg;
  ASSERT_TRUE(reg.learn_from_discovery(peer(5, 5, "127.0.0.1:7005"), "gossip", 1000, 990, ""));
  auto p = reg.lookup(5);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->addrs[0].to_string(), "127.0.0.1:7005");
  EXPECT_FALSE(reg.node_id_of(key_of(5)).has_value());  // no member slot from gossip
  raftpb::ConfState cs;
  cs.add_voters(1);
  reg.set_membership(cs);
  EXPECT_FALSE(reg.is_trusted(key_of(5), 5));
  const auto& d = reg.discovered().at({5, "gossip"});
  EXPECT_EQ(d.source, "gossip");
  EXPECT_EQ(d.first_seen_ms, 1000u);
  EXPECT_EQ(d.announced_ms, 990u);
}

TEST(PeerRegistryDiscovery, AnotherKeyThanAConfiguredOnesIsRefusedAndConfiguredPeersComeFirst) {
  PeerRegistry reg;
  reg.add_manual(peer(2, 2, "127.0.0.1:7002"));
  EXPECT_FALSE(reg.learn_from_discovery(peer(2, 9, "127.0.0.1:7999"), "gossip", 1000, 1000, ""));
  EXPECT_TRUE(reg.discovered().empty());
  EXPECT_TRUE(reg.learn_from_discovery(peer(2, 2, "127.0.0.1:7999"), "gossip", 1000, 1000, ""));
  EXPECT_EQ(reg.lookup(2)->addrs[0].to_string(), "127.0.0.1:7002");
  EXPECT_EQ(reg.known_key(2), key_of(2));
  EXPECT_FALSE(reg.known_key(7).has_value());
}

TEST(PeerRegistryDiscovery, LaterAnnouncementsRefreshAndOldOnesExpire) {
  PeerRegistry reg;
  ASSERT_TRUE(reg.learn_from_discovery(peer(5, 5, "127.0.0.1:7005"), "gossip", 1000, 1000, ""));
  ASSERT_TRUE(reg.learn_from_discovery(peer(5, 5, "127.0.0.1:7105"), "gossip", 2000, 1990, "abcdefghij"));
  const auto& d = reg.discovered().at({5, "gossip"});
  EXPECT_EQ(d.first_seen_ms, 1000u);
  EXPECT_EQ(d.last_seen_ms, 2000u);
  EXPECT_EQ(d.via, "abcdefghij");
  EXPECT_EQ(d.peer.addrs[0].to_string(), "127.0.0.1:7105");
  reg.expire_discovered(1500);
  EXPECT_EQ(reg.discovered().size(), 1u);
  reg.expire_discovered(2001);
  EXPECT_TRUE(reg.discovered().empty());
  EXPECT_FALSE(reg.lookup(5).has_value());
}

TEST(PeerRegistryDiscovery, TheDiscoveredTableIsBoundedAndDropsTheLeastRecentlySeen) {
  PeerRegistry reg;
  for (NodeId id = 1; id <= kMaxDiscoveredPeers + 10; ++id) {
    ASSERT_TRUE(reg.learn_from_discovery(PeerInfo{id, key_of(static_cast<uint8_t>(id)), {{"127.0.0.1", 7000}}},
                                         "gossip", 1000 + id, 1000 + id, ""));
    ASSERT_LE(reg.discovered().size(), kMaxDiscoveredPeers);
  }
  EXPECT_FALSE(reg.discovered().contains({1, "gossip"}));
  EXPECT_TRUE(reg.discovered().contains({kMaxDiscoveredPeers + 10, "gossip"}));
}

TEST(PeerRegistryDiscovery, EachSourceKeepsItsOwnEntryAndLookupMergesTheirAddresses) {
  PeerRegistry reg;
  ASSERT_TRUE(reg.learn_from_discovery(peer(5, 5, "10.0.0.5:7005"), "dns", 1000, 0, ""));
  ASSERT_TRUE(reg.learn_from_discovery(peer(5, 5, "127.0.0.1:7005"), "gossip", 2000, 1990, ""));
  EXPECT_EQ(reg.discovered().size(), 2u);
  EXPECT_EQ(reg.discovered().at({5, "dns"}).last_seen_ms, 1000u);
  auto d = reg.find_discovered(5);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->source, "gossip");  // heard most recently: its addresses first
  ASSERT_EQ(d->peer.addrs.size(), 2u);
  EXPECT_EQ(d->peer.addrs[0].to_string(), "127.0.0.1:7005");
  EXPECT_EQ(d->peer.addrs[1].to_string(), "10.0.0.5:7005");
  EXPECT_EQ(reg.lookup(5)->addrs.size(), 2u);
  // Expiring one source leaves the other's entry.
  reg.expire_discovered(1500, "dns");
  EXPECT_FALSE(reg.discovered().contains({5, "dns"}));
  EXPECT_TRUE(reg.discovered().contains({5, "gossip"}));
  EXPECT_FALSE(reg.node_id_of(key_of(5)).has_value());  // still no member slot
}

// A goodbye (mDNS) forgets that source's entry for the node, only under the node's key;
// what other sources said stays.
TEST(PeerRegistryDiscovery, AGoodbyeForgetsOnlyThatSourcesEntryUnderTheSameKey) {
  PeerRegistry reg;
  ASSERT_TRUE(reg.learn_from_discovery(peer(5, 5, "10.0.0.5:7005"), "mdns", 1000, 0, ""));
  ASSERT_TRUE(reg.learn_from_discovery(peer(5, 5, "127.0.0.1:7005"), "gossip", 1000, 990, ""));
  EXPECT_FALSE(reg.forget_discovered(5, key_of(6), "mdns"));  // another key: not this node's goodbye
  EXPECT_FALSE(reg.forget_discovered(6, key_of(5), "mdns"));  // no such entry
  EXPECT_TRUE(reg.discovered().contains({5, "mdns"}));
  EXPECT_TRUE(reg.forget_discovered(5, key_of(5), "mdns"));
  EXPECT_FALSE(reg.discovered().contains({5, "mdns"}));
  ASSERT_TRUE(reg.discovered().contains({5, "gossip"}));
  EXPECT_EQ(reg.lookup(5)->addrs[0].to_string(), "127.0.0.1:7005");
}

TEST(PeerRegistryDiscovery, TwoSourcesThatDisagreeOnTheKeyKeepTheFirst) {
  PeerRegistry reg;
  ASSERT_TRUE(reg.learn_from_discovery(peer(5, 5, "10.0.0.5:7005"), "dns", 1000, 0, ""));
  EXPECT_FALSE(reg.learn_from_discovery(peer(5, 6, "10.0.0.6:7005"), "gossip", 1100, 1100, ""));
  EXPECT_EQ(reg.find_discovered(5)->peer.key, key_of(5));
  // The source itself may change its mind (an operator re-keyed the node in the zone).
  EXPECT_TRUE(reg.learn_from_discovery(peer(5, 7, "10.0.0.5:7005"), "dns", 1200, 0, ""));
  EXPECT_EQ(reg.find_discovered(5)->peer.key, key_of(7));
  EXPECT_EQ(reg.find_discovered(5)->first_seen_ms, 1200u);
}

TEST(PeerRegistryDiscovery, EachSourceIsBoundedOnItsOwn) {
  PeerRegistry reg;
  for (NodeId id = 1; id <= kMaxDiscoveredPeers + 5; ++id) {
    ASSERT_TRUE(reg.learn_from_discovery(PeerInfo{id, key_of(static_cast<uint8_t>(id)), {{"127.0.0.1", 7000}}},
                                         "gossip", 1000 + id, 1000 + id, ""));
  }
  ASSERT_TRUE(reg.learn_from_discovery(PeerInfo{100000, key_of(1), {{"127.0.0.1", 7001}}}, "dns", 1, 0, ""));
  ASSERT_TRUE(reg.learn_from_discovery(PeerInfo{100001, key_of(2), {{"127.0.0.1", 7002}}}, "gossip", 5000, 5000, ""));
  // A flood from one source evicts its own least recently seen, not another source's entry.
  EXPECT_TRUE(reg.discovered().contains({100000, "dns"}));
  EXPECT_EQ(reg.discovered().size(), kMaxDiscoveredPeers + 1);
}

}  // namespace
}  // namespace aspen::node
