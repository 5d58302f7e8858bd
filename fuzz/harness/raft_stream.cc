// raft_stream: the bytes an inbound "raft-auth" stream delivers to node 1 of a live
// three-node cluster, taken the way RaftLinks takes them: framed (FrameDecoder), a greeting
// (check_greeting) that must prove the cookie on this connection and a member's key, then either Raft messages
// (check_stream_message) stepped into node 1, or, on a snapshot stream, SnapshotReception's
// frames and the MsgSnap it yields at the end. Byte 0 picks the peer's TLS-proven key (node
// 2's, node 3's or a stranger's); the rest is the stream. Properties: no assert fires; a
// refused greeting lets nothing through; node 1's commit stays within its log.
#include "fuzz/harness/harness.h"
#include "node/raft_stream_rules.h"
#include "node/snapshot_staging.h"
#include "tests/raft/test_network.h"
#include "transport/frame.h"

namespace aspen::fuzz {

using namespace aspen::raft;
using namespace aspen::raft::test;

namespace {

const std::string& cookie_key() {
  static const std::string key = node::raft_cookie_key("fuzz-cookie");
  return key;
}
constexpr size_t kMaxFrameBytes = 64 << 10;
constexpr size_t kMaxFrames = 32;

transport::PublicKey key_of(uint8_t n) {
  std::array<uint8_t, transport::kPublicKeySizeBytes> bytes{};
  bytes.fill(n);
  return transport::PublicKey(bytes);
}

node::PeerRegistry members() {
  node::PeerRegistry peers;
  pb::ConfState cs;
  std::vector<kvpb::KeyValue> records;
  for (NodeId id : {1, 2, 3}) {
    cs.add_voters(id);
    kvpb::KeyValue kv;
    kv.set_key(node::node_record_key(id));
    kv.set_value(node::encode_node_record(id, key_of(static_cast<uint8_t>(id)), {{"127.0.0.1", static_cast<uint16_t>(7000 + id)}}));
    records.push_back(kv);
  }
  peers.set_records(records);
  peers.set_membership(cs);
  return peers;
}

std::string framed(std::string_view payload) {
  std::string out;
  transport::append_frame_header(out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
  return out;
}

// The connection a stream arrives on: node 1 accepts from the key byte 0 picked.
node::ChannelFacts facts_for(const transport::PublicKey& dialer) {
  node::ChannelFacts f;
  f.binding.fill(0x5a);
  f.dialer = dialer;
  f.acceptor = key_of(1);
  return f;
}

std::string hello(NodeId id, bool is_snapshot, std::string_view cookie = "fuzz-cookie") {
  return node::make_greeting(id, node::raft_cookie_key(cookie), facts_for(key_of(static_cast<uint8_t>(id))),
                             {"127.0.0.1:7002"}, is_snapshot);
}

}  // namespace

int raft_stream_one_input(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t who = data[0] % 3;  // 0: node 2's key, 1: node 3's key, 2: a stranger's
  const transport::PublicKey peer_key = key_of(who == 2 ? 99 : static_cast<uint8_t>(2 + who));
  transport::FrameDecoder decoder(kMaxFrameBytes);
  std::vector<std::string> frames;
  (void)decoder.feed(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), frames);
  if (frames.empty()) return 0;
  if (frames.size() > kMaxFrames) frames.resize(kMaxFrames);

  const node::PeerRegistry peers = members();
  auto greeting = node::check_greeting(frames[0], 1, cookie_key(), peers, facts_for(peer_key));
  if (!greeting) return 0;
  check(who != 2, "a stranger's key passed the greeting");
  check(greeting->from != 1 && greeting->from != kNoNode, "a greeting claimed this node's id or none");
  check(greeting->addrs.size() <= limits::kMaxNodeAddresses, "a greeting kept too many addresses");

  TestNetwork net({1, 2, 3}, NetworkOptions{});
  net.elect(2);
  (void)net.core(2).propose("v");
  net.stabilize();
  RaftCore& self = net.core(1);
  auto run = [&] {
    for (int round = 0; round < 20; ++round) {
      net.handle_all_ready();
      net.deliver_queued();
    }
    check(self.log().committed() <= self.log().last_index(), "commit index beyond the log");
  };
  if (greeting->is_snapshot) {
    node::SnapshotReception in(1 << 20);
    bool is_refused = false;
    for (size_t i = 1; i < frames.size() && !is_refused; ++i) {
      auto f = in.on_frame(frames[i]);
      is_refused = f.kind == node::SnapshotReception::Frame::Kind::kRefuse;
      check(in.size_bytes() <= (1 << 20), "staged snapshot data beyond its limit");
    }
    if (is_refused) return 0;
    auto m = in.on_end(greeting->from, 1);
    if (!m) return 0;
    check(m->type() == pb::MSG_SNAP && m->from() == greeting->from && m->to() == 1, "the final message is not a MsgSnap");
    (void)self.step(*m);
    run();
    return 0;
  }
  for (size_t i = 1; i < frames.size(); ++i) {
    auto m = node::check_stream_message(frames[i], greeting->from, 1);
    if (!m) return 0;  // the node resets the stream
    check(m->type() != pb::MSG_SNAP, "a MsgSnap passed on an ordinary stream");
    (void)self.step(*m);
    run();
  }
  return 0;
}

std::vector<std::string> raft_stream_seeds() {
  std::vector<std::string> out;
  {
    std::string s(1, '\0');
    s += framed(hello(2, false));
    pb::Message hb;
    hb.set_type(pb::MSG_HEARTBEAT);
    hb.set_from(2);
    hb.set_to(1);
    hb.set_term(2);
    hb.set_commit(2);
    s += framed(hb.SerializeAsString());
    pb::Message app = hb;
    app.set_type(pb::MSG_APP);
    app.set_index(2);
    app.set_log_term(2);
    auto* e = app.add_entries();
    e->set_index(3);
    e->set_term(2);
    e->set_data("y");
    s += framed(app.SerializeAsString());
    out.push_back(s);
  }
  {
    std::string s(1, '\1');
    s += framed(hello(3, true));
    s += framed(std::string(1, node::kSnapshotChunkTag) + std::string("\x03" "abc", 4));
    pb::Message snap;
    snap.set_type(pb::MSG_SNAP);
    snap.set_from(3);
    snap.set_to(1);
    snap.set_term(3);
    snap.mutable_snapshot()->mutable_metadata()->set_index(9);
    snap.mutable_snapshot()->mutable_metadata()->set_term(3);
    for (NodeId id : {1, 2, 3}) snap.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(id);
    s += framed(std::string(1, node::kSnapshotMessageTag) + snap.SerializeAsString());
    out.push_back(s);
  }
  {
    std::string s(1, '\2');  // a stranger, and a wrong cookie
    s += framed(hello(2, false, "wrong"));
    out.push_back(s);
  }
  return out;
}

}  // namespace aspen::fuzz
