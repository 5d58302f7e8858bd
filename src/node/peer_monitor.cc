#include "node/peer_monitor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace aspen::node {

const char* reachability_name(Reachability r) {
  switch (r) {
    case Reachability::kUnknown: return "unknown";
    case Reachability::kReachable: return "reachable";
    case Reachability::kSuspect: return "suspect";
    case Reachability::kUnreachable: return "unreachable";
  }
  return "unknown";
}

Reachability classify_reachability(const ReachabilityInput& in) {
  if (!in.expects_messages) return Reachability::kUnknown;
  if (in.last_unreachable_ms && (!in.last_heard_ms || *in.last_unreachable_ms >= *in.last_heard_ms) &&
      *in.last_unreachable_ms >= in.expected_since_ms) {
    return Reachability::kUnreachable;
  }
  const uint64_t since = std::max(in.last_heard_ms.value_or(0), in.expected_since_ms);
  const uint64_t silent_ms = in.now_ms > since ? in.now_ms - since : 0;
  if (silent_ms <= uint64_t{2} * in.heartbeat_ms) return Reachability::kReachable;
  if (silent_ms <= in.election_timeout_ms) return Reachability::kSuspect;
  return Reachability::kUnreachable;
}

namespace {

// "700.0 ms behind" / "300.0 ms ahead of".
std::string offset_words(int64_t offset_us, std::string_view whose) {
  const double ms = static_cast<double>(offset_us < 0 ? -offset_us : offset_us) / 1000.0;
  return fmt::format("{:.1f} ms {} {}", ms, offset_us < 0 ? "behind" : "ahead of", whose);
}

uint64_t magnitude(int64_t v) { return v < 0 ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v); }

}  // namespace

std::string describe(const ClockNotice& n, NodeId self, uint32_t warn_ms) {
  const std::string rtt = n.rtt_us > 0 ? fmt::format(", measured over a {:.1f} ms round trip", n.rtt_us / 1000.0) : "";
  if (n.kind == ClockNotice::Kind::kBackWithin) {
    return n.is_own_offset
               ? fmt::format("node {}: this node's clock is back within {} ms of the leader's (node {}): {}", self,
                             warn_ms, n.peer, offset_words(n.offset_us, "the leader's"))
               : fmt::format("node {}: node {}'s clock is back within {} ms of this node's: {}{}", self, n.peer,
                             warn_ms, offset_words(n.offset_us, "this node's"), rtt);
  }
  const std::string what =
      n.is_own_offset
          ? fmt::format("node {}: this node's clock is {} (node {}), as the leader measured it", self,
                        offset_words(n.offset_us, "the leader's"), n.peer)
          : fmt::format("node {}: node {}'s clock is {}{}", self, n.peer, offset_words(n.offset_us, "this node's"), rtt);
  return fmt::format("{}; past the warning threshold of {} ms (--clock-offset-warn-ms). Replicas still agree (the "
                     "leader's clock alone stamps writes and expires leases), but lease and TTL times shift by the "
                     "offset when leadership moves, and log times across nodes disagree: check time synchronisation "
                     "(chrony, ntpd) on both nodes (docs/operations.md, \"Clocks\")",
                     what, warn_ms);
}

PeerMonitor::Peer* PeerMonitor::peer(NodeId id) {
  auto it = peers_.find(id);
  if (it != peers_.end()) return &it->second;
  if (id == kNoNode || peers_.size() >= kMaxMonitoredPeers) return nullptr;
  return &peers_[id];
}

void PeerMonitor::stamp(pb::Message& m, int64_t wall_us, uint64_t now_ms) {
  if (m.type() == pb::MSG_HEARTBEAT) {
    m.set_clock_sent_us(wall_us);
    auto it = peers_.find(m.to());
    if (it == peers_.end()) return;
    if (auto best = it->second.filter.best(now_ms)) {
      m.set_has_clock_offset(true);
      m.set_clock_offset_us(best->offset_us);
    }
  } else if (m.type() == pb::MSG_HEARTBEAT_RESP) {
    auto it = peers_.find(m.to());
    if (it == peers_.end() || !it->second.pending_echo) return;
    m.set_clock_echo_us(it->second.pending_echo->first);
    m.set_clock_received_us(it->second.pending_echo->second);
    m.set_clock_sent_us(wall_us);
    it->second.pending_echo.reset();  // one answer per heartbeat: a later one gets no stale echo
  }
}

