// The FIFO waiter queue behind DistributedLock, DistributedRWLock and DistributedSemaphore
// (coord/waiter_queue.h): the pure turn rules, a model of the wake-up protocol checked over
// random histories (no waiter is left asleep when it may hold, and one change wakes at most
// one waiter that then has nothing to do), and the real primitives on a store that reports
// deletions and changes the way the remote client does, counting who is woken.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "coord/rwlock.h"
#include "coord/semaphore.h"
#include "coord_test_util.h"
#include "kv/commands.h"
#include "kv/deterministic_store.h"

namespace aspen::coord {
namespace {

using kv::DeterministicKeyValueStore;
using testing::kFarDeadline;

// --- the pure turn rules ---

TEST(CoordWaiterQueue, LockTurnWaitsForTheOneJustAhead) {
  EXPECT_TRUE(lock_turn(0).is_held);
  Turn t = lock_turn(3);
  EXPECT_FALSE(t.is_held);
  EXPECT_EQ(t.wait, Turn::Wait::kDeletion);
  EXPECT_EQ(t.watch, 2u);
  EXPECT_FALSE(t.is_only_obstacle);
  EXPECT_TRUE(lock_turn(1).is_only_obstacle);
}

TEST(CoordWaiterQueue, ReadersShareAndWaitBehindAnEarlierWriter) {
  // r r W r w r: the first two readers hold; the writer waits for the reader just ahead;
  // the readers behind it wait for the last writer ahead of them.
  const std::vector<bool> w{false, false, true, false, true, false};
  EXPECT_TRUE(rwlock_turn(w, 0).is_held);
  EXPECT_TRUE(rwlock_turn(w, 1).is_held);
  Turn writer = rwlock_turn(w, 2);
  EXPECT_FALSE(writer.is_held);
  EXPECT_EQ(writer.watch, 1u);
  Turn reader = rwlock_turn(w, 3);
  EXPECT_FALSE(reader.is_held) << "a reader behind a waiting writer does not jump it";
  EXPECT_EQ(reader.watch, 2u);
  EXPECT_TRUE(reader.is_only_obstacle);
  Turn late = rwlock_turn(w, 5);
  EXPECT_EQ(late.watch, 4u);
  EXPECT_FALSE(late.is_only_obstacle) << "two writers are ahead of it";
}

TEST(CoordWaiterQueue, SemaphoreHoldersAreAPrefixThatFits) {
  // 3 permits; counts 2 2 1: the second does not fit, and the third, which would, waits behind
  // it (a large request is not starved by small ones).
  const std::vector<uint64_t> c{2, 2, 1};
  EXPECT_TRUE(semaphore_turn(c, 3, 0).is_held);
  EXPECT_EQ(semaphore_turn(c, 3, 1).wait, Turn::Wait::kAnyChangeAhead);
  Turn third = semaphore_turn(c, 3, 2);
  EXPECT_FALSE(third.is_held);
  EXPECT_EQ(third.wait, Turn::Wait::kSignal);
  EXPECT_EQ(third.watch, 1u);
  EXPECT_TRUE(semaphore_turn({1, 1, 1}, 3, 2).is_held);
}

RC_GTEST_PROP(CoordWaiterQueueProperty, SemaphoreNeverGrantsMoreThanItsPermits, ()) {
  const uint64_t permits = *rc::gen::inRange<uint64_t>(1, 8);
  const auto counts = *rc::gen::container<std::vector<uint64_t>>(rc::gen::inRange<uint64_t>(1, permits + 1));
  uint64_t held = 0;
  bool was_waiting = false;
  for (size_t i = 0; i < counts.size(); ++i) {
    Turn t = semaphore_turn(counts, permits, i);
    RC_ASSERT(!(t.is_held && was_waiting));  // holders are a prefix: nobody overtakes
    if (t.is_held) {
      held += counts[i];
    } else {
      RC_ASSERT(t.wait == (was_waiting ? Turn::Wait::kSignal : Turn::Wait::kAnyChangeAhead));
      if (t.wait == Turn::Wait::kSignal) RC_ASSERT(t.watch == i - 1);
      was_waiting = true;
    }
  }
  RC_ASSERT(held <= permits);
}

// --- a model of the wake-up protocol ---
//
// Waiters act on what they read; a waiter asleep is woken only by the event its turn names.
// Events are delivered one at a time, in order, to everyone asleep on them; a woken waiter
// reads again at once (as acquire_until does). After every step, each waiter that may hold
// must know it (nobody is left asleep: no missed wake-up), and a step wakes at most one
// waiter that then finds nothing changed for it (no herd).
enum class Kind { kLock, kRWLock, kSemaphore };

struct Model {
  struct Entry {
    int id = 0;
    uint64_t count = 1;
    bool is_writer = true;
  };
  struct Asleep {
    Turn::Wait wait = Turn::Wait::kNone;
    int target = -1;
    friend bool operator==(const Asleep&, const Asleep&) = default;
  };
  struct Event {
    enum Type { kKeyDeleted, kSignalDeleted, kArrived } type;
    int id;
  };

