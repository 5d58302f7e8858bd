#include "node/peer_registry.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::node {

std::string node_record_key(NodeId id) {
  // Zero-padded so that a scan lists records in id order.
  return fmt::format("{}{:020}", kNodeRecordPrefix, id);
}

std::string encode_node_record(NodeId id, const transport::PublicKey& key,
                               const std::vector<transport::SocketAddr>& addrs) {
  ASPEN_ASSERT(id != kNoNode);
  clusterpb::NodeRecord r;
  r.set_node_id(id);
  r.set_public_key(key.bytes().data(), key.bytes().size());
  for (const auto& a : addrs) r.add_addrs(a.to_string());
  return r.SerializeAsString();
}

namespace {

std::optional<PeerInfo> decode_record(const std::string& bytes) {
  clusterpb::NodeRecord r;
  if (!r.ParseFromString(bytes) || r.node_id() == kNoNode || r.public_key().size() != transport::kPublicKeySizeBytes ||
      static_cast<size_t>(r.addrs_size()) > limits::kMaxNodeAddresses) {
    return std::nullopt;
  }
  std::array<uint8_t, transport::kPublicKeySizeBytes> raw{};
  std::copy(r.public_key().begin(), r.public_key().end(), raw.begin());
  PeerInfo p;
  p.id = r.node_id();
  p.key = transport::PublicKey(raw);
  for (const auto& a : r.addrs()) {
    auto sa = transport::SocketAddr::parse(a);
    if (!sa) return std::nullopt;
    p.addrs.push_back(*sa);
  }
  return p;
}

}  // namespace

void PeerRegistry::set_records(const std::vector<kvpb::KeyValue>& kvs) {
  records_.clear();
  for (const auto& kv : kvs) {
    auto p = decode_record(kv.value());
    if (!p) {
      ++malformed_records_;
      continue;
    }
    greeted_.erase(p->id);
    records_[p->id] = std::move(*p);
  }
}

void PeerRegistry::add_manual(const PeerInfo& peer) { manual_[peer.id] = peer; }

std::optional<transport::PublicKey> PeerRegistry::learn_from_hello(NodeId id, const transport::PublicKey& key,
                                                                   std::vector<transport::SocketAddr> addrs) {
  if (auto rec = records_.find(id); rec != records_.end()) {
    // A wildcard bind (0.0.0.0, ::) says nothing about where to dial.
    std::erase_if(addrs, [](const transport::SocketAddr& a) { return a.ip == "0.0.0.0" || a.ip == "::"; });
    if (rec->second.key == key && !addrs.empty()) announced_[id] = std::move(addrs);
    return std::nullopt;
  }
  greeted_[id] = PeerInfo{id, key, std::move(addrs)};
  if (auto m = manual_.find(id); m != manual_.end() && m->second.key != key) return m->second.key;
  return std::nullopt;
}

std::optional<PeerInfo> PeerRegistry::outdated_record() const {
  for (const auto& [id, addrs] : announced_) {
    auto rec = records_.find(id);
    if (rec != records_.end() && members_.contains(id) && rec->second.addrs != addrs) {
      return PeerInfo{id, rec->second.key, addrs};
    }
  }
  return std::nullopt;
}

void PeerRegistry::set_membership(const raftpb::ConfState& cs) {
  members_.clear();
  for (auto id : cs.voters()) members_.insert(id);
  for (auto id : cs.learners()) members_.insert(id);
  for (auto id : cs.voters_outgoing()) members_.insert(id);
  for (auto id : cs.learners_next()) members_.insert(id);
}

std::optional<PeerInfo> PeerRegistry::lookup(NodeId id) const {
  // A manual entry (--peers, a ticket) that names another key than the one the peer proved
  // in its greeting is stale, typically a ticket of an earlier cluster at the same
  // addresses: dialling it could only fail the TLS key check, and a node being added could
  // then never answer the leader. The replicated record, once applied, wins over both.
  if (!records_.contains(id)) {
    auto g = greeted_.find(id);
    auto m = manual_.find(id);
    if (g != greeted_.end() && m != manual_.end() && g->second.key != m->second.key) return g->second;
  }
  for (const auto* m : {&records_, &manual_, &greeted_}) {
    auto it = m->find(id);
    if (it == m->end()) continue;
    PeerInfo p = it->second;
    if (auto a = announced_.find(id); m == &records_ && a != announced_.end()) {
      // Where the member says it is now comes first; the record's addresses stay as
      // fallbacks until the record is rewritten.
      std::vector<transport::SocketAddr> addrs = a->second;
      for (const auto& r : p.addrs) {
        if (std::find(addrs.begin(), addrs.end(), r) == addrs.end()) addrs.push_back(r);
      }
      p.addrs = std::move(addrs);
    }
    return p;
  }
  // Only where discovery says a node is: dialling it proves nothing and trusts nothing (the
  // handshake checks the key).
  if (auto d = find_discovered(id)) return d->peer;
  return std::nullopt;
}

std::optional<NodeId> PeerRegistry::node_id_of(const transport::PublicKey& key) const {
  for (const auto* m : {&records_, &manual_, &greeted_}) {
    for (const auto& [id, p] : *m) {
      if (p.key == key) return id;
    }
  }
  return std::nullopt;
}

