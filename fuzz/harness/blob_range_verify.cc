// blob_range_verify: bytes presented to a RangeVerifier as the range encoding of a fixed blob
// (five chunk groups, the last short), fed in pieces. The first three input bytes choose the
// range and the piece size; the rest is the stream. Properties: no assert fires; every byte
// let out is the blob's own, in whole groups, in order, each overlapping the range; at most
// one group is held; a complete verifier has let out exactly the groups covering the range
// and consumed exactly the encoding's size.
#include <algorithm>
#include <span>
#include <vector>

#include "blob/blob_io.h"
#include "blob/outboard.h"
#include "blob/range_encoder.h"
#include "blob/range_verifier.h"
#include "core/limits.h"
#include "fuzz/harness/harness.h"

namespace aspen::fuzz {
namespace {

constexpr uint64_t kGroup = limits::kBlobChunkGroupBytes;
constexpr uint64_t kBlobSize = 4 * kGroup + 1234;
constexpr size_t kHeaderBytes = 3;

struct Blob {
  std::vector<uint8_t> data;
  blob::Outboard outboard;
};

const Blob& fixed_blob() {
  static const Blob b = [] {
    Blob out;
    out.data.resize(kBlobSize);
    uint32_t x = 12345;
    for (uint8_t& byte : out.data) {
      x = x * 1103515245u + 12345u;
      byte = static_cast<uint8_t>(x >> 16);
    }
    out.outboard = *blob::compute_outboard(kBlobSize, blob::blob_reader_over(out.data));
    return out;
  }();
  return b;
}

// The range and piece size the header bytes choose (end may pass the blob: it is clamped).
blob::ByteRange range_of(uint8_t a, uint8_t b) {
  const uint64_t start = kBlobSize * a / 255;
  return {start, start + (kBlobSize + 100 - start) * b / 255};
}
size_t piece_of(uint8_t c) {
  return c == 0 ? SIZE_MAX : size_t{1} + size_t{c} * 97;
}

}  // namespace

int blob_range_verify_one_input(const uint8_t* data, size_t size) {
  if (size < kHeaderBytes) return 0;
  const Blob& b = fixed_blob();
  const blob::ByteRange range = range_of(data[0], data[1]);
  const size_t piece = piece_of(data[2]);
  auto v = blob::RangeVerifier::create(b.outboard.root, kBlobSize, range);
  check(v.has_value(), "a valid request was refused");
  const blob::ByteRange clamped = v->range();

  uint64_t next_offset = clamped.start_bytes / kGroup * kGroup;
  auto sink = [&](uint64_t offset, std::span<const uint8_t> bytes) -> Status {
    check(offset == next_offset, "a group came out of order or a group was skipped");
    check(offset % kGroup == 0 && !bytes.empty() && bytes.size() <= kGroup, "not a whole group");
    check(offset + bytes.size() <= kBlobSize, "a group past the blob's end");
    check(offset < clamped.end_bytes && clamped.start_bytes < offset + bytes.size(),
          "a group outside the range");
    check(std::equal(bytes.begin(), bytes.end(), b.data.begin() + static_cast<ptrdiff_t>(offset)),
          "a byte that is not the blob's came out");
    next_offset = offset + bytes.size();
    return {};
  };
  std::span<const uint8_t> stream(data + kHeaderBytes, size - kHeaderBytes);
  while (!stream.empty()) {
    const size_t n = std::min(piece, stream.size());
    const Status s = v->feed(stream.first(n), sink);
    check(v->buffered_bytes() <= kGroup, "held more than one group");
    stream = stream.subspan(n);
    if (!s) {
      check(s.error().code() == ErrorCode::kCorruption,
            "a bad stream failed with a code other than Corruption");
      check(v->state() == blob::RangeVerifier::State::kFailed, "an error without the failed state");
      break;
    }
  }
  if (v->is_complete()) {
    const uint64_t covered_end =
        clamped.is_empty()
            ? next_offset
            : std::min(kBlobSize, (clamped.end_bytes + kGroup - 1) / kGroup * kGroup);
    check(next_offset == covered_end, "complete before every group of the range came out");
    check(v->consumed_bytes() == v->expected_bytes(), "complete after a stream of the wrong size");
  }
  return 0;
}

std::vector<std::string> blob_range_verify_seeds() {
  const Blob& b = fixed_blob();
  std::vector<std::string> seeds;
  const uint8_t headers[][3] = {{0, 255, 0},     {0, 10, 1},  {100, 30, 7},
                                {250, 255, 200}, {128, 0, 3}, {60, 255, 255}};
  for (const auto& h : headers) {
    std::string s(reinterpret_cast<const char*>(h), kHeaderBytes);
    const Status ok = blob::encode_range(
        b.outboard.root, kBlobSize, b.outboard.parents, blob::blob_reader_over(b.data),
        range_of(h[0], h[1]), [&](std::span<const uint8_t> frame) -> Status {
          s.append(reinterpret_cast<const char*>(frame.data()), frame.size());
          return {};
        });
    check(ok.has_value(), "the seed's encoding failed");
    seeds.push_back(std::move(s));
  }
  return seeds;
}

}  // namespace aspen::fuzz