std::optional<ClockNotice> PeerMonitor::check_threshold(Peer& p, ClockNotice candidate, uint64_t now_ms) {
  if (warn_ms_ == 0) return std::nullopt;
  const bool is_past = magnitude(candidate.offset_us) > uint64_t{warn_ms_} * 1000;
  if (is_past == p.is_past_threshold && !is_past) return std::nullopt;
  // Past the threshold: a reminder each interval. Back within: said once, when allowed.
  if (p.last_notice_ms && now_ms >= *p.last_notice_ms && now_ms - *p.last_notice_ms < kClockNoticeIntervalMs) {
    return std::nullopt;
  }
  p.last_notice_ms = now_ms;
  p.is_past_threshold = is_past;
  candidate.kind = is_past ? ClockNotice::Kind::kPastThreshold : ClockNotice::Kind::kBackWithin;
  if (is_past) ++warnings_;
  return candidate;
}

std::optional<ClockNotice> PeerMonitor::on_received(const pb::Message& m, int64_t wall_us, uint64_t now_ms) {
  Peer* p = peer(m.from());
  if (p == nullptr) return std::nullopt;
  p->last_heard_ms = now_ms;
  if (m.type() == pb::MSG_HEARTBEAT) {
    if (m.clock_sent_us() != 0) p->pending_echo = std::pair{m.clock_sent_us(), wall_us};
    // The leader's word on our offset; a value no clock could produce is ignored.
    if (m.has_clock_offset() && magnitude(m.clock_offset_us()) < static_cast<uint64_t>(kMaxClockTimestampUs)) {
      told_ = Told{m.from(), m.clock_offset_us(), now_ms};
      return check_threshold(*p, ClockNotice{{}, m.from(), true, m.clock_offset_us(), 0}, now_ms);
    }
    return std::nullopt;
  }
  if (m.type() != pb::MSG_HEARTBEAT_RESP || m.clock_echo_us() == 0) return std::nullopt;
  auto sample = estimate_clock_offset({m.clock_echo_us(), m.clock_received_us(), m.clock_sent_us(), wall_us});
  if (!sample) return std::nullopt;
  p->filter.add(*sample, now_ms);
  const auto best = p->filter.best(now_ms);
  if (!best) return std::nullopt;
  return check_threshold(*p, ClockNotice{{}, m.from(), false, best->offset_us, best->rtt_us}, now_ms);
}

void PeerMonitor::on_unreachable(NodeId id, uint64_t now_ms) {
  if (Peer* p = peer(id)) p->last_unreachable_ms = now_ms;
}

void PeerMonitor::on_leader(NodeId leader, bool is_self, uint64_t now_ms) {
  if (leader == leader_ && is_self == is_leader_) return;
  leader_ = leader;
  is_leader_ = is_self;
  leader_since_ms_ = now_ms;
}

PeerMonitor::PeerView PeerMonitor::peer_view(NodeId id, uint64_t now_ms, uint32_t heartbeat_ms,
                                             uint32_t election_timeout_ms) const {
  PeerView v;
  auto it = peers_.find(id);
  const Peer* p = it == peers_.end() ? nullptr : &it->second;
  ReachabilityInput in;
  in.expects_messages = leader_ != kNoNode && (is_leader_ || id == leader_);
  in.expected_since_ms = leader_since_ms_;
  in.now_ms = now_ms;
  in.heartbeat_ms = heartbeat_ms;
  in.election_timeout_ms = election_timeout_ms;
  if (p != nullptr) {
    in.last_heard_ms = p->last_heard_ms;
    in.last_unreachable_ms = p->last_unreachable_ms;
    if (p->last_heard_ms) v.last_heard_ago_ms = now_ms > *p->last_heard_ms ? now_ms - *p->last_heard_ms : 0;
  }
  v.reachability = classify_reachability(in);
  if (is_leader_) {
    if (p != nullptr) v.clock = p->filter.best(now_ms);
  } else if (id == leader_) {
    // The leader's clock minus ours is the opposite of what it told us.
    if (auto own = own_offset_from_leader(now_ms)) v.clock = ClockSample{-*own, 0};
  }
  return v;
}

