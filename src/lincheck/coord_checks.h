// Checkers for the coordination workloads of the chaos harness (aspen-chaos-client coord,
// docs/reliability.md): a lock with fencing tokens, a counter, a queue. Pure: they read
// histories recorded by real clients, with invoke and complete times in one monotonic unit
// (microseconds) and each outcome ok / fail (surely not applied) / unknown (may have applied).
//
// What each checks, and why the check is sound despite unknown outcomes:
// - Lock: a holding whose release succeeded held the lock from its acquire's completion to
//   its release's invocation (the holder's key existed and was first in line all along), so
//   two such holdings never overlap. A holding whose release failed or is unknown may have
//   lost the lock earlier (TTL) and is only checked for its token. Fencing tokens are
//   distinct, and strictly increase in real-time order: an acquire invoked after another
//   completed gets a larger token.
// - Counter (increments by 1, each returning the new value): no value is returned twice;
//   an increment invoked after another completed returns a larger value; a value is never
//   larger than the increments invoked before it completed (ok or unknown); the final value
//   read after healing is at least every ok increment and at most ok + unknown ones (exactly
//   the ok count when nothing is unknown): nothing applied twice, nothing acknowledged lost.
// - Queue (unique payloads): every payload whose enqueue succeeded is delivered (during the
//   run or in the drain after healing): no loss; every delivered payload was enqueued (ok or
//   unknown); no delivery of a message (its sequence number) is invoked after an ack of that
//   message succeeded. A payload enqueued twice (a retried enqueue) is counted, not a violation.
//
// History file lines (one per operation; `#` comments and blank lines ignored):
//   lock    <process> <token> <acquire invoke> <acquire complete> <release invoke> <release outcome>
//   inc     <process> <value|-> <invoke> <complete|-> <outcome>
//   final   <value>
//   enq     <process> <payload> <seq|-> <invoke> <complete|-> <outcome>
//   deliver <process> <payload> <seq> <invoke> <complete>
//   ack     <process> <payload> <seq> <invoke> <complete|-> <outcome>
// Payloads are tokens without spaces (the workload makes them). A line longer than
// kMaxCoordLineBytes or of another shape is refused with its line number.
#pragma once

#include <cstdint>
#include <expected>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "lincheck/history_file.h"

namespace aspen::lincheck {

// A history line is a few numbers and one short token; anything longer is not ours.
inline constexpr size_t kMaxCoordLineBytes = 4096;
// At most this many violations are listed per check (the count is always exact).
inline constexpr size_t kMaxListedViolations = 20;

struct LockHolding {
  uint64_t process = 0;
  uint64_t token = 0;
  uint64_t acquire_invoke = 0;
  uint64_t acquire_complete = 0;
  uint64_t release_invoke = 0;
  Outcome release = Outcome::kUnknown;  // ok: it held the lock until release_invoke
};

struct CounterIncrement {
  uint64_t process = 0;
  uint64_t invoke = 0;
  uint64_t complete = 0;  // meaningless when unknown
  Outcome outcome = Outcome::kUnknown;
  int64_t value = 0;  // the value it returned (ok only)
};

struct QueueOp {
  enum class Kind : uint8_t { kEnqueue, kDeliver, kAck };
  Kind kind = Kind::kEnqueue;
  uint64_t process = 0;
  std::string payload;
  uint64_t seq = 0;  // the queue's sequence number of the message (0: unknown enqueue)
  uint64_t invoke = 0;
  uint64_t complete = 0;
  Outcome outcome = Outcome::kUnknown;  // a delivery is always ok
};

struct CoordHistory {
  std::vector<LockHolding> holdings;
  std::vector<CounterIncrement> increments;
  std::optional<int64_t> counter_final;
  std::vector<QueueOp> queue;
};

struct CoordReport {
  uint64_t violations = 0;
  std::vector<std::string> listed;  // the first kMaxListedViolations, one sentence each
  std::vector<std::string> summary;  // one line per workload present: what was checked
  void add(std::string v);
};

void check_lock(const std::vector<LockHolding>& holdings, CoordReport& report);
void check_counter(const std::vector<CounterIncrement>& increments, std::optional<int64_t> final_value,
                   CoordReport& report);
void check_queue(const std::vector<QueueOp>& ops, CoordReport& report);
// Every check whose workload has lines in the history.
CoordReport check_coord(const CoordHistory& h);

std::expected<CoordHistory, std::string> read_coord_history(std::istream& in);
std::string format_holding(const LockHolding& h);
std::string format_increment(const CounterIncrement& i);
std::string format_queue_op(const QueueOp& op);

}  // namespace aspen::lincheck
