#include "coord/waiter_queue.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"
#include "kv/commands.h"

namespace aspen::coord {

namespace {

Turn held() {
  Turn t;
  t.is_held = true;
  return t;
}

Turn wait_for(Turn::Wait wait, size_t watch, bool is_only_obstacle) {
  Turn t;
  t.wait = wait;
  t.watch = watch;
  t.is_only_obstacle = is_only_obstacle;
  return t;
}

}  // namespace

Turn lock_turn(size_t index) {
  if (index == 0) return held();
  return wait_for(Turn::Wait::kDeletion, index - 1, index == 1);
}

Turn rwlock_turn(const std::vector<bool>& is_writer, size_t index) {
  ASPEN_ASSERT(index < is_writer.size());
  if (is_writer[index]) return lock_turn(index);
  // The last writer ahead is the one that must go before this reader; any earlier writer
  // goes before it (it holds only when first), so its deletion is the event to wait for.
  size_t writers_ahead = 0;
  size_t last_writer = 0;
  for (size_t i = 0; i < index; ++i) {
    if (is_writer[i]) {
      ++writers_ahead;
      last_writer = i;
    }
  }
  if (writers_ahead == 0) return held();
  return wait_for(Turn::Wait::kDeletion, last_writer, writers_ahead == 1);
}

Turn semaphore_turn(const std::vector<uint64_t>& counts, uint64_t permits, size_t index) {
  ASPEN_ASSERT(index < counts.size());
  // Holders are the longest prefix whose counts fit: prefix sums only grow with the index, so
  // whoever fits has everyone ahead of it fitting too (nobody overtakes).
  uint64_t sum = 0;
  size_t first_waiting = counts.size();
  for (size_t i = 0; i <= index; ++i) {
    sum += counts[i];
    if (sum > permits) {
      first_waiting = i;
      break;
    }
  }
  if (first_waiting > index) return held();
  // The first waiter is let in by whichever holder releases first: it alone watches the queue.
  // Everyone behind it can move up only after the one just ahead of it does.
  if (first_waiting == index) return wait_for(Turn::Wait::kAnyChangeAhead, 0, false);
  return wait_for(Turn::Wait::kSignal, index - 1, false);
}

std::string WaiterQueue::prefix() const { return coord_key(config_.kind, name_) + ":"; }

std::string WaiterQueue::key_of(uint64_t lease_id, std::string_view holder) const {
  return prefix() + fmt::format("{:016x}/{}", lease_id, holder);
}

std::string WaiterQueue::signal_key_of(uint64_t lease_id, std::string_view holder) const {
  // A kind of its own ("<kind>-sig"), so reads of the queue never see signal keys.
  return coord_key(fmt::format("{}-sig", config_.kind), name_) + ":" + fmt::format("{:016x}/{}", lease_id, holder);
}

Error WaiterQueue::too_many() const {
  return Error(ErrorCode::kUnavailable,
               fmt::format("{} '{}' has more than {} holders and waiters", config_.what, name_, config_.max_waiters));
}

Result<QueueView> WaiterQueue::read() {
  auto page = kv::scan_prefix(store_, prefix(), static_cast<uint32_t>(config_.max_waiters));
  if (!page) return std::unexpected(page.error());
  return view_of(*page, page->revision());
}

Result<QueueView> WaiterQueue::read_at(kv::ChangeNotifier* notifier, uint64_t revision) {
  if (notifier == nullptr || revision == 0) return read();
  // The same range the joining write scans.
  auto page = notifier->range_at(op_scan_prefix(prefix(), static_cast<uint32_t>(config_.max_waiters)).range(), revision);
  if (!page) return read();
  return view_of(*page, page->revision());
}

Result<QueueView> WaiterQueue::view_of(const kvpb::RangeResult& page, uint64_t revision) const {
  QueueView view;
  view.revision = revision;
  view.is_complete = !page.has_more();
  view.waiters.reserve(static_cast<size_t>(page.kvs_size()));
  for (const auto& kv : page.kvs()) {
    auto o = decode_owner(kv);
    if (!o) return std::unexpected(o.error());
    view.waiters.push_back(std::move(*o));
  }
  std::sort(view.waiters.begin(), view.waiters.end(),
            [](const Owner& a, const Owner& b) { return a.fencing_token < b.fencing_token; });
  return view;
}

Result<std::optional<size_t>> WaiterQueue::index_of(const QueueView& view, const Owner& me) const {
  std::optional<size_t> index;
  for (size_t i = 0; i < view.waiters.size(); ++i) {
    const Owner& w = view.waiters[i];
    if (w.fencing_token == me.fencing_token) {
      index = i;
    } else if (w.holder == me.holder) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{} '{}' is already held or awaited by holder '{}' (fencing token {}); one "
                                    "holder id takes a {} once",
                                    config_.what, name_, me.holder, w.fencing_token, config_.what));
    }
  }
  return index;
}

