// Gossip discovery's core (src/cluster/gossip.h) and wire format (gossip_codec.h): what is
// taken, what is refused and counted, and the bounds on views, tables and messages.
#include "cluster/gossip.h"
#include "cluster/gossip_follow.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "aspen/cluster.pb.h"
#include "node/gossip_topic.h"

namespace aspen::cluster {
namespace {

constexpr uint64_t kNow = 1'800'000'000'000;  // ms since the epoch, some day in 2027

transport::NodeIdentity identity_of(uint8_t byte) {
  std::array<uint8_t, transport::kSecretSeedSizeBytes> seed{};
  seed.fill(byte);
  return transport::NodeIdentity::from_seed(seed);
}

const GossipTopic& topic() {
  static const GossipTopic t = node::gossip_topic("the-cluster-cookie");
  return t;
}

Announcement announcement_of(NodeId id, uint64_t ts, const GossipTopic& t = topic()) {
  Announcement a;
  a.topic = t;
  a.node_id = id;
  a.public_key = identity_of(static_cast<uint8_t>(id)).public_key();
  a.addrs = {{"127.0.0.1", static_cast<uint16_t>(7000 + id)}};
  a.timestamp_ms = ts;
  return a;
}

std::string message_of(const SignedAnnouncement& sender, std::vector<SignedAnnouncement> forwarded = {},
                       bool wants_reply = false) {
  return encode_gossip_message(GossipMessage{sender, std::move(forwarded), wants_reply, std::nullopt});
}

// A node's core; `known` plays the other sources (records, --peers, tickets).
struct Node {
  explicit Node(NodeId id, uint32_t rate = 12)
      : core(GossipCoreConfig{id, topic(), rate, std::nullopt}, identity_of(static_cast<uint8_t>(id)),
             [this](NodeId n) -> std::optional<transport::PublicKey> {
               auto it = known.find(n);
               if (it == known.end()) return std::nullopt;
               return it->second;
             }) {
    core.set_self_addrs({{"127.0.0.1", static_cast<uint16_t>(7000 + id)}});
  }
  std::map<NodeId, transport::PublicKey> known;
  GossipCore core;
};

transport::PublicKey key_of(NodeId id) { return identity_of(static_cast<uint8_t>(id)).public_key(); }

uint64_t verdicts(const GossipCore& core, GossipVerdict v) { return core.stats().verdicts[static_cast<size_t>(v)]; }

TEST(GossipTopic, IsTheSameForOneCookieAndDiffersForAnother) {
  EXPECT_EQ(node::gossip_topic("the-cluster-cookie"), node::gossip_topic("the-cluster-cookie"));
  EXPECT_NE(node::gossip_topic("the-cluster-cookie"), node::gossip_topic("the-cluster-cookiE"));
}

TEST(GossipCodec, SignedAnnouncementsOpenToWhatWasSigned) {
  const auto a = announcement_of(3, kNow);
  auto opened = open_announcement(sign_announcement(a, identity_of(3)));
  ASSERT_TRUE(opened) << opened.error().to_string();
  EXPECT_EQ(opened->node_id, 3u);
  EXPECT_EQ(opened->public_key, key_of(3));
  EXPECT_EQ(opened->addrs, a.addrs);
  EXPECT_EQ(opened->timestamp_ms, kNow);
  EXPECT_EQ(opened->topic, topic());
}

TEST(GossipCodec, AnyChangedByteOfASignedAnnouncementIsRefused) {
  const auto s = sign_announcement(announcement_of(3, kNow), identity_of(3));
  for (size_t i = 0; i < s.announcement.size(); ++i) {
    auto forged = s;
    forged.announcement[i] = static_cast<char>(forged.announcement[i] ^ 0x01);
    EXPECT_FALSE(open_announcement(forged)) << "byte " << i;
  }
  auto forged = s;
  forged.signature[5] = static_cast<char>(forged.signature[5] ^ 0x80);
  auto r = open_announcement(forged);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
}

RC_GTEST_PROP(GossipCodec, MessagesRoundTripAndStayWithinTheLimit, (uint64_t id, uint64_t ts, uint8_t n_addrs)) {
  RC_PRE(id != 0);
  Announcement a = announcement_of(1, ts);
  a.node_id = id;
  a.addrs.clear();
  for (size_t i = 0; i < n_addrs % (kMaxGossipAddrs + 1); ++i) {
    a.addrs.push_back({i % 2 == 0 ? "10.0.0." + std::to_string(i) : "fe80::" + std::to_string(i), static_cast<uint16_t>(i)});
  }
  const auto s = sign_announcement(a, identity_of(1));
  auto opened = open_announcement(s);
  RC_ASSERT(opened.has_value());
  RC_ASSERT(opened->node_id == id && opened->timestamp_ms == ts && opened->addrs == a.addrs);
  const GossipMessage m{s, std::vector<SignedAnnouncement>(n_addrs % (kMaxGossipForwarded + 1), s), true, std::nullopt};
  const std::string bytes = encode_gossip_message(m);
  RC_ASSERT(bytes.size() == encoded_size(m));
  auto decoded = decode_gossip_message(bytes);
  if (bytes.size() > kMaxGossipMessageBytes) {
    RC_ASSERT(!decoded.has_value());
  } else {
    RC_ASSERT(decoded.has_value() && *decoded == m);
  }
}

RC_GTEST_PROP(GossipCodec, AnyBytesDecodeWithinTheLimitsOrAreRefused, (std::string bytes)) {
  auto m = decode_gossip_message(bytes);
  if (!m) return;
  RC_ASSERT(bytes.size() <= kMaxGossipMessageBytes);
  RC_ASSERT(m->forwarded.size() <= kMaxGossipForwarded);
  if (m->follow_topic) {
    // A follow request carries nothing else.
    RC_ASSERT(m->sender.announcement.empty() && m->sender.signature.empty() && m->forwarded.empty());
  } else {
    RC_ASSERT(m->sender.signature.size() == kGossipSignatureSizeBytes);
  }
}

TEST(GossipCodec, AMessageOverTheSizeLimitIsRefusedBeforeParsing) {
  clusterpb::GossipMessage pb;
  pb.mutable_sender()->set_announcement(std::string(kMaxGossipMessageBytes, 'x'));
  auto r = decode_gossip_message(pb.SerializeAsString());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMessageTooLarge);
  auto too_many = decode_gossip_message(message_of(sign_announcement(announcement_of(1, kNow), identity_of(1)),
                                                   std::vector<SignedAnnouncement>(kMaxGossipForwarded + 1)));
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code(), ErrorCode::kInvalidArgument);
}

