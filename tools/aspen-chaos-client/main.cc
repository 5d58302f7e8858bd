// aspen-chaos-client: the workload and the after-healing checks of the chaos harness
// (scripts/chaos.sh, docs/reliability.md), against a real cluster through the client library.
//
//   aspen-chaos-client run --clients 4 --keys 8 --duration-s 90 --history run/history.txt
//       C concurrent clients, each with its own connection, do reads, writes, CAS and
//       deletes on a small key set and append every operation to the history file
//       (lincheck/history_file.h) with its invoke and complete times (CLOCK_MONOTONIC in
//       microseconds, so several processes write comparable times) and its outcome: ok,
//       fail (a CAS whose expectation did not hold; a write refused before it could apply),
//       or unknown (a timeout, an unreachable cluster: it may or may not have applied).
//   aspen-chaos-client final-reads --keys 8 --history run/history.txt
//       after the faults healed: one linearizable read of every key, appended, so that an
//       acknowledged write that was lost shows up as a violation in aspen-lincheck.
//   aspen-chaos-client now
//       prints CLOCK_MONOTONIC in microseconds (the harness stamps its fault events with it).
//   aspen-chaos-client report --history run/history.txt --events run/events.tsv
//       per fault kind: how many, and the time from each fault's start to the first write
//       invoked after it that succeeded (median and max): the unavailability it caused.
//   aspen-chaos-client coord --clients 6 --duration-s 90 --history run/coord.txt [--kinds lock,counter,queue]
//       the coordination workloads (coord_workload.h): a lock with fencing tokens, a counter
//       and a queue, clients dealt to them in turn, each operation recorded with its times.
//   aspen-chaos-client coord-check --history run/coord.txt [--kinds ...]
//       after healing: reads the counter, drains the queue, then checks the history
//       (lincheck/coord_checks.h: no overlapping holders, tokens increase, exact counter, no
//       value twice, no message lost or delivered after its ack); exit 1 on a violation.
//   aspen-chaos-client converge --timeout-s 60
//       waits for a write to succeed, then for every member to reach the same applied
//       index and to hold the same digest of the whole key space (stale reads of each
//       member); prints each member's index and digest.
//
// The ticket comes from --ticket or ASPEN_TICKET, the key and token from ASPEN_IDENTITY and
// ASPEN_TOKEN_FILE. Exit codes: 0 done, 1 members did not converge (converge) or a
// final read never succeeded, 2 cannot reach the cluster, 64 bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/credentials.h"
#include "coord_workload.h"
#include "kv/key_value_store.h"
#include "lincheck/history_file.h"

namespace {

using namespace aspen;
using lincheck::OpKind;
using lincheck::Outcome;
using lincheck::Record;

constexpr int kExitDiverged = 1;
constexpr int kExitUnreachable = 2;
constexpr int kExitUsage = 64;

std::atomic<bool> g_should_stop{false};

extern "C" void on_stop_signal(int) { g_should_stop.store(true); }

uint64_t monotonic_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

struct Settings {
  std::string ticket;
  std::string history_path;
  std::string key_prefix = "chaos/";
  uint32_t clients = 4;
  uint32_t keys = 8;
  uint32_t duration_s = 60;
  uint32_t think_ms = 10;
  uint32_t op_timeout_ms = 3000;
  uint32_t timeout_s = 60;
  uint64_t seed = 1;
  bool is_stale_reads = false;  // run: read any one member's state, not linearizably
};

std::string key_name(const Settings& s, uint32_t i) { return fmt::format("{}k{}", s.key_prefix, i); }

Result<std::unique_ptr<client::Client>> connect(const Settings& s, uint32_t timeout_ms) {
  client::ClientOptions o;
  o.timeout_ms = timeout_ms;
  o.attempt_timeout_ms = std::min<uint32_t>(timeout_ms, 1000);
  o.write_attempt_timeout_ms = std::min<uint32_t>(timeout_ms, 1000);
  o.connect_timeout_ms = std::min<uint32_t>(timeout_ms, 1000);
  if (auto st = client::apply_credentials_from_env(o); !st) return std::unexpected(st.error());
  return client::Client::connect(s.ticket, o);
}

// Appends lines to the history file as operations complete; flushed per line so that a
// harness that dies still leaves every completed operation behind.
class HistoryWriter {
 public:
  explicit HistoryWriter(const std::string& path) : out_(path, std::ios::app) {}
  bool is_open() const { return out_.is_open(); }
  void append(const Record& r) {
    std::lock_guard lock(mu_);  // [any worker thread]
    out_ << lincheck::format_record(r) << '\n';
    out_.flush();
  }

