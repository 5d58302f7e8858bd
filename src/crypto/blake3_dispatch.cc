// Which compression kernel runs: chosen once from the CPU's features, overridable per hasher.
#include "core/assert.h"
#include "crypto/blake3.h"
#include "crypto/internal/blake3_impl.h"

namespace aspen::crypto {
namespace {

struct CpuFeatures {
  bool has_sse41 = false;
  bool has_avx2 = false;
  bool has_avx512f = false;
};

// Read once; the answer cannot change while the process runs. libgcc's checks include the
// OS having enabled the wider register state, not just the CPU having the instructions.
const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.has_sse41 = __builtin_cpu_supports("sse4.1");
    f.has_avx2 = __builtin_cpu_supports("avx2");
    f.has_avx512f = __builtin_cpu_supports("avx512f");
#endif
    return f;
  }();
  return features;
}

}  // namespace

bool blake3_backend_is_supported(Blake3Backend backend) noexcept {
  const CpuFeatures& f = cpu_features();
  // Each kernel hands its leftovers to the next narrower one, so it needs those too.
  switch (backend) {
    case Blake3Backend::kPortable:
      return true;
    case Blake3Backend::kSse41:
      return f.has_sse41;
    case Blake3Backend::kAvx2:
      return f.has_avx2 && f.has_sse41;
    case Blake3Backend::kAvx512:
      return f.has_avx512f && f.has_avx2 && f.has_sse41;
  }
  return false;
}

Blake3Backend blake3_best_backend() noexcept {
  static const Blake3Backend best = [] {
    for (const Blake3Backend b :
         {Blake3Backend::kAvx512, Blake3Backend::kAvx2, Blake3Backend::kSse41}) {
      if (blake3_backend_is_supported(b)) return b;
    }
    return Blake3Backend::kPortable;
  }();
  return best;
}

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
  switch (backend) {
    case Blake3Backend::kPortable:
      return &hash_many_portable;
    case Blake3Backend::kSse41:
      return &hash_many_sse41;
    case Blake3Backend::kAvx2:
      return &hash_many_avx2;
    case Blake3Backend::kAvx512:
      return &hash_many_avx512;
  }
  ASPEN_UNREACHABLE();
}

}  // namespace internal
}  // namespace aspen::crypto