TEST(GossipCore, ASignedAnnouncementTeachesTheNodeAndMakesItANeighbour) {
  Node b(2);
  auto r = b.core.on_message(key_of(1), message_of(sign_announcement(announcement_of(1, kNow), identity_of(1)), {}, true),
                             kNow);
  EXPECT_EQ(r.verdict, GossipVerdict::kAccepted);
  EXPECT_TRUE(r.should_reply);
  ASSERT_EQ(r.learned.size(), 1u);
  EXPECT_EQ(r.learned[0].node_id, 1u);
  EXPECT_EQ(r.learned[0].key, key_of(1));
  EXPECT_EQ(r.learned[0].via, transport::PublicKey());
  ASSERT_EQ(b.core.active_view().size(), 1u);
  EXPECT_EQ(b.core.active_view()[0].key, key_of(1));
  EXPECT_FALSE(b.core.needs_seeds());
}

TEST(GossipCore, AForgedAnnouncementIsRefusedAndCounted) {
  Node b(2);
  auto s = sign_announcement(announcement_of(1, kNow), identity_of(1));
  s.signature[0] = static_cast<char>(s.signature[0] ^ 1);
  auto r = b.core.on_message(key_of(1), message_of(s), kNow);
  EXPECT_EQ(r.verdict, GossipVerdict::kBadSignature);
  EXPECT_TRUE(r.learned.empty());
  EXPECT_EQ(verdicts(b.core, GossipVerdict::kBadSignature), 1u);
  EXPECT_TRUE(b.core.nodes().empty());
  EXPECT_TRUE(b.core.needs_seeds());
}

