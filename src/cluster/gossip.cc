#include "cluster/gossip.h"

#include <algorithm>

#include "core/assert.h"

namespace aspen::cluster {

std::string_view gossip_verdict_name(GossipVerdict verdict) {
  switch (verdict) {
    case GossipVerdict::kAccepted: return "accepted";
    case GossipVerdict::kOversized: return "oversized";
    case GossipVerdict::kMalformed: return "malformed";
    case GossipVerdict::kRateLimited: return "rate_limited";
    case GossipVerdict::kBadSignature: return "bad_signature";
    case GossipVerdict::kWrongTopic: return "wrong_topic";
    case GossipVerdict::kSenderMismatch: return "sender_mismatch";
    case GossipVerdict::kWrongKey: return "wrong_key";
    case GossipVerdict::kReplayed: return "replayed";
    case GossipVerdict::kStale: return "stale";
    case GossipVerdict::kDuplicate: return "duplicate";
    case GossipVerdict::kFollower: return "follower";
  }
  return "unknown";
}

GossipCore::GossipCore(GossipCoreConfig config, transport::NodeIdentity identity, KnownKey known_key)
    : config_(config), identity_(std::move(identity)), known_key_(std::move(known_key)) {
  ASPEN_ASSERT(config_.node_id != kNoNode);
  ASPEN_ASSERT(config_.peer_messages_per_min > 0);
  ASPEN_ASSERT(known_key_ != nullptr);
}

void GossipCore::set_self_addrs(std::vector<transport::SocketAddr> addrs) {
  if (addrs.size() > kMaxGossipAddrs) addrs.resize(kMaxGossipAddrs);
  self_addrs_ = std::move(addrs);
}

bool GossipCore::take_rate(const transport::PublicKey& from, uint64_t now_ms) {
  auto it = rates_.find(from);
  if (it == rates_.end()) {
    if (rates_.size() >= kMaxGossipRatePeers) {
      // Forget the stalest window: a sender not heard of for a while starts afresh.
      auto oldest = std::min_element(rates_.begin(), rates_.end(),
                                     [](const auto& a, const auto& b) { return a.second.start_ms < b.second.start_ms; });
      rates_.erase(oldest);
    }
    it = rates_.emplace(from, RateWindow{now_ms, 0}).first;
  }
  RateWindow& w = it->second;
  // A fixed window per sender: a clock that went backwards starts a new one too.
  if (now_ms >= w.start_ms + kGossipRateWindowMs || now_ms < w.start_ms) w = RateWindow{now_ms, 0};
  if (w.count >= config_.peer_messages_per_min) return false;
  ++w.count;
  return true;
}

GossipReceived GossipCore::on_message(const transport::PublicKey& from, std::string_view bytes, uint64_t now_ms) {
  GossipReceived out;
  ++stats_.messages_in;
  stats_.bytes_in += bytes.size();
  // The rate is taken before anything is parsed or verified: a flood costs a lookup each.
  if (!take_rate(from, now_ms)) {
    out.verdict = GossipVerdict::kRateLimited;
    count(out.verdict);
    return out;
  }
  auto message = decode_gossip_message(bytes);
  if (!message) {
    out.verdict = message.error().code() == ErrorCode::kMessageTooLarge ? GossipVerdict::kOversized
                                                                        : GossipVerdict::kMalformed;
    count(out.verdict);
    return out;
  }
  if (message->follow_topic) {
    const bool is_ours = config_.follow_topic && *message->follow_topic == *config_.follow_topic;
    out.verdict = is_ours ? GossipVerdict::kFollower : GossipVerdict::kWrongTopic;
    out.should_reply = is_ours;
    count(out.verdict);
    return out;
  }
  out.verdict = take(message->sender, from, true, now_ms, out.learned);
  count(out.verdict);
  if (out.verdict != GossipVerdict::kAccepted) return out;
  for (const auto& f : message->forwarded) count(take(f, from, false, now_ms, out.learned));
  out.should_reply = message->wants_reply || message->is_shuffle;
  out.is_shuffle = message->is_shuffle;
  return out;
}

GossipVerdict GossipCore::take(const SignedAnnouncement& s, const transport::PublicKey& from, bool is_sender,
                               uint64_t now_ms, std::vector<GossipNode>& learned) {
  auto opened = open_announcement(s);
  if (!opened) {
    return opened.error().code() == ErrorCode::kUnauthorized ? GossipVerdict::kBadSignature : GossipVerdict::kMalformed;
  }
  const Announcement& a = *opened;
  if (a.topic != config_.topic) return GossipVerdict::kWrongTopic;
  if (is_sender && a.public_key != from) return GossipVerdict::kSenderMismatch;
  if (a.node_id == config_.node_id) {
    // Our own announcement passed back to us is normal; our id under another key is not.
    return a.public_key == identity_.public_key() ? GossipVerdict::kDuplicate : GossipVerdict::kWrongKey;
  }
  if (a.public_key == identity_.public_key()) return GossipVerdict::kWrongKey;  // our key under another id
  if (auto known = known_key_(a.node_id); known && *known != a.public_key) return GossipVerdict::kWrongKey;
  auto it = nodes_.find(a.node_id);
  if (it != nodes_.end() && it->second.key != a.public_key) return GossipVerdict::kWrongKey;
  if (a.timestamp_ms + kMaxGossipAnnouncementAgeMs < now_ms || a.timestamp_ms > now_ms + kMaxGossipFutureSkewMs) {
    return GossipVerdict::kStale;
  }
  if (it != nodes_.end()) {
    // A node signs its own announcements with strictly increasing timestamps, so one it
    // sends again is a replay; passed-on copies of older ones are only late.
    if (is_sender && a.timestamp_ms <= it->second.direct_ms) return GossipVerdict::kReplayed;
    if (a.timestamp_ms <= it->second.announced_ms) {
      if (!is_sender) return GossipVerdict::kDuplicate;
      // Sent by the node itself but already known through a faster path: still news of it.
      it->second.direct_ms = a.timestamp_ms;
      it->second.last_seen_ms = now_ms;
      learned.push_back(it->second);
      upsert_view(GossipTarget{a.public_key, a.addrs}, true);
      return GossipVerdict::kAccepted;
    }
  }
  GossipNode node;
  node.node_id = a.node_id;
  node.key = a.public_key;
  node.addrs = a.addrs;
  node.announced_ms = a.timestamp_ms;
  node.direct_ms = is_sender ? a.timestamp_ms : (it != nodes_.end() ? it->second.direct_ms : 0);
  node.first_seen_ms = it != nodes_.end() ? it->second.first_seen_ms : now_ms;
  node.last_seen_ms = now_ms;
  if (!is_sender) node.via = from;
  node.latest = s;
  learned.push_back(node);
  remember(std::move(node));
  // The sender chose to talk to us: a neighbour in both directions, as HyParView's join.
  upsert_view(GossipTarget{a.public_key, a.addrs}, is_sender);
  return GossipVerdict::kAccepted;
}

void GossipCore::remember(GossipNode node) {
  if (!nodes_.contains(node.node_id) && nodes_.size() >= kMaxGossipNodes) {
    auto oldest = std::min_element(nodes_.begin(), nodes_.end(), [](const auto& a, const auto& b) {
      return a.second.last_seen_ms < b.second.last_seen_ms;
    });
    drop_from_views(oldest->second.key);
    nodes_.erase(oldest);
  }
  const NodeId id = node.node_id;
  nodes_.insert_or_assign(id, std::move(node));
  ASPEN_ASSERT(nodes_.size() <= kMaxGossipNodes);
}

void GossipCore::upsert_view(const GossipTarget& peer, bool prefer_active) {
  if (peer.key == identity_.public_key() || peer.addrs.empty()) return;
  auto same = [&](const GossipTarget& t) { return t.key == peer.key; };
  if (auto it = std::find_if(active_.begin(), active_.end(), same); it != active_.end()) {
    it->addrs = peer.addrs;
    return;
  }
  auto in_passive = std::find_if(passive_.begin(), passive_.end(), same);
  if (prefer_active && active_.size() < kGossipActiveViewSize) {
    if (in_passive != passive_.end()) passive_.erase(in_passive);
    active_.push_back(peer);
    return;
  }
  if (in_passive != passive_.end()) {
    in_passive->addrs = peer.addrs;
    return;
  }
  if (passive_.size() >= kGossipPassiveViewSize) evict_from_passive();
  passive_.push_back(peer);
  ASPEN_ASSERT(active_.size() <= kGossipActiveViewSize && passive_.size() <= kGossipPassiveViewSize);
}

void GossipCore::evict_from_passive() {
  ASPEN_ASSERT(!passive_.empty());
  // HyParView: room is made first by dropping what the last shuffle sent away (the peer it
  // went to holds it now), then the longest known.
  while (!shuffle_sent_.empty()) {
    const transport::PublicKey key = shuffle_sent_.back();
    shuffle_sent_.pop_back();
    auto it = std::find_if(passive_.begin(), passive_.end(), [&](const GossipTarget& t) { return t.key == key; });
    if (it != passive_.end()) {
      failures_.erase(it->key);
      passive_.erase(it);
      return;
    }
  }
  failures_.erase(passive_.front().key);
  passive_.erase(passive_.begin());
}

void GossipCore::drop_from_views(const transport::PublicKey& key) {
  auto same = [&](const GossipTarget& t) { return t.key == key; };
  std::erase_if(active_, same);
  std::erase_if(passive_, same);
  failures_.erase(key);
}

void GossipCore::add_candidate(const GossipTarget& peer) { upsert_view(peer, false); }

std::vector<GossipTarget> GossipCore::round(uint64_t now_ms, Rng& rng) {
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (it->second.last_seen_ms + kMaxGossipAnnouncementAgeMs < now_ms) {
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  ++rounds_since_shuffle_;
  while (active_.size() < kGossipActiveViewSize && !passive_.empty()) {
    const size_t i = rng.uniform(passive_.size());
    active_.push_back(std::move(passive_[i]));
    passive_.erase(passive_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return active_;
}

void GossipCore::on_send_failed(const transport::PublicKey& peer) {
  ++stats_.send_failures;
  auto same = [&](const GossipTarget& t) { return t.key == peer; };
  auto it = std::find_if(active_.begin(), active_.end(), same);
  if (it == active_.end()) return;
  GossipTarget t = std::move(*it);
  active_.erase(it);
  // HyParView: a failed active peer is replaced from the passive view at the next round;
  // it stays a candidate until it has failed kGossipMaxSendFailures times in a row.
  if (++failures_[peer] >= kGossipMaxSendFailures) {
    failures_.erase(peer);
    return;
  }
  if (passive_.size() >= kGossipPassiveViewSize) evict_from_passive();
  passive_.push_back(std::move(t));
}

void GossipCore::on_send_ok(const transport::PublicKey& peer) { failures_.erase(peer); }

GossipMessage GossipCore::self_message(uint64_t now_ms, bool wants_reply) {
  Announcement self;
  self.topic = config_.topic;
  self.node_id = config_.node_id;
  self.public_key = identity_.public_key();
  self.addrs = self_addrs_;
  last_self_ms_ = std::max(now_ms, last_self_ms_ + 1);
  self.timestamp_ms = last_self_ms_;
  GossipMessage m;
  m.sender = sign_announcement(self, identity_);
  m.wants_reply = wants_reply;
  ASPEN_ASSERT(encoded_size(m) <= kMaxGossipMessageBytes);
  return m;
}

std::vector<transport::PublicKey> GossipCore::add_sample(GossipMessage& m, std::vector<const GossipNode*> pool,
                                                         size_t limit, Rng& rng) {
  ASPEN_ASSERT(limit <= kMaxGossipForwarded);
  for (size_t i = pool.size(); i > 1; --i) std::swap(pool[i - 1], pool[rng.uniform(i)]);
  std::vector<transport::PublicKey> keys;
  for (const GossipNode* n : pool) {
    if (m.forwarded.size() >= limit) break;
    m.forwarded.push_back(n->latest);
    if (encoded_size(m) > kMaxGossipMessageBytes) {
      m.forwarded.pop_back();
      break;
    }
    keys.push_back(n->key);
  }
  return keys;
}

std::vector<const GossipNode*> GossipCore::held_in(const std::vector<const std::vector<GossipTarget>*>& views,
                                                   const transport::PublicKey& except, uint64_t now_ms) const {
  std::vector<const GossipNode*> out;
  for (const auto& [id, n] : nodes_) {
    if (n.key == except || n.announced_ms + kMaxGossipAnnouncementAgeMs < now_ms) continue;
    const bool is_in_views = std::any_of(views.begin(), views.end(), [&](const std::vector<GossipTarget>* v) {
      return std::any_of(v->begin(), v->end(), [&](const GossipTarget& t) { return t.key == n.key; });
    });
    if (is_in_views) out.push_back(&n);
  }
  return out;
}

std::string GossipCore::make_message(uint64_t now_ms, const transport::PublicKey& to, bool wants_reply, Rng& rng) {
  GossipMessage m = self_message(now_ms, wants_reply);
  // Fresh announcements of others, in random order, as many as fit.
  std::vector<const GossipNode*> fresh;
  for (const auto& [id, n] : nodes_) {
    if (n.key != to && n.announced_ms + kMaxGossipAnnouncementAgeMs >= now_ms) fresh.push_back(&n);
  }
  add_sample(m, std::move(fresh), kMaxGossipForwarded, rng);
  return encode_gossip_message(m);
}

std::optional<GossipTarget> GossipCore::shuffle_target(Rng& rng) {
  if (rounds_since_shuffle_ < kGossipShuffleEveryRounds || active_.empty()) return std::nullopt;
  rounds_since_shuffle_ = 0;
  return active_[rng.uniform(active_.size())];
}

std::string GossipCore::make_shuffle(uint64_t now_ms, const transport::PublicKey& to, Rng& rng) {
  GossipMessage m = self_message(now_ms, true);
  m.is_shuffle = true;
  shuffle_sent_ = add_sample(m, held_in({&active_, &passive_}, to, now_ms), kGossipShuffleSampleSize, rng);
  ++stats_.shuffles_sent;
  return encode_gossip_message(m);
}

std::string GossipCore::make_shuffle_reply(uint64_t now_ms, const transport::PublicKey& to, Rng& rng) {
  GossipMessage m = self_message(now_ms, false);
  add_sample(m, held_in({&passive_}, to, now_ms), kGossipShuffleSampleSize, rng);
  ++stats_.shuffles_answered;
  return encode_gossip_message(m);
}

}  // namespace aspen::cluster
