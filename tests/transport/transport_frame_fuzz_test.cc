// Replays the frame decoder fuzz entry point (fuzz/frame_decoder_fuzz.h) over random and
// mutated inputs, so every test run exercises it even where libFuzzer is not built.
#include <gtest/gtest.h>

#include <random>

#include "fuzz/frame_decoder_fuzz.h"

namespace aspen::transport {
namespace {

TEST(TransportFrameFuzz, RandomAndMutatedInputsKeepDecoderInvariants) {
  std::mt19937 rng(20240604);
  // Seeds: valid streams of small frames, which mutations then corrupt.
  std::vector<std::string> corpus;
  for (int i = 0; i < 50; ++i) {
    std::string s;
    s.push_back(static_cast<char>(rng() % 64));  // limit
    s.push_back(static_cast<char>(rng()));
    for (int f = 0; f < 5; ++f) {
      const uint32_t n = rng() % 40;
      append_frame_header(s, n);
      s.append(n, static_cast<char>('a' + f));
    }
    corpus.push_back(s);
  }
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    if (i % 2 == 0) {
      input.resize(rng() % 200);
      for (auto& c : input) c = static_cast<char>(rng());
    } else {
      input = corpus[rng() % corpus.size()];
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !input.empty(); ++e) {
        switch (rng() % 3) {
          case 0: input[rng() % input.size()] = static_cast<char>(rng()); break;
          case 1: input.erase(rng() % input.size(), 1 + rng() % 8); break;
          default: input.insert(rng() % input.size(), 1 + rng() % 8, static_cast<char>(rng())); break;
        }
      }
    }
    fuzz::frame_decoder_one_input(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
}

}  // namespace
}  // namespace aspen::transport
