// Coordination primitives (src/coord) against a real 3-node cluster, through the client
// protocol: every primitive runs over client::Client, which is a kv::KeyValueStore. Many
// threads, each with its own Client, contend on one object; the tests record what every
// thread saw and check the primitive's guarantee on the whole history.
//
// One cluster serves the whole suite (each test uses its own object names) to keep the run
// short. Waiting is on conditions: the primitives' own polling waits, or wait_until.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "coord/barrier.h"
#include "coord/counter.h"
#include "coord/election.h"
#include "coord/lock.h"
#include "coord/queue.h"
#include "coord/rwlock.h"
#include "coord/semaphore.h"
#include "kv/commands.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t steady_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count());
}
// Queue visibility compares times written by different clients: they share the wall clock.
uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

coord::Waiter real_waiter(uint64_t seed) {
  return coord::Waiter{steady_ms, [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
                       seed};
}

class CoordClusterTest : public ::testing::Test {
 protected:
  static inline SharedSetUp shared_;  // set_up_suite runs from the first SetUp (node_process.h)
  static void set_up_suite() {
    dir_ = new TempDir();
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_->path(), "coord-cookie-1");
      nodes_[id]->start();
    }
    auto c = make_client();
    ASSERT_NE(c, nullptr);
    form_cluster(*c);
  }

  static void TearDownTestSuite() {
    shared_ = {};
    for (auto& [id, n] : nodes_) n->kill9();
    nodes_.clear();
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    ASPEN_SHARED_SET_UP(shared_, set_up_suite);
  }

  // These tests count an ambiguous write (no answer within the attempt timeout) as a
  // problem. The suite runs two tests at once on one disk, and while another test writes
  // a hundred MiB an fsync can stall past the client's default second.
  static constexpr uint32_t kWriteAttemptTimeoutMs = 5000;
  static std::unique_ptr<client::Client> make_client(uint32_t timeout_ms = 15000) {
    return client_for(nodes_, timeout_ms, kWriteAttemptTimeoutMs);
  }

  static void form_cluster(client::Client& c) {
    clientpb::InitClusterResponse init;
    ASSERT_NO_FATAL_FAILURE(testing::form_cluster(c, nodes_, &init));
    ticket_ = init.ticket();
  }

  // One Client per thread, connected up front so connecting is not part of the race.
  static std::vector<std::unique_ptr<client::Client>> make_clients(size_t n) {
    std::vector<std::unique_ptr<client::Client>> out;
    for (size_t i = 0; i < n; ++i) out.push_back(make_client());
    return out;
  }

  static TempDir* dir_;
  static std::map<uint64_t, std::unique_ptr<NodeProcess>> nodes_;
  static std::string ticket_;
};

TempDir* CoordClusterTest::dir_ = nullptr;
std::map<uint64_t, std::unique_ptr<NodeProcess>> CoordClusterTest::nodes_;
std::string CoordClusterTest::ticket_;

// Every holder records [acquired, releasing] on one steady clock: the measured interval lies
// inside the real one (acquired is read after the acquiring Txn committed, releasing before
// the releasing Txn is sent), so disjoint real intervals give disjoint measured ones.
struct HoldInterval {
  uint64_t acquired_us = 0;
  uint64_t releasing_us = 0;
  uint64_t fencing_token = 0;
  std::string holder;
};

uint64_t steady_us() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count());
}

