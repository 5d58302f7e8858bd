// What the terminal UI shows of a cluster, gathered off the UI thread: a poller thread asks
// every member for its Raft status and metrics page once per refresh interval (each member
// on its own thread, with a timeout below the interval, so a dead member shows as offline
// and never delays the others or the screen), and keeps a few minutes of history for the
// sparklines. The UI takes a copy of the latest ClusterView whenever it draws.
//
//   ops::ClusterPoller poller(client, {.refresh_ms = 1000});
//   poller.start();
//   ops::ClusterView v = poller.view();   // any thread, never blocks on the network
//
// Threads: one "poller" thread owned and joined by ClusterPoller, and short-lived per-member
// calls it waits for; view() and version() from any thread (mutex).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "ops/exposition.h"

namespace aspen::ops {

// Points kept per sparkline: 5 minutes at the default 1 s refresh.
inline constexpr size_t kMaxHistoryPoints = 300;
inline constexpr uint32_t kMinRefreshMs = 100;

struct PeerRtt {
  std::string peer;  // short key
  std::string alpn;
  double rtt_s = 0;
};

struct MemberView {
  uint64_t node_id = 0;
  bool is_online = false;
  std::string error;         // why it is offline
  std::string role;          // leader | follower | candidate | pre-candidate | learner
  bool is_learner = false;
  uint64_t term = 0;
  uint64_t leader_id = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t last_log_index = 0;
  std::string public_key;
  std::string address;
  // From the leader's replication state, when this member is a follower of a known leader.
  std::optional<uint64_t> match_index;
  std::optional<uint64_t> lag_entries;
  std::optional<std::chrono::steady_clock::time_point> last_contact;  // last answer
  double storage_used_bytes = 0;
  double connections_open = 0;
  double pending_requests = 0;
  std::vector<PeerRtt> rtts;
};

// One series of a sparkline: newest last.
struct History {
  std::deque<double> points;
  void add(double v) {
    points.push_back(v);
    while (points.size() > kMaxHistoryPoints) points.pop_front();
  }
};

struct ClusterView {
  std::vector<MemberView> members;  // by node id
  uint64_t leader_id = 0;           // as the members with the highest term report it
  uint64_t term = 0;
  uint64_t polls = 0;               // completed polls
  // Cluster-wide rates and latencies over the last interval (sums over members).
  History writes_per_s;
  History reads_per_s;
  History write_p99_s;   // client write requests, p99 over the interval
  History read_p99_s;
  History fsync_p99_s;   // log write + fdatasync
};

struct PollerOptions {
  uint32_t refresh_ms = 1000;
  // Per-member call timeout; 0 = 80% of refresh_ms, at least 200 ms.
  uint32_t member_timeout_ms = 0;
};

class ClusterPoller {
 public:
  ClusterPoller(client::Client& client, PollerOptions options);
  ~ClusterPoller();
  ClusterPoller(const ClusterPoller&) = delete;
  ClusterPoller& operator=(const ClusterPoller&) = delete;

  void start();
  void stop();                 // joins the poller thread; idempotent
  ClusterView view() const;    // a copy
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // Polls once now, on the calling thread (tests, and the first frame).
  void poll_once();

 private:
  struct Sample {
    std::optional<Exposition> page;
  };
  void run();

  client::Client& client_;
  const PollerOptions options_;
  mutable std::mutex mu_;
  ClusterView view_;                               // [mu_]
  std::map<uint64_t, Exposition> last_pages_;      // [poller]
  std::chrono::steady_clock::time_point last_poll_at_{};  // [poller]
  std::map<uint64_t, std::chrono::steady_clock::time_point> last_contact_;  // [poller]
  std::atomic<uint64_t> version_{0};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool is_stopping_ = false;  // [stop_mu_]
  std::thread thread_;
};

// Reads a member's MemberView fields out of its metrics page (storage, connections, RTTs).
void read_page_into(const Exposition& page, MemberView& m);

}  // namespace aspen::ops
