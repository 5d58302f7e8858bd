// Which compression kernel runs: chosen once from the CPU's features, overridable per hasher.
#include "core/assert.h"
#include "crypto/blake3.h"
#include "crypto/internal/blake3_impl.h"

namespace aspen::crypto {

bool blake3_backend_is_supported(Blake3Backend backend) noexcept {
  switch (backend) {
    case Blake3Backend::kPortable:
      return true;
    case Blake3Backend::kSse41:
    case Blake3Backend::kAvx2:
    case Blake3Backend::kAvx512:
      return false;
  }
  return false;
}

Blake3Backend blake3_best_backend() noexcept { return Blake3Backend::kPortable; }

std::string_view blake3_backend_name(Blake3Backend backend) noexcept {
  switch (backend) {
    case Blake3Backend::kPortable:
      return "portable";
    case Blake3Backend::kSse41:
      return "sse4.1";
    case Blake3Backend::kAvx2:
      return "avx2";
    case Blake3Backend::kAvx512:
      return "avx512";
  }
  return "unknown";
}

namespace internal {

HashManyFn hash_many_for(Blake3Backend backend) {
  ASPEN_ASSERT(blake3_backend_is_supported(backend));
  return &hash_many_portable;
}

}  // namespace internal
}  // namespace aspen::crypto