std::optional<int64_t> PeerMonitor::own_offset_from_leader(uint64_t now_ms) const {
  if (is_leader_) return 0;
  if (!told_ || told_->leader != leader_) return std::nullopt;
  if (now_ms > told_->at_ms && now_ms - told_->at_ms > kToldOffsetMaxAgeMs) return std::nullopt;
  return told_->offset_us;
}

std::vector<NodeId> monitored_peers(const pb::ConfState& cs, NodeId self) {
  std::vector<NodeId> ids(cs.voters().begin(), cs.voters().end());
  ids.insert(ids.end(), cs.learners().begin(), cs.learners().end());
  ids.insert(ids.end(), cs.voters_outgoing().begin(), cs.voters_outgoing().end());
  std::erase(ids, self);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::string PeerMonitor::prometheus_samples(NodeId self, const std::vector<NodeId>& peers, uint64_t now_ms,
                                            uint32_t heartbeat_ms, uint32_t election_timeout_ms) const {
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP aspen_{} {}\n# TYPE aspen_{} {}\n", name, help, name, type);
  };
  auto seconds = [](int64_t us) { return static_cast<double>(us) / 1e6; };
  std::vector<std::pair<NodeId, PeerView>> views;
  for (NodeId id : peers) views.emplace_back(id, peer_view(id, now_ms, heartbeat_ms, election_timeout_ms));
  family("peer_reachability", "gauge",
         "1 for the state this node sees each peer in (reachable, suspect, unreachable; unknown: a follower hears only "
         "its leader), 0 for the others.");
  for (const auto& [id, v] : views) {
    for (auto r : {Reachability::kReachable, Reachability::kSuspect, Reachability::kUnreachable, Reachability::kUnknown}) {
      out += fmt::format("aspen_peer_reachability{{node_id=\"{}\",peer=\"{}\",state=\"{}\"}} {}\n", self, id,
                         reachability_name(r), v.reachability == r ? 1 : 0);
    }
  }
  family("peer_last_heard_seconds", "gauge", "Seconds since the peer's last Raft message arrived.");
  for (const auto& [id, v] : views) {
    if (!v.last_heard_ago_ms) continue;
    out += fmt::format("aspen_peer_last_heard_seconds{{node_id=\"{}\",peer=\"{}\"}} {}\n", self, id,
                       static_cast<double>(*v.last_heard_ago_ms) / 1e3);
  }
  family("clock_offset_seconds", "gauge",
         "The peer's wall clock minus this node's, measured from heartbeat round trips (the leader measures every "
         "member; a follower knows the leader's).");
  for (const auto& [id, v] : views) {
    if (!v.clock) continue;
    out += fmt::format("aspen_clock_offset_seconds{{node_id=\"{}\",peer=\"{}\"}} {}\n", self, id,
                       seconds(v.clock->offset_us));
  }
  family("clock_rtt_seconds", "gauge",
         "Round trip of the heartbeat exchange behind aspen_clock_offset_seconds; the offset is within half of it.");
  for (const auto& [id, v] : views) {
    if (!v.clock || v.clock->rtt_us == 0) continue;
    out += fmt::format("aspen_clock_rtt_seconds{{node_id=\"{}\",peer=\"{}\"}} {}\n", self, id,
                       seconds(v.clock->rtt_us));
  }
  family("clock_offset_from_leader_seconds", "gauge",
         "This node's wall clock minus the leader's, as the leader measured it (0 on the leader).");
  if (auto own = own_offset_from_leader(now_ms)) {
    out += fmt::format("aspen_clock_offset_from_leader_seconds{{node_id=\"{}\"}} {}\n", self, seconds(*own));
  }
  family("clock_offset_warnings_total", "counter",
         "Warnings logged for a clock offset past --clock-offset-warn-ms (at most one a minute per peer).");
  out += fmt::format("aspen_clock_offset_warnings_total{{node_id=\"{}\"}} {}\n", self, warnings_);
  return out;
}

}  // namespace aspen::node
