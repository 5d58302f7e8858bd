// BUGGIFY fault points and coverage probes, after FoundationDB's BUGGIFY and CODE_PROBE.
//
//   if (ASPEN_BUGGIFY("node.tick_skipped")) return;   // a rare but legal path, made common
//   ASPEN_PROBE("raft.election_lost");                 // "this rare branch was reached"
//
// Outside a simulation both cost one relaxed load of a global pointer that is null: nothing
// fires and nothing is recorded, in production ever. The simulator opens a Session with a
// seed: each fault site is then armed for the run with a seed-drawn chance (a quarter, as in
// FoundationDB) and, once armed, fires on a seed-drawn share of its evaluations; probes and
// site evaluations are counted. A site must only ever choose a behaviour the real system can
// show on its own (a message lost, a tick late, a batch cut short, work done early), so that
// no invariant may break because of it; what breaks is a bug.
//
// Every name must be in the catalogue below (kFaultSites, kProbes), checked at compile time:
// a typo does not build, and the simulator can list the sites and probes it never reached.
// Names are "<module>.<what happens>"; reports are sorted by name. Sessions are for one
// thread (the simulator's); the null check is safe from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aspen::buggify {

struct SiteInfo {
  std::string_view name;
  std::string_view what;  // one line: the behaviour it forces or the branch it marks
};

// Fault points. Add a site here, then use its name at the call site.
inline constexpr SiteInfo kFaultSites[] = {
    {"node.apply_not_deferred", "a leader applies at once instead of deferring an apply-only Ready"},
    {"node.compaction_early", "the log is compacted before its thresholds, halfway to the applied index"},
    {"node.message_dropped", "an outgoing Raft message (not a snapshot) is lost at the node boundary"},
    {"node.message_duplicated", "an outgoing Raft message (not a proposal or snapshot) is sent twice"},
    {"node.read_batch_flushed_early", "a linearizable read starts its own ReadIndex round instead of batching"},
    {"node.snapshot_chunk_failed", "a chunk of a snapshot being received is lost: the stream is refused"},
    {"node.tick_skipped", "a tick arrives late: the node skips this one"},
    {"raft.commit_broadcast_eager", "a leader tells every follower of a new commit at once, lazy mode or not"},
    {"raft.quorum_check_early", "a leader checks for an active quorum after half an election timeout"},
};

// Coverage marks on rare branches.
inline constexpr SiteInfo kProbes[] = {
    {"kv.cas_expected_value_of_absent_key", "a CAS expected a value of a key that does not exist"},
    {"kv.history_purged", "compaction deleted a version that a later one below the compacted revision replaced"},
    {"kv.lease_grant_refused_full", "a lease grant was refused: the cluster holds the most leases"},
    {"kv.put_lease_full", "a put would attach one key too many to a lease"},
    {"kv.put_lease_missing", "a put named a lease that no longer exists"},
    {"kv.range_at_revision_cut", "a read at a past revision ended its page early (limit, bytes or keys examined)"},
    {"kv.range_budget_exhausted", "a transaction's range found its shared byte budget used up"},
    {"kv.session_repeat_answered", "a write repeated in its client session was answered with its first result"},
    {"kv.session_result_summarized", "a client session kept a large answer as a summary"},
    {"kv.session_results_over_bound", "a client session dropped its oldest kept answer at the bound"},
    {"kv.session_stale_write_refused", "a write older than what its client session keeps was refused"},
    {"kv.session_table_full", "a new client session found the session table full"},
    {"node.apply_deferred", "a leader held back an apply-only Ready for the next proposal"},
    {"node.conf_change_skipped_after_snapshot", "an applied membership change was older than a snapshot taken meanwhile"},
    {"node.fixed_result_held_term_changed", "a committed put waits: the entry at its index is another term's"},
    {"node.history_compaction_proposed", "a leader proposed compacting the history its retention bounds let go"},
    {"node.lease_expiry_proposed", "a leader proposed LeaseExpire for expired leases"},
    {"node.read_refused_unconfirmed", "reads failed: the leader could not confirm its leadership in time"},
    {"node.read_round_not_started", "a read batch failed at once: no ReadIndex round could start"},
    {"node.read_timed_out", "a linearizable read timed out in the core"},
    {"node.request_refused_queue_full", "a request was refused: max_pending_requests reached"},
    {"node.write_lost_to_new_leader", "a write's index was taken by another leader's entry"},
    {"node.write_timed_out", "a write timed out in the core; its outcome is unknown"},
    {"raft.append_rejected", "a leader's append was rejected and it backed off"},
    {"raft.campaign_deferred_unapplied_conf_change", "a node did not campaign: a committed conf change is unapplied"},
    {"raft.election_lost", "a (pre-)candidate lost its election to rejections"},
    {"raft.fast_campaign_retried", "a campaign lost after the leader was reported unreachable was retried soon"},
    {"raft.leader_stepped_down_after_removal", "a leader removed from the voters handed over and stepped down"},
    {"raft.leader_stepped_down_no_quorum", "a leader stepped down: no quorum heard within an election timeout (§6.2)"},
    {"raft.read_ack_for_unsent_round_ignored", "a heartbeat ack named a read round not sent yet"},
    {"raft.read_expired", "a ReadIndex request no round confirmed within an election timeout was refused"},
    {"raft.read_held_until_term_commit", "a new leader held a read until an entry of its term committed (§6.4)"},
    {"raft.read_refused_removed_leader", "a leader removed from the voters refused to serve a read point"},
    {"raft.response_from_untracked_ignored", "a response from a node no longer tracked (removed) was ignored"},
    {"raft.snapshot_follower_caught_up", "a follower being sent a snapshot caught up from the log instead"},
    {"raft.stale_leader_told_newer_term", "a leader of an older term was told of the newer one"},
    {"raft.vote_ignored_in_lease", "a vote request was ignored: a leader was heard from recently (§4.2.3)"},
    {"raft.window_freed_by_heartbeat", "a full in-flight window was opened by a heartbeat ack (all appends lost)"},
};

