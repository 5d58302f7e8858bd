// Watches against a real 3-node cluster (docs/watch.md): every change once and in order,
// a multi-key write in one batch, resuming on another member after kill -9 with no gap or
// repeat, compaction ending a watch that needs what it dropped, a watcher that does not
// read paused without the node's memory growing, and a thousand watchers on one node. The
// log subscription (ALPN "aspen-logs"): whole entries in index order, replay, resuming after
// kill -9, compaction, and the two protocols kept apart. One-shot waits (what coordination
// waiters use): answered at the change with a range as of it, or empty at their timeout.
//
// One cluster serves the suite; each test uses its own prefix. Waiting is on conditions.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "core/limits.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  }
  return 0;
}

class WatchTest : public ::testing::Test {
 protected:
  static inline SharedSetUp shared_;  // set_up_suite runs from the first SetUp (node_process.h)
  static void set_up_suite() {
    dir_ = new TempDir();
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_->path(), "watch-cookie-1");
      nodes_[id]->start();
    }
    auto c = client_for(nodes_);
    ASSERT_NE(c, nullptr);
    ASSERT_NO_FATAL_FAILURE(form_cluster(*c, nodes_));
  }
  void SetUp() override {
    ASPEN_SHARED_SET_UP(shared_, set_up_suite);
  }
  static void TearDownTestSuite() {
    shared_ = {};
    for (auto& [id, n] : nodes_) n->kill9();
    nodes_.clear();
    delete dir_;
  }
  static std::unique_ptr<client::Client> client() { return client_for(nodes_, 20000, 5000); }
  static uint64_t node_of(const transport::PublicKey& key) {
    for (const auto& [id, n] : nodes_) {
      if (n->key_text() == key.to_string()) return id;
    }
    return 0;
  }

  static TempDir* dir_;
  static NodeMap nodes_;
};
TempDir* WatchTest::dir_ = nullptr;
NodeMap WatchTest::nodes_;

// Collects `n` events (or fewer if the watch fails), checking order and uniqueness on the way.
std::vector<std::pair<uint64_t, clientpb::WatchEvent>> collect(client::Watch& w, size_t n, uint32_t timeout_ms = 20000) {
  std::vector<std::pair<uint64_t, clientpb::WatchEvent>> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  uint64_t last = 0;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto b = w.next(1000);
    if (!b) {
      if (b.error().code() == ErrorCode::kTimeout) continue;
      ADD_FAILURE() << b.error().to_string();
      break;
    }
    if (b->is_progress()) continue;
    EXPECT_GT(b->revision, last) << "revisions must increase";
    last = b->revision;
    for (auto& ev : b->events) out.emplace_back(b->revision, std::move(ev));
  }
  return out;
}

