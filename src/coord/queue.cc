#include "coord/queue.h"

#include <charconv>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "queue";
constexpr uint8_t kItemRecord = 'Q';
constexpr size_t kSeqDigits = 20;  // zero-padded decimal: key order == numeric order

Result<uint64_t> parse_u64(std::string_view s, std::string_view what) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return make_error(ErrorCode::kCorruption, fmt::format("{} is not a decimal number", what));
  }
  return v;
}

std::string queue_prefix(std::string_view name) { return coord_key(kKind, name, ""); }
std::string seq_key(std::string_view name) { return coord_key(kKind, name, "seq"); }
std::string dedup_key(std::string_view name, std::string_view id) {
  return queue_prefix(name) + "dedup:" + std::string(id);
}
std::string items_prefix(std::string_view name) { return queue_prefix(name) + "item:"; }
std::string item_key_of(std::string_view name, uint64_t seq) {
  return items_prefix(name) + fmt::format("{:0{}}", seq, kSeqDigits);
}

Result<uint64_t> next_seq(const std::optional<kvpb::KeyValue>& kv) {
  if (!kv) return uint64_t{1};
  return parse_u64(kv->value(), "queue sequence");
}

// Inserts `item` into queue `name` as the next sequence number, atomically with the dedup key
// when the item has a dedup id (and `with_dedup`). Returns the seq, or the seq of the live
// message holding the dedup id.
Result<EnqueueResult> insert_item(kv::KeyValueStore& store, std::string_view name, const QueueItem& item,
                                  bool with_dedup, std::vector<kvpb::Compare> extra_compares,
                                  std::vector<kvpb::TxnOp> extra_ops) {
  const std::string sk = seq_key(name);
  const bool has_dedup = with_dedup && !item.dedup_id.empty();
  const std::string dk = has_dedup ? dedup_key(name, item.dedup_id) : std::string();
  auto first = kv::get(store, sk);
  if (!first) return std::unexpected(first.error());
  std::optional<kvpb::KeyValue> seq_kv = std::move(*first);
  for (size_t i = 0; i < limits::kMaxCoordCasAttempts; ++i) {
    auto seq = next_seq(seq_kv);
    if (!seq) return std::unexpected(seq.error());
    TxnSpec spec;
    spec.compares = extra_compares;
    spec.compares.push_back(cmp_mod_revision(sk, seq_kv ? seq_kv->mod_revision() : 0));
    if (has_dedup) spec.compares.push_back(cmp_version(dk, 0));
    spec.success = extra_ops;
    spec.success.push_back(op_put(sk, std::to_string(*seq + 1)));
    spec.success.push_back(op_put(item_key_of(name, *seq), encode_item(item)));
    if (has_dedup) spec.success.push_back(op_put(dk, std::to_string(*seq)));
    spec.failure.push_back(op_get(sk));
    if (has_dedup) spec.failure.push_back(op_get(dk));
    auto r = run_txn(store, std::move(spec));
    if (!r) return std::unexpected(r.error());
    if (r->succeeded()) return EnqueueResult{*seq, false};
    if (has_dedup) {
      if (auto existing = txn_read(*r, 1)) {
        auto s = parse_u64(existing->value(), "queue dedup entry");
        if (!s) return std::unexpected(s.error());
        return EnqueueResult{*s, true};
      }
    }
    if (!extra_compares.empty()) {
      return make_error(ErrorCode::kNotFound, "the message changed while it was being moved");
    }
    seq_kv = txn_read(*r, 0);
  }
  return std::unexpected(contention_error(fmt::format("enqueue to queue '{}'", name)));
}

}  // namespace

std::string Receipt::to_string() const { return fmt::format("{}.{}", seq, claim_revision); }

Result<Receipt> Receipt::parse(std::string_view s) {
  auto dot = s.find('.');
  auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument, "a receipt looks like '<seq>.<claim revision>'");
  };
  if (dot == std::string_view::npos) return bad();
  auto seq = parse_u64(s.substr(0, dot), "seq");
  auto rev = parse_u64(s.substr(dot + 1), "revision");
  if (!seq || !rev || *seq == 0 || *rev == 0) return bad();
  return Receipt{*seq, *rev};
}