  Kind kind;
  uint64_t permits;
  std::vector<Entry> queue;
  std::map<int, std::optional<Asleep>> asleep;  // nullopt: holds (and knows it)
  std::set<int> signals;                        // signal keys present
  std::deque<Event> events;
  int next_id = 0;
  int useless_wakeups = 0;

  size_t index_of(int id) const {
    for (size_t i = 0; i < queue.size(); ++i) {
      if (queue[i].id == id) return i;
    }
    RC_FAIL("not queued");
    return 0;
  }
  Turn turn(size_t i) const {
    if (kind == Kind::kLock) return lock_turn(i);
    if (kind == Kind::kRWLock) {
      std::vector<bool> w;
      for (const auto& e : queue) w.push_back(e.is_writer);
      return rwlock_turn(w, i);
    }
    std::vector<uint64_t> c;
    for (const auto& e : queue) c.push_back(e.count);
    return semaphore_turn(c, permits, i);
  }
  // A read: hold, or fall asleep on what the turn names.
  void read(int id) {
    const size_t i = index_of(id);
    Turn t = turn(i);
    if (t.is_held) {
      asleep[id] = std::nullopt;
      if (kind == Kind::kSemaphore && i + 1 < queue.size() && signals.erase(id) > 0) {
        events.push_back({Event::kSignalDeleted, id});
      }
      return;
    }
    Asleep a{t.wait, t.wait == Turn::Wait::kAnyChangeAhead ? -1 : queue[t.watch].id};
    // Waiting on a signal that is already gone would sleep forever.
    if (a.wait == Turn::Wait::kSignal) RC_ASSERT(signals.contains(a.target));
    asleep[id] = a;
  }
  void deliver() {
    while (!events.empty()) {
      Event e = events.front();
      events.pop_front();
      std::vector<int> woken;
      for (const auto& [id, a] : asleep) {
        if (!a) continue;
        const bool is_key_gone = e.type == Event::kKeyDeleted;
        if ((a->wait == Turn::Wait::kDeletion && is_key_gone && a->target == e.id) ||
            (a->wait == Turn::Wait::kSignal && e.type != Event::kArrived && a->target == e.id) ||
            (a->wait == Turn::Wait::kAnyChangeAhead && e.type != Event::kSignalDeleted)) {
          woken.push_back(id);
        }
      }
      for (int id : woken) {
        const auto before = asleep[id];
        read(id);
        if (asleep[id] == before) ++useless_wakeups;
      }
    }
  }
  void remove(int id) {
    queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(index_of(id)));
    asleep.erase(id);
    signals.erase(id);  // in the same write as the key
    events.push_back({Event::kKeyDeleted, id});
    deliver();
  }
  void arrive(uint64_t count, bool is_writer) {
    const int id = next_id++;
    queue.push_back({id, count, is_writer});
    if (kind == Kind::kSemaphore) signals.insert(id);
    events.push_back({Event::kArrived, id});
    deliver();
    read(id);
    deliver();
  }
  void check() const {
    uint64_t held = 0;
    int writers = 0;
    for (size_t i = 0; i < queue.size(); ++i) {
      const bool may_hold = turn(i).is_held;
      const bool knows = !asleep.at(queue[i].id).has_value();
      RC_ASSERT(may_hold == knows);
      if (knows) {
        held += queue[i].count;
        writers += queue[i].is_writer ? 1 : 0;
      }
    }
    if (kind == Kind::kSemaphore) RC_ASSERT(held <= permits);
    if (kind != Kind::kSemaphore && writers > 0) RC_ASSERT(held == 1u);
  }
};

void run_model(Kind kind) {
  Model m{kind, *rc::gen::inRange<uint64_t>(1, 5), {}, {}, {}, {}, 0, 0};
  const int steps = *rc::gen::inRange(1, 60);
  for (int s = 0; s < steps; ++s) {
    std::vector<int> holders, sleepers;
    for (const auto& [id, a] : m.asleep) (a ? sleepers : holders).push_back(id);
    const int op = *rc::gen::inRange(0, 3);
    const int before = m.useless_wakeups;
    if (op == 0 || m.queue.empty()) {
      if (m.queue.size() >= 12) continue;
      const uint64_t count = kind == Kind::kSemaphore ? *rc::gen::inRange<uint64_t>(1, m.permits + 1) : 1;
      m.arrive(count, *rc::gen::arbitrary<bool>());
    } else if (op == 1 && !holders.empty()) {
      m.remove(*rc::gen::elementOf(holders));  // a release, or a holder's lease expiring
    } else if (op == 2 && !sleepers.empty()) {
      m.remove(*rc::gen::elementOf(sleepers));  // a waiter times out, or its lease expires
    }
    m.check();
    RC_ASSERT(m.useless_wakeups - before <= 1);
  }
}

RC_GTEST_PROP(CoordWaiterQueueProperty, LockWakeUpsMissNobodyAndWakeNoHerd, ()) { run_model(Kind::kLock); }
RC_GTEST_PROP(CoordWaiterQueueProperty, RWLockWakeUpsMissNobodyAndWakeNoHerd, ()) { run_model(Kind::kRWLock); }
RC_GTEST_PROP(CoordWaiterQueueProperty, SemaphoreWakeUpsMissNobodyAndWakeNoHerd, ()) {
  run_model(Kind::kSemaphore);
}

// --- the real primitives on a store that reports deletions and changes ---

// Blocks as the remote client's watches do, and counts each wake-up by the key it was for.
class WatchingStore final : public kv::KeyValueStore, public kv::ChangeNotifier {
 public:
  Result<kvpb::CommandResult> execute(kvpb::Command cmd) override {
    auto r = inner_.execute(std::move(cmd));
    changed();
    return r;
  }
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& request) override { return inner_.range(request); }
  Result<std::vector<kvpb::Lease>> list_leases() override { return inner_.list_leases(); }
  void advance_time_ms(uint64_t ms) {
    inner_.advance_time_ms(ms);
    changed();
  }

