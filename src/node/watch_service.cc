#include "node/watch_service.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/log.h"

namespace aspen::node::internal {

namespace {

// History entries one read takes for a cursor; with kMaxWatchResponseBytes, a round's cost.
constexpr size_t kEntriesPerRead = 1024;

cpb::Response wrap(cpb::WatchResponse w) {
  cpb::Response r;
  *r.mutable_watch() = std::move(w);
  return r;
}

// Adds entries[i] to the watch's batch, with its previous version when the watch asked for it.
void add_event(watch::WatchBatcher& batch, const watch::WatchSpec& spec, std::span<const kvpb::HistoryEntry> entries,
               size_t i, const std::vector<std::optional<kvpb::KeyValue>>* prev) {
  std::optional<kvpb::KeyValue> before;
  if (spec.has_prev_kv && prev != nullptr && i < prev->size()) before = (*prev)[i];
  batch.add(entries[i].revision(), watch::to_event(entries[i], before, spec.has_prev_kv),
            entries[i].record().timestamp_ms());
}

// A one-shot watch's then_read, from the store at `revision`.
Result<kvpb::RangeResult> read_then_at(const watch::WatchSpec& spec, const storage::Store& store, Index revision) {
  kvpb::RangeRequest at = *spec.then_read;
  at.set_revision(revision);
  return store.range(at);
}

// A one-shot watch's events: those it wants of the revision of entries[first], which it wants.
// Whole when a later revision follows them here or the last one is complete; otherwise none
// (the answer carries the revision alone).
std::vector<cpb::WatchResponse> once_events(const watch::WatchSpec& spec, std::span<const kvpb::HistoryEntry> entries,
                                            size_t first, const std::vector<std::optional<kvpb::KeyValue>>* prev,
                                            bool is_revision_complete) {
  const Index revision = entries[first].revision();
  watch::WatchBatcher batch;
  size_t i = first;
  for (; i < entries.size() && entries[i].revision() == revision; ++i) {
    if (watch::wants(spec, entries[i])) add_event(batch, spec, entries, i, prev);
  }
  auto events = batch.take(true);
  if (i == entries.size() && !is_revision_complete) events.clear();
  return events;
}

}  // namespace

void WatchService::create(transport::Stream stream, const cpb::WatchCreateRequest& req) {
  auto refuse = [&](const Error& e) {
    (void)stream.send_async_owned(error_reply(env_, nullptr, e).SerializeAsString());
    stream.finish();
  };
  auto spec = watch::make_watch_spec(req);
  if (!spec) return refuse(spec.error());
  if (watchers_.size() >= limits::kMaxWatchers) {
    return refuse(Error(ErrorCode::kUnavailable, fmt::format("this node already serves {} watches (the limit); "
                                                             "watch through another member or cancel some",
                                                             limits::kMaxWatchers)));
  }
  auto now = env_.store->read_history(UINT64_MAX, 0, 0, 0, false);  // the revisions only
  if (!now) return refuse(now.error());
  store_revision_ = now->revision;
  store_index_ = now->applied;
  Watcher w{stream, *spec};
  w.next_revision = spec->start_revision == 0 ? now->revision + 1 : spec->start_revision;
  if (w.next_revision < now->compacted) {
    (void)stream.send_async_owned(
        wrap(watch::canceled_response(fmt::format("revision {} was compacted: the oldest revision a watch can start "
                                                  "from is {} (read the keys, then watch from the revision the read "
                                                  "returned + 1)",
                                                  w.next_revision, now->compacted),
                                      now->compacted))
            .SerializeAsString());
    stream.finish();
    return;
  }
  w.sent_through = w.next_revision - 1;
  w.last_sent_ms = NodeEnv::steady_ms();
  if (spec->is_once) w.once_deadline_ms = w.last_sent_ms + spec->once_timeout_ms;
  const StreamKey key = key_of(stream);
  auto [it, is_new] = watchers_.emplace(key, std::move(w));
  if (!is_new) return;
  // A one-shot watch gets one message, its answer.
  if (!it->second.spec.is_once && !send(it->second, watch::created_response(now->revision))) return;
  env_.counters.watches_created.fetch_add(1, std::memory_order_relaxed);
  if (it->second.next_revision <= store_revision_) serve_round();
}

bool WatchService::is_watch(const transport::Stream& stream) const { return watchers_.contains(key_of(stream)); }

void WatchService::on_request(const transport::Stream& stream, const cpb::Request& req) {
  auto it = watchers_.find(key_of(stream));
  if (it == watchers_.end()) return;
  if (req.op_case() != cpb::Request::kWatchProgress) {
    return cancel(it->first, "only watch_progress may follow watch_create on a watch's stream");
  }
  Watcher& w = it->second;
  if (w.spec.is_once) return cancel(it->first, "a one-shot watch (is_once) takes no further requests");
  if (w.next_revision > store_revision_) {
    send(w, watch::progress_response(w.sent_through));
  } else {
    w.wants_progress = true;  // answered once it has caught up
  }
}

void WatchService::on_stream_closed(const transport::Stream& stream, bool is_finished) {
  auto it = watchers_.find(key_of(stream));
  if (it == watchers_.end() || (is_finished && it->second.spec.is_once)) return;
  watchers_.erase(it);
}

size_t WatchService::unacked_bytes() const {
  size_t total = 0;
  for (const auto& [key, w] : watchers_) total += w.stream.unacked_bytes();
  return total;
}

bool WatchService::send(Watcher& w, cpb::WatchResponse resp) {
  const bool is_events = resp.events_size() > 0;
  if (auto s = w.stream.send_async_owned(wrap(std::move(resp)).SerializeAsString()); !s) {
    ASPEN_LOG_DEBUG("node {}: a watch stream failed: {}", env_.config.node_id, s.error().to_string());
    w.stream.reset();
    watchers_.erase(key_of(w.stream));
    return false;
  }
  if (is_events) env_.counters.watch_messages_sent.fetch_add(1, std::memory_order_relaxed);
  w.last_sent_ms = NodeEnv::steady_ms();
  return true;
}

void WatchService::cancel(const StreamKey& key, std::string reason, Index compact_revision) {
  auto it = watchers_.find(key);
  if (it == watchers_.end()) return;
  transport::Stream stream = it->second.stream;
  watchers_.erase(it);
  env_.counters.watches_canceled.fetch_add(1, std::memory_order_relaxed);
  (void)stream.send_async_owned(wrap(watch::canceled_response(std::move(reason), compact_revision)).SerializeAsString());
  stream.finish();
}

void WatchService::answer_once(const StreamKey& key, cpb::WatchResponse answer) {
  auto it = watchers_.find(key);
  ASPEN_ASSERT(it != watchers_.end() && it->second.spec.is_once);
  transport::Stream stream = it->second.stream;
  watchers_.erase(it);
  if (auto s = stream.send_async_owned(wrap(std::move(answer)).SerializeAsString()); !s) {
    ASPEN_LOG_DEBUG("node {}: a one-shot watch's answer failed: {}", env_.config.node_id, s.error().to_string());
    stream.reset();
    return;
  }
  env_.counters.watch_once_answers.fetch_add(1, std::memory_order_relaxed);
  stream.finish();
}

std::optional<size_t> WatchService::answer_once_from(Watcher& w, std::span<const kvpb::HistoryEntry> entries,
                                                     const std::vector<std::optional<kvpb::KeyValue>>* prev,
                                                     bool is_revision_complete) {
  auto first = std::find_if(entries.begin(), entries.end(),
                            [&](const kvpb::HistoryEntry& e) { return watch::wants(w.spec, e); });
  if (first == entries.end()) return 0;
  const Index revision = first->revision();
  cpb::WatchResponse answer = watch::once_answer(
      revision, once_events(w.spec, entries, static_cast<size_t>(first - entries.begin()), prev, is_revision_complete));
  if (w.spec.then_read) {
    // Called once the store has applied `revision` (the early path answers these itself).
    if (auto page = read_then_at(w.spec, *env_.store, revision)) {
      *answer.mutable_read() = std::move(*page);
    } else {
      ASPEN_LOG_DEBUG("node {}: a one-shot watch's read at revision {} failed ({}); answered without it",
                      env_.config.node_id, revision, page.error().to_string());
    }
  }
  answer_once(key_of(w.stream), std::move(answer));
  return std::nullopt;  // the watcher is gone
}

bool WatchService::answer_once_early(Watcher& w, const std::vector<kvpb::HistoryEntry>& entries) {
  ASPEN_ASSERT(w.spec.is_once && w.spec.then_read && !entries.empty());
  const Index last = entries.back().revision();
  auto first = std::find_if(entries.begin(), entries.end(), [&](const kvpb::HistoryEntry& e) {
    return e.revision() >= w.next_revision && watch::wants(w.spec, e);
  });
  if (first == entries.end()) {
    // Nothing it waits for among these: it has looked at them.
    w.next_revision = last + 1;
    w.next_position = 0;
    w.sent_through = std::max(w.sent_through, last);
    return false;
  }
  const Index revision = first->revision();
  std::optional<kvpb::RangeResult> read;
  if (auto now = env_.store->range(*w.spec.then_read)) {
    if (now->revision() < entries.front().revision()) {
      // The store holds everything before these changes and none of them (it commits an
      // apply's changes at once): the range as of `revision` is its range with them laid over.
      read = watch::range_with_changes(*w.spec.then_read, *now, entries, revision);
    } else {
      // The store committed them meanwhile: read it at the revision.
      if (auto exact = read_then_at(w.spec, *env_.store, revision)) read = std::move(*exact);
    }
  }
  if (!read) return false;  // answered from the store once it has them (serve_round)
  cpb::WatchResponse answer = watch::once_answer(
      revision, once_events(w.spec, entries, static_cast<size_t>(first - entries.begin()), nullptr, true));
  *answer.mutable_read() = std::move(*read);
  env_.counters.watch_messages_sent_early.fetch_add(1, std::memory_order_relaxed);
  answer_once(key_of(w.stream), std::move(answer));
  return true;
}

std::optional<size_t> WatchService::send_entries(Watcher& w, std::span<const kvpb::HistoryEntry> entries,
                                                const std::vector<std::optional<kvpb::KeyValue>>* prev,
                                                bool is_revision_complete) {
  if (w.spec.is_once) return answer_once_from(w, entries, prev, is_revision_complete);
  watch::WatchBatcher batch;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (watch::wants(w.spec, entries[i])) add_event(batch, w.spec, entries, i, prev);
  }
  size_t sent = 0;
  for (auto& msg : batch.take(is_revision_complete)) {
    if (!send(w, std::move(msg))) return std::nullopt;
    ++sent;
  }
  return sent;
}

