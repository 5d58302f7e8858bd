#include "transport/frame.h"

#include <algorithm>

namespace aspen::transport {
namespace {
// Grow the payload buffer as bytes arrive rather than reserving what a header claims: a peer
// announcing 10 MiB and sending nothing should not cost 10 MiB.
constexpr size_t kMaxUpfrontReserveBytes = 64 * 1024;
}  // namespace

void append_frame_header(std::string& out, uint32_t size_bytes) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((size_bytes >> shift) & 0xff));
}

size_t FrameDecoder::held_bytes() const noexcept {
  // A string's inline buffer lives in the decoder itself, not on the heap.
  static const size_t kInlineCapacity = std::string().capacity();
  return payload_.capacity() > kInlineCapacity ? payload_.capacity() : 0;
}

void FrameDecoder::discard() noexcept {
  // Swap, not assign: assigning an empty string keeps the old heap buffer (libstdc++).
  std::string().swap(payload_);
  header_have_ = 0;
  payload_need_ = 0;
  is_failed_ = true;
}

FrameDecodeStatus FrameDecoder::feed(std::string_view bytes, std::vector<std::string>& frames_out) {
  if (is_failed_) return FrameDecodeStatus::kFrameTooLarge;
  while (!bytes.empty()) {
    if (header_have_ < kFrameHeaderSizeBytes) {
      const size_t take = std::min(kFrameHeaderSizeBytes - header_have_, bytes.size());
      for (size_t i = 0; i < take; ++i) header_[header_have_ + i] = static_cast<uint8_t>(bytes[i]);
      header_have_ += take;
      bytes.remove_prefix(take);
      if (header_have_ < kFrameHeaderSizeBytes) break;
      const uint64_t size = (uint64_t{header_[0]} << 24) | (uint64_t{header_[1]} << 16) |
                            (uint64_t{header_[2]} << 8) | uint64_t{header_[3]};
      if (size > max_frame_size_bytes_) {
        is_failed_ = true;
        rejected_size_bytes_ = size;
        std::string().swap(payload_);
        return FrameDecodeStatus::kFrameTooLarge;
      }
      payload_need_ = static_cast<size_t>(size);
      payload_.clear();
      payload_.reserve(std::min(payload_need_, kMaxUpfrontReserveBytes));
    }
    const size_t take = std::min(payload_need_, bytes.size());
    if (payload_.size() + take > payload_.capacity() && payload_.size() >= kMaxUpfrontReserveBytes) {
      // The peer has sent real bytes of this frame, not just a header: reserve the rest at
      // once instead of doubling, which would copy a large frame about once more. The
      // frame limit bounds it, and flow control already lets this much be buffered.
      payload_.reserve(payload_.size() + payload_need_);
    }
    payload_.append(bytes.data(), take);
    payload_need_ -= take;
    bytes.remove_prefix(take);
    if (payload_need_ == 0) {
      frames_out.push_back(std::move(payload_));
      payload_ = std::string();
      header_have_ = 0;
    }
  }
  return FrameDecodeStatus::kOk;
}

}  // namespace aspen::transport