  Result<uint64_t> wait_for_delete(std::string_view key, uint64_t after_revision, uint64_t timeout_ms) override {
    const std::string k(key);
    uint64_t seen_at = 0;
    auto is_deleted = [&] {
      auto page = inner_.range(kv::key_range(k));
      if (!page) return false;
      seen_at = page->revision();
      return page->kvs_size() == 0 || page->kvs(0).create_revision() > after_revision;
    };
    std::unique_lock lock(mu_);
    const bool gone = sleep(lock, timeout_ms, is_deleted);
    if (!gone) return uint64_t{0};
    ++wakeups_[k];
    return seen_at;
  }
  // The queue as of that revision, as the remote client's stale read at it gives.
  Result<kvpb::RangeResult> range_at(const kvpb::RangeRequest& request, uint64_t revision) override {
    kvpb::RangeRequest at = request;
    at.set_revision(revision);
    return inner_.range(at);
  }

  Result<std::unique_ptr<kv::ChangeWaiter>> watch_range(std::string_view start, std::string_view end) override {
    return std::unique_ptr<kv::ChangeWaiter>(std::make_unique<Changes>(*this, std::string(start), std::string(end)));
  }

  // Waits (bounded) until exactly `n` waiters are asleep and none of them has anything to
  // wake for: the store is quiet.
  bool wait_for_sleepers(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] {
      if (sleepers_.size() != n) return false;
      for (const auto* is_done : sleepers_) {
        if ((*is_done)()) return false;
      }
      return true;
    });
  }
  std::map<std::string, int> take_wakeups() {
    std::lock_guard lock(mu_);
    return std::exchange(wakeups_, {});
  }
  static int total(const std::map<std::string, int>& w) {
    int n = 0;
    for (const auto& [k, v] : w) n += v;
    return n;
  }

 private:
  class Changes final : public kv::ChangeWaiter {
   public:
    Changes(WatchingStore& s, std::string start, std::string end)
        : s_(s), start_(std::move(start)), end_(std::move(end)), seen_(snapshot()) {}
    Result<bool> wait(uint64_t timeout_ms) override {
      std::unique_lock lock(s_.mu_);
      std::vector<std::pair<std::string, int64_t>> now;
      const bool changed = s_.sleep(lock, timeout_ms, [&] {
        now = snapshot();
        return now != seen_;
      });
      if (changed) {
        seen_ = std::move(now);
        ++s_.wakeups_["range " + start_];
      }
      return changed;
    }

   private:
    std::vector<std::pair<std::string, int64_t>> snapshot() {
      kvpb::RangeRequest r;
      r.set_start(start_);
      r.set_end(end_);
      r.set_limit(10000);
      std::vector<std::pair<std::string, int64_t>> out;
      auto page = s_.inner_.range(r);
      if (page) {
        for (const auto& kv : page->kvs()) out.emplace_back(kv.key(), kv.mod_revision());
      }
      return out;
    }
    WatchingStore& s_;
    std::string start_;
    std::string end_;
    std::vector<std::pair<std::string, int64_t>> seen_;
  };

  void changed() {
    { std::lock_guard lock(mu_); }  // a sleeper between its check and its wait sees this
    cv_.notify_all();
  }
  template <typename P>
  bool sleep(std::unique_lock<std::mutex>& lock, uint64_t timeout_ms, P&& is_done) {
    if (is_done()) return true;
    const std::function<bool()> check = [&] { return is_done(); };
    sleepers_.insert(&check);
    cv_.notify_all();
    const bool done = cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), is_done);
    sleepers_.erase(&check);
    cv_.notify_all();
    return done;
  }

  DeterministicKeyValueStore inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<const std::function<bool()>*> sleepers_;  // [mu_] each sleeper's wake condition
  std::map<std::string, int> wakeups_;  // [mu_]
};

