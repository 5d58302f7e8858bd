// Raft messages from a peer are input, not trusted state: a buggy or hostile member may send
// anything a protobuf can hold. Whatever arrives, RaftCore refuses what a correct peer never
// sends, and never reaches one of its own asserts (which guard our invariants, not the
// network's). The property feeds arbitrary messages into a live three-node cluster and keeps
// running it; an assert aborts the test binary, which is the failure.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

const std::vector<pb::MessageType> kRemoteTypes = {
    pb::MSG_APP,      pb::MSG_APP_RESP,      pb::MSG_VOTE,          pb::MSG_VOTE_RESP,     pb::MSG_PRE_VOTE,
    pb::MSG_PRE_VOTE_RESP, pb::MSG_SNAP,     pb::MSG_HEARTBEAT,     pb::MSG_HEARTBEAT_RESP, pb::MSG_TIMEOUT_NOW,
    pb::MSG_READ_INDEX, pb::MSG_READ_INDEX_RESP, pb::MSG_TRANSFER_LEADER, pb::MSG_PROP,
};

// A message near the receiver's state (so that it gets past the term checks and reaches the
// handlers), with arbitrary indexes, terms and entries.
pb::Message arbitrary_message(NodeId to, Term term, Index last) {
  pb::Message m;
  m.set_type(*rc::gen::elementOf(kRemoteTypes));
  m.set_from(*rc::gen::inRange<NodeId>(1, 5));
  m.set_to(to);
  auto near = [](uint64_t x, uint64_t below, uint64_t above) {
    return *rc::gen::inRange<uint64_t>(x > below ? x - below : 0, x + above + 1);
  };
  // Term 0 too, whatever the node's term: no correct peer sends a vote message without one.
  m.set_term(*rc::gen::inRange(0, 8) == 0 ? 0 : near(term, 1, 2));
  m.set_index(near(last, last + 1, 6));
  m.set_log_term(near(term, term, 2));
  m.set_commit(near(last, last + 1, 6));
  m.set_reject(*rc::gen::arbitrary<bool>());
  m.set_reject_hint(near(last, last + 1, 6));
  if (*rc::gen::inRange(0, 4) == 0) m.set_context(*rc::gen::arbitrary<std::string>());
  const int entries = *rc::gen::inRange(0, 4);
  Index next = *rc::gen::arbitrary<bool>() ? m.index() + 1 : near(last, last + 1, 6);
  for (int i = 0; i < entries; ++i) {
    auto* e = m.add_entries();
    e->set_index(*rc::gen::inRange(0, 5) == 0 ? near(last, last + 1, 6) : next++);
    e->set_term(near(term, term, 2));
    if (*rc::gen::inRange(0, 5) == 0) {
      // A membership change a hostile leader made up (well-formed: the harness, unlike a
      // node, insists that conf change entries parse).
      e->set_type(pb::ENTRY_CONF_CHANGE);
      pb::ConfChange cc;
      const int changes = *rc::gen::inRange(0, 3);
      for (int c = 0; c < changes; ++c) {
        auto* one = cc.add_changes();
        one->set_type(*rc::gen::elementOf(std::vector<pb::ConfChangeType>{
            pb::CONF_CHANGE_ADD_VOTER, pb::CONF_CHANGE_ADD_LEARNER, pb::CONF_CHANGE_REMOVE_NODE}));
        one->set_node_id(*rc::gen::inRange<NodeId>(0, 6));
      }
      e->set_data(cc.SerializeAsString());
    } else {
      e->set_data(*rc::gen::inRange(0, 5) == 0 ? *rc::gen::arbitrary<std::string>() : std::string("x"));
    }
  }
  if (m.type() == pb::MSG_SNAP || *rc::gen::inRange(0, 10) == 0) {
    auto* meta = m.mutable_snapshot()->mutable_metadata();
    meta->set_index(near(last, last + 1, 8));
    meta->set_term(near(term, term, 2));
    const int voters = *rc::gen::inRange(0, 4);
    for (int i = 0; i < voters; ++i) meta->mutable_conf_state()->add_voters(*rc::gen::inRange<NodeId>(0, 6));
    if (*rc::gen::inRange(0, 4) == 0) meta->mutable_conf_state()->add_learners(*rc::gen::inRange<NodeId>(0, 6));
  }
  return m;
}

RC_GTEST_PROP(RaftHostileInput, ArbitraryPeerMessagesNeverCrashANode, ()) {
  NetworkOptions opt;
  opt.pre_vote = *rc::gen::arbitrary<bool>();
  opt.check_quorum = *rc::gen::arbitrary<bool>();
  opt.seed = *rc::gen::inRange<uint64_t>(1, 1000);
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  for (int i = 0; i < 3; ++i) {
    (void)net.core(1).propose("v");
    net.stabilize();
  }
  const int rounds = *rc::gen::inRange(1, 30);
  for (int r = 0; r < rounds; ++r) {
    const NodeId target = *rc::gen::inRange<NodeId>(1, 4);
    RaftCore& core = net.core(target);
    (void)core.step(arbitrary_message(target, core.term(), core.log().last_index()));
    // Keep the cluster running on whatever the message did: later Readys, applies and
    // elections must not trip over it either.
    // (Not stabilize(): after a forged message the cluster need not quiesce, e.g. a forged
    // higher term sets off elections; liveness under a hostile member is not claimed here.)
    if (*rc::gen::inRange(0, 3) == 0) {
      for (NodeId id : net.ids()) net.core(id).tick();
    }
    for (int round = 0; round < 50; ++round) {
      net.handle_all_ready();
      net.deliver_queued();
    }
    for (NodeId id : net.ids()) RC_ASSERT(net.core(id).log().committed() <= net.core(id).log().last_index());
  }
}

// Found by the raft_step fuzzer: a vote request of term 0 was answered with term 0, which
// RaftCore asserts it never sends. Every vote message without a term is refused.
TEST(RaftHostileInput, VoteMessagesWithoutATermAreRefused) {
  for (bool pre_vote : {false, true}) {
    NetworkOptions opt;
    opt.pre_vote = pre_vote;
    TestNetwork net({1, 2, 3}, opt);
    net.elect(1);
    for (auto type : {pb::MSG_VOTE, pb::MSG_PRE_VOTE, pb::MSG_VOTE_RESP, pb::MSG_PRE_VOTE_RESP}) {
      for (NodeId target : {NodeId{1}, NodeId{2}}) {
        pb::Message m;
        m.set_type(type);
        m.set_from(3);
        m.set_to(target);
        m.set_term(0);
        m.set_index(0);
        m.set_log_term(0);
        auto s = net.core(target).step(m);
        ASSERT_FALSE(s.has_value()) << pb::MessageType_Name(type);
        EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(s.error().message().find("without a term"), std::string::npos) << s.error().message();
      }
    }
    // The cluster carries on.
    ASSERT_TRUE(net.core(1).propose("after").has_value());
    net.stabilize();
    EXPECT_EQ(net.core(2).log().committed(), net.core(1).log().committed());
  }
}

}  // namespace
}  // namespace aspen::raft
