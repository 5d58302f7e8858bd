#include "node/mdns_service.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <span>

#include "cluster/mdns_settings.h"
#include "core/assert.h"
#include "core/log.h"
#include "crypto/blake3.h"

namespace aspen::node::internal {

namespace {

// BLAKE3 derive-key contexts are hard-coded, globally unique strings (as gossip_topic.cc's).
constexpr std::string_view kTagContext = "aspen 2026-12-03 mdns cluster tag from cluster cookie";
// The first announcements after start (RFC 6762 8.3: at least two, one second apart); then
// every kMdnsAnnounceIntervalMs. The queries go with the first two.
constexpr std::array<uint64_t, 3> kStartAnnounceMs = {0, 1000, 3000};
// Datagrams read per wake-up before the thread looks at its timers again.
constexpr int kMaxReadsPerWake = 64;

std::string cluster_tag(std::string_view cookie) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(cookie.data());
  const crypto::Blake3Hash hash = crypto::blake3_derive_key(kTagContext, std::span<const uint8_t>(bytes, cookie.size()));
  std::string out;
  for (size_t i = 0; i < cluster::kMdnsClusterTagBytes; ++i) out += fmt::format("{:02x}", hash[i]);
  return out;
}

uint64_t steady_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

// The address to announce: the bind address, or for a wildcard bind the first IPv4 address of
// an interface that is up, not loopback and multicast-capable. Empty with the reason when
// there is none.
std::pair<std::string, std::string> pick_ipv4(const std::string& bind_ip) {
  in_addr a{};
  if (::inet_pton(AF_INET, bind_ip.c_str(), &a) != 1) {
    return {"", fmt::format("the node is bound to {}, and mDNS here speaks IPv4 only", bind_ip)};
  }
  const uint32_t host = ntohl(a.s_addr);
  if ((host >> 24) == 127) {
    return {"", fmt::format("the node is bound to loopback ({}), where there is no LAN to announce on; bind a LAN "
                            "address (or 0.0.0.0) for mDNS",
                            bind_ip)};
  }
  if (host != INADDR_ANY) return {bind_ip, ""};
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return {"", fmt::format("cannot list interfaces: {}", std::strerror(errno))};
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0 || (i->ifa_flags & IFF_MULTICAST) == 0) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof(text));
    found = text;
  }
  ::freeifaddrs(list);
  if (found.empty()) return {"", "no interface that is up, not loopback and multicast-capable has an IPv4 address"};
  return {found, ""};
}

sockaddr_in group_addr() {
  sockaddr_in g{};
  g.sin_family = AF_INET;
  g.sin_port = htons(cluster::kMdnsPort);
  ::inet_pton(AF_INET, std::string(cluster::kMdnsGroupIpv4).c_str(), &g.sin_addr);
  return g;
}

}  // namespace

MdnsService::MdnsService(NodeEnv& env) : env_(env) {}

MdnsService::~MdnsService() { stop(); }

void MdnsService::inactive(const std::string& why) {
  state_ = "inactive";
  ASPEN_LOG_INFO("node {}: mDNS discovery is inactive: {}", env_.config.node_id, why);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void MdnsService::start() {
  const NodeId self = env_.config.node_id;
  if (!env_.config.mdns.is_enabled) {
    ASPEN_LOG_INFO("node {}: mDNS discovery is off (--disable-mdns)", self);
    return;
  }
  const transport::SocketAddr local = env_.endpoint->local_addr();
  auto [ip, why] = pick_ipv4(local.ip);
  if (ip.empty()) return inactive(why);
  in_addr iface{};
  ::inet_pton(AF_INET, ip.c_str(), &iface);

  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return inactive(fmt::format("cannot open a UDP socket: {}", std::strerror(errno)));
  const int one = 1;
  const int ttl = 255;  // RFC 6762 11: sent with TTL 255 (receivers may check it)
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));  // other responders, other nodes here
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(cluster::kMdnsPort);
  any.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0) {
    return inactive(fmt::format("cannot bind UDP port {} (another mDNS responder without SO_REUSEPORT?): {}",
                                cluster::kMdnsPort, std::strerror(errno)));
  }
  ip_mreq join{};
  join.imr_multiaddr = group_addr().sin_addr;
  join.imr_interface = iface;
  if (::setsockopt(fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join, sizeof(join)) != 0) {
    return inactive(fmt::format("cannot join {} on {}: {}", cluster::kMdnsGroupIpv4, ip, std::strerror(errno)));
  }
  if (::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof(iface)) != 0 ||
      ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) != 0 ||
      ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)) != 0) {
    return inactive(fmt::format("cannot set the multicast options on {}: {}", ip, std::strerror(errno)));
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return inactive(fmt::format("cannot make an eventfd: {}", std::strerror(errno)));

  cluster::MdnsCoreConfig cc;
  cc.node_id = self;
  cc.key = env_.identity->public_key();
  cc.ipv4 = ip;
  cc.port = local.port;
  cc.cluster_tag = cluster_tag(env_.config.cookie);
  core_.emplace(cc);
  state_ = "active";
  ASPEN_LOG_INFO("node {}: mDNS discovery on {}:{} from {} as {}.{} (port {})", self, cluster::kMdnsGroupIpv4,
                 cluster::kMdnsPort, ip, core_->instance_label(), cluster::kMdnsServiceType, local.port);
  thread_ = std::thread([this] { run(); });
}

