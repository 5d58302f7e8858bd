// Test-only access to transport internals: sending bytes that bypass framing (to play a
// misbehaving peer), killing an endpoint without a goodbye (to play a crashed node) and
// freezing its loop (to play a hung one).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "transport/endpoint.h"
#include "transport/internal/endpoint_core.h"

namespace aspen::transport {

struct StreamTestAccess {
  static Status send_raw(Stream& s, std::string bytes) { return s.send_bytes(std::move(bytes), 10000); }
};

// Holds an endpoint's loop thread still until resumed (or destroyed): see
// EndpointTestAccess::freeze.
class EndpointFreeze {
 public:
  EndpointFreeze() = default;
  EndpointFreeze(const EndpointFreeze&) = delete;
  EndpointFreeze& operator=(const EndpointFreeze&) = delete;
  ~EndpointFreeze() { resume(); }
  void resume() {
    if (gate_ != nullptr) std::exchange(gate_, nullptr)->set_value();
  }

 private:
  friend struct EndpointTestAccess;
  std::shared_ptr<std::promise<void>> gate_ = std::make_shared<std::promise<void>>();
};

struct EndpointTestAccess {
  // Stops the endpoint's loop until the returned freeze is resumed: it reads, acknowledges
  // and sends nothing meanwhile, as a process that hangs (a peer that does not read, down to
  // its QUIC stack: it grants no flow-control credit either). Returns once the loop stopped.
  static std::unique_ptr<EndpointFreeze> freeze(Endpoint& e) {
    auto freeze = std::make_unique<EndpointFreeze>();
    auto stopped = std::make_shared<std::promise<void>>();
    auto is_stopped = stopped->get_future();
    e.core_->post([gate = freeze->gate_->get_future().share(), stopped] {
      stopped->set_value();
      gate.wait();
    });
    is_stopped.wait();
    return freeze;
  }
  // Stops the endpoint without sending CONNECTION_CLOSE, as a crash would.
  static void kill(Endpoint& e) { e.core_->shutdown(false); }
  // From now on the endpoint grants no flow-control credit for what it receives, as a
  // peer whose application never reads: its senders stall once their windows are full.
  static void withhold_credit(Endpoint& e) {
    auto core = e.core_;
    core->post([core] { core->withhold_credit_for_testing(); });
  }
  // The next `n` send calls find the kernel's send buffer full (EAGAIN), as under a burst
  // larger than SO_SNDBUF on a real network (loopback frees send buffers at once).
  static void fail_next_sends(Endpoint& e, size_t n) {
    auto core = e.core_;
    core->post([core, n] { core->fail_next_sends_for_testing(n); });
  }
  // Sends `bytes` from the endpoint's own UDP socket to `to` (an IPv4 address), beside its
  // loop (which may be frozen): as if the endpoint had sent a datagram there.
  static bool send_datagram(Endpoint& e, const SocketAddr& to, std::string_view bytes) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(to.port);
    if (::inet_pton(AF_INET, to.ip.c_str(), &sa.sin_addr) != 1) return false;
    const ssize_t n = ::sendto(e.core_->native_fd_for_testing(), bytes.data(), bytes.size(), 0,
                               reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
    return n == static_cast<ssize_t>(bytes.size());
  }
  // Whether an ICMP error report waits on the endpoint's socket (POLLERR), without reading it.
  static bool has_error_report(Endpoint& e) {
    pollfd p{e.core_->native_fd_for_testing(), 0, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
  }
};

}  // namespace aspen::transport
