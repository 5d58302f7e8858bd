// src/blob range encodings: what the sender writes for a range, that a verifier turns it back
// into exactly the range's data, how ranges are clamped, and that a corrupt local copy is
// reported instead of sent.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "blob/byte_range.h"
#include "blob/outboard.h"
#include "blob/range_encoder.h"
#include "tests/blob/blob_test_util.h"

namespace aspen::blob {
namespace {

using namespace aspen::blob::testing;

bool message_has(const Error& e, const std::string& part) {
  return e.message().find(part) != std::string::npos;
}

RC_GTEST_PROP(BlobRangeEncoding, EncodeThenVerifyYieldsExactlyTheRange, ()) {
  // Mostly small blobs (many shapes, fast), sometimes a few hundred groups.
  const uint64_t max_size = *rc::gen::element<uint64_t>(3 * kGroup, 20 * kGroup, 300 * kGroup);
  const uint64_t size = *rc::gen::inRange<uint64_t>(0, max_size + 1);
  const uint64_t start = *rc::gen::inRange<uint64_t>(0, size + 1);
  const uint64_t end = *rc::gen::oneOf(rc::gen::inRange<uint64_t>(start, size + 1),
                                       rc::gen::inRange<uint64_t>(start, size + 3 * kGroup));
  const size_t piece = *rc::gen::element<size_t>(0, 1 + start % 100, 4093, kGroup + 64);
  const std::vector<uint8_t> data = random_blob(static_cast<size_t>(size), size ^ start);
  const Outboard ob = outboard_of(data);

  Result<std::vector<uint8_t>> encoded = encode(ob, data, {start, end});
  RC_ASSERT(encoded.has_value());
  Result<uint64_t> expected_size = encoded_range_size_bytes(size, {start, end});
  RC_ASSERT(expected_size.has_value());
  RC_ASSERT(encoded->size() == *expected_size);

  const Decoded d = decode(ob.root, size, {start, end}, *encoded, piece);
  RC_ASSERT(d.fed.has_value());
  RC_ASSERT(d.finished.has_value());
  RC_ASSERT(d.state == RangeVerifier::State::kComplete);
  RC_ASSERT(d.is_contiguous);
  RC_ASSERT(d.is_buffer_bounded);
  RC_ASSERT(matches_blob(d, data));
  const uint64_t clamped_end = std::min(end, size);
  if (start == clamped_end) {
    RC_ASSERT(d.bytes.empty());
  } else {
    // Whole groups around the range: from the group holding `start` to the one holding the end.
    RC_ASSERT(d.first_offset_bytes == start / kGroup * kGroup);
    RC_ASSERT(d.first_offset_bytes + d.bytes.size() ==
              std::min(size, (clamped_end + kGroup - 1) / kGroup * kGroup));
    RC_ASSERT(d.resume_offset_bytes == clamped_end);
  }
}

TEST(BlobRangeEncoding, WholeBlobEncodesToDataPlusOutboard) {
  for (uint64_t size : {uint64_t{1}, kGroup, kGroup + 1, 7 * kGroup + 5, 64 * kGroup}) {
    const std::vector<uint8_t> data = random_blob(size, size);
    const Outboard ob = outboard_of(data);
    Result<std::vector<uint8_t>> encoded = encode(ob, data, {0, UINT64_MAX});
    ASSERT_TRUE(encoded.has_value());
    EXPECT_EQ(encoded->size(), size + ob.parents.size());
    EXPECT_EQ(*encoded_range_size_bytes(size, {0, size}), size + outboard_size_bytes(size));
  }
}

TEST(BlobRangeEncoding, OneGroupOfALargeBlobCostsOneParentPerLevel) {
  // 1024 groups: a full tree of height 10, so any one group needs its 10 ancestors.
  const uint64_t size = 1024 * kGroup;
  for (uint64_t g : {uint64_t{0}, uint64_t{511}, uint64_t{512}, uint64_t{1023}}) {
    EXPECT_EQ(*encoded_range_size_bytes(size, {g * kGroup + 5, g * kGroup + 6}), kGroup + 10 * 64)
        << g;
  }
  // Two neighbouring groups across the middle share only the root.
  EXPECT_EQ(*encoded_range_size_bytes(size, {512 * kGroup - 1, 512 * kGroup + 1}),
            2 * kGroup + 19 * 64);
}

TEST(BlobRangeEncoding, EmptyRangeEncodesToNothing) {
  const std::vector<uint8_t> data = random_blob(5 * kGroup, 1);
  const Outboard ob = outboard_of(data);
  for (uint64_t at : {uint64_t{0}, uint64_t{3}, 2 * kGroup, 5 * kGroup}) {
    Result<std::vector<uint8_t>> encoded = encode(ob, data, {at, at});
    ASSERT_TRUE(encoded.has_value());
    EXPECT_TRUE(encoded->empty());
    EXPECT_EQ(*encoded_range_size_bytes(data.size(), {at, at}), 0u);
    const Decoded d = decode(ob.root, data.size(), {at, at}, *encoded);
    EXPECT_EQ(d.state, RangeVerifier::State::kComplete);
    EXPECT_TRUE(d.bytes.empty());
  }
}

TEST(BlobRangeEncoding, EndPastTheBlobIsCutToItsSize) {
  EXPECT_EQ(*clamp_range(100, {10, 1000}), (ByteRange{10, 100}));
  EXPECT_EQ(*clamp_range(100, {100, 1000}), (ByteRange{100, 100}));
  EXPECT_EQ(*clamp_range(0, {0, UINT64_MAX}), (ByteRange{0, 0}));
  EXPECT_EQ(*encoded_range_size_bytes(3 * kGroup, {0, UINT64_MAX}), 3 * kGroup + 2 * 64);
}

TEST(BlobRangeEncoding, StartPastTheBlobIsInvalid) {
  Result<ByteRange> r = clamp_range(100, {101, 200});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(message_has(r.error(), "[101, 200) starts past the end of a blob of 100 bytes"))
      << r.error().message();
  EXPECT_FALSE(encoded_range_size_bytes(100, {101, 200}).has_value());
}

TEST(BlobRangeEncoding, StartAfterEndIsInvalid) {
  Result<ByteRange> r = clamp_range(100, {50, 40});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(message_has(r.error(), "[50, 40) starts after it ends")) << r.error().message();
  const std::vector<uint8_t> data = random_blob(100, 2);
  const Outboard ob = outboard_of(data);
  EXPECT_FALSE(encode(ob, data, {50, 40}).has_value());
  EXPECT_FALSE(RangeVerifier::create(ob.root, 100, {50, 40}).has_value());
}

TEST(BlobRangeEncoding, BlobAboveTheSizeLimitIsInvalid) {
  Result<uint64_t> r = encoded_range_size_bytes(limits::kMaxBlobSizeBytes + 1, {0, 1});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(message_has(r.error(), "kMaxBlobSizeBytes"));
}

TEST(BlobRangeEncoding, LastPartialGroupIsSentShort) {
  const uint64_t size = 3 * kGroup + 100;
  const std::vector<uint8_t> data = random_blob(size, 3);
  const Outboard ob = outboard_of(data);
  Result<std::vector<uint8_t>> encoded = encode(ob, data, {size - 1, size});
  ASSERT_TRUE(encoded.has_value());
  // Root (groups [0, 4)), then its right child (groups [2, 4)), then 100 bytes of group 3.
  EXPECT_EQ(encoded->size(), 2 * 64 + 100u);
  const Decoded d = decode(ob.root, size, {size - 1, size}, *encoded);
  EXPECT_EQ(d.state, RangeVerifier::State::kComplete);
  EXPECT_EQ(d.first_offset_bytes, 3 * kGroup);
  EXPECT_EQ(d.bytes.size(), 100u);
  EXPECT_TRUE(matches_blob(d, data));
}

TEST(BlobRangeEncoding, OutboardOfTheWrongSizeIsInvalid) {
  const std::vector<uint8_t> data = random_blob(4 * kGroup, 4);
  Outboard ob = outboard_of(data);
  ob.parents.pop_back();
  Result<std::vector<uint8_t>> encoded = encode(ob, data, {0, 10});
  ASSERT_FALSE(encoded.has_value());
  EXPECT_EQ(encoded.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(message_has(encoded.error(), "outboard of 191 bytes")) << encoded.error().message();
}

TEST(BlobRangeEncoding, CorruptLocalDataIsReportedNotSent) {
  std::vector<uint8_t> data = random_blob(6 * kGroup, 5);
  const Outboard ob = outboard_of(data);
  data[4 * kGroup + 9] ^= 1;
  size_t data_frames = 0;
  Status s = encode_range(ob.root, data.size(), ob.parents, blob_reader_over(data),
                          {0, data.size()}, [&](std::span<const uint8_t> frame) -> Status {
                            data_frames += frame.size() == kGroup;
                            return {};
                          });
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kCorruption);
  EXPECT_TRUE(message_has(s.error(), "local blob: group 4 (bytes [65536, 81920))"))
      << s.error().message();
  EXPECT_EQ(data_frames, 4u) << "groups 0-3 went out, group 4 did not";
}

TEST(BlobRangeEncoding, CorruptLocalOutboardIsReportedNotSent) {
  const std::vector<uint8_t> data = random_blob(6 * kGroup, 6);
  Outboard ob = outboard_of(data);
  ob.parents[64 * 2 + 40] ^= 0x80;  // parent 2: groups [0, 2), its right child's value
  Result<std::vector<uint8_t>> encoded = encode(ob, data, {0, data.size()});
  ASSERT_FALSE(encoded.has_value());
  EXPECT_EQ(encoded.error().code(), ErrorCode::kCorruption);
  EXPECT_TRUE(message_has(encoded.error(), "local outboard: parent 2, over groups [0, 2)"))
      << encoded.error().message();
  // Ranges that do not pass through the bad parent are still served.
  EXPECT_TRUE(encode(ob, data, {5 * kGroup, 6 * kGroup}).has_value());
}

TEST(BlobRangeEncoding, WriterErrorStopsTheEncoding) {
  const std::vector<uint8_t> data = random_blob(6 * kGroup, 7);
  const Outboard ob = outboard_of(data);
  int calls = 0;
  Status s = encode_range(ob.root, data.size(), ob.parents, blob_reader_over(data),
                          {0, data.size()}, [&](std::span<const uint8_t>) -> Status {
                            if (++calls == 3)
                              return make_error(ErrorCode::kUnavailable, "peer went away");
                            return {};
                          });
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error(), Error(ErrorCode::kUnavailable, "peer went away"));
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace aspen::blob
