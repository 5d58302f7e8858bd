// BarrierManager: a reusable double barrier. N parties enter; when the N-th arrives all are
// released together; then each leaves, and when the last has left the barrier resets for the
// next round (generation + 1).
//
//   BarrierManager b(store, "stage-2", /*parties=*/4);
//   auto t = b.enter("worker-1");
//   b.wait(*t, deadline_ms, waiter);   // or poll b.is_released(*t)
//   ... work ...
//   b.leave("worker-1");
//
// State: "__coord:barrier:<name>" = {parties, generation, phase, members}, changed only by
// bounded CAS (update_key), so the release is one state transition done by exactly one enter()
// (its ticket says did_release). Leaving before the release withdraws the party. Parties are
// not leased: a party that crashes before the release keeps the others waiting until someone
// calls leave() for it.
#pragma once

#include <string>
#include <vector>

#include "coord/coord_common.h"

namespace aspen::coord {

struct BarrierState {
  uint32_t parties = 0;
  uint64_t generation = 0;
  bool is_released = false;
  std::vector<std::string> members;
};

struct BarrierTicket {
  uint64_t generation = 0;
  bool did_release = false;  // this enter() was the N-th arrival
};

// Pure transitions. enter: Unavailable while the previous round is still leaving.
Result<std::pair<BarrierState, BarrierTicket>> barrier_enter(const std::optional<BarrierState>& state,
                                                              uint32_t parties, std::string_view party);
Result<BarrierState> barrier_leave(const BarrierState& state, std::string_view party);
bool barrier_is_released(const BarrierState& state, const BarrierTicket& ticket);

class BarrierManager {
 public:
  BarrierManager(kv::KeyValueStore& store, std::string name, uint32_t parties)
      : store_(store), name_(std::move(name)), parties_(parties) {}

  Result<BarrierTicket> enter(std::string_view party);
  Result<bool> is_released(const BarrierTicket& ticket);
  Status wait(const BarrierTicket& ticket, uint64_t deadline_ms, const Waiter& waiter);
  // Before the release: withdraw. After: leave; the last one out resets the barrier.
  Status leave(std::string_view party);
  Result<BarrierState> state();

 private:
  Status check() const;
  kv::KeyValueStore& store_;
  std::string name_;
  uint32_t parties_;
};

}  // namespace aspen::coord
