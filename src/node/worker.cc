#include "node/worker.h"

#include <pthread.h>

#include "core/assert.h"

namespace aspen::node {

Worker::Worker(std::string name, size_t max_queued_jobs)
    : name_(std::move(name)), max_queued_jobs_(max_queued_jobs), thread_([this] { run(); }) {
  ASPEN_ASSERT(name_.size() <= 15);
  ASPEN_ASSERT(max_queued_jobs_ > 0);
  ::pthread_setname_np(thread_.native_handle(), name_.c_str());
}

Worker::~Worker() { stop(); }

bool Worker::submit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (is_stopping_ || jobs_.size() >= max_queued_jobs_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void Worker::stop() {
  ASPEN_ASSERT_MSG(std::this_thread::get_id() != thread_.get_id(), "a worker cannot stop itself");
  {
    std::lock_guard lock(mu_);
    is_stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t Worker::queued() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void Worker::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return is_stopping_ || !jobs_.empty(); });
      if (is_stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace aspen::node