TEST(GossipCore, AReplayedAnnouncementIsRefusedAndCounted) {
  Node b(2);
  const std::string m = message_of(sign_announcement(announcement_of(1, kNow), identity_of(1)));
  EXPECT_EQ(b.core.on_message(key_of(1), m, kNow).verdict, GossipVerdict::kAccepted);
  EXPECT_EQ(b.core.on_message(key_of(1), m, kNow + 5000).verdict, GossipVerdict::kReplayed);
  EXPECT_EQ(verdicts(b.core, GossipVerdict::kReplayed), 1u);
  // An older one is a replay too; a newer one is news.
  EXPECT_EQ(b.core.on_message(key_of(1), message_of(sign_announcement(announcement_of(1, kNow - 1), identity_of(1))),
                              kNow + 6000)
                .verdict,
            GossipVerdict::kReplayed);
  EXPECT_EQ(b.core.on_message(key_of(1), message_of(sign_announcement(announcement_of(1, kNow + 1), identity_of(1))),
                              kNow + 7000)
                .verdict,
            GossipVerdict::kAccepted);
}

TEST(GossipCore, AnAnnouncementSignedByAnotherKeyForAKnownIdIsRefusedAndCounted) {
  Node b(2);
  // Node 1's id is known (say from the cluster's records) with node 1's key; node 7 signs
  // an announcement claiming id 1 with its own key.
  b.known[1] = key_of(1);
  Announcement a = announcement_of(7, kNow);
  a.node_id = 1;
  auto r = b.core.on_message(key_of(7), message_of(sign_announcement(a, identity_of(7))), kNow);
  EXPECT_EQ(r.verdict, GossipVerdict::kWrongKey);
  EXPECT_EQ(verdicts(b.core, GossipVerdict::kWrongKey), 1u);
  // Without another source, the first key heard for an id holds until it expires.
  Node c(3);
  EXPECT_EQ(c.core.on_message(key_of(1), message_of(sign_announcement(announcement_of(1, kNow), identity_of(1))), kNow)
                .verdict,
            GossipVerdict::kAccepted);
  EXPECT_EQ(c.core.on_message(key_of(7), message_of(sign_announcement(a, identity_of(7))), kNow + 1).verdict,
            GossipVerdict::kWrongKey);
}