ItemAction classify_item(const QueueItem& item, uint64_t now_ms, const QueueConfig& cfg) {
  if (item.invisible_until_ms > now_ms) return ItemAction::kSkip;
  if (item.attempts >= cfg.max_delivery_attempts) return ItemAction::kDeadLetter;
  return ItemAction::kDeliver;
}

std::string encode_item(const QueueItem& item) {
  return RecordWriter(kItemRecord)
      .str(item.payload)
      .str(item.dedup_id)
      .u64(item.enqueued_at_ms)
      .u64(item.attempts)
      .u64(item.invisible_until_ms)
      .finish();
}

Result<QueueItem> decode_item(const kvpb::KeyValue& kv) {
  auto r = RecordReader::open(kv.value(), kItemRecord, kv.key());
  if (!r) return std::unexpected(r.error());
  QueueItem it;
  auto payload = r->str();
  auto dedup = payload ? r->str() : Result<std::string>(std::unexpected(payload.error()));
  if (!dedup) return std::unexpected(dedup.error());
  auto at = r->u64();
  auto attempts = at ? r->u64() : at;
  auto until = attempts ? r->u64() : attempts;
  if (!until) return std::unexpected(until.error());
  if (auto s = r->finish(); !s) return std::unexpected(s.error());
  it.payload = std::move(*payload);
  it.dedup_id = std::move(*dedup);
  it.enqueued_at_ms = *at;
  it.attempts = static_cast<uint32_t>(*attempts);
  it.invisible_until_ms = *until;
  return it;
}

Status validate_queue_config(const QueueConfig& cfg) {
  if (cfg.visibility_timeout_ms == 0 || cfg.visibility_timeout_ms > limits::kMaxQueueVisibilityTimeoutMs) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("visibility timeout {} ms is outside [1, {}]", cfg.visibility_timeout_ms,
                                  limits::kMaxQueueVisibilityTimeoutMs));
  }
  if (cfg.max_delivery_attempts == 0 || cfg.max_delivery_attempts > limits::kMaxQueueDeliveryAttempts) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("max delivery attempts {} is outside [1, {}]", cfg.max_delivery_attempts,
                                  limits::kMaxQueueDeliveryAttempts));
  }
  return {};
}

Status QueueManager::check() const {
  if (auto s = validate_name(name_); !s) return s;
  // The dead-letter queue's name must be valid too.
  if (auto s = validate_name(dead_letter_queue_name()); !s) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("queue name is {} bytes; with its '.dlq' suffix it must fit {} bytes",
                                  name_.size(), limits::kMaxCoordNameBytes));
  }
  return validate_queue_config(cfg_);
}

std::string QueueManager::prefix() const { return queue_prefix(name_); }
std::string QueueManager::item_key(uint64_t seq) const { return item_key_of(name_, seq); }

Result<EnqueueResult> QueueManager::enqueue(std::string_view payload, std::string_view dedup_id, uint64_t now_ms) {
  if (auto s = check(); !s) return std::unexpected(s.error());
  if (payload.size() > limits::kMaxQueuePayloadBytes) {
    return make_error(ErrorCode::kValueTooLarge, fmt::format("queue payload is {} bytes; the limit is {} bytes",
                                                             payload.size(), limits::kMaxQueuePayloadBytes));
  }
  if (!dedup_id.empty()) {
    if (auto s = validate_id("dedup id", dedup_id); !s) return std::unexpected(s.error());
  }
  auto n = length();
  if (!n) return std::unexpected(n.error());
  if (*n >= limits::kMaxQueueLength) {
    return make_error(ErrorCode::kUnavailable, fmt::format("queue '{}' is full ({} messages); retry after "
                                                           "consumers catch up",
                                                           name_, limits::kMaxQueueLength));
  }
  QueueItem item{std::string(payload), std::string(dedup_id), now_ms, 0, 0};
  return insert_item(store_, name_, item, true, {}, {});
}

