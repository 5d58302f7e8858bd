// A tiny deterministic harness for RaftCore tests: N cores, each with a MemoryLogStorage, and
// an in-memory "network" that routes the messages of every Ready.
//
// Readys are driven by the same driver as the node shell and the simulator use,
// node::BasicReadyCycle (src/node/ready_cycle.h): the three drivers are one, so the Raft
// tests check the core under the very sequence a node runs. TestNodeCore adapts a node of
// this harness (RaftCore, no KV state machine) to that driver. The sequence honours the Ready
// contract (raft.h): persist the snapshot, entries and hard state into the node's
// MemoryLogStorage, then queue the messages, then apply committed entries (calling
// apply_conf_change for conf-change entries and persisting the ConfState it returns), record
// read states, and finally call advance(). Leaders send nothing before their own write (no
// early sends, which would clamp the commit index in appends): tests see every message as
// RaftCore produced it.
//
// Messages are queued, not delivered at once; stabilize() alternates "handle every Ready" and
// "deliver every queued message" until nothing is left. Drop rules (isolate, cut, drop_if) are
// checked at delivery time. Every message any node sent is kept in sent() so that a test can
// count, say, MsgApp rejections. Nothing here reads a clock: time passes only via tick().
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/ready_cycle.h"
#include "raft/raft.h"

namespace aspen::raft::test {

struct NetworkOptions {
  uint32_t election_tick = 10;
  uint32_t heartbeat_tick = 1;
  bool pre_vote = false;
  bool check_quorum = false;
  uint64_t seed = 1;
  size_t max_inflight_msgs = 256;
  uint64_t max_size_per_msg_bytes = limits::kMaxEntriesPerMessageBytes;
  uint64_t max_uncommitted_entries_bytes = limits::kMaxUncommittedEntriesBytes;
  // Last word on each node's config (e.g. one node's flags).
  std::function<void(RaftConfig&)> tweak;
};

struct TestNode;

// A TestNode as a core the shared Ready driver runs (node::ReadyCycleCore): its RaftCore, and
// as state machine the records below (applied, applied_data, conf_states, read_states).
// Every committed entry is applied in the step that delivers it, synchronously.
class TestNodeCore {
 public:
  explicit TestNodeCore(TestNode& n) : n_(n) {}

  struct ToApply {
    std::shared_ptr<const std::vector<pb::Entry>> entries;  // null: none
    bool is_async = false;
  };
  std::optional<Ready> take_ready();
  bool is_leader() const;
  ToApply take_entries_to_apply(const Ready& rd);
  void on_log_durable(const Ready&) {}  // nothing waits for the log alone here
  void on_persisted(const Ready& rd, const std::vector<pb::Entry>& applied, const storage::WriteOutcome&);