// Waiters get a lock in the order they asked for it (each watches only the key ahead of it).
TEST_F(CoordClusterTest, LockIsGrantedInArrivalOrder) {
  auto clients = make_clients(4);
  const std::string name = "it/fifo";
  coord::DistributedLock first(*clients[0], name);
  auto held = first.try_acquire("first", 10000);
  ASSERT_TRUE(held.has_value() && held->has_value());
  auto queued = [&] {
    auto page = kv::scan_prefix(*clients[0], "__coord:lockq:" + name + ":");
    return page ? page->kvs_size() : 0;
  };
  std::mutex mu;
  std::vector<std::string> order;
  std::vector<std::thread> waiters;
  for (int i = 1; i <= 3; ++i) {
    waiters.emplace_back([&, i] {
      coord::DistributedLock lock(*clients[i], name);
      auto h = lock.try_acquire_until(fmt::format("w{}", i), 10000, steady_ms() + 30000, real_waiter(i));
      ASSERT_TRUE(h.has_value()) << h.error().to_string();
      {
        std::lock_guard g(mu);
        order.push_back(h->holder);
      }
      ASSERT_TRUE(lock.release(*h).has_value());
    });
    // The next waiter arrives only once this one is queued.
    ASSERT_TRUE(wait_until([&] { return queued() == i + 1; }, 10000));
  }
  ASSERT_TRUE(first.release(**held).has_value());
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<std::string>{"w1", "w2", "w3"}));
}

// Waiters wait on the leader (a one-shot watch each); killing it mid-wait moves their waits to
// the other members, and they still take the lock in arrival order once it is released.
TEST_F(CoordClusterTest, LockWaitersWhoseMemberIsKilledTakeTheLockInOrderFromAnotherMember) {
  auto clients = make_clients(3);
  const std::string name = "it/failover";
  coord::DistributedLock first(*clients[0], name);
  auto held = first.try_acquire("first", 20000);
  ASSERT_TRUE(held.has_value() && held->has_value());
  auto queued = [&] {
    auto page = kv::scan_prefix(*clients[0], "__coord:lockq:" + name + ":");
    return page ? page->kvs_size() : 0;
  };
  std::mutex mu;
  std::vector<std::pair<std::string, uint64_t>> order;  // holder, fencing token
  std::vector<std::thread> waiters;
  for (int i = 1; i <= 2; ++i) {
    waiters.emplace_back([&, i] {
      coord::DistributedLock lock(*clients[i], name);
      auto h = lock.try_acquire_until(fmt::format("w{}", i), 20000, steady_ms() + 60000, real_waiter(i));
      ASSERT_TRUE(h.has_value()) << h.error().to_string();
      {
        std::lock_guard g(mu);
        order.emplace_back(h->holder, h->fencing_token);
      }
      ASSERT_TRUE(lock.release(*h).has_value());
    });
    ASSERT_TRUE(wait_until([&] { return queued() == i + 1; }, 10000));
  }
  auto raft = clients[0]->raft_metrics();
  ASSERT_TRUE(raft.has_value()) << raft.error().to_string();
  const uint64_t leader_id = raft->leader_id();
  ASSERT_TRUE(nodes_.contains(leader_id));
  // Both waits are open on the leader before it goes.
  ASSERT_TRUE(wait_until(
      [&] {
        auto m = clients[0]->metrics_text(client::Target{leader_id});
        return m && m->find("aspen_watchers{") != std::string::npos &&
               std::stoull(m->substr(m->find('}', m->find("aspen_watchers{")) + 2)) >= 2;
      },
      10000));
  nodes_[leader_id]->kill9();
  auto released = first.release(**held);  // through the new leader
  ASSERT_TRUE(released.has_value()) << released.error().to_string();
  for (auto& t : waiters) t.join();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0].first, "w1");
  EXPECT_EQ(order[1].first, "w2");
  EXPECT_GT(order[0].second, (*held)->fencing_token);
  EXPECT_GT(order[1].second, order[0].second);
  nodes_[leader_id]->start();
}