bool PeerRegistry::is_trusted(const transport::PublicKey& key, NodeId claimed_id) const {
  auto matches = [&](const PeerInfo& p) { return p.key == key && (claimed_id == kNoNode || p.id == claimed_id); };
  // Without a membership of its own this node is waiting to be added: the cookie is the gate.
  if (members_.empty()) return true;
  // A peer named at start-up (--peers, a ticket) is trusted while it is a member: once
  // removed, it is a stranger like any other.
  for (const auto& [id, p] : manual_) {
    if (members_.contains(id) && matches(p)) return true;
  }
  for (const auto& [id, p] : records_) {
    if (members_.contains(id) && matches(p)) return true;
  }
  // A member whose record this node has not applied yet, known from its greeting.
  for (const auto& [id, p] : greeted_) {
    if (members_.contains(id) && matches(p)) return true;
  }
  return false;
}

std::optional<transport::PublicKey> PeerRegistry::known_key(NodeId id) const {
  for (const auto* m : {&records_, &manual_, &greeted_}) {
    if (auto it = m->find(id); it != m->end()) return it->second.key;
  }
  return std::nullopt;
}

bool PeerRegistry::learn_from_discovery(const PeerInfo& peer, std::string_view source, uint64_t now_ms,
                                        uint64_t announced_ms, std::string via) {
  ASPEN_ASSERT(peer.id != kNoNode);
  ASPEN_ASSERT(!source.empty());
  if (auto key = known_key(peer.id); key && *key != peer.key) return false;
  // A member's record is not rewritten from discovery: where a member is comes from its
  // greeting (which it sends only with the cookie); discovery only fills in nodes without one.
  // Two discovery sources that disagree on the key: the one heard first stays until it
  // expires, so neither can take over a node another vouched for.
  for (auto it = discovered_.lower_bound(DiscoveryKey{peer.id, std::string()});
       it != discovered_.end() && it->first.first == peer.id; ++it) {
    if (it->first.second != source && it->second.peer.key != peer.key) return false;
  }
  const DiscoveryKey key{peer.id, std::string(source)};
  auto it = discovered_.find(key);
  if (it == discovered_.end()) {
    size_t of_source = 0;
    auto oldest = discovered_.end();
    for (auto d = discovered_.begin(); d != discovered_.end(); ++d) {
      if (d->first.second != source) continue;
      ++of_source;
      if (oldest == discovered_.end() || d->second.last_seen_ms < oldest->second.last_seen_ms) oldest = d;
    }
    if (of_source >= kMaxDiscoveredPeers) discovered_.erase(oldest);
    it = discovered_.emplace(key, DiscoveredPeer{peer, std::string(source), now_ms, now_ms, announced_ms, {}}).first;
  }
  DiscoveredPeer& d = it->second;
  if (d.peer.key != peer.key) d.first_seen_ms = now_ms;  // the source names a new key: a new node to us
  d.peer = peer;
  d.last_seen_ms = now_ms;
  d.announced_ms = std::max(d.announced_ms, announced_ms);
  d.via = std::move(via);
  return true;
}

void PeerRegistry::expire_discovered(uint64_t cutoff_ms, std::string_view source) {
  std::erase_if(discovered_, [&](const auto& entry) {
    return (source.empty() || entry.first.second == source) && entry.second.last_seen_ms < cutoff_ms;
  });
}

bool PeerRegistry::forget_discovered(NodeId id, const transport::PublicKey& key, std::string_view source) {
  auto it = discovered_.find(DiscoveryKey{id, std::string(source)});
  if (it == discovered_.end() || it->second.peer.key != key) return false;
  discovered_.erase(it);
  return true;
}

std::optional<DiscoveredPeer> PeerRegistry::find_discovered(NodeId id) const {
  std::optional<DiscoveredPeer> best;
  for (auto it = discovered_.lower_bound(DiscoveryKey{id, std::string()}); it != discovered_.end() && it->first.first == id;
       ++it) {
    if (!best || it->second.last_seen_ms > best->last_seen_ms) best = it->second;
  }
  if (!best) return std::nullopt;
  for (auto it = discovered_.lower_bound(DiscoveryKey{id, std::string()}); it != discovered_.end() && it->first.first == id;
       ++it) {
    for (const auto& a : it->second.peer.addrs) {
      auto& addrs = best->peer.addrs;
      if (addrs.size() >= limits::kMaxNodeAddresses) break;
      if (std::find(addrs.begin(), addrs.end(), a) == addrs.end()) addrs.push_back(a);
    }
  }
  return best;
}

std::vector<std::pair<std::string, PeerInfo>> PeerRegistry::static_sources() const {
  std::vector<std::pair<std::string, PeerInfo>> out;
  for (const auto& [id, p] : records_) out.emplace_back("record", p);
  for (const auto& [id, p] : manual_) out.emplace_back("config", p);
  for (const auto& [id, p] : greeted_) out.emplace_back("greeting", p);
  return out;
}

std::vector<PeerInfo> PeerRegistry::reachable_members() const {
  std::vector<PeerInfo> out;
  for (NodeId id : members_) {
    if (auto p = lookup(id); p && !p->addrs.empty()) out.push_back(std::move(*p));
  }
  return out;
}

}  // namespace aspen::node