TEST_F(WatchTest, AWatcherSeesEveryChangeOnceInOrderWithEachWriteWhole) {
  auto c = client();
  client::WatchOptions o;
  o.key = "w1/";
  o.is_prefix = true;
  o.has_prev_kv = true;
  auto w = c->watch(o);
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  std::vector<uint64_t> revisions;
  for (int i = 0; i < 50; ++i) {
    auto r = kv::put(*c, fmt::format("w1/k{}", i % 7), std::to_string(i));
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    revisions.push_back(r->revision());
  }
  ASSERT_TRUE(kv::put(*c, "elsewhere", "not watched").has_value());
  auto d = kv::del(*c, "w1/k3");
  ASSERT_TRUE(d.has_value());
  kvpb::Command multi;
  for (const char* k : {"w1/a", "w1/b", "w1/c"}) {
    auto* p = multi.mutable_set_multi()->add_puts();
    p->set_key(k);
    p->set_value("m");
  }
  auto m = c->execute(multi);
  ASSERT_TRUE(m.has_value());

  // The multi-key write arrives as one batch of three.
  std::vector<std::pair<uint64_t, clientpb::WatchEvent>> events;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  size_t multi_batch = 0;
  while (events.size() < 54 && std::chrono::steady_clock::now() < deadline) {
    auto b = (*w)->next(1000);
    if (!b) continue;
    if (b->revision == m->revision()) multi_batch = b->events.size();
    for (auto& ev : b->events) events.emplace_back(b->revision, std::move(ev));
  }
  ASSERT_EQ(events.size(), 54u);
  EXPECT_EQ(multi_batch, 3u);
  for (size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(events[i].first, revisions[i]);
    EXPECT_EQ(events[i].second.type(), clientpb::WatchEvent::PUT);
    EXPECT_EQ(events[i].second.kv().value(), std::to_string(i));
    if (i >= 7) {
      EXPECT_EQ(events[i].second.prev_kv().value(), std::to_string(i - 7)) << "previous value of the key";
    }
  }
  EXPECT_EQ(events[50].second.type(), clientpb::WatchEvent::DELETE);
  EXPECT_EQ(events[50].second.kv().key(), "w1/k3");
  EXPECT_EQ(events[50].first, d->revision());
  // A second watch from the first revision replays exactly the same events from the history.
  o.start_revision = revisions.front();
  auto replay = c->watch(o);
  ASSERT_TRUE(replay.has_value());
  auto again = collect(**replay, 54);
  ASSERT_EQ(again.size(), 54u);
  for (size_t i = 0; i < 54; ++i) {
    EXPECT_EQ(again[i].first, events[i].first);
    EXPECT_EQ(again[i].second.kv().key(), events[i].second.kv().key());
  }
  // Progress on request: the watch is told how far it is up to date.
  ASSERT_TRUE((*w)->request_progress().has_value());
  bool got_progress = false;
  for (int i = 0; i < 10 && !got_progress; ++i) {
    auto b = (*w)->next(1000);
    got_progress = b && b->is_progress() && b->revision >= m->revision();
  }
  EXPECT_TRUE(got_progress);
}

// A node's counter from its metrics page (0 when absent).
uint64_t metric_of(client::Client& c, uint64_t node, std::string_view name) {
  auto text = c.metrics_text(client::Target{node});
  if (!text) return 0;
  const auto pos = text->find(fmt::format("{}{{", name));
  if (pos == std::string::npos) return 0;
  return std::stoull(text->substr(text->find('}', pos) + 2));
}

// A caught-up watcher is sent an apply's changes before the store's commit makes them
// readable; a watcher that asks for previous values gets them from the store after it. Under
// concurrent writers (applies of many entries) and a write too large to copy, both see every
// acknowledged change once, in the same order.
TEST_F(WatchTest, ChangesSentBeforeTheStoreCommitsThemKeepTheOrderWithNoGapOrRepeat) {
  auto c = client();
  uint64_t early_before = 0;
  for (uint64_t id = 1; id <= 3; ++id) early_before += metric_of(*c, id, "aspen_watch_messages_sent_early_total");
  client::WatchOptions o;
  o.key = "w9/";
  o.is_prefix = true;
  auto plain = c->watch(o);
  ASSERT_TRUE(plain.has_value()) << plain.error().to_string();
  o.has_prev_kv = true;
  auto with_prev = c->watch(o);
  ASSERT_TRUE(with_prev.has_value()) << with_prev.error().to_string();

  constexpr int kWriters = 4;
  constexpr int kPuts = 40;
  std::mutex mu;
  std::set<std::pair<uint64_t, std::string>> acknowledged;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      auto wc = client();
      for (int i = 0; i < kPuts; ++i) {
        const std::string key = fmt::format("w9/t{}/k{}", t, i % 5);
        auto r = wc ? kv::put(*wc, key, std::to_string(i)) : make_error(ErrorCode::kUnavailable, "no client");
        if (!r) {
          failures.fetch_add(1);
          continue;
        }
        std::lock_guard lock(mu);
        acknowledged.emplace(r->revision(), key);
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_EQ(failures.load(), 0);
  // Two values that together pass what one apply copies (limits::kMaxWatchEarlyBytes).
  kvpb::Command big;
  const std::string value(limits::kMaxWatchEarlyBytes / 2 + 1, 'b');
  for (const char* k : {"w9/big1", "w9/big2"}) {
    auto* p = big.mutable_set_multi()->add_puts();
    p->set_key(k);
    p->set_value(value);
  }
  auto m = c->execute(big);
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  acknowledged.emplace(m->revision(), "w9/big1");
  acknowledged.emplace(m->revision(), "w9/big2");

  const size_t n = acknowledged.size();
  for (auto* w : {plain->get(), with_prev->get()}) {
    auto got = collect(*w, n, 60000);
    ASSERT_EQ(got.size(), n);
    std::vector<std::pair<uint64_t, std::string>> seen;
    for (const auto& [rev, ev] : got) seen.emplace_back(rev, ev.kv().key());
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end())) << "in revision order";
    EXPECT_EQ(std::set(seen.begin(), seen.end()), acknowledged) << "every acknowledged change, once";
    EXPECT_EQ(got.back().second.kv().value().size(), value.size());
  }
  uint64_t early_after = 0;
  for (uint64_t id = 1; id <= 3; ++id) early_after += metric_of(*c, id, "aspen_watch_messages_sent_early_total");
  EXPECT_GT(early_after, early_before) << "the caught-up watcher was sent changes before the store's commit";
}

