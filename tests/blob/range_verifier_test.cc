// src/blob RangeVerifier: every corrupted byte is caught before a byte of its group comes out,
// truncation leaves it incomplete with a resume offset, resuming from any group boundary
// finishes the blob, and the piece sizes and the memory held do not depend on the input.
#include "blob/range_verifier.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "blob/outboard.h"
#include "blob/range_encoder.h"
#include "tests/blob/blob_test_util.h"

namespace aspen::blob {
namespace {

using namespace aspen::blob::testing;
using State = RangeVerifier::State;

bool message_has(const Error& e, const std::string& part) {
  return e.message().find(part) != std::string::npos;
}

struct Fixture {
  std::vector<uint8_t> data;
  Outboard ob;
  std::vector<uint8_t> encoded;
};

Fixture make(uint64_t size, ByteRange range, uint64_t seed) {
  Fixture f;
  f.data = random_blob(static_cast<size_t>(size), seed);
  f.ob = outboard_of(f.data);
  Result<std::vector<uint8_t>> encoded = encode(f.ob, f.data, range);
  EXPECT_TRUE(encoded.has_value());
  f.encoded = encoded.value_or(std::vector<uint8_t>{});
  return f;
}

// A flipped byte fails the verifier with Corruption, and what came out before is genuine.
void expect_caught(const Fixture& f, ByteRange range, size_t position, size_t piece_bytes) {
  std::vector<uint8_t> bad = f.encoded;
  bad[position] ^= static_cast<uint8_t>(1u << (position % 8));
  const Decoded d = decode(f.ob.root, f.data.size(), range, bad, piece_bytes);
  ASSERT_FALSE(d.fed.has_value()) << "flip at " << position << " went unnoticed";
  EXPECT_EQ(d.fed.error().code(), ErrorCode::kCorruption);
  EXPECT_EQ(d.state, State::kFailed);
  EXPECT_TRUE(matches_blob(d, f.data)) << "flip at " << position << " let a wrong byte out";
}

TEST(BlobRangeVerifier, EveryFlippedByteOfASmallBlobIsCaught) {
  // Three groups, the last short: two parents on two levels, and three groups of data.
  const uint64_t size = 2 * kGroup + 1000;
  const Fixture f = make(size, {0, size}, 1);
  ASSERT_EQ(f.encoded.size(), size + 128);
  for (size_t at = 0; at < f.encoded.size(); ++at) expect_caught(f, {0, size}, at, 0);
}

TEST(BlobRangeVerifier, RandomFlippedBytesOfALargerBlobAreCaught) {
  const uint64_t size = 150 * kGroup + 333;
  std::mt19937_64 rng(2);
  for (int round = 0; round < 4; ++round) {
    const uint64_t start = rng() % size;
    const ByteRange range{start, start + rng() % (size - start) + 1};
    const Fixture f = make(size, range, 10 + round);
    for (int i = 0; i < 40; ++i)
      expect_caught(f, range, rng() % f.encoded.size(), 1 + rng() % 20000);
  }
}

TEST(BlobRangeVerifier, CorruptionNamesTheGroupOrParentAndWhereItWasEncoded) {
  const uint64_t size = 3 * kGroup;
  const Fixture f = make(size, {0, size}, 3);
  // Encoding: P0 (64), P1 (64), group 0, group 1, group 2.
  std::vector<uint8_t> bad = f.encoded;
  bad[128 + kGroup + 5] ^= 1;
  Decoded d = decode(f.ob.root, size, {0, size}, bad);
  ASSERT_FALSE(d.fed.has_value());
  EXPECT_TRUE(message_has(d.fed.error(), "group 1 (bytes [16384, 32768)), encoded at byte 16512"))
      << d.fed.error().message();
  EXPECT_EQ(d.groups, 1u);
  EXPECT_EQ(d.resume_offset_bytes, kGroup);

  bad = f.encoded;
  bad[64 + 3] ^= 1;
  d = decode(f.ob.root, size, {0, size}, bad);
  ASSERT_FALSE(d.fed.has_value());
  EXPECT_TRUE(message_has(d.fed.error(),
                          "parent 1, over groups [0, 2) (bytes [0, 32768)), encoded at byte 64"))
      << d.fed.error().message();
  EXPECT_EQ(d.groups, 0u);
}

TEST(BlobRangeVerifier, WrongRootFailsAtTheFirstNode) {
  const uint64_t size = 5 * kGroup;
  const Fixture f = make(size, {0, size}, 4);
  crypto::Blake3Hash wrong = f.ob.root;
  wrong[0] ^= 1;
  const Decoded d = decode(wrong, size, {0, size}, f.encoded, 7);
  ASSERT_FALSE(d.fed.has_value());
  EXPECT_TRUE(message_has(d.fed.error(), "parent 0")) << d.fed.error().message();
  EXPECT_TRUE(d.bytes.empty());
}

TEST(BlobRangeVerifier, TruncationAnywhereLeavesItIncompleteWithAResumeOffset) {
  const uint64_t size = 4 * kGroup + 10;
  const Fixture f = make(size, {0, size}, 5);
  for (size_t cut = 0; cut < f.encoded.size(); cut += 97) {
    const Decoded d = decode(f.ob.root, size, {0, size}, std::span(f.encoded).first(cut), 1000);
    ASSERT_TRUE(d.fed.has_value());
    EXPECT_EQ(d.state, State::kIncomplete);
    ASSERT_FALSE(d.finished.has_value());
    EXPECT_EQ(d.finished.error().code(), ErrorCode::kUnavailable);
    EXPECT_TRUE(message_has(d.finished.error(), "incomplete")) << d.finished.error().message();
    EXPECT_TRUE(message_has(d.finished.error(), "resume from there"));
    EXPECT_TRUE(matches_blob(d, f.data));
    EXPECT_EQ(d.resume_offset_bytes, d.bytes.size());
  }
}

TEST(BlobRangeVerifier, ResumesFromEveryGroupBoundary) {
  const uint64_t size = 11 * kGroup + 500;
  const std::vector<uint8_t> data = random_blob(size, 6);
  const Outboard ob = outboard_of(data);
  for (uint64_t k = 0; k <= num_chunk_groups(size); ++k) {
    const uint64_t p = std::min(k * kGroup, size);
    Result<std::vector<uint8_t>> rest = encode(ob, data, {p, size});
    ASSERT_TRUE(rest.has_value());
    const Decoded d = decode(ob.root, size, {p, size}, *rest, 3000);
    EXPECT_EQ(d.state, State::kComplete) << p;
    EXPECT_EQ(d.resume_offset_bytes, size);
    if (p < size) {
      EXPECT_EQ(d.first_offset_bytes, p);
    }
    EXPECT_EQ(d.bytes.size(), size - p);
    EXPECT_TRUE(matches_blob(d, data));
  }
}

TEST(BlobRangeVerifier, DownloadCutShortThenResumedGivesTheWholeBlob) {
  const uint64_t size = 23 * kGroup + 4321;
  const std::vector<uint8_t> data = random_blob(size, 7);
  const Outboard ob = outboard_of(data);
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 10; ++trial) {
    std::vector<uint8_t> got;
    uint64_t from = 0;
    int connections = 0;
    while (from < size) {
      ASSERT_LT(++connections, 100);
      Result<std::vector<uint8_t>> encoded = encode(ob, data, {from, size});
      ASSERT_TRUE(encoded.has_value());
      // Half the connections drop at a random byte; the others deliver everything.
      const size_t cut =
          rng() % 2 == 0 ? static_cast<size_t>(rng() % (encoded->size() + 1)) : encoded->size();
      const Decoded d =
          decode(ob.root, size, {from, size}, std::span(*encoded).first(cut), 1 + rng() % 5000);
      ASSERT_TRUE(d.fed.has_value());
      if (!d.bytes.empty()) {
        EXPECT_EQ(d.first_offset_bytes, from);
      }
      got.insert(got.end(), d.bytes.begin(), d.bytes.end());
      from = d.resume_offset_bytes;
      EXPECT_EQ(from, got.size());
    }
    EXPECT_EQ(got, data);
  }
}

TEST(BlobRangeVerifier, OneBytePiecesGiveTheSameResult) {
  const uint64_t size = 9 * kGroup + 77;
  const ByteRange range{kGroup + 5, 6 * kGroup + 1};
  const Fixture f = make(size, range, 8);
  const Decoded whole = decode(f.ob.root, size, range, f.encoded, 0);
  const Decoded bytewise = decode(f.ob.root, size, range, f.encoded, 1);
  EXPECT_EQ(whole.state, State::kComplete);
  EXPECT_EQ(bytewise.state, State::kComplete);
  EXPECT_EQ(bytewise.bytes, whole.bytes);
  EXPECT_EQ(bytewise.first_offset_bytes, whole.first_offset_bytes);
  EXPECT_EQ(bytewise.groups, whole.groups);
  EXPECT_TRUE(bytewise.is_buffer_bounded);
  // A flip is caught at the same node, whatever the pieces.
  std::vector<uint8_t> bad = f.encoded;
  bad[bad.size() / 2] ^= 4;
  const Decoded a = decode(f.ob.root, size, range, bad, 0);
  const Decoded b = decode(f.ob.root, size, range, bad, 1);
  ASSERT_FALSE(a.fed.has_value());
  EXPECT_EQ(b.fed, a.fed);
  EXPECT_EQ(b.bytes, a.bytes);
}

TEST(BlobRangeVerifier, HoldsAtMostOneGroupWhateverThePieces) {
  const uint64_t size = 40 * kGroup + 1;
  const Fixture f = make(size, {0, size}, 9);
  Result<RangeVerifier> v = RangeVerifier::create(f.ob.root, size, {0, size});
  ASSERT_TRUE(v.has_value());
  std::mt19937_64 rng(9);
  size_t at = 0;
  uint64_t out = 0;
  while (at < f.encoded.size()) {
    const size_t n = std::min<size_t>(f.encoded.size() - at, rng() % (3 * kGroup));
    ASSERT_TRUE(v->feed(std::span(f.encoded).subspan(at, n),
                        [&](uint64_t, std::span<const uint8_t> d) -> Status {
                          out += d.size();
                          return {};
                        }));
    at += n;
    EXPECT_LE(v->buffered_bytes(), limits::kBlobChunkGroupBytes);
    EXPECT_EQ(v->consumed_bytes(), at);
  }
  EXPECT_TRUE(v->is_complete());
  EXPECT_EQ(v->expected_bytes(), f.encoded.size());
  EXPECT_EQ(out, size);
}

TEST(BlobRangeVerifier, BytesAfterTheEndAreCorruption) {
  const uint64_t size = 2 * kGroup;
  Fixture f = make(size, {0, size}, 10);
  f.encoded.push_back(0);
  const Decoded d = decode(f.ob.root, size, {0, size}, f.encoded);
  ASSERT_FALSE(d.fed.has_value());
  EXPECT_EQ(d.fed.error().code(), ErrorCode::kCorruption);
  EXPECT_TRUE(message_has(d.fed.error(), "1 bytes past the end")) << d.fed.error().message();
  EXPECT_EQ(d.bytes.size(), size) << "what was verified before the extra byte still came out";
}

TEST(BlobRangeVerifier, AFailedVerifierStaysFailedAndLetsNothingOut) {
  const uint64_t size = 3 * kGroup;
  Fixture f = make(size, {0, size}, 11);
  Result<RangeVerifier> v = RangeVerifier::create(f.ob.root, size, {0, size});
  ASSERT_TRUE(v.has_value());
  std::vector<uint8_t> bad = f.encoded;
  bad[0] ^= 1;
  int emitted = 0;
  auto sink = [&](uint64_t, std::span<const uint8_t>) -> Status {
    ++emitted;
    return {};
  };
  const Status first = v->feed(bad, sink);
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(v->feed(f.encoded, sink), first) << "the good stream afterwards changes nothing";
  EXPECT_EQ(v->finish(), first);
  EXPECT_EQ(v->state(), State::kFailed);
  EXPECT_EQ(emitted, 0);
}

TEST(BlobRangeVerifier, SinkErrorStopsItAndTheGroupIsNotCountedAsTaken) {
  const uint64_t size = 4 * kGroup;
  const Fixture f = make(size, {0, size}, 12);
  Result<RangeVerifier> v = RangeVerifier::create(f.ob.root, size, {0, size});
  ASSERT_TRUE(v.has_value());
  int calls = 0;
  const Status s = v->feed(f.encoded, [&](uint64_t, std::span<const uint8_t>) -> Status {
    if (++calls == 2) return make_error(ErrorCode::kStorageFull, "disk full");
    return {};
  });
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kStorageFull);
  EXPECT_EQ(v->state(), State::kFailed);
  EXPECT_EQ(v->resume_offset_bytes(), kGroup);
}

