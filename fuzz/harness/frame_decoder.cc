// frame_decoder: the transport's frame decoder over arbitrary bytes (fuzz/frame_decoder_fuzz.h
// holds the entry point and its properties).
#include "fuzz/frame_decoder_fuzz.h"
#include "fuzz/harness/harness.h"

namespace aspen::fuzz {

std::vector<std::string> frame_decoder_seeds() {
  std::string s = "\x20\x07";
  for (uint32_t n : {0u, 3u, 17u}) {
    transport::append_frame_header(s, n);
    s.append(n, 'f');
  }
  return {s};
}

}  // namespace aspen::fuzz