TEST_F(WatchTest, AWatchResumesOnAnotherMemberAfterItsMemberIsKilledWithNoGapOrRepeat) {
  auto c = client();
  client::WatchOptions o;
  o.key = "w2/";
  o.is_prefix = true;
  auto w = c->watch(o);
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  auto serving = (*w)->serving_node();
  ASSERT_TRUE(serving.has_value());
  const uint64_t victim = node_of(*serving);
  ASSERT_NE(victim, 0u);
  const uint64_t first_revision = (*w)->last_revision() + 1;
  std::atomic<bool> stop{false};
  std::vector<uint64_t> acked;  // revisions of writes the cluster acknowledged
  std::thread writer([&] {
    auto wc = client();
    for (int i = 0; !stop && i < 400; ++i) {
      auto r = kv::put(*wc, fmt::format("w2/{}", i), std::to_string(i));
      if (r) acked.push_back(r->revision());
    }
  });
  // Some events, then the member serving the watch dies.
  auto before = collect(**w, 20);
  ASSERT_EQ(before.size(), 20u);
  nodes_[victim]->kill9();
  auto after = collect(**w, 120, 30000);
  stop = true;
  writer.join();
  EXPECT_GE((*w)->resumes(), 1u);
  auto now_serving = (*w)->serving_node();
  ASSERT_TRUE(now_serving.has_value());
  EXPECT_NE(node_of(*now_serving), victim);
  // Let the watcher see everything written, then compare with a fresh replay of the history
  // (from a surviving member): the same revisions, each once, in order.
  const uint64_t last_acked = acked.empty() ? 0 : acked.back();
  std::vector<std::pair<uint64_t, clientpb::WatchEvent>> seen = before;
  seen.insert(seen.end(), after.begin(), after.end());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((seen.empty() || seen.back().first < last_acked) && std::chrono::steady_clock::now() < deadline) {
    auto more = collect(**w, 1, 1000);
    seen.insert(seen.end(), more.begin(), more.end());
  }
  std::set<uint64_t> seen_revisions;
  for (size_t i = 0; i < seen.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(seen[i - 1].first, seen[i].first) << "in order, each once";
    }
    seen_revisions.insert(seen[i].first);
  }
  for (uint64_t r : acked) EXPECT_TRUE(seen_revisions.contains(r)) << "acknowledged write at " << r << " not seen";
  o.start_revision = first_revision;
  auto replay = c->watch(o);
  ASSERT_TRUE(replay.has_value());
  auto history = collect(**replay, seen.size());
  ASSERT_EQ(history.size(), seen.size());
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(history[i].first, seen[i].first);
    EXPECT_EQ(history[i].second.kv().key(), seen[i].second.kv().key());
  }
  nodes_[victim]->start();  // back for the other tests
  ASSERT_TRUE(wait_until([&] { return c->health(client::Target{victim}).has_value(); }, 20000));
}

