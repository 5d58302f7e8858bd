// FoundationDB's high-contention allocator over kv::KeyValueStore: hands out integers that
// are never handed out twice, small while few are used, and picked at random inside a window
// so that concurrent allocators rarely touch the same key.
//
// State under a subspace (the directory layer uses the root node's ("hca",)):
//   (0, start)     the current window's counter: how many allocations it admitted (8-byte LE)
//   (1, candidate) a claimed integer (empty value)
// A window [start, start + size) has size 64 while start < 255, 1024 while start < 65535,
// else 8192. An allocation increments the counter (a CAS on it); once the counter reaches half
// the window the window advances: one transaction deletes the old counter and creates the
// next. A claim is a transaction that creates (1, c) only if it is absent and the window's
// counter is the same key incarnation (create revision) that was read, so nobody claims in a
// window that has moved on, and claims below the current window's start (whose keys are then
// deleted) can never recur. FDB relies on read-conflict ranges; these compares replace them.
#pragma once

#include <functional>

#include "core/error.h"
#include "kv/key_value_store.h"
#include "layer/subspace.h"

namespace aspen::layer {

uint64_t hca_window_size(uint64_t start);

// Allocates one integer. random(n) returns a value in [0, n).
Result<uint64_t> hca_allocate(kv::KeyValueStore& store, const Subspace& hca,
                              const std::function<uint64_t(uint64_t)>& random);

}  // namespace aspen::layer
