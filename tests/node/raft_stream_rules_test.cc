// The Raft greeting: both sides prove the cookie, and each proof holds on one connection only.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "aspen/cluster.pb.h"
#include "node/raft_stream_rules.h"

namespace aspen::node {
namespace {

using transport::NodeIdentity;
using transport::SocketAddr;

struct Pair {
  NodeIdentity n1 = NodeIdentity::generate();  // accepts
  NodeIdentity n2 = NodeIdentity::generate();  // dials
  PeerRegistry peers;                          // node 1's view
  std::string key = raft_cookie_key("the-cluster-cookie");
  ChannelFacts facts;
  Pair() {
    kvpb::KeyValue kv;
    kv.set_key(node_record_key(2));
    kv.set_value(encode_node_record(2, n2.public_key(), {*SocketAddr::parse("127.0.0.1:7002")}));
    peers.set_records({kv});
    raftpb::ConfState cs;
    cs.add_voters(1);
    cs.add_voters(2);
    peers.set_membership(cs);
    facts.binding.fill(7);
    facts.dialer = n2.public_key();
    facts.acceptor = n1.public_key();
  }
  std::string greeting(const ChannelFacts& f, std::string_view cookie_key) const {
    return make_greeting(2, cookie_key, f, {"127.0.0.1:7002"}, false);
  }
};

TEST(RaftGreeting, BothSidesProveTheCookie) {
  Pair p;
  auto g = check_greeting(p.greeting(p.facts, p.key), 1, p.key, p.peers, p.facts);
  ASSERT_TRUE(g.has_value()) << g.error().to_string();
  EXPECT_EQ(g->from, 2u);
  EXPECT_TRUE(check_greeting_ack(make_greeting_ack(1, p.key, p.facts), 1, p.key, p.facts).has_value());
}

TEST(RaftGreeting, WrongCookieIsRefusedBothWays) {
  Pair p;
  const std::string other = raft_cookie_key("another-cookie");
  auto g = check_greeting(p.greeting(p.facts, other), 1, p.key, p.peers, p.facts);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(g.error().message(), "wrong cluster cookie");
  auto a = check_greeting_ack(make_greeting_ack(1, other, p.facts), 1, p.key, p.facts);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code(), ErrorCode::kUnauthorized);
}

// A greeting recorded on one connection proves nothing on another (a replay), nor with the
// keys swapped, nor reflected back as the acceptor's answer.
TEST(RaftGreeting, ProofDoesNotTravelToAnotherConnection) {
  Pair p;
  const std::string hello = p.greeting(p.facts, p.key);
  ChannelFacts other_conn = p.facts;
  other_conn.binding[31] ^= 1;
  EXPECT_FALSE(check_greeting(hello, 1, p.key, p.peers, other_conn).has_value());
  ChannelFacts swapped = p.facts;
  std::swap(swapped.dialer, swapped.acceptor);
  EXPECT_FALSE(check_greeting(hello, 1, p.key, p.peers, swapped).has_value());
  clusterpb::RaftHello parsed;
  ASSERT_TRUE(parsed.ParseFromString(hello));
  clusterpb::RaftHelloAck reflected;
  reflected.set_node_id(2);
  reflected.set_cookie_proof(parsed.cookie_proof());
  EXPECT_FALSE(check_greeting_ack(reflected.SerializeAsString(), 2, p.key, p.facts).has_value());
  // An answer claiming another node's id does not pass either.
  EXPECT_FALSE(check_greeting_ack(make_greeting_ack(3, p.key, p.facts), 1, p.key, p.facts).has_value());
}

TEST(RaftGreeting, ConnectionWithoutAChannelBindingIsRefused) {
  Pair p;
  ChannelFacts none = p.facts;
  none.binding.fill(0);
  EXPECT_FALSE(check_greeting(p.greeting(none, p.key), 1, p.key, p.peers, none).has_value());
  EXPECT_FALSE(check_greeting_ack(make_greeting_ack(1, p.key, none), 1, p.key, none).has_value());
}

TEST(RaftGreeting, TruncatedOrMissingProofIsRefused) {
  Pair p;
  clusterpb::RaftHello h;
  ASSERT_TRUE(h.ParseFromString(p.greeting(p.facts, p.key)));
  for (size_t n : {size_t{0}, size_t{1}, size_t{31}, size_t{33}}) {
    clusterpb::RaftHello cut = h;
    cut.set_cookie_proof(std::string(h.cookie_proof()).substr(0, std::min<size_t>(n, 32)) + std::string(n > 32 ? 1 : 0, 'x'));
    EXPECT_FALSE(check_greeting(cut.SerializeAsString(), 1, p.key, p.peers, p.facts).has_value()) << n;
  }
}

// The cookie is right and the proof good, but the key is no member's: still refused.
TEST(RaftGreeting, StrangerWithTheCookieIsRefused) {
  Pair p;
  auto stranger = NodeIdentity::generate();
  ChannelFacts f = p.facts;
  f.dialer = stranger.public_key();
  auto g = check_greeting(make_greeting(5, p.key, f, {}, false), 1, p.key, p.peers, f);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().code(), ErrorCode::kUnauthorized);
}

// Whatever bytes arrive as a greeting or as its answer, nothing crashes and nothing passes:
// a proof cannot be guessed.
RC_GTEST_PROP(RaftGreeting, ArbitraryBytesNeverPass, (std::string bytes)) {
  Pair p;
  RC_ASSERT(!check_greeting(bytes, 1, p.key, p.peers, p.facts).has_value());
  RC_ASSERT(!check_greeting_ack(bytes, 1, p.key, p.facts).has_value());
}

}  // namespace
}  // namespace aspen::node
