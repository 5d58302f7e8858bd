#include "ops/cluster_scrape.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <set>

#include <fmt/format.h>

#include "core/log.h"

namespace aspen::ops {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

MemberScrape scrape_member(client::Client& c, uint64_t node_id, uint32_t timeout_ms, Exposition& page) {
  MemberScrape m;
  m.node_id = node_id;
  const auto start = Clock::now();
  client::cpb::Request req;
  req.mutable_get_metrics();
  auto resp = c.call(req, client::Target{node_id}, timeout_ms);
  m.duration_s = seconds_since(start);
  if (!resp) {
    m.error = resp.error().to_string();
    return m;
  }
  const std::string& text = resp->get_metrics().prometheus_text();
  m.page_bytes = text.size();
  auto parsed = parse_exposition(text);
  if (!parsed) {
    m.error = parsed.error().to_string();
    return m;
  }
  page = std::move(*parsed);
  m.is_up = true;
  return m;
}

// The adapter's own families: which members answered, and how long each took.
std::string adapter_families(const std::vector<MemberScrape>& members) {
  std::string out =
      "# HELP aspen_adapter_member_up 1 if the member answered this scrape with its metrics, 0 if not.\n"
      "# TYPE aspen_adapter_member_up gauge\n";
  for (const auto& m : members) out += fmt::format("aspen_adapter_member_up{{node_id=\"{}\"}} {}\n", m.node_id, m.is_up ? 1 : 0);
  out +=
      "# HELP aspen_adapter_member_scrape_duration_seconds How long the member took to answer (or to fail).\n"
      "# TYPE aspen_adapter_member_scrape_duration_seconds gauge\n";
  for (const auto& m : members) {
    out += fmt::format("aspen_adapter_member_scrape_duration_seconds{{node_id=\"{}\"}} {}\n", m.node_id, m.duration_s);
  }
  return out;
}

}  // namespace

std::vector<uint64_t> ClusterScraper::members(uint32_t timeout_ms) {
  std::set<uint64_t> ids;
  for (const auto& n : client_.known_nodes()) ids.insert(n.node_id());
  // Ask the known nodes in turn for the membership until one answers: any member names every
  // voter and learner it can reach (and the client learns their addresses from the answer).
  client::cpb::Request req;
  req.mutable_get_raft_metrics();
  for (uint64_t id : std::vector<uint64_t>(ids.begin(), ids.end())) {
    auto resp = client_.call(req, client::Target{id}, timeout_ms);
    if (!resp) continue;
    for (const auto& m : resp->get_raft_metrics().members()) ids.insert(m.node_id());
    for (uint64_t v : resp->get_raft_metrics().voters()) ids.insert(v);
    for (uint64_t l : resp->get_raft_metrics().learners()) ids.insert(l);
    break;
  }
  ids.erase(0);
  std::vector<uint64_t> out(ids.begin(), ids.end());
  if (out.size() > kMaxScrapedMembers) {
    ASPEN_LOG_WARN("{} members known; scraping the first kMaxScrapedMembers ({})", out.size(), kMaxScrapedMembers);
    out.resize(kMaxScrapedMembers);
  }
  return out;
}

ScrapeResult ClusterScraper::scrape(const ScrapeOptions& options) {
  const uint32_t timeout_ms = std::max<uint32_t>(options.member_timeout_ms, 1);
  const std::vector<uint64_t> ids = members(timeout_ms);
  std::vector<Exposition> pages(ids.size());
  std::vector<std::future<MemberScrape>> calls;
  calls.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    calls.push_back(std::async(std::launch::async, [this, id = ids[i], timeout_ms, &page = pages[i]] {
      return scrape_member(client_, id, timeout_ms, page);
    }));
  }
  ScrapeResult result;
  Exposition merged;
  for (size_t i = 0; i < ids.size(); ++i) {
    result.members.push_back(calls[i].get());
    if (!result.members.back().is_up) continue;
    if (auto s = merge_into(merged, std::move(pages[i])); !s) {
      ASPEN_LOG_WARN("node {}: {}", ids[i], s.error().to_string());
    }
  }
  if (auto own = parse_exposition(adapter_families(result.members))) {
    (void)merge_into(merged, std::move(*own));
  }
  result.text = render(merged);
  return result;
}

}  // namespace aspen::ops