bool WatchService::is_held_back(Watcher& w, uint64_t now_ms, bool is_over_total) {
  return is_paused(w, now_ms) || (is_over_total && w.stream.unacked_bytes() > 0);
}

bool WatchService::is_paused(Watcher& w, uint64_t now_ms) {
  if (w.stream.unacked_bytes() < limits::kMaxWatchUnackedBytes) {
    w.paused_since_ms = 0;
    return false;
  }
  if (w.paused_since_ms == 0) w.paused_since_ms = now_ms;
  return true;
}

void WatchService::on_applied() {
  if (watchers_.empty()) return;
  auto now = env_.store->read_history(UINT64_MAX, 0, 0, 0, false);
  if (!now) return;
  store_index_ = now->applied;
  if (now->revision == store_revision_) return;
  store_revision_ = now->revision;
  serve_round();
}

void WatchService::on_committed_changes(Index after_index, const std::vector<kvpb::HistoryEntry>& entries) {
  if (watchers_.empty() || entries.empty()) return;
  // A watcher that has every change up to the store revision has every change before these
  // only if the store, as last read, had applied everything up to after_index.
  if (store_index_ < after_index) return;
  const Index last = entries.back().revision();
  ASPEN_ASSERT(entries.front().revision() > after_index && entries.front().revision() <= last);
  const uint64_t now_ms = NodeEnv::steady_ms();
  const bool is_over_total = unacked_bytes() >= limits::kMaxWatchTotalUnackedBytes;
  std::vector<StreamKey> keys;
  for (auto& [key, w] : watchers_) {
    if (w.next_revision <= store_revision_ || w.next_position != 0 || w.spec.has_prev_kv) continue;
    if (w.next_revision > last || is_held_back(w, now_ms, is_over_total)) continue;
    keys.push_back(key);
  }
  for (const auto& k : keys) {
    auto it = watchers_.find(k);
    if (it == watchers_.end()) continue;
    Watcher& w = it->second;
    if (w.spec.then_read) {
      (void)answer_once_early(w, entries);
      continue;
    }
    // Those it has not had (a watch may start at a revision inside these).
    auto first = std::find_if(entries.begin(), entries.end(),
                              [&](const kvpb::HistoryEntry& e) { return e.revision() >= w.next_revision; });
    auto sent = send_entries(w, std::span(first, entries.end()), nullptr, true);
    if (!sent) continue;
    env_.counters.watch_messages_sent_early.fetch_add(*sent, std::memory_order_relaxed);
    w.next_revision = last + 1;
    w.next_position = 0;
    w.sent_through = std::max(w.sent_through, last);
  }
}

