// WatchService: the watches a node serves, one component of the shell (docs/watch.md).
//
// A watch is a client stream whose first request is watch_create. The service reads the
// store's history (Store::read_history) from each watcher's cursor, keeps what the watch
// wants (watch/watch.h) and sends it on the stream; any member serves watches from its own
// applied state. Watchers at the same cursor (all those that are caught up) share one read.
// A watcher whose reader falls behind (limits::kMaxWatchUnackedBytes unacknowledged) is
// paused and resumes from the history when it reads again; paused for
// knobs.watch_stall_cancel_ms, or behind the compacted revision, it is cancelled with the
// reason. A one-shot watch (is_once) gets a single message: the first change it wants, with
// its then_read range as of that revision (told from the early changes over the store's range
// when it can be, else read once the store has them), or an empty answer after its
// once_timeout_ms. Caught-up watchers get a progress notification after progress_interval_ms idle,
// or at once when they ask. Caught-up watchers are also sent an apply's changes before the
// store commits them (on_committed_changes): that commit's sync is then off their path.
//
// Threads: the loop only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "node/internal/node_env.h"
#include "watch/watch.h"

namespace aspen::node::internal {

class WatchService : public std::enable_shared_from_this<WatchService> {
 public:
  explicit WatchService(NodeEnv& env) : env_(env) {}
  WatchService(const WatchService&) = delete;
  WatchService& operator=(const WatchService&) = delete;

  // A stream whose first request is this watch_create, already authorized. Answers on the
  // stream (created, or an error / cancellation).
  void create(transport::Stream stream, const cpb::WatchCreateRequest& req);
  bool is_watch(const transport::Stream& stream) const;
  // A further request on a watch's stream (watch_progress); anything else ends the watch.
  void on_request(const transport::Stream& stream, const cpb::Request& req);
  // The client's side of a watch's stream ended: the watch ends, unless it is a one-shot
  // watch whose client finished its side cleanly (as a call does) and waits for the answer.
  void on_stream_closed(const transport::Stream& stream, bool is_finished);
  // The applied state moved: send what changed.
  void on_applied();
  // Changes an apply made after log index after_index, before the store's commit makes them
  // readable (StorageWorker::Hooks::on_history). They go at once to each watcher that has had
  // every change before them and can take them (not paused, no previous values asked for);
  // they are not kept: every other watcher gets them from the store as before.
  void on_committed_changes(Index after_index, const std::vector<kvpb::HistoryEntry>& entries);
  // Progress notifications, paused watchers, stalled ones. Every tick.
  void on_tick();
  size_t watcher_count() const { return watchers_.size(); }
  // Bytes sent to watchers and not yet acknowledged, summed.
  size_t unacked_bytes() const;

 private:
  using StreamKey = std::pair<uint64_t, int64_t>;  // (connection serial, stream id)
  struct Watcher {
    transport::Stream stream;
    watch::WatchSpec spec;
    // The next history entry to look at, and the revision through which everything was sent.
    Index next_revision = 0;
    uint32_t next_position = 0;
    Index sent_through = 0;
    uint64_t last_sent_ms = 0;
    uint64_t paused_since_ms = 0;  // 0: not paused
    bool wants_progress = false;
    uint64_t once_deadline_ms = 0;  // a one-shot watch: answered empty at this time
  };
  static StreamKey key_of(const transport::Stream& s) { return {s.connection_serial(), s.id()}; }
  // Reads and sends one page for every watcher behind the store revision (watchers at one
  // cursor share the read); schedules another round if some are still behind.
  void serve_round();
  // Sends a message on the watcher's stream; false if the stream failed (the watcher goes).
  bool send(Watcher& w, cpb::WatchResponse resp);
  // Sends the entries the watch wants as WatchBatcher cuts them, with their previous versions
  // from `prev` (parallel to `entries`) if it asked: the messages sent, nullopt if the stream
  // failed (the watcher is gone).
  std::optional<size_t> send_entries(Watcher& w, std::span<const kvpb::HistoryEntry> entries,
                                     const std::vector<std::optional<kvpb::KeyValue>>* prev, bool is_revision_complete);
  // A one-shot watch (spec.is_once) answers at the first change it wants among `entries`
  // (then it is gone: nullopt) and sends nothing otherwise (0).
  std::optional<size_t> answer_once_from(Watcher& w, std::span<const kvpb::HistoryEntry> entries,
                                         const std::vector<std::optional<kvpb::KeyValue>>* prev,
                                         bool is_revision_complete);
  // A one-shot watch that reads a range, offered an apply's changes (on_committed_changes)
  // before the store may have them: answers if its read can be told now (the store has them
  // meanwhile, or its range from the store before them with them laid over). true: answered
  // (the watcher is gone); false: not yet (serve_round answers once the store has them), or
  // nothing it waits for was among them (its cursor moves past them).
  bool answer_once_early(Watcher& w, const std::vector<kvpb::HistoryEntry>& entries);
  // Sends a one-shot watch's only message, ends its stream and forgets it.
  void answer_once(const StreamKey& key, cpb::WatchResponse answer);
  // Paused, or nothing more for it while the node is at its total bound of watch traffic.
  bool is_held_back(Watcher& w, uint64_t now_ms, bool is_over_total);
  void cancel(const StreamKey& key, std::string reason, Index compact_revision = 0);
  bool is_paused(Watcher& w, uint64_t now_ms);

  NodeEnv& env_;
  std::map<StreamKey, Watcher> watchers_;  // [loop] at most limits::kMaxWatchers
  Index store_revision_ = 0;               // [loop] as of the last read
  Index store_index_ = 0;                  // [loop] the applied index of that read
  bool is_round_scheduled_ = false;        // [loop]
};

}  // namespace aspen::node::internal