TEST_F(WatchTest, CompactionEndsAWatchThatNeedsWhatItDroppedNamingTheOldestRevision) {
  auto c = client();
  auto r1 = kv::put(*c, "w3/a", "1");
  ASSERT_TRUE(r1.has_value());
  auto r2 = kv::put(*c, "w3/a", "2");
  ASSERT_TRUE(r2.has_value());
  kvpb::Command compact;
  compact.mutable_compact()->set_revision(r2->revision());
  ASSERT_TRUE(c->execute(compact).has_value());
  client::WatchOptions o;
  o.key = "w3/";
  o.is_prefix = true;
  o.start_revision = r1->revision();
  auto w = c->watch(o);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kCompacted);
  EXPECT_NE(w.error().message().find(std::to_string(r2->revision())), std::string::npos) << w.error().message();
  // From the compacted revision itself: allowed, and it starts with that change.
  o.start_revision = r2->revision();
  auto ok = c->watch(o);
  ASSERT_TRUE(ok.has_value()) << ok.error().to_string();
  auto first = collect(**ok, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].first, r2->revision());
}

TEST_F(WatchTest, AWatcherThatDoesNotReadIsPausedAndCatchesUpWhenItReads) {
  auto c = client();
  client::WatchOptions o;
  o.key = "w4/";
  o.is_prefix = true;
  o.node_id = 2;
  auto w = c->watch(o);
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  const pid_t pid = nodes_[2]->pid();
  const uint64_t rss_before = rss_kib(pid);
  // 48 MiB of changes while the watcher reads nothing: far past what the client buffers
  // (16 MiB per stream) and the node's bound for one watcher (1 MiB).
  const std::string value(256 << 10, 'v');
  auto writer = client();
  uint64_t last = 0;
  for (int i = 0; i < 192; ++i) {
    auto r = kv::put(*writer, fmt::format("w4/{}", i % 8), value);
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    last = r->revision();
  }
  auto metrics = c->metrics_text(client::Target{2});
  ASSERT_TRUE(metrics.has_value());
  const auto pos = metrics->find("aspen_watch_unacked_bytes{");
  ASSERT_NE(pos, std::string::npos);
  const uint64_t unacked = std::stoull(metrics->substr(metrics->find('}', pos) + 2));
  EXPECT_LE(unacked, 3u << 20) << "one watcher's unacknowledged bytes stay near its 1 MiB bound";
  const uint64_t rss_after = rss_kib(pid);
#if !defined(__SANITIZE_ADDRESS__)  // ASan keeps freed memory in quarantine: RSS says nothing there
  EXPECT_LT(rss_after, rss_before + 160 * 1024) << "node memory grew by " << (rss_after - rss_before) / 1024 << " MiB";
#else
  (void)rss_before;
  (void)rss_after;
#endif
  // Reading now, it gets every change, in order, from the history.
  auto all = collect(**w, 192, 60000);
  ASSERT_EQ(all.size(), 192u);
  EXPECT_EQ(all.back().first, last);
}

TEST_F(WatchTest, AThousandWatchersOnOneNodeAllSeeAChange) {
  constexpr int kClients = 20;
  constexpr int kPerClient = 50;  // a connection carries at most 100 streams
  const pid_t pid = nodes_[3]->pid();
  const uint64_t rss_before = rss_kib(pid);
  std::vector<std::unique_ptr<client::Client>> clients;
  std::vector<std::unique_ptr<client::Watch>> watches;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(client());
    for (int j = 0; j < kPerClient; ++j) {
      client::WatchOptions o;
      o.key = "w5/";
      o.is_prefix = true;
      o.node_id = 3;
      auto w = clients.back()->watch(o);
      ASSERT_TRUE(w.has_value()) << w.error().to_string();
      watches.push_back(std::move(*w));
    }
  }
  const uint64_t rss_idle = rss_kib(pid);
  RecordProperty("node_rss_kib_per_idle_watcher", std::to_string((rss_idle - std::min(rss_idle, rss_before)) / 1000));
  EXPECT_LT(rss_idle, rss_before + 1000 * 64) << "an idle watcher costs the node well under 64 KiB";
  auto r = kv::put(*clients[0], "w5/x", "hello");
  ASSERT_TRUE(r.has_value());
  for (auto& w : watches) {
    auto got = collect(*w, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, r->revision());
  }
}

TEST_F(WatchTest, BadWatchRequestsAreRefusedWithTheReason) {
  auto c = client();
  client::WatchOptions o;  // no key, no prefix
  auto none = c->watch(o);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), ErrorCode::kInvalidArgument);
  o.key = std::string(2000, 'k');
  auto big = c->watch(o);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), ErrorCode::kKeyTooLarge);
  o.key = "w6/";
  o.is_prefix = true;
  o.start_revision = 1ull << 60;  // the future: waits for it, nothing to send yet
  auto future = c->watch(o);
  ASSERT_TRUE(future.has_value()) << future.error().to_string();
  auto b = (*future)->next(300);
  EXPECT_FALSE(b.has_value());
}

