// SequenceGenerator: unique, strictly increasing ids handed out from reserved blocks.
//
//   SequenceGenerator ids(store, "orders", /*block_size=*/1000);
//   uint64_t id = *ids.next();
//
// State: "__coord:seq:<name>" holds the first id not yet reserved by anyone (absent = 1).
// A generator reserves [next, next + block_size) with one CAS and hands ids out from memory
// until the block runs dry. Ids are unique across all generators of a name and strictly
// increasing within one generator; across generators they interleave by block (a generator
// that reserved later hands out larger ids). Ids left in a block when a process exits are
// skipped, never reused. Thread-safe.
#pragma once

#include <mutex>
#include <string>

#include "coord/coord_common.h"

namespace aspen::coord {

struct IdBlock {
  uint64_t first = 0;  // inclusive
  uint64_t end = 0;    // exclusive
};

class SequenceGenerator {
 public:
  SequenceGenerator(kv::KeyValueStore& store, std::string name, uint64_t block_size)
      : store_(store), name_(std::move(name)), block_size_(block_size) {}

  Result<uint64_t> next();
  // Reserves `count` consecutive ids straight from the store (bypassing the local block).
  Result<IdBlock> reserve(uint64_t count);

 private:
  kv::KeyValueStore& store_;
  std::string name_;
  uint64_t block_size_;
  std::mutex mu_;
  IdBlock block_;  // [first, end): ids not yet handed out
};

}  // namespace aspen::coord