Result<WaiterQueue::Queued> WaiterQueue::enqueue(std::string_view holder, const std::string& value,
                                                 uint64_t ttl_ms, uint64_t* lease_id) {
  if (session_ != nullptr) {
    *lease_id = session_->lease_id();
  } else if (*lease_id == 0) {
    auto lease = kv::lease_grant(store_, ttl_ms);
    if (!lease) return std::unexpected(lease.error());
    *lease_id = lease->id();
  }
  Owner me{std::string(holder), value, *lease_id, 0};
  const std::string key = key_of(*lease_id, holder);
  // One write: the waiter key, and with it (same lease) the signal key the waiter behind may
  // wait on.
  TxnSpec spec;
  spec.compares.push_back(cmp_version(key, 0));
  spec.success.push_back(op_put(key, encode_owner(me), *lease_id));
  if (config_.has_signal_keys) spec.success.push_back(op_put(signal_key_of(*lease_id, holder), "", *lease_id));
  // The queue as this write leaves it, so the waiter knows its place without a second round.
  const int scan_index = static_cast<int>(spec.success.size());
  spec.success.push_back(op_scan_prefix(prefix(), static_cast<uint32_t>(config_.max_waiters)));
  auto r = run_txn(store_, std::move(spec));
  if (!r) return std::unexpected(r.error());
  if (!r->succeeded()) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("{} '{}': lease {} already queues a waiter", config_.what, name_, *lease_id));
  }
  me.fencing_token = r->revision();  // == the key's create_revision
  if (scan_index >= r->responses_size() || !r->responses(scan_index).has_range()) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("{} '{}': the joining write did not return the queue", config_.what, name_));
  }
  // The scan ran in the same command, so it shows the store at the command's revision.
  auto view = view_of(r->responses(scan_index).range(), r->revision());
  if (!view) return std::unexpected(view.error());
  return Queued{std::move(me), std::move(*view)};
}

void WaiterQueue::on_held(const QueueView& view, size_t index, const Owner& me) {
  // Only a waiter that has someone behind it can have a follower waiting on its signal: a
  // waiter that joined after this read sees us holding and never waits on us. Best effort:
  // a follower that misses it reads again after its bounded wait.
  if (config_.has_signal_keys && index + 1 < view.waiters.size()) {
    (void)kv::del(store_, signal_key_of(me.lease_id, me.holder));
  }
}

void WaiterQueue::leave(const Owner& me) {
  // Best effort: a waiter that cannot clean up leaves a key its lease removes at its TTL.
  const bool is_own_lease = session_ == nullptr;
  if (!release(me.holder, me.fencing_token, me.lease_id, !is_own_lease) && is_own_lease) {
    (void)kv::lease_revoke(store_, me.lease_id);
  }
}

Result<std::optional<Owner>> WaiterQueue::try_acquire(std::string_view holder, std::string value, uint64_t ttl_ms,
                                                      const Decide& decide) {
  uint64_t lease_id = 0;
  auto queued = enqueue(holder, value, ttl_ms, &lease_id);
  if (!queued) {
    if (lease_id != 0 && session_ == nullptr) (void)kv::lease_revoke(store_, lease_id);
    return std::unexpected(queued.error());
  }
  const Owner* me = &queued->me;
  auto outcome = [&]() -> Result<std::optional<Owner>> {
    const QueueView* view = &queued->view;
    if (!view->is_complete) return std::unexpected(too_many());
    auto index = index_of(*view, *me);
    if (!index) return std::unexpected(index.error());
    if (!*index) return std::optional<Owner>{};  // the lease ended already
    auto turn = decide(*view, **index);
    if (!turn) return std::unexpected(turn.error());
    if (!turn->is_held) return std::optional<Owner>{};
    on_held(*view, **index, *me);
    return std::optional<Owner>(*me);
  }();
  if (!outcome || !outcome->has_value()) leave(*me);
  return outcome;
}