constexpr uint64_t kTtlMs = 60000;

// A thread that takes a primitive, reports it, and releases it when told.
struct Taker {
  std::thread thread;
  std::atomic<bool> has_it{false};
  std::atomic<bool> should_release{false};
};

struct Log {
  std::mutex mu;
  std::vector<std::string> order;
  void add(const std::string& s) {
    std::lock_guard g(mu);
    order.push_back(s);
  }
  std::vector<std::string> get() {
    std::lock_guard g(mu);
    return order;
  }
};

void wait_for_flag(const std::atomic<bool>& flag) {
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60); !flag.load();) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "never happened";
    std::this_thread::yield();
  }
}

TEST(CoordWaiterQueue, ASemaphoreReleaseWakesOnlyTheFirstWaiterAndTheLineStaysInOrder) {
  WatchingStore s;
  constexpr uint64_t kPermits = 2;
  DistributedSemaphore sem(s, "pool", kPermits);
  auto h0 = sem.try_acquire("h0", 1, kTtlMs);
  auto h1 = sem.try_acquire("h1", 1, kTtlMs);
  ASSERT_TRUE(h0.has_value() && h0->has_value() && h1.has_value() && h1->has_value());
  Log log;
  std::atomic<int> holding{2};
  std::atomic<int> max_holding{2};
  std::vector<std::unique_ptr<Taker>> takers;
  for (int i = 0; i < 4; ++i) {
    auto t = std::make_unique<Taker>();
    Taker* me = t.get();
    const std::string id = "w" + std::to_string(i);
    me->thread = std::thread([&, me, id] {
      testing::YieldingWaiter w;
      DistributedSemaphore mine(s, "pool", kPermits);
      auto p = mine.try_acquire_until(id, 1, kTtlMs, kFarDeadline, w.waiter());
      ASSERT_TRUE(p.has_value()) << p.error().to_string();
      const int now = holding.fetch_add(1) + 1;
      int prev = max_holding.load();
      while (now > prev && !max_holding.compare_exchange_weak(prev, now)) {
      }
      log.add(id);
      me->has_it = true;
      wait_for_flag(me->should_release);
      holding.fetch_sub(1);
      ASSERT_TRUE(mine.release(*p).has_value());
    });
    takers.push_back(std::move(t));
    ASSERT_TRUE(s.wait_for_sleepers(static_cast<size_t>(i) + 1)) << "waiter " << i << " never went to sleep";
  }
  auto st = sem.state();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->holders.size(), 2u);
  EXPECT_EQ(st->waiting.size(), 4u);
  (void)s.take_wakeups();

  holding.fetch_sub(1);
  ASSERT_TRUE(sem.release(**h1).has_value());
  wait_for_flag(takers[0]->has_it);
  ASSERT_TRUE(s.wait_for_sleepers(3));
  auto woken = s.take_wakeups();
  // w0 (watching the queue) is let in and signals w1, which now watches the queue; w2 and
  // w3 sleep on through it all.
  EXPECT_EQ(WatchingStore::total(woken), 2) << ::testing::PrintToString(woken);
  EXPECT_EQ(log.get(), std::vector<std::string>{"w0"});

  holding.fetch_sub(1);
  ASSERT_TRUE(sem.release(**h0).has_value());
  wait_for_flag(takers[1]->has_it);
  ASSERT_TRUE(s.wait_for_sleepers(2));
  EXPECT_EQ(WatchingStore::total(s.take_wakeups()), 2);
  for (int i = 0; i < 4; ++i) {
    takers[static_cast<size_t>(i)]->should_release = true;
    if (i + 2 < 4) wait_for_flag(takers[static_cast<size_t>(i) + 2]->has_it);
  }
  for (auto& t : takers) t->thread.join();
  EXPECT_EQ(log.get(), (std::vector<std::string>{"w0", "w1", "w2", "w3"}));
  EXPECT_LE(max_holding.load(), static_cast<int>(kPermits));
  EXPECT_EQ(sem.available().value(), kPermits);
}