void MdnsService::stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (fd_ >= 0) ::close(fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  fd_ = -1;
  wake_fd_ = -1;
}

void MdnsService::send(const std::string& bytes, bool is_query) {
  ASPEN_ASSERT(bytes.size() <= cluster::kMaxMdnsSendBytes);
  const sockaddr_in g = group_addr();
  const ssize_t n = ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&g), sizeof(g));
  if (n < 0) {
    ASPEN_LOG_DEBUG("node {}: mDNS: send failed: {}", env_.config.node_id, std::strerror(errno));
    return;
  }
  core_->count_sent(is_query, bytes.size());
}

void MdnsService::receive_all(uint64_t now_ms, uint64_t& answer_due_ms) {
  // One byte more than the limit, so that an oversized datagram is seen as one.
  std::array<char, cluster::kMaxMdnsDatagramBytes + 1> buf;
  for (int i = 0; i < kMaxReadsPerWake; ++i) {
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return;  // EAGAIN: read everything there was
    char ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
    auto got = core_->on_datagram(std::string_view(buf.data(), static_cast<size_t>(n)), ip, now_ms);
    using enum cluster::MdnsVerdict;
    const bool is_dropped = got.verdict == kOtherCluster || got.verdict == kBadRecord || got.verdict == kMalformed ||
                            got.verdict == kOversized || got.verdict == kRateLimited;
    if (is_dropped) {
      ASPEN_LOG_DEBUG("node {}: mDNS: dropped a datagram from {}: {}", env_.config.node_id, ip,
                      cluster::mdns_verdict_name(got.verdict));
    }
    if (!got.learned.empty()) {
      env_.endpoint->post([self = weak_from_this(), peers = std::move(got.learned)] {
        if (auto s = self.lock()) s->learn(peers);
      });
    }
    if (!got.gone.empty()) {
      env_.endpoint->post([self = weak_from_this(), peers = std::move(got.gone)] {
        if (auto s = self.lock()) s->forget(peers);
      });
    }
    // A query waits for the next permitted answer rather than being forgotten.
    if (got.should_answer && answer_due_ms == 0) answer_due_ms = now_ms;
  }
}

void MdnsService::run() {
  ::pthread_setname_np(::pthread_self(), "aspen-mdns");
  const uint64_t started = steady_ms();
  size_t start_round = 0;
  uint64_t next_announce_ms = started;
  uint64_t answer_due_ms = 0;  // 0: no query waits for an answer
  while (true) {
    uint64_t now = steady_ms();
    if (now >= next_announce_ms) {
      if (start_round < 2) send(core_->query(), true);
      send(core_->announcement(), false);
      ++start_round;
      next_announce_ms = start_round < kStartAnnounceMs.size() ? started + kStartAnnounceMs[start_round]
                                                               : now + cluster::kMdnsAnnounceIntervalMs;
    }
    if (answer_due_ms != 0 && now >= answer_due_ms) {
      if (core_->may_answer(now)) {
        send(core_->announcement(), false);
        answer_due_ms = 0;
      } else {
        answer_due_ms = now + cluster::kMinMdnsAnswerIntervalMs / 4;
      }
    }
    {
      std::lock_guard lock(mu_);
      stats_ = core_->stats();
    }
    uint64_t wake_at = next_announce_ms;
    if (answer_due_ms != 0) wake_at = std::min(wake_at, answer_due_ms);
    now = steady_ms();
    const int timeout_ms = wake_at > now ? static_cast<int>(std::min<uint64_t>(wake_at - now, 60000)) : 0;
    std::array<pollfd, 2> fds = {pollfd{fd_, POLLIN, 0}, pollfd{wake_fd_, POLLIN, 0}};
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) {
      ASPEN_LOG_WARN("node {}: mDNS: poll failed, discovery stops: {}", env_.config.node_id, std::strerror(errno));
      return;
    }
    if (ready > 0 && (fds[1].revents & POLLIN) != 0) {
      // stop(): say goodbye, so that the others forget this node's address now rather
      // than when its records' TTL runs out (RFC 6762 10.1).
      send(core_->announcement(0), false);
      return;
    }
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) receive_all(steady_ms(), answer_due_ms);
  }
}

