// Shared vocabulary of the coordination primitives (src/coord): the reserved key space,
// name validation, the compact record codec, Txn builders and the waiting policy.
//
// Every primitive is a thin I/O shell over kv::KeyValueStore that stores its state under
// "__coord:<kind>:<name>[:<sub>]" and decides with pure functions. Nothing here reads a clock,
// sleeps or draws random numbers on its own: blocking waits take a Waiter, which supplies
// now_ms(), sleep_ms() and a jitter seed, so tests drive time explicitly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <algorithm>
#include <optional>

#include "aspen/kv.pb.h"
#include "core/encoding.h"
#include "core/limits.h"
#include "core/error.h"
#include "kv/key_value_store.h"

namespace aspen::coord {

inline constexpr std::string_view kCoordPrefix = "__coord:";

// "__coord:<kind>:<name>", and "__coord:<kind>:<name>:<sub>" for per-holder or per-item keys.
// Names never contain ':', so the prefix "__coord:<kind>:<name>:" selects exactly one object.
std::string coord_key(std::string_view kind, std::string_view name);
std::string coord_key(std::string_view kind, std::string_view name, std::string_view sub);

// Names of locks, queues, ...: 1..kMaxCoordNameBytes of [A-Za-z0-9._/-].
Status validate_name(std::string_view name);
// Holder, candidate, party, instance and dedup ids: 1..kMaxCoordHolderIdBytes of
// [A-Za-z0-9._/@-]. `what` names the argument in the error ("holder id").
Status validate_id(std::string_view what, std::string_view id);
Status validate_ttl_ms(uint64_t ttl_ms);

// How a blocking call waits. now_ms() and sleep_ms() come from the caller: production passes
// a steady clock and a real sleep, tests a counter (and may advance the store's clock).
struct Waiter {
  std::function<uint64_t()> now_ms;
  std::function<void(uint64_t)> sleep_ms;
  uint64_t jitter_seed = 1;
};

// Pure: the pause before poll number `attempt` (0-based): exponential from 1 ms, capped at
// kMaxCoordBackoffMs, with jitter in [half, full] drawn from `random`.
uint64_t backoff_ms(uint32_t attempt, uint64_t random);

// Runs `attempt` until it yields a value, an error, or the deadline passes (then Timeout
// naming `what`). attempt returns Result<std::optional<T>>: nullopt means "not yet".
template <typename T, typename F>
Result<T> wait_until(const Waiter& waiter, uint64_t deadline_ms, std::string_view what, F&& attempt);

// As wait_until, but between attempts it waits for a change to the keys under `prefix` when
// the store can report changes (kv::ChangeNotifier: the remote client) rather than sleeping
// a backoff: a release wakes the waiters at once. The change waiter opens before the first
// attempt, so a change between an attempt's read and the wait is not missed. A wait still
// ends after kMaxCoordBackoffMs, so attempts that renew a lease (a queued writer, a pending
// candidate) run as often as with polling. Without a notifier, or if it fails, it polls.
template <typename T, typename F>
Result<T> wait_for_change_until(kv::KeyValueStore& store, std::string_view prefix, const Waiter& waiter,
                                uint64_t deadline_ms, std::string_view what, F&& attempt);

// --- compact records: a kind byte, then varints and length-prefixed strings in fixed order ---
class RecordWriter {
 public:
  explicit RecordWriter(uint8_t kind) { out_.push_back(static_cast<char>(kind)); }
  RecordWriter& u64(uint64_t v);
  RecordWriter& str(std::string_view s);
  std::string finish() { return std::move(out_); }

 private:
  std::string out_;
};

class RecordReader {
 public:
  // Fails with Corruption (naming `key`) if the kind byte differs.
  static Result<RecordReader> open(std::string_view bytes, uint8_t kind, std::string_view key);
  Result<uint64_t> u64();
  Result<std::string> str();
  Status finish();  // all bytes consumed
  bool is_at_end() const { return rest_.empty(); }  // for fields added at the end of a record