TEST(CoordWaiterQueue, AReaderArrivingAfterAWaitingWriterDoesNotJumpItAndReadersShare) {
  WatchingStore s;
  DistributedRWLock rw(s, "catalog");
  auto r0 = rw.try_acquire("r0", RWMode::kRead, kTtlMs);
  auto r1 = rw.try_acquire("r1", RWMode::kRead, kTtlMs);
  ASSERT_TRUE(r0.has_value() && r0->has_value() && r1.has_value() && r1->has_value()) << "readers share";
  Log log;
  std::vector<std::unique_ptr<Taker>> takers;
  const std::vector<std::pair<std::string, RWMode>> arrivals{{"w", RWMode::kWrite}, {"r2", RWMode::kRead},
                                                             {"r3", RWMode::kRead}};
  for (size_t i = 0; i < arrivals.size(); ++i) {
    auto t = std::make_unique<Taker>();
    Taker* me = t.get();
    const auto [id, mode] = arrivals[i];
    me->thread = std::thread([&, me, id, mode] {
      testing::YieldingWaiter w;
      DistributedRWLock mine(s, "catalog");
      auto h = mine.try_acquire_until(id, mode, kTtlMs, kFarDeadline, w.waiter());
      ASSERT_TRUE(h.has_value()) << h.error().to_string();
      log.add(id);
      me->has_it = true;
      wait_for_flag(me->should_release);
      ASSERT_TRUE(mine.release(*h).has_value());
    });
    takers.push_back(std::move(t));
    ASSERT_TRUE(s.wait_for_sleepers(i + 1));
  }
  auto st = rw.state();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->readers.size(), 2u);
  ASSERT_EQ(st->waiting_writers.size(), 1u);
  EXPECT_EQ(st->waiting_writers[0].id, "w");
  EXPECT_EQ(st->waiting_readers.size(), 2u) << "readers behind the waiting writer wait";
  EXPECT_FALSE(rw.try_acquire("r4", RWMode::kRead, kTtlMs)->has_value());
  (void)s.take_wakeups();

  // The writer waits for the reader just ahead of it: r0's release wakes nobody.
  ASSERT_TRUE(rw.release(**r0).has_value());
  ASSERT_TRUE(s.wait_for_sleepers(3));
  EXPECT_EQ(WatchingStore::total(s.take_wakeups()), 0);
  ASSERT_TRUE(rw.release(**r1).has_value());
  wait_for_flag(takers[0]->has_it);
  ASSERT_TRUE(s.wait_for_sleepers(2));
  EXPECT_EQ(WatchingStore::total(s.take_wakeups()), 1) << "only the writer";
  // The writer's release lets both readers in together.
  takers[0]->should_release = true;
  wait_for_flag(takers[1]->has_it);
  wait_for_flag(takers[2]->has_it);
  EXPECT_EQ(WatchingStore::total(s.take_wakeups()), 2);
  takers[1]->should_release = true;
  takers[2]->should_release = true;
  for (auto& t : takers) t->thread.join();
  EXPECT_EQ(log.get()[0], "w");
  EXPECT_TRUE(rw.state()->readers.empty());
}