 private:
  std::mutex mu_;
  std::ofstream out_;
};

// Errors that prove the operation was refused before it could take effect; every other
// error (timeouts, unreachable nodes, lost connections) leaves its outcome unknown.
bool is_surely_not_applied(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kKeyTooLarge:
    case ErrorCode::kValueTooLarge:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnauthorized:
    case ErrorCode::kStorageFull:
      return true;
    default:
      return false;
  }
}

struct Tally {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> unknown{0};
  void add(Outcome o) {
    (o == Outcome::kOk ? ok : o == Outcome::kFail ? failed : unknown).fetch_add(1);
  }
};

// One operation against the cluster, filled into `r` (its kind, key and arguments are set).
// stale_node: not 0, reads are stale reads of that node (a planted weakness: the checker must
// find them under faults).
void execute(client::Client& c, Record& r, uint64_t stale_node = 0) {
  switch (r.kind) {
    case OpKind::kRead: {
      auto v = stale_node == 0 ? c.read(r.key)
                               : c.read(r.key, client::cpb::CONSISTENCY_STALE, client::Target{stale_node});
      if (!v) {
        r.outcome = Outcome::kUnknown;
      } else {
        r.outcome = Outcome::kOk;
        if (v->has_value()) r.read_result = (*v)->value();
      }
      return;
    }
    case OpKind::kWrite:
    case OpKind::kDelete: {
      auto w = r.kind == OpKind::kWrite ? kv::put(c, r.key, r.value) : kv::del(c, r.key);
      r.outcome = w ? Outcome::kOk : is_surely_not_applied(w.error()) ? Outcome::kFail : Outcome::kUnknown;
      return;
    }
    case OpKind::kCas: {
      auto w = kv::cas(c, r.key, r.expected, r.value);
      // A CAS refused for another reason than its expectation says nothing about the key.
      r.outcome = !w ? Outcome::kUnknown : w->succeeded() ? Outcome::kOk : Outcome::kFail;
      return;
    }
  }
}

struct Worker {
  uint32_t index = 0;
  uint64_t process = 0;    // a fresh process number after every unknown outcome (Jepsen's rule)
  uint64_t counter = 0;
  std::mt19937_64 rng;
  std::vector<std::optional<std::string>> last_seen;  // per key: what this worker last saw
};

void run_worker(const Settings& s, Worker& w, HistoryWriter& history, Tally& tally, uint64_t end_us) {
  auto c = connect(s, s.op_timeout_ms);
  if (!c) {
    fmt::print(stderr, "client {}: {}\n", w.index, c.error().to_string());
    return;
  }
  std::uniform_int_distribution<uint32_t> key_dist(0, s.keys - 1);
  std::uniform_int_distribution<uint32_t> percent(0, 99);
  while (!g_should_stop.load() && monotonic_us() < end_us) {
    Record r;
    r.process = w.process;
    const uint32_t k = key_dist(w.rng);
    r.key = key_name(s, k);
    const uint32_t p = percent(w.rng);
    // Reads 40%, writes 25%, CAS 25%, deletes 10%; values are unique, so a read names the
    // write it saw.
    r.kind = p < 40 ? OpKind::kRead : p < 65 ? OpKind::kWrite : p < 90 ? OpKind::kCas : OpKind::kDelete;
    if (r.kind == OpKind::kWrite || r.kind == OpKind::kCas) r.value = fmt::format("{}-{}", w.process, ++w.counter);
    if (r.kind == OpKind::kCas) r.expected = w.last_seen[k];
    uint64_t stale_node = 0;
    if (s.is_stale_reads) {
      const auto nodes = (*c)->known_nodes();
      if (!nodes.empty()) stale_node = nodes[w.rng() % nodes.size()].node_id();
    }
    r.invoke_time = monotonic_us();
    execute(**c, r, stale_node);
    r.complete_time = monotonic_us();
    history.append(r);
    tally.add(r.outcome);
    if (r.outcome == Outcome::kOk) {
      if (r.kind == OpKind::kRead) w.last_seen[k] = r.read_result;
      if (r.kind == OpKind::kWrite || r.kind == OpKind::kCas) w.last_seen[k] = r.value;
      if (r.kind == OpKind::kDelete) w.last_seen[k].reset();
    }
    if (r.outcome == Outcome::kUnknown) w.process += s.clients;
    if (s.think_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(s.think_ms));
  }
}

