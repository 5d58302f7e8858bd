// The node's hybrid logical clock (node/node_hlc.h) and the command stamps (kv/command_hlc.h):
// messages carry it, receives advance it, the leader stamps proposals above every stamp in
// its log, so the log's stamps strictly increase with the index whatever peers send,
// including forged stamps; and NodeCore stores each command's stamp with the keys it writes.
#include "node/node_hlc.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <limits>
#include <memory>
#include <vector>

#include "kv/command_hlc.h"
#include "kv/commands.h"
#include "node/node_core.h"
#include "node/ready_cycle.h"
#include "storage/mem_store.h"

namespace aspen::node {
namespace {

constexpr uint64_t kT0 = 1'800'000'000'000;  // a realistic wall clock, ms since the epoch

// A normal entry holding a put stamped `t` (nullopt: unstamped, as before stamps existed).
pb::Entry stamped_entry(Index index, std::optional<HlcTimestamp> t) {
  kvpb::Command c;
  c.set_timestamp_ms(kT0);
  c.mutable_put()->set_key("k");
  c.mutable_put()->set_value("v");
  if (t) kv::to_proto(*t, c.mutable_hlc());
  pb::Entry e;
  e.set_term(1);
  e.set_index(index);
  e.set_data(c.SerializeAsString());
  return e;
}

pb::Message append_from(NodeId from, std::vector<pb::Entry> entries) {
  pb::Message m;
  m.set_type(pb::MSG_APP);
  m.set_from(from);
  m.set_to(2);
  for (auto& e : entries) *m.add_entries() = std::move(e);
  return m;
}

TEST(NodeHlc, MessagesCarryTheClockAndAReceiveMovesPastIt) {
  NodeHlc a(1), b(2);
  pb::Message m;
  m.set_from(1);
  a.stamp(m, kT0 + 100);
  ASSERT_TRUE(message_hlc(m).has_value());
  EXPECT_EQ(*message_hlc(m), (HlcTimestamp{kT0 + 100, 0, 1}));
  EXPECT_FALSE(b.receive(m, kT0)) << "100 ms ahead: within the max offset";
  EXPECT_GT(b.clock_last(), *message_hlc(m));
  EXPECT_GT(b.stamp_proposal(kT0), *message_hlc(m)) << "causality: what b does next is above what a sent";
  EXPECT_EQ(b.refused_total(), 0u);
}

TEST(NodeHlc, AnUnstampedMessageLeavesTheClockAlone) {
  NodeHlc b(2);
  pb::Message m;
  m.set_from(1);
  EXPECT_FALSE(message_hlc(m).has_value());
  EXPECT_FALSE(b.receive(m, kT0));
  EXPECT_EQ(b.clock_last().physical_ms, 0u);
}

// A peer far ahead: the clock refuses its stamp (stays near physical time; counted), but the
// entry it sent is in the log, so the next proposal is stamped above it all the same.
TEST(NodeHlc, AnEntryFarAheadIsRefusedByTheClockButTheLogOrderHolds) {
  NodeHlc b(2);
  const HlcTimestamp ahead{kT0 + 60'000, 5, 1};
  auto why = b.receive(append_from(1, {stamped_entry(7, ahead)}), kT0);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("ahead"), std::string::npos) << *why;
  EXPECT_EQ(b.refused_total(), 1u);
  EXPECT_LE(b.clock_last().physical_ms, kT0 + kDefaultHlcMaxOffsetMs);
  const HlcTimestamp next = b.stamp_proposal(kT0);
  EXPECT_GT(next, ahead);
  EXPECT_EQ(next, (HlcTimestamp{kT0 + 60'000, 6, 2})) << "the smallest stamp above it, by this node";
  EXPECT_GT(b.stamp_proposal(kT0), next);
}

// A snapshot replaces the receiver's log, entry stamps and all: its message says how high the
// sender's log goes, even when the sender's clock is below its log (a stamp it took from a
// peer far ahead), and the receiver's next proposal goes above it. Regression: simulator seed
// 730 (a follower installed a snapshot from a leader whose last entry was stamped above its
// clock, then led and stamped below that entry).
TEST(NodeHlc, ASnapshotCarriesTheTopOfTheSendersLogAndTheReceiverProposesAboveIt) {
  NodeHlc leader(1), follower(2);
  const HlcTimestamp ahead{kT0 + 60'000, 5, 3};
  (void)leader.receive(append_from(3, {stamped_entry(7, ahead)}), kT0);
  ASSERT_LT(leader.clock_last(), ahead) << "the leader's clock refused the far-ahead stamp";
  pb::Message snap;
  snap.set_type(pb::MSG_SNAP);
  snap.set_from(1);
  leader.stamp(snap, kT0);
  ASSERT_TRUE(message_hlc(snap).has_value());
  EXPECT_GE(message_hlc(snap)->physical_ms, ahead.physical_ms);
  (void)follower.receive(snap, kT0);
  EXPECT_GT(follower.stamp_proposal(kT0), ahead);
  // Other messages still carry the clock itself.
  pb::Message heartbeat;
  heartbeat.set_type(pb::MSG_HEARTBEAT);
  heartbeat.set_from(1);
  leader.stamp(heartbeat, kT0);
  EXPECT_LT(message_hlc(heartbeat)->physical_ms, ahead.physical_ms);
}

// Hostile input: the largest stamps the wire can hold, on the message and in entries (also
// as bytes that are no command), neither crash the node nor stop stamps from increasing.
TEST(NodeHlc, ForgedHugeStampsAreClampedAndStampsKeepIncreasing) {
  NodeHlc b(2);
  const HlcTimestamp forged{std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint32_t>::max(),
                            std::numeric_limits<uint64_t>::max()};
  pb::Message m = append_from(1, {stamped_entry(1, forged), stamped_entry(2, std::nullopt)});
  pb::Entry junk;
  junk.set_index(3);
  junk.set_data(std::string("\x1a\xff\xff\xff\xff\x0f garbage", 14));
  *m.add_entries() = junk;
  m.set_hlc_physical_ms(std::numeric_limits<uint64_t>::max());
  m.set_hlc_logical(std::numeric_limits<uint32_t>::max());
  EXPECT_TRUE(b.receive(m, kT0).has_value());
  EXPECT_EQ(b.refused_total(), 2u) << "the message's stamp and the entries'";
  EXPECT_LE(b.clock_last().physical_ms, kT0 + kDefaultHlcMaxOffsetMs) << "the clock stays near physical time";
  ASSERT_TRUE(b.log_max().has_value());
  EXPECT_EQ(b.log_max()->physical_ms, kv::kMaxHlcPhysicalMs);
  HlcTimestamp prev = *b.log_max();
  for (int i = 0; i < 1000; ++i) {
    const HlcTimestamp t = b.stamp_proposal(kT0 + static_cast<uint64_t>(i));
    ASSERT_GT(t, prev);
    prev = t;
  }
  // At the very top the successor saturates instead of wrapping around.
  const HlcTimestamp top{kv::kMaxHlcPhysicalMs, std::numeric_limits<uint32_t>::max(), 9};
  EXPECT_EQ(kv::hlc_successor(top, 2), top);
  EXPECT_EQ(kv::hlc_successor(HlcTimestamp{5, std::numeric_limits<uint32_t>::max(), 1}, 2), (HlcTimestamp{6, 0, 2}));
}

// peek_command_hlc reads what a full parse reads, and nothing from bytes that are no command.
RC_GTEST_PROP(CommandHlc, PeekAgreesWithAFullParse, (uint64_t ts, bool has_hlc, uint64_t physical, uint32_t logical,
                                                     uint64_t node, std::string key, std::string value)) {
  kvpb::Command c;
  c.set_timestamp_ms(ts);
  c.mutable_session()->set_client_id(node | 1);
  if (has_hlc) {
    c.mutable_hlc()->set_physical_ms(physical);
    c.mutable_hlc()->set_logical(logical);
    c.mutable_hlc()->set_node_id(node);
  }
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value(value);
  const std::string bytes = c.SerializeAsString();
  RC_ASSERT(kv::peek_command_hlc(bytes) == kv::command_hlc(c));
  if (has_hlc) RC_ASSERT(kv::peek_command_hlc(bytes)->physical_ms <= kv::kMaxHlcPhysicalMs);
}

RC_GTEST_PROP(CommandHlc, ArbitraryBytesNeverCrashThePeek, (std::string bytes)) {
  auto t = kv::peek_command_hlc(bytes);
  if (t) RC_ASSERT(t->physical_ms <= kv::kMaxHlcPhysicalMs);
}

// A model of replication: nodes with clocks off by up to +-2 s (past the 500 ms max
// offset); the leader proposes; appends carry its whole log to a follower; a node becomes
// leader only when it holds the whole log (Raft's leader completeness). The log's stamps
// strictly increase with the index, and every stamp a node issues after a receive it did not
// refuse is above the message's stamp.
RC_GTEST_PROP(NodeHlc, LogStampsIncreaseAcrossLeadersWithSkewedClocks, ()) {
  constexpr size_t kNodes = 3;
  std::vector<NodeHlc> nodes;
  std::vector<int64_t> skew;
  for (size_t i = 0; i < kNodes; ++i) {
    nodes.emplace_back(static_cast<NodeId>(i + 1));
    skew.push_back(*rc::gen::inRange<int64_t>(-2000, 2001));
  }
  std::vector<pb::Entry> log;
  std::vector<size_t> held(kNodes, 0);  // how much of the log each node holds
  size_t leader = 0;
  uint64_t now = kT0;
  const int steps = *rc::gen::inRange(1, 200);
  for (int s = 0; s < steps; ++s) {
    now += *rc::gen::inRange<uint64_t>(0, 50);
    auto physical = [&](size_t i) { return static_cast<uint64_t>(static_cast<int64_t>(now) + skew[i]); };
    switch (*rc::gen::inRange(0, 3)) {
      case 0: {  // propose
        log.push_back(stamped_entry(log.size() + 1, nodes[leader].stamp_proposal(physical(leader))));
        held[leader] = log.size();
        break;
      }
      case 1: {  // append the whole log to a follower
        const size_t to = *rc::gen::inRange<size_t>(0, kNodes);
        if (to == leader) break;
        pb::Message m = append_from(static_cast<NodeId>(leader + 1), log);
        nodes[leader].stamp(m, physical(leader));
        const bool is_refused = nodes[to].receive(m, physical(to)).has_value();
        held[to] = log.size();
        if (!is_refused) RC_ASSERT(nodes[to].stamp_proposal(physical(to)) > *message_hlc(m));
        break;
      }
      default: {  // a node holding the whole log takes over
        const size_t next = *rc::gen::inRange<size_t>(0, kNodes);
        if (held[next] == log.size()) leader = next;
        break;
      }
    }
  }
  for (size_t i = 1; i < log.size(); ++i) {
    RC_ASSERT(*kv::peek_command_hlc(log[i - 1].data()) < *kv::peek_command_hlc(log[i].data()));
  }
}

// --- NodeCore: stamping, storing, restart ---

std::vector<Response> drive(NodeCore& core, storage::Store& store) {
  ReadyCycle cycle(store.initial_state().hard_state);
  std::vector<Response> out;
  for (int i = 0; i < 100; ++i) {
    auto step = cycle.begin(core);
    if (!step) break;
    auto w = store.write(step->batch);
    EXPECT_TRUE(w.has_value());
    const bool is_async = step->is_apply_async;
    cycle.finish(core, *step, is_async ? storage::WriteOutcome{} : *w);
    if (is_async) core.on_applied(*step->to_apply, w->applied);
    for (auto& r : core.take_responses()) out.push_back(std::move(r));
  }
  return out;
}

// Node 1's core on `store`, its HLC reading *physical_ms.
std::unique_ptr<NodeCore> core_with_clock(storage::MemStore& store, const uint64_t* physical_ms) {
  NodeCoreConfig cfg;
  cfg.raft.id = 1;
  cfg.incarnation = 1;
  cfg.hlc_physical_ms = [physical_ms] { return *physical_ms; };
  auto c = NodeCore::create(cfg, store);
  EXPECT_TRUE(c.has_value());
  return c ? std::move(*c) : nullptr;
}

std::unique_ptr<NodeCore> leader_core(storage::MemStore& store, const uint64_t* physical_ms) {
  auto c = core_with_clock(store, physical_ms);
  c->raft().campaign();
  drive(*c, store);
  EXPECT_TRUE(c->is_leader());
  return c;
}

kvpb::Command put(const std::string& key) {
  kvpb::Command c;
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value("v");
  return c;
}

std::vector<HlcTimestamp> log_stamps(const storage::MemStore& store) {
  std::vector<HlcTimestamp> out;
  auto ents = store.entries(store.first_index(), store.last_index() + 1, UINT64_MAX);
  EXPECT_TRUE(ents.has_value());
  for (const auto& e : *ents) {
    if (e.type() != pb::ENTRY_NORMAL) continue;
    if (auto t = kv::peek_command_hlc(e.data())) out.push_back(*t);
  }
  return out;
}

// The leader stamps every command it proposes; the keys keep their command's stamp (and the
// history version too); and a restart with the clock stepped back still stamps above the log.
TEST(NodeCoreHlc, CommandsAreStampedStoredAndStayOrderedAcrossARestartWithAClockStepBack) {
  storage::MemStore store;
  pb::ConfState cs;
  cs.add_voters(1);
  ASSERT_TRUE(store.bootstrap(cs).has_value());
  uint64_t physical = kT0;
  {
    auto core = leader_core(store, &physical);
    for (int i = 0; i < 5; ++i) core->submit_write(static_cast<uint64_t>(i + 1), put(fmt::format("k{}", i)), 10);
    physical += 3;
    core->submit_write(10, put("k0"), 10);  // overwrites k0: a second version
    drive(*core, store);
  }
  auto stamps = log_stamps(store);
  ASSERT_EQ(stamps.size(), 6u);
  for (size_t i = 1; i < stamps.size(); ++i) EXPECT_LT(stamps[i - 1], stamps[i]);
  EXPECT_EQ(stamps.front(), (HlcTimestamp{kT0, 0, 1}));
  EXPECT_EQ(stamps.back(), (HlcTimestamp{kT0 + 3, 0, 1}));

  auto got = store.range(kv::key_range("k0"));
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->kvs_size(), 1);
  ASSERT_TRUE(got->kvs(0).has_mod_hlc());
  EXPECT_EQ(kv::from_proto(got->kvs(0).mod_hlc()), stamps.back());
  auto old = kv::key_range("k0");
  old.set_revision(got->kvs(0).mod_revision() - 1);
  auto past = store.range(old);
  ASSERT_TRUE(past.has_value());
  ASSERT_EQ(past->kvs_size(), 1);
  EXPECT_EQ(kv::from_proto(past->kvs(0).mod_hlc()), stamps.front()) << "the history version keeps its own stamp";

  // Restart with the wall clock 10 s behind: the log's last stamp bounds the next ones.
  physical = kT0 - 10'000;
  auto core = leader_core(store, &physical);
  core->submit_write(20, put("k9"), 10);
  drive(*core, store);
  auto after = log_stamps(store);
  ASSERT_EQ(after.size(), 7u);
  EXPECT_GT(after.back(), stamps.back());
  EXPECT_EQ(core->hlc().refused_total(), 0u);
}

// Bootstraps `store` with node 1 as the only voter, stamps three puts as leader at kT0 and
// returns the largest stamp.
HlcTimestamp stamp_three_puts_alone(storage::MemStore& store) {
  pb::ConfState solo;
  solo.add_voters(1);
  EXPECT_TRUE(store.bootstrap(solo).has_value());
  uint64_t physical = kT0;
  auto core = leader_core(store, &physical);
  for (int i = 0; i < 3; ++i) core->submit_write(static_cast<uint64_t>(i + 1), put(fmt::format("k{}", i)), 10);
  drive(*core, store);
  auto stamps = log_stamps(store);
  EXPECT_EQ(stamps.size(), 3u);
  return stamps.empty() ? HlcTimestamp{} : stamps.back();
}

// Restarts on `store` as leader with the wall clock 10 s behind the stamps applied, and
// returns the stamp of the next command it proposes.
HlcTimestamp stamp_after_restart_with_clock_behind(storage::MemStore& store) {
  uint64_t physical = kT0 - 10'000;
  auto core = leader_core(store, &physical);
  core->submit_write(20, put("k9"), 10);
  drive(*core, store);
  auto got = store.range(kv::key_range("k9"));
  EXPECT_TRUE(got.has_value() && got->kvs_size() == 1 && got->kvs(0).has_mod_hlc());
  if (!got || got->kvs_size() != 1) return HlcTimestamp{};
  return kv::from_proto(got->kvs(0).mod_hlc());
}

// A restart whose log holds no stamped entry (compacted into the snapshot) and whose clock
// stepped back still stamps above the stamps already applied: the store's applied stamp is
// the floor.
TEST(NodeCoreHlc, RestartWithTheLogCompactedAndTheClockSteppedBackStampsAboveTheAppliedStamps) {
  storage::MemStore store;
  const HlcTimestamp applied_max = stamp_three_puts_alone(store);
  ASSERT_TRUE(store.compact(store.applied_index()).has_value());
  ASSERT_TRUE(log_stamps(store).empty()) << "no stamped entry left in the log";
  EXPECT_GT(stamp_after_restart_with_clock_behind(store), applied_max);
}

// The same after a snapshot was installed and the log is empty past it.
TEST(NodeCoreHlc, RestartAfterASnapshotInstallWithTheClockSteppedBackStampsAboveItsStamps) {
  storage::MemStore source;
  const HlcTimestamp applied_max = stamp_three_puts_alone(source);
  auto snap = source.snapshot();
  ASSERT_TRUE(snap.has_value());
  storage::MemStore store;
  storage::WriteBatch install;
  install.snapshot = &*snap;
  ASSERT_TRUE(store.write(install).has_value());
  ASSERT_EQ(store.last_index(), snap->metadata().index());
  EXPECT_GT(stamp_after_restart_with_clock_behind(store), applied_max);
}

// A running node that installs a snapshot takes its applied stamp as a floor even when the
// MSG_SNAP carries no stamp of its own (a sender before stamps were carried on messages).
TEST(NodeCoreHlc, SnapshotInstalledWhileRunningRaisesTheFloorToItsAppliedStamp) {
  storage::MemStore source;
  const HlcTimestamp applied_max = stamp_three_puts_alone(source);
  auto snap = source.snapshot();
  ASSERT_TRUE(snap.has_value());

  storage::MemStore store;
  pb::ConfState pair;
  pair.add_voters(1);
  pair.add_voters(2);
  ASSERT_TRUE(store.bootstrap(pair).has_value());
  uint64_t physical = kT0 - 10'000;
  auto core = core_with_clock(store, &physical);
  ASSERT_NE(core, nullptr);
  pb::Message m;
  m.set_type(pb::MSG_SNAP);
  m.set_from(2);
  m.set_to(1);
  m.set_term(2);
  *m.mutable_snapshot() = *snap;
  ASSERT_TRUE(core->step(m).has_value());
  drive(*core, store);
  ASSERT_EQ(store.applied_index(), snap->metadata().index());
  ASSERT_EQ(core->hlc().log_max(), applied_max);
  core->raft().campaign();  // the snapshot's membership is node 1 alone
  drive(*core, store);
  ASSERT_TRUE(core->is_leader());
  core->submit_write(1, put("k9"), 10);
  drive(*core, store);
  auto stamps = log_stamps(store);
  ASSERT_EQ(stamps.size(), 1u);
  EXPECT_GT(stamps.back(), applied_max);
}

// Messages the core sends carry its clock; a message it steps with a forged stamp is still
// processed by Raft, is counted, and is described for the log.
TEST(NodeCoreHlc, OutgoingMessagesAreStampedAndAForgedStampIsCountedNotFatal) {
  storage::MemStore store;
  pb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  ASSERT_TRUE(store.bootstrap(cs).has_value());
  uint64_t physical = kT0;
  NodeCoreConfig cfg;
  cfg.raft.id = 1;
  cfg.incarnation = 1;
  cfg.hlc_physical_ms = [&physical] { return physical; };
  auto core = NodeCore::create(cfg, store);
  ASSERT_TRUE(core.has_value());
  (*core)->raft().campaign();
  auto rd = (*core)->take_ready();
  ASSERT_TRUE(rd.has_value());
  bool saw_remote = false;
  for (const auto& m : rd->messages) {
    if (m.to() != 2) continue;
    saw_remote = true;
    ASSERT_TRUE(message_hlc(m).has_value());
    EXPECT_GE(message_hlc(m)->physical_ms, kT0);
  }
  EXPECT_TRUE(saw_remote);
  storage::WriteBatch b = write_batch_for(*rd);
  ASSERT_TRUE(store.write(b).has_value());
  (*core)->on_persisted(*rd, storage::WriteOutcome{});

  pb::Message vote;
  vote.set_type(pb::MSG_PRE_VOTE_RESP);
  vote.set_from(2);
  vote.set_to(1);
  vote.set_term((*core)->raft().term() + 1);
  vote.set_hlc_physical_ms(std::numeric_limits<uint64_t>::max());
  vote.set_hlc_logical(std::numeric_limits<uint32_t>::max());
  const Term before = (*core)->raft().term();
  auto stepped = (*core)->step(vote);  // whatever Raft makes of it
  (void)stepped;
  EXPECT_EQ((*core)->hlc().refused_total(), 1u);
  EXPECT_NE((*core)->last_hlc_refusal().find("node 2"), std::string::npos) << (*core)->last_hlc_refusal();
  EXPECT_LE((*core)->hlc().clock_last().physical_ms, kT0 + kDefaultHlcMaxOffsetMs);
  EXPECT_GE((*core)->raft().term(), before) << "Raft stepped it";
}

}  // namespace
}  // namespace aspen::node