TEST(GossipCore, AFloodFromOnePeerIsCutAtTheRateLimitAndCounted) {
  Node b(2, 12);
  int accepted = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    auto r = b.core.on_message(
        key_of(1), message_of(sign_announcement(announcement_of(1, kNow + i), identity_of(1))), kNow + i);
    if (r.verdict == GossipVerdict::kAccepted) ++accepted;
  }
  EXPECT_EQ(accepted, 12);
  EXPECT_EQ(verdicts(b.core, GossipVerdict::kRateLimited), 38u);
  // Another peer is not held back by the first one's flood, and the next minute starts afresh.
  EXPECT_EQ(b.core.on_message(key_of(3), message_of(sign_announcement(announcement_of(3, kNow), identity_of(3))), kNow)
                .verdict,
            GossipVerdict::kAccepted);
  EXPECT_EQ(b.core.on_message(key_of(1),
                              message_of(sign_announcement(announcement_of(1, kNow + 60'100), identity_of(1))),
                              kNow + 60'100)
                .verdict,
            GossipVerdict::kAccepted);
}

TEST(GossipCore, OtherClustersStaleAnnouncementsAndImpostorsAreRefused) {
  Node b(2);
  const auto other = node::gossip_topic("another-cookie");
  EXPECT_EQ(b.core.on_message(key_of(1), message_of(sign_announcement(announcement_of(1, kNow, other), identity_of(1))),
                              kNow)
                .verdict,
            GossipVerdict::kWrongTopic);
  EXPECT_EQ(b.core.on_message(key_of(1),
                              message_of(sign_announcement(announcement_of(1, kNow - kMaxGossipAnnouncementAgeMs - 1),
                                                           identity_of(1))),
                              kNow)
                .verdict,
            GossipVerdict::kStale);
  EXPECT_EQ(b.core.on_message(key_of(1),
                              message_of(sign_announcement(announcement_of(1, kNow + kMaxGossipFutureSkewMs + 1),
                                                           identity_of(1))),
                              kNow)
                .verdict,
            GossipVerdict::kStale);
  // Node 5 sends node 1's announcement as if it were its own.
  EXPECT_EQ(b.core.on_message(key_of(5), message_of(sign_announcement(announcement_of(1, kNow), identity_of(1))), kNow)
                .verdict,
            GossipVerdict::kSenderMismatch);
  // Our own id under another key.
  EXPECT_EQ(b.core.on_message(key_of(9), message_of(sign_announcement(
                                             [] {
                                               auto a = announcement_of(9, kNow);
                                               a.node_id = 2;
                                               return a;
                                             }(),
                                             identity_of(9))),
                              kNow)
                .verdict,
            GossipVerdict::kWrongKey);
  EXPECT_TRUE(b.core.nodes().empty());
  // Garbage.
  EXPECT_EQ(b.core.on_message(key_of(1), "not a message", kNow).verdict, GossipVerdict::kMalformed);
}

TEST(GossipCore, PassedOnAnnouncementsTeachAThirdNode) {
  Node a(1), b(2), c(3);
  Rng rng(7);
  // a -> b; then b's message to c passes a's announcement on.
  auto r1 = b.core.on_message(key_of(1), a.core.make_message(kNow, key_of(2), false, rng), kNow);
  ASSERT_EQ(r1.verdict, GossipVerdict::kAccepted);
  auto r2 = c.core.on_message(key_of(2), b.core.make_message(kNow + 10, key_of(3), false, rng), kNow + 10);
  ASSERT_EQ(r2.verdict, GossipVerdict::kAccepted);
  ASSERT_EQ(r2.learned.size(), 2u);
  EXPECT_EQ(r2.learned[1].node_id, 1u);
  EXPECT_EQ(r2.learned[1].via, key_of(2));
  EXPECT_TRUE(c.core.nodes().contains(1));
  // Passed on again, the same announcement is a duplicate, not a refusal of the message.
  auto r3 = c.core.on_message(key_of(2), b.core.make_message(kNow + 20, key_of(3), false, rng), kNow + 20);
  EXPECT_EQ(r3.verdict, GossipVerdict::kAccepted);
  EXPECT_GE(verdicts(c.core, GossipVerdict::kDuplicate), 1u);
  // The node's own, newer announcement sent directly after that is taken.
  auto r4 = c.core.on_message(key_of(1), a.core.make_message(kNow + 30, key_of(3), false, rng), kNow + 30);
  EXPECT_EQ(r4.verdict, GossipVerdict::kAccepted);
}

TEST(GossipCore, ViewsTablesAndMessagesStayBounded) {
  Node b(2, 100000);
  Rng rng(3);
  for (NodeId id = 10; id < 10 + kMaxGossipNodes + 40; ++id) {
    Announcement a = announcement_of(id, kNow + id);
    a.addrs.clear();
    for (size_t i = 0; i < kMaxGossipAddrs; ++i) {
      a.addrs.push_back({"ffff:ffff:ffff:ffff:ffff:ffff:ffff:" + std::to_string(1000 + i), 65535});
    }
    auto r = b.core.on_message(a.public_key, message_of(sign_announcement(a, identity_of(static_cast<uint8_t>(id)))),
                               kNow + id);
    // Seeds 10..255 are distinct keys; past that the byte wraps onto earlier keys.
    if (id <= 255) {
      EXPECT_EQ(r.verdict, GossipVerdict::kAccepted) << id;
    }
    ASSERT_LE(b.core.nodes().size(), kMaxGossipNodes);
    ASSERT_LE(b.core.active_view().size(), kGossipActiveViewSize);
    ASSERT_LE(b.core.passive_view().size(), kGossipPassiveViewSize);
  }
  const std::string m = b.core.make_message(kNow + 1000, key_of(1), false, rng);
  EXPECT_LE(m.size(), kMaxGossipMessageBytes);
  auto decoded = decode_gossip_message(m);
  ASSERT_TRUE(decoded);
  EXPECT_GE(decoded->forwarded.size(), 1u);
}

TEST(GossipCore, FailedPeersLeaveTheActiveViewAndAreForgottenAfterRepeatedFailures) {
  Node b(2);
  Rng rng(5);
  for (NodeId id = 10; id < 20; ++id) b.core.add_candidate(GossipTarget{key_of(id), {{"127.0.0.1", 7000}}});
  EXPECT_EQ(b.core.round(kNow, rng).size(), kGossipActiveViewSize);
  EXPECT_EQ(b.core.passive_view().size(), 10 - kGossipActiveViewSize);

  // One peer alone: each failure sends it back to the passive view, from which the next
  // round draws it again, until it has failed kGossipMaxSendFailures times in a row.
  Node c(3);
  const auto peer = key_of(10);
  c.core.add_candidate(GossipTarget{peer, {{"127.0.0.1", 7010}}});
  for (uint32_t i = 1; i <= kGossipMaxSendFailures; ++i) {
    ASSERT_EQ(c.core.round(kNow, rng).size(), 1u);
    c.core.on_send_failed(peer);
    EXPECT_TRUE(c.core.active_view().empty());
    EXPECT_EQ(c.core.passive_view().size(), i < kGossipMaxSendFailures ? 1u : 0u);
  }
  EXPECT_TRUE(c.core.needs_seeds());
}

TEST(GossipCore, OwnTimestampsStrictlyIncreaseSoNoPeerSeesAReplay) {
  Node a(1), b(2);
  Rng rng(9);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(b.core.on_message(key_of(1), a.core.make_message(kNow, key_of(2), false, rng), kNow).verdict,
              GossipVerdict::kAccepted);
  }
}

// ---- following with a ticket (gossip_follow.h): read-only, no cookie

const GossipTopic& follow_topic() {
  static const GossipTopic t = node::gossip_follow_topic(topic());
  return t;
}

struct FollowedNode {
  explicit FollowedNode(NodeId id)
      : core(GossipCoreConfig{id, topic(), 12, follow_topic()}, identity_of(static_cast<uint8_t>(id)),
             [](NodeId) { return std::optional<transport::PublicKey>(); }) {
    core.set_self_addrs({{"127.0.0.1", static_cast<uint16_t>(7000 + id)}});
  }
  GossipCore core;
};

Result<std::vector<Announcement>> read_reply(std::string_view bytes, NodeId from, uint64_t now = kNow) {
  return read_follow_reply(bytes, key_of(from), follow_topic(), node::gossip_follow_topic, now);
}

TEST(GossipTopic, TheFollowTopicDiffersFromTheTopicAndPerCluster) {
  EXPECT_NE(follow_topic(), topic());
  EXPECT_NE(follow_topic(), node::gossip_follow_topic(node::gossip_topic("another-cookie")));
  EXPECT_EQ(follow_topic(), node::gossip_follow_topic(node::gossip_topic("the-cluster-cookie")));
}

TEST(GossipCodec, AFollowRequestRoundTripsAndCarriesNothingElse) {
  auto m = decode_gossip_message(encode_follow_request(follow_topic()));
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->follow_topic, follow_topic());
  EXPECT_TRUE(m->wants_reply);
  EXPECT_TRUE(m->forwarded.empty());

  // With announcements beside it, or a topic of the wrong size: refused whole.
  clusterpb::GossipMessage pb;
  pb.set_follow_topic(std::string(kGossipTopicSizeBytes, 'f'));
  const auto s = sign_announcement(announcement_of(1, kNow), identity_of(1));
  pb.mutable_sender()->set_announcement(s.announcement);
  pb.mutable_sender()->set_signature(s.signature);
  EXPECT_EQ(decode_gossip_message(pb.SerializeAsString()).error().code(), ErrorCode::kInvalidArgument);
  pb.clear_sender();
  auto* f = pb.add_forwarded();
  f->set_announcement(s.announcement);
  f->set_signature(s.signature);
  EXPECT_FALSE(decode_gossip_message(pb.SerializeAsString()));
  clusterpb::GossipMessage short_topic;
  short_topic.set_follow_topic(std::string(31, 'f'));
  EXPECT_FALSE(decode_gossip_message(short_topic.SerializeAsString()));
}

TEST(GossipCore, AFollowRequestIsAnsweredAndTeachesNothing) {
  FollowedNode b(2);
  // b knows node 1 and node 3.
  ASSERT_EQ(b.core.on_message(key_of(1), message_of(sign_announcement(announcement_of(1, kNow), identity_of(1))), kNow)
                .verdict,
            GossipVerdict::kAccepted);
  ASSERT_EQ(b.core.on_message(key_of(3), message_of(sign_announcement(announcement_of(3, kNow), identity_of(3))), kNow)
                .verdict,
            GossipVerdict::kAccepted);
  const auto views_before = b.core.active_view().size() + b.core.passive_view().size();
  const transport::PublicKey reader = identity_of(77).public_key();
  auto r = b.core.on_message(reader, encode_follow_request(follow_topic()), kNow);
  EXPECT_EQ(r.verdict, GossipVerdict::kFollower);
  EXPECT_TRUE(r.should_reply);
  EXPECT_TRUE(r.learned.empty());
  EXPECT_EQ(b.core.nodes().size(), 2u);
  EXPECT_EQ(b.core.active_view().size() + b.core.passive_view().size(), views_before);
  EXPECT_EQ(verdicts(b.core, GossipVerdict::kFollower), 1u);

  // The answer is the node's usual message, and the reader checks every announcement.
  Rng rng(4);
  auto got = read_reply(b.core.make_message(kNow, reader, false, rng), 2);
  ASSERT_TRUE(got) << got.error().to_string();
  std::vector<NodeId> ids;
  for (const auto& a : *got) ids.push_back(a.node_id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<NodeId>{1, 2, 3}));
}

