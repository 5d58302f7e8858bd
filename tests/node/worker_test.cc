// Worker: the owned, joined thread that runs a component's blocking jobs in order.
#include "node/worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <vector>

namespace aspen::node {
namespace {

TEST(Worker, RunsJobsInSubmissionOrderOnItsOwnThread) {
  Worker w("test-worker", 16);
  std::vector<int> order;
  std::promise<std::thread::id> where;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(w.submit([&order, i] { order.push_back(i); }));
  ASSERT_TRUE(w.submit([&] { where.set_value(std::this_thread::get_id()); }));
  auto id = where.get_future().get();
  EXPECT_NE(id, std::this_thread::get_id());
  w.stop();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Worker, RefusesJobsBeyondItsQueueBound) {
  Worker w("bounded", 2);
  std::promise<void> release;
  std::promise<void> started;
  auto gate = release.get_future().share();
  ASSERT_TRUE(w.submit([&started, gate] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();  // the first job runs: the queue is empty again
  EXPECT_TRUE(w.submit([] {}));
  EXPECT_TRUE(w.submit([] {}));
  EXPECT_FALSE(w.submit([] {})) << "a third waiting job exceeds the bound of 2";
  EXPECT_EQ(w.queued(), 2u);
  release.set_value();
  w.stop();
}

TEST(Worker, StopWaitsForTheRunningJobAndDropsTheRest) {
  std::atomic<bool> is_finished{false};
  std::atomic<int> later_ran{0};
  std::promise<void> started;
  std::promise<void> release;
  auto gate = release.get_future().share();
  Worker w("stopper", 8);
  ASSERT_TRUE(w.submit([&, gate] {
    started.set_value();
    gate.wait();
    is_finished = true;
  }));
  ASSERT_TRUE(w.submit([&] { ++later_ran; }));
  started.get_future().wait();
  // The running job ends only once stop() has dropped the waiting one (the queue empties
  // while the worker is busy only by stop()).
  std::thread releaser([&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (w.queued() != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    release.set_value();
  });
  w.stop();
  releaser.join();
  EXPECT_TRUE(is_finished) << "stop() returns only after the running job";
  EXPECT_EQ(later_ran, 0) << "jobs not started by stop() are dropped";
  EXPECT_FALSE(w.submit([] {})) << "a stopped worker takes no jobs";
  w.stop();  // idempotent
}

}  // namespace
}  // namespace aspen::node
