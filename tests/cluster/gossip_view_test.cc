// Gossip's HyParView views (src/cluster/gossip.h): the shuffle that refreshes the passive view,
// and properties of the view logic under arbitrary sequences of messages, shuffles, answers,
// failures and rounds: views and tables stay within their bounds, this node is never in its
// own views, no peer is in both views or twice in one, every message stays within 4 KiB, and
// a shuffle answer cannot grow any state past its bound.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "cluster/gossip.h"
#include "node/gossip_topic.h"

namespace aspen::cluster {
namespace {

constexpr uint64_t kNow = 1'800'000'000'000;
constexpr NodeId kSelf = 2;

const transport::NodeIdentity& identity_of(NodeId id) {
  static std::map<NodeId, transport::NodeIdentity> cache;
  auto it = cache.find(id);
  if (it == cache.end()) {
    std::array<uint8_t, transport::kSecretSeedSizeBytes> seed{};
    seed.fill(static_cast<uint8_t>(id));
    seed[0] = static_cast<uint8_t>(id >> 8);
    it = cache.emplace(id, transport::NodeIdentity::from_seed(seed)).first;
  }
  return it->second;
}

transport::PublicKey key_of(NodeId id) { return identity_of(id).public_key(); }

const GossipTopic& topic() {
  static const GossipTopic t = node::gossip_topic("view-test-cookie");
  return t;
}

SignedAnnouncement signed_of(NodeId id, uint64_t ts) {
  Announcement a;
  a.topic = topic();
  a.node_id = id;
  a.public_key = key_of(id);
  a.addrs = {{"10.0.0." + std::to_string(id % 250 + 1), static_cast<uint16_t>(7000 + id % 1000)}};
  a.timestamp_ms = ts;
  return sign_announcement(a, identity_of(id));
}

std::string message_from(NodeId id, uint64_t ts, const std::vector<NodeId>& forwarded, bool is_shuffle = false) {
  GossipMessage m;
  m.sender = signed_of(id, ts);
  for (NodeId f : forwarded) {
    if (m.forwarded.size() < kMaxGossipForwarded) m.forwarded.push_back(signed_of(f, ts - 1));
  }
  m.wants_reply = is_shuffle;
  m.is_shuffle = is_shuffle;
  return encode_gossip_message(m);
}

GossipCore make_core() {
  GossipCoreConfig config;
  config.node_id = kSelf;
  config.topic = topic();
  config.peer_messages_per_min = 1'000'000;
  GossipCore core(config, identity_of(kSelf), [](NodeId) { return std::optional<transport::PublicKey>(); });
  core.set_self_addrs({{"10.0.0.3", 7002}});
  return core;
}

bool contains(const std::vector<GossipTarget>& view, const transport::PublicKey& key) {
  return std::any_of(view.begin(), view.end(), [&](const GossipTarget& t) { return t.key == key; });
}

// Every invariant of the views and tables; a failure names the one broken.
void check_bounds(const GossipCore& core) {
  RC_ASSERT(core.active_view().size() <= kGossipActiveViewSize);
  RC_ASSERT(core.passive_view().size() <= kGossipPassiveViewSize);
  RC_ASSERT(core.nodes().size() <= kMaxGossipNodes);
  RC_ASSERT(!contains(core.active_view(), key_of(kSelf)));
  RC_ASSERT(!contains(core.passive_view(), key_of(kSelf)));
  RC_ASSERT(!core.nodes().contains(kSelf));
  std::set<transport::PublicKey> seen;
  for (const auto* view : {&core.active_view(), &core.passive_view()}) {
    for (const auto& t : *view) {
      RC_ASSERT(seen.insert(t.key).second);  // neither twice in a view nor in both
      RC_ASSERT(!t.addrs.empty());
    }
  }
}

TEST(GossipShuffle, IsDueEveryFewRoundsWithARandomActivePeer) {
  GossipCore core = make_core();
  Rng rng(1);
  EXPECT_FALSE(core.shuffle_target(rng).has_value());  // no round yet, no peer
  core.on_message(key_of(10), message_from(10, kNow, {}), kNow);
  ASSERT_EQ(core.active_view().size(), 1u);
  int shuffles = 0;
  for (uint32_t round = 1; round <= 3 * kGossipShuffleEveryRounds; ++round) {
    core.round(kNow, rng);
    if (auto t = core.shuffle_target(rng)) {
      ++shuffles;
      EXPECT_EQ(t->key, key_of(10));
      EXPECT_EQ(round % kGossipShuffleEveryRounds, 0u);
    }
  }
  EXPECT_EQ(shuffles, 3);
}

TEST(GossipShuffle, SendsASampleOfTheViewsAndTheAnswerRefreshesThePassiveViewEvictingWhatWasSent) {
  GossipCore core = make_core();
  Rng rng(7);
  // Active: 10..13 (they spoke to us); passive full: 20..51 (passed on by 10).
  for (NodeId id = 10; id < 14; ++id) core.on_message(key_of(id), message_from(id, kNow, {}), kNow);
  std::vector<NodeId> passive_ids;
  for (NodeId id = 20; id < 20 + kGossipPassiveViewSize; ++id) passive_ids.push_back(id);
  for (size_t i = 0; i < passive_ids.size(); i += kMaxGossipForwarded) {
    std::vector<NodeId> batch(passive_ids.begin() + static_cast<std::ptrdiff_t>(i),
                              passive_ids.begin() + static_cast<std::ptrdiff_t>(std::min(i + kMaxGossipForwarded, passive_ids.size())));
    core.on_message(key_of(10), message_from(10, kNow + 1 + i, batch), kNow);
  }
  ASSERT_EQ(core.active_view().size(), kGossipActiveViewSize);
  ASSERT_EQ(core.passive_view().size(), kGossipPassiveViewSize);

  // The shuffle to 11 carries a sample of the views, not 11 itself, within the limits.
  const std::string shuffle = core.make_shuffle(kNow + 100, key_of(11), rng);
  ASSERT_LE(shuffle.size(), kMaxGossipMessageBytes);
  auto decoded = decode_gossip_message(shuffle);
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(decoded->is_shuffle);
  EXPECT_TRUE(decoded->wants_reply);
  EXPECT_EQ(decoded->forwarded.size(), kGossipShuffleSampleSize);
  std::set<NodeId> sent;
  for (const auto& f : decoded->forwarded) {
    auto a = open_announcement(f);
    ASSERT_TRUE(a);
    EXPECT_NE(a->node_id, 11u);
    sent.insert(a->node_id);
  }
  EXPECT_EQ(sent.size(), kGossipShuffleSampleSize);
  EXPECT_EQ(core.stats().shuffles_sent, 1u);

  // 11 answers with 5 nodes this node never heard of: they enter the passive view, which
  // stays full, and what leaves it is what the shuffle sent away.
  const std::vector<NodeId> answer{100, 101, 102, 103, 104};
  auto r = core.on_message(key_of(11), message_from(11, kNow + 200, answer), kNow + 200);
  EXPECT_EQ(r.verdict, GossipVerdict::kAccepted);
  EXPECT_EQ(core.passive_view().size(), kGossipPassiveViewSize);
  for (NodeId id : answer) EXPECT_TRUE(contains(core.passive_view(), key_of(id))) << id;
  size_t sent_passive_left = 0;
  size_t sent_passive_before = 0;
  for (NodeId id : sent) {
    if (id >= 20) ++sent_passive_before;
    if (id >= 20 && !contains(core.passive_view(), key_of(id))) ++sent_passive_left;
  }
  EXPECT_EQ(sent_passive_left, std::min(answer.size(), sent_passive_before));
  // Nodes the shuffle did not send stay.
  for (NodeId id : passive_ids) {
    if (!sent.contains(id)) {
      EXPECT_TRUE(contains(core.passive_view(), key_of(id))) << id;
    }
  }
}

TEST(GossipShuffle, AShuffleIsAnsweredWithASampleOfThePassiveView) {
  GossipCore core = make_core();
  Rng rng(3);
  core.on_message(key_of(10), message_from(10, kNow, {}), kNow);
  core.on_message(key_of(10), message_from(10, kNow + 1, {30, 31, 32, 33, 34, 35, 36, 37, 38, 39}), kNow);
  auto r = core.on_message(key_of(12), message_from(12, kNow + 2, {40}, true), kNow);
  EXPECT_EQ(r.verdict, GossipVerdict::kAccepted);
  EXPECT_TRUE(r.is_shuffle);
  EXPECT_TRUE(r.should_reply);
  auto reply = decode_gossip_message(core.make_shuffle_reply(kNow + 3, key_of(12), rng));
  ASSERT_TRUE(reply);
  EXPECT_FALSE(reply->is_shuffle);
  EXPECT_EQ(reply->forwarded.size(), kGossipShuffleSampleSize);
  for (const auto& f : reply->forwarded) {
    auto a = open_announcement(f);
    ASSERT_TRUE(a);
    EXPECT_TRUE(contains(core.passive_view(), a->public_key)) << a->node_id;
    EXPECT_NE(a->node_id, 12u);
  }
  EXPECT_EQ(core.stats().shuffles_answered, 1u);
}

RC_GTEST_PROP(GossipViewProperty, ViewsStayBoundedSelfFreeAndDisjointUnderAnyOperations, ()) {
  GossipCore core = make_core();
  Rng rng(*rc::gen::arbitrary<uint64_t>());
  uint64_t now = kNow;
  const NodeId max_id = 300;
  auto gen_id = rc::gen::inRange<NodeId>(1, max_id + 1);  // includes kSelf: our own passed back
  const size_t steps = *rc::gen::inRange<size_t>(1, 40);
  for (size_t step = 0; step < steps; ++step) {
    now += *rc::gen::inRange<uint64_t>(0, 20'000);
    switch (*rc::gen::inRange(0, 7)) {
      case 0:
      case 1: {  // a message (perhaps a shuffle) from a node, passing others on
        const NodeId from = *gen_id;
        if (from == kSelf) break;
        const auto forwarded = *rc::gen::container<std::vector<NodeId>>(*rc::gen::inRange<size_t>(0, 13), gen_id);
        core.on_message(key_of(from), message_from(from, now, forwarded, *rc::gen::arbitrary<bool>()), now);
        break;
      }
      case 2: {  // a shuffle this node starts, and the answer
        core.round(now, rng);
        auto target = core.shuffle_target(rng);
        const NodeId to = *gen_id;
        if (to == kSelf) break;
        const std::string m = core.make_shuffle(now, target ? target->key : key_of(to), rng);
        RC_ASSERT(m.size() <= kMaxGossipMessageBytes);
        const auto answer = *rc::gen::container<std::vector<NodeId>>(*rc::gen::inRange<size_t>(0, 13), gen_id);
        core.on_message(key_of(to), message_from(to, now + 1, answer), now + 1);
        break;
      }
      case 3: {  // answering a shuffle
        const NodeId to = *gen_id;
        RC_ASSERT(core.make_shuffle_reply(now, key_of(to), rng).size() <= kMaxGossipMessageBytes);
        break;
      }
      case 4:
        if (!core.active_view().empty()) {
          core.on_send_failed(core.active_view()[rng.uniform(core.active_view().size())].key);
        }
        break;
      case 5: {
        const NodeId id = *gen_id;
        core.add_candidate(GossipTarget{key_of(id), {{"10.1.0.1", static_cast<uint16_t>(id)}}});
        break;
      }
      default:
        core.round(now, rng);
        break;
    }
    check_bounds(core);
    RC_ASSERT(core.make_message(now, key_of(1), false, rng).size() <= kMaxGossipMessageBytes);
  }
}

RC_GTEST_PROP(GossipViewProperty, AShuffleAnswerCannotGrowStatePastTheBounds, ()) {
  GossipCore core = make_core();
  Rng rng(*rc::gen::arbitrary<uint64_t>());
  // Full views and a full table first.
  NodeId next = 10;
  for (; next < 10 + kGossipActiveViewSize; ++next) core.on_message(key_of(next), message_from(next, kNow, {}), kNow);
  while (core.passive_view().size() < kGossipPassiveViewSize) {
    std::vector<NodeId> batch;
    for (size_t i = 0; i < kMaxGossipForwarded; ++i) batch.push_back(next++);
    core.on_message(key_of(10), message_from(10, kNow + next, batch), kNow + next);
  }
  const size_t answers = *rc::gen::inRange<size_t>(1, 8);
  for (size_t i = 0; i < answers; ++i) {
    const uint64_t now = kNow + 10'000 + i * 1000;
    const NodeId peer = core.active_view().empty() ? 10 : 10 + rng.uniform(kGossipActiveViewSize);
    core.make_shuffle(now, key_of(peer), rng);
    // The largest answer a peer can send: as many new nodes as fit one message.
    std::vector<NodeId> fresh;
    for (size_t j = 0; j < kMaxGossipForwarded; ++j) fresh.push_back(next++);
    core.on_message(key_of(peer), message_from(peer, now, fresh), now);
    check_bounds(core);
  }
}

}  // namespace
}  // namespace aspen::cluster