Result<bool> QueueManager::try_claim(const kvpb::KeyValue& kv, QueueItem item, uint64_t now_ms, QueueMessage* out) {
  item.attempts += 1;
  item.invisible_until_ms = now_ms + cfg_.visibility_timeout_ms;
  TxnSpec spec;
  spec.compares.push_back(cmp_mod_revision(kv.key(), kv.mod_revision()));
  spec.success.push_back(op_put(kv.key(), encode_item(item)));
  auto r = run_txn(store_, std::move(spec));
  if (!r) return std::unexpected(r.error());
  if (!r->succeeded()) return false;  // another consumer claimed (or acked) it first
  out->payload = std::move(item.payload);
  out->dedup_id = std::move(item.dedup_id);
  out->enqueued_at_ms = item.enqueued_at_ms;
  out->delivery_attempt = item.attempts;
  out->receipt = Receipt{out->seq, r->revision()};
  return true;
}

Status QueueManager::dead_letter(const kvpb::KeyValue& kv, const QueueItem& item, uint64_t now_ms) {
  QueueItem moved{item.payload, item.dedup_id, now_ms, 0, 0};
  std::vector<kvpb::TxnOp> ops{op_delete(kv.key())};
  if (!item.dedup_id.empty()) ops.push_back(op_delete(dedup_key(name_, item.dedup_id)));
  auto r = insert_item(store_, dead_letter_queue_name(), moved, false,
                       {cmp_mod_revision(kv.key(), kv.mod_revision())}, std::move(ops));
  if (!r && r.error().code() != ErrorCode::kNotFound) return std::unexpected(r.error());
  return {};  // NotFound: someone else moved or claimed it first
}

Result<std::vector<QueueMessage>> QueueManager::dequeue(uint32_t max_items, uint64_t now_ms) {
  if (auto s = check(); !s) return std::unexpected(s.error());
  if (max_items == 0 || max_items > limits::kMaxQueueItemsPerCall) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("dequeue of {} messages is outside [1, {}]", max_items,
                                                               limits::kMaxQueueItemsPerCall));
  }
  std::vector<QueueMessage> out;
  std::string continuation;
  size_t scanned = 0;
  const std::string items = items_prefix(name_);
  while (out.size() < max_items && scanned < limits::kMaxQueueScanPerDequeue) {
    auto page = kv::scan_prefix(store_, items,
                                static_cast<uint32_t>(std::min<size_t>(limits::kMaxQueueScanPerDequeue - scanned,
                                                                       4 * size_t{max_items} + 16)),
                                continuation);
    if (!page) return std::unexpected(page.error());
    for (const auto& kv : page->kvs()) {
      ++scanned;
      auto item = decode_item(kv);
      if (!item) return std::unexpected(item.error());
      auto seq = parse_u64(std::string_view(kv.key()).substr(items.size()), "queue item key");
      if (!seq) return std::unexpected(seq.error());
      switch (classify_item(*item, now_ms, cfg_)) {
        case ItemAction::kSkip: break;
        case ItemAction::kDeadLetter:
          if (auto s = dead_letter(kv, *item, now_ms); !s) return std::unexpected(s.error());
          break;
        case ItemAction::kDeliver: {
          QueueMessage m;
          m.seq = *seq;
          auto claimed = try_claim(kv, std::move(*item), now_ms, &m);
          if (!claimed) return std::unexpected(claimed.error());
          if (*claimed) out.push_back(std::move(m));
          break;
        }
      }
      if (out.size() == max_items) break;
    }
    if (!page->has_more()) break;
    continuation = page->continuation();
  }
  return out;
}

