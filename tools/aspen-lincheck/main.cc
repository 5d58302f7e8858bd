// aspen-lincheck: checks a client history file for linearizability (one register per key),
// with the checker the simulator uses (lincheck/linearizability.h). The file format is in
// lincheck/history_file.h and docs/reliability.md.
//
//   aspen-lincheck run/history.txt
//   aspen-chaos-client ... | aspen-lincheck -
//
// Exit codes: 0 linearizable, 1 not linearizable (the failing key's operations are printed),
// 2 inconclusive (the search budget ran out), 64 bad usage, 65 a malformed history, 66 the
// file cannot be read.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <set>
#include <string>

#include "lincheck/history_file.h"
#include "lincheck/linearizability.h"

namespace {

constexpr int kExitViolation = 1;
constexpr int kExitInconclusive = 2;
constexpr int kExitUsage = 64;
constexpr int kExitBadHistory = 65;
constexpr int kExitNoInput = 66;

}  // namespace

int main(int argc, char** argv) {
  using namespace aspen::lincheck;
  CLI::App app{"aspen-lincheck: is a client history of the Aspen KV store linearizable?"};
  std::string path;
  uint64_t budget_states = 10'000'000;
  bool is_quiet = false;
  app.add_option("history", path, "history file (one operation per line; - for standard input)")->required();
  app.add_option("--budget-states", budget_states, "search states per key before the check is inconclusive");
  app.add_flag("-q,--quiet", is_quiet, "print only the verdict line");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return e.get_exit_code() == 0 ? rc : kExitUsage;
  }

  std::expected<History, std::string> history;
  if (path == "-") {
    history = read_history(std::cin);
  } else {
    std::ifstream in(path);
    if (!in) {
      fmt::print(stderr, "aspen-lincheck: cannot read {}\n", path);
      return kExitNoInput;
    }
    history = read_history(in);
  }
  if (!history) {
    fmt::print(stderr, "aspen-lincheck: {}: {}\n", path, history.error());
    return kExitBadHistory;
  }
  std::set<std::string> keys;
  for (const Operation& op : history->operations) keys.insert(op.key);
  if (!is_quiet) {
    fmt::print("history: {} operations ({} ok, {} failed, {} unknown) on {} keys; {} constrain the order\n",
               history->records, history->ok, history->failed, history->unknown, keys.size(),
               history->operations.size());
  }

  const auto start = std::chrono::steady_clock::now();
  CheckResult result;
  try {
    result = check_linearizable(history->operations, budget_states);
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "aspen-lincheck: {}\n", e.what());
    return kExitBadHistory;
  }
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.is_linearizable) {
    fmt::print("verdict: NOT linearizable ({} states explored, {:.2f} s)\n", result.states_explored, elapsed_s);
    if (!is_quiet) fmt::print("{}", result.explanation);
    return kExitViolation;
  }
  if (result.is_exhausted) {
    fmt::print("verdict: inconclusive ({} states explored, {:.2f} s): {}\n", result.states_explored, elapsed_s,
               result.explanation);
    return kExitInconclusive;
  }
  fmt::print("verdict: linearizable ({} states explored, {:.2f} s)\n", result.states_explored, elapsed_s);
  return 0;
}
