// Helpers for the src/blob tests: blobs of random bytes, a whole range encoded into memory,
// and a verifier run over an encoding in pieces, recording what it let out.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "blob/blob_io.h"
#include "blob/outboard.h"
#include "blob/range_encoder.h"
#include "blob/range_verifier.h"
#include "core/limits.h"

namespace aspen::blob::testing {

inline constexpr uint64_t kGroup = limits::kBlobChunkGroupBytes;
inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * 1024;

inline std::vector<uint8_t> random_blob(size_t size_bytes, uint64_t seed) {
  std::vector<uint8_t> data(size_bytes);
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= size_bytes; i += 8) {
    const uint64_t w = rng();
    std::memcpy(data.data() + i, &w, 8);
  }
  for (; i < size_bytes; ++i) data[i] = static_cast<uint8_t>(rng());
  return data;
}

inline Outboard outboard_of(std::span<const uint8_t> data) {
  Result<Outboard> ob = compute_outboard(data.size(), blob_reader_over(data));
  EXPECT_TRUE(ob.has_value()) << ob.error().to_string();
  return ob.value_or(Outboard{});
}

// The encoding of `range`, all of it in one buffer.
inline Result<std::vector<uint8_t>> encode(const Outboard& ob, std::span<const uint8_t> data,
                                           ByteRange range) {
  std::vector<uint8_t> out;
  Status s = encode_range(ob.root, ob.size_bytes, ob.parents, blob_reader_over(data), range,
                          [&](std::span<const uint8_t> frame) -> Status {
                            out.insert(out.end(), frame.begin(), frame.end());
                            return {};
                          });
  if (!s) return std::unexpected(s.error());
  return out;
}

// What a verifier let out, and how it ended.
struct Decoded {
  Status fed;       // the first feed() error, or ok
  Status finished;  // finish()
  RangeVerifier::State state = RangeVerifier::State::kIncomplete;
  uint64_t first_offset_bytes = 0;  // of the first group let out
  std::vector<uint8_t> bytes;       // every group let out, in order
  bool is_contiguous = true;        // each group began where the one before ended
  bool is_buffer_bounded = true;    // buffered_bytes() <= one group after every feed
  uint64_t resume_offset_bytes = 0;
  size_t groups = 0;
};

// Feeds `encoded` to a verifier in pieces of `piece_bytes` (0: all at once), stopping at the
// first error.
inline Decoded decode(const crypto::Blake3Hash& root, uint64_t size_bytes, ByteRange range,
                      std::span<const uint8_t> encoded, size_t piece_bytes = 0) {
  Decoded d;
  Result<RangeVerifier> v = RangeVerifier::create(root, size_bytes, range);
  if (!v) {
    d.fed = std::unexpected(v.error());
    d.finished = d.fed;
    d.state = RangeVerifier::State::kFailed;
    return d;
  }
  auto sink = [&](uint64_t offset_bytes, std::span<const uint8_t> data) -> Status {
    if (d.groups == 0) d.first_offset_bytes = offset_bytes;
    if (offset_bytes != d.first_offset_bytes + d.bytes.size()) d.is_contiguous = false;
    d.bytes.insert(d.bytes.end(), data.begin(), data.end());
    ++d.groups;
    return {};
  };
  const size_t step = piece_bytes == 0 ? std::max<size_t>(encoded.size(), 1) : piece_bytes;
  for (size_t at = 0; at < encoded.size(); at += step) {
    d.fed = v->feed(encoded.subspan(at, std::min(step, encoded.size() - at)), sink);
    if (v->buffered_bytes() > limits::kBlobChunkGroupBytes) d.is_buffer_bounded = false;
    if (!d.fed) break;
  }
  d.finished = v->finish();
  d.state = v->state();
  d.resume_offset_bytes = v->resume_offset_bytes();
  return d;
}

// Every byte let out is the blob's own byte at that offset.
inline bool matches_blob(const Decoded& d, std::span<const uint8_t> data) {
  if (d.bytes.empty()) return true;
  if (!d.is_contiguous || d.first_offset_bytes + d.bytes.size() > data.size()) return false;
  return std::equal(d.bytes.begin(), d.bytes.end(),
                    data.begin() + static_cast<ptrdiff_t>(d.first_offset_bytes));
}

}  // namespace aspen::blob::testing
