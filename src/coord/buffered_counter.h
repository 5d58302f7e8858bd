// BufferedCounter: high-rate counting into an AtomicCounter, buffered locally.
//
//   BufferedCounter hits(store, "http/hits", {.flush_interval_ms = 1000, .flush_threshold = 1000});
//   hits.add(1);                                     // in memory, thread-safe, no I/O
//   if (hits.is_flush_due(now_ms)) hits.flush(now_ms);  // the caller drives flushing
//
// Deltas accumulate in memory and reach the store in one CAS per flush, so the stored value
// lags by at most the pending delta. A failed flush keeps the pending delta for the next one
// (nothing is lost unless the process dies with a delta pending: that is the trade).
#pragma once

#include <mutex>

#include "coord/counter.h"

namespace aspen::coord {

struct BufferedCounterConfig {
  uint64_t flush_interval_ms = 1000;
  uint64_t flush_threshold = 1000;  // |pending| at which a flush is due regardless of time
};

// Pure: is a flush due?
bool is_flush_due(int64_t pending, uint64_t last_flush_ms, uint64_t now_ms, const BufferedCounterConfig& cfg);

class BufferedCounter {
 public:
  BufferedCounter(kv::KeyValueStore& store, std::string name, BufferedCounterConfig cfg)
      : counter_(store, std::move(name)), cfg_(cfg) {}

  // InvalidArgument if the pending delta would overflow (flush first).
  Status add(int64_t delta);
  bool is_flush_due(uint64_t now_ms) const;
  // Pushes the pending delta; returns the stored value after it.
  Result<int64_t> flush(uint64_t now_ms);
  int64_t pending() const;

 private:
  AtomicCounter counter_;
  BufferedCounterConfig cfg_;
  mutable std::mutex mu_;
  int64_t pending_ = 0;
  uint64_t last_flush_ms_ = 0;
  std::mutex flush_mu_;  // one flush at a time, so a delta is never pushed twice
};

}  // namespace aspen::coord
