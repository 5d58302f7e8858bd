#include "coord/semaphore.h"

#include <fmt/format.h>

#include "core/limits.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "sem";
constexpr uint8_t kSemRecord = 'M';

std::string encode_sem(const SemaphoreState& s) {
  RecordWriter w(kSemRecord);
  w.u64(s.permits);
  write_holders(w, s.holders);
  write_holders(w, s.waiting);
  return w.finish();
}

Result<SemaphoreState> decode_sem(const kvpb::KeyValue& kv) {
  auto r = RecordReader::open(kv.value(), kSemRecord, kv.key());
  if (!r) return std::unexpected(r.error());
  auto permits = r->u64();
  if (!permits) return std::unexpected(permits.error());
  auto holders = read_holders(*r, limits::kMaxSemaphoreHolders);
  if (!holders) return std::unexpected(holders.error());
  std::vector<LeasedHolder> waiting;
  if (!r->is_at_end()) {  // records written before the waiting line have none
    auto w = read_holders(*r, limits::kMaxSemaphoreWaiters);
    if (!w) return std::unexpected(w.error());
    waiting = std::move(*w);
  }
  if (auto s = r->finish(); !s) return std::unexpected(s.error());
  return SemaphoreState{*permits, std::move(*holders), std::move(waiting)};
}
}  // namespace

uint64_t semaphore_in_use(const SemaphoreState& state) {
  uint64_t n = 0;
  for (const auto& h : state.holders) n += h.count;
  return n;
}

Result<std::pair<SemaphoreOutcome, SemaphoreState>> plan_semaphore_acquire(SemaphoreState state,
                                                                           const std::set<std::string>& live,
                                                                           const LeasedHolder& holder,
                                                                           bool should_queue) {
  prune_holders(state.holders, live);
  prune_holders(state.waiting, live);
  for (const auto& h : state.holders) {
    if (h.id == holder.id) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("holder '{}' already holds {} permits; release them first", h.id, h.count));
    }
  }
  const bool is_first_in_line = state.waiting.empty() || state.waiting.front().id == holder.id;
  if (is_first_in_line && semaphore_in_use(state) + holder.count <= state.permits) {
    if (state.holders.size() >= limits::kMaxSemaphoreHolders) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("semaphore has {} holders, the limit", limits::kMaxSemaphoreHolders));
    }
    std::erase_if(state.waiting, [&](const LeasedHolder& h) { return h.id == holder.id; });
    state.holders.push_back(holder);
    return std::pair{SemaphoreOutcome::kGranted, std::move(state)};
  }
  const bool is_waiting = std::any_of(state.waiting.begin(), state.waiting.end(),
                                      [&](const LeasedHolder& h) { return h.id == holder.id; });
  if (!should_queue || is_waiting) return std::pair{SemaphoreOutcome::kRefused, std::move(state)};
  if (state.waiting.size() >= limits::kMaxSemaphoreWaiters) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("semaphore has {} waiters, the limit", limits::kMaxSemaphoreWaiters));
  }
  state.waiting.push_back(holder);
  return std::pair{SemaphoreOutcome::kQueued, std::move(state)};
}

Status DistributedSemaphore::check(std::string_view holder, uint64_t count, uint64_t ttl_ms) const {
  if (auto s = validate_name(name_); !s) return s;
  if (auto s = validate_id("holder id", holder); !s) return s;
  if (auto s = validate_ttl_ms(ttl_ms); !s) return s;
  if (permits_ == 0 || permits_ > limits::kMaxSemaphorePermits) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("semaphore permits {} is outside [1, {}]", permits_, limits::kMaxSemaphorePermits));
  }
  if (count == 0 || count > permits_) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("cannot take {} permits from a semaphore of {}", count, permits_));
  }
  return {};
}

Result<std::optional<SemaphoreState>> DistributedSemaphore::read_state(std::string* key, uint64_t* mod_revision) {
  *key = coord_key(kKind, name_);
  auto kv = kv::get(store_, *key);
  if (!kv) return std::unexpected(kv.error());
  *mod_revision = kv->has_value() ? (*kv)->mod_revision() : 0;
  if (!kv->has_value()) return std::optional<SemaphoreState>{};
  auto st = decode_sem(**kv);
  if (!st) return std::unexpected(st.error());
  if (st->permits != permits_) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("semaphore '{}' has {} permits, not {}", name_, st->permits, permits_));
  }
  return std::optional<SemaphoreState>(std::move(*st));
}

