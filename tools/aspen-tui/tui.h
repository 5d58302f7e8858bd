// aspen-tui's screen: views (Cluster, Metrics, Key-Value, Help), key handling, forms, and a
// worker thread for the operator's requests (reads, writes, membership changes), so that no
// network call ever runs on the UI thread. What the cluster looks like comes from
// ops::ClusterPoller, polled on its own thread.
//
// Threads: everything here runs on the UI thread except Worker's jobs, which only compute a
// result and hand back a closure the UI thread applies (Worker::drain).
#pragma once

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

enum class View { kCluster, kMetrics, kKeyValue, kHelp };
inline constexpr int kViewCount = 4;

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
  // Applies finished requests; true if the screen changed.
  bool drain() { return worker_.drain(*this); }

  // Called by job results (UI thread).
  void add_history(std::string line);
  void set_status(std::string line) { status_ = std::move(line); }
  void set_kv_page(std::vector<KvEntry> entries, bool has_more, std::string continuation);

 private:
  void draw_tabs(int width);
  void draw_cluster(const ops::ClusterView& v, int top, int height, int width);
  void draw_metrics(const ops::ClusterView& v, int top, int height, int width);
  void draw_kv(int top, int height, int width);
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
};

}  // namespace aspen::tui