// A one-shot wait (WatchCreateRequest.is_once, what a lock or semaphore waiter uses): one
// answer, at the deletion, carrying the queue as of that deletion's revision.
TEST_F(WatchTest, AOneShotWaitIsAnsweredAtTheDeletionWithTheRangeAsOfItsRevision) {
  auto c = client();
  auto waiter = client();
  for (const char* k : {"w7/a", "w7/b", "w7/c"}) ASSERT_TRUE(kv::put(*c, k, "v").has_value());
  auto last = kv::put(*c, "w8/other", "v");  // a revision before which w7/b still exists
  ASSERT_TRUE(last.has_value());
  const auto sum = [&](std::string_view name) {
    uint64_t total = 0;
    for (uint64_t id = 1; id <= 3; ++id) total += metric_of(*c, id, name);
    return total;
  };
  const uint64_t answers_before = sum("aspen_watch_once_answers_total");
  const uint64_t early_before = sum("aspen_watch_messages_sent_early_total");
  kvpb::RangeRequest queue;
  queue.set_start("w7/");
  queue.set_is_prefix(true);
  Result<kv::DeletionSeen> seen = kv::DeletionSeen{};
  std::thread t([&] { seen = waiter->wait_for_delete_then_read("w7/b", last->revision(), &queue, 20000); });
  // Registered before the changes come: then it is answered from them as they are applied,
  // its range told from the store's before them with them laid over (the early path).
  ASSERT_TRUE(wait_until([&] { return sum("aspen_watchers") >= 1; }, 10000));
  // Changes to other keys do not answer it; the deletion does; what comes after is not in it.
  ASSERT_TRUE(kv::put(*c, "w7/b", "again").has_value());
  ASSERT_TRUE(kv::put(*c, "w7/d", "v").has_value());
  auto gone = kv::del(*c, "w7/b");
  ASSERT_TRUE(gone.has_value());
  ASSERT_TRUE(kv::del(*c, "w7/a").has_value());
  t.join();
  ASSERT_TRUE(seen.has_value()) << seen.error().to_string();
  EXPECT_EQ(seen->revision, gone->revision());
  ASSERT_TRUE(seen->read.has_value()) << "the range comes back with the answer";
  EXPECT_EQ(seen->read->revision(), gone->revision());
  std::vector<std::string> keys;
  for (const auto& kv : seen->read->kvs()) keys.push_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"w7/a", "w7/c", "w7/d"})) << "as of the deletion: a not yet deleted";
  EXPECT_GE(sum("aspen_watch_once_answers_total"), answers_before + 1);
  // A waiter that is up to date is answered from the apply's changes, before the store's
  // commit; one that fell a step behind (a commit the member had not seen yet) is answered
  // from the store right after. Both give the range as of the deletion: rounds until at least
  // one early answer came, each checked.
  for (int round = 0; round < 20 && sum("aspen_watch_messages_sent_early_total") == early_before; ++round) {
    auto put = kv::put(*c, "w7/e", "v");
    ASSERT_TRUE(put.has_value());
    Result<kv::DeletionSeen> again = kv::DeletionSeen{};
    const uint64_t watchers = sum("aspen_watchers");
    std::thread w([&] { again = waiter->wait_for_delete_then_read("w7/e", put->revision(), &queue, 20000); });
    ASSERT_TRUE(wait_until([&] { return sum("aspen_watchers") > watchers; }, 10000));
    auto del = kv::del(*c, "w7/e");
    ASSERT_TRUE(del.has_value());
    w.join();
    ASSERT_TRUE(again.has_value()) << again.error().to_string();
    EXPECT_EQ(again->revision, del->revision());
    ASSERT_TRUE(again->read.has_value());
    EXPECT_EQ(again->read->revision(), del->revision());
    EXPECT_EQ(again->read->kvs_size(), 2) << "w7/c and w7/d";
  }
  EXPECT_GT(sum("aspen_watch_messages_sent_early_total"), early_before) << "answered before the store's commit";

  // A deletion that happened before the wait was sent is answered at once, from the history.
  auto late = waiter->wait_for_delete_then_read("w7/a", gone->revision(), &queue, 20000);
  ASSERT_TRUE(late.has_value()) << late.error().to_string();
  EXPECT_GT(late->revision, gone->revision());
  ASSERT_TRUE(late->read.has_value());
  EXPECT_EQ(late->read->kvs_size(), 2) << "w7/c and w7/d";
  // Without a range to read, only the revision.
  auto bare = waiter->wait_for_delete_then_read("w7/a", gone->revision(), nullptr, 20000);
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->revision, late->revision);
  EXPECT_FALSE(bare->read.has_value());
}

