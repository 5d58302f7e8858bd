// aspen-cli coordination commands (counter, lock, election, queue, semaphore, rwlock, barrier,
// ratelimit, sequence, service): shared helpers of the cmd_coord_*.cc files.
//
// Every command is the src/coord C++ API running over client::Client, which is a
// kv::KeyValueStore speaking the client protocol: the CLI adds no protocol of its own. Each
// invocation is one short-lived process, so state that a primitive keeps in memory (a lock
// handle, a queue receipt) is printed for the operator and passed back on the next call, or
// looked up again from the store (a lock's holder record carries its token and lease).
#pragma once

#include <cstdint>
#include <memory>

#include "cli.h"
#include "coord/coord_common.h"

namespace aspen::cli {

// Milliseconds on this host's steady clock: deadlines of blocking waits.
uint64_t steady_now_ms();
// Milliseconds since the Unix epoch: the shared clock of queues and rate limiters, whose
// decisions compare times written by different processes (hosts must keep clocks in sync).
uint64_t wall_now_ms();
// Waits on the steady clock with real sleeps.
coord::Waiter real_waiter();

// A --wait-ms option: 0 means one attempt. `what` completes "How long to keep trying ...".
void add_wait_option(CLI::App* cmd, uint64_t& wait_ms, const std::string& what);
// A --ttl-s option (seconds, as 'lease grant' takes them), defaulting to `default_s`.
void add_ttl_option(CLI::App* cmd, uint64_t& ttl_s, const std::string& what);

// True when `error` is a blocking wait that ran out of time (the wait's own deadline, not a
// cluster timeout): the operation said "not yet", which is exit 1 rather than 3.
bool is_wait_expired(const Error& error, uint64_t deadline_ms);

// Makes `cmd` set the action to run(ctx, *args) once parsing succeeded (the options write
// into *args while parsing).
template <typename Args>
void set_action(CLI::App* cmd, Context& ctx, Action& action, std::shared_ptr<Args> args,
                int (*run)(const Context&, const Args&)) {
  cmd->callback([&ctx, &action, args, run] { action = [&ctx, args, run] { return run(ctx, *args); }; });
}

void add_counter_commands(CLI::App& app, Context& ctx, Action& action);
void add_sequence_commands(CLI::App& app, Context& ctx, Action& action);
void add_ratelimit_commands(CLI::App& app, Context& ctx, Action& action);
void add_queue_commands(CLI::App& app, Context& ctx, Action& action);
void add_lock_commands(CLI::App& app, Context& ctx, Action& action);
void add_election_commands(CLI::App& app, Context& ctx, Action& action);
void add_semaphore_commands(CLI::App& app, Context& ctx, Action& action);
void add_rwlock_commands(CLI::App& app, Context& ctx, Action& action);
void add_barrier_commands(CLI::App& app, Context& ctx, Action& action);
void add_service_commands(CLI::App& app, Context& ctx, Action& action);

}  // namespace aspen::cli
