// NodeCore on a single-node cluster over MemStore: the request bookkeeping around Raft.
#include "node/node_core.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/limits.h"
#include "kv/commands.h"
#include "node/ready_cycle.h"
#include "storage/mem_store.h"

namespace aspen::node {
namespace {

// Nodes 1 and 2 as the founding voters.
pb::ConfState two_voters() {
  pb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  return cs;
}

// Runs Ready cycles through the shared driver (the shell's and the simulator's) until there
// is nothing left; returns every response and adds every message sent to `sent`.
std::vector<Response> drive_core(NodeCore& core, storage::Store& store, std::vector<pb::Message>* sent = nullptr) {
  ReadyCycle cycle(store.initial_state().hard_state);
  std::vector<Response> out;
  auto collect = [&](std::vector<pb::Message> msgs) {
    if (sent != nullptr) sent->insert(sent->end(), msgs.begin(), msgs.end());
    for (auto& r : core.take_responses()) out.push_back(std::move(r));
  };
  for (int i = 0; i < 100; ++i) {
    auto step = cycle.begin(core);
    collect({});
    if (!step) break;
    collect(step->early);
    auto w = store.write(step->batch);
    EXPECT_TRUE(w.has_value());
    // The store applied the entries at once; an asynchronous apply is reported after the
    // step, as the shell's apply thread does.
    const bool is_async = step->is_apply_async;
    collect(cycle.finish(core, *step, is_async ? storage::WriteOutcome{} : *w));
    if (is_async) {
      core.on_applied(*step->to_apply, w->applied);
      collect({});
    }
  }
  return out;
}

class SingleNode {
 public:
  explicit SingleNode(std::initializer_list<uint64_t> voters = {1}, size_t max_pending_requests = 10000) {
    pb::ConfState cs;
    for (auto id : voters) cs.add_voters(id);
    EXPECT_TRUE(store.bootstrap(cs).has_value());
    NodeCoreConfig cfg;
    cfg.raft.id = 1;
    cfg.incarnation = 1;
    cfg.knobs.request_timeout_ms = 3000;
    cfg.knobs.max_pending_requests = max_pending_requests;
    auto c = NodeCore::create(cfg, store);
    EXPECT_TRUE(c.has_value());
    core = std::move(*c);
  }

  std::vector<Response> drive() { return drive_core(*core, store); }

  void become_leader() {
    core->raft().campaign();
    drive();
    ASSERT_TRUE(core->is_leader());
  }

  storage::MemStore store;
  std::unique_ptr<NodeCore> core;
};

kvpb::Command put_cmd(std::string key, std::string value, uint64_t lease = 0) {
  kvpb::Command c;
  c.mutable_put()->set_key(std::move(key));
  c.mutable_put()->set_value(std::move(value));
  c.mutable_put()->set_lease_id(lease);
  return c;
}

kvpb::RangeRequest get_req(const std::string& key, uint64_t revision = 0) {
  kvpb::RangeRequest r = kv::key_range(key);
  r.set_revision(revision);
  return r;
}

kvpb::Command cas_cmd(std::string key, std::string expected, std::string new_value) {
  kvpb::Command c;
  c.mutable_cas()->set_key(std::move(key));
  c.mutable_cas()->set_expected_value(std::move(expected));
  c.mutable_cas()->set_new_value(std::move(new_value));
  return c;
}

// `answers` is exactly one read, request `id`, that found `key` with `value`.
void expect_one_read(const std::vector<Response>& answers, uint64_t id, const std::string& value) {
  ASSERT_EQ(answers.size(), 1u) << "the read, once; the write is not answered again";
  EXPECT_EQ(answers[0].request_id, id);
  ASSERT_TRUE(answers[0].read.has_value());
  ASSERT_EQ(answers[0].read->kvs_size(), 1);
  EXPECT_EQ(answers[0].read->kvs(0).value(), value);
}

// The two phases of a Ready (store.h): a put's result is fixed when proposed, so it is
// answered as soon as its entry is committed and durable in the log, while the apply still
// runs; a compare-and-swap waits for the apply that decides it.
TEST(NodeCore, PutIsAnsweredWhenTheLogIsDurableAndCasWhenApplied) {
  SingleNode n;
  n.become_leader();
  ReadyCycle cycle(n.store.initial_state().hard_state);
  n.core->submit_write(7, put_cmd("k", "v"), 10);
  kvpb::Command cas;
  cas.mutable_cas()->set_key("k");
  cas.mutable_cas()->set_expected_value("v");
  cas.mutable_cas()->set_new_value("w");
  n.core->submit_write(8, cas, 10);
  auto step = cycle.begin(*n.core);
  ASSERT_TRUE(step.has_value());
  ASSERT_EQ(step->ready->committed_entries.size(), 2u) << "one voter: committed when proposed";
  ASSERT_TRUE(n.store.write_log(step->batch).has_value());
  cycle.log_durable(*n.core, *step);
  auto early = n.core->take_responses();
  ASSERT_EQ(early.size(), 1u);
  EXPECT_EQ(early[0].request_id, 7u);
  ASSERT_TRUE(early[0].write.has_value());
  EXPECT_LT(n.store.applied_index(), early[0].index) << "answered before its apply";
  auto applied = n.store.apply(step->batch);
  ASSERT_TRUE(applied.has_value());
  storage::WriteOutcome out;
  out.applied = std::move(*applied);
  if (step->is_apply_async) {
    cycle.finish(*n.core, *step, storage::WriteOutcome{});
    n.core->on_applied(*step->to_apply, out.applied);
  } else {
    cycle.finish(*n.core, *step, out);
  }
  auto late = n.core->take_responses();
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].request_id, 8u);
  ASSERT_TRUE(late[0].write.has_value());
  EXPECT_TRUE(late[0].write->succeeded());
}

