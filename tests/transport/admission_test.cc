// The endpoint's admission and receive-memory bookkeeping (transport/internal/admission.h),
// as pure logic: member and client slots, the per-address cap, partial-frame caps.
#include "transport/internal/admission.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>

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

}  // namespace
}  // namespace aspen::transport::internal
