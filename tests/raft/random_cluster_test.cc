// A small randomized safety check on the in-test harness: random ticks, proposals, partitions,
// lost, duplicated and reordered messages, leadership transfers and reads, with the Raft safety
// properties (Figure 3) checked after every step, and liveness checked once faults heal.
// The deterministic simulator (tests/sim) does this at scale; this runs in milliseconds and
// pins the core alone.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <fmt/format.h>

#include "tests/raft/test_network.h"

namespace aspen::raft {
namespace {

using namespace aspen::raft::test;

// Returns a description of the first violated property, or "".
std::string check_safety(TestNetwork& net, std::map<Term, NodeId>& leader_of_term) {
  const auto ids = net.ids();
  // Election Safety: at most one leader per term.
  for (NodeId id : ids) {
    if (!net.core(id).is_leader()) continue;
    auto [it, fresh] = leader_of_term.try_emplace(net.core(id).term(), id);
    if (!fresh && it->second != id) {
      return fmt::format("two leaders in term {}: {} and {}", it->first, it->second, id);
    }
  }
  for (NodeId a : ids) {
    for (NodeId b : ids) {
      if (a >= b) continue;
      // State Machine Safety: applied sequences are prefixes of one another.
      const auto& da = net.node(a).applied_data;
      const auto& db = net.node(b).applied_data;
      size_t n = std::min(da.size(), db.size());
      if (!std::equal(da.begin(), da.begin() + n, db.begin())) {
        return fmt::format("nodes {} and {} applied different commands", a, b);
      }
      // Log Matching on the committed prefixes.
      Index common = std::min(net.core(a).log().committed(), net.core(b).log().committed());
      for (Index i = 2; i <= common; ++i) {
        if (net.core(a).log().term_or_zero(i) != net.core(b).log().term_or_zero(i)) {
          return fmt::format("committed entry {} differs between {} and {}", i, a, b);
        }
      }
    }
  }
  // Leader Completeness: the leader of the highest term has every entry committed anywhere
  // in an earlier or equal term.
  NodeId l = net.leader();
  if (l != kNoNode) {
    const RaftLog& ll = net.core(l).log();
    for (NodeId id : ids) {
      const RaftLog& log = net.core(id).log();
      for (Index i = 2; i <= log.committed(); ++i) {
        Term t = log.term_or_zero(i);
        if (t <= net.core(l).term() && ll.term_or_zero(i) != t) {
          return fmt::format("leader {} (term {}) lacks entry {} (term {}) committed on node {}", l,
                             net.core(l).term(), i, t, id);
        }
      }
    }
  }
  return "";
}

struct Scenario {
  uint64_t seed = 1;
  size_t size = 3;
  bool pre_vote = false;
  bool check_quorum = false;
  size_t max_inflight_msgs = 256;
  uint64_t max_size_per_msg_bytes = 1 << 20;
  int steps = 1000;