// An apply's results are final before the store commits it (NodeCore::on_results_known):
// a compare-and-swap is answered from them, while a linearizable read behind it waits for
// the apply to finish (on_applied), when the store shows the change, and nothing is
// answered twice.
TEST(NodeCore, AnApplyResultAnswersItsWriteAndReadsWaitForTheStore) {
  SingleNode n;
  n.become_leader();
  n.core->submit_write(1, put_cmd("k", "v"), 10);
  n.drive();
  ReadyCycle cycle(n.store.initial_state().hard_state);
  n.core->submit_write(8, cas_cmd("k", "v", "w"), 10);
  n.core->submit_read(9, get_req("k"), ReadConsistency::kLinearizable, 10);
  std::vector<Response> answers;
  std::optional<std::vector<storage::AppliedEntry>> results;
  for (int i = 0; i < 10 && !results; ++i) {
    auto step = cycle.begin(*n.core);
    if (!step) break;
    ASSERT_TRUE(n.store.write_log(step->batch).has_value());
    cycle.log_durable(*n.core, *step);
    if (step->to_apply == nullptr) {
      cycle.finish(*n.core, *step, storage::WriteOutcome{});
      continue;
    }
    ASSERT_TRUE(step->is_apply_async);
    cycle.finish(*n.core, *step, storage::WriteOutcome{});
    for (auto& r : n.core->take_responses()) answers.push_back(std::move(r));
    EXPECT_TRUE(answers.empty()) << "nothing is answered before its apply's results";
    auto batch = step->batch;
    batch.on_results = [&](std::vector<storage::AppliedEntry>& r) { results = r; };
    auto applied = n.store.apply(batch);
    ASSERT_TRUE(applied.has_value());
    ASSERT_TRUE(results.has_value());
    n.core->on_results_known(*results);
    auto early = n.core->take_responses();
    ASSERT_EQ(early.size(), 1u) << "the write, not the read";
    EXPECT_EQ(early[0].request_id, 8u);
    ASSERT_TRUE(early[0].write.has_value());
    EXPECT_TRUE(early[0].write->succeeded());
    n.core->on_applied(*step->to_apply, *applied);
    answers = n.core->take_responses();
  }
  ASSERT_TRUE(results.has_value()) << "the compare-and-swap was applied";
  for (auto& r : n.drive()) answers.push_back(std::move(r));
  expect_one_read(answers, 9, "w");
}

// After a write is answered from its apply's results, a stale read on this member waits
// until the store shows that write (NodeCore::answered_from_results_through), so it never
// misses an acknowledged write; with nothing answered that way it is served at once.
TEST(NodeCore, AStaleReadAfterAnAnswerFromResultsWaitsForThatApply) {
  SingleNode n;
  n.become_leader();
  n.core->submit_write(1, put_cmd("k", "v"), 10);
  n.drive();
  n.core->submit_read(2, get_req("k"), ReadConsistency::kStale, 10);
  auto at_once = n.core->take_responses();
  ASSERT_EQ(at_once.size(), 1u) << "nothing answered early: served at once";
  ReadyCycle cycle(n.store.initial_state().hard_state);
  n.core->submit_write(8, cas_cmd("k", "v", "w"), 10);
  auto step = cycle.begin(*n.core);
  ASSERT_TRUE(step.has_value());
  ASSERT_NE(step->to_apply, nullptr);
  ASSERT_TRUE(step->is_apply_async);
  ASSERT_TRUE(n.store.write_log(step->batch).has_value());
  cycle.finish(*n.core, *step, storage::WriteOutcome{});
  // The apply thread reports the result before its commit (here: before the store applied).
  const pb::Entry& e = step->to_apply->back();
  storage::AppliedEntry result{e.index(), e.term(), pb::ENTRY_NORMAL, {}};
  result.result.set_succeeded(true);
  result.result.set_revision(e.index());
  n.core->on_results_known({result});
  EXPECT_EQ(n.core->answered_from_results_through(), e.index());
  auto answered = n.core->take_responses();
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].request_id, 8u);
  n.core->submit_read(9, get_req("k"), ReadConsistency::kStale, 10);
  EXPECT_TRUE(n.core->take_responses().empty()) << "served before the store showed the answered write";
  auto applied = n.store.apply(step->batch);
  ASSERT_TRUE(applied.has_value());
  n.core->on_applied(*step->to_apply, *applied);
  expect_one_read(n.core->take_responses(), 9, "w");
}