TEST(GossipCore, AFollowRequestWithAnotherTopicOrToANodeWithoutOneIsRefusedAndCounted) {
  FollowedNode b(2);
  auto r = b.core.on_message(key_of(9), encode_follow_request(node::gossip_follow_topic(node::gossip_topic("other"))), kNow);
  EXPECT_EQ(r.verdict, GossipVerdict::kWrongTopic);
  EXPECT_FALSE(r.should_reply);
  // The gossip topic itself is not the follow topic.
  EXPECT_EQ(b.core.on_message(key_of(9), encode_follow_request(topic()), kNow).verdict, GossipVerdict::kWrongTopic);
  Node c(3);  // no follow topic configured
  EXPECT_EQ(c.core.on_message(key_of(9), encode_follow_request(follow_topic()), kNow).verdict,
            GossipVerdict::kWrongTopic);
  EXPECT_EQ(verdicts(b.core, GossipVerdict::kWrongTopic), 2u);
}

TEST(GossipCore, FollowRequestsAreRateLimitedLikeAnyMessage) {
  FollowedNode b(2);
  const transport::PublicKey reader = identity_of(77).public_key();
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(b.core.on_message(reader, encode_follow_request(follow_topic()), kNow).verdict, GossipVerdict::kFollower);
  }
  EXPECT_EQ(b.core.on_message(reader, encode_follow_request(follow_topic()), kNow).verdict,
            GossipVerdict::kRateLimited);
}