TEST(CoordWaiterQueue, AHolderWhoseLeaseExpiresLetsTheNextOneIn) {
  WatchingStore s;
  DistributedSemaphore sem(s, "pool", 1);
  DistributedRWLock rw(s, "cat");
  auto crashed_permit = sem.try_acquire("crashy", 1, 2000);
  auto crashed_writer = rw.try_acquire("crashy", RWMode::kWrite, 2000);
  ASSERT_TRUE(crashed_permit.has_value() && crashed_permit->has_value());
  ASSERT_TRUE(crashed_writer.has_value() && crashed_writer->has_value());
  std::atomic<bool> sem_ok{false}, rw_ok{false};
  std::thread a([&] {
    testing::YieldingWaiter w;
    auto p = DistributedSemaphore(s, "pool", 1).try_acquire_until("next", 1, kTtlMs, kFarDeadline, w.waiter());
    ASSERT_TRUE(p.has_value()) << p.error().to_string();
    sem_ok = true;
  });
  ASSERT_TRUE(s.wait_for_sleepers(1));
  std::thread b([&] {
    testing::YieldingWaiter w;
    auto h = DistributedRWLock(s, "cat").try_acquire_until("next", RWMode::kRead, kTtlMs, kFarDeadline, w.waiter());
    ASSERT_TRUE(h.has_value()) << h.error().to_string();
    rw_ok = true;
  });
  ASSERT_TRUE(s.wait_for_sleepers(2));
  EXPECT_FALSE(sem_ok.load());
  EXPECT_FALSE(rw_ok.load());
  s.advance_time_ms(2000);  // the holders' leases run out
  a.join();
  b.join();
  EXPECT_TRUE(sem_ok.load() && rw_ok.load());
  EXPECT_EQ(sem.release(**crashed_permit).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(rw.release(**crashed_writer).error().code(), ErrorCode::kNotFound);
}

TEST(CoordWaiterQueue, SemaphoreStressNeverExceedsPermitsWithWatches) {
  WatchingStore s;
  constexpr uint64_t kPermits = 3;
  std::atomic<uint64_t> in_use{0};
  std::atomic<uint64_t> max_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      DistributedSemaphore sem(s, "pool", kPermits);
      testing::YieldingWaiter w;
      const uint64_t count = 1 + static_cast<uint64_t>(t % 2);
      for (int i = 0; i < 10; ++i) {
        auto p = sem.try_acquire_until("t" + std::to_string(t), count, kTtlMs, kFarDeadline, w.waiter());
        ASSERT_TRUE(p.has_value()) << p.error().to_string();
        uint64_t now_in = in_use.fetch_add(count) + count;
        uint64_t prev = max_seen.load();
        while (now_in > prev && !max_seen.compare_exchange_weak(prev, now_in)) {
        }
        std::this_thread::yield();
        in_use.fetch_sub(count);
        ASSERT_TRUE(sem.release(*p).has_value());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(max_seen.load(), kPermits);
  EXPECT_EQ(DistributedSemaphore(s, "pool", kPermits).available().value(), kPermits);
}

TEST(CoordWaiterQueue, InASessionRWLockAndSemaphoreShareItsLease) {
  DeterministicKeyValueStore s;
  auto session = Session::open(s, kTtlMs);
  ASSERT_TRUE(session.has_value()) << session.error().to_string();
  DistributedRWLock rw(s, "cat", session->get());
  DistributedSemaphore sem(s, "pool", 2, session->get());
  auto h = rw.try_acquire("a", RWMode::kWrite, kTtlMs);
  auto p = sem.try_acquire("a", 1, kTtlMs);
  ASSERT_TRUE(h.has_value() && h->has_value() && p.has_value() && p->has_value());
  EXPECT_EQ((*h)->lease_id, (*session)->lease_id());
  EXPECT_EQ((*p)->lease_id, (*session)->lease_id());
  ASSERT_TRUE(rw.release(**h).has_value());
  ASSERT_TRUE(sem.release(**p).has_value());
  EXPECT_EQ(s.list_leases()->size(), 1u) << "releases keep the session's lease";
  session->reset();
  EXPECT_TRUE(s.list_leases()->empty());
}

}  // namespace
}  // namespace aspen::coord
