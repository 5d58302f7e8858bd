// Admission and receive-memory accounting for an endpoint (internal). Pure bookkeeping with
// no I/O, so every rule is unit-tested (tests/transport/admission_test.cc); EndpointCore and
// QuicConnection call it on the loop thread.
//
// Connection slots. An inbound connection is classified once its handshake is complete,
// when the protocol (ALPN) and the peer's key are known: a member's connection takes one of
// `max_member` slots, any other one of `max_client` slots, of which one address may hold at
// most `max_client_per_address`. The classes never borrow from each other, so no number of
// clients can take the slots Raft needs. Connections this process dials are counted by
// EndpointCore against their own limit, never against these.
//
// Receive memory. Bytes a stream holds in a partial frame (FrameDecoder's buffer, counted
// by its capacity: that is what it pins) are charged to the connection and, for client
// connections, to the endpoint. A charge that would cross either cap is refused, and the
// caller resets that stream: waiting instead (withholding flow-control credit) could stall
// honest peers forever, since a window filled by partial frames leaves none of them room to
// complete.
//
// Send memory. Bytes a client connection's streams have been given to send and the peer
// has not acknowledged yet (queued answers, answers in flight) are charged when a message
// is queued and credited as acknowledgements free them (or the stream ends). A message that
// would cross the connection's cap or the cap over all client connections is refused, and
// the caller resets its stream: waiting instead would leave the answer in memory, which is
// what the cap is for. Members are not charged (a node's own traffic to its peers is bounded
// by Raft's window).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/limits.h"

namespace aspen::transport::internal {

enum class PeerClass : uint8_t { kMember, kClient };

struct SlotLimits {
  size_t max_member = limits::kMaxMemberConnections;
  size_t max_client = limits::kMaxClientConnections;
  size_t max_client_per_address = limits::kMaxClientConnectionsPerAddress;
};

enum class Admission : uint8_t { kAdmitted, kMemberLimit, kClientLimit, kAddressLimit };

// The CONNECTION_CLOSE reason a refused peer reads ("client connection limit reached (500)").
std::string refusal_reason(Admission a, const SlotLimits& limits);

class ConnectionSlots {
 public:
  explicit ConnectionSlots(SlotLimits limits) : limits_(limits) {}

  // Takes a slot for a connection of class `c` from `address` (an IP address without port).
  Admission admit(PeerClass c, std::string_view address);
  // Gives back a slot admit() granted.
  void release(PeerClass c, std::string_view address);

  size_t members() const noexcept { return members_; }
  size_t clients() const noexcept { return clients_; }
  size_t clients_from(std::string_view address) const;
  const SlotLimits& limits() const noexcept { return limits_; }

 private:
  SlotLimits limits_;
  size_t members_ = 0;
  size_t clients_ = 0;
  std::unordered_map<std::string, size_t> clients_by_address_;  // entries > 0 only
};

struct RecvCaps {
  size_t per_connection_bytes = limits::kMaxConnectionPartialFrameBytes;
  size_t client_total_bytes = limits::kMaxClientPartialFrameBytes;
};

enum class RecvCharge : uint8_t { kOk, kOverConnectionCap, kOverClientTotalCap };

// Partial-frame bytes held by all of an endpoint's connections.
class RecvBudget {
 public:
  explicit RecvBudget(RecvCaps caps) : caps_(caps) {}

  // A stream of a connection holding `conn_held` bytes wants to hold `grow` more. On kOk the
  // charge is made (the caller adds it to its own connection's tally too).
  RecvCharge charge(PeerClass c, size_t conn_held, size_t grow);
  // Bytes no longer held (a frame completed, a stream ended).
  void credit(PeerClass c, size_t bytes);

  size_t client_held() const noexcept { return client_held_; }
  size_t total_held() const noexcept { return client_held_ + member_held_; }
  const RecvCaps& caps() const noexcept { return caps_; }

 private:
  RecvCaps caps_;
  size_t client_held_ = 0;
  size_t member_held_ = 0;
};

struct SendCaps {
  size_t per_connection_bytes = limits::kMaxConnectionUnackedSendBytes;
  size_t client_total_bytes = limits::kMaxClientUnackedSendBytes;
};

enum class SendCharge : uint8_t { kOk, kOverConnectionCap, kOverClientTotalCap };

// The limit a refused send crossed, for errors and logs ("33554432 bytes of unacknowledged
// answers per connection").
std::string send_limit_text(SendCharge why, const SendCaps& caps);

// Unacknowledged send bytes of all of an endpoint's client connections. Not thread-safe:
// EndpointCore serializes it (senders charge from any thread, the loop credits).
class SendBudget {
 public:
  explicit SendBudget(SendCaps caps) : caps_(caps) {}

  // A client connection holding `conn_held` unacknowledged bytes wants to queue `grow` more.
  // On kOk the charge is made and added to conn_held; otherwise nothing changes.
  SendCharge charge(size_t& conn_held, size_t grow);
  // Bytes acknowledged (or dropped with their stream): taken off conn_held and the total.
  void credit(size_t& conn_held, size_t bytes);

  size_t client_held() const noexcept { return client_held_; }
  const SendCaps& caps() const noexcept { return caps_; }

 private:
  SendCaps caps_;
  size_t client_held_ = 0;
};

}  // namespace aspen::transport::internal
