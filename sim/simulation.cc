// The simulated cluster: scheduler, nodes (Ready handling on a simulated disk) and clients.
// Faults are in faults.cc, invariant checks in invariants.cc.
#include "sim/simulation.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/assert.h"
#include "core/encoding.h"
#include "kv/commands.h"
#include "node/log_compaction.h"
#include "sim/internal/cluster.h"

namespace aspen::sim {

namespace {
constexpr uint64_t kUsPerMs = 1000;
constexpr uint64_t kClientLinkMinUs = 100;
constexpr uint64_t kClientLinkMaxUs = 1000;
constexpr uint64_t kMaxEventsPerRun = 50'000'000;  // guards against a scheduler that never idles
}  // namespace

Cluster::Cluster(const SimOptions& options, buggify::Session& buggify)
    : opt_(options), buggify_(buggify), rng_(options.seed) {
  pb::ConfState initial;
  for (size_t i = 0; i < opt_.initial_voters; ++i) {
    initial.add_voters(next_node_id_ + i);
    ever_members_.insert(next_node_id_ + i);
  }
  for (size_t i = 0; i < opt_.initial_voters; ++i) {
    SimNode& n = add_node(next_node_id_++, initial);
    start_node(n);
  }
  for (size_t i = 0; i < opt_.clients; ++i) {
    SimClient c;
    c.id = i + 1;
    clients_.push_back(c);
  }
  probe_client_.id = opt_.clients + 1;
}

// ---------------------------------------------------------------------------------------
// Scheduler

void Cluster::at(uint64_t delay_us, Action action) {
  events_.push(Event{now_us_ + delay_us, event_seq_++, std::move(action)});
}

void Cluster::note_event(uint64_t kind, uint64_t a, uint64_t b) {
  uint64_t words[4] = {now_us_, kind, a, b};
  event_hash_ = fnv1a(std::string_view(reinterpret_cast<const char*>(words), sizeof(words)), event_hash_);
}

bool Cluster::fail(std::string what) {
  if (!is_failed_) {
    is_failed_ = true;
    verdict_ = SimVerdict::kInvariantBroken;
    failure_ = fmt::format("at t={}ms: {}", now_us_ / kUsPerMs, what);
  }
  return false;
}

void Cluster::trace(const std::string& line) const {
  if (opt_.is_verbose) std::fprintf(stderr, "[%10.3f ms] %s\n", static_cast<double>(now_us_) / 1000.0, line.c_str());
}

SimResult Cluster::run() {
  if (opt_.is_verbose) {
    std::string armed;
    for (const auto& site : buggify_.report().sites) {
      if (site.runs_armed > 0) armed += " " + site.name;
    }
    trace(opt_.is_buggify_enabled ? "BUGGIFY sites armed:" + (armed.empty() ? std::string(" none") : armed)
                                  : std::string("BUGGIFY off"));
  }
  for (auto& c : clients_) schedule_client(c, rng_.range(0, 10 * kUsPerMs));
  schedule_fault();
  uint64_t safety_events = 0;
  while (!events_.empty() && !is_failed_ && phase_ != Phase::kDone) {
    Event ev = events_.top();
    events_.pop();
    ASPEN_ASSERT(ev.time_us >= now_us_);
    now_us_ = ev.time_us;
    ev.action();
    ++stats_.events;
    if (stats_.events > kMaxEventsPerRun) {
      fail("event budget exhausted (a scheduling loop?)");
      break;
    }
    if (phase_ == Phase::kSafety && ++safety_events >= opt_.steps) {
      phase_ = Phase::kLiveness;
      trace("--- liveness phase: faults healed ---");
      heal_all();
      buggify_.set_may_fire(false);
      liveness_deadline_us_ = now_us_ + opt_.liveness_bound_ms * kUsPerMs;
      schedule_client(probe_client_, 0);
    }
    if (phase_ == Phase::kLiveness) {
      if (check_liveness_done()) {
        phase_ = Phase::kDone;
      } else if (now_us_ > liveness_deadline_us_) {
        verdict_ = SimVerdict::kNoProgress;
        failure_ = fmt::format("no progress within {} ms after faults healed (probe stage {})",
                               opt_.liveness_bound_ms, probe_stage_);
        break;
      }
    }
  }
  if (!is_failed_ && verdict_ == SimVerdict::kOk) check_final_state();
  if (verdict_ != SimVerdict::kOk) failure_ += "\n" + describe_nodes();
  stats_.sim_time_ms = now_us_ / kUsPerMs;
  return SimResult{verdict_, failure_, event_hash_, stats_, {}, situations_};
}

// ---------------------------------------------------------------------------------------
// Nodes

SimNode& Cluster::add_node(NodeId id, const pb::ConfState& initial) {
  auto n = std::make_unique<SimNode>();
  n->id = id;
  n->store = std::make_unique<storage::MemStore>();
  // Founding members start from the bootstrap state (membership at index 1, term 1); a node
  // added later starts empty and learns the membership from the leader's snapshot.
  if (initial.voters_size() > 0) {
    auto s = n->store->bootstrap(initial);
    ASPEN_ASSERT(s.has_value());
  }
  uint64_t drift = opt_.faults.drift ? rng_.range(0, 2 * opt_.clock_drift_per_mille) : opt_.clock_drift_per_mille;
  // Tick interval in [1 - d, 1 + d] of the nominal one (knobs.tick_interval_ms).
  n->tick_interval_us = uint64_t{opt_.knobs.tick_interval_ms} * kUsPerMs * (1000 - opt_.clock_drift_per_mille + drift) / 1000;
  SimNode& ref = *n;
  nodes_[id] = std::move(n);
  return ref;
}

void Cluster::start_node(SimNode& n) {
  ASPEN_ASSERT(!n.is_up && !n.is_retired);
  raft::RaftConfig cfg;
  cfg.id = n.id;
  cfg.applied = n.applied();
  cfg.seed = opt_.seed * 1000003 + n.incarnation;
  node::NodeCoreConfig ncfg;
  ncfg.raft = cfg;
  ncfg.knobs = opt_.knobs;  // timing, flow control, timeouts and queue bounds
  // Derived from the seed without drawing from rng_, so the run's other draws do not shift.
  ncfg.incarnation = Rng(opt_.seed ^ (n.id << 40) ^ n.incarnation).next_u64() | 1;
  // The HLC's physical clock: simulated time from a realistic epoch, off by up to
  // +-kHlcSimMaxSkewMs per node and life (also derived, not drawn), so that stamps from peers
  // further ahead than the HLC's max offset (500 ms), refusals and a clock that steps back
  // across a restart all occur; check_applied_hlc checks the log order holds through them.
  const int64_t skew_ms = static_cast<int64_t>(Rng(opt_.seed ^ (n.id << 48) ^ (n.incarnation << 8) ^ 0x484c43ULL).next_u64() %
                                               (2 * kHlcSimMaxSkewMs + 1)) -
                          kHlcSimMaxSkewMs;
  ncfg.hlc_physical_ms = [this, skew_ms] {
    return static_cast<uint64_t>(static_cast<int64_t>(kHlcSimEpochMs + now_us_ / kUsPerMs) + skew_ms);
  };
  auto core = node::NodeCore::create(ncfg, *n.store);
  ASPEN_ASSERT_MSG(core.has_value(), "restart from a synced disk must succeed");
  n.node = std::move(*core);
  n.core = &n.node->raft();
  // Half the nodes, by seed, serve watchers: they apply at once and ask for commits eagerly.
  n.node->set_is_apply_awaited((Rng(opt_.seed ^ (n.id << 32) ^ 0x5741544348ULL).next_u64() & 1) != 0);
  n.is_up = true;
  n.cycle.emplace(n.store->initial_state().hard_state);
  trace(fmt::format("node {} starts (applied {}, term {})", n.id, n.applied(), n.core->term()));
  note_event(1, n.id, n.incarnation);
  schedule_tick(n);
}

void Cluster::crash_node(SimNode& n) {
  if (!n.is_up) return;
  trace(fmt::format("node {} crashes{}", n.id, n.is_persisting() ? " (losing an unsynced Ready)" : ""));
  if (n.is_persisting()) mark(Situation::kCrashLosesUnsyncedReady);
  if (n.core->is_leader()) {
    if (n.core->log().last_index() > n.core->log().committed()) mark(Situation::kLeaderCrashWithUncommittedEntries);
    const uint64_t round_trip_us = 2 * opt_.net_delay_max_us + opt_.disk_latency_max_us;
    if (n.last_write_answered_us != 0 && now_us_ <= n.last_write_answered_us + round_trip_us) {
      mark(Situation::kWriteAnsweredThenLeaderCrash);
    }
  }
  if (const auto& voters = n.core->tracker().config.voters; voters.is_joint() && voters.contains(n.id)) {
    mark(Situation::kCrashInJointConfig);
  }
  n.last_write_answered_us = 0;
  note_event(2, n.id, n.incarnation);
  report_gone_leader(n);
  n.is_up = false;
  ++n.incarnation;
  n.core = nullptr;
  n.node.reset();
  n.cycle.reset();
  // What the disk had not made durable is gone: a Ready in flight never reached it, and an
  // apply-only batch written without a sync (LMDB's MDB_NOMETASYNC) may be undone.
  n.store->crash();
  n.pending_applies.clear();  // the apply thread's queue dies with the process
  n.staged_snapshots = node::StagedSnapshots{};
  n.requests.clear();
  ++stats_.crashes;
}

void Cluster::report_gone_leader(const SimNode& gone) {
  // The node's rule (docs/operations.md, failure detection): a follower's keep-alives to a
  // leader whose process died come back as ICMP port unreachable within a couple of
  // heartbeats, and the follower is told its leader is unreachable. The delay is drawn
  // from the seed without drawing from rng_, so the run's other draws do not shift.
  const uint64_t max_delay_us = 2 * uint64_t{opt_.knobs.heartbeat_ms} * kUsPerMs;
  for (auto& [id, other] : nodes_) {
    if (id == gone.id || !other->is_up || other->core->leader() != gone.id) continue;
    const uint64_t delay_us = Rng(opt_.seed ^ (id << 20) ^ (gone.incarnation << 40) ^ gone.id).range(1, max_delay_us);
    const uint64_t inc = other->incarnation;
    const NodeId follower = id;
    const NodeId leader = gone.id;
    at(delay_us, [this, follower, inc, leader] {
      SimNode* p = node(follower);
      if (p == nullptr || !p->is_up || p->incarnation != inc) return;
      trace(fmt::format("node {} is told its leader {} is unreachable", follower, leader));
      ++stats_.unreachable_leader_reports;
      p->core->report_unreachable(leader);
      check_after_event(*p);
      maybe_take_ready(*p);
    });
  }
}

void Cluster::retire_node(SimNode& n) {
  crash_node(n);
  n.is_retired = true;
  trace(fmt::format("node {} retired", n.id));
}

void Cluster::schedule_tick(SimNode& n) {
  uint64_t inc = n.incarnation;
  NodeId id = n.id;
  at(n.tick_interval_us, [this, id, inc] {
    SimNode* p = node(id);
    if (p == nullptr || !p->is_up || p->incarnation != inc) return;
    note_event(3, id);
    p->node->tick(now_us_ / kUsPerMs);
    deliver_responses(*p);
    check_after_event(*p);
    maybe_take_ready(*p);
    schedule_tick(*p);
  });
}

std::string Cluster::describe_nodes() const {
  std::string out = "  nodes at the end:";
  for (const auto& [id, n] : nodes_) {
    out += fmt::format("\n    node {}: ", id);
    if (n->is_retired) {
      out += "retired";
      continue;
    }
    if (!n->is_up) {
      out += fmt::format("down, applied {}", n->applied());
      continue;
    }
    auto st = n->core->status();
    out += fmt::format("{} term {} leader {} commit {} applied {} last {} config {}",
                       raft::role_name(st.role), st.term, st.leader, st.commit, n->applied(),
                       st.last_index, n->core->tracker().config.to_string());
    if (st.role == raft::Role::kLeader) {
      for (const auto& [pid, pr] : n->core->tracker().progress) {
        out += fmt::format("\n      peer {}: {}{}", pid, pr.to_string(), pr.recent_active ? " active" : "");
      }
    }
  }
  return out;
}

SimNode* Cluster::node(NodeId id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.get();
}

SimNode* Cluster::current_leader() {
  SimNode* best = nullptr;
  for (auto& [id, n] : nodes_) {
    if (n->is_up && n->core->is_leader() && (best == nullptr || n->core->term() > best->core->term())) {
      best = n.get();
    }
  }
  return best;
}

void Cluster::maybe_take_ready(SimNode& n) {
  if (!n.is_up || n.is_persisting() || !n.node->has_ready()) return;
  auto taken = n.cycle->begin(*n.node, opt_.knobs.should_send_early);
  deliver_responses(n);  // reads refused when their ReadIndex round could not start
  if (!taken) return;
  auto step = std::make_shared<node::ReadyCycle::Step>(std::move(*taken));
  const raft::Ready& rd = *step->ready;
  if (rd.soft_state && rd.soft_state->role == raft::Role::kLeader) {
    ++stats_.leaders_elected;
    // Entries of earlier terms above the commit index, besides the new leader's empty entry:
    // what §5.4.2 is about (they commit only with an entry of the new term).
    const raft::RaftLog& log = n.core->log();
    if (log.committed() + 1 < log.last_index()) mark(Situation::kLeaderChangeWithUncommittedEntries);
    if (n.core->tracker().config.voters.is_joint()) mark(Situation::kElectionInJointConfig);
    maybe_fault_after_election(n);
  }
  if (step->ready->snapshot) {
    // As the node shell does: the data to install is the staged copy, which every snapshot
    // the core took must have.
    auto& snap = *step->ready->snapshot;
    const std::string* staged = n.staged_snapshots.find(snap.metadata().index(), snap.metadata().term());
    ASPEN_ASSERT_MSG(staged != nullptr, "a snapshot to install has no staged data");
    snap.set_data(*staged);
  }
  // As the node shell does: a leader's appends leave while its fsync runs.
  for (const auto& m : step->early) send_message(m);
  // An fsync takes time; a crash before it completes loses the whole Ready (LMDB commits
  // atomically). A Ready with nothing to persist is handled almost at once.
  uint64_t latency = rd.must_sync() ? rng_.range(opt_.disk_latency_min_us, opt_.disk_latency_max_us)
                                    : rng_.range(1, 20);
  uint64_t inc = n.incarnation;
  NodeId id = n.id;
  at(latency, [this, id, inc, step] {
    SimNode* p = node(id);
    if (p == nullptr || !p->is_up || p->incarnation != inc) return;
    note_event(4, id, step->ready->entries.size());
    on_synced(*p, step);
  });
  maybe_crash_in_sync(n, *step, latency);
}

void Cluster::on_synced(SimNode& n, const std::shared_ptr<node::ReadyCycle::Step>& step) {
  const raft::Ready& rd = *step->ready;
  // Phase 1, as the node's storage thread does it: snapshot, entries and hard state durable
  // in the log; then the messages that depend on them and the answers at commit. Applies
  // stay in log order: a snapshot or a synchronous apply waits for the pending ones.
  if (rd.snapshot || (step->to_apply != nullptr && !step->is_apply_async)) drain_async_applies(n);
  if (!rd.entries.empty()) {
    const pb::Entry& first = rd.entries.front();
    auto held = n.store->term(first.index());
    if (held && *held != first.term()) mark(Situation::kUncommittedSuffixOverwritten);
  }
  auto logged = n.store->write_log(step->batch);
  ASPEN_ASSERT_MSG(logged.has_value(), "a Ready from the core must persist");
  if (rd.snapshot) {
    (void)n.staged_snapshots.drop_up_to(rd.snapshot->metadata().index());  // in memory: nothing to remove
    ++stats_.snapshots_installed;
    if (is_partitioned_) mark(Situation::kSnapshotInstalledDuringPartition);
    if (n.incarnation > 0) mark(Situation::kSnapshotInstalledAfterCrash);
    trace(fmt::format("node {} installs snapshot at {}", n.id, rd.snapshot->metadata().index()));
  }
  if (!rd.entries.empty()) check_persisted_entries(n, rd.entries);
  bool commits_old_term_entry = false;
  if (rd.hard_state && rd.hard_state->commit() > n.commit_seen && n.core->is_leader()) {
    // The commit covers an entry of an earlier term: committed indirectly, by an entry of
    // the leader's own term (§5.4.2), or wrongly, by counting.
    for (Index i = std::max(n.commit_seen + 1, n.store->first_index()); i <= rd.hard_state->commit(); ++i) {
      auto t = n.store->term(i);
      if (t && *t < n.core->term()) {
        commits_old_term_entry = true;
        mark(Situation::kOldTermEntryCommittedByNewLeader);
        break;
      }
    }
  }
  if (rd.hard_state) record_commits(n, rd.hard_state->commit());
  if (is_failed_) return;
  // Targeted: a leader dies right after this sync, perhaps before its messages leave.
  const SyncCrash sync_crash = draw_leader_crash_after_sync(n, rd, commits_old_term_entry);
  if (sync_crash == SyncCrash::kBeforeSend) {
    trace(fmt::format("leader {} crashes right after a sync, before sending", n.id));
    crash_and_restart_later(n, 10, targeted_down_ms());
    return;
  }
  auto messages = n.cycle->log_durable(*n.node, *step);
  for (const auto& m : messages) send_message(m);
  deliver_responses(n);
  if (sync_crash == SyncCrash::kAfterSend) {
    trace(fmt::format("leader {} crashes right after a sync", n.id));
    crash_and_restart_later(n, 10, targeted_down_ms());
    return;
  }
  // BUGGIFY: now and then a node dies right after a sync, when what it just committed may
  // exist on as few nodes as it ever will (the window the Figure 8 rule is about), and
  // before its apply (which the log then replays).
  if (phase_ == Phase::kSafety && opt_.faults.crash && opt_.crash_after_sync_per_mille > 0 &&
      rng_.chance(opt_.crash_after_sync_per_mille, 1000)) {
    crash_and_restart_later(n);
    return;
  }
  maybe_restart_after_read_request(n, messages);
  if (!n.is_up) return;
  if (step->to_apply == nullptr) {
    on_applied(n, step);
    return;
  }
  if (step->is_apply_async) {
    // The step is done for the core; its entries go to the "apply thread", which takes a
    // while (a crash may come first) and reports with on_applied.
    n.pending_applies.push_back(step);
    uint64_t inc = n.incarnation;
    NodeId id = n.id;
    at(rng_.range(1, opt_.disk_latency_max_us + 20), [this, id, inc] {
      SimNode* p = node(id);
      if (p == nullptr || !p->is_up || p->incarnation != inc || p->pending_applies.empty()) return;
      run_async_apply(*p);
      if (p->is_up) maybe_take_ready(*p);
    });
    on_applied(n, step);  // finishes the step without applying (the driver skips async entries)
    return;
  }
  // Phase 2 runs on after the messages left: applying takes a while, and a crash may come
  // first.
  uint64_t inc = n.incarnation;
  NodeId id = n.id;
  at(rng_.range(1, opt_.disk_latency_min_us + 20), [this, id, inc, step] {
    SimNode* p = node(id);
    if (p == nullptr || !p->is_up || p->incarnation != inc) return;
    on_applied(*p, step);
  });
}

std::vector<storage::AppliedEntry> Cluster::apply_checked(SimNode& n, const node::ReadyCycle::Step& step,
                                                         std::function<void(std::vector<storage::AppliedEntry>&)> on_results) {
  for (const auto& e : *step.to_apply) {
    if (e.index() > n.applied()) check_applied(n, e);
  }
  storage::WriteBatch batch = step.batch;
  batch.on_results = std::move(on_results);
  auto applied = n.store->apply(batch);
  ASPEN_ASSERT_MSG(applied.has_value(), "committed entries from the core must apply");
  return std::move(*applied);
}

void Cluster::after_applies(SimNode& n, const std::vector<pb::Entry>& entries,
                            const std::vector<storage::AppliedEntry>& applied) {
  size_t k = 0;
  for (const auto& a : applied) {
    while (entries[k].index() != a.index) ++k;
    after_apply(n, entries[k], a);
  }
}

void Cluster::run_async_apply(SimNode& n) {
  auto step = n.pending_applies.front();
  n.pending_applies.pop_front();
  // As the node's apply thread does: the writes are answered from the apply's results,
  // before the store's commit makes the apply visible (and, on LMDB, before its sync).
  // (Copied, not taken: the checks below read the results apply() returns.)
  std::vector<storage::AppliedEntry> results;
  auto applied = apply_checked(n, *step, [&](std::vector<storage::AppliedEntry>& r) { results = r; });
  if (!results.empty()) {
    n.node->on_results_known(results);
    const size_t answered = n.requests.size();
    deliver_responses(n);
    // BUGGIFY: the process dies before that commit: what was answered must come back from
    // the log (MemStore::crash undoes the unsynced apply).
    if (answered != n.requests.size() && phase_ == Phase::kSafety && opt_.faults.crash &&
        opt_.crash_after_sync_per_mille > 0 && rng_.chance(opt_.crash_after_sync_per_mille, 1000)) {
      mark(Situation::kAnsweredBeforeApplyCommitThenCrash);
      trace(fmt::format("node {} crashes after answering from an apply's results, before its commit", n.id));
      crash_and_restart_later(n);
      return;
    }
  }
  n.node->on_applied(*step->to_apply, applied);
  after_applies(n, *step->to_apply, applied);
  deliver_responses(n);
  maybe_compact(n);
  check_after_event(n);
}

void Cluster::drain_async_applies(SimNode& n) {
  while (n.is_up && !n.pending_applies.empty()) run_async_apply(n);
}

void Cluster::on_applied(SimNode& n, const std::shared_ptr<node::ReadyCycle::Step>& step) {
  const bool is_applied_here = step->to_apply != nullptr && !step->is_apply_async;
  storage::WriteOutcome out;
  if (is_applied_here) out.applied = apply_checked(n, *step);
  // Steps 4-6 through the shared driver: membership changes, answers for applied writes and
  // ready reads.
  for (const auto& m : n.cycle->finish(*n.node, *step, out)) send_message(m);
  if (is_applied_here) after_applies(n, *step->to_apply, out.applied);
  // The Store computed the membership on its own (raft::next_conf_state) in the same
  // transaction; it must be exactly what the core switched to (unless the core has since
  // accepted a snapshot that is not persisted yet, whose membership it adopted at once).
  if (!n.core->log().unstable_snapshot() &&
      n.core->tracker().config.to_conf_state().SerializeAsString() != n.store->conf_state().SerializeAsString()) {
    fail(fmt::format("node {}: stored membership {} differs from the core's {}", n.id,
                     n.store->conf_state().ShortDebugString(), n.core->tracker().config.to_string()));
    return;
  }
  deliver_responses(n);
  maybe_compact(n);
  check_after_event(n);
  maybe_take_ready(n);
}

void Cluster::after_apply(SimNode& n, const pb::Entry& e, const storage::AppliedEntry& a) {
  stats_.max_commit = std::max(stats_.max_commit, e.index());
  // A command that changed a key answers with its own index as the revision (kv/mvcc.h).
  const bool is_mutation = e.type() == pb::ENTRY_NORMAL && a.result.revision() == a.index && a.result.error_code() == 0;
  if (auto err = watches_.note_mutation(e.index(), is_mutation); !err.empty()) fail(err);
  if (e.type() == pb::ENTRY_CONF_CHANGE) {
    pb::ConfChange cc;
    ASPEN_ASSERT(cc.ParseFromString(e.data()));
    pb::ConfState cs = n.store->conf_state();  // as of the end of this batch: the newest
    ++stats_.conf_changes_applied;
    if (cs.voters_outgoing_size() > 0) {
      mark(Situation::kJointConfigEntered);
      if (n.is_up && n.core->is_leader() && n.core->tracker().config.voters.is_joint()) {
        maybe_split_joint_config(n.id, n.core->tracker().config.voters, "applies");
      }
    }
    if (n.is_up && n.core->is_leader() && !n.core->tracker().config.voters.contains(n.id)) {
      mark(Situation::kLeaderRemovesItself);
    }
    trace(fmt::format("node {} applies conf change at {}: {}", n.id, e.index(), raft::describe_conf_change(cc)));
    // Only the newest committed configuration counts: a lagging replica applying an older
    // one must not retire nodes that were added since.
    if (e.index() <= last_config_index_) return;
    last_config_index_ = e.index();
    std::set<NodeId> members;
    for (NodeId id : cs.voters()) members.insert(id);
    for (NodeId id : cs.voters_outgoing()) members.insert(id);
    for (NodeId id : cs.learners()) members.insert(id);
    for (NodeId id : cs.learners_next()) members.insert(id);
    for (NodeId id : members) ever_members_.insert(id);
    for (NodeId id : ever_members_) {
      if (!members.contains(id)) schedule_retirement(id, e.index(), members);
    }
    return;
  }
  if (e.data().empty()) return;
  kvpb::Command cmd;
  ASPEN_ASSERT_MSG(cmd.ParseFromString(e.data()), "committed commands must decode");
  const std::string& value = cmd.has_cas() ? cmd.cas().new_value() : cmd.put().value();
  acked_writes_.try_emplace(value, AppliedCommand{e.index(), now_us_, !cmd.has_cas() || a.result.succeeded()});
}

void Cluster::schedule_retirement(NodeId id, Index config_index, std::set<NodeId> members) {
  // An operator decommissions a removed node only after every remaining member has applied
  // the configuration without it: until they know the removal committed they still count
  // on its vote (they apply configurations on commit, not on append).
  at(rng_.range(500, 2000) * kUsPerMs, [this, id, config_index, members] {
    SimNode* r = node(id);
    if (r == nullptr || r->is_retired) return;
    for (NodeId m : members) {
      SimNode* other = node(m);
      if (other != nullptr && !other->is_retired && other->applied() < config_index) {
        schedule_retirement(id, config_index, members);
        return;
      }
    }
    retire_node(*r);
  });
}

void Cluster::deliver_responses(SimNode& n) {
  if (!n.is_up) return;
  for (auto& r : n.node->take_responses()) {
    auto it = n.requests.find(r.request_id);
    if (it == n.requests.end()) continue;
    PendingOp op = it->second;
    n.requests.erase(it);
    if (!r.is_write && op.arrival_term != n.core->term()) mark(Situation::kReadAcrossLeaderChange);
    if (r.is_write) {
      if (r.write) {
        if (n.core->is_leader()) n.last_write_answered_us = now_us_;
        respond(op.client_id, op.token, std::nullopt, r.write->succeeded(), false, r.index);
      } else if (r.write.error().code() != ErrorCode::kTimeout) {
        // NotLeader, Unavailable, ProposalDropped: the command never reached a committed log
        // position, so it definitely did not apply.
        respond(op.client_id, op.token, std::nullopt, false, true, 0);
      }  // a timeout leaves the outcome unknown: the client's own timeout records that
    } else if (r.read) {
      if (!opt_.should_plant_stale_reads) check_read_point(n, op, r.index);
      std::optional<std::string> value;
      if (r.read->kvs_size() > 0) value = r.read->kvs(0).value();
      respond(op.client_id, op.token, value, false, false, 0);
    } else {
      respond(op.client_id, op.token, std::nullopt, false, true, 0);
    }
  }
}

void Cluster::maybe_compact(SimNode& n) {
  if (!opt_.faults.compaction) return;
  // The node's own policy with the seed's knobs (small thresholds): followers that lag by
  // more than the kept entries need a snapshot, built from the state on demand.
  Index to = node::compaction_point(n.store->first_index(), n.store->last_index(), n.applied(),
                                    n.store->log_size_bytes(), opt_.knobs);
  if (to == 0) return;
  auto s = n.store->compact(to);
  ASPEN_ASSERT(s.has_value());
  note_event(5, n.id, to);
}

void Cluster::report_snapshot(const pb::Message& msg, bool failed) {
  // As the node's snapshot sender does when its stream ends: the leader hears how it went
  // one network delay later.
  NodeId from = msg.from();
  NodeId peer = msg.to();
  SimNode* sender = node(from);
  if (sender == nullptr) return;
  uint64_t inc = sender->incarnation;
  at(rng_.range(opt_.net_delay_min_us, opt_.net_delay_max_us), [this, from, peer, inc, failed] {
    SimNode* s = node(from);
    if (s == nullptr || !s->is_up || s->incarnation != inc) return;
    s->core->report_snapshot(peer, failed);
    maybe_take_ready(*s);
  });
}

void Cluster::send_message(const pb::Message& m) {
  check_sent_commit(m);
  SimNode* to = node(m.to());
  bool is_snap = m.type() == pb::MSG_SNAP;
  if (is_snap) ++stats_.snapshots_sent;
  bool is_lossy = phase_ == Phase::kSafety && opt_.faults.loss && rng_.chance(opt_.loss_per_mille, 1000);
  if (to == nullptr || to->is_retired || is_blocked(m.from(), m.to()) || is_lossy) {
    ++stats_.messages_dropped;
    if (is_snap) report_snapshot(m, true);
    return;
  }
  int copies = 1;
  // Raft's own messages may arrive twice. A forwarded proposal is not duplicated: Aspen's
  // transport delivers a stream message at most once, and the state machine has no client
  // sessions to make a re-applied command idempotent. Nor is a snapshot: it is a stream of
  // its own, which either ends well once or fails.
  if (phase_ == Phase::kSafety && opt_.faults.duplicate && m.type() != pb::MSG_PROP && !is_snap &&
      rng_.chance(opt_.duplicate_per_mille, 1000)) {
    copies = 2;
  }
  auto shared = std::make_shared<pb::Message>(m);
  for (int i = 0; i < copies; ++i) {
    // Independent delays reorder messages.
    uint64_t delay_us = rng_.range(opt_.net_delay_min_us, opt_.net_delay_max_us);
    // Targeted: one follower's acknowledgements come late (a slow disk or a long queue).
    if (m.from() == opt_.slow_ack_node && m.type() == pb::MSG_APP_RESP && phase_ == Phase::kSafety &&
        opt_.faults.targeted) {
      delay_us += rng_.range(0, opt_.slow_ack_max_us);
    }
    at(delay_us, [this, shared] { deliver(*shared); });
    if (i == 0) maybe_partition_after_append(m, delay_us);
  }
}

void Cluster::deliver_snapshot(SimNode& to, const pb::Message& m) {
  // As RaftLinks receives a snapshot stream: the data arrives as chunk frames (one per
  // length-prefixed chunk of the snapshot format, as the sender streams them) and is
  // staged; the core steps the final message, which carries the metadata alone; a snapshot
  // it did not take is discarded; the sender hears whether it went well.
  pb::Message bare = m;
  bare.mutable_snapshot()->clear_data();
  node::SnapshotReception in(limits::kMaxStreamedSnapshotBytes);
  std::string staged;
  Decoder chunks(m.snapshot().data());
  bool is_refused = false;
  while (!is_refused && !chunks.is_empty()) {
    auto chunk = chunks.get_length_prefixed(limits::kMaxStreamedSnapshotBytes);
    ASPEN_ASSERT_MSG(chunk.has_value(), "a leader's snapshot data is in the snapshot format");
    auto frame = in.on_frame(std::string(1, node::kSnapshotChunkTag) + std::string(*chunk));
    is_refused = frame.kind == node::SnapshotReception::Frame::Kind::kRefuse;
    staged += frame.record;
  }
  if (!is_refused) in.on_frame(std::string(1, node::kSnapshotMessageTag) + bare.SerializeAsString());
  auto end = in.on_end(m.from(), to.id);
  if (!end) {
    trace(fmt::format("node {} refuses a snapshot from {}: {}", to.id, m.from(), end.error().message()));
    report_snapshot(m, true);
    return;
  }
  ASPEN_ASSERT_MSG(staged == m.snapshot().data(), "staging reproduces the streamed data byte for byte");
  const auto& meta = end->snapshot().metadata();
  const bool is_new = to.staged_snapshots.stage(meta.index(), meta.term(), std::move(staged));
  auto s = to.node->step(*end);
  const auto& taken = to.core->log().unstable_snapshot();
  const bool is_taken = s.has_value() && taken && taken->metadata().index() == meta.index() &&
                        taken->metadata().term() == meta.term();
  (void)to.staged_snapshots.settle(meta.index(), meta.term(), is_new, is_taken);
  report_snapshot(m, !s.has_value());
  check_after_event(to);
  maybe_take_ready(to);
}

void Cluster::deliver(const pb::Message& m) {
  SimNode* to = node(m.to());
  // A partition that starts while a message is in flight also drops it.
  if (to == nullptr || !to->is_up || is_blocked(m.from(), m.to())) {
    ++stats_.messages_dropped;
    if (m.type() == pb::MSG_SNAP) report_snapshot(m, true);
    return;
  }
  ++stats_.messages_delivered;
  note_event(6, m.to(), static_cast<uint64_t>(m.type()) << 32 | m.from());
  if (m.type() == pb::MSG_SNAP) return deliver_snapshot(*to, m);
  if (opt_.should_plant_skip_election_restriction && (m.type() == pb::MSG_VOTE || m.type() == pb::MSG_PRE_VOTE) &&
      !to->core->log().is_up_to_date(m.index(), m.log_term())) {
    pb::Message lie = m;
    lie.set_index(to->core->log().last_index());
    lie.set_log_term(to->core->log().last_term());
    auto s = to->node->step(lie);
    (void)s;
    check_after_event(*to);
    maybe_take_ready(*to);
    return;
  }
  // Through NodeCore, as the shell steps them: it advances the node's HLC and answers writes
  // an acknowledgement commits.
  auto s = to->node->step(m);
  (void)s;  // a dropped forwarded proposal times out at its client
  check_after_event(*to);
  maybe_take_ready(*to);
}

// ---------------------------------------------------------------------------------------
// Clients

void Cluster::schedule_client(SimClient& c, uint64_t delay_us) {
  uint64_t id = c.id;
  at(delay_us, [this, id] {
    SimClient& cl = id == probe_client_.id ? probe_client_ : clients_[id - 1];
    client_issue(cl);
  });
}

void Cluster::client_issue(SimClient& c) {
  bool is_probe = c.id == probe_client_.id;
  if (phase_ != Phase::kSafety && !is_probe) return;  // only the probe works after faults heal
  if (phase_ == Phase::kDone || (is_probe && probe_stage_ > opt_.keys)) return;
  ASPEN_ASSERT(!c.is_busy);
  Operation op;
  op.client_id = c.id;
  op.invoke_time = now_us_;
  if (is_probe) {
    // Liveness probe: one write, then a linearizable read of every key.
    if (probe_stage_ == 0) {
      op.kind = OpKind::kWrite;
      op.key = "k0";
      op.value = fmt::format("probe-{}", c.seq + 1);
    } else {
      op.kind = OpKind::kRead;
      op.key = fmt::format("k{}", probe_stage_ - 1);
    }
  } else {
    op.key = fmt::format("k{}", rng_.uniform(opt_.keys));
    uint64_t roll = rng_.uniform(100);
    if (roll < 40) {
      op.kind = OpKind::kWrite;
      op.value = fmt::format("c{}-{}", c.id, c.seq + 1);
    } else if (roll < 80) {
      op.kind = OpKind::kRead;
    } else {
      op.kind = OpKind::kCas;
      op.value = fmt::format("c{}-{}", c.id, c.seq + 1);
      // Expect a value this client saw or wrote recently, or absence.
      if (!history_.empty() && rng_.chance(3, 4)) {
        const Operation& prev = history_[rng_.uniform(history_.size())];
        if (prev.key == op.key) {
          op.expected = prev.kind == OpKind::kRead ? prev.read_result : std::optional<std::string>(prev.value);
        } else {
          op.expected = fmt::format("c{}-{}", rng_.range(1, opt_.clients), rng_.range(1, c.seq + 1));
        }
      }
    }
  }
  ++c.seq;
  c.is_busy = true;
  c.token = c.seq;
  c.history_index = history_.size();
  history_.push_back(op);
  is_history_dropped_.push_back(false);

  // Send to the leader we last heard of, or any node that is still a member.
  std::vector<NodeId> candidates;
  for (auto& [id, n] : nodes_) {
    if (!n->is_retired) candidates.push_back(id);
  }
  NodeId target = c.leader_hint;
  if (target == kNoNode || rng_.chance(1, 4) || node(target) == nullptr || node(target)->is_retired) {
    target = candidates[rng_.uniform(candidates.size())];
  }
  uint64_t client_id = c.id;
  uint64_t token = c.token;
  Index read_floor = max_acked_index_;
  at(rng_.range(kClientLinkMinUs, kClientLinkMaxUs), [this, target, client_id, token, op, read_floor] {
    node_receive_request(target, client_id, token, op, read_floor);
  });
  at(opt_.client_timeout_ms * kUsPerMs, [this, client_id, token] { client_timeout(client_id, token); });
}

void Cluster::node_receive_request(NodeId to, uint64_t client_id, uint64_t token, const Operation& op,
                                   Index read_floor) {
  SimNode* n = node(to);
  if (n == nullptr || !n->is_up) return;  // the client will time out
  SimClient& c = client_id == probe_client_.id ? probe_client_ : clients_[client_id - 1];
  c.leader_hint = n->core->leader();
  note_event(7, to, client_id);
  PendingOp pending{client_id, token, op.key, read_floor, n->core->term()};
  uint64_t request_id = client_id << 32 | token;
  n->requests[request_id] = pending;
  if (op.kind == OpKind::kRead) {
    n->node->submit_read(request_id, kv::key_range(op.key),
                         opt_.should_plant_stale_reads ? node::ReadConsistency::kStale
                                                       : node::ReadConsistency::kLinearizable,
                         now_us_ / kUsPerMs);
  } else {
    kvpb::Command cmd;
    if (op.kind == OpKind::kWrite) {
      cmd.mutable_put()->set_key(op.key);
      cmd.mutable_put()->set_value(op.value);
    } else {
      auto* cas = cmd.mutable_cas();
      cas->set_key(op.key);
      cas->set_new_value(op.value);
      cas->set_expect_absent(!op.expected.has_value());
      if (op.expected) cas->set_expected_value(*op.expected);
    }
    n->node->submit_write(request_id, std::move(cmd), now_us_ / kUsPerMs);
  }
  deliver_responses(*n);
  check_after_event(*n);
  maybe_take_ready(*n);
}

void Cluster::respond(uint64_t client_id, uint64_t token, std::optional<std::string> read_value,
                      bool cas_succeeded, bool is_definite_failure, Index index) {
  at(rng_.range(kClientLinkMinUs, kClientLinkMaxUs), [=, this] {
    SimClient& c = client_id == probe_client_.id ? probe_client_ : clients_[client_id - 1];
    if (!c.is_busy || c.token != token) return;  // timed out already
    note_event(8, client_id, token);
    c.is_busy = false;
    Operation& op = history_[c.history_index];
    op.return_time = now_us_;
    if (is_definite_failure) {
      is_history_dropped_[c.history_index] = true;
      ++stats_.ops_failed;
    } else {
      op.read_result = read_value;
      op.cas_succeeded = cas_succeeded;
      if (op.kind != OpKind::kRead) max_acked_index_ = std::max(max_acked_index_, index);
      ++stats_.ops_ok;
      if (client_id == probe_client_.id) ++probe_stage_;
    }
    schedule_client(c, rng_.range(0, 20 * kUsPerMs));
  });
}

void Cluster::client_timeout(uint64_t client_id, uint64_t token) {
  SimClient& c = client_id == probe_client_.id ? probe_client_ : clients_[client_id - 1];
  if (!c.is_busy || c.token != token) return;
  note_event(9, client_id, token);
  c.is_busy = false;
  c.leader_hint = kNoNode;
  Operation& op = history_[c.history_index];
  if (op.kind == OpKind::kRead) {
    is_history_dropped_[c.history_index] = true;  // a read with no answer says nothing
  } else {
    op.is_indeterminate = true;
    ++stats_.ops_indeterminate;
  }
  schedule_client(c, rng_.range(0, 20 * kUsPerMs));
}

SimResult run_simulation(const SimOptions& options) {
  // Opened before the first node starts: every site the run reaches is counted.
  buggify::SessionOptions bo;
  bo.seed = options.seed;
  bo.may_fire = options.is_buggify_enabled && options.faults.buggify;
  buggify::Session session(bo);
  Cluster cluster(options, session);
  SimResult r = cluster.run();
  r.coverage = session.report();
  return r;
}

}  // namespace aspen::sim
