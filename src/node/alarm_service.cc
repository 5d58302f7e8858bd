#include "node/alarm_service.h"

#include <fmt/format.h>

#include "core/encoding.h"
#include "core/log.h"
#include "kv/alarms.h"
#include "kv/commands.h"
#include "node/disk_space.h"
#include "node/storage_alarm.h"

namespace aspen::node::internal {

namespace {


}  // namespace

AlarmService::AlarmService(NodeEnv& env, CorePort& port, ClientService& clients, rpc::HandlerRegistry& handlers)
    : env_(env), port_(port), clients_(clients), handlers_(handlers) {}

void AlarmService::register_handlers() {
  using R = cpb::Request;
  auto bind = [this](void (AlarmService::*fn)(const cpb::Request&, Reply)) {
    return [this, fn](const cpb::Request& req, Reply reply) { (this->*fn)(req, std::move(reply)); };
  };
  handlers_.add(R::kAlarmList, "alarm_list", bind(&AlarmService::handle_list));
  handlers_.add(R::kAlarmDisarm, "alarm_disarm", bind(&AlarmService::handle_disarm));
  handlers_.add(R::kAlarmRaise, "alarm_raise", bind(&AlarmService::handle_raise));
}

void AlarmService::on_tick() {
  const uint64_t now = NodeEnv::steady_ms();
  if (now < last_check_ms_ + env_.config.knobs.storage_check_interval_ms) return;
  last_check_ms_ = now;
  check_storage();
}

void AlarmService::check_storage() {
  StorageCheckInput in;
  in.self = env_.config.node_id;
  in.is_member = env_.peers.members().contains(in.self);
  in.is_raise_in_flight = is_raise_in_flight_;
  in.now_ms = env_.now_ms();
  in.used_bytes = env_.store->state_size_bytes();
  in.quota_bytes = env_.config.storage_quota_bytes;
  in.disk_free_bytes = disk_free_bytes(env_.config.data_dir);
  in.min_free_bytes = env_.config.storage_min_free_bytes;
  env_.counters.storage_used_bytes.store(in.used_bytes, std::memory_order_relaxed);
  env_.counters.storage_disk_free_bytes.store(in.disk_free_bytes, std::memory_order_relaxed);
  auto kept = env_.store->range(kv::alarm_range());
  if (!kept) return;  // unreadable now; the next check tries again
  const auto alarms = kv::decode_alarms(*kept);
  env_.counters.storage_alarms_active.store(alarms.size(), std::memory_order_relaxed);
  for (const auto& a : alarms) in.has_own_alarm = in.has_own_alarm || a.member_id() == in.self;
  auto alarm = storage_alarm_to_raise(in);
  if (!alarm) return;
  ASPEN_LOG_WARN("node {}: storage past its limit (data {}, quota {}; disk free {}, reserve {}): raising the "
                 "cluster's storage alarm; writes that add data will be refused until an operator frees space and "
                 "runs `aspen-cli cluster alarm disarm`",
                 in.self, format_mib(in.used_bytes), format_mib(in.quota_bytes), format_mib(in.disk_free_bytes), format_mib(in.min_free_bytes));
  cpb::Request req;
  *req.mutable_alarm_raise()->mutable_alarm() = std::move(*alarm);
  is_raise_in_flight_ = true;
  handle_raise(req, [this](cpb::Response resp) {
    is_raise_in_flight_ = false;
    if (resp.has_error()) {
      // No leader, or it changed: the next check raises it again.
      ASPEN_LOG_DEBUG("node {}: raising the storage alarm failed: {}", env_.config.node_id,
                      resp.error().message());
      return;
    }
    env_.counters.storage_alarms_raised.fetch_add(1, std::memory_order_relaxed);
  });
}

void AlarmService::handle_list(const cpb::Request&, Reply reply) {
  auto kept = env_.store->range(kv::alarm_range());
  if (!kept) return reply(error_reply(kept.error()));
  cpb::Response resp;
  auto* out = resp.mutable_alarm_list();  // set even when empty: the answer is "none"
  for (auto& a : kv::decode_alarms(*kept)) *out->add_alarms() = std::move(a);
  reply(std::move(resp));
}

void AlarmService::handle_raise(const cpb::Request& req, Reply reply) {
  // Only members get here (ClientService::check_access lets them through; request_auth
  // refuses every token), and only for a member: an alarm names the member it binds.
  const auto& alarm = req.alarm_raise().alarm();
  if (!env_.peers.members().contains(alarm.member_id())) {
    return reply(error_reply(Error(ErrorCode::kInvalidArgument,
                                   fmt::format("node {} is not a member; only a member's alarm binds the cluster",
                                               alarm.member_id()))));
  }
  if (!port_.core()->is_leader()) return clients_.forward_to_leader(req, std::move(reply));
  kvpb::Command cmd;
  cmd.mutable_put()->set_key(kv::alarm_key(alarm.member_id()));
  cmd.mutable_put()->set_value(alarm.SerializeAsString());
  port_.submit_write(std::move(cmd), [this, reply, alarm](const Response& r) {
    if (!r.write) return reply(error_reply(r.write.error()));
    ASPEN_LOG_WARN("node {}: storage alarm raised for member {}: {}", env_.config.node_id, alarm.member_id(),
                   kv::alarm_refusal(alarm).message());
    cpb::Response resp;
    resp.mutable_alarm_raise();
    reply(std::move(resp));
  });
}

void AlarmService::handle_disarm(const cpb::Request& req, Reply reply) {
  if (!port_.core()->is_leader()) return clients_.forward_to_leader(req, std::move(reply));
  auto kept = env_.store->range(kv::alarm_range());
  if (!kept) return reply(error_reply(kept.error()));
  const uint64_t member = req.alarm_disarm().member_id();
  std::vector<kvpb::StorageAlarm> disarmed;
  kvpb::Command cmd;
  for (auto& a : kv::decode_alarms(*kept)) {
    if (member != 0 && a.member_id() != member) continue;
    cmd.mutable_delete_multi()->add_keys(kv::alarm_key(a.member_id()));
    disarmed.push_back(std::move(a));
  }
  if (disarmed.empty()) {
    cpb::Response resp;
    resp.mutable_alarm_disarm();  // nothing was raised: nothing to do, and that is the answer
    return reply(std::move(resp));
  }
  port_.submit_write(std::move(cmd), [this, reply, disarmed = std::move(disarmed)](const Response& r) {
    if (!r.write) return reply(error_reply(r.write.error()));
    cpb::Response resp;
    for (const auto& a : disarmed) {
      ASPEN_LOG_WARN("node {}: storage alarm of member {} disarmed by an operator", env_.config.node_id,
                     a.member_id());
      *resp.mutable_alarm_disarm()->add_disarmed() = a;
    }
    reply(std::move(resp));
  });
}

}  // namespace aspen::node::internal
