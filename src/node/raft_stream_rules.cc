#include "node/raft_stream_rules.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>

#include "aspen/cluster.pb.h"
#include "core/limits.h"

namespace aspen::node {

namespace {

constexpr size_t kProofSizeBytes = 32;
static_assert(kProofSizeBytes == crypto_generichash_BYTES);

bool has_binding(const ChannelFacts& facts) {
  return std::any_of(facts.binding.begin(), facts.binding.end(), [](uint8_t b) { return b != 0; });
}

// Constant time: a proof compared byte by byte with early exit would leak how much of it
// an attacker guessed right.
bool proof_matches(std::string_view got, std::string_view cookie_key, ProofRole role, NodeId prover,
                   const ChannelFacts& facts) {
  if (got.size() != kProofSizeBytes || !has_binding(facts)) return false;
  const std::string want = cookie_proof(cookie_key, role, prover, facts);
  return crypto_verify_32(reinterpret_cast<const unsigned char*>(got.data()),
                          reinterpret_cast<const unsigned char*>(want.data())) == 0;
}

}  // namespace

std::string raft_cookie_key(std::string_view cookie) {
  // Keyed so that the result is useless outside Aspen's Raft greeting.
  static constexpr unsigned char kDomain[] = "aspen raft cookie key v2 .......";
  static_assert(sizeof(kDomain) - 1 == 32);
  unsigned char out[32];
  crypto_generichash(out, sizeof(out), reinterpret_cast<const unsigned char*>(cookie.data()), cookie.size(), kDomain,
                     32);
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

std::string cookie_proof(std::string_view cookie_key, ProofRole role, NodeId prover, const ChannelFacts& facts) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, reinterpret_cast<const unsigned char*>(cookie_key.data()),
                          std::min<size_t>(cookie_key.size(), crypto_generichash_KEYBYTES_MAX), kProofSizeBytes);
  static constexpr std::string_view kDomain = "aspen raft greeting proof v1";
  auto add = [&st](const void* p, size_t n) {
    crypto_generichash_update(&st, static_cast<const unsigned char*>(p), n);
  };
  add(kDomain.data(), kDomain.size());
  const auto role_byte = static_cast<uint8_t>(role);
  add(&role_byte, 1);
  uint8_t id[8];
  for (int i = 0; i < 8; ++i) id[i] = static_cast<uint8_t>(prover >> (8 * i));
  add(id, sizeof(id));
  add(facts.binding.data(), facts.binding.size());
  add(facts.dialer.bytes().data(), facts.dialer.bytes().size());
  add(facts.acceptor.bytes().data(), facts.acceptor.bytes().size());
  unsigned char out[kProofSizeBytes];
  crypto_generichash_final(&st, out, sizeof(out));
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

std::string make_greeting(NodeId self, std::string_view cookie_key, const ChannelFacts& facts,
                          const std::vector<std::string>& addrs, bool is_snapshot) {
  clusterpb::RaftHello h;
  h.set_node_id(self);
  h.set_cookie_proof(cookie_proof(cookie_key, ProofRole::kDialer, self, facts));
  for (const auto& a : addrs) h.add_addrs(a);
  h.set_is_snapshot(is_snapshot);
  return h.SerializeAsString();
}

std::string make_greeting_ack(NodeId self, std::string_view cookie_key, const ChannelFacts& facts) {
  clusterpb::RaftHelloAck ack;
  ack.set_node_id(self);
  ack.set_cookie_proof(cookie_proof(cookie_key, ProofRole::kAcceptor, self, facts));
  return ack.SerializeAsString();
}

Status check_greeting_ack(std::string_view frame, NodeId expected, std::string_view cookie_key,
                          const ChannelFacts& facts) {
  auto refuse = [](std::string why) { return make_error(ErrorCode::kUnauthorized, std::move(why)); };
  clusterpb::RaftHelloAck ack;
  if (!ack.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) return refuse("malformed greeting answer");
  if (ack.node_id() != expected) {
    return refuse(fmt::format("the answer comes from node {}, not node {}", ack.node_id(), expected));
  }
  if (!proof_matches(ack.cookie_proof(), cookie_key, ProofRole::kAcceptor, expected, facts)) {
    return refuse("it did not prove the cluster cookie (a different cookie?)");
  }
  return {};
}

Result<Greeting> check_greeting(std::string_view frame, NodeId self, std::string_view cookie_key,
                                const PeerRegistry& peers, const ChannelFacts& facts) {
  auto refuse = [](std::string why) { return make_error(ErrorCode::kUnauthorized, std::move(why)); };
  const transport::PublicKey& peer_key = facts.dialer;
  clusterpb::RaftHello hello;
  if (!hello.ParseFromArray(frame.data(), static_cast<int>(frame.size())) || hello.node_id() == kNoNode) {
    return refuse("malformed greeting");
  }
  if (!proof_matches(hello.cookie_proof(), cookie_key, ProofRole::kDialer, hello.node_id(), facts)) {
    return refuse("wrong cluster cookie");
  }
  if (hello.node_id() == self) return refuse("it claims this node's own id");
  auto known = peers.lookup(hello.node_id());
  if (known && known->key != peer_key && peers.has_membership()) {
    return refuse(fmt::format("node {} is registered with a different key", hello.node_id()));
  }
  if (!peers.is_trusted(peer_key)) return refuse("not a member of this cluster");
  Greeting g;
  g.from = hello.node_id();
  g.is_snapshot = hello.is_snapshot();
  if (static_cast<size_t>(hello.addrs_size()) > limits::kMaxNodeAddresses) {
    return refuse(fmt::format("greeting names {} addresses; the limit is {}", hello.addrs_size(), limits::kMaxNodeAddresses));
  }
  for (const auto& a : hello.addrs()) {
    if (auto sa = transport::SocketAddr::parse(a)) g.addrs.push_back(*sa);
  }
  return g;
}

Result<pb::Message> check_stream_message(std::string_view frame, NodeId from, NodeId self) {
  pb::Message m;
  if (!m.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
    return make_error(ErrorCode::kInvalidArgument, "malformed Raft message");
  }
  if (m.from() != from || m.to() != self) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("message claims to be from {} to {} on node {}'s stream", m.from(), m.to(), from));
  }
  if (m.type() == pb::MSG_SNAP) {
    // One here would make the core install a state this node never received.
    return make_error(ErrorCode::kInvalidArgument, "a snapshot outside a snapshot stream");
  }
  return m;
}

}  // namespace aspen::node
