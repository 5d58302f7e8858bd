// QueueManager: FIFO order, visibility timeouts, ack/nack, dead letters, dedup, bounds, and
// "no message lost or delivered after its ack" with many producer and consumer threads.
#include <gtest/gtest.h>

#include <map>

#include <fmt/format.h>
#include <mutex>
#include <thread>
#include <vector>

#include "coord/queue.h"
#include "core/limits.h"
#include "kv/deterministic_store.h"

namespace aspen::coord {
namespace {

using kv::DeterministicKeyValueStore;

TEST(CoordQueue, FifoAckAndLength) {
  DeterministicKeyValueStore s;
  QueueManager q(s, "jobs", {.visibility_timeout_ms = 1000, .max_delivery_attempts = 3});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.enqueue("m" + std::to_string(i), "", 0).has_value());
  EXPECT_EQ(*q.length(), 5u);
  auto peeked = *q.peek(2, 0);
  ASSERT_EQ(peeked.size(), 2u);
  EXPECT_EQ(peeked[0].payload, "m0");
  auto got = *q.dequeue(3, 0);
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].payload, "m" + std::to_string(i));
    EXPECT_EQ(got[i].delivery_attempt, 1u);
  }
  EXPECT_EQ((*q.peek(10, 0))[0].payload, "m3");  // in-flight messages are invisible
  for (auto& m : got) ASSERT_TRUE(q.ack(m.receipt).has_value());
  EXPECT_EQ(*q.length(), 2u);
  auto again = q.ack(got[0].receipt);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
}

TEST(CoordQueue, VisibilityTimeoutRedeliversAndStaleReceiptFails) {
  DeterministicKeyValueStore s;
  QueueManager q(s, "jobs", {.visibility_timeout_ms = 1000, .max_delivery_attempts = 5});
  ASSERT_TRUE(q.enqueue("x", "", 0).has_value());
  auto first = *q.dequeue(1, 0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(q.dequeue(1, 999)->empty());
  auto second = *q.dequeue(1, 1000);  // the first consumer "crashed"
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].delivery_attempt, 2u);
  EXPECT_EQ(q.ack(first[0].receipt).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(q.ack(second[0].receipt).has_value());
  EXPECT_TRUE(q.dequeue(1, 100000)->empty());  // acked: never delivered again
}

TEST(CoordQueue, NackMakesVisibleAfterDelay) {
  DeterministicKeyValueStore s;
  QueueManager q(s, "jobs", {.visibility_timeout_ms = 60000, .max_delivery_attempts = 5});
  ASSERT_TRUE(q.enqueue("x", "", 0).has_value());
  auto m = (*q.dequeue(1, 0))[0];
  ASSERT_TRUE(q.nack(m.receipt, 10, 100).has_value());
  EXPECT_TRUE(q.dequeue(1, 109)->empty());
  EXPECT_EQ((*q.dequeue(1, 110)).size(), 1u);
  EXPECT_EQ(q.nack(m.receipt, 10).error().code(), ErrorCode::kNotFound);
}

TEST(CoordQueue, ExhaustedMessagesMoveToDeadLetterQueue) {
  DeterministicKeyValueStore s;
  QueueManager q(s, "jobs", {.visibility_timeout_ms = 10, .max_delivery_attempts = 2});
  ASSERT_TRUE(q.enqueue("poison", "p1", 0).has_value());
  ASSERT_TRUE(q.enqueue("fine", "", 0).has_value());
  uint64_t now = 0;
  for (int i = 0; i < 2; ++i) {
    auto m = *q.dequeue(1, now);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].payload, "poison");
    ASSERT_TRUE(q.nack(m[0].receipt, now).has_value());
  }
  auto next = *q.dequeue(1, now);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].payload, "fine");
  QueueManager dlq(s, q.dead_letter_queue_name(), {.visibility_timeout_ms = 10, .max_delivery_attempts = 2});
  auto dead = *dlq.dequeue(10, now);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].payload, "poison");
  EXPECT_EQ(*q.length(), 1u);
  EXPECT_FALSE(q.enqueue("poison again", "p1", now)->is_duplicate);  // its dedup id was freed
}

TEST(CoordQueue, DeduplicatesWhileTheMessageIsLive) {
  DeterministicKeyValueStore s;
  QueueManager q(s, "jobs", {});
  auto a = *q.enqueue("a", "order-1", 0);
  auto b = *q.enqueue("a-again", "order-1", 0);
  EXPECT_FALSE(a.is_duplicate);
  EXPECT_TRUE(b.is_duplicate);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(*q.length(), 1u);
  auto m = (*q.dequeue(1, 0))[0];
  ASSERT_TRUE(q.ack(m.receipt).has_value());
  EXPECT_FALSE(q.enqueue("a-later", "order-1", 0)->is_duplicate);
}

TEST(CoordQueue, ReceiptRoundTripsThroughText) {
  Receipt r{42, 1234};
  EXPECT_EQ(*Receipt::parse(r.to_string()), r);
  EXPECT_EQ(Receipt::parse("42").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Receipt::parse("a.b").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Receipt::parse("0.1").error().code(), ErrorCode::kInvalidArgument);
}

