// LeaderElection: one leader at a time per election name, with a fencing token.
//
//   LeaderElection e(store, "scheduler", "node-3", /*ttl_ms=*/5000);
//   e.on_leadership_lost([](const LeaderInfo& was) { stop_leading(was.fencing_token); });
//   if (*e.campaign("10.0.0.3:7000")) lead();
//   every tick: e.tick(now_ms);   // renews the lease when due; a failed renewal calls the callback
//   e.resign();
//
// State: "__coord:election:<name>" = {candidate, value, lease}, attached to the leader's lease.
// The fencing token is the key's create_revision, strictly increasing across terms. Losing the
// lease (a missed renewal, a partition) deletes the key: leadership is gone, and tick()/renew()
// report it and invoke the callback exactly once per term. Renewal is caller-driven (tick)
// so the object has no thread or clock of its own.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "coord/coord_common.h"

namespace aspen::coord {

struct LeaderInfo {
  std::string candidate;
  std::string value;  // what the leader advertises (an address, say)
  uint64_t fencing_token = 0;
  uint64_t lease_id = 0;
};

// Pure: is a renewal due? Renew after a third of the TTL so two renewals can fail in time.
bool is_renewal_due(uint64_t last_renewal_ms, uint64_t ttl_ms, uint64_t now_ms);

class LeaderElection {
 public:
  LeaderElection(kv::KeyValueStore& store, std::string name, std::string candidate, uint64_t ttl_ms)
      : store_(store), name_(std::move(name)), candidate_(std::move(candidate)), ttl_ms_(ttl_ms) {}

  // One attempt; true when this candidate is (now) the leader. Campaigning while already
  // leader is a no-op returning true.
  Result<bool> campaign(std::string_view value, uint64_t now_ms);
  // Campaigns until elected or the deadline passes (Timeout).
  Status campaign_until(std::string_view value, uint64_t deadline_ms, const Waiter& waiter);
  // Keepalive now. false (and the callback) when leadership was lost.
  Result<bool> renew(uint64_t now_ms);
  // Renews if due. Returns whether this candidate is still leader.
  Result<bool> tick(uint64_t now_ms);
  // Gives up leadership (no-op when not leader).
  Status resign();
  // The current leader of this election, as any observer sees it.
  Result<std::optional<LeaderInfo>> leader();
  // Observes the election: waits until its leader differs from `known` (another leader, a
  // new term of the same candidate, or none) and returns the new one; Timeout at deadline_ms.
  // Woken by a watch on the election's key where the store reports changes, else polls.
  Result<std::optional<LeaderInfo>> wait_for_leader_change(const std::optional<LeaderInfo>& known,
                                                          uint64_t deadline_ms, const Waiter& waiter);

  bool is_leader() const { return term_.has_value(); }
  uint64_t fencing_token() const { return term_ ? term_->fencing_token : 0; }
  void on_leadership_lost(std::function<void(const LeaderInfo&)> callback) { on_lost_ = std::move(callback); }

 private:
  Status check_args() const;
  void lose();

  kv::KeyValueStore& store_;
  std::string name_;
  std::string candidate_;
  uint64_t ttl_ms_;
  std::optional<LeaderInfo> term_;  // set while leader
  uint64_t pending_lease_id_ = 0;   // granted for campaigning, not yet used to win
  uint64_t last_renewal_ms_ = 0;
  std::function<void(const LeaderInfo&)> on_lost_;
};

}  // namespace aspen::coord