void MdnsService::forget(const std::vector<cluster::MdnsPeer>& peers) {
  for (const auto& p : peers) {
    if (env_.peers.forget_discovered(p.node_id, p.key, cluster::kMdnsSource)) {
      ASPEN_LOG_INFO("node {}: mDNS: node {} said goodbye; its mDNS address is forgotten", env_.config.node_id,
                     p.node_id);
    }
  }
}

void MdnsService::learn(const std::vector<cluster::MdnsPeer>& peers) {
  const uint64_t now = env_.now_ms();
  // What mDNS heard goes stale after the records' TTL.
  const uint64_t ttl_ms = uint64_t{cluster::kMdnsTtlS} * 1000;
  if (now > ttl_ms) env_.peers.expire_discovered(now - ttl_ms, cluster::kMdnsSource);
  for (const auto& p : peers) {
    const bool is_new = !env_.peers.discovered().contains(DiscoveryKey{p.node_id, std::string(cluster::kMdnsSource)});
    if (!env_.peers.learn_from_discovery(PeerInfo{p.node_id, p.key, {p.addr}}, cluster::kMdnsSource, now, 0, {})) {
      ASPEN_LOG_DEBUG("node {}: mDNS: node {} announced key {}, but another source knows it under another key",
                      env_.config.node_id, p.node_id, p.key.short_string());
      continue;
    }
    if (is_new) {
      ASPEN_LOG_INFO("node {}: mDNS: found node {} (key {}) at {}", env_.config.node_id, p.node_id, p.key.short_string(),
                     p.addr.to_string());
    }
  }
}

std::string MdnsService::prometheus_samples() const {
  cluster::MdnsStats stats;
  {
    std::lock_guard lock(mu_);
    stats = stats_;
  }
  std::string out;
  const NodeId node = env_.config.node_id;
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    out += fmt::format("# HELP aspen_mdns_{} {}\n# TYPE aspen_mdns_{} {}\naspen_mdns_{}{{node_id=\"{}\"}} {}\n", name,
                       help, name, type, name, node, value);
  };
  metric("active", "gauge",
         "1 if mDNS discovery runs on this node; 0 if it is off (--disable-mdns) or inactive (loopback bind, "
         "no multicast; the log says why).",
         state_ == "active" ? 1 : 0);
  metric("announcements_sent_total", "counter", "mDNS announcements and answers to queries sent.",
         stats.announcements_out);
  metric("queries_sent_total", "counter", "mDNS queries sent.", stats.queries_out);
  metric("sent_bytes_total", "counter", "Bytes of mDNS datagrams sent.", stats.bytes_out);
  metric("received_bytes_total", "counter", "Bytes of mDNS datagrams received.", stats.bytes_in);
  out += fmt::format(
      "# HELP aspen_mdns_datagrams_received_total mDNS datagrams received, by outcome: accepted (announced a node "
      "of this cluster), goodbye (a node of this cluster stopped), query, own, ignored (other services), or why "
      "dropped (other_cluster, bad_record, malformed, oversized, rate_limited).\n# TYPE aspen_mdns_datagrams_received_total counter\n");
  for (size_t i = 0; i < cluster::kMdnsVerdictCount; ++i) {
    out += fmt::format("aspen_mdns_datagrams_received_total{{node_id=\"{}\",reason=\"{}\"}} {}\n", node,
                       cluster::mdns_verdict_name(static_cast<cluster::MdnsVerdict>(i)), stats.verdicts[i]);
  }
  return out;
}

}  // namespace aspen::node::internal