void WatchService::serve_round() {
  const uint64_t now_ms = NodeEnv::steady_ms();
  const bool is_over_total = unacked_bytes() >= limits::kMaxWatchTotalUnackedBytes;
  if (is_over_total) ASPEN_LOG_DEBUG("node {}: watch traffic at its total bound; slow watchers wait", env_.config.node_id);
  // Watchers behind the store revision, grouped by cursor: each group is one read.
  std::map<std::pair<Index, uint32_t>, std::vector<StreamKey>> groups;
  for (auto& [key, w] : watchers_) {
    if (w.next_revision > store_revision_ || is_held_back(w, now_ms, is_over_total)) continue;
    groups[{w.next_revision, w.next_position}].push_back(key);
  }
  bool is_more = false;
  for (const auto& [cursor, keys] : groups) {
    bool with_prev = false;
    for (const auto& k : keys) with_prev = with_prev || watchers_.at(k).spec.has_prev_kv;
    auto page = env_.store->read_history(cursor.first, cursor.second, kEntriesPerRead, limits::kMaxWatchResponseBytes,
                                         with_prev);
    if (!page) {
      ASPEN_LOG_WARN("node {}: watches could not read the history: {}", env_.config.node_id, page.error().to_string());
      return;
    }
    if (cursor.first < page->compacted) {
      for (const auto& k : keys) {
        cancel(k,
               fmt::format("the watch fell behind the history: revision {} was compacted (the oldest left is {}); "
                           "re-read the keys and watch again",
                           cursor.first, page->compacted),
               page->compacted);
      }
      continue;
    }
    const auto& entries = page->entries;
    // A page cut short may end inside a revision: its entries wait for the next read, so a
    // revision goes out in one message, unless it alone fills the page (then in fragments).
    size_t end = entries.size();
    bool is_revision_complete = true;
    const bool is_exhausted = entries.size() < kEntriesPerRead && [&] {
      size_t bytes = 0;
      for (const auto& e : entries) bytes += e.record().kv().key().size() + e.record().kv().value().size();
      return bytes <= limits::kMaxWatchResponseBytes;
    }();
    if (!is_exhausted && !entries.empty()) {
      const Index last = entries.back().revision();
      size_t first_of_last = end;
      while (first_of_last > 0 && entries[first_of_last - 1].revision() == last) --first_of_last;
      if (first_of_last > 0) {
        end = first_of_last;
      } else {
        is_revision_complete = false;  // one revision larger than a page: fragments
      }
    }
    std::pair<Index, uint32_t> next = cursor;
    Index through = 0;
    if (is_exhausted) {
      next = {page->revision + 1, 0};
      through = page->revision;
    } else {
      is_more = true;
      if (end < entries.size()) {
        next = {entries[end].revision(), entries[end].position()};
        through = entries[end].revision() - 1;
      } else {
        next = {entries.back().revision(), entries.back().position() + 1};
        through = entries.back().revision() - 1;
      }
    }
    for (const auto& k : keys) {
      auto it = watchers_.find(k);
      if (it == watchers_.end()) continue;
      Watcher& w = it->second;
      if (!send_entries(w, std::span(entries).first(end), &page->prev, is_revision_complete)) continue;
      w.next_revision = next.first;
      w.next_position = next.second;
      w.sent_through = std::max(w.sent_through, through);
      if (w.wants_progress && w.next_revision > store_revision_) {
        w.wants_progress = false;
        if (!send(w, watch::progress_response(w.sent_through))) continue;
      }
    }
  }
  if (is_more && !is_round_scheduled_) {
    // Lagging watchers catch up a page per loop task, so the loop keeps serving others.
    is_round_scheduled_ = true;
    env_.endpoint->post([self = weak_from_this()] {
      auto s = self.lock();
      if (!s) return;
      s->is_round_scheduled_ = false;
      s->serve_round();
    });
  }
}