TEST(CoordQueue, PureClassification) {
  QueueConfig cfg{.visibility_timeout_ms = 10, .max_delivery_attempts = 3};
  EXPECT_EQ(classify_item(QueueItem{"", "", 0, 0, 5}, 4, cfg), ItemAction::kSkip);
  EXPECT_EQ(classify_item(QueueItem{"", "", 0, 2, 5}, 5, cfg), ItemAction::kDeliver);
  EXPECT_EQ(classify_item(QueueItem{"", "", 0, 3, 5}, 5, cfg), ItemAction::kDeadLetter);
}

TEST(CoordQueue, RejectsBadArgumentsAndOverLimits) {
  DeterministicKeyValueStore s;
  auto code = [](auto r) { return r.has_value() ? ErrorCode::kOk : r.error().code(); };
  QueueManager q(s, "jobs", {});
  EXPECT_EQ(code(q.enqueue(std::string(limits::kMaxQueuePayloadBytes + 1, 'x'), "", 0)), ErrorCode::kValueTooLarge);
  EXPECT_EQ(code(q.enqueue("x", "bad id", 0)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(q.dequeue(0, 0)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(q.dequeue(limits::kMaxQueueItemsPerCall + 1, 0)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(q.peek(limits::kMaxQueueItemsPerCall + 1, 0)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(q.ack(Receipt{})), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(q.nack(Receipt{1, 1}, 0, limits::kMaxQueueVisibilityTimeoutMs + 1)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(QueueManager(s, "q", {.visibility_timeout_ms = 0}).length()), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(QueueManager(s, "q", {.max_delivery_attempts = 0}).length()), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(QueueManager(s, std::string(limits::kMaxCoordNameBytes - 1, 'q'), {}).length()),
            ErrorCode::kInvalidArgument);  // no room for ".dlq"
}

TEST(CoordQueue, FullQueueRefusesEnqueue) {
  DeterministicKeyValueStore s;
  QueueManager q(s, "full", {});
  // Fill it directly, 1000 items per SetMulti: enqueue() would count the queue each time.
  const std::string item = encode_item(QueueItem{"x", "", 0, 0, 0});
  for (size_t batch = 0; batch < limits::kMaxQueueLength / limits::kMaxBatchSize; ++batch) {
    kvpb::Command cmd;
    for (size_t i = 0; i < limits::kMaxBatchSize; ++i) {
      auto* p = cmd.mutable_set_multi()->add_puts();
      p->set_key(fmt::format("__coord:queue:full:item:{:020}", batch * limits::kMaxBatchSize + i + 1));
      p->set_value(item);
    }
    ASSERT_TRUE(s.execute(std::move(cmd)).has_value());
  }
  EXPECT_EQ(*q.length(), limits::kMaxQueueLength);
  auto r = q.enqueue("one too many", "", 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("full"), std::string::npos);
}

TEST(CoordQueue, NoMessageLostOrDeliveredAfterAckUnderThreads) {
  DeterministicKeyValueStore s;
  const QueueConfig cfg{.visibility_timeout_ms = 50, .max_delivery_attempts = 1000};
  constexpr int kProducers = 4, kPerProducer = 100, kConsumers = 8;
  std::atomic<uint64_t> now{0};
  std::atomic<int> produced_done{0};
  std::mutex mu;
  std::map<std::string, int> acked;                // payload -> successful acks
  std::map<std::string, uint64_t> acked_claim;     // payload -> claim revision of the acked delivery
  std::vector<std::pair<std::string, uint64_t>> deliveries;  // (payload, claim revision)
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      QueueManager q(s, "work", cfg);
      for (int i = 0; i < kPerProducer; ++i) {
        std::string id = "p" + std::to_string(p) + "-" + std::to_string(i);
        ASSERT_TRUE(q.enqueue(id, id, now.load()).has_value());
      }
      produced_done++;
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      QueueManager q(s, "work", cfg);
      uint64_t n = 0;
      while (true) {
        auto got = q.dequeue(4, now.load());
        ASSERT_TRUE(got.has_value()) << got.error().to_string();
        if (got->empty()) {
          std::lock_guard g(mu);
          if (produced_done == kProducers && acked.size() == size_t{kProducers * kPerProducer}) return;
          now += 10;  // let abandoned messages become visible again
          continue;
        }
        for (auto& m : *got) {
          {
            std::lock_guard g(mu);
            deliveries.emplace_back(m.payload, m.receipt.claim_revision);
          }
          if ((++n + c) % 7 == 0) continue;  // this consumer "crashes" on the message
          auto a = q.ack(m.receipt);
          if (a) {
            std::lock_guard g(mu);
            acked[m.payload]++;
            acked_claim[m.payload] = m.receipt.claim_revision;
          } else {
            ASSERT_EQ(a.error().code(), ErrorCode::kNotFound);  // timed out and redelivered
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  // Claims are ordered by revision: none may come after the claim whose ack succeeded.
  for (auto& [id, claim] : deliveries) EXPECT_LE(claim, acked_claim[id]) << id << " delivered after its ack";
  ASSERT_EQ(acked.size(), size_t{kProducers * kPerProducer});
  for (auto& [id, n] : acked) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(*QueueManager(s, "work", cfg).length(), 0u);
}

}  // namespace
}  // namespace aspen::coord