Result<Owner> WaiterQueue::acquire_until(std::string_view holder, std::string value, uint64_t ttl_ms,
                                         uint64_t deadline_ms, const Waiter& waiter, const Decide& decide) {
  auto* notifier = dynamic_cast<kv::ChangeNotifier*>(&store_);
  const std::string what = fmt::format("{} '{}'", config_.what, name_);
  uint64_t lease_id = 0;
  std::optional<Owner> me;
  bool is_just_queued = false;
  uint64_t renewed_at_ms = 0;
  uint64_t random = waiter.jitter_seed;
  // Open only while this waiter is the one that watches the whole queue (kAnyChangeAhead).
  std::unique_ptr<kv::ChangeWaiter> changes;
  auto fail = [&](Error e) -> Result<Owner> {
    if (me) {
      leave(*me);
    } else if (lease_id != 0 && session_ == nullptr) {
      (void)kv::lease_revoke(store_, lease_id);
    }
    return std::unexpected(std::move(e));
  };
  // The revision at which the last wait saw what it waited for (0: none), and the queue as of
  // it when the wait brought it along.
  uint64_t seen_revision = 0;
  std::optional<kvpb::RangeResult> seen_queue;
  const kvpb::RangeRequest queue_range = op_scan_prefix(prefix(), static_cast<uint32_t>(config_.max_waiters)).range();
  for (uint32_t round = 0; round < limits::kMaxCoordWaitAttempts; ++round) {
    // Just after joining, the joining write's own view of the queue; after a wait that saw
    // its deletion, the queue as of that deletion; else a linearizable read.
    std::optional<QueueView> joined_view;
    if (!me) {
      auto queued = enqueue(holder, value, ttl_ms, &lease_id);
      if (!queued) {
        // The lease ran out between grant and claim: a fresh one (a session's is final).
        if (queued.error().code() != ErrorCode::kLeaseNotFound || session_ != nullptr) return fail(queued.error());
        lease_id = 0;
        continue;
      }
      me = std::move(queued->me);
      joined_view = std::move(queued->view);
      is_just_queued = true;
      renewed_at_ms = waiter.now_ms();
    }
    auto view = joined_view  ? Result<QueueView>(std::move(*joined_view))
                : seen_queue ? view_of(*seen_queue, seen_queue->revision())
                             : read_at(notifier, seen_revision);
    seen_revision = 0;
    seen_queue.reset();
    if (!view) return fail(view.error());
    // A waiter already in line that finds the queue over its limit for a moment (others
    // joining only to leave again) keeps its place and polls; a newcomer is refused.
    if (!view->is_complete && is_just_queued) return fail(too_many());
    is_just_queued = false;
    std::optional<Turn> turn;
    if (view->is_complete) {
      auto index = index_of(*view, *me);
      if (!index) return fail(index.error());
      if (!*index) {
        // Our lease expired while we waited (its key went with it): queue again, at the back.
        if (session_ != nullptr) {
          return fail(Error(ErrorCode::kLeaseNotFound, fmt::format("{}: the session's lease ended", what)));
        }
        me.reset();
        lease_id = 0;
        continue;
      }
      auto t = decide(*view, **index);
      if (!t) return fail(t.error());
      if (t->is_held) {
        on_held(*view, **index, *me);
        return *me;
      }
      turn = *t;
    }
    const uint64_t now = waiter.now_ms();
    if (now >= deadline_ms) {
      return fail(Error(ErrorCode::kTimeout, fmt::format("acquire {}: deadline passed before it succeeded", what)));
    }
    // Keep our place: the lease must outlive the wait (a session renews its own).
    if (session_ == nullptr && now >= renewed_at_ms + ttl_ms / 3) {
      if (auto k = kv::lease_keepalive(store_, lease_id); !k) {
        if (k.error().code() != ErrorCode::kLeaseNotFound) return fail(k.error());
        me.reset();
        lease_id = 0;
        continue;
      }
      renewed_at_ms = now;
    }
    const uint64_t lease_ttl_ms = session_ != nullptr ? session_->ttl_ms() : ttl_ms;
    const uint64_t wait_ms = std::min(deadline_ms - now, std::max<uint64_t>(1, lease_ttl_ms / 3));
    if (notifier == nullptr || !turn) {
      random = random * 6364136223846793005ULL + 1442695040888963407ULL;  // LCG step for jitter
      waiter.sleep_ms(std::min(backoff_ms(round, random >> 11), wait_ms));
      continue;
    }
    if (turn->wait != Turn::Wait::kAnyChangeAhead) changes.reset();
    switch (turn->wait) {
      case Turn::Wait::kDeletion: {
        const Owner& ahead = view->waiters[turn->watch];
        // The only obstacle going lets us in: keys created later queue behind ours and earlier
        // ones cannot appear, so no read is needed. Our own key is still there: its lease was
        // kept alive for longer than this wait. (Not with signal keys: the follower needs
        // on_held.) Otherwise the queue comes back with the deletion, as of its revision.
        const bool is_turn_on_deletion = turn->is_only_obstacle && !config_.has_signal_keys;
        auto gone = notifier->wait_for_delete_then_read(key_of(ahead.lease_id, ahead.holder), view->revision,
                                                        is_turn_on_deletion ? nullptr : &queue_range, wait_ms);
        if (!gone) return fail(gone.error());
        if (gone->revision != 0 && is_turn_on_deletion) return *me;
        seen_revision = gone->revision;
        seen_queue = std::move(gone->read);
        break;
      }
      case Turn::Wait::kSignal: {
        const Owner& ahead = view->waiters[turn->watch];
        auto signalled = notifier->wait_for_delete_then_read(signal_key_of(ahead.lease_id, ahead.holder),
                                                             view->revision, &queue_range, wait_ms);
        if (!signalled) return fail(signalled.error());
        seen_revision = signalled->revision;
        seen_queue = std::move(signalled->read);
        break;
      }
      case Turn::Wait::kAnyChangeAhead: {
        if (!changes) {
          // Opened after the read: read again before waiting, so a release between the two
          // is not missed.
          auto w = notifier->watch_range(prefix(), prefix_end(prefix()));
          if (!w) return fail(w.error());
          changes = std::move(*w);
          continue;
        }
        auto changed = changes->wait(wait_ms);
        if (!changed) return fail(changed.error());
        break;
      }
      case Turn::Wait::kNone:
        ASPEN_ASSERT(false);
    }
  }
  return fail(Error(ErrorCode::kTimeout, fmt::format("acquire {}: too many rounds", what)));
}