void WatchService::on_tick() {
  if (watchers_.empty()) return;
  const uint64_t now_ms = NodeEnv::steady_ms();
  std::vector<StreamKey> stalled;
  std::vector<StreamKey> once_expired;
  bool has_resumable = false;
  for (auto& [key, w] : watchers_) {
    if (w.spec.is_once && now_ms >= w.once_deadline_ms) {
      once_expired.push_back(key);
      continue;
    }
    const bool was_paused = w.paused_since_ms != 0;
    if (is_paused(w, now_ms)) {
      if (now_ms >= w.paused_since_ms + env_.config.knobs.watch_stall_cancel_ms) stalled.push_back(key);
      continue;
    }
    if (was_paused || w.next_revision <= store_revision_) {
      has_resumable = true;
      continue;
    }
    if (!w.spec.is_once && now_ms >= w.last_sent_ms + w.spec.progress_interval_ms) {
      if (!send(w, watch::progress_response(w.sent_through))) break;  // the map changed: next tick
    }
  }
  for (const auto& k : once_expired) {
    // Nothing it waits for happened: say through which revision changes were looked at.
    auto it = watchers_.find(k);
    if (it != watchers_.end()) answer_once(k, watch::once_timed_out_answer(it->second.sent_through));
  }
  for (const auto& k : stalled) {
    cancel(k, fmt::format("the watcher did not read its events: {} bytes stayed unacknowledged for {} ms "
                          "(knob watch_stall_cancel_ms); watch again from the last revision received + 1",
                          limits::kMaxWatchUnackedBytes, env_.config.knobs.watch_stall_cancel_ms));
  }
  if (has_resumable) serve_round();
}

}  // namespace aspen::node::internal
