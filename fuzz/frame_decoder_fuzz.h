// The frame decoder fuzz entry point, shared by the libFuzzer target (aspen-fuzz-frame_decoder,
// built with clang by fuzz/build.sh) and a GoogleTest that replays random and mutated
// inputs through it under g++ (tests/transport/transport_frame_fuzz_test.cc).
//
// Input layout: byte 0 picks the frame limit (small limits reach the too-large path
// often), byte 1 seeds the chunking; the rest is the byte stream. Checked properties:
// decoding in chunks gives the same frames and status as decoding in one piece; no frame
// exceeds the limit; frames never hold more bytes than the input; a failed decoder stays
// failed; the heap a partial frame pins (held_bytes, what the receive caps charge) stays
// within twice the larger of the limit and the upfront reserve, and is 0 between frames;
// a discarded decoder holds nothing and yields nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "transport/frame.h"

namespace aspen::fuzz {

inline void fuzz_check(bool ok) {
  if (!ok) std::abort();
}

inline int frame_decoder_one_input(const uint8_t* data, size_t size) {
  using transport::FrameDecoder;
  using transport::FrameDecodeStatus;
  if (size < 2) return 0;
  const size_t limit = data[0] == 0xff ? limits::kMaxFrameSizeBytes : data[0];
  uint32_t chunk_seed = data[1] | 1u;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

  FrameDecoder whole(limit);
  std::vector<std::string> whole_frames;
  const FrameDecodeStatus whole_status = whole.feed(bytes, whole_frames);

  FrameDecoder pieces(limit);
  std::vector<std::string> piece_frames;
  FrameDecodeStatus piece_status = FrameDecodeStatus::kOk;
  for (size_t pos = 0; pos < bytes.size();) {
    chunk_seed = chunk_seed * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(1 + (chunk_seed >> 16) % 17, bytes.size() - pos);
    const FrameDecodeStatus st = pieces.feed(bytes.substr(pos, n), piece_frames);
    fuzz_check(pieces.held_bytes() <= 2 * std::max<size_t>(limit, 64 * 1024));
    if (!pieces.has_partial_frame()) fuzz_check(pieces.held_bytes() == 0);
    if (piece_status == FrameDecodeStatus::kFrameTooLarge) fuzz_check(st == FrameDecodeStatus::kFrameTooLarge);
    piece_status = st;
    pos += n;
  }
  fuzz_check(piece_status == whole_status);
  fuzz_check(piece_frames == whole_frames);
  fuzz_check(whole.is_failed() == (whole_status == FrameDecodeStatus::kFrameTooLarge));
  size_t total = 0;
  for (const auto& f : whole_frames) {
    fuzz_check(f.size() <= limit);
    total += f.size() + transport::kFrameHeaderSizeBytes;
  }
  fuzz_check(total <= bytes.size());
  if (whole_status == FrameDecodeStatus::kFrameTooLarge) {
    fuzz_check(whole.rejected_size_bytes() > limit);
    std::vector<std::string> after;
    fuzz_check(whole.feed("more", after) == FrameDecodeStatus::kFrameTooLarge && after.empty());
  } else {
    fuzz_check(whole.has_partial_frame() == (total != bytes.size()));
  }
  whole.discard();
  std::vector<std::string> after_discard;
  (void)whole.feed(bytes, after_discard);
  fuzz_check(whole.held_bytes() == 0 && whole.is_failed() && after_discard.empty());
  return 0;
}

}  // namespace aspen::fuzz