int cmd_run(const Settings& s) {
  HistoryWriter history(s.history_path);
  if (!history.is_open()) {
    fmt::print(stderr, "aspen-chaos-client: cannot write {}\n", s.history_path);
    return kExitUsage;
  }
  // Process numbers of this run start past those of earlier runs into the same file.
  const uint64_t first_process = s.seed * 1'000'000;
  std::vector<Worker> workers(s.clients);
  for (uint32_t i = 0; i < s.clients; ++i) {
    workers[i].index = i;
    workers[i].process = first_process + i;
    workers[i].rng.seed(s.seed * 7919 + i);
    workers[i].last_seen.resize(s.keys);
  }
  Tally tally;
  const uint64_t start_us = monotonic_us();
  const uint64_t end_us = start_us + uint64_t{s.duration_s} * 1'000'000;
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&] { run_worker(s, w, history, tally, end_us); });
  for (auto& t : threads) t.join();
  const double elapsed_s = static_cast<double>(monotonic_us() - start_us) / 1e6;
  fmt::print("workload: {} clients, {} keys, {:.1f} s: {} ok, {} failed, {} unknown ({:.0f} ops/s)\n", s.clients,
             s.keys, elapsed_s, tally.ok.load(), tally.failed.load(), tally.unknown.load(),
             static_cast<double>(tally.ok + tally.failed + tally.unknown) / std::max(elapsed_s, 0.001));
  return 0;
}

int cmd_final_reads(const Settings& s) {
  HistoryWriter history(s.history_path);
  if (!history.is_open()) {
    fmt::print(stderr, "aspen-chaos-client: cannot write {}\n", s.history_path);
    return kExitUsage;
  }
  auto c = connect(s, s.op_timeout_ms);
  if (!c) {
    fmt::print(stderr, "aspen-chaos-client: {}\n", c.error().to_string());
    return kExitUnreachable;
  }
  const uint64_t deadline_us = monotonic_us() + uint64_t{s.timeout_s} * 1'000'000;
  int rc = 0;
  for (uint32_t k = 0; k < s.keys; ++k) {
    Record r;
    r.process = 0;
    r.kind = OpKind::kRead;
    r.key = key_name(s, k);
    // Retried until it answers: a read that never answers checks nothing.
    do {
      r.invoke_time = monotonic_us();
      execute(**c, r);
      r.complete_time = monotonic_us();
    } while (r.outcome != Outcome::kOk && monotonic_us() < deadline_us && !g_should_stop.load());
    history.append(r);
    if (r.outcome != Outcome::kOk) {
      fmt::print(stderr, "final read of {} never succeeded\n", r.key);
      rc = kExitDiverged;
    }
  }
  if (rc == 0) fmt::print("final reads: {} keys read\n", s.keys);
  return rc;
}

// FNV-1a over every key, value and modification revision, in key order.
struct Digest {
  uint64_t hash = 0xcbf29ce484222325ULL;
  uint64_t keys = 0;
  void add(std::string_view bytes) {
    for (unsigned char ch : bytes) {
      hash ^= ch;
      hash *= 0x100000001b3ULL;
    }
    add_byte(0xFF);
  }
  void add_byte(unsigned char ch) {
    hash ^= ch;
    hash *= 0x100000001b3ULL;
  }
};

// The whole key space as one member holds it (stale reads of that member only).
Result<Digest> member_digest(client::Client& c, uint64_t node_id) {
  Digest d;
  kvpb::RangeRequest req;
  req.set_limit(1000);
  while (true) {
    auto page = c.scan(req, client::cpb::CONSISTENCY_STALE, client::Target{node_id});
    if (!page) return std::unexpected(page.error());
    for (const auto& kv : page->kvs()) {
      d.add(kv.key());
      d.add(kv.value());
      d.add(std::to_string(kv.mod_revision()));
      ++d.keys;
    }
    if (!page->has_more()) return d;
    req.set_continuation(page->continuation());
  }
}

struct MemberState {
  uint64_t node_id = 0;
  uint64_t applied_index = 0;
  Digest digest;
  std::string error;
};

