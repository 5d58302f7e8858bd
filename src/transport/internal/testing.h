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
};

}  // namespace aspen::transport