TEST_F(WatchTest, AOneShotWaitThatSeesNothingIsAnsweredAtItsTimeoutAndLeavesNoWatcherBehind) {
  auto c = client();
  auto quiet = kv::put(*c, "w9/k", "v");
  ASSERT_TRUE(quiet.has_value());
  for (int i = 0; i < 5; ++i) {
    auto seen = c->wait_for_delete_then_read("w9/k", quiet->revision(), nullptr, 200);
    ASSERT_TRUE(seen.has_value()) << seen.error().to_string();
    EXPECT_EQ(seen->revision, 0u) << "the key was not deleted: the time ran out";
  }
  // Answered and forgotten: no node keeps a watcher for them.
  EXPECT_TRUE(wait_until(
      [&] {
        uint64_t watchers = 0;
        for (uint64_t id = 1; id <= 3; ++id) watchers += metric_of(*c, id, "aspen_watchers");
        return watchers == 0;
      },
      10000));
}

// A peer that misuses a one-shot watch's stream gets it cancelled with the reason, and one
// that abandons many waits leaves nothing behind on the node once its connection goes.
TEST_F(WatchTest, AOneShotWatchTakesNoFurtherRequestsAndAbandonedOnesAreForgotten) {
  auto c = client();
  clientpb::Request once;
  auto* w = once.mutable_watch_create();
  w->set_start("w10/k");
  w->set_is_once(true);
  w->set_once_timeout_ms(limits::kMaxWatchOnceTimeoutMs);
  auto ps = c->open_protocol_stream("aspen-client", once, client::Target{2}, 10000);
  ASSERT_TRUE(ps.has_value()) << ps.error().to_string();
  clientpb::Request more;
  more.mutable_watch_progress();
  ASSERT_TRUE(ps->stream.send(more.SerializeAsString()).has_value());
  auto msg = ps->stream.recv(10000);
  clientpb::Response r;
  ASSERT_TRUE(msg && *msg && r.ParseFromString(**msg));
  EXPECT_TRUE(r.watch().is_canceled()) << r.DebugString();
  EXPECT_NE(r.watch().cancel_reason().find("one-shot"), std::string::npos) << r.watch().cancel_reason();
  ps->conn.close();

  auto bad = once;
  bad.mutable_watch_create()->set_once_timeout_ms(limits::kMaxWatchOnceTimeoutMs + 1);
  auto refused = c->open_protocol_stream("aspen-client", bad, client::Target{2}, 10000);
  ASSERT_TRUE(refused.has_value()) << refused.error().to_string();
  auto answer = refused->stream.recv(10000);
  ASSERT_TRUE(answer && *answer && r.ParseFromString(**answer));
  EXPECT_EQ(r.error().code_name(), "InvalidArgument") << r.DebugString();
  EXPECT_NE(r.error().message().find("once_timeout_ms"), std::string::npos) << r.error().message();
  refused->conn.close();

  // Fifty waits of a minute each, abandoned with their connections.
  std::vector<client::Client::ProtocolStream> abandoned;
  for (int i = 0; i < 50; ++i) {
    auto s = c->open_protocol_stream("aspen-client", once, client::Target{2}, 10000);
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    abandoned.push_back(std::move(*s));
  }
  EXPECT_TRUE(wait_until([&] { return metric_of(*c, 2, "aspen_watchers") >= 50; }, 10000));
  for (auto& s : abandoned) s.conn.close();
  EXPECT_TRUE(wait_until([&] { return metric_of(*c, 2, "aspen_watchers") == 0; }, 20000))
      << metric_of(*c, 2, "aspen_watchers");
  EXPECT_TRUE(c->health(client::Target{2}).has_value());
}

