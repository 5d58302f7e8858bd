// The client library against scripted fake nodes on the real QUIC transport: leader
// finding, redirects, retries and their limits, resending writes in their session (and not
// membership changes) when the outcome is unknown,
// failover from a dead peer, and connection reuse.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "core/limits.h"
#include "fake_node.h"
#include "kv/key_value_store.h"

namespace aspen::client {
namespace {

using testing::error_response;
using testing::FakeNode;
using testing::read_ok;
using testing::write_ok;
using Clock = std::chrono::steady_clock;

ClientOptions fast_options(uint32_t timeout_ms = 1500) {
  ClientOptions o;
  o.timeout_ms = timeout_ms;
  o.connect_timeout_ms = 300;
  o.attempt_timeout_ms = 300;
  o.initial_backoff_ms = 5;
  o.max_backoff_ms = 50;
  return o;
}

std::unique_ptr<Client> connect_to(std::vector<cluster::TicketPeer> peers, ClientOptions options = fast_options()) {
  auto c = Client::connect(cluster::Ticket{"test-cluster", std::move(peers)}, options);
  EXPECT_TRUE(c.has_value()) << c.error().to_string();
  return c ? std::move(*c) : nullptr;
}

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

TEST(Client, FollowsNotLeaderHintToTheLeader) {
  FakeNode follower(1), leader(2);
  follower.respond([&](const cpb::Request&, int) {
    return error_response(ErrorCode::kNotLeader, "not the leader", leader.address());
  });
  leader.respond([](const cpb::Request& r, int) {
    EXPECT_TRUE(r.has_write());
    return write_ok(7);
  });
  // Only the follower is in the ticket: the leader's address comes from the hint.
  auto client = connect_to({follower.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = kv::put(*client, "k", "v");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->revision(), 7u);
  EXPECT_EQ(follower.requests(), 1);
  EXPECT_EQ(leader.requests(), 1);
  // The leader is remembered: the next write goes straight to it.
  ASSERT_TRUE(kv::put(*client, "k", "w"));
  EXPECT_EQ(follower.requests(), 1);
  EXPECT_EQ(leader.requests(), 2);
  EXPECT_EQ(client->known_nodes().size(), 2u);
}

// A follower that relays a write answers with the leader's response, which names the
// leader (served_by): the client sends its next writes to the leader directly instead of
// through the follower (an extra hop, and a dead end if the leader dies).
TEST(Client, WriteRelayedByAFollowerTeachesTheLeader) {
  FakeNode follower(1), leader(2);
  follower.respond([&](const cpb::Request&, int) {
    auto resp = write_ok(7);
    *resp.mutable_served_by() = leader.address();  // as relayed from the leader
    return resp;
  });
  leader.respond([](const cpb::Request&, int) { return write_ok(8); });
  auto client = connect_to({follower.ticket_peer(), leader.ticket_peer()});
  ASSERT_TRUE(client);
  // Pin the first write to the follower's turn: it is the first ticket peer.
  while (follower.requests() == 0) ASSERT_TRUE(kv::put(*client, "k", "v"));
  const int leader_before = leader.requests();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(kv::put(*client, "k", "w"));
  EXPECT_EQ(follower.requests(), 1);
  EXPECT_EQ(leader.requests(), leader_before + 3);
}

TEST(Client, RetriesUnavailableUntilSuccess) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int i) {
    if (i < 3) return error_response(ErrorCode::kUnavailable, "no leader yet");
    return read_ok("k", "v");
  });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = client->read("k");
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->value(), "v");
  EXPECT_EQ(node.requests(), 4);
}

TEST(Client, RetriesWriteAfterProposalDropped) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int i) {
    if (i == 0) return error_response(ErrorCode::kProposalDropped, "leadership changed");
    return write_ok(3);
  });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = kv::put(*client, "k", "v");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(node.requests(), 2);
}

TEST(Client, GivesUpAtTheDeadlineWithUnavailable) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int) { return error_response(ErrorCode::kUnavailable, "no leader yet"); });
  auto client = connect_to({node.ticket_peer()}, fast_options(400));
  ASSERT_TRUE(client);
  const auto started = Clock::now();
  auto r = client->read("k");
  ASSERT_FALSE(r);
  // Unavailable, or Timeout when the last attempt ran into the deadline: either way it gave up.
  EXPECT_TRUE(r.error().code() == ErrorCode::kUnavailable || r.error().code() == ErrorCode::kTimeout)
      << r.error().to_string();
  EXPECT_GE(ms_since(started), 400);
  // Not a latency bound: only that the call ends near its deadline rather than hanging.
  EXPECT_LT(ms_since(started), 10000);
  EXPECT_GT(node.requests(), 2);
}

