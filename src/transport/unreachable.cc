// ICMP errors on the endpoint's UDP socket: how a node learns at once that a peer's process
// is gone.
//
// A peer whose process died (kill -9, a crash) leaves its UDP port closed, and the kernel of
// its host answers our next datagram there with ICMP "port unreachable". An unconnected UDP
// socket hears of that only if it asks (ip(7) IP_RECVERR): the report is queued on the
// socket's error queue, with the original destination as its address, and the socket's
// pending error is set, so the next send or receive fails once with that errno although the
// datagram in hand was fine. Connections with that address are then ended with a clear
// error (a dial fails at once instead of after the connect timeout) and the endpoint's
// handler hears which peers are gone: the node tells Raft, whose followers campaign at once
// when it is their leader (docs/operations.md, failure detection). A forged ICMP error can do
// no more than a lost connection: the link is dialled again, and Raft's pre-vote stops a
// false alarm from disrupting a leader the others still hear.
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/log.h"
#include "transport/internal/endpoint_core.h"

namespace aspen::transport::internal {

namespace {

// Reports read per drain; more wait for the next one (the socket's error stays flagged).
constexpr int kMaxErrorReportsPerDrain = 64;
// Distinct unreachable addresses held until the socket's datagrams are read. Reports past
// it are read and dropped: connections to those addresses then end by their idle timeout
// (only a flood of forged reports naming many addresses gets here).
constexpr size_t kMaxPendingUnreachableReports = 256;

// Whether an ICMP-reported errno means the peer cannot be reached at that address.
bool is_unreachable_errno(int err) {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN;
}

bool is_same_address(const PeerAddr& a, const PeerAddr& b) {
  if (a.addr.ss_family != b.addr.ss_family) return false;
  if (a.addr.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a.addr);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b.addr);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (a.addr.ss_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a.addr);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b.addr);
    return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof(x.sin6_addr)) == 0;
  }
  return false;
}

std::string describe(const PeerAddr& a) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (a.addr.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a.addr);
    ::inet_ntop(AF_INET, &x.sin_addr, text, sizeof(text));
    return fmt::format("{}:{}", text, ntohs(x.sin_port));
  }
  if (a.addr.ss_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a.addr);
    ::inet_ntop(AF_INET6, &x.sin6_addr, text, sizeof(text));
    return fmt::format("[{}]:{}", text, ntohs(x.sin6_port));
  }
  return "an address of an unknown family";
}

}  // namespace

bool is_icmp_reported_errno(int err) { return is_unreachable_errno(err); }

void EndpointCore::enable_error_reports() {
  const int fd = socket_.native_handle();
  const int on = 1;
  // Both levels on a v6 socket: it also carries v4-mapped traffic. A refusal only costs the
  // fast detection (peers are then found gone by the idle timeout), so it is logged, not fatal.
  const bool is_v6 = local_sockaddr_.ss_family == AF_INET6;
  if (is_v6 && ::setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof(on)) != 0) {
    ASPEN_LOG_WARN("transport: IPV6_RECVERR: {}; dead peers are noticed only by timeouts", std::strerror(errno));
  }
  if (::setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof(on)) != 0 && !is_v6) {
    ASPEN_LOG_WARN("transport: IP_RECVERR: {}; dead peers are noticed only by timeouts", std::strerror(errno));
  }
}

void EndpointCore::schedule_error_drain() {
  if (is_error_drain_posted_) return;
  is_error_drain_posted_ = true;
  post([this] {
    is_error_drain_posted_ = false;
    if (is_closed()) return;
    collect_error_reports();
    // Datagrams that arrived before the report are read first (drain_socket acts on the
    // reports once the socket is empty); with more queued than one drain takes, the rest
    // is read in later turns of the loop, as on_readable does.
    continue_drain();
  });
}

void EndpointCore::continue_drain() {
  if (drain_socket()) return;
  post([this] {
    if (!is_closed()) continue_drain();
  });
}

void EndpointCore::act_on_error_reports() {
  for (const auto& r : std::exchange(unreachable_reports_, {})) on_address_unreachable(r.addr, r.err);
}

void EndpointCore::collect_error_reports() {
  const int fd = socket_.native_handle();
  for (int i = 0; i < kMaxErrorReportsPerDrain; ++i) {
    PeerAddr offender;
    uint8_t payload[64];  // the start of the datagram that failed; not needed, may be cut
    iovec iov{payload, sizeof(payload)};
    alignas(cmsghdr) uint8_t control[256];
    msghdr msg{};
    msg.msg_name = &offender.addr;
    msg.msg_namelen = sizeof(offender.addr);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (::recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: the queue is empty
    }
    offender.len = msg.msg_namelen;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      const bool is_report = (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                             (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR);
      if (!is_report || c->cmsg_len < CMSG_LEN(sizeof(sock_extended_err))) continue;
      sock_extended_err ee;
      std::memcpy(&ee, CMSG_DATA(c), sizeof(ee));
      const bool is_icmp = ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6;
      if (!is_icmp || !is_unreachable_errno(static_cast<int>(ee.ee_errno))) continue;
      // One report per address is enough (bounded by the addresses of our connections);
      // a new one for an address already listed changes nothing.
      bool is_listed = false;
      for (const auto& r : unreachable_reports_) is_listed = is_listed || is_same_address(r.addr, offender);
      if (!is_listed && unreachable_reports_.size() < kMaxPendingUnreachableReports) {
        unreachable_reports_.push_back(UnreachableReport{offender, static_cast<int>(ee.ee_errno)});
      }
    }
  }
}

void EndpointCore::on_address_unreachable(const PeerAddr& addr, int err) {
  std::vector<std::shared_ptr<QuicConnection>> gone;
  for (const auto& c : conns_) {
    if (c->state() != ConnState::kClosed && is_same_address(c->remote(), addr)) gone.push_back(c);
  }
  if (gone.empty()) return;
  std::function<void(const PublicKey&)> handler;
  {
    std::lock_guard lock(handlers_mu_);
    handler = on_peer_unreachable_;
  }
  const std::string where = describe(addr);
  for (const auto& c : gone) {
    counters_.peers_unreachable.fetch_add(1);
    ASPEN_LOG_DEBUG("transport: {} ({}) is unreachable: {}", where, c->peer_key().to_string(), std::strerror(err));
    const PublicKey key = c->peer_key();
    c->abort(Error(ErrorCode::kUnavailable,
                   fmt::format("{} is unreachable ({}): is the peer's process running?", where, std::strerror(err))));
    if (handler) handler(key);
  }
}

void EndpointCore::set_peer_unreachable_handler(std::function<void(const PublicKey&)> handler) {
  std::lock_guard lock(handlers_mu_);
  on_peer_unreachable_ = std::move(handler);
}

}  // namespace aspen::transport::internal
