// Worker: one named thread that runs jobs in the order they were submitted, owned and joined
// by the component that starts it. For work that must not run on the event loop because it
// blocks (streaming a snapshot waits on the peer's flow control) and must not outlive the
// node (a detached thread could still touch the store after stop()).
//
//   Worker w("snap-send");        // the thread starts here
//   w.submit([] { ...blocking work... });
//   w.stop();                     // runs no further jobs, waits for the current one
//
// A job still running at stop() must finish soon on its own (the shell closes the endpoint
// first, so a blocked send fails at once). Jobs not started by then are dropped.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace aspen::node {

class Worker {
 public:
  // `name` (at most 15 characters) shows in top and gdb.
  explicit Worker(std::string name, size_t max_queued_jobs);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Any thread. False (the job is dropped) when stopped or when max_queued_jobs are waiting.
  bool submit(std::function<void()> job);
  // Any thread but the worker's own. Idempotent.
  void stop();
  size_t queued() const;

 private:
  void run();

  const std::string name_;
  const size_t max_queued_jobs_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // [mu_]
  bool is_stopping_ = false;                // [mu_]
  std::thread thread_;                      // started last, in the constructor
};

}  // namespace aspen::node