TEST(Client, ReadOnAHungNodeTimesOutAtTheDeadline) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int) { return std::nullopt; });
  auto client = connect_to({node.ticket_peer()}, fast_options(500));
  ASSERT_TRUE(client);
  const auto started = Clock::now();
  auto r = client->read("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout) << r.error().to_string();
  EXPECT_LT(ms_since(started), 10000);  // ends at its deadline, does not hang
  // The first attempt waited attempt_timeout_ms (300), then the read was tried again.
  EXPECT_GE(node.requests(), 2);
}

// The sessions of the writes a fake node received, in arrival order.
class SessionLog {
 public:
  void add(const cpb::Request& r) {
    std::lock_guard lock(mu_);
    sessions_.push_back(r.write().command().session());
  }
  std::vector<kvpb::Session> all() const {
    std::lock_guard lock(mu_);
    return sessions_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<kvpb::Session> sessions_;
};

TEST(Client, ResendsAWriteWhoseOutcomeIsUnknownUnderTheSameSessionNumber) {
  FakeNode node(1);
  SessionLog log;
  node.respond([&](const cpb::Request& req, int i) {
    log.add(req);
    if (i == 0) return error_response(ErrorCode::kTimeout, "relayed, and the leader went away");
    return write_ok(9);
  });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = kv::put(*client, "k", "v");
  ASSERT_TRUE(r) << r.error().to_string();
  const auto sessions = log.all();
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_NE(sessions[0].client_id(), 0u);
  EXPECT_EQ(sessions[0].sequence(), 1u);
  EXPECT_EQ(sessions[0].SerializeAsString(), sessions[1].SerializeAsString());
}

// A refusal of the resend does not speak for the first copy, which may still apply (a leader
// with a full disk refuses the resend at admission while the first copy is in its log): the
// call ends with its outcome unknown, not with the refusal. Regression: chaos_short's counter
// check saw an increment reported failed (StorageFull) that had been applied.
TEST(Client, ARefusalAfterAnAttemptWithNoKnownOutcomeLeavesTheWriteMaybeApplied) {
  FakeNode node(1);
  node.respond([&](const cpb::Request&, int i) {
    if (i == 0) return error_response(ErrorCode::kTimeout, "relayed, and the leader went away");
    return error_response(ErrorCode::kStorageFull, "the cluster's storage alarm is raised");
  });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = kv::put(*client, "k", "v");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout) << r.error().to_string();
  EXPECT_NE(r.error().message().find("may or may not have been applied"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().message().find("storage alarm"), std::string::npos) << r.error().to_string();
  EXPECT_EQ(node.requests(), 2);
}

// Without an earlier unknown outcome, the refusal is the answer.
TEST(Client, ARefusalOfTheFirstAttemptIsTheAnswer) {
  FakeNode node(1);
  node.respond([&](const cpb::Request&, int) {
    return error_response(ErrorCode::kStorageFull, "the cluster's storage alarm is raised");
  });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = kv::put(*client, "k", "v");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kStorageFull) << r.error().to_string();
}

TEST(Client, WritesAreNumberedAndSayWhichAreAllAnswered) {
  FakeNode node(1);
  SessionLog log;
  node.respond([&](const cpb::Request& req, int) {
    log.add(req);
    return write_ok(9);
  });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  ASSERT_TRUE(kv::put(*client, "a", "1"));
  ASSERT_TRUE(kv::put(*client, "b", "2"));
  const auto sessions = log.all();
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[0].client_id(), sessions[1].client_id());
  EXPECT_EQ(sessions[1].sequence(), 2u);
  EXPECT_EQ(sessions[1].first_incomplete(), 2u);  // write 1 was answered
}

// The cluster keeps kMaxSessionResults answers per session. While one write hangs, the
// client's other writes may run ahead of it only that far: never is a write sent whose
// number is kMaxSessionResults or more past the oldest unanswered one (the cluster would drop
// the answer the hanging write's resend needs, and refuse that resend).
TEST(Client, WritesRunAheadOfAHangingOneOnlyAsFarAsTheClusterKeepsAnswers) {
  FakeNode node(1);
  std::atomic<uint64_t> widest{0};
  node.respond([&](const cpb::Request& req, int) -> std::optional<cpb::Response> {
    const auto& session = req.write().command().session();
    uint64_t span = session.sequence() - session.first_incomplete() + 1;
    for (uint64_t w = widest.load(); span > w && !widest.compare_exchange_weak(w, span);) {
    }
    if (req.write().command().put().key() == "hangs") return std::nullopt;
    return write_ok(9);
  });
  ClientOptions o = fast_options(1500);
  o.write_attempt_timeout_ms = 1500;  // the hanging write is sent once and waits its whole deadline
  auto client = connect_to({node.ticket_peer()}, o);
  ASSERT_TRUE(client);
  std::thread hanging([&] { (void)kv::put(*client, "hangs", "v"); });
  const auto sent_by = Clock::now() + std::chrono::seconds(2);
  while (node.requests() < 1 && Clock::now() < sent_by) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_GE(node.requests(), 1);
  int ok = 0;
  for (size_t i = 0; i < limits::kMaxSessionResults + 5; ++i) {
    if (kv::put(*client, "k" + std::to_string(i), "v")) ++ok;
  }
  hanging.join();
  EXPECT_LE(widest.load(), limits::kMaxSessionResults);
  EXPECT_EQ(ok, static_cast<int>(limits::kMaxSessionResults) + 5);  // the rest waited, then went through
}

