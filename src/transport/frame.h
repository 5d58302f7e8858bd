// Message framing on a byte stream: u32 big-endian length, then that many bytes.
//
// Every Aspen stream carries a sequence of framed messages (usually protobuf). The decoder is
// incremental (bytes arrive in arbitrary pieces from the network) and never trusts its input:
// a header announcing more than the frame limit (10 MiB by default) is an error that ends the
// stream, before any of the announced bytes are buffered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/limits.h"

namespace aspen::transport {

inline constexpr size_t kFrameHeaderSizeBytes = 4;

// Appends the 4-byte header for a message of `size_bytes` bytes. The caller checks the limit.
void append_frame_header(std::string& out, uint32_t size_bytes);

enum class FrameDecodeStatus : uint8_t {
  kOk,             // all input consumed; complete frames (possibly none) were appended
  kFrameTooLarge,  // a header announced more than the limit; the decoder is now failed
};

class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame_size_bytes = limits::kMaxFrameSizeBytes)
      : max_frame_size_bytes_(max_frame_size_bytes) {}

  // Consumes `bytes`; each frame completed by them is appended to `frames_out`. Once it has
  // returned kFrameTooLarge it keeps returning it and ignores further input.
  FrameDecodeStatus feed(std::string_view bytes, std::vector<std::string>& frames_out);

  // True if a frame has been started but not completed (a stream ending now is truncated).
  bool has_partial_frame() const noexcept { return header_have_ > 0; }
  bool is_failed() const noexcept { return is_failed_; }
  // The size the last rejected header announced (for error messages).
  uint64_t rejected_size_bytes() const noexcept { return rejected_size_bytes_; }
  // Heap bytes held for the frame in progress: the payload buffer's capacity (what it pins,
  // which may exceed what arrived: see kMaxUpfrontReserveBytes in frame.cc), or 0.
  size_t held_bytes() const noexcept;
  // Drops the frame in progress and ignores all further input (the stream was refused).
  void discard() noexcept;

 private:
  size_t max_frame_size_bytes_;
  uint8_t header_[kFrameHeaderSizeBytes] = {};
  size_t header_have_ = 0;    // header bytes seen for the current frame (4 once complete)
  size_t payload_need_ = 0;   // payload bytes still missing for the current frame
  std::string payload_;
  bool is_failed_ = false;
  uint64_t rejected_size_bytes_ = 0;
};

}  // namespace aspen::transport
