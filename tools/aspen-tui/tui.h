// aspen-tui's screen: views (Cluster, Metrics, Key-Value, Logs, Help), key handling, forms, and a
// worker thread for the operator's requests (reads, writes, membership changes), so that no
// network call ever runs on the UI thread. What the cluster looks like comes from
// ops::ClusterPoller, polled on its own thread.
//
// Threads: everything here runs on the UI thread except Worker's jobs, which only compute a
// result and hand back a closure the UI thread applies (Worker::drain).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "ops/cluster_poll.h"

namespace aspen::tui {

// Requests queued for the worker at once; more are refused with a message.
inline constexpr size_t kMaxQueuedJobs = 8;
// Lines kept in the Key-Value view's history.
inline constexpr size_t kMaxHistoryLines = 200;
// Keys fetched per Key-Value page.
inline constexpr uint32_t kKvPageSize = 100;
// Newest log lines asked of a node per refresh of the Logs view (more than a screen holds).
inline constexpr uint32_t kLogsFetchLines = 200;
// How long one Logs refresh may wait for its node before the view says it does not answer.
inline constexpr uint32_t kLogsTimeoutMs = 3000;

class App;
using Apply = std::function<void(App&)>;

class Worker {
 public:
  Worker();
  ~Worker();
  // Runs `job` on the worker thread; its result is applied by drain(). False if the queue is full.
  bool submit(std::function<Apply()> job);
  // Applies finished jobs' results on the calling (UI) thread. True if any.
  bool drain(App& app);
  bool is_busy() const;

 private:
  void run();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<Apply()>> jobs_;  // [mu_]
  std::deque<Apply> done_;                   // [mu_]
  bool is_running_job_ = false;              // [mu_]
  bool is_stopping_ = false;                 // [mu_]
  std::thread thread_;
};

enum class View { kCluster, kMetrics, kKeyValue, kLogs, kHelp };
inline constexpr int kViewCount = 5;

struct FormField {
  std::string label;
  std::string value;
};

struct Form {
  std::string title;
  std::vector<FormField> fields;
  size_t current = 0;
  std::function<void(App&, const std::vector<std::string>&)> on_submit;
};

struct KvEntry {
  std::string key;
  std::string value;
  uint64_t mod_revision = 0;
  uint64_t version = 0;
};

struct Options {
  uint32_t refresh_ms = 1000;
  bool is_debug = false;
  bool is_monochrome = false;
};

class App {
 public:
  App(client::Client& client, ops::ClusterPoller& poller, Options options);
  // One key from getch(); false once the user quits.
  bool on_key(int key);
  // Draws the whole screen (stdscr) for the current size.
  void draw();
  // Applies finished requests and starts a due refresh of the Logs view; true if the screen
  // changed.
  bool drain();

  // Called by job results (UI thread).
  void add_history(std::string line);
  void set_status(std::string line) { status_ = std::move(line); }
  void set_kv_page(std::vector<KvEntry> entries, bool has_more, std::string continuation);
  void set_logs(uint64_t node_id, std::string level, Result<clientpb::GetLogsResponse> logs);

 private:
  void draw_tabs(int width);
  void draw_cluster(const ops::ClusterView& v, int top, int height, int width);
  void draw_metrics(const ops::ClusterView& v, int top, int height, int width);
  void draw_kv(int top, int height, int width);
  void draw_logs(const ops::ClusterView& v, int top, int height, int width);
  void draw_help(int top, int height, int width);
  void draw_form(int height, int width);
  void draw_footer(int height, int width);

  bool on_form_key(int key);
  void on_cluster_key(int key);
  void on_kv_key(int key);
  void open_form(Form form) { form_ = std::move(form); }

  void start_init();
  void start_add_learner();
  void start_change_membership();
  void start_read(const std::string& key);
  void start_write(const std::string& key, const std::string& value);
  void load_kv_page(bool is_next);
  // The node whose lines the Logs view shows: the one selected in the Cluster view (0: none).
  uint64_t logs_node(const ops::ClusterView& v) const;
  void maybe_fetch_logs();
  void submit(std::function<Apply()> job, const std::string& what);

  client::Client& client_;
  ops::ClusterPoller& poller_;
  const Options options_;
  Worker worker_;
  View view_ = View::kCluster;
  View before_help_ = View::kCluster;
  std::optional<Form> form_;
  std::string status_;
  // Cluster view
  size_t selected_ = 0;
  // Key-Value view
  std::string prefix_;
  std::vector<KvEntry> kv_entries_;
  size_t kv_selected_ = 0;
  bool kv_has_more_ = false;
  std::string kv_continuation_;
  std::vector<std::string> kv_continuations_;  // to go back a page
  std::optional<KvEntry> kv_shown_;
  std::deque<std::string> history_;
  // Logs view
  size_t logs_level_ = 0;  // index into kLogLevels (tui.cc): all, info, warn, error
  uint64_t logs_shown_node_ = 0;
  std::string logs_shown_level_;
  std::vector<clientpb::LogLine> logs_;
  std::string logs_error_;  // why the last refresh failed ("" = it did not)
  bool is_logs_in_flight_ = false;
  std::chrono::steady_clock::time_point logs_fetched_at_{};
};

}  // namespace aspen::tui
