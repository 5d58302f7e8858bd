// aspen-cli coordination commands: registration and the helpers the groups share.
#include "cmd_coord.h"

#include <chrono>
#include <thread>

#include <unistd.h>

#include "core/limits.h"

namespace aspen::cli {

uint64_t steady_now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t wall_now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

coord::Waiter real_waiter() {
  coord::Waiter w;
  w.now_ms = steady_now_ms;
  w.sleep_ms = [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  w.jitter_seed = wall_now_ms() ^ static_cast<uint64_t>(::getpid());
  return w;
}

void add_wait_option(CLI::App* cmd, uint64_t& wait_ms, const std::string& what) {
  cmd->add_option("--wait-ms", wait_ms, "How long to keep trying " + what + " (0: one attempt)")
      ->capture_default_str();
}

void add_ttl_option(CLI::App* cmd, uint64_t& ttl_s, const std::string& what) {
  cmd->add_option("--ttl-s", ttl_s,
                  what + " (seconds, at least " + std::to_string(limits::kMinLeaseTtlMs / 1000) +
                      "); a crashed holder loses it when this lapses")
      ->capture_default_str()
      ->check(CLI::Range(limits::kMinLeaseTtlMs / 1000, limits::kMaxLeaseTtlMs / 1000));
}

bool is_wait_expired(const Error& error, uint64_t deadline_ms) {
  return error.code() == ErrorCode::kTimeout && steady_now_ms() >= deadline_ms;
}

void add_coord_commands(CLI::App& app, Context& ctx, Action& action) {
  add_counter_commands(app, ctx, action);
  add_sequence_commands(app, ctx, action);
  add_ratelimit_commands(app, ctx, action);
  add_queue_commands(app, ctx, action);
  add_lock_commands(app, ctx, action);
  add_election_commands(app, ctx, action);
  add_semaphore_commands(app, ctx, action);
  add_rwlock_commands(app, ctx, action);
  add_barrier_commands(app, ctx, action);
  add_service_commands(app, ctx, action);
}

}  // namespace aspen::cli