  std::string describe() const {
    return fmt::format("Scenario{{.seed={}, .size={}, .pre_vote={}, .check_quorum={}, .max_inflight_msgs={}, "
                       ".max_size_per_msg_bytes={}}}",
                       seed, size, pre_vote, check_quorum, max_inflight_msgs, max_size_per_msg_bytes);
  }
};

std::string describe_nodes(TestNetwork& net) {
  std::string out;
  for (NodeId id : net.ids()) {
    const RaftCore& c = net.core(id);
    RaftStatus s = c.status();
    out += fmt::format("\n  node {}: {} term {} lead {} commit {} applied {} last {} vote {} transferee {}", id,
                       role_name(s.role), s.term, s.leader, s.commit, s.applied, s.last_index, s.vote,
                       s.lead_transferee);
    if (c.is_leader()) {
      for (const auto& [pid, pr] : c.tracker().progress) out += fmt::format("\n    {}: {}", pid, pr.to_string());
    }
  }
  return out;
}

// Runs one randomized scenario; returns "" or a description of the failure.
std::string run_scenario(const Scenario& sc) {
  std::vector<NodeId> ids;
  for (NodeId id = 1; id <= sc.size; ++id) ids.push_back(id);
  NetworkOptions opt;
  opt.seed = sc.seed;
  opt.pre_vote = sc.pre_vote;
  opt.check_quorum = sc.check_quorum;
  opt.max_inflight_msgs = sc.max_inflight_msgs;
  opt.max_size_per_msg_bytes = sc.max_size_per_msg_bytes;
  TestNetwork net(ids, opt);
  Rng rng(sc.seed);
  auto pick = [&] { return ids[rng.uniform(ids.size())]; };
  std::map<Term, NodeId> leader_of_term;
  int next_value = 0;
  auto failure = [&](const std::string& what) {
    return fmt::format("{}: {}{}", sc.describe(), what, describe_nodes(net));
  };

  for (int step = 0; step < sc.steps; ++step) {
    switch (rng.uniform(10)) {
      case 0:
      case 1:
        for (NodeId id : ids) net.core(id).tick();
        break;
      case 2:
        (void)net.core(pick()).propose(fmt::format("v{}", next_value++));
        break;
      case 3:
      case 4:
        net.handle_ready(pick());
        break;
      case 5:
      case 6: {
        // Deliver the queued messages in random order; lose, delay or duplicate a few.
        auto batch = net.take_queued();
        for (size_t i = batch.size(); i > 1; --i) std::swap(batch[i - 1], batch[rng.uniform(i)]);
        for (const auto& m : batch) {
          uint64_t fate = rng.uniform(20);
          if (fate == 0) continue;        // lost
          if (fate == 1) net.send(m);     // delayed to a later round
          if (fate == 2) net.deliver(m);  // duplicated
          if (fate != 1) net.deliver(m);
        }
        break;
      }
      case 7:
        if (rng.chance(1, 2)) {
          net.isolate(pick());
        } else {
          net.heal();
        }
        break;
      case 8:
        (void)net.core(pick()).read_index(fmt::format("r{}", step));
        break;
      case 9:
        if (rng.chance(1, 4)) net.core(pick()).transfer_leadership(pick());
        break;
    }
    std::string err = check_safety(net, leader_of_term);
    if (!err.empty()) return failure(fmt::format("step {}: {}", step, err));
    if (step % 50 == 0) net.clear_log();
  }

  // Liveness: with every fault healed, a leader emerges and a command reaches everyone. Like
  // a client, retry after a timeout: an uncommitted proposal may be lost when leadership moves.
  net.heal();
  auto applied_everywhere = [&] {
    for (NodeId id : ids) {
      const auto& applied = net.node(id).applied_data;
      if (std::none_of(applied.begin(), applied.end(), [](const std::string& d) { return d.starts_with("final"); })) {
        return false;
      }
    }
    return true;
  };
  for (int t = 0; t < 400 && !applied_everywhere(); ++t) {
    NodeId l = net.leader();
    if (t % 30 == 0 && l != kNoNode) (void)net.core(l).propose(fmt::format("final{}", t));
    net.tick();
    std::string err = check_safety(net, leader_of_term);
    if (!err.empty()) return failure(fmt::format("liveness tick {}: {}", t, err));
  }
  if (!applied_everywhere()) return failure("no command committed on every node after healing");
  return "";
}

RC_GTEST_PROP(RaftRandomCluster, SafetyUnderFaultsAndLivenessAfterHealing, ()) {
  Scenario sc;
  sc.seed = *rc::gen::arbitrary<uint64_t>();
  sc.size = *rc::gen::element<size_t>(1, 3, 5);
  sc.pre_vote = *rc::gen::arbitrary<bool>();
  sc.check_quorum = *rc::gen::arbitrary<bool>();
  sc.max_inflight_msgs = *rc::gen::inRange<size_t>(1, 5);
  sc.max_size_per_msg_bytes = *rc::gen::element<uint64_t>(1, 100, 1 << 20);
  RC_TAG(sc.size);
  std::string err = run_scenario(sc);
  if (!err.empty()) RC_FAIL(err);
}

// Seeds that once failed, replayed exactly.
TEST(RaftRandomCluster, Regressions) {
  Scenario lost_final_proposal;  // a harness bug: the final proposal was lost to an election
  lost_final_proposal.seed = 8007101;
  lost_final_proposal.max_inflight_msgs = 2;
  for (const auto& sc : {lost_final_proposal}) EXPECT_EQ(run_scenario(sc), "");
}

}  // namespace
}  // namespace aspen::raft
