// The receiver's side of verified streaming: checks a range encoding (blob/range_encoder.h)
// as it arrives, against the blob's 32-byte hash, and lets a group of data go only after its
// hash matched. A peer can send wrong bytes but can never make a wrong byte come out.
//
//   Result<RangeVerifier> v = RangeVerifier::create(root, size_bytes, {start, end});
//   while (auto piece = stream.read()) {              // pieces of any size, even 1 byte
//     Status s = v->feed(*piece, [&](uint64_t offset_bytes, std::span<const uint8_t> data) {
//       return file.write_at(offset_bytes, data);      // verified: safe to write or expose
//     });
//     if (!s) break;                                   // Corruption: drop this peer
//   }
//   Status done = v->finish();                         // Unavailable "incomplete" if cut short
//
// What comes out: whole chunk groups, in order, each with its offset in the blob. The groups
// cover the requested range, so the first may start before its start and the last end after
// its end (up to the blob's end); the caller trims if it wants exactly the range.
//
// Failure: the first parent or group whose hash does not match stops the verifier with a
// Corruption error naming the node (group index, byte range) and the encoded byte where its
// frame began; bytes after the end of the encoding are Corruption too. Once failed it stays
// failed: feed() returns the same error and emits nothing.
//
// Resume: resume_offset_bytes() is where the verified output ends. After a connection drops,
// a new verifier for [resume_offset_bytes(), end) (and a new request for that range) goes on
// where this one stopped; nothing verified is fetched again, except the parents on the way.
//
// Memory: at most one group (kBlobChunkGroupBytes) of a frame that arrived in pieces, plus one
// pending node per tree level (limits::kMaxBlobTreeHeight), whatever the input.
//
// The size: a wrong size changes the tree's shape, but a range that stays away from the
// blob's last group can still verify against the hash. The size is proven only by a range
// that includes the last group (for an empty blob, create() checks the hash itself). A
// receiver that learned the size from a peer should fetch the last group first (or with it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "blob/byte_range.h"
#include "blob/internal/tree.h"
#include "core/error.h"
#include "crypto/blake3.h"

namespace aspen::blob {

// Takes one verified group: its offset in the blob and its data (valid only during the call).
// An error stops the verifier (the group does not count as taken).
using VerifiedGroupSink =
    std::function<Status(uint64_t offset_bytes, std::span<const uint8_t> data)>;

class RangeVerifier {
 public:
  enum class State : uint8_t {
    kIncomplete,  // more encoded bytes are expected
    kComplete,    // every group of the range was verified and taken
    kFailed,      // a node did not match, extra bytes came, or the sink failed
  };

  // A verifier for `range` (clamped by clamp_range) of the blob with hash `root` and size
  // `size_bytes`. Errors: clamp_range's; for an empty blob, a root that is not the hash of
  // nothing (Corruption).
  static Result<RangeVerifier> create(const crypto::Blake3Hash& root, uint64_t size_bytes,
                                      ByteRange range);

  // Consumes `bytes`, the next piece of the encoding, calling `sink` for each group verified.
  Status feed(std::span<const uint8_t> bytes, const VerifiedGroupSink& sink);

  // Ok once complete; the failure if failed; Unavailable ("incomplete ...", naming the resume
  // offset) if the encoding stopped early.
  Status finish() const;

  State state() const;
  bool is_complete() const { return state() == State::kComplete; }
  // The range as clamped to the blob.
  const ByteRange& range() const { return range_; }
  // Where a resumed request starts: the range's start until a group is taken, then the end of
  // the last group taken (at most the range's end).
  uint64_t resume_offset_bytes() const { return resume_offset_bytes_; }
  // Encoded bytes consumed so far, and in all (encoded_range_size_bytes).
  uint64_t consumed_bytes() const { return frames_done_bytes_ + buffered_bytes_; }
  uint64_t expected_bytes() const { return expected_bytes_; }
  // Bytes of an incomplete frame held: at most kBlobChunkGroupBytes.
  size_t buffered_bytes() const { return buffered_bytes_; }

 private:
  RangeVerifier(const crypto::Blake3Hash& root, uint64_t size_bytes, ByteRange range,
                uint64_t expected_bytes);
  size_t frame_size_bytes(const internal::TreeNode& node) const;
  // Checks one whole frame for the current node and moves the walk on.
  Status take_frame(std::span<const uint8_t> frame, const VerifiedGroupSink& sink);
  Status fail(Error error);

  uint64_t size_bytes_;
  ByteRange range_;
  uint64_t expected_bytes_;
  internal::RangeWalk walk_;
  // The current frame, when it arrives in pieces. Sized once: the blob's largest frame.
  std::vector<uint8_t> buffer_;
  size_t buffered_bytes_ = 0;
  uint64_t frames_done_bytes_ = 0;
  uint64_t resume_offset_bytes_;
  std::optional<Error> error_;
};

}  // namespace aspen::blob