// Collects `n` log entries (or fewer if the subscription fails), checking the order.
std::vector<client::WatchBatch> collect_entries(client::Watch& sub, size_t n, uint32_t timeout_ms = 20000) {
  std::vector<client::WatchBatch> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto b = sub.next(1000);
    if (!b) {
      if (b.error().code() == ErrorCode::kTimeout) continue;
      ADD_FAILURE() << b.error().to_string();
      break;
    }
    if (b->is_progress()) continue;
    if (!out.empty()) {
      EXPECT_GT(b->revision, out.back().revision) << "indexes must increase";
    }
    out.push_back(std::move(*b));
  }
  return out;
}

TEST_F(WatchTest, TheLogSubscriptionDeliversEachEntryUnderThePrefixWholeInIndexOrder) {
  auto c = client();
  client::LogSubscribeOptions o;
  o.prefix = "l1/";
  auto sub = c->subscribe_log(o);
  ASSERT_TRUE(sub.has_value()) << sub.error().to_string();
  auto a = kv::put(*c, "l1/a", "1");
  ASSERT_TRUE(a.has_value());
  kvpb::Command multi;  // one entry: two keys under the prefix and one outside it
  for (const char* k : {"l1/b", "l1/c", "l1x/outside"}) {
    auto* p = multi.mutable_set_multi()->add_puts();
    p->set_key(k);
    p->set_value("m");
  }
  auto m = c->execute(multi);
  ASSERT_TRUE(m.has_value());
  ASSERT_TRUE(kv::put(*c, "l1x/other", "not followed").has_value());
  auto d = kv::del(*c, "l1/a");
  ASSERT_TRUE(d.has_value());

  auto entries = collect_entries(**sub, 3);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].revision, a->revision());
  ASSERT_EQ(entries[0].events.size(), 1u);
  EXPECT_EQ(entries[0].events[0].kv().key(), "l1/a");
  EXPECT_EQ(entries[1].revision, m->revision()) << "an entry's index is its revision";
  ASSERT_EQ(entries[1].events.size(), 2u) << "the entry whole, without the key outside the prefix";
  EXPECT_EQ(entries[1].events[0].kv().key(), "l1/b");
  EXPECT_EQ(entries[1].events[1].kv().key(), "l1/c");
  EXPECT_EQ(entries[2].revision, d->revision());
  ASSERT_EQ(entries[2].events.size(), 1u);
  EXPECT_EQ(entries[2].events[0].type(), clientpb::WatchEvent::DELETE);
  const auto now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_GT(entries[i].timestamp_ms, 0u) << "the leader's time of the entry";
    EXPECT_LE(entries[i].timestamp_ms, now_ms + 60000);
    if (i > 0) {
      EXPECT_GE(entries[i].timestamp_ms, entries[i - 1].timestamp_ms);
    }
  }
  // From a past index: the same entries, replayed from the history.
  o.from_index = a->revision();
  auto replay = c->subscribe_log(o);
  ASSERT_TRUE(replay.has_value());
  auto again = collect_entries(**replay, 3);
  ASSERT_EQ(again.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(again[i].revision, entries[i].revision);
    EXPECT_EQ(again[i].timestamp_ms, entries[i].timestamp_ms);
    EXPECT_EQ(again[i].events.size(), entries[i].events.size());
  }
}