// A lock waiter woken by a deletion reads the queue as of the deletion's revision (a stale
// read on the leader, which may arrive before the leader's store has committed it): the
// revision the wait reports shows the key gone, the one before it shows the key.
TEST_F(CoordClusterTest, ADeletionAWaitReportsIsReadBackAtItsRevision) {
  auto clients = make_clients(2);
  const std::string key = "it/range-at/k";
  auto put = kv::put(*clients[0], key, "v");
  ASSERT_TRUE(put.has_value()) << put.error().to_string();
  uint64_t created = put->revision();
  for (int round = 0; round < 20; ++round) {
    std::thread deleter([&] { ASSERT_TRUE(kv::del(*clients[1], key).has_value()); });
    auto gone = clients[0]->wait_for_delete(key, created, 10000);
    deleter.join();
    ASSERT_TRUE(gone.has_value()) << gone.error().to_string();
    ASSERT_GT(*gone, created);
    auto after = clients[0]->range_at(kv::key_range(key), *gone);
    ASSERT_TRUE(after.has_value()) << after.error().to_string();
    EXPECT_EQ(after->revision(), *gone);
    EXPECT_EQ(after->kvs_size(), 0);
    auto before = clients[0]->range_at(kv::key_range(key), *gone - 1);
    ASSERT_TRUE(before.has_value()) << before.error().to_string();
    ASSERT_EQ(before->kvs_size(), 1);
    EXPECT_EQ(before->kvs(0).value(), "v");
    auto again = kv::put(*clients[1], key, "v");
    ASSERT_TRUE(again.has_value());
    created = again->revision();  // the next round waits for a deletion after this put
  }
}