// Writes and membership changes wait in one bounded queue: past it, both are refused at
// once with Unavailable naming the limit, and nothing is proposed.
TEST(NodeCore, WritesAndMembershipChangesShareThePendingLimit) {
  SingleNode n({1}, 2);
  n.become_leader();
  const Index before = n.core->raft().log().last_index();
  n.core->submit_write(1, put_cmd("a", "1"), 10);
  n.core->submit_write(2, put_cmd("b", "2"), 10);
  n.core->submit_write(3, put_cmd("c", "3"), 10);
  pb::ConfChange cc;
  auto* add = cc.add_changes();
  add->set_type(pb::CONF_CHANGE_ADD_LEARNER);
  add->set_node_id(2);
  n.core->submit_conf_change(4, cc, 10);
  auto refused = n.core->take_responses();
  ASSERT_EQ(refused.size(), 2u);
  for (const auto& r : refused) {
    EXPECT_TRUE(r.request_id == 3 || r.request_id == 4);
    ASSERT_FALSE(r.write.has_value());
    EXPECT_EQ(r.write.error().code(), ErrorCode::kUnavailable);
    EXPECT_NE(r.write.error().message().find("limit 2"), std::string::npos) << r.write.error().message();
  }
  EXPECT_EQ(n.core->raft().log().last_index(), before + 2);
}

TEST(NodeCore, WriteIsAnsweredOnceItsEntryApplies) {
  SingleNode n;
  n.become_leader();
  n.core->submit_write(7, put_cmd("k", "v"), 1000);
  EXPECT_EQ(n.core->pending_requests(), 1u);
  auto out = n.drive();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request_id, 7u);
  ASSERT_TRUE(out[0].write.has_value());
  EXPECT_GT(out[0].write->revision(), 1u);
  EXPECT_EQ(n.core->pending_requests(), 0u);
}

TEST(NodeCore, LinearizableAndStaleReadsSeeTheWrite) {
  SingleNode n;
  n.become_leader();
  n.core->submit_write(1, put_cmd("k", "v"), 1000);
  n.drive();
  n.core->submit_read(2, get_req("k"), ReadConsistency::kLinearizable, 1000);
  n.core->submit_read(3, get_req("k"), ReadConsistency::kLinearizable, 1000);
  auto out = n.drive();
  ASSERT_EQ(out.size(), 2u);
  for (const auto& r : out) {
    ASSERT_TRUE(r.read.has_value());
    EXPECT_EQ(r.read->kvs(0).value(), "v");
  }
  n.core->submit_read(4, get_req("k"), ReadConsistency::kStale, 1000);
  auto stale = n.core->take_responses();  // answered at once, no Ready needed
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].read->kvs(0).value(), "v");
}

// A watcher may get a change before the member's store commits it (docs/watch.md); a stale
// read at that revision on the same member then waits for the apply instead of failing.
TEST(NodeCore, AStaleReadAtARevisionCommittedButNotYetAppliedWaitsForTheApply) {
  SingleNode n;
  n.become_leader();
  n.core->submit_write(1, put_cmd("k", "v1"), 1000);
  n.drive();
  auto before = n.store.range(get_req("k"));
  ASSERT_TRUE(before.has_value());
  const uint64_t next_revision = before->revision() + 1;

  n.core->submit_write(2, put_cmd("k", "v2"), 1000);
  ReadyCycle cycle(n.store.initial_state().hard_state);
  std::vector<Response> out;
  bool was_parked = false;
  for (int i = 0; i < 100; ++i) {
    auto step = cycle.begin(*n.core);
    if (!step) break;
    if (step->to_apply && !was_parked) {
      // Committed, handed to the store, not applied yet.
      n.core->submit_read(3, get_req("k", next_revision), ReadConsistency::kStale, 1000);
      EXPECT_TRUE(n.core->take_responses().empty()) << "answered before the apply";
      was_parked = true;
    }
    auto w = n.store.write(step->batch);
    ASSERT_TRUE(w.has_value());
    const bool is_async = step->is_apply_async;
    cycle.finish(*n.core, *step, is_async ? storage::WriteOutcome{} : *w);
    if (is_async) n.core->on_applied(*step->to_apply, w->applied);
    for (auto& r : n.core->take_responses()) out.push_back(std::move(r));
  }
  ASSERT_TRUE(was_parked) << "no step applied the write";
  auto read = std::find_if(out.begin(), out.end(), [](const Response& r) { return r.request_id == 3; });
  ASSERT_NE(read, out.end());
  ASSERT_TRUE(read->read.has_value()) << read->read.error().to_string();
  EXPECT_EQ(read->read->revision(), next_revision);
  EXPECT_EQ(read->read->kvs(0).value(), "v2");
  EXPECT_EQ(n.core->pending_requests(), 0u);

  // A revision nobody has committed is refused at once, as before.
  n.core->submit_read(4, get_req("k", next_revision + 10), ReadConsistency::kStale, 1000);
  auto refused = n.core->take_responses();
  ASSERT_EQ(refused.size(), 1u);
  ASSERT_FALSE(refused[0].read.has_value());
  EXPECT_EQ(refused[0].read.error().code(), ErrorCode::kInvalidArgument);
}