TEST_F(WatchTest, TheLogSubscriptionResumesOnAnotherMemberAfterItsMemberIsKilled) {
  auto c = client();
  client::LogSubscribeOptions o;
  o.prefix = "l2/";
  auto sub = c->subscribe_log(o);
  ASSERT_TRUE(sub.has_value()) << sub.error().to_string();
  auto serving = (*sub)->serving_node();
  ASSERT_TRUE(serving.has_value());
  const uint64_t victim = node_of(*serving);
  ASSERT_NE(victim, 0u);
  std::vector<uint64_t> acked;
  for (int i = 0; i < 10; ++i) {
    auto r = kv::put(*c, fmt::format("l2/{}", i), "v");
    ASSERT_TRUE(r.has_value());
    acked.push_back(r->revision());
  }
  auto before = collect_entries(**sub, 10);
  ASSERT_EQ(before.size(), 10u);
  nodes_[victim]->kill9();
  for (int i = 10; i < 30; ++i) {
    auto r = kv::put(*c, fmt::format("l2/{}", i), "v");
    if (r) acked.push_back(r->revision());  // a write whose outcome is unknown may be missing
  }
  auto after = collect_entries(**sub, acked.size() - 10, 30000);
  EXPECT_GE((*sub)->resumes(), 1u);
  std::vector<uint64_t> seen;
  for (const auto& e : before) seen.push_back(e.revision);
  for (const auto& e : after) seen.push_back(e.revision);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]) << "in order, each once";
  for (uint64_t r : acked) {
    EXPECT_TRUE(std::find(seen.begin(), seen.end(), r) != seen.end()) << "acknowledged entry " << r << " not seen";
  }
  nodes_[victim]->start();  // back for the other tests
  ASSERT_TRUE(wait_until([&] { return c->health(client::Target{victim}).has_value(); }, 20000));
}

TEST_F(WatchTest, ALogSubscriptionFromACompactedIndexIsRefusedNamingTheOldestIndex) {
  auto c = client();
  auto r1 = kv::put(*c, "l3/a", "1");
  ASSERT_TRUE(r1.has_value());
  auto r2 = kv::put(*c, "l3/a", "2");
  ASSERT_TRUE(r2.has_value());
  kvpb::Command compact;
  compact.mutable_compact()->set_revision(r2->revision());
  ASSERT_TRUE(c->execute(compact).has_value());
  client::LogSubscribeOptions o;
  o.prefix = "l3/";
  o.from_index = r1->revision();
  auto sub = c->subscribe_log(o);
  ASSERT_FALSE(sub.has_value());
  EXPECT_EQ(sub.error().code(), ErrorCode::kCompacted);
  EXPECT_NE(sub.error().message().find(std::to_string(r2->revision())), std::string::npos) << sub.error().message();
}

TEST_F(WatchTest, TheLogAndClientProtocolsEachRefuseTheOthersRequests) {
  auto c = client();
  // A log subscription on the client protocol.
  clientpb::Request subscribe;
  subscribe.mutable_log_subscribe()->set_prefix("l4/");
  auto wrong = c->call(subscribe);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(wrong.error().message().find("aspen-logs"), std::string::npos) << wrong.error().message();
  // A read on the log protocol, from the test operator (authorized for it).
  auto& op = TestOperator::get();
  auto ep = transport::Endpoint::bind(op.identity, transport::EndpointConfig{});
  ASSERT_TRUE(ep.has_value());
  const auto& n = *nodes_.begin()->second;
  const auto addr = *transport::SocketAddr::parse(n.addr());
  auto conn = (*ep)->connect(*transport::PublicKey::parse(n.key_text()), std::span(&addr, 1), "aspen-logs", 5000);
  ASSERT_TRUE(conn.has_value()) << conn.error().to_string();
  clientpb::Request read;
  read.mutable_read()->set_key("l4/a");
  read.set_auth_token(op.current_token());
  auto stream = conn->open_bi_with(read.SerializeAsString(), true);
  ASSERT_TRUE(stream.has_value());
  auto answer = stream->recv(10000);
  ASSERT_TRUE(answer.has_value() && answer->has_value()) << "the node answers, and stays up";
  clientpb::Response resp;
  ASSERT_TRUE(resp.ParseFromString(**answer));
  ASSERT_TRUE(resp.has_error());
  EXPECT_NE(resp.error().message().find("only log_subscribe"), std::string::npos) << resp.error().message();
  // Garbage on the log protocol: an error, and the node goes on serving.
  auto junk = conn->open_bi_with(std::string("\xff\xff\xff not a request"), true);
  ASSERT_TRUE(junk.has_value());
  auto junk_answer = junk->recv(10000);
  ASSERT_TRUE(junk_answer.has_value() && junk_answer->has_value());
  ASSERT_TRUE(resp.ParseFromString(**junk_answer));
  EXPECT_TRUE(resp.has_error());
  EXPECT_TRUE(c->health(client::Target{nodes_.begin()->first}).has_value());
}

}  // namespace
}  // namespace aspen::testing