Result<uint64_t> WaiterQueue::token_of(std::string_view holder, uint64_t fencing_token, uint64_t lease_id) {
  if (fencing_token != 0) return fencing_token;
  auto kv = kv::get(store_, key_of(lease_id, holder));
  if (!kv) return std::unexpected(kv.error());
  if (!kv->has_value()) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("{} '{}' is not held by '{}' with lease {} (lease expired?)", config_.what, name_,
                                  holder, lease_id));
  }
  return (*kv)->create_revision();
}

Status WaiterQueue::release(std::string_view holder, uint64_t token, uint64_t lease_id, bool is_in_session) {
  auto fencing_token = token_of(holder, token, lease_id);
  if (!fencing_token) {
    if (!is_in_session) (void)kv::lease_revoke(store_, lease_id);
    return std::unexpected(fencing_token.error());
  }
  const std::string key = key_of(lease_id, holder);
  kvpb::Compare c;
  c.set_key(key);
  c.set_target(kvpb::Compare::TARGET_CREATE_REVISION);
  c.set_op(kvpb::Compare::OP_EQUAL);
  c.set_number(*fencing_token);
  TxnSpec spec;
  spec.compares.push_back(std::move(c));
  spec.success.push_back(op_delete(key));
  // The signal goes with the key: a follower waiting on it is let go in the same write.
  if (config_.has_signal_keys) spec.success.push_back(op_delete(signal_key_of(lease_id, holder)));
  auto r = run_txn(store_, std::move(spec));
  if (!r) return std::unexpected(r.error());
  // An own lease only ever carried this key; revoking it is cleanup and may find it gone.
  if (!is_in_session) {
    auto revoked = kv::lease_revoke(store_, lease_id);
    if (!revoked && revoked.error().code() != ErrorCode::kLeaseNotFound) return revoked;
  }
  if (!r->succeeded()) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("{} '{}' is not held with fencing token {} (lease expired or taken over)",
                                  config_.what, name_, *fencing_token));
  }
  return {};
}

Status WaiterQueue::renew(std::string_view holder, uint64_t token, uint64_t lease_id) {
  auto fencing_token = token_of(holder, token, lease_id);
  if (!fencing_token) return std::unexpected(fencing_token.error());
  return renew_owned_key(store_, key_of(lease_id, holder), *fencing_token, lease_id,
                         fmt::format("{} '{}'", config_.what, name_));
}

}  // namespace aspen::coord