TEST(BlobRangeVerifier, EmptyBlobHashIsCheckedAtCreation) {
  const Fixture f = make(0, {0, 0}, 13);
  Decoded d = decode(f.ob.root, 0, {0, 10}, {});
  EXPECT_EQ(d.state, State::kComplete);
  crypto::Blake3Hash wrong = f.ob.root;
  wrong[31] ^= 1;
  Result<RangeVerifier> v = RangeVerifier::create(wrong, 0, {0, 0});
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), ErrorCode::kCorruption);
}

TEST(BlobRangeVerifier, OneGroupBlobIsItsOwnRoot) {
  for (uint64_t size : {uint64_t{1}, uint64_t{1023}, uint64_t{1025}, kGroup}) {
    const Fixture f = make(size, {0, size}, 14);
    EXPECT_EQ(f.encoded.size(), size) << "no parents";
    const Decoded d = decode(f.ob.root, size, {size / 2, size}, f.encoded, 100);
    EXPECT_EQ(d.state, State::kComplete);
    EXPECT_EQ(d.bytes, f.data);
  }
}

TEST(BlobRangeVerifier, WrongSizeIsCaughtByARangeWithTheLastGroup) {
  const uint64_t size = 3 * kGroup + 100;
  const std::vector<uint8_t> data = random_blob(size, 15);
  const Outboard ob = outboard_of(data);
  const uint64_t claimed = size - 50;  // same number of groups, so the same tree shape
  // The last group's data does not hash to the value its parent holds (it is 50 bytes short).
  Result<std::vector<uint8_t>> tail = encode(ob, data, {size - 1, size});
  ASSERT_TRUE(tail.has_value());
  Decoded d = decode(ob.root, claimed, {claimed - 1, claimed}, *tail);
  EXPECT_EQ(d.state, State::kFailed);
  EXPECT_TRUE(d.bytes.empty());
  // The documented limit: a range away from the last group verifies under a wrong size.
  Result<std::vector<uint8_t>> head = encode(ob, data, {0, kGroup});
  ASSERT_TRUE(head.has_value());
  d = decode(ob.root, claimed, {0, kGroup}, *head);
  EXPECT_EQ(d.state, State::kComplete);
}

TEST(BlobRangeVerifier, InvalidRequestsAreRefusedAtCreation) {
  const Fixture f = make(100, {0, 100}, 16);
  Result<RangeVerifier> v = RangeVerifier::create(f.ob.root, 100, {200, 300});
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), ErrorCode::kInvalidArgument);
  v = RangeVerifier::create(f.ob.root, limits::kMaxBlobSizeBytes + 1, {0, 1});
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace aspen::blob