TEST(Client, WriteThatCannotEnterAFullSessionWindowEndsNotSentAtItsDeadline) {
  FakeNode node(1);
  node.respond([](const cpb::Request& req, int) -> std::optional<cpb::Response> {
    if (req.write().command().put().key() == "hangs") return std::nullopt;
    return write_ok(9);
  });
  ClientOptions o = fast_options(2000);
  o.write_attempt_timeout_ms = 2000;
  auto client = connect_to({node.ticket_peer()}, o);
  ASSERT_TRUE(client);
  std::thread hanging([&] { (void)kv::put(*client, "hangs", "v"); });
  const auto sent_by = Clock::now() + std::chrono::seconds(2);
  while (node.requests() < 1 && Clock::now() < sent_by) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_GE(node.requests(), 1);
  for (size_t i = 1; i < limits::kMaxSessionResults; ++i) ASSERT_TRUE(kv::put(*client, "k" + std::to_string(i), "v"));
  const int sent_before = node.requests();
  cpb::Request req;
  req.mutable_write()->mutable_command()->mutable_put()->set_key("late");
  auto r = client->call(req, Target{}, 200);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
  EXPECT_NE(r.error().message().find("not sent"), std::string::npos) << r.error().message();
  EXPECT_EQ(node.requests(), sent_before);
  hanging.join();
}

TEST(Client, UnansweredWriteEndsAtItsDeadlineAsMaybeApplied) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int) { return std::nullopt; });
  ClientOptions o = fast_options(1200);
  o.write_attempt_timeout_ms = 300;
  auto client = connect_to({node.ticket_peer()}, o);
  ASSERT_TRUE(client);
  const auto started = Clock::now();
  auto r = kv::put(*client, "k", "v");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
  EXPECT_NE(r.error().message().find("may or may not have been applied (at most once)"), std::string::npos)
      << r.error().message();
  EXPECT_GE(node.requests(), 2);  // sent again after an attempt went unanswered
  EXPECT_LT(ms_since(started), 10000);
}

TEST(Client, DoesNotResendAMembershipChangeAfterTheNodeTimedOut) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int) { return error_response(ErrorCode::kTimeout, "proposal timed out"); });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = client->change_membership({1, 2}, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
  EXPECT_NE(r.error().message().find("may or may not"), std::string::npos) << r.error().message();
  EXPECT_EQ(node.requests(), 1);
}

TEST(Client, RetriesAReadAfterTheNodeTimedOut) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int i) {
    if (i == 0) return error_response(ErrorCode::kTimeout, "read index timed out");
    return read_ok("k", "v");
  });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = client->read("k");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(node.requests(), 2);
}

TEST(Client, FailsOverFromADeadPeerToAnother) {
  FakeNode dead(1), alive(2);
  const auto dead_peer = dead.ticket_peer();
  dead.stop();
  alive.respond([](const cpb::Request&, int) { return write_ok(9); });
  auto client = connect_to({dead_peer, alive.ticket_peer()});
  ASSERT_TRUE(client);
  const auto started = Clock::now();
  auto r = kv::put(*client, "k", "v");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->revision(), 9u);
  EXPECT_EQ(alive.requests(), 1);
  EXPECT_LT(ms_since(started), 10000);  // ends at its deadline, does not hang
}

TEST(Client, ErrorsThatAreNotRetryableReturnAtOnce) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int) { return error_response(ErrorCode::kInvalidArgument, "bad range"); });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = client->read("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "bad range");
  EXPECT_EQ(node.requests(), 1);
}

TEST(Client, OversizedKeyIsRefusedWithoutARoundTrip) {
  FakeNode node(1);
  node.respond([](const cpb::Request&, int) { return read_ok("k", "v"); });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = client->read(std::string(limits::kMaxKeySizeBytes + 1, 'k'));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kKeyTooLarge);
  auto w = kv::put(*client, "k", std::string(limits::kMaxValueSizeBytes + 1, 'v'));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), ErrorCode::kValueTooLarge);
  EXPECT_EQ(node.requests(), 0);
}