 private:
  RecordReader(std::string_view rest, std::string_view key) : rest_(rest), key_(key) {}
  Error corrupt(std::string_view why) const;
  std::string_view rest_;
  std::string key_;
};

// --- transactions ---
kvpb::Compare cmp_mod_revision(std::string_view key, uint64_t mod_revision);  // 0 = absent
kvpb::Compare cmp_version(std::string_view key, uint64_t version);            // 0 = absent
kvpb::TxnOp op_put(std::string_view key, std::string value, uint64_t lease_id = 0);
kvpb::TxnOp op_delete(std::string_view key);
kvpb::TxnOp op_get(std::string_view key);
// The keys under `prefix`, at most `limit` of them, as the Txn leaves them.
kvpb::TxnOp op_scan_prefix(std::string_view prefix, uint32_t limit);

struct TxnSpec {
  std::vector<kvpb::Compare> compares;
  std::vector<kvpb::TxnOp> success;
  std::vector<kvpb::TxnOp> failure;
};
// Runs the Txn; an apply-time refusal (e.g. LeaseNotFound) becomes an Error.
Result<kvpb::CommandResult> run_txn(kv::KeyValueStore& store, TxnSpec spec);

// The key read by the failure branch's op_get at `index`, if present.
std::optional<kvpb::KeyValue> txn_read(const kvpb::CommandResult& r, int index);

// Error for an exhausted CAS loop on `what`.
Error contention_error(std::string_view what);

// What a read-modify-write decides: the new value (nullopt: write nothing) and the answer.
template <typename T>
struct Update {
  std::optional<std::string> new_value;
  T answer;
};

// A bounded optimistic read-modify-write of one key: reads it, asks decide(current) for an
// Update, writes it with a Txn that holds only if the key's mod_revision is unchanged, and on a
// conflict retries with the value the failed Txn read. Unavailable after kMaxCoordCasAttempts.
template <typename T, typename F>
Result<T> update_key(kv::KeyValueStore& store, const std::string& key, std::string_view what, F&& decide);

// --- template implementation ---
template <typename T, typename F>
Result<T> wait_until(const Waiter& waiter, uint64_t deadline_ms, std::string_view what, F&& attempt) {
  uint64_t random = waiter.jitter_seed;
  for (uint32_t i = 0; i < limits::kMaxCoordWaitAttempts; ++i) {
    Result<std::optional<T>> r = attempt();
    if (!r) return std::unexpected(r.error());
    if (r->has_value()) return std::move(**r);
    uint64_t now = waiter.now_ms();
    if (now >= deadline_ms) break;
    random = random * 6364136223846793005ULL + 1442695040888963407ULL;  // LCG step for jitter
    waiter.sleep_ms(std::min(backoff_ms(i, random >> 11), deadline_ms - now));
  }
  return make_error(ErrorCode::kTimeout, std::string(what) + ": deadline passed before it succeeded");
}

template <typename T, typename F>
Result<T> wait_for_change_until(kv::KeyValueStore& store, std::string_view prefix, const Waiter& waiter,
                                uint64_t deadline_ms, std::string_view what, F&& attempt) {
  std::unique_ptr<kv::ChangeWaiter> changes;
  if (auto* notifier = dynamic_cast<kv::ChangeNotifier*>(&store)) {
    if (auto w = notifier->watch_range(prefix, prefix_end(prefix))) changes = std::move(*w);
  }
  if (!changes) return wait_until<T>(waiter, deadline_ms, what, std::forward<F>(attempt));
  for (uint32_t i = 0; i < limits::kMaxCoordWaitAttempts; ++i) {
    Result<std::optional<T>> r = attempt();
    if (!r) return std::unexpected(r.error());
    if (r->has_value()) return std::move(**r);
    const uint64_t now = waiter.now_ms();
    if (now >= deadline_ms) break;
    auto changed = changes->wait(std::min(deadline_ms - now, limits::kMaxCoordBackoffMs));
    if (!changed) return wait_until<T>(waiter, deadline_ms, what, std::forward<F>(attempt));
  }
  return make_error(ErrorCode::kTimeout, std::string(what) + ": deadline passed before it succeeded");
}

template <typename T, typename F>
Result<T> update_key(kv::KeyValueStore& store, const std::string& key, std::string_view what, F&& decide) {
  auto first = kv::get(store, key);
  if (!first) return std::unexpected(first.error());
  std::optional<kvpb::KeyValue> current = std::move(*first);
  for (size_t i = 0; i < limits::kMaxCoordCasAttempts; ++i) {
    Result<Update<T>> u = decide(current);
    if (!u) return std::unexpected(u.error());
    if (!u->new_value) return std::move(u->answer);
    TxnSpec spec;
    spec.compares.push_back(cmp_mod_revision(key, current ? current->mod_revision() : 0));
    spec.success.push_back(op_put(key, std::move(*u->new_value)));
    spec.failure.push_back(op_get(key));
    auto r = run_txn(store, std::move(spec));
    if (!r) return std::unexpected(r.error());
    if (r->succeeded()) return std::move(u->answer);
    current = txn_read(*r, 0);
  }
  return std::unexpected(contention_error(what));
}

}  // namespace aspen::coord