 private:
  TestNode& n_;
};

using TestReadyCycle = node::BasicReadyCycle<TestNodeCore>;

struct TestNode {
  NodeId id = kNoNode;
  std::unique_ptr<MemoryLogStorage> storage;
  std::unique_ptr<RaftCore> core;
  // The driver of this node's Readys; it outlives a restart of `core` (same storage).
  TestReadyCycle cycle{pb::HardState{}};
  Index applied = 0;
  // Payloads of applied non-empty ENTRY_NORMAL entries, in order.
  std::vector<std::string> applied_data;
  // Every ConfState returned by apply_conf_change, in order.
  std::vector<pb::ConfState> conf_states;
  std::vector<ReadState> read_states;
  size_t snapshots_installed = 0;
};

inline std::optional<Ready> TestNodeCore::take_ready() {
  if (!n_.core->has_ready()) return std::nullopt;
  return n_.core->ready();
}

inline bool TestNodeCore::is_leader() const { return n_.core->is_leader(); }

inline TestNodeCore::ToApply TestNodeCore::take_entries_to_apply(const Ready& rd) {
  if (rd.committed_entries.empty()) return {};
  return {std::make_shared<const std::vector<pb::Entry>>(rd.committed_entries), false};
}

// Contract steps 4-6: apply, serve reads, advance.
inline void TestNodeCore::on_persisted(const Ready& rd, const std::vector<pb::Entry>& applied,
                                       const storage::WriteOutcome&) {
  TestNode& n = n_;
  for (const auto& e : applied) {
    if (e.index() <= n.applied) continue;
    EXPECT_EQ(e.index(), n.applied + 1) << "node " << n.id << " applies with a gap";
    n.applied = e.index();
    if (e.type() == pb::ENTRY_CONF_CHANGE) {
      pb::ConfChange cc;
      EXPECT_TRUE(cc.ParseFromString(e.data()));
      pb::ConfState cs = n.core->apply_conf_change(cc);
      n.storage->set_conf_state(cs);
      n.conf_states.push_back(cs);
    } else if (!e.data().empty()) {
      n.applied_data.push_back(e.data());
    }
  }
  for (const auto& rs : rd.read_states) n.read_states.push_back(rs);
  n.core->advance(rd);
}

inline pb::ConfState make_conf_state(const std::vector<NodeId>& voters,
                                     const std::vector<NodeId>& learners = {}) {
  pb::ConfState cs;
  for (NodeId id : voters) cs.add_voters(id);
  for (NodeId id : learners) cs.add_learners(id);
  return cs;
}

// A founding member's disk: a snapshot at index 1, term 1 that holds the initial membership.
inline std::unique_ptr<MemoryLogStorage> bootstrap_storage(const pb::ConfState& cs) {
  auto st = std::make_unique<MemoryLogStorage>();
  pb::Snapshot snap;
  snap.mutable_metadata()->set_index(1);
  snap.mutable_metadata()->set_term(1);
  *snap.mutable_metadata()->mutable_conf_state() = cs;
  EXPECT_TRUE(st->apply_snapshot(snap).has_value());
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  st->set_hard_state(hs);
  return st;
}

inline pb::Entry make_entry(Index index, Term term, std::string data = "") {
  pb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

inline pb::ConfChangeSingle single(pb::ConfChangeType type, NodeId id) {
  pb::ConfChangeSingle c;
  c.set_type(type);
  c.set_node_id(id);
  return c;
}

inline pb::ConfChange conf_change(std::vector<pb::ConfChangeSingle> changes,
                                  pb::ConfChangeTransition transition = pb::TRANSITION_AUTO) {
  pb::ConfChange cc;
  cc.set_transition(transition);
  for (auto& c : changes) *cc.add_changes() = c;
  return cc;
}

inline std::set<NodeId> ids_of(const google::protobuf::RepeatedField<uint64_t>& f) {
  return std::set<NodeId>(f.begin(), f.end());
}

class TestNetwork {
 public:
  // Founding members (voters and learners) start from the bootstrap snapshot.
  explicit TestNetwork(const std::vector<NodeId>& voters, NetworkOptions opt = {},
                       const std::vector<NodeId>& learners = {})
      : opt_(std::move(opt)) {
    pb::ConfState cs = make_conf_state(voters, learners);
    for (NodeId id : voters) add_node(id, bootstrap_storage(cs), 1);
    for (NodeId id : learners) add_node(id, bootstrap_storage(cs), 1);
  }

  RaftConfig config_for(NodeId id, Index applied) const {
    RaftConfig cfg;
    cfg.id = id;
    cfg.applied = applied;
    cfg.election_tick = opt_.election_tick;
    cfg.heartbeat_tick = opt_.heartbeat_tick;
    cfg.pre_vote = opt_.pre_vote;
    cfg.check_quorum = opt_.check_quorum;
    cfg.seed = opt_.seed;
    cfg.max_inflight_msgs = opt_.max_inflight_msgs;
    cfg.max_size_per_msg_bytes = opt_.max_size_per_msg_bytes;
    cfg.max_uncommitted_entries_bytes = opt_.max_uncommitted_entries_bytes;
    if (opt_.tweak) opt_.tweak(cfg);
    return cfg;
  }

  // Adds a node on a prepared disk (e.g. one holding a conflicting log).
  TestNode& add_node(NodeId id, std::unique_ptr<MemoryLogStorage> storage, Index applied) {
    auto n = std::make_unique<TestNode>();
    n->id = id;
    n->storage = std::move(storage);
    n->applied = applied;
    n->cycle = TestReadyCycle(n->storage->hard_state());
    auto core = RaftCore::create(config_for(id, applied), n->storage.get());
    EXPECT_TRUE(core.has_value()) << (core ? "" : core.error().to_string());
    n->core = std::move(*core);
    TestNode& ref = *n;
    nodes_[id] = std::move(n);
    return ref;
  }

  // A node joining later: empty disk, it learns everything from the leader.
  TestNode& add_empty_node(NodeId id) { return add_node(id, std::make_unique<MemoryLogStorage>(), 0); }

  TestNode& node(NodeId id) { return *nodes_.at(id); }
  RaftCore& core(NodeId id) { return *nodes_.at(id)->core; }
  std::vector<NodeId> ids() const {
    std::vector<NodeId> out;
    for (const auto& [id, n] : nodes_) out.push_back(id);
    return out;
  }

  // --- faults ---
  void isolate(NodeId id) { isolated_.insert(id); }
  void rejoin(NodeId id) { isolated_.erase(id); }
  void cut(NodeId a, NodeId b) {
    cuts_.insert({a, b});
    cuts_.insert({b, a});
  }
  void heal() {
    isolated_.clear();
    cuts_.clear();
    drop_if = nullptr;
  }
  // Extra drop rule, checked at delivery; return true to drop.
  std::function<bool(const pb::Message&)> drop_if;

  bool should_drop(const pb::Message& m) const {
    if (!nodes_.contains(m.to())) return true;
    if (isolated_.contains(m.to()) || isolated_.contains(m.from())) return true;
    if (cuts_.contains({m.from(), m.to()})) return true;
    return drop_if && drop_if(m);
  }

  // --- Ready handling (the contract, in order, through the shared driver) ---
  // Handles one Ready of `id` if it has one; returns the messages it sent (also queued).
  std::vector<pb::Message> handle_ready(NodeId id) {
    TestNode& n = node(id);
    TestNodeCore core(n);
    auto step = n.cycle.begin(core, /*is_early_send=*/false);
    if (!step) return {};
    // 1-2. snapshot, entries and hard state
    persist(n, step->batch);
    // 3. messages
    std::vector<pb::Message> messages = n.cycle.log_durable(core, *step);
    for (const auto& m : messages) {
      sent_.push_back(m);
      queue_.push_back(m);
    }
    // 4-6. committed entries, reads, advance (TestNodeCore::on_persisted). log_durable()
    // took every message, so finish() has none left to return.
    EXPECT_TRUE(n.cycle.finish(core, *step, {}).empty());
    return messages;
  }

  // Handles every pending Ready of every node once. Returns true if any node had one.
  bool handle_all_ready() {
    bool any = false;
    for (const auto& [id, n] : nodes_) {
      if (n->core->has_ready()) {
        handle_ready(id);
        any = true;
      }
    }
    return any;
  }

  // Delivers one message now, unless a drop rule applies.
  void deliver(const pb::Message& m) {
    if (should_drop(m)) {
      dropped_.push_back(m);
      return;
    }
    auto s = node(m.to()).core->step(m);
    if (!s) step_errors_.push_back(s.error());
  }

  // Delivers (or drops) every message queued so far; replies queue up for the next round.
  void deliver_queued() {
    std::deque<pb::Message> batch;
    batch.swap(queue_);
    for (const auto& m : batch) deliver(m);
  }

  // Runs Ready handling and delivery until no node has anything left to do.
  void stabilize() {
    for (int round = 0; round < 10000; ++round) {
      handle_all_ready();
      if (queue_.empty()) return;
      deliver_queued();
    }
    ADD_FAILURE() << "the network did not quiesce";
  }

  // Injects a message as if it arrived from the network (through the drop rules).
  void send(const pb::Message& m) { queue_.push_back(m); }
  // Removes and returns every queued message (for tests that route by hand).
  std::vector<pb::Message> take_queued() {
    std::vector<pb::Message> out(queue_.begin(), queue_.end());
    queue_.clear();
    return out;
  }

  // --- time ---
  // Ticks each of `which` (all nodes if empty) once, then stabilizes; `rounds` times.
  void tick(int rounds = 1, std::vector<NodeId> which = {}) {
    if (which.empty()) which = ids();
    for (int r = 0; r < rounds; ++r) {
      for (NodeId id : which) core(id).tick();
      stabilize();
    }
  }

  // Starts an election on `id` and runs it to completion.
  void elect(NodeId id) {
    core(id).campaign();
    stabilize();
  }

  // --- observation ---
  const std::vector<pb::Message>& sent() const { return sent_; }
  const std::vector<pb::Message>& dropped() const { return dropped_; }
  const std::vector<Error>& step_errors() const { return step_errors_; }
  void clear_log() {
    sent_.clear();
    dropped_.clear();
    step_errors_.clear();
  }
  // Messages sent of a type, optionally filtered by sender and receiver (0 = any).
  std::vector<pb::Message> sent_of(pb::MessageType type, NodeId from = kNoNode, NodeId to = kNoNode) const {
    std::vector<pb::Message> out;
    for (const auto& m : sent_) {
      if (m.type() != type) continue;
      if (from != kNoNode && m.from() != from) continue;
      if (to != kNoNode && m.to() != to) continue;
      out.push_back(m);
    }
    return out;
  }

  // The one node that is leader in the highest term, or kNoNode.
  NodeId leader() const {
    NodeId best = kNoNode;
    Term best_term = 0;
    for (const auto& [id, n] : nodes_) {
      if (n->core->is_leader() && n->core->term() >= best_term) {
        best = id;
        best_term = n->core->term();
      }
    }
    return best;
  }
  size_t leader_count() const {
    size_t count = 0;
    for (const auto& [id, n] : nodes_) count += n->core->is_leader() ? 1 : 0;
    return count;
  }

  // Entries [lo, last] of a node's log as seen by its core.
  std::vector<pb::Entry> log_entries(NodeId id, Index lo = 0) {
    const RaftLog& log = core(id).log();
    if (lo == 0) lo = log.first_index();
    auto ents = log.slice(lo, log.last_index() + 1, kNoLimit);
    EXPECT_TRUE(ents.has_value());
    return ents ? *ents : std::vector<pb::Entry>{};
  }

 private:
  // The log part of a step, as Store::write_log does it: a snapshot replaces the log (and
  // the state machine: everything up to it counts as applied), then entries, hard state.
  static void persist(TestNode& n, const storage::WriteBatch& batch) {
    if (batch.snapshot != nullptr) {
      auto s = n.storage->apply_snapshot(*batch.snapshot);
      EXPECT_TRUE(s.has_value()) << "node " << n.id << ": " << (s ? "" : s.error().to_string());
      n.applied = std::max(n.applied, batch.snapshot->metadata().index());
      ++n.snapshots_installed;
    }
    if (batch.entries != nullptr && !batch.entries->empty()) {
      auto s = n.storage->append(*batch.entries);
      EXPECT_TRUE(s.has_value()) << "node " << n.id << ": " << (s ? "" : s.error().to_string());
    }
    if (batch.hard_state != nullptr) n.storage->set_hard_state(*batch.hard_state);
  }

  NetworkOptions opt_;
  std::map<NodeId, std::unique_ptr<TestNode>> nodes_;
  std::deque<pb::Message> queue_;
  std::vector<pb::Message> sent_;
  std::vector<pb::Message> dropped_;
  std::vector<Error> step_errors_;
  std::set<NodeId> isolated_;
  std::set<std::pair<NodeId, NodeId>> cuts_;
};

// Terms of entries, for compact log comparisons: {2, 2, 3} etc.
inline std::vector<Term> terms_of(const std::vector<pb::Entry>& ents) {
  std::vector<Term> out;
  for (const auto& e : ents) out.push_back(e.term());
  return out;
}

inline pb::Message make_msg(pb::MessageType type, NodeId from, NodeId to, Term term) {
  pb::Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

}  // namespace aspen::raft::test