Status QueueManager::settle(const Receipt& receipt, std::optional<uint64_t> visible_at_ms) {
  if (auto s = check(); !s) return s;
  if (receipt.seq == 0 || receipt.claim_revision == 0) {
    return make_error(ErrorCode::kInvalidArgument, "empty receipt (a peeked message cannot be acked)");
  }
  const std::string key = item_key(receipt.seq);
  auto kv = kv::get(store_, key);
  if (!kv) return std::unexpected(kv.error());
  auto stale = [&] {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("receipt {} of queue '{}' is stale: the message was acked, redelivered "
                                  "after its visibility timeout, or dead-lettered",
                                  receipt.to_string(), name_));
  };
  if (!kv->has_value() || (*kv)->mod_revision() != receipt.claim_revision) return stale();
  auto item = decode_item(**kv);
  if (!item) return std::unexpected(item.error());
  TxnSpec spec;
  spec.compares.push_back(cmp_mod_revision(key, receipt.claim_revision));
  if (visible_at_ms) {
    item->invisible_until_ms = *visible_at_ms;
    spec.success.push_back(op_put(key, encode_item(*item)));
  } else {
    spec.success.push_back(op_delete(key));
    if (!item->dedup_id.empty()) spec.success.push_back(op_delete(dedup_key(name_, item->dedup_id)));
  }
  auto r = run_txn(store_, std::move(spec));
  if (!r) return std::unexpected(r.error());
  if (!r->succeeded()) return stale();
  return {};
}

Result<std::vector<QueueMessage>> QueueManager::dequeue_until(uint32_t max_items, uint64_t deadline_ms,
                                                              const Waiter& waiter) {
  using Messages = std::vector<QueueMessage>;
  return wait_for_change_until<Messages>(store_, prefix(), waiter, deadline_ms,
                                         fmt::format("pop from queue '{}'", name_),
                                         [&]() -> Result<std::optional<Messages>> {
                                           auto got = dequeue(max_items, waiter.now_ms());
                                           if (!got) return std::unexpected(got.error());
                                           if (got->empty()) return std::optional<Messages>{};
                                           return std::optional<Messages>(std::move(*got));
                                         });
}

Status QueueManager::ack(const Receipt& receipt) { return settle(receipt, std::nullopt); }

Status QueueManager::nack(const Receipt& receipt, uint64_t now_ms, uint64_t delay_ms) {
  if (delay_ms > limits::kMaxQueueVisibilityTimeoutMs) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("nack delay {} ms exceeds {} ms", delay_ms,
                                                               limits::kMaxQueueVisibilityTimeoutMs));
  }
  return settle(receipt, now_ms + delay_ms);
}

Result<std::vector<QueueMessage>> QueueManager::peek(uint32_t max_items, uint64_t now_ms) {
  if (auto s = check(); !s) return std::unexpected(s.error());
  if (max_items == 0 || max_items > limits::kMaxQueueItemsPerCall) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("peek of {} messages is outside [1, {}]", max_items,
                                                               limits::kMaxQueueItemsPerCall));
  }
  const std::string items = items_prefix(name_);
  auto page = kv::scan_prefix(store_, items, static_cast<uint32_t>(limits::kMaxQueueScanPerDequeue));
  if (!page) return std::unexpected(page.error());
  std::vector<QueueMessage> out;
  for (const auto& kv : page->kvs()) {
    auto item = decode_item(kv);
    if (!item) return std::unexpected(item.error());
    if (classify_item(*item, now_ms, cfg_) != ItemAction::kDeliver) continue;
    auto seq = parse_u64(std::string_view(kv.key()).substr(items.size()), "queue item key");
    if (!seq) return std::unexpected(seq.error());
    QueueMessage m;
    m.seq = *seq;
    m.payload = std::move(item->payload);
    m.dedup_id = std::move(item->dedup_id);
    m.enqueued_at_ms = item->enqueued_at_ms;
    out.push_back(std::move(m));
    if (out.size() == max_items) break;
  }
  return out;
}

Result<uint64_t> QueueManager::length() {
  if (auto s = check(); !s) return std::unexpected(s.error());
  kvpb::RangeRequest req;
  req.set_start(items_prefix(name_));
  req.set_is_prefix(true);
  req.set_is_count_only(true);
  req.set_limit(static_cast<uint32_t>(limits::kMaxQueueLength));
  auto r = store_.range(req);
  if (!r) return std::unexpected(r.error());
  return r->count();
}

}  // namespace aspen::coord
