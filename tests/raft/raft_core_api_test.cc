// RaftCore's caller-facing contract: construction, message admission, the Ready cycle and
// restarting from what was persisted.
#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

RaftConfig valid_config() {
  RaftConfig cfg;
  cfg.id = 1;
  cfg.election_tick = 10;
  cfg.heartbeat_tick = 1;
  cfg.max_inflight_msgs = 256;
  return cfg;
}

TEST(RaftCoreApi, CreateRejectsInvalidConfigs) {
  MemoryLogStorage st;
  struct Case {
    const char* what;
    std::function<void(RaftConfig&)> mutate;
  };
  const Case cases[] = {
      {"id 0", [](RaftConfig& c) { c.id = kNoNode; }},
      {"heartbeat_tick 0", [](RaftConfig& c) { c.heartbeat_tick = 0; }},
      {"election_tick == heartbeat_tick", [](RaftConfig& c) { c.election_tick = c.heartbeat_tick = 5; }},
      {"election_tick < heartbeat_tick", [](RaftConfig& c) { c.election_tick = 2; c.heartbeat_tick = 3; }},
      {"max_inflight_msgs 0", [](RaftConfig& c) { c.max_inflight_msgs = 0; }},
  };
  for (const auto& c : cases) {
    RaftConfig cfg = valid_config();
    c.mutate(cfg);
    auto r = RaftCore::create(cfg, &st);
    ASSERT_FALSE(r.has_value()) << c.what;
    EXPECT_EQ(r.error().code(), ErrorCode::kConfigInvalid) << c.what;
    EXPECT_FALSE(r.error().message().empty());
  }
  auto no_storage = RaftCore::create(valid_config(), nullptr);
  ASSERT_FALSE(no_storage.has_value());
  EXPECT_EQ(no_storage.error().code(), ErrorCode::kConfigInvalid);
  EXPECT_TRUE(RaftCore::create(valid_config(), &st).has_value());
}

TEST(RaftCoreApi, CreateRejectsInconsistentStoredState) {
  auto st = bootstrap_storage(make_conf_state({1, 2, 3}));
  pb::HardState hs = st->hard_state();
  hs.set_commit(5);  // beyond the last stored entry (1)
  st->set_hard_state(hs);
  auto r = RaftCore::create(valid_config(), st.get());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorruption);

  auto st2 = bootstrap_storage(make_conf_state({1, 2, 3}));
  ASSERT_TRUE(st2->append({make_entry(2, 1), make_entry(3, 1)}).has_value());
  RaftConfig cfg = valid_config();
  cfg.applied = 3;  // commit is 1
  r = RaftCore::create(cfg, st2.get());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorruption);
}

// Local message types drive the core from inside the process; a peer must not be able to
// inject them.
TEST(RaftCoreApi, StepRejectsLocalMessageTypes) {
  TestNetwork net({1, 2, 3});
  for (auto type : {pb::MSG_HUP, pb::MSG_BEAT, pb::MSG_UNREACHABLE, pb::MSG_SNAP_STATUS, pb::MSG_CHECK_QUORUM}) {
    auto s = net.core(1).step(make_msg(type, 2, 1, 1));
    ASSERT_FALSE(s.has_value()) << pb::MessageType_Name(type);
    EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(net.core(1).role(), Role::kFollower) << "a remote MsgHup must not start an election";
  EXPECT_FALSE(net.core(1).has_ready());

  auto anonymous = net.core(1).step(make_msg(pb::MSG_HEARTBEAT, kNoNode, 1, 1));
  ASSERT_FALSE(anonymous.has_value());
  EXPECT_EQ(anonymous.error().code(), ErrorCode::kInvalidArgument);
}

// Responses from nodes outside the configuration (e.g. removed members) are ignored.
TEST(RaftCoreApi, ResponsesFromStrangersAreIgnored) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  pb::Message resp = make_msg(pb::MSG_APP_RESP, 9, 1, 2);
  resp.set_index(100);
  ASSERT_TRUE(net.core(1).step(resp).has_value());
  pb::Message vote = make_msg(pb::MSG_VOTE_RESP, 9, 1, 50);
  ASSERT_TRUE(net.core(1).step(vote).has_value());
  EXPECT_TRUE(net.core(1).is_leader());
  EXPECT_EQ(net.core(1).term(), 2u) << "not even the higher term is taken from a stranger's response";
}

