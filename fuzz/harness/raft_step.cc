// raft_step: a live three-node cluster (node 1 leads, a few entries committed) is fed the
// input's messages, each followed by Readys, deliveries and sometimes ticks. Byte 0 sets
// pre-vote (bit 7) and check-quorum (bit 6); then records (harness.h): tag
// bits 0-1 pick the receiver (1-3), bit 2 ticks every node afterwards; the bytes are a
// pb::Message. Properties: no assert fires, and every node's commit index stays within its
// log.
#include "fuzz/harness/harness.h"
#include "tests/raft/test_network.h"

namespace aspen::fuzz {

using namespace aspen::raft;
using namespace aspen::raft::test;

int raft_step_one_input(const uint8_t* data, size_t size) {
  static const size_t kMaxMessages = 16;
  if (size < 1) return 0;  // byte 0: the cluster's options; then the records
  const auto records = split_records(data + 1, size - 1, kMaxMessages);
  if (records.empty()) return 0;
  NetworkOptions opt;
  opt.pre_vote = (data[0] & 0x80) != 0;
  opt.check_quorum = (data[0] & 0x40) != 0;
  TestNetwork net({1, 2, 3}, opt);
  net.elect(1);
  for (int i = 0; i < 3; ++i) {
    (void)net.core(1).propose("v");
    net.stabilize();
  }
  for (const auto& r : records) {
    pb::Message m;
    if (!m.ParseFromArray(r.bytes.data(), static_cast<int>(r.bytes.size()))) continue;
    const NodeId target = 1 + (r.tag & 3) % 3;
    (void)net.core(target).step(m);
    if ((r.tag & 4) != 0) {
      for (NodeId id : net.ids()) net.core(id).tick();
    }
    for (int round = 0; round < 20; ++round) {
      net.handle_all_ready();
      net.deliver_queued();
    }
    for (NodeId id : net.ids()) {
      check(net.core(id).log().committed() <= net.core(id).log().last_index(), "commit index beyond the log");
    }
  }
  return 0;
}

std::vector<std::string> raft_step_seeds() {
  std::vector<std::string> out;
  auto msg = [](pb::MessageType type, NodeId from, NodeId to, Term term, Index index, Term log_term, Index commit) {
    pb::Message m;
    m.set_type(type);
    m.set_from(from);
    m.set_to(to);
    m.set_term(term);
    m.set_index(index);
    m.set_log_term(log_term);
    m.set_commit(commit);
    return m;
  };
  {
    pb::Message app = msg(pb::MSG_APP, 1, 2, 2, 4, 2, 4);
    auto* e = app.add_entries();
    e->set_index(5);
    e->set_term(2);
    e->set_data("x");
    std::string s(1, '\0');
    append_record(s, 2, app.SerializeAsString());
    append_record(s, 6, msg(pb::MSG_HEARTBEAT, 1, 3, 2, 0, 0, 9).SerializeAsString());
    out.push_back(s);
  }
  {
    std::string s(1, '\xc0');
    append_record(s, 1, msg(pb::MSG_PRE_VOTE, 2, 1, 3, 9, 2, 0).SerializeAsString());
    append_record(s, 1, msg(pb::MSG_VOTE, 3, 1, 3, 9, 2, 0).SerializeAsString());
    append_record(s, 0, msg(pb::MSG_APP_RESP, 2, 1, 2, 9, 0, 0).SerializeAsString());
    out.push_back(s);
  }
  {
    pb::Message snap = msg(pb::MSG_SNAP, 1, 3, 2, 0, 0, 0);
    snap.mutable_snapshot()->mutable_metadata()->set_index(10);
    snap.mutable_snapshot()->mutable_metadata()->set_term(2);
    for (NodeId id : {1, 2, 3}) snap.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(id);
    std::string s(1, '\x40');
    append_record(s, 3, snap.SerializeAsString());
    pb::Message ri = msg(pb::MSG_READ_INDEX_RESP, 1, 2, 2, 7, 0, 0);
    ri.set_context("ctx");
    append_record(s, 2, ri.SerializeAsString());
    out.push_back(s);
  }
  return out;
}

}  // namespace aspen::fuzz
