// Linearizability checker for client-observed histories of the Aspen KV store.
//
// Pure code with no dependency on the rest of Aspen, so that it serves three
// users: the simulator (sim/) records every client operation (invoke time,
// return time and observed outcome) and hands the whole history to
// check_linearizable() at the end of a run; the chaos harness against real
// processes (scripts/chaos.sh) records histories to a file that
// tools/aspen-lincheck reads (lincheck/history_file.h, docs/reliability.md);
// anyone may check their own histories the same way. The checker decides whether some total order of the operations
// exists that (a) respects real time (an op that returned strictly before
// another was invoked comes first) and (b) is a legal sequential execution of
// one register per key. Keys are independent registers, so the history is
// partitioned by key and each sub-history is searched separately (Wing & Gong
// depth-first search with Lowe's memoization of (linearized set, state)).
//
// Typical use in a simulation test:
//
//   CheckResult r = check_linearizable(history);
//   if (!r.is_linearizable) FAIL() << r.failing_key << "\n" << r.explanation;
//   if (r.is_exhausted) LOG_WARNING(...);  // inconclusive, not a failure
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace aspen::lincheck {

// kDelete makes the key absent; it is a write of "no value". The numbering is
// relied on by tests that draw kinds at random: kRead..kCas first.
enum class OpKind : uint8_t { kRead, kWrite, kCas, kDelete };

// One client operation on one key of a register-per-key KV store, as observed
// by the client.
struct Operation {
  uint64_t client_id = 0;
  OpKind kind = OpKind::kRead;
  std::string key;
  std::string value;                       // kWrite: value written; kCas: new value; kDelete: unused
  std::optional<std::string> expected;     // kCas: expected current value (nullopt = expects key absent)
  std::optional<std::string> read_result;  // kRead: observed value (nullopt = key absent)
  bool cas_succeeded = false;              // kCas: outcome observed by the client
  // The client never learned the outcome (timeout/crash): the op may or may not
  // have taken effect, its return time is treated as +infinity and for kCas
  // its outcome is unknown. Indeterminate reads carry no information and are
  // dropped.
  bool is_indeterminate = false;
  uint64_t invoke_time = 0;  // any monotonic unit (simulated ms or a logical step counter)
  uint64_t return_time = 0;  // ignored when is_indeterminate; must be >= invoke_time otherwise
};

struct CheckResult {
  // false only when a violation was proven. When the budget runs out without a
  // verdict this stays true and is_exhausted is set, so that an inconclusive
  // search is never mistaken for a bug.
  bool is_linearizable = true;
  bool is_exhausted = false;  // search budget ran out before a verdict (inconclusive, not a failure)
  std::string failing_key;    // the key whose sub-history is not linearizable
  // Human-readable: the failing key's ops (client, kind, values, times) in
  // invoke order, plus the longest linearizable prefix the search found and
  // the register value after it. When only exhausted, names the exhausted
  // key(s).
  std::string explanation;
  uint64_t states_explored = 0;  // total memoized search states over all keys (for diagnostics)
};

// Keys start absent. budget_states bounds the search states explored per key.
// Keys are checked in lexicographic order and the first non-linearizable key
// is reported. Throws std::invalid_argument if a determinate operation has
// return_time < invoke_time.
CheckResult check_linearizable(const std::vector<Operation>& history,
                               uint64_t budget_states = 10'000'000);

// One-line rendering of an operation, e.g.
// `client 3 cas(expect <absent> -> "v1") = ok [10, 17]`; used in explanations.
std::string describe_operation(const Operation& op);

}  // namespace aspen::lincheck
