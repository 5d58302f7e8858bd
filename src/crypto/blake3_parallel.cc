// Multi-threaded BLAKE3 of an input in memory.
//
// The input is cut into units of 2^k whole chunks. Each unit is a complete subtree of the
// BLAKE3 tree (only the last may be short), so the units' chaining values can be computed
// independently, in any order, and then combined by the same left-balanced tree that joins
// chunks. Threads take units from a shared counter, which balances the load when one thread
// is slowed down; every thread started here is joined before returning.
#include <algorithm>
#include <atomic>
#include <bit>
#include <system_error>
#include <thread>
#include <vector>

#include "core/assert.h"
#include "crypto/blake3.h"
#include "crypto/internal/blake3_impl.h"

namespace aspen::crypto {
namespace {

using internal::Words8;

// Below this, starting threads costs more than it saves.
constexpr size_t kMinParallelBytes = 128 * 1024;
// Units per thread: enough to even out threads that run at different speeds.
constexpr size_t kUnitsPerThread = 4;
// Smallest unit: keeps the kernels fed with whole batches of chunks.
constexpr uint64_t kMinUnitChunks = 64;

}  // namespace

Blake3Hash blake3_hash_parallel(std::span<const uint8_t> data, size_t num_threads) {
  ASPEN_ASSERT(num_threads >= 1);
  if (num_threads == 1 || data.size() < kMinParallelBytes) return blake3_hash(data);

  const uint64_t num_chunks = (data.size() + kBlake3ChunkSizeBytes - 1) / kBlake3ChunkSizeBytes;
  const uint64_t unit_chunks =
      std::max(kMinUnitChunks, std::bit_floor(num_chunks / (num_threads * kUnitsPerThread)));
  const size_t unit_bytes = static_cast<size_t>(unit_chunks) * kBlake3ChunkSizeBytes;
  const size_t num_units = (data.size() + unit_bytes - 1) / unit_bytes;
  if (num_units < 2) return blake3_hash(data);

  const Blake3Backend backend = blake3_best_backend();
  std::vector<Words8> cvs(num_units);
  std::atomic<size_t> next_unit{0};
  auto work = [&] {
    for (size_t i = next_unit++; i < num_units; i = next_unit++) {
      const size_t offset = i * unit_bytes;
      const size_t len = std::min(unit_bytes, data.size() - offset);
      cvs[i] = internal::subtree_cv(backend, data.data() + offset, len, i * unit_chunks,
                                    internal::kIv, 0);
    }
  };
  {
    std::vector<std::thread> workers;
    workers.reserve(num_threads - 1);
    for (size_t t = 1; t < num_threads && t < num_units; ++t) {
      try {
        workers.emplace_back(work);
      } catch (const std::system_error&) {
        break;  // out of threads: the ones running (and this one) take the remaining units
      }
    }
    work();
    for (std::thread& w : workers) w.join();
  }

  // Combine the units' chaining values level by level, pairing from the left (an odd last
  // one moves up unchanged), until two remain: their parent is the root.
  size_t n = num_units;
  while (n > 2) {
    const size_t pairs = n / 2;
    for (size_t i = 0; i < pairs; ++i) {
      cvs[i] = internal::parent_cv(cvs[2 * i], cvs[2 * i + 1], internal::kIv, 0);
    }
    if (n % 2 == 1) cvs[pairs] = cvs[n - 1];
    n = pairs + n % 2;
  }
  return internal::root_hash(internal::parent_node(cvs[0], cvs[1], internal::kIv, 0));
}

}  // namespace aspen::crypto