Result<std::optional<SemaphorePermit>> DistributedSemaphore::attempt(std::string_view holder, uint64_t count,
                                                                     uint64_t ttl_ms, bool should_queue,
                                                                     uint64_t* lease_id) {
  if (*lease_id == 0) {
    auto lease = kv::lease_grant(store_, ttl_ms);
    if (!lease) return std::unexpected(lease.error());
    *lease_id = lease->id();
  } else if (auto k = kv::lease_keepalive(store_, *lease_id); !k) {  // a waiter keeps its place
    if (k.error().code() != ErrorCode::kLeaseNotFound) return std::unexpected(k.error());
    *lease_id = 0;  // it lapsed: the line lost us; join again at its end
    return std::optional<SemaphorePermit>{};
  }
  for (size_t i = 0; i < limits::kMaxCoordCasAttempts; ++i) {
    std::string key;
    uint64_t mod_revision = 0;
    auto st = read_state(&key, &mod_revision);
    if (!st) return std::unexpected(st.error());
    auto live = live_holder_ids(store_, key, limits::kMaxSemaphoreHolders + limits::kMaxSemaphoreWaiters);
    if (!live) return std::unexpected(live.error());
    LeasedHolder me{std::string(holder), count, *lease_id};
    auto plan = plan_semaphore_acquire(st->value_or(SemaphoreState{permits_, {}, {}}), *live, me, should_queue);
    if (!plan) return std::unexpected(plan.error());
    if (plan->first == SemaphoreOutcome::kRefused) return std::optional<SemaphorePermit>{};
    TxnSpec spec;
    spec.compares.push_back(cmp_mod_revision(key, mod_revision));
    spec.success.push_back(op_put(key, encode_sem(plan->second)));
    spec.success.push_back(op_put(marker_key(key, holder), "", *lease_id));
    auto r = run_txn(store_, std::move(spec));
    if (!r) {
      if (r.error().code() == ErrorCode::kLeaseNotFound) {  // expired while waiting
        *lease_id = 0;
        return std::optional<SemaphorePermit>{};
      }
      return std::unexpected(r.error());
    }
    if (!r->succeeded()) continue;
    if (plan->first == SemaphoreOutcome::kQueued) return std::optional<SemaphorePermit>{};
    return std::optional<SemaphorePermit>(SemaphorePermit{name_, me.id, count, *lease_id});
  }
  return std::unexpected(contention_error(fmt::format("semaphore '{}'", name_)));
}

Result<std::optional<SemaphorePermit>> DistributedSemaphore::try_acquire(std::string_view holder, uint64_t count,
                                                                         uint64_t ttl_ms) {
  if (auto s = check(holder, count, ttl_ms); !s) return std::unexpected(s.error());
  uint64_t lease_id = 0;
  auto r = attempt(holder, count, ttl_ms, false, &lease_id);
  if ((!r || !r->has_value()) && lease_id != 0) (void)kv::lease_revoke(store_, lease_id);
  return r;
}

Result<SemaphorePermit> DistributedSemaphore::try_acquire_until(std::string_view holder, uint64_t count,
                                                                uint64_t ttl_ms, uint64_t deadline_ms,
                                                                const Waiter& waiter) {
  if (auto s = check(holder, count, ttl_ms); !s) return std::unexpected(s.error());
  uint64_t lease_id = 0;
  // Woken when the state or a holder's marker (deleted with its lease) changes.
  auto r = wait_for_change_until<SemaphorePermit>(store_, coord_key(kKind, name_), waiter, deadline_ms,
                                                  fmt::format("acquire semaphore '{}'", name_),
                                                  [&] { return attempt(holder, count, ttl_ms, true, &lease_id); });
  // Giving up: the lease's end takes the waiter's marker, so the next writer drops it from
  // the line.
  if (!r && lease_id != 0) (void)kv::lease_revoke(store_, lease_id);
  return r;
}

Status DistributedSemaphore::release(const SemaphorePermit& permit) {
  if (auto s = validate_name(name_); !s) return s;
  auto expired = [&] {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("holder '{}' does not hold semaphore '{}' (its TTL lapsed?)", permit.holder, name_));
  };
  for (size_t i = 0; i < limits::kMaxCoordCasAttempts; ++i) {
    std::string key;
    uint64_t mod_revision = 0;
    auto st = read_state(&key, &mod_revision);
    if (!st) return std::unexpected(st.error());
    if (!st->has_value()) return expired();
    auto& holders = (*st)->holders;
    auto before = holders.size();
    std::erase_if(holders, [&](const LeasedHolder& h) { return h.id == permit.holder && h.lease_id == permit.lease_id; });
    if (holders.size() == before) return expired();
    TxnSpec spec;
    spec.compares.push_back(cmp_mod_revision(key, mod_revision));
    spec.success.push_back(op_put(key, encode_sem(**st)));
    spec.success.push_back(op_delete(marker_key(key, permit.holder)));
    auto r = run_txn(store_, std::move(spec));
    if (!r) return std::unexpected(r.error());
    if (!r->succeeded()) continue;
    (void)kv::lease_revoke(store_, permit.lease_id);
    // Listed but its marker had already expired: the permits were free anyway; say so.
    return {};
  }
  return std::unexpected(contention_error(fmt::format("semaphore '{}'", name_)));
}

Status DistributedSemaphore::renew(const SemaphorePermit& permit) {
  if (auto s = validate_name(name_); !s) return s;
  auto lease = kv::lease_keepalive(store_, permit.lease_id);
  if (!lease) {
    if (lease.error().code() != ErrorCode::kLeaseNotFound) return std::unexpected(lease.error());
    return make_error(ErrorCode::kNotFound,
                      fmt::format("holder '{}' lost its permits of semaphore '{}': the TTL lapsed", permit.holder, name_));
  }
  return {};
}

Result<uint64_t> DistributedSemaphore::available() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  std::string key;
  uint64_t mod_revision = 0;
  auto st = read_state(&key, &mod_revision);
  if (!st) return std::unexpected(st.error());
  if (!st->has_value()) return permits_;
  auto live = live_holder_ids(store_, key, limits::kMaxSemaphoreHolders + limits::kMaxSemaphoreWaiters);
  if (!live) return std::unexpected(live.error());
  prune_holders((*st)->holders, *live);
  return permits_ - std::min(permits_, semaphore_in_use(**st));
}

}  // namespace aspen::coord