inline constexpr size_t kFaultSiteCount = std::size(kFaultSites);
inline constexpr size_t kProbeCount = std::size(kProbes);

// Sorted and unique, so that reports come out by name without sorting and a name means one site.
template <size_t N>
constexpr bool is_sorted_and_unique(const SiteInfo (&catalogue)[N]) {
  for (size_t i = 1; i < N; ++i) {
    if (!(catalogue[i - 1].name < catalogue[i].name)) return false;
  }
  return true;
}
static_assert(is_sorted_and_unique(kFaultSites), "keep kFaultSites sorted by name, names unique");
static_assert(is_sorted_and_unique(kProbes), "keep kProbes sorted by name, names unique");

// One run's (or several runs') counts, sorted by name.
struct SiteCount {
  std::string name;
  uint64_t runs_armed = 0;  // runs in which the site was armed
  uint64_t evaluations = 0; // times the site was evaluated while a session was open
  uint64_t fires = 0;       // times it returned true
};
struct ProbeCount {
  std::string name;
  uint64_t hits = 0;
};
struct Report {
  std::vector<SiteCount> sites;    // every catalogued fault site, reached or not
  std::vector<ProbeCount> probes;  // every catalogued probe, hit or not
  uint64_t runs = 0;
  // Adds another report's counts (the same catalogue): a soak sums its runs.
  void merge(const Report& other);
};

struct SessionOptions {
  uint64_t seed = 1;
  // Chance (per mille) that a fault site is armed for the run. FoundationDB uses 25 %.
  uint32_t site_armed_per_mille = 250;
  // False: record probes and evaluations, never fire (a run without BUGGIFY).
  bool may_fire = true;
};

// Opens recording (and firing) for the calling thread's run; closes it when destroyed. One
// session at a time.
class Session {
 public:
  explicit Session(const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The simulator's liveness phase heals every fault, BUGGIFY included.
  void set_may_fire(bool may_fire);
  Report report() const;
};

namespace detail {

struct State;
// Null unless a Session is open: the whole production cost of a site.
extern std::atomic<State*> g_state;

bool fire(size_t site);
void hit(size_t probe);

// Not constexpr: calling it in a constant expression fails to compile, naming the problem.
void name_is_not_in_the_buggify_catalogue();

template <size_t N>
consteval size_t index_of(const SiteInfo (&catalogue)[N], std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (catalogue[i].name == name) return i;
  }
  name_is_not_in_the_buggify_catalogue();
  return N;
}

}  // namespace detail
}  // namespace aspen::buggify

// True when the simulation armed this site and its coin came up; false (cheaply) otherwise.
#define ASPEN_BUGGIFY(name)                                                              \
  (::aspen::buggify::detail::g_state.load(std::memory_order_relaxed) != nullptr &&       \
   ::aspen::buggify::detail::fire(::aspen::buggify::detail::index_of(::aspen::buggify::kFaultSites, name)))

// Records that a rare branch was reached (in a simulation; nothing otherwise).
#define ASPEN_PROBE(name)                                                                \
  do {                                                                                   \
    if (::aspen::buggify::detail::g_state.load(std::memory_order_relaxed) != nullptr) {  \
      ::aspen::buggify::detail::hit(::aspen::buggify::detail::index_of(::aspen::buggify::kProbes, name)); \
    }                                                                                    \
  } while (0)
