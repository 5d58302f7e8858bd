// Latency histograms for the metrics page: fixed buckets (Prometheus `le` bounds, in seconds
// on the page, microseconds inside), bumped by any thread with relaxed atomics and read as a
// snapshot. Fixed bounds keep a histogram a few hundred bytes and make every node's buckets
// line up, so Prometheus can aggregate them across members (histogram_quantile over sum by le).
//
//   LatencyHistogram h;            // a member of a counters struct
//   h.observe_us(840);             // any thread
//   HistogramReading r = h.read(); // the metrics page
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace aspen::node {

// Upper bounds, microseconds: 100 us .. 10 s, about 2.5x apart (fsyncs, commits, reads).
inline constexpr std::array<uint64_t, 16> kLatencyBucketsUs = {
    100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000,
    1'000'000, 2'500'000, 5'000'000, 10'000'000};
// One count per bound and the last for everything above (+Inf).
inline constexpr size_t kLatencyBucketCount = kLatencyBucketsUs.size() + 1;

// A histogram read once: counts per bucket (not cumulative) and the sum.
struct HistogramReading {
  std::array<uint64_t, kLatencyBucketCount> counts{};
  uint64_t sum_us = 0;
  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t c : counts) n += c;
    return n;
  }
};

// [any] relaxed atomics: a reading may be a few observations behind, never torn per field.
class LatencyHistogram {
 public:
  void observe_us(uint64_t us) {
    size_t i = 0;
    while (i < kLatencyBucketsUs.size() && us > kLatencyBucketsUs[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(us, std::memory_order_relaxed);
  }
  HistogramReading read() const {
    HistogramReading r;
    for (size_t i = 0; i < kLatencyBucketCount; ++i) r.counts[i] = counts_[i].load(std::memory_order_relaxed);
    r.sum_us = sum_us_.load(std::memory_order_relaxed);
    return r;
  }

 private:
  std::array<std::atomic<uint64_t>, kLatencyBucketCount> counts_{};
  std::atomic<uint64_t> sum_us_{0};
};

}  // namespace aspen::node
