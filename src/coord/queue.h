// QueueManager: a named FIFO work queue with at-least-once delivery.
//
//   QueueManager q(store, "emails", {.visibility_timeout_ms = 30'000, .max_delivery_attempts = 5});
//   q.enqueue(payload, /*dedup_id=*/"order-17", now_ms);
//   for (auto& m : *q.dequeue(10, now_ms)) { handle(m); q.ack(m.receipt); }
//
// Layout under "__coord:queue:<name>:": "seq" (next sequence number), "item:<20-digit seq>"
// (one record per message: payload, dedup id, enqueue time, attempts, invisible-until) and
// "dedup:<id>" (the seq of a live message with that dedup id).
//
// - Order: dequeue hands out visible messages in enqueue (sequence) order.
// - Claiming: a dequeue claims a message with a Txn on its mod_revision, which makes it
//   invisible for visibility_timeout_ms and counts a delivery attempt. The receipt carries the
//   claim's revision; ack and nack hold only while the message is still that claim's (after
//   the timeout another consumer may re-claim it, and the old receipt then fails NotFound).
//   So a message whose ack succeeded is gone and never delivered again.
// - A visible message that already had max_delivery_attempts deliveries is moved, in one Txn,
//   to the dead-letter queue "<name>.dlq" (itself an ordinary queue).
// - Deduplication: enqueue with a dedup id that a live (unacked) message has returns that
//   message's seq instead of adding a copy. The id is freed when the message is acked or
//   dead-lettered.
// - Bounds: kMaxQueueLength messages (checked before each enqueue, so concurrent producers may
//   overshoot it by their number), kMaxQueueItemsPerCall per dequeue/peek, payload size.
#pragma once

#include <string>
#include <vector>

#include "coord/coord_common.h"

namespace aspen::coord {

struct QueueConfig {
  uint64_t visibility_timeout_ms = 30000;
  uint32_t max_delivery_attempts = 5;
};

struct Receipt {
  uint64_t seq = 0;
  uint64_t claim_revision = 0;
  std::string to_string() const;  // "seq.claim_revision", for CLIs and wire protocols
  static Result<Receipt> parse(std::string_view s);
  friend bool operator==(const Receipt&, const Receipt&) = default;
};

struct QueueMessage {
  uint64_t seq = 0;
  std::string payload;
  std::string dedup_id;
  uint64_t enqueued_at_ms = 0;
  uint32_t delivery_attempt = 0;  // 1 on the first delivery; 0 when only peeked at
  Receipt receipt;                // empty when only peeked at
};

struct EnqueueResult {
  uint64_t seq = 0;
  bool is_duplicate = false;  // a live message had this dedup id; nothing was added
};

// The stored form of a message, and the pure decision about it.
struct QueueItem {
  std::string payload;
  std::string dedup_id;
  uint64_t enqueued_at_ms = 0;
  uint32_t attempts = 0;
  uint64_t invisible_until_ms = 0;
};
enum class ItemAction { kSkip, kDeliver, kDeadLetter };
ItemAction classify_item(const QueueItem& item, uint64_t now_ms, const QueueConfig& cfg);
std::string encode_item(const QueueItem& item);
Result<QueueItem> decode_item(const kvpb::KeyValue& kv);
Status validate_queue_config(const QueueConfig& cfg);

class QueueManager {
 public:
  QueueManager(kv::KeyValueStore& store, std::string name, QueueConfig cfg)
      : store_(store), name_(std::move(name)), cfg_(cfg) {}

  // dedup_id may be empty (no deduplication).
  Result<EnqueueResult> enqueue(std::string_view payload, std::string_view dedup_id, uint64_t now_ms);
  // Claims up to max_items visible messages (1..kMaxQueueItemsPerCall); may return fewer.
  Result<std::vector<QueueMessage>> dequeue(uint32_t max_items, uint64_t now_ms);
  // dequeue, waiting until deadline_ms for a message to become visible: woken by a push
  // (a watch on the queue, with a store that reports changes) rather than by polling. The
  // waiter's clock must be the one given to enqueue/dequeue (wall-clock ms). Timeout if none
  // came in time.
  Result<std::vector<QueueMessage>> dequeue_until(uint32_t max_items, uint64_t deadline_ms, const Waiter& waiter);
  // Deletes the message. NotFound if the receipt is stale (redelivered, acked, dead-lettered).
  Status ack(const Receipt& receipt);
  // Makes the message visible again after delay_ms. NotFound if the receipt is stale.
  Status nack(const Receipt& receipt, uint64_t now_ms, uint64_t delay_ms = 0);
  // Visible messages in order, without claiming them.
  Result<std::vector<QueueMessage>> peek(uint32_t max_items, uint64_t now_ms);
  // Messages in the queue, visible or in flight.
  Result<uint64_t> length();
  std::string dead_letter_queue_name() const { return name_ + ".dlq"; }

 private:
  Status check() const;
  std::string prefix() const;  // "__coord:queue:<name>:"
  std::string item_key(uint64_t seq) const;
  Result<bool> try_claim(const kvpb::KeyValue& kv, QueueItem item, uint64_t now_ms, QueueMessage* out);
  Status dead_letter(const kvpb::KeyValue& kv, const QueueItem& item, uint64_t now_ms);
  Status settle(const Receipt& receipt, std::optional<uint64_t> visible_at_ms);

  kv::KeyValueStore& store_;
  std::string name_;
  QueueConfig cfg_;
};

}  // namespace aspen::coord
