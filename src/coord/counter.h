// AtomicCounter: a named signed 64-bit counter shared by every client of the store.
//
//   AtomicCounter c(store, "jobs/completed");
//   auto v = c.increment();            // the value after the change
//   bool swapped = *c.compare_and_set(10, 0);
//
// State: "__coord:counter:<name>" holds the value in decimal (readable by any KV client);
// an absent key is 0. add() is one Add command (the state machine adds: concurrent adds never
// conflict, one write each); compare_and_set is a bounded optimistic CAS loop (update_key).
// Overflow past int64, or a key holding something else, is refused with InvalidArgument.
#pragma once

#include <optional>
#include <string>

#include "coord/coord_common.h"

namespace aspen::coord {

// Pure helpers, exposed for tests.
Result<int64_t> parse_counter(const std::optional<kvpb::KeyValue>& kv);
Result<int64_t> checked_add(int64_t value, int64_t delta);

class AtomicCounter {
 public:
  AtomicCounter(kv::KeyValueStore& store, std::string name) : store_(store), name_(std::move(name)) {}

  Result<int64_t> get();
  Result<int64_t> add(int64_t delta);  // returns the new value
  Result<int64_t> increment() { return add(1); }
  Result<int64_t> decrement() { return add(-1); }
  // Sets `desired` only if the value is `expected`; true when it did.
  Result<bool> compare_and_set(int64_t expected, int64_t desired);

  const std::string& name() const { return name_; }

 private:
  kv::KeyValueStore& store_;
  std::string name_;
};

}  // namespace aspen::coord