int cmd_converge(const Settings& s) {
  auto c = connect(s, s.op_timeout_ms);
  if (!c) {
    fmt::print(stderr, "aspen-chaos-client: {}\n", c.error().to_string());
    return kExitUnreachable;
  }
  const uint64_t start_us = monotonic_us();
  const uint64_t deadline_us = start_us + uint64_t{s.timeout_s} * 1'000'000;
  // The cluster serves writes again.
  bool is_writable = false;
  while (!is_writable && monotonic_us() < deadline_us && !g_should_stop.load()) {
    is_writable = kv::put(**c, s.key_prefix + "converge-probe", std::to_string(start_us)).has_value();
  }
  if (!is_writable) {
    fmt::print("converge: no write succeeded in {} s\n", s.timeout_s);
    return kExitDiverged;
  }
  fmt::print("converge: first write after healing took {} ms\n", (monotonic_us() - start_us) / 1000);
  std::vector<MemberState> last;
  while (monotonic_us() < deadline_us && !g_should_stop.load()) {
    auto metrics = (*c)->raft_metrics();
    if (!metrics) continue;
    std::vector<uint64_t> members(metrics->voters().begin(), metrics->voters().end());
    members.insert(members.end(), metrics->learners().begin(), metrics->learners().end());
    last.clear();
    bool is_same = !members.empty();
    for (uint64_t id : members) {
      MemberState m;
      m.node_id = id;
      auto before = (*c)->raft_metrics(client::Target{id});
      auto digest = before ? member_digest(**c, id) : Result<Digest>(std::unexpected(before.error()));
      auto after = digest ? (*c)->raft_metrics(client::Target{id}) : before;
      if (!before || !digest || !after) {
        m.error = !before ? before.error().to_string() : !digest ? digest.error().to_string() : after.error().to_string();
        is_same = false;
      } else {
        m.applied_index = before->applied_index();
        m.digest = *digest;
        // The digest belongs to that index only if nothing applied while it was read.
        if (after->applied_index() != before->applied_index()) is_same = false;
      }
      if (!last.empty() && (m.applied_index != last[0].applied_index || m.digest.hash != last[0].digest.hash)) {
        is_same = false;
      }
      last.push_back(std::move(m));
    }
    if (is_same) {
      for (const auto& m : last) {
        fmt::print("converge: node {} applied {} digest {:016x} ({} keys)\n", m.node_id, m.applied_index,
                   m.digest.hash, m.digest.keys);
      }
      fmt::print("converge: {} members agree after {} ms\n", last.size(), (monotonic_us() - start_us) / 1000);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  fmt::print("converge: members did not converge in {} s:\n", s.timeout_s);
  for (const auto& m : last) {
    fmt::print("  node {} applied {} digest {:016x} ({} keys){}\n", m.node_id, m.applied_index, m.digest.hash,
               m.digest.keys, m.error.empty() ? "" : " error: " + m.error);
  }
  return kExitDiverged;
}

int cmd_report(const std::string& history_path, const std::string& events_path) {
  std::ifstream history(history_path);
  std::ifstream events(events_path);
  if (!history || !events) {
    fmt::print(stderr, "aspen-chaos-client: cannot read {} or {}\n", history_path, events_path);
    return kExitUsage;
  }
  // Successful writes by invoke time, with the earliest completion among those invoked at
  // or after each (a suffix minimum), so each fault is one binary search.
  std::vector<std::pair<uint64_t, uint64_t>> writes;
  std::string line;
  while (std::getline(history, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto r = lincheck::parse_record(line);
    if (!r || r->kind == OpKind::kRead || r->outcome != Outcome::kOk || !r->complete_time) continue;
    writes.emplace_back(r->invoke_time, *r->complete_time);
  }
  std::sort(writes.begin(), writes.end());
  std::vector<uint64_t> earliest_done(writes.size() + 1, UINT64_MAX);
  for (size_t i = writes.size(); i-- > 0;) earliest_done[i] = std::min(earliest_done[i + 1], writes[i].second);
  std::map<std::string, std::vector<uint64_t>> gaps_ms;  // per fault kind
  std::map<std::string, uint64_t> never;
  while (std::getline(events, line)) {
    std::istringstream in(line);
    uint64_t start_us = 0;
    std::string kind;
    if (!(in >> start_us >> kind)) continue;
    auto it = std::lower_bound(writes.begin(), writes.end(), std::make_pair(start_us, uint64_t{0}));
    const uint64_t done = earliest_done[static_cast<size_t>(it - writes.begin())];
    if (done == UINT64_MAX) {
      ++never[kind];
      gaps_ms[kind];
    } else {
      gaps_ms[kind].push_back((done - start_us) / 1000);
    }
  }
  fmt::print("{:<20} {:>6} {:>16} {:>13}\n", "fault", "count", "to write p50 ms", "max ms");
  for (auto& [kind, gaps] : gaps_ms) {
    std::sort(gaps.begin(), gaps.end());
    const std::string p50 = gaps.empty() ? "-" : std::to_string(gaps[gaps.size() / 2]);
    const std::string max = gaps.empty() ? "-" : std::to_string(gaps.back());
    fmt::print("{:<20} {:>6} {:>16} {:>13}{}\n", kind, gaps.size() + never[kind], p50, max,
               never[kind] ? fmt::format("  ({} with no write after)", never[kind]) : "");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aspen-chaos-client: workload and checks of the chaos harness"};
  app.require_subcommand(1);
  Settings s;
  if (const char* t = std::getenv("ASPEN_TICKET")) s.ticket = t;
  app.add_option("--ticket", s.ticket, "cluster ticket (default: $ASPEN_TICKET)");
  app.add_option("--key-prefix", s.key_prefix, "prefix of the workload's keys");
  app.add_option("--op-timeout-ms", s.op_timeout_ms, "deadline of one operation, retries included")
      ->check(CLI::Range(100u, 600'000u));
  auto* run = app.add_subcommand("run", "the concurrent workload, recording a history");
  run->add_option("--clients", s.clients, "concurrent clients")->check(CLI::Range(1u, 256u));
  run->add_option("--keys", s.keys, "keys in the key set")->check(CLI::Range(1u, 10'000u));
  run->add_option("--duration-s", s.duration_s, "how long to run")->check(CLI::Range(1u, 7u * 24 * 3600));
  run->add_option("--think-ms", s.think_ms, "pause of each client between operations");
  run->add_option("--seed", s.seed, "seed of the operation mix and of process numbers");
  run->add_option("--history", s.history_path, "history file (appended to)")->required();
  run->add_flag("--stale-reads", s.is_stale_reads,
                "read from a random member without ReadIndex (not linearizable: to see the checker catch it)");
  auto* final_reads = app.add_subcommand("final-reads", "read every key once, appending to the history");
  final_reads->add_option("--keys", s.keys, "keys in the key set")->check(CLI::Range(1u, 10'000u));
  final_reads->add_option("--history", s.history_path, "history file (appended to)")->required();
  final_reads->add_option("--timeout-s", s.timeout_s, "give up on a key after this long");
  auto* now = app.add_subcommand("now", "print CLOCK_MONOTONIC in microseconds");
  std::string events_path;
  auto* report = app.add_subcommand("report", "unavailability per fault kind, from a history and fault events");
  report->add_option("--history", s.history_path, "history file")->required();
  report->add_option("--events", events_path, "fault events: <monotonic us> <kind> per line")->required();
  chaos::CoordSettings cs;
  auto* coord = app.add_subcommand("coord", "the coordination workloads (lock, counter, queue), recording a history");
  coord->add_option("--clients", cs.clients, "concurrent clients, dealt to the kinds in turn")->check(CLI::Range(1u, 64u));
  coord->add_option("--duration-s", cs.duration_s, "how long to run")->check(CLI::Range(1u, 7u * 24 * 3600));
  coord->add_option("--seed", cs.seed, "seed of the clients' choices and process numbers");
  coord->add_option("--history", cs.history_path, "history file (appended to)")->required();
  coord->add_option("--kinds", cs.kinds, "comma-separated: lock, counter, queue");
  coord->add_option("--name-prefix", cs.name_prefix, "the lock, counter and queue are named under it");
  auto* coord_check = app.add_subcommand("coord-check", "after healing: read the counter, drain the queue, check");
  coord_check->add_option("--history", cs.history_path, "history file (appended to, then read)")->required();
  coord_check->add_option("--kinds", cs.kinds, "comma-separated: lock, counter, queue");
  coord_check->add_option("--name-prefix", cs.name_prefix, "as given to coord");
  coord_check->add_option("--timeout-s", cs.timeout_s, "give up on the final read and the drain after this long");
  auto* converge = app.add_subcommand("converge", "wait until every member holds the same state");
  converge->add_option("--timeout-s", s.timeout_s, "give up after this long");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return e.get_exit_code() == 0 ? rc : kExitUsage;
  }
  if (now->parsed()) {
    fmt::print("{}\n", monotonic_us());
    return 0;
  }
  if (report->parsed()) return cmd_report(s.history_path, events_path);
  if (s.ticket.empty()) {
    fmt::print(stderr, "aspen-chaos-client: no ticket (--ticket or ASPEN_TICKET)\n");
    return kExitUsage;
  }
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  if (run->parsed()) return cmd_run(s);
  if (final_reads->parsed()) return cmd_final_reads(s);
  const chaos::Connect connect_fn = [&s] { return connect(s, s.op_timeout_ms); };
  if (coord->parsed()) return chaos::run_coord_workload(cs, connect_fn, g_should_stop);
  if (coord_check->parsed()) return chaos::check_coord_workload(cs, connect_fn, g_should_stop);
  return cmd_converge(s);
}
