#include "node/leader_duties.h"

#include <fmt/format.h>

#include "node/request_auth.h"

namespace aspen::node {

bool is_duty_due(const DutyInput& in, const Knobs& knobs) {
  return in.is_leader && !in.is_duty_in_flight && in.now_ms >= in.last_duty_ms + knobs.leader_duty_interval_ms;
}

std::optional<Duty> next_leader_duty(const DutyInput& in, const Knobs& knobs) {
  if (!is_duty_due(in, knobs)) return std::nullopt;
  Duty d;
  if (in.cluster_id.empty() && !in.root_key.empty()) {
    auto* txn = d.command.mutable_txn();
    auto* absent = txn->add_compares();
    absent->set_key(std::string(kClusterIdKey));
    absent->set_target(kvpb::Compare::TARGET_VERSION);
    absent->set_op(kvpb::Compare::OP_EQUAL);
    absent->set_number(0);
    auto* id = txn->add_success()->mutable_put();
    id->set_key(std::string(kClusterIdKey));
    id->set_value(in.fresh_cluster_id);
    auto* root = txn->add_success()->mutable_put();
    root->set_key(std::string(kAuthRootKeyKey));
    root->set_value(in.root_key);
    d.what = "set the cluster id and its root key";
    return d;
  }
  if (in.cluster_id.empty()) {
    auto* cas = d.command.mutable_cas();
    cas->set_key(std::string(kClusterIdKey));
    cas->set_expect_absent(true);
    cas->set_new_value(in.fresh_cluster_id);
    d.what = "set the cluster id";
    return d;
  }
  if (in.own_record != in.own_record_wanted) {
    d.command.mutable_put()->set_key(in.own_record_key);
    d.command.mutable_put()->set_value(in.own_record_wanted);
    d.what = "update this node's record";
    return d;
  }
  // Its own record is current; a member that came back on another address (its greeting
  // said so) gets its record rewritten too.
  if (!in.outdated) return std::nullopt;
  d.command.mutable_put()->set_key(node_record_key(in.outdated->id));
  d.command.mutable_put()->set_value(encode_node_record(in.outdated->id, in.outdated->key, in.outdated->addrs));
  d.is_for_another_member = true;
  d.what = in.outdated->addrs.empty()
               ? fmt::format("update node {}'s record", in.outdated->id)
               : fmt::format("node {} now announces {}; updating its record", in.outdated->id, in.outdated->addrs.front().to_string());
  return d;
}

}  // namespace aspen::node
