#include "node/dns_discovery_service.h"

#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/log.h"
#include "node/dns_resolver.h"

namespace aspen::node::internal {

DnsDiscoveryService::DnsDiscoveryService(NodeEnv& env) : env_(env) {}

DnsDiscoveryService::~DnsDiscoveryService() {
  is_stopping_.store(true);
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    // An eventfd write of 8 bytes cannot be short; if it failed the thread still sees the flag
    // within one c-ares timeout.
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status DnsDiscoveryService::start() {
  const auto& settings = env_.config.dns_discovery;
  if (!settings.is_enabled()) return {};
  auto resolver = DnsResolver::create(settings);
  if (!resolver) return std::unexpected(resolver.error());
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return make_error(ErrorCode::kUnavailable, "DNS discovery: no eventfd");
  endpoint_ = env_.endpoint;
  ASPEN_LOG_INFO("node {}: DNS discovery looks up SRV {} every {} s at most, via {}", env_.config.node_id,
                 settings.name, settings.interval_s,
                 settings.server ? settings.server->to_string() : std::string("the system resolver"));
  thread_ = std::thread([this, self = weak_from_this(), r = std::move(*resolver)]() mutable {
    ::pthread_setname_np(::pthread_self(), "aspen-dns-disc");
    const auto& s = env_.config.dns_discovery;
    uint32_t failures = 0;
    while (!is_stopping_.load()) {
      auto outcome = std::make_shared<DnsLookupOutcome>(r->lookup(s.name, wake_fd_));
      if (outcome->is_stopped) break;
      failures = outcome->answer ? 0 : failures + 1;
      const uint64_t delay_ms = cluster::next_dns_lookup_delay_ms(
          s.interval_s, outcome->answer ? outcome->min_ttl_s : std::nullopt, failures);
      endpoint_->post([self, outcome] {
        if (auto service = self.lock()) service->apply(*outcome);
      });
      pollfd p{wake_fd_, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(delay_ms));
    }
  });
  return {};
}

void DnsDiscoveryService::apply(const DnsLookupOutcome& outcome) {
  const auto& settings = env_.config.dns_discovery;
  const NodeId self = env_.config.node_id;
  ++lookups_;
  queries_ += outcome.queries;
  if (!outcome.answer) {
    ++lookup_failures_;
    if (!has_failed_) {
      ASPEN_LOG_WARN("node {}: DNS discovery: {}; keeping the {} node(s) the last lookup found, trying again soon",
                     self, outcome.answer.error().message(), known_nodes_);
    } else {
      ASPEN_LOG_DEBUG("node {}: DNS discovery: {}", self, outcome.answer.error().message());
    }
    has_failed_ = true;
    return;
  }
  if (has_failed_) ASPEN_LOG_INFO("node {}: DNS discovery: lookups of {} work again", self, settings.name);
  has_failed_ = false;
  const uint64_t now = env_.now_ms();
  cluster::DnsAssembly found = cluster::assemble_dns_peers(*outcome.answer);
  auto& accepted = found.counts[static_cast<size_t>(cluster::DnsRecordVerdict::kAccepted)];
  size_t known = 0;
  for (const auto& p : found.peers) {
    if (p.node_id == self) {
      if (p.key != env_.identity->public_key()) {
        --accepted;
        found.refuse(cluster::DnsRecordVerdict::kConflict,
                     fmt::format("{}: names this node ({}) under another key, {}", p.target, self, p.key.to_string()));
      }
      continue;  // the zone lists this node too: nothing to learn
    }
    const bool is_new = !env_.peers.discovered().contains(DiscoveryKey{p.node_id, std::string(cluster::kDnsDiscoverySource)});
    if (!env_.peers.learn_from_discovery(PeerInfo{p.node_id, p.key, p.addrs}, cluster::kDnsDiscoverySource, now, 0, "")) {
      --accepted;
      found.refuse(cluster::DnsRecordVerdict::kConflict,
                   fmt::format("{}: node {} is known under another key than the zone's {} (see 'aspen-cli cluster "
                               "peers')",
                               p.target, p.node_id, p.key.short_string()));
      continue;
    }
    ++known;
    if (is_new) {
      ASPEN_LOG_INFO("node {}: DNS discovery: found node {} (key {}) at {} ({})", self, p.node_id, p.key.short_string(),
                     p.addrs.front().to_string(), p.target);
    }
  }
  // What this answer no longer lists is forgotten: the zone is the authority for its source.
  env_.peers.expire_discovered(now, cluster::kDnsDiscoverySource);
  known_nodes_ = known;
  last_success_ms_ = now;
  for (size_t i = 0; i < records_.size(); ++i) records_[i] += found.counts[i];

  std::string problems;
  for (const auto& p : found.problems) problems += p + "\n";
  if (problems != last_problems_) {
    uint64_t refused = 0;
    for (size_t i = 1; i < found.counts.size(); ++i) refused += found.counts[i];
    for (const auto& p : found.problems) ASPEN_LOG_WARN("node {}: DNS discovery refused a record: {}", self, p);
    if (refused > found.problems.size()) {
      ASPEN_LOG_WARN("node {}: DNS discovery refused {} records in all (aspen_dns_discovery_records_total)", self,
                     refused);
    }
    last_problems_ = std::move(problems);
  }
}

std::string DnsDiscoveryService::prometheus_samples() const {
  std::string out;
  const NodeId node = env_.config.node_id;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP aspen_dns_discovery_{} {}\n# TYPE aspen_dns_discovery_{} {}\n", name, help, name, type);
  };
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    family(name, type, help);
    out += fmt::format("aspen_dns_discovery_{}{{node_id=\"{}\"}} {}\n", name, node, value);
  };
  metric("enabled", "gauge", "1 if DNS discovery runs on this node (--enable-dns-discovery NAME).",
         env_.config.dns_discovery.is_enabled() ? 1 : 0);
  metric("lookups_total", "counter", "DNS discovery lookups (the SRV name, then each target's TXT, A, AAAA).",
         lookups_);
  metric("lookup_failures_total", "counter",
         "Lookups whose SRV query got no usable answer (timeout, SERVFAIL, REFUSED, oversized); what the last "
         "successful lookup found is kept.",
         lookup_failures_);
  metric("queries_total", "counter", "DNS queries sent by DNS discovery.", queries_);
  metric("known_nodes", "gauge", "Nodes the last successful lookup found (this node not counted).", known_nodes_);
  metric("last_success_timestamp_seconds", "gauge", "Wall-clock time of the last successful lookup (0: none yet).",
         last_success_ms_ / 1000);
  family("records_total", "counter",
         "Records by outcome: accepted, or why refused (bad_txt, bad_key, no_txt, ambiguous, no_address, too_many, "
         "oversized, conflict).");
  for (size_t i = 0; i < cluster::kDnsRecordVerdictCount; ++i) {
    out += fmt::format("aspen_dns_discovery_records_total{{node_id=\"{}\",reason=\"{}\"}} {}\n", node,
                       cluster::dns_record_verdict_name(static_cast<cluster::DnsRecordVerdict>(i)), records_[i]);
  }
  return out;
}

}  // namespace aspen::node::internal
