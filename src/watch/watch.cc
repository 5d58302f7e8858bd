#include "watch/watch.h"

#include <map>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/encoding.h"
#include "core/limits.h"
#include "kv/commands.h"

namespace aspen::watch {

Result<WatchSpec> make_watch_spec(const cpb::WatchCreateRequest& req) {
  WatchSpec spec;
  const int ends = (req.is_prefix() ? 1 : 0) + (req.is_to_end() ? 1 : 0) + (req.end().empty() ? 0 : 1);
  if (ends > 1) {
    return make_error(ErrorCode::kInvalidArgument, "a watch takes one of: an end key, is_prefix or is_to_end");
  }
  if (req.start().empty() && !req.is_prefix() && !req.is_to_end()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a watch needs a key (or a prefix; the empty prefix watches every key)");
  }
  if (!req.start().empty()) {
    if (auto s = kv::validate_key(req.start()); !s) return std::unexpected(s.error());
  }
  if (!req.end().empty()) {
    if (req.end().size() > limits::kMaxKeySizeBytes) {
      return make_error(ErrorCode::kKeyTooLarge,
                        fmt::format("the watch's end key is {} bytes; the limit is {}", req.end().size(),
                                    limits::kMaxKeySizeBytes));
    }
    if (req.end() <= req.start()) {
      return make_error(ErrorCode::kInvalidArgument, "the watch's end key must come after its start key");
    }
  }
  if (req.is_no_put() && req.is_no_delete()) {
    return make_error(ErrorCode::kInvalidArgument, "a watch that leaves out both puts and deletes would report nothing");
  }
  if (req.progress_interval_ms() != 0 && req.progress_interval_ms() < limits::kMinWatchProgressIntervalMs) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("progress_interval_ms must be at least {}, got {}",
                                                               limits::kMinWatchProgressIntervalMs,
                                                               req.progress_interval_ms()));
  }
  spec.start = req.start();
  if (req.is_prefix()) {
    spec.end = prefix_end(req.start());
  } else if (req.is_to_end()) {
    spec.end.clear();
  } else if (!req.end().empty()) {
    spec.end = req.end();
  } else {
    spec.end = req.start() + '\0';  // one key
  }
  spec.is_no_put = req.is_no_put();
  spec.is_no_delete = req.is_no_delete();
  spec.has_prev_kv = req.has_prev_kv();
  spec.start_revision = req.start_revision();
  spec.progress_interval_ms =
      req.progress_interval_ms() == 0 ? limits::kDefaultWatchProgressIntervalMs : req.progress_interval_ms();
  if (!req.is_once() && (req.once_timeout_ms() != 0 || req.has_then_read())) {
    return make_error(ErrorCode::kInvalidArgument, "once_timeout_ms and then_read belong to a one-shot watch (is_once)");
  }
  if (req.is_once()) {
    if (req.once_timeout_ms() == 0 || req.once_timeout_ms() > limits::kMaxWatchOnceTimeoutMs) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("a one-shot watch's once_timeout_ms must be 1 to {}, got {}",
                                    limits::kMaxWatchOnceTimeoutMs, req.once_timeout_ms()));
    }
    spec.is_once = true;
    spec.once_timeout_ms = req.once_timeout_ms();
  }
  if (req.has_then_read()) {
    if (req.then_read().revision() != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "a one-shot watch's then_read is read at the change's revision: leave its revision unset");
    }
    if (auto s = kv::validate_range(req.then_read()); !s) return std::unexpected(s.error());
    spec.then_read = req.then_read();
  }
  return spec;
}

cpb::WatchCreateRequest watch_request_for_log(const cpb::LogSubscribeRequest& req) {
  cpb::WatchCreateRequest w;
  w.set_start(req.prefix());
  w.set_is_prefix(true);
  w.set_start_revision(req.from_index());
  w.set_progress_interval_ms(req.progress_interval_ms());
  return w;
}

kvpb::RangeRequest watched_range(const WatchSpec& spec) {
  kvpb::RangeRequest r;
  r.set_start(spec.start);
  r.set_end(spec.end);
  return r;
}

bool wants(const WatchSpec& spec, const kvpb::HistoryEntry& entry) {
  const std::string& key = entry.record().kv().key();
  if (key < spec.start || (!spec.end.empty() && key >= spec.end)) return false;
  return entry.record().is_delete() ? !spec.is_no_delete : !spec.is_no_put;
}

