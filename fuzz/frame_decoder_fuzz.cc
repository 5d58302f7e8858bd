// libFuzzer target for the transport frame decoder (untrusted bytes from any peer).
// Build and run: fuzz/build.sh && build-fuzz/frame_decoder_fuzz -max_total_time=60
#include "fuzz/frame_decoder_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return aspen::fuzz::frame_decoder_one_input(data, size);
}
