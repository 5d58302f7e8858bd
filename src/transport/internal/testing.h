// Test-only access to transport internals: sending bytes that bypass framing (to play a
// misbehaving peer) and killing an endpoint without a goodbye (to play a crashed node).
#pragma once

#include <string>

#include "transport/endpoint.h"
#include "transport/internal/endpoint_core.h"

namespace aspen::transport {

struct StreamTestAccess {
  static Status send_raw(Stream& s, std::string bytes) { return s.send_bytes(std::move(bytes), 10000); }
};

struct EndpointTestAccess {
  // Stops the endpoint without sending CONNECTION_CLOSE, as a crash would.
  static void kill(Endpoint& e) { e.core_->shutdown(false); }
  // The next `n` send calls find the kernel's send buffer full (EAGAIN), as under a burst
  // larger than SO_SNDBUF on a real network (loopback frees send buffers at once).
  static void fail_next_sends(Endpoint& e, size_t n) {
    auto core = e.core_;
    core->post([core, n] { core->fail_next_sends_for_testing(n); });
  }
};

}  // namespace aspen::transport
