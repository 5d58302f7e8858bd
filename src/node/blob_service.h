// BlobService: the node's blobs (docs/blobs.md), one component of the shell.
//
// - The store: content-addressed files under data_dir/blobs (blob/store/blob_store.h).
// - ALPN "aspen-blobs/0" (proto/aspen/blob.proto): clients add blobs (streamed in, hashed
//   and verified before they become visible) and get byte ranges (streamed out as range
//   encodings, every node checked against the hash first); members fetch from each other
//   the same way.
// - Requests on "aspen-client": blob status, list, tags (set/delete/list), GC, and the
//   holder records members send the leader.
// - Replication: every blob_replication_interval_ms a member looks at the tags; a tagged
//   blob that fewer than blob_replication_factor members hold (0: every voter), and that this
//   member lacks, is fetched from a holder with verified ranges (resuming from the verified
//   prefix, from another holder if one fails), then recorded as held.
// - GC: every blob_gc_interval_ms, or when asked. A blob is removed when no tag names it, it
//   is older than blob_gc_grace_ms, and nobody reads it. Tags and removals race safely: the
//   node first withdraws its holder record (the leader refuses a tag for a blob no member
//   holds), then reads the tags linearizably, then removes only blobs still untagged (and
//   records itself again as holder of the others).
//
// Threads: handlers and on_tick on the loop; each "aspen-blobs/0" connection on a transport
// thread of its own (blocking I/O; at most knob blob_max_transfers transfers at once); GC and
// replication fetches on one worker thread owned here ("blob-worker"), joined by stop().
// The worker and transfer threads reach the loop only through post(), waiting on the answer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "blob/store/blob_store.h"
#include "node/client_service.h"
#include "node/internal/node_env.h"
#include "rpc/handler_registry.h"

namespace aspen::node::internal {

inline constexpr const char* kBlobAlpn = "aspen-blobs/0";
// Raw bytes of a range encoding the node sends per message.
inline constexpr size_t kBlobTransferMessageBytes = size_t{1} << 20;
static_assert(kBlobTransferMessageBytes + limits::kBlobChunkGroupBytes <= limits::kMaxFrameSizeBytes);
// Tasks (fetches, GC runs) waiting for the worker; more are dropped until it catches up.
inline constexpr size_t kMaxBlobWorkerQueue = 64;
// Rounds of a holder-record update whose compare lost to a concurrent update.
inline constexpr int kMaxBlobHoldersUpdateAttempts = 32;

struct BlobCounters {
  std::atomic<uint64_t> transfers_active{0};
  std::atomic<uint64_t> transfers_refused{0};  // over blob_max_transfers
  std::atomic<uint64_t> gets_served{0};
  std::atomic<uint64_t> bytes_served{0};
  std::atomic<uint64_t> fetches_completed{0};
  std::atomic<uint64_t> fetches_failed{0};
  std::atomic<uint64_t> fetch_attempts_failed{0};  // one holder failed (the next is tried)
  std::atomic<uint64_t> bytes_fetched{0};
  std::atomic<uint64_t> gc_runs{0};
  std::atomic<uint64_t> gc_removed{0};
};

class BlobService : public std::enable_shared_from_this<BlobService> {
 public:
  using Reply = rpc::Reply;
  BlobService(NodeEnv& env, CorePort& port, ClientService& clients, rpc::HandlerRegistry& handlers);
  ~BlobService();
  BlobService(const BlobService&) = delete;
  BlobService& operator=(const BlobService&) = delete;

  // [start] Opens the store under data_dir/blobs and starts the worker.
  Status open();
  // [start]
  void register_handlers();
  // [start] The handler for ALPN kBlobAlpn.
  std::shared_ptr<transport::ProtocolHandler> transfer_handler();
  // [loop] Schedules replication and periodic GC.
  void on_tick();
  // Any thread. Transfers and the worker stop waiting on the loop; call before the endpoint
  // closes, then join() after it did (closed connections end blocked transfers at once).
  void begin_stop();
  void join();

  // The metrics page's blob samples (Prometheus text, HELP and TYPE included). Any thread.
  std::string prometheus_samples() const;

 private:
  class TransferHandler;
  struct FetchSource {
    NodeId id = kNoNode;
    transport::PublicKey key;
    std::vector<transport::SocketAddr> addrs;
  };

  // --- loop ---
  void handle_status(const cpb::Request& req, Reply reply);
  void handle_list(const cpb::Request& req, Reply reply);
  void handle_tag_set(const cpb::Request& req, Reply reply);
  void handle_tag_delete(const cpb::Request& req, Reply reply);
  void handle_tag_list(const cpb::Request& req, Reply reply);
  void handle_gc(const cpb::Request& req, Reply reply);
  void handle_holders_update(const cpb::Request& req, Reply reply);
  void update_holders_on_leader(const cpb::BlobHoldersUpdateRequest& u, int attempt, Reply reply);
  // This node holds (add) or dropped (remove) these blobs: through the leader.
  void update_own_holders(const std::vector<blob::Blake3Hash>& add, const std::vector<blob::Blake3Hash>& remove,
                          Reply reply);
  // Every tag (name -> hash) in the applied state.
  Result<std::vector<std::pair<std::string, blob::Blake3Hash>>> read_tags() const;
  std::vector<NodeId> read_holders(const blob::Blake3Hash& hash) const;
  void schedule_replication();

  // --- transfer threads ---
  void serve_transfer(transport::Stream stream);
  void serve_get(transport::Stream& stream, const cpb::BlobGetRequest& req);
  void serve_add(transport::Stream& stream, const cpb::BlobAddRequest& req);
  // Runs `fn` on the loop and waits for the reply it gives (Unavailable when stopping or
  // after the request timeout).
  cpb::Response run_on_loop(std::function<void(Reply)> fn);
  // A damaged blob: dropped here and from the holder records, so replication repairs it.
  void drop_damaged(const blob::Blake3Hash& hash);

  // --- worker ---
  bool enqueue(std::function<void()> task);
  void worker_main();
  void fetch(const blob::Blake3Hash& hash, const std::vector<FetchSource>& sources);
  cpb::BlobGcResponse run_gc();

  NodeEnv& env_;
  CorePort& port_;
  ClientService& clients_;
  rpc::HandlerRegistry& handlers_;
  std::unique_ptr<blob::BlobStore> store_;  // [start] thread-safe itself
  BlobCounters counters_;                   // [any]
  std::atomic<bool> is_stopping_{false};    // [any]
  uint64_t last_replication_ms_ = 0;        // [loop]
  uint64_t last_gc_ms_ = 0;                 // [loop]

  std::mutex worker_mu_;
  std::condition_variable worker_cv_;
  std::deque<std::function<void()>> worker_queue_;  // [worker_mu_] at most kMaxBlobWorkerQueue
  std::set<blob::Blake3Hash> fetching_;             // [worker_mu_] queued or running fetches
  bool is_gc_queued_ = false;                       // [worker_mu_]
  std::thread worker_;                              // [start] joined by join()
};

}  // namespace aspen::node::internal