cpb::WatchEvent to_event(const kvpb::HistoryEntry& entry, const std::optional<kvpb::KeyValue>& prev, bool has_prev_kv) {
  cpb::WatchEvent ev;
  ev.set_type(entry.record().is_delete() ? cpb::WatchEvent::DELETE : cpb::WatchEvent::PUT);
  *ev.mutable_kv() = entry.record().kv();
  if (has_prev_kv && prev) *ev.mutable_prev_kv() = *prev;
  return ev;
}

void WatchBatcher::add(Index revision, cpb::WatchEvent event, uint64_t timestamp_ms) {
  ASPEN_ASSERT(revision > 0);
  if (pending_ && pending_->revision() != revision) {
    ASPEN_ASSERT_MSG(revision > pending_->revision(), "events come in revision order");
    done_.push_back(std::move(*pending_));
    pending_.reset();
  }
  const size_t bytes = event.ByteSizeLong();
  if (pending_ && pending_bytes_ > 0 && pending_bytes_ + bytes > limits::kMaxWatchResponseBytes) {
    // Split: this piece is a fragment; the next message carries on with the same revision.
    pending_->set_is_fragment(true);
    done_.push_back(std::move(*pending_));
    pending_.reset();
  }
  if (!pending_) {
    pending_.emplace();
    pending_->set_revision(revision);
    pending_->set_timestamp_ms(timestamp_ms);
    pending_bytes_ = 0;
  }
  *pending_->add_events() = std::move(event);
  pending_bytes_ += bytes;
}

std::vector<cpb::WatchResponse> WatchBatcher::take(bool is_revision_complete) {
  if (pending_) {
    if (!is_revision_complete) pending_->set_is_fragment(true);
    done_.push_back(std::move(*pending_));
    pending_.reset();
    pending_bytes_ = 0;
  }
  return std::exchange(done_, {});
}

cpb::WatchResponse progress_response(Index revision) {
  cpb::WatchResponse r;
  r.set_revision(revision);
  return r;
}

cpb::WatchResponse created_response(Index revision) {
  cpb::WatchResponse r;
  r.set_revision(revision);
  r.set_is_created(true);
  return r;
}

cpb::WatchResponse once_answer(Index revision, std::vector<cpb::WatchResponse> events) {
  cpb::WatchResponse r;
  if (events.size() == 1) {
    ASPEN_ASSERT(events.front().revision() == revision && !events.front().is_fragment());
    r = std::move(events.front());
  }
  r.set_revision(revision);
  r.set_is_once_answer(true);
  return r;
}

std::optional<kvpb::RangeResult> range_with_changes(const kvpb::RangeRequest& request, const kvpb::RangeResult& base,
                                                    std::span<const kvpb::HistoryEntry> changes, Index revision) {
  ASPEN_ASSERT(request.revision() == 0 && request.continuation().empty());
  if (base.has_more() || request.is_count_only()) return std::nullopt;
  const std::string end = kv::range_end(request);
  const auto in_range = [&](const std::string& key) {
    return key >= request.start() && (end.empty() || key < end);
  };
  std::map<std::string, kvpb::KeyValue> kvs;
  for (const auto& kv : base.kvs()) kvs.emplace(kv.key(), kv);
  for (const auto& e : changes) {
    ASPEN_ASSERT(e.revision() > base.revision());
    if (e.revision() > revision) break;
    const auto& kv = e.record().kv();
    if (!in_range(kv.key())) continue;
    if (e.record().is_delete()) {
      kvs.erase(kv.key());
    } else {
      kvs.insert_or_assign(kv.key(), kv);
    }
  }
  const size_t limit = request.limit() == 0 ? limits::kDefaultScanLimit : request.limit();
  if (kvs.size() > limit) return std::nullopt;
  size_t bytes = 0;
  for (const auto& [key, kv] : kvs) bytes += key.size() + kv.value().size();
  if (bytes > limits::kMaxScanResultBytes) return std::nullopt;
  kvpb::RangeResult out;
  out.set_revision(revision);
  out.set_count(kvs.size());
  for (auto& [key, kv] : kvs) *out.add_kvs() = std::move(kv);
  return out;
}

cpb::WatchResponse once_timed_out_answer(Index revision) {
  cpb::WatchResponse r;
  r.set_revision(revision);
  r.set_is_once_answer(true);
  r.set_is_once_timed_out(true);
  return r;
}

cpb::WatchResponse canceled_response(std::string reason, Index compact_revision) {
  cpb::WatchResponse r;
  r.set_is_canceled(true);
  r.set_cancel_reason(std::move(reason));
  r.set_compact_revision(compact_revision);
  return r;
}

}  // namespace aspen::watch
