// One libFuzzer binary per harness target (fuzz/harness/harness.h): ASPEN_FUZZ_TARGET names
// it at compile time. Built only with -DASPEN_FUZZ=ON and clang (fuzz/build.sh).
//
// With ASPEN_FUZZ_SEED_DIR set, the target's well-formed seeds are written there before
// libFuzzer reads its corpus directories, so a fresh run starts from inputs that get past
// the first checks.
#include <cstdlib>
#include <fstream>
#include <string>

#include "fuzz/harness/harness.h"

namespace {

const aspen::fuzz::Target& this_target() {
  for (const auto& t : aspen::fuzz::targets()) {
    if (t.name == ASPEN_FUZZ_TARGET) return t;
  }
  std::abort();  // a target the harness does not list: a build mistake
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("ASPEN_FUZZ_SEED_DIR"); dir != nullptr && *dir != '\0') {
    int i = 0;
    for (const auto& seed : this_target().seeds()) {
      std::ofstream(std::string(dir) + "/seed-" + std::to_string(i++), std::ios::binary) << seed;
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return this_target().one_input(data, size); }
