#include "ops/cluster_poll.h"

#include <algorithm>
#include <future>
#include <set>

namespace aspen::ops {

namespace {

using Clock = std::chrono::steady_clock;

struct Answer {
  MemberView member;
  std::optional<client::cpb::GetRaftMetricsResponse> raft;
  std::optional<Exposition> page;
};

Answer ask_member(client::Client& c, uint64_t id, uint32_t timeout_ms) {
  Answer a;
  a.member.node_id = id;
  client::cpb::Request raft_req;
  raft_req.mutable_get_raft_metrics();
  auto raft = c.call(raft_req, client::Target{id}, timeout_ms);
  if (!raft) {
    a.member.error = raft.error().message();
    return a;
  }
  a.raft = raft->get_raft_metrics();
  a.member.is_online = true;
  client::cpb::Request metrics_req;
  metrics_req.mutable_get_metrics();
  if (auto m = c.call(metrics_req, client::Target{id}, timeout_ms)) {
    if (auto page = parse_exposition(m->get_metrics().prometheus_text())) a.page = std::move(*page);
  }
  return a;
}

double sum_of(const Exposition& page, std::string_view name, const std::vector<Label>& match = {}) {
  double total = 0;
  for (const Sample* s : samples_named(page, name, match)) total += s->value;
  return total;
}

// Sums `now - before` of the buckets of every member that has both pages.
std::vector<Bucket> summed_deltas(const std::map<uint64_t, Exposition>& now, const std::map<uint64_t, Exposition>& before,
                                  std::string_view family, const std::vector<Label>& match) {
  std::vector<Bucket> total;
  for (const auto& [id, page] : now) {
    auto it = before.find(id);
    if (it == before.end()) continue;
    auto d = bucket_deltas(histogram_buckets(page, family, match), histogram_buckets(it->second, family, match));
    if (d.empty()) continue;
    if (total.empty()) {
      total = d;
    } else if (total.size() == d.size()) {
      for (size_t i = 0; i < d.size(); ++i) total[i].count += d[i].count;
    }
  }
  return total;
}

double counter_rate(const std::map<uint64_t, Exposition>& now, const std::map<uint64_t, Exposition>& before,
                    std::string_view name, const std::vector<std::vector<Label>>& matches, double dt_s) {
  double delta = 0;
  for (const auto& [id, page] : now) {
    auto it = before.find(id);
    if (it == before.end()) continue;
    for (const auto& match : matches) delta += std::max(0.0, sum_of(page, name, match) - sum_of(it->second, name, match));
  }
  return dt_s > 0 ? delta / dt_s : 0;
}

}  // namespace

void read_page_into(const Exposition& page, MemberView& m) {
  m.storage_used_bytes = sample_value(page, "aspen_storage_used_bytes").value_or(0);
  m.connections_open = sample_value(page, "aspen_transport_connections_open").value_or(0);
  m.pending_requests = sample_value(page, "aspen_client_pending_requests").value_or(0);
  m.rtts.clear();
  for (const Sample* s : samples_named(page, "aspen_transport_peer_rtt_seconds")) {
    m.rtts.push_back(PeerRtt{std::string(label_value(*s, "peer")), std::string(label_value(*s, "alpn")), s->value});
  }
}

ClusterPoller::ClusterPoller(client::Client& client, PollerOptions options) : client_(client), options_(options) {}

ClusterPoller::~ClusterPoller() { stop(); }

void ClusterPoller::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void ClusterPoller::stop() {
  {
    std::lock_guard lock(stop_mu_);
    is_stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ClusterView ClusterPoller::view() const {
  std::lock_guard lock(mu_);
  return view_;
}

void ClusterPoller::run() {
  const auto interval = std::chrono::milliseconds(std::max(options_.refresh_ms, kMinRefreshMs));
  while (true) {
    const auto next = Clock::now() + interval;
    poll_once();
    std::unique_lock lock(stop_mu_);
    if (stop_cv_.wait_until(lock, next, [&] { return is_stopping_; })) return;
  }
}

void ClusterPoller::poll_once() {
  const uint32_t timeout_ms = options_.member_timeout_ms != 0
                                  ? options_.member_timeout_ms
                                  : std::max<uint32_t>(200, std::max(options_.refresh_ms, kMinRefreshMs) * 4 / 5);
  std::set<uint64_t> ids;
  for (const auto& n : client_.known_nodes()) ids.insert(n.node_id());
  {
    std::lock_guard lock(mu_);
    for (const auto& m : view_.members) ids.insert(m.node_id);
  }
  ids.erase(0);
  std::vector<std::future<Answer>> calls;
  for (uint64_t id : ids) {
    calls.push_back(std::async(std::launch::async, [this, id, timeout_ms] { return ask_member(client_, id, timeout_ms); }));
  }
  std::vector<Answer> answers;
  for (auto& c : calls) answers.push_back(c.get());
  const auto now = Clock::now();

  // Membership and leadership as the member with the highest term sees them.
  const client::cpb::GetRaftMetricsResponse* best = nullptr;
  const client::cpb::GetRaftMetricsResponse* leader = nullptr;
  for (const auto& a : answers) {
    if (!a.raft) continue;
    if (best == nullptr || a.raft->term() > best->term()) best = &*a.raft;
    if (a.raft->role() == "leader" && (leader == nullptr || a.raft->term() > leader->term())) leader = &*a.raft;
  }
  std::set<uint64_t> learners;
  std::map<uint64_t, client::cpb::NodeAddress> addresses;
  for (const auto& a : answers) {
    if (!a.raft) continue;
    for (const auto& m : a.raft->members()) addresses[m.node_id()] = m;
  }
  if (best != nullptr) {
    for (uint64_t l : best->learners()) learners.insert(l);
  }
  std::map<uint64_t, Exposition> pages;
  ClusterView next;
  {
    std::lock_guard lock(mu_);
    next.writes_per_s = view_.writes_per_s;
    next.reads_per_s = view_.reads_per_s;
    next.write_p99_s = view_.write_p99_s;
    next.read_p99_s = view_.read_p99_s;
    next.fsync_p99_s = view_.fsync_p99_s;
    next.polls = view_.polls + 1;
  }
  for (auto& a : answers) {
    MemberView& m = a.member;
    if (a.raft) {
      const auto& r = *a.raft;
      m.role = r.role();
      m.term = r.term();
      m.leader_id = r.leader_id();
      m.commit_index = r.commit_index();
      m.applied_index = r.applied_index();
      m.last_log_index = r.last_log_index();
      last_contact_[m.node_id] = now;
    }
    m.is_learner = learners.contains(m.node_id);
    if (auto it = last_contact_.find(m.node_id); it != last_contact_.end()) m.last_contact = it->second;
    if (auto it = addresses.find(m.node_id); it != addresses.end()) {
      m.public_key = it->second.public_key();
      if (it->second.addrs_size() > 0) m.address = it->second.addrs(0);
    }
    if (leader != nullptr) {
      for (const auto& p : leader->peers()) {
        if (p.node_id() != m.node_id) continue;
        m.match_index = p.match_index();
        m.lag_entries = p.lag_entries();
      }
      if (m.node_id == leader->node_id()) {
        m.match_index = leader->last_log_index();
        m.lag_entries = 0;
      }
    }
    if (a.page) {
      read_page_into(*a.page, m);
      pages[m.node_id] = std::move(*a.page);
    }
    next.members.push_back(std::move(m));
  }
  std::sort(next.members.begin(), next.members.end(),
            [](const MemberView& x, const MemberView& y) { return x.node_id < y.node_id; });
  if (leader != nullptr) {
    next.leader_id = leader->node_id();
    next.term = leader->term();
  } else if (best != nullptr) {
    next.leader_id = best->leader_id();
    next.term = best->term();
  }
  // Rates and p99s over the interval since the last poll.
  if (last_poll_at_ != Clock::time_point{}) {
    const double dt = std::chrono::duration<double>(now - last_poll_at_).count();
    // Writes once, where they were decided (the leader); reads where they were served.
    next.writes_per_s.add(counter_rate(pages, last_pages_, "aspen_core_writes_answered_total", {{}}, dt));
    next.reads_per_s.add(counter_rate(pages, last_pages_, "aspen_client_request_duration_seconds_count",
                                      {{{"op", "read"}}, {{"op", "batch_read"}}, {{"op", "scan"}}}, dt));
    auto p99 = [&](std::string_view family, const std::vector<Label>& match) {
      return histogram_quantile(0.99, summed_deltas(pages, last_pages_, family, match)).value_or(0);
    };
    next.write_p99_s.add(p99("aspen_client_request_duration_seconds", {{"op", "write"}}));
    next.read_p99_s.add(p99("aspen_client_request_duration_seconds", {{"op", "read"}}));
    next.fsync_p99_s.add(p99("aspen_storage_log_write_duration_seconds", {}));
  }
  last_pages_ = std::move(pages);
  last_poll_at_ = now;
  {
    std::lock_guard lock(mu_);
    view_ = std::move(next);
  }
  version_.fetch_add(1, std::memory_order_release);
}

}  // namespace aspen::ops
