// aspen-chaos-client's coordination workloads (docs/reliability.md): clients use a lock with
// fencing tokens, a counter and a queue of src/coord over the client library while the
// nemesis runs, recording a history (lincheck/coord_checks.h); after healing, a final read
// of the counter and a drain of the queue are appended and the history is checked.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "client/client.h"

namespace aspen::chaos {

struct CoordSettings {
  std::string history_path;
  std::string name_prefix = "chaos/coord";  // the lock, counter and queue are named under it
  std::string kinds = "lock,counter,queue";  // clients are dealt to these in turn
  uint32_t clients = 6;
  uint32_t duration_s = 60;
  uint32_t timeout_s = 60;  // check: how long the queue drain and final read may take
  uint64_t seed = 1;
};

using Connect = std::function<Result<std::unique_ptr<client::Client>>()>;

// Exit codes: 0 done, 64 bad usage or the history cannot be written.
int run_coord_workload(const CoordSettings& s, const Connect& connect, const std::atomic<bool>& should_stop);
// Final read and drain, then the checks: 0 no violation, 1 violations (listed), 2 the cluster
// could not be read after healing, 64/65 the history cannot be read.
int check_coord_workload(const CoordSettings& s, const Connect& connect, const std::atomic<bool>& should_stop);

}  // namespace aspen::chaos