TEST(GossipFollow, AnAnswerFromAnotherClusterAnImpostorOrAStaleNodeIsRefused) {
  const auto own = sign_announcement(announcement_of(2, kNow), identity_of(2));
  EXPECT_TRUE(read_reply(message_of(own), 2));
  // Signed by node 2 but proved by another key on the connection.
  EXPECT_FALSE(read_reply(message_of(own), 3));
  // Another cluster's node.
  const auto other = sign_announcement(announcement_of(2, kNow, node::gossip_topic("other")), identity_of(2));
  EXPECT_FALSE(read_reply(message_of(other), 2));
  // Stale, or far in the future.
  EXPECT_FALSE(read_reply(message_of(own), 2, kNow + kMaxGossipAnnouncementAgeMs + 1));
  EXPECT_FALSE(read_reply(message_of(own), 2, kNow - kMaxGossipFutureSkewMs - 1));
  // Forged.
  auto forged = own;
  forged.signature[5] = static_cast<char>(forged.signature[5] ^ 0x10);
  EXPECT_FALSE(read_reply(message_of(forged), 2));
  // A follow request back, garbage, an oversized answer.
  EXPECT_FALSE(read_reply(encode_follow_request(follow_topic()), 2));
  EXPECT_FALSE(read_reply("\x0a\xff\xff", 2));
  EXPECT_EQ(read_reply(std::string(kMaxGossipMessageBytes + 1, 'x'), 2).error().code(), ErrorCode::kMessageTooLarge);
}

