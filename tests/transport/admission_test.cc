// The endpoint's admission and receive-memory bookkeeping (transport/internal/admission.h),
// as pure logic: member and client slots, the per-address cap, partial-frame caps, send caps.
#include "transport/internal/admission.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <map>
#include <vector>

namespace aspen::transport::internal {
namespace {

SlotLimits small_limits() { return SlotLimits{2, 3, 2}; }

TEST(ConnectionSlots, ClientsCannotTakeMemberSlots) {
  ConnectionSlots slots(small_limits());
  EXPECT_EQ(slots.admit(PeerClass::kClient, "a"), Admission::kAdmitted);
  EXPECT_EQ(slots.admit(PeerClass::kClient, "b"), Admission::kAdmitted);
  EXPECT_EQ(slots.admit(PeerClass::kClient, "c"), Admission::kAdmitted);
  EXPECT_EQ(slots.admit(PeerClass::kClient, "d"), Admission::kClientLimit);
  // Every client slot is taken; both member slots are still free.
  EXPECT_EQ(slots.admit(PeerClass::kMember, "a"), Admission::kAdmitted);
  EXPECT_EQ(slots.admit(PeerClass::kMember, "a"), Admission::kAdmitted);
  EXPECT_EQ(slots.admit(PeerClass::kMember, "a"), Admission::kMemberLimit);
  EXPECT_EQ(slots.members(), 2u);
  EXPECT_EQ(slots.clients(), 3u);
}

TEST(ConnectionSlots, OneAddressHoldsAtMostItsShareOfClientSlots) {
  ConnectionSlots slots(small_limits());
  EXPECT_EQ(slots.admit(PeerClass::kClient, "a"), Admission::kAdmitted);
  EXPECT_EQ(slots.admit(PeerClass::kClient, "a"), Admission::kAdmitted);
  EXPECT_EQ(slots.admit(PeerClass::kClient, "a"), Admission::kAddressLimit);
  EXPECT_EQ(slots.admit(PeerClass::kClient, "b"), Admission::kAdmitted);
  // Members are not counted per address: a host running several nodes is fine.
  EXPECT_EQ(slots.admit(PeerClass::kMember, "a"), Admission::kAdmitted);
  slots.release(PeerClass::kClient, "a");
  EXPECT_EQ(slots.clients_from("a"), 1u);
  EXPECT_EQ(slots.admit(PeerClass::kClient, "a"), Admission::kAdmitted);
}

TEST(ConnectionSlots, RefusalReasonsNameTheLimit) {
  const SlotLimits l = small_limits();
  EXPECT_EQ(refusal_reason(Admission::kClientLimit, l), "client connection limit reached (3)");
  EXPECT_EQ(refusal_reason(Admission::kMemberLimit, l), "member connection limit reached (2)");
  EXPECT_EQ(refusal_reason(Admission::kAddressLimit, l), "per-address client connection limit reached (2)");
}

// Against a model: any sequence of admits and releases keeps every count within its limit
// and equal to what was admitted minus what was released.
RC_GTEST_PROP(ConnectionSlots, CountsMatchAModelAndStayWithinLimits, ()) {
  const SlotLimits limits{*rc::gen::inRange<size_t>(0, 5), *rc::gen::inRange<size_t>(0, 6),
                          *rc::gen::inRange<size_t>(1, 4)};
  ConnectionSlots slots(limits);
  std::map<std::pair<int, std::string>, size_t> held;  // (class, address) -> admitted
  const auto steps = *rc::gen::inRange(0, 200);
  for (int i = 0; i < steps; ++i) {
    const auto cls = *rc::gen::element(PeerClass::kMember, PeerClass::kClient);
    const std::string addr(1, *rc::gen::element('a', 'b', 'c'));
    auto& n = held[{static_cast<int>(cls), addr}];
    if (*rc::gen::arbitrary<bool>() && n > 0) {
      slots.release(cls, addr);
      --n;
    } else if (slots.admit(cls, addr) == Admission::kAdmitted) {
      ++n;
    }
    size_t members = 0, clients = 0;
    std::map<std::string, size_t> by_addr;
    for (const auto& [k, v] : held) {
      if (k.first == static_cast<int>(PeerClass::kMember)) {
        members += v;
      } else {
        clients += v;
        by_addr[k.second] += v;
      }
    }
    RC_ASSERT(slots.members() == members && members <= limits.max_member);
    RC_ASSERT(slots.clients() == clients && clients <= limits.max_client);
    for (const auto& [a, v] : by_addr) RC_ASSERT(slots.clients_from(a) == v && v <= limits.max_client_per_address);
  }
}

TEST(RecvBudget, ConnectionCapRefusesTheChargeThatWouldCrossIt) {
  RecvBudget budget(RecvCaps{100, 1000});
  EXPECT_EQ(budget.charge(PeerClass::kClient, 0, 60), RecvCharge::kOk);
  EXPECT_EQ(budget.charge(PeerClass::kClient, 60, 40), RecvCharge::kOk);  // exactly at the cap
  EXPECT_EQ(budget.charge(PeerClass::kClient, 100, 1), RecvCharge::kOverConnectionCap);
  EXPECT_EQ(budget.client_held(), 100u);
  budget.credit(PeerClass::kClient, 100);
  EXPECT_EQ(budget.client_held(), 0u);
}

TEST(RecvBudget, ClientTotalCapSparesMembers) {
  RecvBudget budget(RecvCaps{100, 150});
  EXPECT_EQ(budget.charge(PeerClass::kClient, 0, 100), RecvCharge::kOk);
  EXPECT_EQ(budget.charge(PeerClass::kClient, 0, 60), RecvCharge::kOverClientTotalCap);
  // Clients have filled what they may hold in all; a member's frames still get through.
  EXPECT_EQ(budget.charge(PeerClass::kMember, 0, 100), RecvCharge::kOk);
  EXPECT_EQ(budget.charge(PeerClass::kMember, 100, 1), RecvCharge::kOverConnectionCap);
  EXPECT_EQ(budget.total_held(), 200u);
  budget.credit(PeerClass::kMember, 100);
  EXPECT_EQ(budget.charge(PeerClass::kClient, 0, 50), RecvCharge::kOk);
  EXPECT_EQ(budget.client_held(), 150u);
}

TEST(SendBudget, ConnectionCapRefusesTheMessageThatWouldCrossIt) {
  SendBudget budget(SendCaps{100, 1000});
  size_t conn = 0;
  EXPECT_EQ(budget.charge(conn, 60), SendCharge::kOk);
  EXPECT_EQ(budget.charge(conn, 40), SendCharge::kOk);  // exactly at the cap
  EXPECT_EQ(budget.charge(conn, 1), SendCharge::kOverConnectionCap);
  EXPECT_EQ(conn, 100u);  // a refusal charges nothing
  EXPECT_EQ(budget.client_held(), 100u);
  budget.credit(conn, 60);
  EXPECT_EQ(budget.charge(conn, 60), SendCharge::kOk);  // acknowledged bytes make room again
  EXPECT_EQ(budget.charge(conn, 0), SendCharge::kOk);
  EXPECT_EQ(budget.charge(conn, SIZE_MAX), SendCharge::kOverConnectionCap);  // no wrap-around
}

TEST(SendBudget, ClientTotalCapRefusesEveryConnectionOnceReached) {
  SendBudget budget(SendCaps{100, 150});
  size_t a = 0, b = 0;
  EXPECT_EQ(budget.charge(a, 100), SendCharge::kOk);
  EXPECT_EQ(budget.charge(b, 60), SendCharge::kOverClientTotalCap);
  EXPECT_EQ(budget.charge(b, 50), SendCharge::kOk);
  EXPECT_EQ(budget.client_held(), 150u);
  budget.credit(a, 100);
  EXPECT_EQ(budget.charge(b, 50), SendCharge::kOk);
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 100u);
}

TEST(SendBudget, RefusalTextsNameTheLimit) {
  const SendCaps caps{32, 256};
  EXPECT_EQ(send_limit_text(SendCharge::kOverConnectionCap, caps),
            "32 bytes of unacknowledged answers per connection");
  EXPECT_EQ(send_limit_text(SendCharge::kOverClientTotalCap, caps),
            "256 bytes of unacknowledged answers across all client connections");
}

// Against a model: any sequence of charges and credits over a few connections keeps each
// connection within its cap, the total within the process cap, and both equal to what was
// charged minus what was credited; a charge is refused exactly when it would cross a cap.
RC_GTEST_PROP(SendBudget, TalliesMatchAModelAndStayWithinCaps, ()) {
  const SendCaps caps{*rc::gen::inRange<size_t>(0, 64), *rc::gen::inRange<size_t>(0, 160)};
  SendBudget budget(caps);
  std::vector<size_t> held(3, 0);
  std::vector<size_t> model(3, 0);
  const auto steps = *rc::gen::inRange(0, 200);
  for (int i = 0; i < steps; ++i) {
    const auto c = *rc::gen::inRange<size_t>(0, held.size());
    const size_t total = model[0] + model[1] + model[2];
    if (*rc::gen::arbitrary<bool>() && model[c] > 0) {
      const auto bytes = *rc::gen::inRange<size_t>(1, model[c] + 1);
      budget.credit(held[c], bytes);
      model[c] -= bytes;
    } else {
      const auto bytes = *rc::gen::inRange<size_t>(0, 80);
      const SendCharge expected = bytes == 0                                  ? SendCharge::kOk
                                  : model[c] + bytes > caps.per_connection_bytes ? SendCharge::kOverConnectionCap
                                  : total + bytes > caps.client_total_bytes      ? SendCharge::kOverClientTotalCap
                                                                                 : SendCharge::kOk;
      RC_ASSERT(budget.charge(held[c], bytes) == expected);
      if (expected == SendCharge::kOk) model[c] += bytes;
    }
    RC_ASSERT(held == model);
    RC_ASSERT(budget.client_held() == model[0] + model[1] + model[2]);
    for (size_t m : model) RC_ASSERT(m <= caps.per_connection_bytes);
    RC_ASSERT(budget.client_held() <= caps.client_total_bytes);
  }
}

}  // namespace
}  // namespace aspen::transport::internal