TEST(NodeCore, WriteWithoutALeaderFailsAtOnceAndSaysWhy) {
  SingleNode n({1, 2, 3});  // nobody elected
  n.core->submit_write(1, put_cmd("k", "v"), 1000);
  auto out = n.core->take_responses();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_FALSE(out[0].write.has_value());
  EXPECT_EQ(out[0].write.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(out[0].write.error().message().find("no leader"), std::string::npos);
  n.core->submit_read(2, get_req("k"), ReadConsistency::kLinearizable, 1000);
  auto reads = n.drive();
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_FALSE(reads[0].read.has_value());
}

TEST(NodeCore, InvalidRequestsAreRefusedBeforeRaft) {
  SingleNode n;
  n.become_leader();
  Index before = n.core->raft().log().last_index();
  n.core->submit_write(1, put_cmd(std::string(limits::kMaxKeySizeBytes + 1, 'k'), "v"), 1000);
  kvpb::RangeRequest huge;
  huge.set_start("a");
  huge.set_limit(limits::kMaxScanResults + 1);
  n.core->submit_read(2, huge, ReadConsistency::kLinearizable, 1000);
  auto out = n.core->take_responses();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].write.error().code(), ErrorCode::kKeyTooLarge);
  EXPECT_EQ(out[1].read.error().code(), ErrorCode::kScanTooLarge);
  EXPECT_EQ(n.core->raft().log().last_index(), before);
}

TEST(NodeCore, StalledWriteTimesOutWithAnHonestError) {
  SingleNode n;
  n.become_leader();
  n.core->submit_write(1, put_cmd("k", "v"), 1000);
  // The storage thread never reports back; the request's deadline passes.
  n.core->tick(3999);
  EXPECT_TRUE(n.core->take_responses().empty());
  n.core->tick(4001);
  auto out = n.core->take_responses();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].write.error().code(), ErrorCode::kTimeout);
  EXPECT_NE(out[0].write.error().message().find("may or may not"), std::string::npos);
}