TEST_F(CoordClusterTest, LockExcludesContendingClientsAndFencingTokensIncrease) {
  constexpr size_t kThreads = 8;
  constexpr int kRounds = 6;
  auto clients = make_clients(kThreads);
  std::atomic<int> inside{0};
  std::atomic<int> violations{0};
  std::mutex mu;
  std::vector<HoldInterval> history;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      coord::DistributedLock lock(*clients[t], "it/mutex");
      const std::string holder = fmt::format("worker-{}", t);
      for (int i = 0; i < kRounds; ++i) {
        auto h = lock.try_acquire_until(holder, 10000, steady_ms() + 30000, real_waiter(t + 1));
        if (!h) {
          std::lock_guard g(mu);
          errors.push_back(holder + " acquire: " + h.error().to_string());
          return;
        }
        HoldInterval iv{steady_us(), 0, h->fencing_token, holder};
        if (inside.fetch_add(1) != 0) ++violations;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a critical section with some length
        inside.fetch_sub(1);
        iv.releasing_us = steady_us();
        auto s = lock.release(*h);
        std::lock_guard g(mu);
        if (!s) errors.push_back(holder + " release: " + s.error().to_string());
        history.push_back(iv);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(violations.load(), 0) << "two holders were inside the critical section at once";
  ASSERT_EQ(history.size(), kThreads * kRounds);
  std::sort(history.begin(), history.end(),
            [](const HoldInterval& a, const HoldInterval& b) { return a.acquired_us < b.acquired_us; });
  for (size_t i = 1; i < history.size(); ++i) {
    const auto& prev = history[i - 1];
    const auto& next = history[i];
    EXPECT_LE(prev.releasing_us, next.acquired_us)
        << prev.holder << " (token " << prev.fencing_token << ") still held the lock when " << next.holder
        << " (token " << next.fencing_token << ") acquired it";
    EXPECT_LT(prev.fencing_token, next.fencing_token) << "fencing tokens must increase in acquisition order";
  }
  auto now = coord::DistributedLock(*clients[0], "it/mutex").holder();
  ASSERT_TRUE(now.has_value()) << now.error().to_string();
  EXPECT_FALSE(now->has_value()) << "the lock is free after the last release";
}

TEST_F(CoordClusterTest, CounterIsExactUnderContention) {
  constexpr size_t kThreads = 16;
  constexpr int kIncrements = 100;
  auto clients = make_clients(kThreads);
  std::atomic<int> failures{0};
  std::mutex mu;
  std::set<int64_t> seen;  // every increment returns a distinct new value
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      coord::AtomicCounter counter(*clients[t], "it/hits");
      for (int i = 0; i < kIncrements; ++i) {
        auto v = counter.increment();
        if (!v) {
          if (failures++ < 3) ADD_FAILURE() << "increment: " << v.error().to_string();
          continue;
        }
        std::lock_guard g(mu);
        EXPECT_TRUE(seen.insert(*v).second) << "two increments returned " << *v;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  auto total = coord::AtomicCounter(*clients[0], "it/hits").get();
  ASSERT_TRUE(total.has_value()) << total.error().to_string();
  EXPECT_EQ(*total, static_cast<int64_t>(kThreads * kIncrements));
  EXPECT_EQ(seen.size(), kThreads * kIncrements);
  EXPECT_EQ(*seen.begin(), 1);
  EXPECT_EQ(*seen.rbegin(), static_cast<int64_t>(kThreads * kIncrements));
}

TEST_F(CoordClusterTest, QueueDeliversEveryMessageAndNoneAfterItsAck) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 40;
  constexpr int kConsumers = 4;
  constexpr int kTotal = kProducers * kPerProducer;
  // Short visibility so that messages a consumer "loses" come back within the test.
  const coord::QueueConfig cfg{.visibility_timeout_ms = 1500, .max_delivery_attempts = 10};
  auto clients = make_clients(kProducers + kConsumers);
  std::mutex mu;
  std::map<std::string, int> acks;  // payload -> successful acks
  std::vector<std::string> problems;
  std::atomic<int> acked{0};
  std::atomic<int> dropped{0};
  std::atomic<int> nacked{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      coord::QueueManager q(*clients[p], "it-jobs", cfg);
      for (int i = 0; i < kPerProducer; ++i) {
        auto r = q.enqueue(fmt::format("p{}-m{}", p, i), "", wall_ms());
        if (!r) {
          std::lock_guard g(mu);
          problems.push_back("enqueue: " + r.error().to_string());
        }
      }
    });
  }
  const uint64_t deadline = steady_ms() + 40000;
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      coord::QueueManager q(*clients[kProducers + c], "it-jobs", cfg);
      while (acked.load() < kTotal && steady_ms() < deadline) {
        auto batch = q.dequeue(3, wall_ms());
        if (!batch) {
          std::lock_guard g(mu);
          problems.push_back("dequeue: " + batch.error().to_string());
          return;
        }
        if (batch->empty()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval of an idle consumer
          continue;
        }
        for (const auto& m : *batch) {
          {
            std::lock_guard g(mu);
            if (acks.count(m.payload) != 0) problems.push_back(m.payload + " delivered again after its ack");
          }
          // First deliveries of some messages are "lost" (never settled: they come back after
          // the visibility timeout) or handed back with a nack.
          if (m.delivery_attempt == 1 && m.seq % 11 == 0) {
            ++dropped;
            continue;
          }
          if (m.delivery_attempt == 1 && m.seq % 7 == 0) {
            auto s = q.nack(m.receipt, wall_ms());
            if (s) {
              ++nacked;
              continue;
            }
          }
          auto s = q.ack(m.receipt);
          std::lock_guard g(mu);
          if (!s) {
            problems.push_back(m.payload + " ack: " + s.error().to_string());
            continue;
          }
          ++acks[m.payload];
          ++acked;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(problems.empty()) << problems.size() << " problems; first: " << problems.front();
  EXPECT_GT(dropped.load(), 0);
  EXPECT_GT(nacked.load(), 0);
  ASSERT_EQ(acks.size(), static_cast<size_t>(kTotal)) << "some messages were never acked";
  for (const auto& [payload, n] : acks) EXPECT_EQ(n, 1) << payload << " acked " << n << " times";
  auto len = coord::QueueManager(*clients[0], "it-jobs", cfg).length();
  ASSERT_TRUE(len.has_value()) << len.error().to_string();
  EXPECT_EQ(*len, 0u);
  auto dlq = coord::QueueManager(*clients[0], "it-jobs.dlq", cfg).length();
  ASSERT_TRUE(dlq.has_value()) << dlq.error().to_string();
  EXPECT_EQ(*dlq, 0u);
}

TEST_F(CoordClusterTest, BarrierReleasesAllPartiesTogetherExactlyOncePerRound) {
  constexpr uint32_t kParties = 6;
  constexpr int kRounds = 3;
  auto clients = make_clients(kParties);
  struct Pass {
    uint64_t generation = 0;
    bool did_release = false;
    uint64_t entering_us = 0;  // before enter() was sent
    uint64_t released_us = 0;  // after the release was observed
  };
  std::mutex mu;
  std::vector<std::vector<Pass>> passes(kRounds);
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kParties; ++t) {
    threads.emplace_back([&, t] {
      coord::BarrierManager b(*clients[t], "it/stage", kParties);
      const std::string party = fmt::format("party-{}", t);
      auto record_error = [&](const std::string& what, const Error& e) {
        std::lock_guard g(mu);
        errors.push_back(party + " " + what + ": " + e.to_string());
      };
      for (int round = 0; round < kRounds; ++round) {
        Pass pass;
        pass.entering_us = steady_us();
        // enter() refuses (Unavailable) while the previous round's parties are still leaving.
        Result<coord::BarrierTicket> ticket = make_error(ErrorCode::kUnavailable, "not entered yet");
        const bool has_entered = wait_until(
            [&] {
              ticket = b.enter(party);
              return ticket.has_value() || ticket.error().code() != ErrorCode::kUnavailable;
            },
            20000);
        if (!has_entered || !ticket) return record_error("enter", ticket.error());
        if (auto s = b.wait(*ticket, steady_ms() + 20000, real_waiter(t + 1)); !s) return record_error("wait", s.error());
        pass.released_us = steady_us();
        pass.generation = ticket->generation;
        pass.did_release = ticket->did_release;
        {
          std::lock_guard g(mu);
          passes[round].push_back(pass);
        }
        if (auto s = b.leave(party); !s) return record_error("leave", s.error());
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  for (int round = 0; round < kRounds; ++round) {
    const auto& ps = passes[round];
    ASSERT_EQ(ps.size(), kParties) << "round " << round;
    int releasers = 0;
    uint64_t last_entering = 0;
    uint64_t first_released = UINT64_MAX;
    for (const auto& p : ps) {
      EXPECT_EQ(p.generation, ps[0].generation) << "round " << round << " mixed generations";
      releasers += p.did_release ? 1 : 0;
      last_entering = std::max(last_entering, p.entering_us);
      first_released = std::min(first_released, p.released_us);
    }
    EXPECT_EQ(releasers, 1) << "round " << round << ": exactly one enter() releases the barrier";
    EXPECT_LE(last_entering, first_released) << "round " << round << " released before every party arrived";
    if (round > 0) {
      EXPECT_EQ(ps[0].generation, passes[round - 1][0].generation + 1);
    }
  }
}

// RW lock on a real cluster: a writer holds; a reader, a writer and a reader arrive in that
// order. The first reader gets in when the writer leaves, but the second reader, which arrived
// behind a waiting writer, does not jump it: the grants come in arrival order.
TEST_F(CoordClusterTest, RWLockGrantsInArrivalOrderAndNoReaderJumpsAWaitingWriter) {
  auto clients = make_clients(4);
  const std::string name = "it/rw-fifo";
  coord::DistributedRWLock first(*clients[0], name);
  auto held = first.try_acquire("w0", coord::RWMode::kWrite, 10000);
  ASSERT_TRUE(held.has_value() && held->has_value()) << (held ? "not granted" : held.error().to_string());
  auto state = [&] {
    auto st = coord::DistributedRWLock(*clients[0], name).state();
    EXPECT_TRUE(st.has_value()) << st.error().to_string();
    return st ? *st : coord::RWLockState{};
  };
  auto queued = [&] {
    auto st = state();
    return st.writer.size() + st.readers.size() + st.waiting_writers.size() + st.waiting_readers.size();
  };
  struct Arrival {
    std::string holder;
    coord::RWMode mode;
  };
  const std::vector<Arrival> arrivals = {
      {"r1", coord::RWMode::kRead}, {"w2", coord::RWMode::kWrite}, {"r3", coord::RWMode::kRead}};
  std::mutex mu;
  std::vector<std::string> granted;        // in grant order
  std::set<std::string> may_release;       // holders the test lets go
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < arrivals.size(); ++i) {
    threads.emplace_back([&, i] {
      const Arrival& a = arrivals[i];
      coord::DistributedRWLock rw(*clients[i + 1], name);
      auto h = rw.try_acquire_until(a.holder, a.mode, 10000, steady_ms() + 30000, real_waiter(i + 1));
      if (!h) {
        std::lock_guard g(mu);
        errors.push_back(a.holder + " acquire: " + h.error().to_string());
        return;
      }
      {
        std::lock_guard g(mu);
        granted.push_back(a.holder);
      }
      // Hold until the test lets this holder go (bounded: a stuck test fails, it does not hang).
      const bool is_let_go = wait_until(
          [&] {
            std::lock_guard g(mu);
            return may_release.contains(a.holder);
          },
          30000);
      auto s = rw.release(*h);
      std::lock_guard g(mu);
      if (!is_let_go) errors.push_back(a.holder + " was never let go");
      if (!s) errors.push_back(a.holder + " release: " + s.error().to_string());
    });
    // The next one arrives only once this one is queued, so arrival order is known.
    ASSERT_TRUE(wait_until([&] { return queued() == i + 2; }, 10000));
  }
  auto granted_now = [&] {
    std::lock_guard g(mu);
    return granted;
  };
  using Names = std::vector<std::string>;
  auto names = [](const std::vector<coord::LeasedHolder>& hs) {
    Names out;
    for (const auto& h : hs) out.push_back(h.id);
    return out;
  };
  // Writer w0 holds; r1 waits for it; w2 waits behind r1; r3 waits behind w2.
  {
    auto st = state();
    EXPECT_EQ(names(st.writer), Names{"w0"});
    EXPECT_EQ(names(st.waiting_writers), Names{"w2"});
    EXPECT_EQ(names(st.waiting_readers), (Names{"r1", "r3"}));
  }
  EXPECT_TRUE(granted_now().empty());

  ASSERT_TRUE(first.release(**held).has_value());
  ASSERT_TRUE(wait_until([&] { return granted_now().size() == 1; }, 10000));
  EXPECT_EQ(granted_now(), Names{"r1"});
  {
    // r3 is a reader too, but a writer is ahead of it: it still waits.
    auto st = state();
    EXPECT_EQ(names(st.readers), Names{"r1"});
    EXPECT_EQ(names(st.waiting_writers), Names{"w2"});
    EXPECT_EQ(names(st.waiting_readers), Names{"r3"});
  }
  EXPECT_EQ(granted_now().size(), 1u) << "a reader jumped the waiting writer";

  {
    std::lock_guard g(mu);
    may_release.insert("r1");
  }
  ASSERT_TRUE(wait_until([&] { return granted_now().size() == 2; }, 10000));
  EXPECT_EQ(granted_now(), (Names{"r1", "w2"}));
  EXPECT_EQ(names(state().waiting_readers), Names{"r3"});

  {
    std::lock_guard g(mu);
    may_release.insert("w2");
    may_release.insert("r3");
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(granted_now(), (Names{"r1", "w2", "r3"}));
  EXPECT_EQ(queued(), 0u) << "every key is gone after the last release";
}

TEST_F(CoordClusterTest, SemaphoreNeverExceedsItsPermits) {
  constexpr uint64_t kPermits = 3;
  constexpr size_t kThreads = 10;
  constexpr int kRounds = 4;
  auto clients = make_clients(kThreads);
  std::atomic<int> holding{0};
  std::atomic<int> max_holding{0};
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      coord::DistributedSemaphore sem(*clients[t], "it/pool", kPermits);
      const std::string holder = fmt::format("job-{}", t);
      for (int i = 0; i < kRounds; ++i) {
        auto p = sem.try_acquire_until(holder, 1, 10000, steady_ms() + 30000, real_waiter(t + 1));
        if (!p) {
          std::lock_guard g(mu);
          errors.push_back(holder + " acquire: " + p.error().to_string());
          return;
        }
        const int now = holding.fetch_add(1) + 1;
        int prev = max_holding.load();
        while (now > prev && !max_holding.compare_exchange_weak(prev, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        holding.fetch_sub(1);
        if (auto s = sem.release(*p); !s) {
          std::lock_guard g(mu);
          errors.push_back(holder + " release: " + s.error().to_string());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_LE(max_holding.load(), static_cast<int>(kPermits));
  EXPECT_GE(max_holding.load(), 1);
  auto free = coord::DistributedSemaphore(*clients[0], "it/pool", kPermits).available();
  ASSERT_TRUE(free.has_value()) << free.error().to_string();
  EXPECT_EQ(*free, kPermits);
}

TEST_F(CoordClusterTest, ExpiredLockOfACrashedHolderIsTakenOver) {
  // The leader expires leases on its ~500 ms tick, so a 1 s TTL (the minimum) lapses within
  // about 1.5 s.
  constexpr uint64_t kTtlMs = limits::kMinLeaseTtlMs;
  const uint64_t started_ms = steady_ms();
  coord::LockHandle crashed;
  {
    auto a = make_client();
    ASSERT_NE(a, nullptr);
    auto h = coord::DistributedLock(*a, "it/takeover").try_acquire("crashy", kTtlMs);
    ASSERT_TRUE(h.has_value()) << h.error().to_string();
    ASSERT_TRUE(h->has_value());
    crashed = **h;
  }  // the holder's client is gone: it never renews or releases

  auto b = make_client();
  ASSERT_NE(b, nullptr);
  coord::DistributedLock lock(*b, "it/takeover");
  auto early = lock.try_acquire("rescuer", 10000);
  ASSERT_TRUE(early.has_value()) << early.error().to_string();
  if (steady_ms() - started_ms < kTtlMs) {
    EXPECT_FALSE(early->has_value()) << "taken over before the TTL could have lapsed";
  }
  if (early->has_value()) {
    ASSERT_TRUE(lock.release(**early).has_value());
  }

  auto h = lock.try_acquire_until("rescuer", 10000, steady_ms() + 10000, real_waiter(7));
  ASSERT_TRUE(h.has_value()) << h.error().to_string();
  EXPECT_GE(steady_ms() - started_ms, kTtlMs) << "the lease cannot lapse before its TTL";
  EXPECT_GT(h->fencing_token, crashed.fencing_token);

  // The crashed holder, back from the dead, is told it lost the lock.
  auto a = make_client();
  ASSERT_NE(a, nullptr);
  coord::DistributedLock stale(*a, "it/takeover");
  auto renewed = stale.renew(crashed);
  ASSERT_FALSE(renewed.has_value());
  EXPECT_EQ(renewed.error().code(), ErrorCode::kNotFound);
  auto released = stale.release(crashed);
  ASSERT_FALSE(released.has_value());
  EXPECT_EQ(released.error().code(), ErrorCode::kNotFound);
  auto holder = lock.holder();
  ASSERT_TRUE(holder.has_value() && holder->has_value());
  EXPECT_EQ((*holder)->holder, "rescuer");
  EXPECT_TRUE(lock.release(*h).has_value());
}

TEST_F(CoordClusterTest, CliCountsAndLocksWithJsonAndExitCodes) {
  const std::string key = dir_->path() + "/operator.key", token = dir_->path() + "/operator.token";
  ASSERT_NO_FATAL_FAILURE(write_operator_credentials(key, token));
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{bin_path("aspen-cli"), "--ticket", ticket_, "--identity", key,
                                  "--token-file", token, "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_->path() + "/cli.out");
  };
  auto r = cli({"counter", "incr", "cli/runs"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"value\": 1"), std::string::npos) << r.out;
  r = cli({"counter", "incr", "cli/runs"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"value\": 2"), std::string::npos) << r.out;

  r = cli({"lock", "acquire", "cli/deploy", "--holder", "ops-1", "--ttl-s", "30"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"acquired\": true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"fencing_token\": "), std::string::npos) << r.out;
  auto held = coord::DistributedLock(*make_client(), "cli/deploy").holder();
  ASSERT_TRUE(held.has_value() && held->has_value());
  EXPECT_EQ((*held)->holder, "ops-1");
  EXPECT_NE(r.out.find(fmt::format("\"fencing_token\": {}", (*held)->fencing_token)), std::string::npos) << r.out;

  r = cli({"lock", "acquire", "cli/deploy", "--holder", "ops-2"});
  EXPECT_EQ(r.exit_code, 1) << "held by another: the operation says no\n" << r.out;
  EXPECT_NE(r.out.find("\"acquired\": false"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"holder\": \"ops-1\""), std::string::npos) << r.out;

  r = cli({"lock", "release", "cli/deploy", "--holder", "ops-2"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("\"ok\": false"), std::string::npos) << r.out;

  r = cli({"lock", "release", "cli/deploy", "--holder", "ops-1"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"released\": true"), std::string::npos) << r.out;

  r = cli({"lock", "release", "cli/deploy", "--holder", "ops-1"});
  EXPECT_EQ(r.exit_code, 1) << "releasing a free lock fails\n" << r.out;
  EXPECT_NE(r.out.find("\"code\": \"NotFound\""), std::string::npos) << r.out;

  r = cli({"lock", "acquire", "cli/deploy", "--holder", "ops-1", "--ttl-s", "0"});
  EXPECT_EQ(r.exit_code, 2) << "a TTL under the minimum is a usage error\n" << r.out;
}

// Blocking calls through the real client wait on watches (kv::ChangeNotifier::watch_range):
// a pop is handed a message pushed by another client while it waits, and an observer is
// told of each leader change.
TEST_F(CoordClusterTest, APopAndAnElectionObserverAreWokenByOtherClientsChanges) {
  auto consumer = make_client();
  auto producer = make_client();
  ASSERT_NE(consumer, nullptr);
  ASSERT_NE(producer, nullptr);
  coord::Waiter wall_waiter = real_waiter(5);
  wall_waiter.now_ms = wall_ms;  // visibility is in wall-clock time
  std::optional<Result<std::vector<coord::QueueMessage>>> popped;
  std::thread pop([&] {
    coord::QueueManager q(*consumer, "it/wake", coord::QueueConfig{});
    popped = q.dequeue_until(1, wall_ms() + 30000, wall_waiter);
  });
  coord::QueueManager q(*producer, "it/wake", coord::QueueConfig{});
  ASSERT_TRUE(q.enqueue("hello", "", wall_ms()).has_value());
  pop.join();
  ASSERT_TRUE(popped.has_value());
  ASSERT_TRUE(popped->has_value()) << (*popped).error().to_string();
  ASSERT_EQ((*popped)->size(), 1u);
  EXPECT_EQ((**popped)[0].payload, "hello");

  coord::LeaderElection a(*producer, "it/observe", "a", 10000);
  ASSERT_TRUE(a.campaign("addr-a", steady_ms()).value());
  coord::LeaderElection observer(*consumer, "it/observe", "observer", 10000);
  auto known = observer.leader();
  ASSERT_TRUE(known.has_value() && known->has_value());
  std::optional<Result<std::optional<coord::LeaderInfo>>> seen;
  std::thread watch([&] { seen = observer.wait_for_leader_change(*known, steady_ms() + 30000, real_waiter(6)); });
  ASSERT_TRUE(a.resign().has_value());
  watch.join();
  ASSERT_TRUE(seen.has_value());
  ASSERT_TRUE(seen->has_value()) << (*seen).error().to_string();
  EXPECT_FALSE((*seen)->has_value()) << "a resigned: no leader";
}

}  // namespace
}  // namespace aspen::testing
