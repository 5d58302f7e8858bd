#include "blob/range_verifier.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "blob/range_encoder.h"
#include "core/assert.h"

namespace aspen::blob {

using crypto::Blake3Hash;
using internal::kGroupBytes;
using internal::kParentBytes;

Result<RangeVerifier> RangeVerifier::create(const Blake3Hash& root, uint64_t size_bytes,
                                            ByteRange range) {
  Result<ByteRange> clamped = clamp_range(size_bytes, range);
  if (!clamped) return std::unexpected(clamped.error());
  // An empty blob's tree is one empty group, which no range ever sends: check it here, or a
  // wrong hash would go unnoticed.
  if (size_bytes == 0 && root != crypto::blake3_hash(std::span<const uint8_t>())) {
    return make_error(ErrorCode::kCorruption,
                      "the hash given for an empty blob is not the hash of no bytes");
  }
  Result<uint64_t> expected = encoded_range_size_bytes(size_bytes, *clamped);
  ASPEN_ASSERT(expected.has_value());
  return RangeVerifier(root, size_bytes, *clamped, *expected);
}

RangeVerifier::RangeVerifier(const Blake3Hash& root, uint64_t size_bytes, ByteRange range,
                             uint64_t expected_bytes)
    : size_bytes_(size_bytes),
      range_(range),
      expected_bytes_(expected_bytes),
      walk_(internal::num_groups(size_bytes), internal::groups_covering(range), root),
      // One group, or less for a one-group blob (which has no parents).
      buffer_(static_cast<size_t>(std::min(size_bytes, kGroupBytes))),
      resume_offset_bytes_(range.start_bytes) {}

size_t RangeVerifier::frame_size_bytes(const internal::TreeNode& node) const {
  return node.is_group() ? internal::group_size_bytes(size_bytes_, node.first_group) : kParentBytes;
}

RangeVerifier::State RangeVerifier::state() const {
  if (error_) return State::kFailed;
  return walk_.is_done() ? State::kComplete : State::kIncomplete;
}

Status RangeVerifier::fail(Error error) {
  error_ = std::move(error);
  buffered_bytes_ = 0;
  return std::unexpected(*error_);
}

Status RangeVerifier::feed(std::span<const uint8_t> bytes, const VerifiedGroupSink& sink) {
  if (error_) return std::unexpected(*error_);
  while (!bytes.empty()) {
    if (walk_.is_done()) {
      return fail(Error(ErrorCode::kCorruption,
                        std::to_string(bytes.size()) + " bytes past the end of the " +
                            std::to_string(expected_bytes_) + "-byte encoding of range " +
                            to_string(range_)));
    }
    const size_t need = frame_size_bytes(walk_.current());
    ASPEN_ASSERT(buffered_bytes_ < need && need <= buffer_.size());
    std::span<const uint8_t> frame;
    if (buffered_bytes_ == 0 && bytes.size() >= need) {
      // The whole frame is here: check it where it lies, without a copy.
      frame = bytes.first(need);
      bytes = bytes.subspan(need);
    } else {
      const size_t take = std::min(need - buffered_bytes_, bytes.size());
      std::memcpy(buffer_.data() + buffered_bytes_, bytes.data(), take);
      buffered_bytes_ += take;
      bytes = bytes.subspan(take);
      if (buffered_bytes_ < need) break;
      frame = std::span(buffer_).first(need);
    }
    if (Status s = take_frame(frame, sink); !s) return s;
  }
  return {};
}

Status RangeVerifier::take_frame(std::span<const uint8_t> frame, const VerifiedGroupSink& sink) {
  const internal::TreeNode& node = walk_.current();
  const uint64_t frame_offset = frames_done_bytes_;
  auto mismatch = [&](const char* what) {
    return fail(Error(ErrorCode::kCorruption, internal::describe(node, size_bytes_) +
                                                  ", encoded at byte " +
                                                  std::to_string(frame_offset) + " of range " +
                                                  to_string(range_) + ", " + what));
  };
  if (!node.is_group()) {
    const auto parent = frame.first<kParentBytes>();
    if (internal::parent_cv(parent, node.is_root) != node.cv)
      return mismatch("does not match the hash above it");
    const internal::Children children = internal::children_of(parent);
    walk_.descend(children.left, children.right);
  } else {
    if (internal::group_cv(frame, node.first_group, node.is_root) != node.cv) {
      return mismatch("does not match its hash");
    }
    const uint64_t offset = node.first_group * kGroupBytes;
    if (Status s = sink(offset, frame); !s) return fail(s.error());
    resume_offset_bytes_ = std::min(offset + frame.size(), range_.end_bytes);
    walk_.finish_group();
  }
  buffered_bytes_ = 0;
  frames_done_bytes_ += frame.size();
  return {};
}

Status RangeVerifier::finish() const {
  if (error_) return std::unexpected(*error_);
  if (walk_.is_done()) return {};
  return make_error(ErrorCode::kUnavailable,
                    "incomplete: the encoding of range " + to_string(range_) + " stopped after " +
                        std::to_string(consumed_bytes()) + " of " +
                        std::to_string(expected_bytes_) + " bytes; verified data ends at byte " +
                        std::to_string(resume_offset_bytes_) + ", resume from there");
}

}  // namespace aspen::blob
