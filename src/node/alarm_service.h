// AlarmService: the storage alarm on the client protocol, and each node's watch over its own
// storage; one component of the shell.
//
// Every storage_check_interval_ms the node measures its store and its disk and, past a
// limit, raises its alarm (when: storage_alarm_to_raise, node/storage_alarm.h) through the
// leader. AlarmList is answered by any member from its applied state; AlarmDisarm and
// AlarmRaise need the leader (followers relay them). While any alarm is kept, the leader
// refuses writes that add data (refusal_for; kv/alarms.h says which).
//
// Threads: the loop only.
#pragma once

#include <optional>

#include "node/client_service.h"
#include "node/internal/node_env.h"
#include "rpc/handler_registry.h"

namespace aspen::node::internal {

class AlarmService {
 public:
  using Reply = rpc::Reply;
  AlarmService(NodeEnv& env, CorePort& port, ClientService& clients, rpc::HandlerRegistry& handlers);
  AlarmService(const AlarmService&) = delete;
  AlarmService& operator=(const AlarmService&) = delete;

  void register_handlers();
  // Every tick: a due storage check.
  void on_tick();

 private:
  void handle_list(const cpb::Request& req, Reply reply);
  void handle_disarm(const cpb::Request& req, Reply reply);
  void handle_raise(const cpb::Request& req, Reply reply);
  void check_storage();
  cpb::Response error_reply(const Error& e) const { return clients_.error_reply(e); }

  NodeEnv& env_;
  CorePort& port_;
  ClientService& clients_;
  rpc::HandlerRegistry& handlers_;  // [start]
  uint64_t last_check_ms_ = 0;      // [loop]
  bool is_raise_in_flight_ = false; // [loop]
};

}  // namespace aspen::node::internal
