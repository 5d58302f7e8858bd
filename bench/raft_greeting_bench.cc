// What proving the cookie costs when a Raft link is set up, on loopback: from dialling a
// peer to the moment the first Raft message may be sent.
//
//   build/aspen_bench --benchmark_filter='RaftGreeting' --benchmark_counters_tabular=true
//
// proof=0: connect and open a stream (what a link cost before the two-way proof: the
// greeting went out with the first messages, unanswered). proof=1: the same, then the
// greeting with its proof, the acceptor's check and answer, and the dialler's check of the
// answer (raft_stream_rules.h): one more round trip and four keyed BLAKE2b hashes.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "core/assert.h"
#include "node/raft_stream_rules.h"
#include "transport/endpoint.h"

namespace {

using namespace aspen;
using Clock = std::chrono::steady_clock;

const std::string& cookie_key() {
  static const std::string key = node::raft_cookie_key("bench-cookie-123");
  return key;
}

// The acceptor's side, as RaftLinks does it: check the greeting, answer with its own proof.
class Acceptor : public transport::ProtocolHandler {
 public:
  explicit Acceptor(transport::PublicKey self) : self_(self) {}
  void on_connection(transport::Connection conn) override {
    while (auto s = conn.accept_bi(60000)) {
      auto hello = s->recv(60000);
      if (!hello || !*hello) break;
      const node::ChannelFacts facts{s->channel_binding(), s->peer_key(), self_};
      auto g = node::check_greeting(**hello, 1, cookie_key(), peers_, facts);
      ASPEN_ASSERT(g.has_value());
      ASPEN_ASSERT(s->send(node::make_greeting_ack(1, cookie_key(), facts)).has_value());
    }
  }

 private:
  transport::PublicKey self_;
  node::PeerRegistry peers_;  // no membership yet: any key, the cookie is the gate
};

void BM_RaftGreetingLinkSetup(benchmark::State& state) {
  const bool is_proven = state.range(0) == 1;
  auto server_id = transport::NodeIdentity::generate();
  auto server = std::move(*transport::Endpoint::bind(server_id, {}));
  ASPEN_ASSERT(server->register_handler("raft-auth", std::make_shared<Acceptor>(server->public_key())).has_value());
  auto client = std::move(*transport::Endpoint::bind(transport::NodeIdentity::generate(), {}));
  std::vector<double> samples;
  auto once = [&] {
    const auto start = Clock::now();
    auto conn = client->connect(server->public_key(), std::vector{server->local_addr()}, "raft-auth");
    ASPEN_ASSERT(conn.has_value());
    auto st = conn->open_bi();
    ASPEN_ASSERT(st.has_value());
    if (is_proven) {
      const node::ChannelFacts facts{conn->channel_binding(), client->public_key(), server->public_key()};
      ASPEN_ASSERT(st->send(node::make_greeting(2, cookie_key(), facts, {}, false)).has_value());
      auto ack = st->recv(10000);
      ASPEN_ASSERT(ack.has_value() && ack->has_value());
      ASPEN_ASSERT(node::check_greeting_ack(**ack, 1, cookie_key(), facts).has_value());
    }
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    conn->close();
    return us;
  };
  (void)once();  // warm up lazy crypto initialisation
  for (auto _ : state) {
    const double us = once();
    samples.push_back(us);
    state.SetIterationTime(us / 1e6);
  }
  std::sort(samples.begin(), samples.end());
  state.counters["p50_us"] = samples[samples.size() / 2];
  state.counters["p99_us"] = samples[samples.size() * 99 / 100];
}
BENCHMARK(BM_RaftGreetingLinkSetup)
    ->ArgName("proof")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(200)
    ->Unit(benchmark::kMicrosecond);

// The hashing alone: one proof computed and checked.
void BM_RaftGreetingProofCheck(benchmark::State& state) {
  node::ChannelFacts facts;
  facts.binding.fill(7);
  facts.dialer = transport::NodeIdentity::generate().public_key();
  facts.acceptor = transport::NodeIdentity::generate().public_key();
  const std::string ack = node::make_greeting_ack(1, cookie_key(), facts);
  for (auto _ : state) benchmark::DoNotOptimize(node::check_greeting_ack(ack, 1, cookie_key(), facts));
}
BENCHMARK(BM_RaftGreetingProofCheck)->Unit(benchmark::kMicrosecond);

}  // namespace