TEST(GossipFollow, BadPassedOnAnnouncementsAreLeftOutAndTheRestKept) {
  const auto own = sign_announcement(announcement_of(2, kNow), identity_of(2));
  auto forged = sign_announcement(announcement_of(4, kNow), identity_of(4));
  forged.signature[0] = static_cast<char>(forged.signature[0] ^ 1);
  const auto other_cluster = sign_announcement(announcement_of(5, kNow, node::gossip_topic("other")), identity_of(5));
  const auto good = sign_announcement(announcement_of(6, kNow), identity_of(6));
  const auto again = sign_announcement(announcement_of(6, kNow - 10), identity_of(6));
  auto got = read_reply(message_of(own, {forged, other_cluster, good, again}), 2);
  ASSERT_TRUE(got) << got.error().to_string();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].node_id, 2u);
  EXPECT_EQ((*got)[1].node_id, 6u);
  EXPECT_EQ((*got)[1].timestamp_ms, kNow);
}

TEST(GossipFollow, MergingKeepsTheNewestAndNeverASecondKeyForAnId) {
  std::map<NodeId, Announcement> into;
  auto no_key = [](NodeId) { return std::optional<transport::PublicKey>(); };
  EXPECT_EQ(merge_followed(into, {announcement_of(1, kNow), announcement_of(2, kNow)}, no_key), 0u);
  Announcement newer = announcement_of(1, kNow + 5);
  newer.addrs = {{"10.0.0.1", 7001}};
  Announcement impostor = announcement_of(2, kNow + 9);
  impostor.public_key = key_of(9);
  EXPECT_EQ(merge_followed(into, {newer, impostor, announcement_of(1, kNow - 5)}, no_key), 1u);
  EXPECT_EQ(into.at(1).addrs, newer.addrs);
  EXPECT_EQ(into.at(2).public_key, key_of(2));
  // The ticket's key for an id wins over any answer.
  std::map<NodeId, Announcement> fresh;
  auto ticket_key = [](NodeId id) { return id == 3 ? std::optional(key_of(33)) : std::nullopt; };
  EXPECT_EQ(merge_followed(fresh, {announcement_of(3, kNow)}, ticket_key), 1u);
  EXPECT_TRUE(fresh.empty());
  // Bounded.
  std::vector<Announcement> many;
  for (NodeId id = 1; id <= kMaxFollowedNodes + 10; ++id) {
    Announcement a = announcement_of(id, kNow);
    many.push_back(a);
  }
  merge_followed(fresh, many, no_key);
  EXPECT_EQ(fresh.size(), kMaxFollowedNodes);
}

RC_GTEST_PROP(GossipFollow, AnyAnswerIsRefusedOrYieldsOnlySignedDistinctFreshAnnouncements, (std::string bytes)) {
  auto got = read_reply(bytes, 2);
  if (!got) return;
  RC_ASSERT(got->size() <= 1 + kMaxGossipForwarded);
  RC_ASSERT((*got)[0].public_key == key_of(2));
}

RC_GTEST_PROP(GossipFollow, AMutatedAnswerNeverYieldsAnAnnouncementNotSignedByItsKey,
              (size_t at, uint8_t flip, size_t cut)) {
  const auto own = sign_announcement(announcement_of(2, kNow), identity_of(2));
  const auto good = sign_announcement(announcement_of(6, kNow), identity_of(6));
  std::string bytes = message_of(own, {good});
  bytes[at % bytes.size()] = static_cast<char>(bytes[at % bytes.size()] ^ flip);
  bytes.resize(bytes.size() - cut % 4);
  auto got = read_reply(bytes, 2);
  if (!got) return;
  std::set<NodeId> ids;
  for (const auto& a : *got) {
    RC_ASSERT(a.public_key == key_of(a.node_id));  // the seeds' keys are the only signers
    RC_ASSERT(ids.insert(a.node_id).second);
  }
}

}  // namespace
}  // namespace aspen::cluster
