// Leader duties: the writes a leader makes to keep the cluster's own records current,
// decided without I/O. Every leader_duty_interval_ms, and while none of its duty writes is
// in flight, a leader makes sure the cluster has an id (a CAS that only succeeds if none
// exists, so two leaders cannot both set one; with the root public key of `cluster init` in
// the same transaction, so a cluster never exists without the key that verifies its tokens) and that member records name the addresses
// members announce (its own, then any member that came back elsewhere).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "aspen/kv.pb.h"
#include "node/knobs.h"
#include "node/peer_registry.h"

namespace aspen::node {

struct DutyInput {
  bool is_leader = false;
  bool is_duty_in_flight = false;
  uint64_t now_ms = 0;
  uint64_t last_duty_ms = 0;
  std::string cluster_id;                  // "" while the cluster has none
  std::string fresh_cluster_id;            // drawn by the caller, used if a new id is needed
  std::string root_key;                    // the root public key `cluster init` brought ("" if none)
  std::string own_record_key;
  std::string own_record_wanted;           // encode_node_record of this node as it is now
  std::optional<std::string> own_record;   // as stored (nullopt: none)
  std::optional<PeerInfo> outdated;        // PeerRegistry::outdated_record()
};

struct Duty {
  kvpb::Command command;
  std::string what;  // for the log
  bool is_for_another_member = false;  // rewrites a record of a member that moved (worth an info log)
};

// The duty to write now, if any; the caller then records now_ms as last_duty_ms.
std::optional<Duty> next_leader_duty(const DutyInput& in, const Knobs& knobs);
// Whether the duty interval allows a duty now (the caller consults it before gathering the
// input, which needs a store read).
bool is_duty_due(const DutyInput& in, const Knobs& knobs);

}  // namespace aspen::node