TEST(Client, TargetedCallReachesAMemberLearnedFromRaftMetrics) {
  FakeNode first(1), other(2);
  first.respond([&](const cpb::Request& r, int) {
    cpb::Response resp;
    EXPECT_TRUE(r.has_get_raft_metrics());
    auto* m = resp.mutable_get_raft_metrics();
    m->set_node_id(1);
    m->set_leader_id(1);
    *m->add_members() = first.address();
    *m->add_members() = other.address();
    return resp;
  });
  other.respond([](const cpb::Request& r, int) {
    cpb::Response resp;
    EXPECT_TRUE(r.has_get_health());
    resp.mutable_get_health()->set_node_id(2);
    resp.mutable_get_health()->set_status("ok");
    return resp;
  });
  auto client = connect_to({first.ticket_peer()});
  ASSERT_TRUE(client);
  auto h = client->health(Target{2});
  ASSERT_TRUE(h) << h.error().to_string();
  EXPECT_EQ(h->node_id(), 2u);
  EXPECT_EQ(other.requests(), 1);
  // An unknown node id is NotFound, not a hang.
  auto missing = client->health(Target{42});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(Client, PinnedCallDoesNotFollowNotLeader) {
  FakeNode follower(1), leader(2);
  follower.respond([&](const cpb::Request&, int) {
    return error_response(ErrorCode::kNotLeader, "not the leader", leader.address());
  });
  auto client = connect_to({follower.ticket_peer(), leader.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = client->read("k", cpb::CONSISTENCY_LINEARIZABLE, Target{1});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotLeader);
  EXPECT_EQ(leader.requests(), 0);
}

TEST(Client, InitClusterGoesToTheFirstTicketPeer) {
  FakeNode first(1), second(2);
  first.respond([](const cpb::Request& r, int) {
    EXPECT_TRUE(r.has_init_cluster());
    EXPECT_EQ(r.init_cluster().root_public_key().size(), 32u);  // the secret half stays here
    cpb::Response resp;
    resp.mutable_init_cluster()->set_cluster_id("c1");
    return resp;
  });
  auto client = connect_to({first.ticket_peer(), second.ticket_peer()});
  ASSERT_TRUE(client);
  auto r = client->init_cluster();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->response.cluster_id(), "c1");
  EXPECT_EQ(second.requests(), 0);
}

// LeaseList comes a page at a time; the client asks from after the last id until the node
// says there is no more.
TEST(Client, LeaseListIsGatheredPageByPage) {
  FakeNode node(1);
  std::vector<uint64_t> asked_after;
  std::mutex mu;
  node.respond([&](const cpb::Request& r, int) {
    EXPECT_TRUE(r.has_lease_list());
    const uint64_t after = r.lease_list().after_id();
    {
      std::lock_guard lock(mu);
      asked_after.push_back(after);
    }
    cpb::Response resp;
    auto* page = resp.mutable_lease_list();
    for (uint64_t id = after + 1; id <= std::min<uint64_t>(after + 2, 5); ++id) page->add_leases()->set_id(id);
    page->set_has_more(after + 2 < 5);
    return resp;
  });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  auto leases = client->list_leases();
  ASSERT_TRUE(leases.has_value()) << leases.error().to_string();
  ASSERT_EQ(leases->size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ((*leases)[i].id(), i + 1);
  std::lock_guard lock(mu);
  EXPECT_EQ(asked_after, (std::vector<uint64_t>{0, 2, 4}));
}

TEST(Client, ConcurrentCallsShareOneConnection) {
  FakeNode node(1);
  node.respond([](const cpb::Request& r, int) { return read_ok(r.read().key(), "v"); });
  auto client = connect_to({node.ticket_peer()});
  ASSERT_TRUE(client);
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i);
        auto r = client->read(key);
        if (r && r->has_value() && (*r)->key() == key) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kCallsPerThread);
  EXPECT_EQ(node.connections(), 1);
}

TEST(Client, FailsOverWhenTheLeaderGoesAway) {
  FakeNode a(1), b(2);
  a.respond([](const cpb::Request&, int) { return read_ok("k", "a"); });
  b.respond([](const cpb::Request&, int) { return read_ok("k", "b"); });
  auto client = connect_to({a.ticket_peer(), b.ticket_peer()});
  ASSERT_TRUE(client);
  auto first = client->read("k");
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_EQ((*first)->value(), "a");
  a.stop();
  // The leader (a) is gone: the read fails over to b within the deadline.
  auto second = client->read("k");
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ((*second)->value(), "b");
}

TEST(Client, BadTicketIsInvalidArgument) {
  auto c = Client::connect(std::string_view("not-a-ticket"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  auto empty = Client::connect(cluster::Ticket{"c", {}});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace aspen::client