TEST(RaftCoreApi, ReadyReportsChangesOnlyOnce) {
  TestNetwork net({1, 2, 3});
  EXPECT_FALSE(net.core(1).has_ready()) << "a fresh follower has nothing to report";
  net.core(1).campaign();
  ASSERT_TRUE(net.core(1).has_ready());
  Ready rd = net.core(1).ready();
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(rd.soft_state->role, Role::kCandidate);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), 2u);
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_EQ(rd.messages.size(), 2u);
  EXPECT_TRUE(rd.must_sync()) << "the vote for itself must be durable before the requests go out";
  net.core(1).advance(rd);
  EXPECT_FALSE(net.core(1).has_ready());

  // A Ready with only messages needs no fsync.
  TestNetwork net2({1, 2, 3});
  net2.elect(1);
  net2.core(1).tick();
  Ready hb = net2.core(1).ready();
  EXPECT_FALSE(hb.messages.empty());
  EXPECT_FALSE(hb.must_sync());
  EXPECT_FALSE(hb.soft_state.has_value());
  EXPECT_FALSE(hb.hard_state.has_value());
  net2.core(1).advance(hb);
}

// Entries are handed out for persisting once, and each committed entry is applied once.
TEST(RaftCoreApi, EntriesAndCommittedEntriesAreDeliveredOnce) {
  TestNetwork net({1});
  net.elect(1);
  ASSERT_TRUE(net.core(1).propose("a").has_value());
  Ready rd = net.core(1).ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].data(), "a");
  ASSERT_EQ(rd.committed_entries.size(), 1u) << "a single node commits at once";
  ASSERT_TRUE(net.node(1).storage->append(rd.entries).has_value());
  net.node(1).storage->set_hard_state(*rd.hard_state);
  net.core(1).advance(rd);
  EXPECT_FALSE(net.core(1).has_ready());
  EXPECT_EQ(net.core(1).status().applied, 3u);
  EXPECT_TRUE(net.core(1).log().unstable_entries().empty());
}

// A node restarted from its disk (hard state, log, membership) carries on where it stopped.
TEST(RaftCoreApi, RestartFromPersistedState) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  for (const char* v : {"a", "b"}) ASSERT_TRUE(net.core(1).propose(v).has_value());
  net.stabilize();
  const RaftStatus before = net.core(2).status();

  TestNode& n2 = net.node(2);
  auto restarted = RaftCore::create(net.config_for(2, n2.applied), n2.storage.get());
  ASSERT_TRUE(restarted.has_value()) << restarted.error().to_string();
  n2.core = std::move(*restarted);
  EXPECT_EQ(net.core(2).term(), before.term);
  EXPECT_EQ(net.core(2).status().vote, before.vote);
  EXPECT_EQ(net.core(2).log().committed(), before.commit);
  EXPECT_EQ(net.core(2).log().last_index(), before.last_index);
  EXPECT_EQ(net.core(2).role(), Role::kFollower);
  EXPECT_EQ(net.core(2).leader(), kNoNode) << "it learns the leader from the next message";
  EXPECT_EQ(net.core(2).tracker().config.voters.incoming, (VoterSet{1, 2, 3}));

  ASSERT_TRUE(net.core(1).propose("c").has_value());
  net.stabilize();
  EXPECT_EQ(n2.applied_data, (std::vector<std::string>{"a", "b", "c"})) << "nothing applied twice";
  EXPECT_EQ(net.core(2).leader(), 1u);
}

// A restarted node that had voted keeps its vote: it cannot vote twice in a term (§5.2).
TEST(RaftCoreApi, VoteSurvivesRestart) {
  TestNetwork net({1, 2, 3});
  pb::Message vote = make_msg(pb::MSG_VOTE, 2, 1, 2);
  vote.set_index(1);
  vote.set_log_term(1);
  ASSERT_TRUE(net.core(1).step(vote).has_value());
  net.handle_ready(1);
  net.take_queued();

  auto restarted = RaftCore::create(net.config_for(1, 1), net.node(1).storage.get());
  ASSERT_TRUE(restarted.has_value());
  net.node(1).core = std::move(*restarted);
  pb::Message rival = make_msg(pb::MSG_VOTE, 3, 1, 2);
  rival.set_index(1);
  rival.set_log_term(1);
  ASSERT_TRUE(net.core(1).step(rival).has_value());
  auto out = net.handle_ready(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject());
}

TEST(RaftCoreApi, StatusAndNames) {
  TestNetwork net({1, 2, 3});
  net.elect(1);
  RaftStatus s = net.core(1).status();
  EXPECT_EQ(s.id, 1u);
  EXPECT_EQ(s.leader, 1u);
  EXPECT_EQ(s.role, Role::kLeader);
  EXPECT_EQ(s.term, 2u);
  EXPECT_EQ(s.vote, 1u);
  EXPECT_EQ(s.commit, 2u);
  EXPECT_EQ(s.applied, 2u);
  EXPECT_EQ(s.last_index, 2u);
  EXPECT_STREQ(role_name(Role::kPreCandidate), "pre-candidate");
  EXPECT_STREQ(role_name(Role::kLeader), "leader");
  EXPECT_STREQ(progress_state_name(ProgressState::kSnapshot), "snapshot");
}

}  // namespace
}  // namespace aspen::raft
