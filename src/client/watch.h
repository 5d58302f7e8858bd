// Watching keys from the client library (docs/watch.md): Client::watch opens a watch on a
// member and hands out its events one revision at a time, in order, each once.
//
// Resumable: when the stream breaks (the member died, restarted or paused the watcher) the
// library opens the watch again on another member from the last revision it delivered + 1,
// so the caller sees no gap and no repeat. Fragments of a large revision are joined before
// the revision is delivered. A watch whose start revision (or resume point) was compacted
// fails with Compacted naming the oldest revision left: re-read the keys, then watch again.
//
// Thread-compatible: use a Watch from one thread at a time. The Client must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aspen/client.pb.h"
#include "core/error.h"
#include "transport/endpoint.h"

namespace aspen::client {

namespace cpb = aspen::clientpb;

struct WatchOptions {
  std::string key;              // the key, or the prefix with is_prefix, or the range start
  std::string end;              // a range [key, end); empty: just `key` (or the prefix)
  bool is_prefix = false;
  bool is_to_end = false;       // a range [key, end of the key space)
  uint64_t start_revision = 0;  // 0: changes after the watch is created
  bool is_no_put = false;
  bool is_no_delete = false;
  bool has_prev_kv = false;
  uint32_t progress_interval_ms = 0;  // 0: the node's default (10 s)
  uint64_t node_id = 0;               // watch through this member only (0: any)
};

// A log subscription (Client::subscribe_log, ALPN "aspen-logs"): every committed entry that
// changed a key under the prefix, whole, in index order, from from_index on. It resumes and
// reports compaction like a watch; an entry's index is its revision.
struct LogSubscribeOptions {
  std::string prefix;                 // empty: every key
  uint64_t from_index = 0;            // 0: entries committed after the subscription opens
  uint32_t progress_interval_ms = 0;  // 0: the node's default (10 s)
  uint64_t node_id = 0;               // subscribe through this member only (0: any)
};

// What next() delivers: every event of one revision (for a log subscription: every change
// of one entry under the prefix), or (no events) a progress notification saying every
// change up to `revision` has been delivered.
struct WatchBatch {
  uint64_t revision = 0;
  uint64_t timestamp_ms = 0;  // with events: the leader's time of the command that made them
  std::vector<cpb::WatchEvent> events;
  bool is_progress() const { return events.empty(); }
};

class Watch {
 public:
  // Opens the watch stream on a node (the attempt-th choice) with the create request, before
  // the deadline. Supplied by Client.
  using Opener = std::function<Result<transport::Stream>(const cpb::Request& create, uint64_t attempt,
                                                         std::chrono::steady_clock::time_point deadline)>;
  // `create` holds a watch_create or a log_subscribe.
  Watch(cpb::Request create, Opener opener, uint32_t backoff_ms);
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Opens the watch (the first time); Unauthorized, InvalidArgument or Compacted are final.
  Status start(uint32_t timeout_ms);
  // The next revision's events or a progress notification. Timeout when none came within
  // timeout_ms (the watch goes on); Compacted when the history it needs is gone (final).
  Result<WatchBatch> next(uint32_t timeout_ms);
  // Asks the node for a progress notification (delivered by next()).
  Status request_progress();
  // Everything up to this revision has been delivered.
  uint64_t last_revision() const { return last_revision_; }
  // Times the watch was opened again after its stream broke.
  uint64_t resumes() const { return resumes_; }
  // The member serving the watch now (nullopt while it is being reopened).
  std::optional<transport::PublicKey> serving_node() const {
    return stream_ ? std::optional<transport::PublicKey>(stream_->peer_key()) : std::nullopt;
  }

 private:
  Status open(std::chrono::steady_clock::time_point deadline);
  void drop_stream();

  cpb::Request request_;
  Opener opener_;
  uint32_t backoff_ms_;
  std::optional<transport::Stream> stream_;
  uint64_t last_revision_ = 0;
  uint64_t attempts_ = 0;
  uint64_t resumes_ = 0;
  bool is_started_ = false;
  std::optional<Error> final_error_;
  // Events of a revision whose fragments are still arriving.
  std::optional<WatchBatch> partial_;
  // A message that arrived after fragments of an earlier revision: their revision is complete
  // (the rest of it held nothing this watch wants), so it is delivered first and this next.
  std::optional<cpb::Response> held_;
};

}  // namespace aspen::client
