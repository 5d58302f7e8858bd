#include "transport/internal/admission.h"

#include <fmt/format.h>

#include "core/assert.h"

namespace aspen::transport::internal {

std::string refusal_reason(Admission a, const SlotLimits& limits) {
  switch (a) {
    case Admission::kAdmitted:
      break;
    case Admission::kMemberLimit:
      return fmt::format("member connection limit reached ({})", limits.max_member);
    case Admission::kClientLimit:
      return fmt::format("client connection limit reached ({})", limits.max_client);
    case Admission::kAddressLimit:
      return fmt::format("per-address client connection limit reached ({})", limits.max_client_per_address);
  }
  return "admitted";
}

Admission ConnectionSlots::admit(PeerClass c, std::string_view address) {
  if (c == PeerClass::kMember) {
    if (members_ >= limits_.max_member) return Admission::kMemberLimit;
    ++members_;
    return Admission::kAdmitted;
  }
  if (clients_ >= limits_.max_client) return Admission::kClientLimit;
  auto it = clients_by_address_.find(std::string(address));
  if (it != clients_by_address_.end() && it->second >= limits_.max_client_per_address) return Admission::kAddressLimit;
  if (limits_.max_client_per_address == 0) return Admission::kAddressLimit;
  ++clients_;
  if (it == clients_by_address_.end()) {
    clients_by_address_.emplace(std::string(address), 1);
  } else {
    ++it->second;
  }
  return Admission::kAdmitted;
}

void ConnectionSlots::release(PeerClass c, std::string_view address) {
  if (c == PeerClass::kMember) {
    ASPEN_ASSERT(members_ > 0);
    --members_;
    return;
  }
  auto it = clients_by_address_.find(std::string(address));
  ASPEN_ASSERT(clients_ > 0 && it != clients_by_address_.end() && it->second > 0);
  --clients_;
  if (--it->second == 0) clients_by_address_.erase(it);
}

size_t ConnectionSlots::clients_from(std::string_view address) const {
  auto it = clients_by_address_.find(std::string(address));
  return it == clients_by_address_.end() ? 0 : it->second;
}

RecvCharge RecvBudget::charge(PeerClass c, size_t conn_held, size_t grow) {
  if (grow == 0) return RecvCharge::kOk;
  if (conn_held + grow > caps_.per_connection_bytes) return RecvCharge::kOverConnectionCap;
  if (c == PeerClass::kClient) {
    if (client_held_ + grow > caps_.client_total_bytes) return RecvCharge::kOverClientTotalCap;
    client_held_ += grow;
  } else {
    member_held_ += grow;
  }
  return RecvCharge::kOk;
}

void RecvBudget::credit(PeerClass c, size_t bytes) {
  size_t& held = c == PeerClass::kClient ? client_held_ : member_held_;
  ASPEN_ASSERT(bytes <= held);
  held -= bytes;
}

std::string send_limit_text(SendCharge why, const SendCaps& caps) {
  switch (why) {
    case SendCharge::kOk:
      break;
    case SendCharge::kOverConnectionCap:
      return fmt::format("{} bytes of unacknowledged answers per connection", caps.per_connection_bytes);
    case SendCharge::kOverClientTotalCap:
      return fmt::format("{} bytes of unacknowledged answers across all client connections", caps.client_total_bytes);
  }
  return "no limit";
}

SendCharge SendBudget::charge(size_t& conn_held, size_t grow) {
  ASPEN_ASSERT(conn_held <= client_held_);
  if (grow == 0) return SendCharge::kOk;
  // Written as subtractions: conn_held + grow could wrap for an absurd grow.
  if (grow > caps_.per_connection_bytes || conn_held > caps_.per_connection_bytes - grow) {
    return SendCharge::kOverConnectionCap;
  }
  if (grow > caps_.client_total_bytes || client_held_ > caps_.client_total_bytes - grow) {
    return SendCharge::kOverClientTotalCap;
  }
  conn_held += grow;
  client_held_ += grow;
  return SendCharge::kOk;
}

void SendBudget::credit(size_t& conn_held, size_t bytes) {
  ASPEN_ASSERT(bytes <= conn_held && conn_held <= client_held_);
  conn_held -= bytes;
  client_held_ -= bytes;
}

}  // namespace aspen::transport::internal
