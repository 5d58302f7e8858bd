// Watches, the decisions without I/O: what a watch asks for (WatchSpec), which history
// entries it wants, and how its events become messages (WatchBatcher). The node's
// WatchService (src/node/watch_service.h) reads the history and sends what these decide.
//
// The guarantees (docs/watch.md): events in revision order, each once, no gap from the
// start revision on, all events of one revision delivered together (a revision larger than
// limits::kMaxWatchResponseBytes travels in fragments that the client library joins).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aspen/client.pb.h"
#include "aspen/kv.pb.h"
#include "core/error.h"
#include "core/types.h"

namespace aspen::watch {

namespace cpb = aspen::clientpb;

struct WatchSpec {
  std::string start;
  std::string end;  // exclusive; empty = to the end of the key space
  bool is_no_put = false;
  bool is_no_delete = false;
  bool has_prev_kv = false;
  Index start_revision = 0;  // 0: from the store revision at creation + 1
  uint32_t progress_interval_ms = 0;
  // A one-shot watch (WatchCreateRequest.is_once): one answer at the first wanted change or
  // after once_timeout_ms, with then_read as of the change's revision if it asked.
  bool is_once = false;
  uint32_t once_timeout_ms = 0;
  std::optional<kvpb::RangeRequest> then_read;
};

// Validates a create request (key sizes, a range that is not empty or backwards, the
// progress interval) into a spec.
Result<WatchSpec> make_watch_spec(const cpb::WatchCreateRequest& req);
// A log subscription (ALPN "aspen-logs") is served as a watch of its prefix, puts and
// deletes, from its index (an entry's index is its revision): the watch it amounts to.
cpb::WatchCreateRequest watch_request_for_log(const cpb::LogSubscribeRequest& req);
// The keys a spec watches, as a range read of them (for authorization).
kvpb::RangeRequest watched_range(const WatchSpec& spec);
// Whether the watch reports this change.
bool wants(const WatchSpec& spec, const kvpb::HistoryEntry& entry);
cpb::WatchEvent to_event(const kvpb::HistoryEntry& entry, const std::optional<kvpb::KeyValue>& prev, bool has_prev_kv);

// Builds a watch's messages from its events, in (revision, position) order: one message
// per revision, split into fragments past limits::kMaxWatchResponseBytes.
class WatchBatcher {
 public:
  // timestamp_ms: the leader's time of the revision's command, carried by its message.
  void add(Index revision, cpb::WatchEvent event, uint64_t timestamp_ms = 0);
  // The messages so far. With is_revision_complete false, more events of the last revision
  // may follow: its message is marked a fragment (the next one continues it).
  std::vector<cpb::WatchResponse> take(bool is_revision_complete);
  bool empty() const { return done_.empty() && !pending_; }

 private:
  std::vector<cpb::WatchResponse> done_;
  std::optional<cpb::WatchResponse> pending_;  // the last revision's events not yet in done_
  size_t pending_bytes_ = 0;
};

cpb::WatchResponse progress_response(Index revision);
cpb::WatchResponse created_response(Index revision);
cpb::WatchResponse canceled_response(std::string reason, Index compact_revision = 0);
// A one-shot watch's answer: the first wanted change's revision and the watch's events of it
// (`events`: take()n from a batcher holding exactly that revision, whole). Events that took
// more than one message (a revision over kMaxWatchResponseBytes) are left out; the revision
// is always there.
cpb::WatchResponse once_answer(Index revision, std::vector<cpb::WatchResponse> events);
// The range `request` (no revision, no continuation) as of `revision`, told from `base`, the
// same range read from a store that holds none of `changes`, and `changes`, the history
// entries after it in revision order (those above `revision` are left out). nullopt when they
// alone cannot tell it: `base` is one page of more, the request only counts, or the changes
// take the page past its limit or kMaxScanResultBytes.
std::optional<kvpb::RangeResult> range_with_changes(const kvpb::RangeRequest& request, const kvpb::RangeResult& base,
                                                    std::span<const kvpb::HistoryEntry> changes, Index revision);
// Nothing the one-shot watch wants happened through `revision` before its time ran out.
cpb::WatchResponse once_timed_out_answer(Index revision);

}  // namespace aspen::watch