// The shell passes its wall clock, which can be stepped back (NTP, an operator) while a
// write waits: its deadline still comes request_timeout_ms of elapsed time later, not once
// the clock has caught up again; and the leader's stamp never goes back with the clock.
TEST(NodeCore, WallClockSteppedBackNeitherHoldsADeadlineNorMovesStampsBack) {
  SingleNode n;
  n.become_leader();
  n.core->submit_write(1, put_cmd("k", "v"), 100'000);
  n.core->tick(40'000);  // stepped back a minute; the storage thread never reports back
  n.core->tick(42'999);
  EXPECT_TRUE(n.core->take_responses().empty());
  n.core->tick(43'001);  // 3,001 ms have elapsed since the write came in
  auto out = n.core->take_responses();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].write.error().code(), ErrorCode::kTimeout);

  n.core->submit_write(2, put_cmd("k", "w"), 43'100);
  n.drive();
  const Index last = n.store.last_index();
  auto entries = n.store.entries(last, last + 1, UINT64_MAX);
  ASSERT_TRUE(entries && entries->size() == 1u);
  kvpb::Command stamped;
  ASSERT_TRUE(stamped.ParseFromString(entries->front().data()));
  EXPECT_EQ(stamped.put().value(), "w");
  EXPECT_EQ(stamped.timestamp_ms(), 100'000u);  // not 43,100: lease expiry never goes back
}

TEST(NodeCore, LeaderExpiresLeasesByItsClock) {
  SingleNode n;
  n.become_leader();
  kvpb::Command grant;
  grant.mutable_lease_grant()->set_id(5);
  grant.mutable_lease_grant()->set_ttl_ms(2000);
  n.core->submit_write(1, grant, 10'000);
  n.core->submit_write(2, put_cmd("session", "alive", 5), 10'000);
  n.drive();
  n.core->tick(11'000);  // within the TTL
  n.drive();
  EXPECT_EQ(n.store.list_leases(0, SIZE_MAX)->size(), 1u);
  EXPECT_EQ(n.core->lease_expiries_proposed(), 0u);
  n.core->tick(12'500);  // past it
  n.drive();
  EXPECT_TRUE(n.store.list_leases(0, SIZE_MAX)->empty());
  EXPECT_EQ(n.core->lease_expiries_proposed(), 1u);
  auto r = n.store.range(get_req("session"));
  EXPECT_EQ(r->kvs_size(), 0);
}

// A follower's life on a store that survives restarts, driven by hand: what it sends is
// collected so a test can answer as the leader (node 2) would.
class FollowerLife {
 public:
  FollowerLife(storage::MemStore& store, uint64_t incarnation) : store_(store) {
    NodeCoreConfig cfg;
    cfg.raft.id = 1;
    cfg.incarnation = incarnation;
    auto c = NodeCore::create(cfg, store_);
    EXPECT_TRUE(c.has_value());
    core = std::move(*c);
  }

  void receive(pb::MessageType type, std::string context = "", Index index = 0) {
    pb::Message m;
    m.set_type(type);
    m.set_from(2);
    m.set_to(1);
    m.set_term(2);
    m.set_commit(1);
    m.set_index(index);
    m.set_context(std::move(context));
    ASSERT_TRUE(core->step(m).has_value());
  }

  std::vector<Response> drive() { return drive_core(*core, store_, &sent); }

  std::string last_read_index_context() const {
    for (auto it = sent.rbegin(); it != sent.rend(); ++it) {
      if (it->type() == pb::MSG_READ_INDEX) return it->context();
    }
    ADD_FAILURE() << "no ReadIndex request was sent";
    return "";
  }

  std::unique_ptr<NodeCore> core;
  std::vector<pb::Message> sent;

 private:
  storage::MemStore& store_;
};

// Simulator seed 914173: a node restarted and its new read took the leader's answer to a
// request of its earlier life (same id, counter back at 1), computed at an older read point.
// Contexts now name the life, so that answer serves nothing.
TEST(NodeCore, ReadIndexAnswerForAnEarlierLifeServesNoRead) {
  storage::MemStore store;
  const pb::ConfState cs = two_voters();
  ASSERT_TRUE(store.bootstrap(cs).has_value());

  std::string old_context;
  {
    FollowerLife first(store, 0x1111);
    first.receive(pb::MSG_HEARTBEAT);
    first.drive();
    first.core->submit_read(10, get_req("k"), ReadConsistency::kLinearizable, 1000);
    first.drive();
    old_context = first.last_read_index_context();
  }
  FollowerLife second(store, 0x2222);
  second.receive(pb::MSG_HEARTBEAT);
  second.drive();
  second.core->submit_read(11, get_req("k"), ReadConsistency::kLinearizable, 2000);
  second.drive();
  std::string new_context = second.last_read_index_context();
  EXPECT_NE(new_context, old_context);

  second.receive(pb::MSG_READ_INDEX_RESP, old_context, 1);
  EXPECT_TRUE(second.drive().empty()) << "an answer meant for the earlier life served a read";
  EXPECT_EQ(second.core->pending_requests(), 1u);

  second.receive(pb::MSG_READ_INDEX_RESP, new_context, 1);
  auto out = second.drive();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request_id, 11u);
  EXPECT_TRUE(out[0].read.has_value());
  EXPECT_EQ(out[0].index, 1u);
}

// A leader that could not confirm its leadership refuses the read; the node answers at once.
TEST(NodeCore, RefusedReadPointFailsTheReadsBehindIt) {
  storage::MemStore store;
  const pb::ConfState cs = two_voters();
  ASSERT_TRUE(store.bootstrap(cs).has_value());
  FollowerLife n(store, 7);
  n.receive(pb::MSG_HEARTBEAT);
  n.drive();
  n.core->submit_read(5, get_req("k"), ReadConsistency::kLinearizable, 1000);
  n.drive();
  pb::Message refusal;
  refusal.set_type(pb::MSG_READ_INDEX_RESP);
  refusal.set_from(2);
  refusal.set_to(1);
  refusal.set_term(2);
  refusal.set_reject(true);
  refusal.set_context(n.last_read_index_context());
  ASSERT_TRUE(n.core->step(refusal).has_value());
  auto out = n.drive();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_FALSE(out[0].read.has_value());
  EXPECT_EQ(out[0].read.error().code(), ErrorCode::kNotLeader);
  EXPECT_EQ(n.core->pending_requests(), 0u);
}

// §10.2.1 with a guard: a leader's appends may leave before its own fsync, but never with a
// commit index beyond what the leader already holds durably.
raft::Ready leader_ready_with_entries(Index first, Index last, Index commit) {
  raft::Ready rd;
  for (Index i = first; i <= last; ++i) {
    pb::Entry e;
    e.set_index(i);
    e.set_term(3);
    rd.entries.push_back(e);
  }
  pb::Message app;
  app.set_type(pb::MSG_APP);
  app.set_to(2);
  app.set_commit(commit);
  rd.messages.push_back(app);
  pb::Message hb;
  hb.set_type(pb::MSG_HEARTBEAT);
  hb.set_to(3);
  hb.set_commit(commit);
  rd.messages.push_back(hb);
  pb::Message read_resp;
  read_resp.set_type(pb::MSG_READ_INDEX_RESP);
  read_resp.set_to(3);
  rd.messages.push_back(read_resp);
  return rd;
}

TEST(EarlyMessages, LeaderAppendsLeaveEarlyWithCommitClampedToItsDurableLog) {
  pb::HardState persisted;
  persisted.set_term(3);
  persisted.set_vote(1);
  auto rd = leader_ready_with_entries(5, 7, 7);
  auto early = take_early_messages(rd, true, persisted);
  ASSERT_EQ(early.size(), 2u);
  for (const auto& m : early) EXPECT_EQ(m.commit(), 4u) << "commit must not pass the last durable entry";
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type(), pb::MSG_READ_INDEX_RESP) << "read-index answers wait for the fsync";
}

TEST(EarlyMessages, CommitWithinTheDurableLogIsKept) {
  pb::HardState persisted;
  persisted.set_term(3);
  auto rd = leader_ready_with_entries(5, 7, 3);
  auto early = take_early_messages(rd, true, persisted);
  ASSERT_EQ(early.size(), 2u);
  EXPECT_EQ(early[0].commit(), 3u);
}

TEST(EarlyMessages, NothingLeavesEarlyFromFollowersOrWhenTermOrVoteChanges) {
  pb::HardState persisted;
  persisted.set_term(3);
  auto rd = leader_ready_with_entries(5, 7, 7);
  EXPECT_TRUE(take_early_messages(rd, false, persisted).empty());
  EXPECT_EQ(rd.messages.size(), 3u);
  rd.hard_state = pb::HardState();
  rd.hard_state->set_term(4);
  EXPECT_TRUE(take_early_messages(rd, true, persisted).empty());
  rd.hard_state->set_term(3);
  rd.hard_state->set_vote(2);
  EXPECT_TRUE(take_early_messages(rd, true, persisted).empty());
  rd.hard_state.reset();
  rd.snapshot = pb::Snapshot();
  EXPECT_TRUE(take_early_messages(rd, true, persisted).empty());
  EXPECT_EQ(rd.messages.size(), 3u);
}

// An apply-only Ready skips the sync (a crash may undo it; entries are re-applied), unless
// it applies a membership change: members act on the membership they applied.
TEST(WriteBatchFor, ApplyOnlyBatchSkipsTheSyncUnlessItAppliesAMembershipChange) {
  pb::HardState persisted;
  persisted.set_term(3);
  persisted.set_vote(1);
  persisted.set_commit(4);
  raft::Ready rd;
  rd.hard_state = persisted;
  rd.hard_state->set_commit(5);
  pb::Entry normal;
  normal.set_index(5);
  normal.set_term(3);
  rd.committed_entries.push_back(normal);
  EXPECT_FALSE(write_batch_for(rd, &persisted).is_sync_required);
  EXPECT_TRUE(write_batch_for(rd, nullptr).is_sync_required) << "unknown durable state counts as changed";

  pb::Entry cc;
  cc.set_index(6);
  cc.set_term(3);
  cc.set_type(pb::ENTRY_CONF_CHANGE);
  rd.committed_entries.push_back(cc);
  EXPECT_TRUE(write_batch_for(rd, &persisted).is_sync_required);
}

// Node 1 leads a two-voter cluster; node 2's answers are written by hand.
class LeaderOfTwo {
 public:
  explicit LeaderOfTwo(bool is_apply_deferred = false) {
    EXPECT_TRUE(store.bootstrap(two_voters()).has_value());
    NodeCoreConfig cfg;
    cfg.raft.id = 1;
    cfg.raft.pre_vote = false;
    cfg.incarnation = 9;
    cfg.knobs.should_defer_apply = is_apply_deferred;
    core = std::move(*NodeCore::create(cfg, store));
    core->raft().campaign();
    drive();
    receive(pb::MSG_VOTE_RESP, 0);
    drive();
    EXPECT_TRUE(core->is_leader());
    ack(core->raft().log().last_index());  // commits the leader's empty entry
    drive();
  }

  void receive(pb::MessageType type, Index index) {
    pb::Message m;
    m.set_type(type);
    m.set_from(2);
    m.set_to(1);
    m.set_term(core->raft().term());
    m.set_index(index);
    ASSERT_TRUE(core->step(m).has_value());
  }
  void ack(Index index) { receive(pb::MSG_APP_RESP, index); }

  // Persists one Ready (if any); returns the responses given out before and after the write.
  std::pair<std::vector<Response>, std::vector<Response>> cycle_once() {
    std::pair<std::vector<Response>, std::vector<Response>> out;
    auto rd = core->take_ready();
    out.first = core->take_responses();
    if (!rd) return out;
    for (const auto& m : rd->messages) {
      if (m.type() == pb::MSG_HEARTBEAT && !m.context().empty()) last_round = m.context();
    }
    // As ReadyCycle does it: the core says which committed entries the store applies now.
    auto to_apply = core->take_entries_to_apply(*rd);
    auto batch = write_batch_for(*rd);
    batch.committed = to_apply.entries.get();
    auto w = store.write(batch);
    EXPECT_TRUE(w.has_value());
    static const std::vector<pb::Entry> kNone;
    if (to_apply.is_async) {
      // As the shell's apply thread: reported after the step.
      core->on_persisted(*rd, kNone, storage::WriteOutcome{});
      core->on_applied(*to_apply.entries, w->applied);
    } else {
      core->on_persisted(*rd, to_apply.entries ? *to_apply.entries : kNone, *w);
    }
    out.second = core->take_responses();
    applied_batches += to_apply.entries ? 1 : 0;
    return out;
  }
  void drive() {
    for (int i = 0; i < 20; ++i) cycle_once();
  }

  storage::MemStore store;
  std::unique_ptr<NodeCore> core;
  std::string last_round;  // context of the last read-confirmation heartbeat sent
  int applied_batches = 0;  // Readies whose write applied committed entries
};

// A plain put's result is known when it is proposed: once its entry is committed and durable
// in the leader's log it is answered, before the transaction that applies it (one fsync off
// the client's path). Reads still wait for the apply.
TEST(NodeCore, PlainPutIsAnsweredAtCommitBeforeItsApplyIsWritten) {
  LeaderOfTwo n;
  n.core->submit_write(7, put_cmd("k", "v"), 1000);
  const Index index = n.core->raft().log().last_index();
  auto [before, after] = n.cycle_once();  // appends the entry: not committed yet
  EXPECT_TRUE(before.empty());
  EXPECT_TRUE(after.empty());
  n.ack(index);
  auto [at_commit, at_apply] = n.cycle_once();
  ASSERT_EQ(at_commit.size(), 1u) << "answered when the Ready that commits it is taken";
  EXPECT_EQ(at_commit[0].request_id, 7u);
  ASSERT_TRUE(at_commit[0].write.has_value());
  EXPECT_TRUE(at_commit[0].write->succeeded());
  EXPECT_EQ(at_commit[0].write->revision(), index);
  EXPECT_EQ(at_commit[0].index, index);
  EXPECT_TRUE(at_apply.empty()) << "never answered twice";
  EXPECT_EQ(n.store.applied_index(), index);
  EXPECT_EQ(n.core->pending_requests(), 0u);
}

// A put with a lease may be refused at apply (the lease expired meanwhile): it waits.
TEST(NodeCore, PutWithALeaseIsAnsweredOnlyOnceApplied) {
  LeaderOfTwo n;
  n.core->submit_write(8, put_cmd("k", "v", 12345), 1000);
  const Index index = n.core->raft().log().last_index();
  n.cycle_once();
  n.ack(index);
  auto [at_commit, at_apply] = n.cycle_once();
  EXPECT_TRUE(at_commit.empty());
  ASSERT_EQ(at_apply.size(), 1u);
  ASSERT_TRUE(at_apply[0].write.has_value());
  EXPECT_FALSE(at_apply[0].write->succeeded()) << "lease 12345 does not exist";
}

// With deferred applies (the shell's setting), committed entries whose writers were answered
// already wait to be applied, so that one LMDB transaction applies many; the wait ends after
// apply_delay_max_ms.
TEST(NodeCore, AnsweredPutsAreAppliedTogetherOnceTheDelayIsOver) {
  LeaderOfTwo n(true);
  n.core->tick(1000);
  n.drive();
  const int batches_before = n.applied_batches;
  const Index applied_before = n.store.applied_index();
  std::vector<Response> answered;
  for (uint64_t id = 1; id <= 3; ++id) {
    n.core->submit_write(id, put_cmd("k" + std::to_string(id), "v"), 1000);
    const Index index = n.core->raft().log().last_index();
    n.cycle_once();
    n.ack(index);
    auto [before, after] = n.cycle_once();
    answered.insert(answered.end(), before.begin(), before.end());
    answered.insert(answered.end(), after.begin(), after.end());
  }
  ASSERT_EQ(answered.size(), 3u) << "every put answered at commit";
  EXPECT_EQ(n.store.applied_index(), applied_before) << "their applies wait";
  EXPECT_EQ(n.applied_batches, batches_before);
  n.core->tick(1000 + Knobs{}.apply_delay_max_ms);
  n.drive();
  EXPECT_EQ(n.store.applied_index(), n.core->raft().log().last_index());
  EXPECT_EQ(n.applied_batches, batches_before + 1) << "one transaction applied all three";
}

// A linearizable read waiting for the apply cancels the wait.
TEST(NodeCore, ReadWaitingForTheApplyIsNotDeferred) {
  LeaderOfTwo n(true);
  n.core->submit_write(1, put_cmd("a", "1"), 1000);
  const Index index = n.core->raft().log().last_index();
  n.cycle_once();
  n.ack(index);
  n.cycle_once();  // answered, apply deferred
  ASSERT_LT(n.store.applied_index(), index);
  n.core->submit_read(5, get_req("a"), ReadConsistency::kLinearizable, 1000);
  n.cycle_once();  // the read's confirmation round goes out
  ASSERT_FALSE(n.last_round.empty());
  pb::Message ack;
  ack.set_type(pb::MSG_HEARTBEAT_RESP);
  ack.set_from(2);
  ack.set_to(1);
  ack.set_term(n.core->raft().term());
  ack.set_context(n.last_round);
  ASSERT_TRUE(n.core->step(ack).has_value());
  std::vector<Response> out;
  for (int i = 0; i < 5; ++i) {
    auto [before, after] = n.cycle_once();
    out.insert(out.end(), before.begin(), before.end());
    out.insert(out.end(), after.begin(), after.end());
  }
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].read.has_value());
  ASSERT_EQ(out[0].read->kvs_size(), 1);
  EXPECT_EQ(out[0].read->kvs(0).value(), "1");
  EXPECT_EQ(n.store.applied_index(), index) << "applied for the read, before any tick";
}

// Chaos run (scripts/chaos.sh --seed 6 --overlap): the leader's disk was full, so the
// asynchronous apply of a put failed and waited to be retried; meanwhile a membership change
// was committed. It must wait for that apply: applied first, the store refuses it as a gap
// in the applied index ("corrupt") and the node stops serving.
TEST(NodeCore, MembershipChangeWaitsForAnEarlierApplyThatHasNotFinished) {
  LeaderOfTwo n;
  static const std::vector<pb::Entry> kNone;
  // Persists one Ready's log; its committed entries must not be handed out for applying.
  auto persist_log_only = [&](const raft::Ready& rd) {
    auto batch = write_batch_for(rd);
    batch.committed = nullptr;
    ASSERT_TRUE(n.store.write(batch).has_value());
    n.core->on_persisted(rd, kNone, storage::WriteOutcome{});
  };
  n.core->submit_write(1, put_cmd("a", "1"), 1000);
  const Index put_index = n.core->raft().log().last_index();
  n.cycle_once();
  n.ack(put_index);
  auto rd = n.core->take_ready();
  ASSERT_TRUE(rd.has_value());
  auto first = n.core->take_entries_to_apply(*rd);
  ASSERT_TRUE(first.is_async);
  ASSERT_NE(first.entries, nullptr);
  persist_log_only(*rd);  // the apply thread's transaction fails: disk full; retried later

  pb::ConfChange cc;
  auto* add = cc.add_changes();
  add->set_type(pb::CONF_CHANGE_ADD_LEARNER);
  add->set_node_id(3);
  n.core->submit_conf_change(2, cc, 1000);
  bool was_conf_change_committed = false;
  for (int i = 0; i < 6; ++i) {
    n.ack(n.core->raft().log().last_index());
    auto next = n.core->take_ready();
    if (!next) continue;
    for (const auto& e : next->committed_entries) was_conf_change_committed |= e.type() == pb::ENTRY_CONF_CHANGE;
    auto held = n.core->take_entries_to_apply(*next);
    EXPECT_EQ(held.entries, nullptr) << "handed out for applying before the earlier apply finished";
    persist_log_only(*next);
  }
  ASSERT_TRUE(was_conf_change_committed);
  EXPECT_LT(n.store.applied_index(), put_index);

  // The retry succeeds; the membership change is applied next, at once and in order.
  auto batch = write_batch_for(raft::Ready{});
  batch.committed = first.entries.get();
  auto applied = n.store.apply(batch);
  ASSERT_TRUE(applied.has_value());
  n.core->on_applied(*first.entries, *applied);
  ASSERT_TRUE(n.core->has_ready());
  auto last = n.core->take_ready();
  ASSERT_TRUE(last.has_value());
  auto forced = n.core->take_entries_to_apply(*last);
  ASSERT_NE(forced.entries, nullptr);
  EXPECT_FALSE(forced.is_async);
  auto last_batch = write_batch_for(*last);
  last_batch.committed = forced.entries.get();
  auto w = n.store.write(last_batch);
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  n.core->on_persisted(*last, *forced.entries, *w);
  EXPECT_EQ(n.store.applied_index(), n.core->raft().log().last_index());
  EXPECT_EQ(n.store.conf_state().learners_size(), 1) << "node 3 is a learner";
}

// Simulator seed 1099497: a snapshot arrives while the Ready that applies an older
// membership change is being written. The core took the snapshot's membership at once; the
// older change must not be applied over it when that write completes.
TEST(NodeCore, MembershipChangeOlderThanASnapshotTakenMeanwhileIsNotApplied) {
  storage::MemStore store;
  const pb::ConfState cs = two_voters();
  ASSERT_TRUE(store.bootstrap(cs).has_value());
  NodeCoreConfig cfg;
  cfg.raft.id = 1;
  cfg.incarnation = 3;
  auto core = std::move(*NodeCore::create(cfg, store));

  // Leader 2 replicates and commits "add learner 3" at index 2.
  pb::ConfChange add3;
  auto* change = add3.add_changes();
  change->set_type(pb::CONF_CHANGE_ADD_LEARNER);
  change->set_node_id(3);
  pb::Message app;
  app.set_type(pb::MSG_APP);
  app.set_from(2);
  app.set_to(1);
  app.set_term(2);
  app.set_index(1);
  app.set_log_term(1);
  app.set_commit(2);
  auto* e = app.add_entries();
  e->set_index(2);
  e->set_term(2);
  e->set_type(pb::ENTRY_CONF_CHANGE);
  e->set_data(add3.SerializeAsString());
  ASSERT_TRUE(core->step(app).has_value());
  auto applying = core->take_ready();
  ASSERT_TRUE(applying.has_value());
  ASSERT_EQ(applying->committed_entries.size(), 1u);

  // Before that write completes, a snapshot at 5 arrives: by then node 3 was removed again.
  pb::Message snap;
  snap.set_type(pb::MSG_SNAP);
  snap.set_from(2);
  snap.set_to(1);
  snap.set_term(2);
  snap.mutable_snapshot()->mutable_metadata()->set_index(5);
  snap.mutable_snapshot()->mutable_metadata()->set_term(2);
  *snap.mutable_snapshot()->mutable_metadata()->mutable_conf_state() = cs;
  ASSERT_TRUE(core->step(snap).has_value());

  auto w = store.write(write_batch_for(*applying));
  ASSERT_TRUE(w.has_value());
  core->on_persisted(*applying, *w);
  EXPECT_FALSE(core->raft().tracker().config.learners.contains(3)) << "the older change overwrote the snapshot's membership";

  auto installing = core->take_ready();
  ASSERT_TRUE(installing.has_value());
  ASSERT_TRUE(installing->snapshot.has_value());
  auto w2 = store.write(write_batch_for(*installing));
  ASSERT_TRUE(w2.has_value()) << w2.error().to_string();
  core->on_persisted(*installing, *w2);
  EXPECT_EQ(core->raft().tracker().config.to_conf_state().SerializeAsString(), store.conf_state().SerializeAsString());
}

}  // namespace
}  // namespace aspen::node
