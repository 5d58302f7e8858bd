// src/crypto: BLAKE3 against b3sum (the independent oracle), against itself (incremental vs
// one-shot, every SIMD kernel vs the portable one, threads vs one thread) and the
// verified-streaming building blocks against the root hash.
#include "crypto/blake3.h"
#include "tests/crypto/b3sum_oracle.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace aspen::crypto {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kVectorKey = "whats the Elvish word for friend";
constexpr std::string_view kVectorContext = "BLAKE3 2019-12-27 16:29:52 test vectors context";
constexpr size_t kVectorOutputBytes = 131;
constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;

enum class Mode { kHash, kKeyed, kDeriveKey };

Blake3Key vector_key() {
  Blake3Key key;
  static_assert(kVectorKey.size() == key.size());
  std::copy(kVectorKey.begin(), kVectorKey.end(), key.begin());
  return key;
}

Blake3Hasher hasher_for(Mode mode) {
  switch (mode) {
    case Mode::kHash:
      return Blake3Hasher();
    case Mode::kKeyed:
      return Blake3Hasher::keyed(vector_key());
    case Mode::kDeriveKey:
      return Blake3Hasher::for_derive_key(kVectorContext);
  }
  return Blake3Hasher();
}

// The official test vectors' input: byte i is i mod 251.
std::vector<uint8_t> pattern_input(size_t len_bytes) {
  std::vector<uint8_t> data(len_bytes);
  for (size_t i = 0; i < len_bytes; ++i) data[i] = static_cast<uint8_t>(i % 251);
  return data;
}

std::vector<uint8_t> random_input(size_t len_bytes, uint64_t seed) {
  std::vector<uint8_t> data(len_bytes);
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= len_bytes; i += 8) {
    const uint64_t w = rng();
    std::memcpy(data.data() + i, &w, 8);
  }
  for (; i < len_bytes; ++i) data[i] = static_cast<uint8_t>(rng());
  return data;
}

std::string xof_hex(const Blake3Hasher& hasher, size_t len_bytes) {
  std::vector<uint8_t> out(len_bytes);
  hasher.finalize_xof(0, out);
  return blake3_to_hex(out);
}

using aspen::testing::has_b3sum;
using aspen::testing::kNoB3sum;
using TempDir = aspen::testing::OracleDir;

// b3sum's hex output for `file` in `mode` with `len_bytes` of output. Paths and the context
// are ours (no quotes in them), so single quotes are enough for the shell.
std::string b3sum_hex(const TempDir& dir, const fs::path& file, Mode mode, size_t len_bytes) {
  std::string command = "b3sum --no-names --length " + std::to_string(len_bytes);
  switch (mode) {
    case Mode::kHash:
      break;
    case Mode::kKeyed: {
      // b3sum reads the 32 raw key bytes from standard input.
      const Blake3Key key = vector_key();
      const fs::path key_file = dir.write("key", key);
      command += " --keyed < '" + key_file.string() + "'";
      break;
    }
    case Mode::kDeriveKey:
      command += " --derive-key '" + std::string(kVectorContext) + "'";
      break;
  }
  auto r = aspen::testing::run_command(command + " '" + file.string() + "'");
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
  return r.is_ok ? r.out : "b3sum failed: " + r.out;
}

// --- fixed digests (meaningful without b3sum) ------------------------------------------

// Recorded from b3sum 1.2.0 when these tests were written.
TEST(Blake3Digests, MatchValuesRecordedFromB3sum) {
  EXPECT_EQ(blake3_to_hex(blake3_hash(std::string_view())),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
  EXPECT_EQ(blake3_to_hex(blake3_hash(std::string_view("abc"))),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
  EXPECT_EQ(blake3_to_hex(blake3_hash(pattern_input(1025))),
            "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444");
  EXPECT_EQ(blake3_to_hex(blake3_hash(pattern_input(102400))),
            "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085");
  EXPECT_EQ(blake3_to_hex(blake3_keyed_hash(vector_key(), pattern_input(1025))),
            "357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69");
  EXPECT_EQ(blake3_to_hex(blake3_derive_key(kVectorContext, pattern_input(1025))),
            "effaa245f065fbf82ac186839a249707c3bddf6d3fdda22d1b95a3c970379bcb");
  EXPECT_EQ(xof_hex(Blake3Hasher(), 131),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262e00f03e7b69af26b7"
            "faaf09fcd333050338ddfe085b8cc869ca98b206c08243a26f5487789e8f660afe6c99ef9e0c52b92"
            "e7393024a80459cf91f476f9ffdbda7001c22e159b402631f277ca96f2defdf1078282314e763699a"
            "31c5363165421cce14d");
}

// --- against b3sum ---------------------------------------------------------------------

TEST(Blake3Vectors, AllModesWithExtendedOutputMatchB3sumOnOfficialVectorInputs) {
  ASSERT_TRUE(has_b3sum()) << kNoB3sum;
  const TempDir dir;
  const size_t lengths[] = {0,    1,    1023, 1024, 1025, 2048,  2049,  3072,
                            3073, 4096, 4097, 5120, 5121, 6144,  6145,  7168,
                            7169, 8192, 8193, 16384, 31744, 102400};
  for (const size_t len : lengths) {
    const std::vector<uint8_t> input = pattern_input(len);
    const fs::path file = dir.write("input", input);
    for (const Mode mode : {Mode::kHash, Mode::kKeyed, Mode::kDeriveKey}) {
      SCOPED_TRACE("length " + std::to_string(len) + " mode " +
                   std::to_string(static_cast<int>(mode)));
      Blake3Hasher hasher = hasher_for(mode);
      hasher.update(input);
      const std::string expected = b3sum_hex(dir, file, mode, kVectorOutputBytes);
      EXPECT_EQ(xof_hex(hasher, kVectorOutputBytes), expected);
      // The default 32-byte output is a prefix of the extended one.
      EXPECT_EQ(blake3_to_hex(hasher.finalize()), expected.substr(0, 64));
    }
  }
}

TEST(Blake3Files, RandomFilesOfTrickySizesMatchB3sum) {
  ASSERT_TRUE(has_b3sum()) << kNoB3sum;
  const TempDir dir;
  const size_t sizes[] = {0,     1,        1023, 1024,     1025,    2048,       16383,
                          16384, 16385,    kMiB - 1, kMiB, kMiB + 1, 100 * kMiB};
  uint64_t seed = 1;
  for (const size_t size : sizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::vector<uint8_t> input = random_input(size, seed++);
    const fs::path file = dir.write("random", input);
    const std::string expected = b3sum_hex(dir, file, Mode::kHash, kBlake3HashSizeBytes);
    EXPECT_EQ(blake3_to_hex(blake3_hash(input)), expected);
    EXPECT_EQ(blake3_to_hex(blake3_hash_parallel(input, 2)), expected);
    fs::remove(file);
  }
}

// --- properties of the API -------------------------------------------------------------

RC_GTEST_PROP(Blake3Property, IncrementalUpdatesInAnyPiecesEqualOneShot, ()) {
  const auto mode = *rc::gen::element(Mode::kHash, Mode::kKeyed, Mode::kDeriveKey);
  const auto len = *rc::gen::inRange<size_t>(0, 40 * kKiB);
  const auto seed = *rc::gen::arbitrary<uint64_t>();
  // Piece sizes cycle through the drawn list; empty pieces are allowed (and must change
  // nothing), so a non-empty one is added to guarantee progress.
  auto piece_sizes =
      *rc::gen::container<std::vector<size_t>>(rc::gen::inRange<size_t>(0, 5000));
  piece_sizes.push_back(*rc::gen::inRange<size_t>(1, 3 * kBlake3ChunkSizeBytes));
  const std::vector<uint8_t> input = random_input(len, seed);

  Blake3Hasher one_shot = hasher_for(mode);
  one_shot.update(input);

  Blake3Hasher incremental = hasher_for(mode);
  size_t offset = 0;
  for (size_t i = 0; offset < len; ++i) {
    const size_t take = std::min(piece_sizes[i % piece_sizes.size()], len - offset);
    incremental.update(std::span(input).subspan(offset, take));
    offset += take;
  }
  RC_ASSERT(incremental.finalize() == one_shot.finalize());
  RC_ASSERT(xof_hex(incremental, 200) == xof_hex(one_shot, 200));
}

TEST(Blake3Xof, ReadsFromAnyOffsetAndInAnyPiecesEqualOneLongRead) {
  Blake3Hasher hasher;
  hasher.update(pattern_input(5000));
  std::vector<uint8_t> whole(1000);
  hasher.finalize_xof(0, whole);

  for (const size_t offset : {0, 1, 63, 64, 65, 500, 999}) {
    std::vector<uint8_t> tail(whole.size() - offset);
    hasher.finalize_xof(offset, tail);
    EXPECT_TRUE(std::equal(tail.begin(), tail.end(), whole.begin() + static_cast<long>(offset)))
        << "offset " << offset;
  }

  Blake3OutputReader reader = hasher.finalize_reader();
  std::vector<uint8_t> pieces(whole.size());
  size_t pos = 0;
  for (size_t step = 1; pos < pieces.size(); step = step * 3 % 97 + 1) {
    const size_t take = std::min(step, pieces.size() - pos);
    reader.read(std::span(pieces).subspan(pos, take));
    pos += take;
    EXPECT_EQ(reader.position_bytes(), pos);
  }
  EXPECT_EQ(pieces, whole);

  reader.seek(130);
  std::vector<uint8_t> again(10);
  reader.read(again);
  EXPECT_TRUE(std::equal(again.begin(), again.end(), whole.begin() + 130));
  EXPECT_TRUE(std::equal(whole.begin(), whole.begin() + 32, hasher.finalize().begin()));
}

TEST(Blake3Hasher, FinalizeLeavesStateSoUpdateAndCopiesContinue) {
  const std::vector<uint8_t> input = random_input(10000, 7);
  Blake3Hasher hasher;
  hasher.update(std::span(input).first(4000));
  const Blake3Hasher fork = hasher;
  EXPECT_EQ(hasher.finalize(), blake3_hash(std::span(input).first(4000)));
  hasher.update(std::span(input).subspan(4000));
  EXPECT_EQ(hasher.finalize(), blake3_hash(input));
  EXPECT_EQ(fork.finalize(), blake3_hash(std::span(input).first(4000)));

  hasher.reset();
  EXPECT_EQ(hasher.finalize(), blake3_hash(std::string_view()));
  Blake3Hasher keyed = Blake3Hasher::keyed(vector_key());
  keyed.update(input);
  keyed.reset();
  keyed.update(input);
  EXPECT_EQ(keyed.finalize(), blake3_keyed_hash(vector_key(), input));
}

// --- SIMD kernels against the portable one ---------------------------------------------

std::string digest_with(Blake3Backend backend, Mode mode, std::span<const uint8_t> input,
                        size_t piece_bytes) {
  Blake3Hasher hasher = hasher_for(mode);
  hasher.set_backend(backend);
  for (size_t offset = 0; offset < input.size(); offset += piece_bytes) {
    hasher.update(input.subspan(offset, std::min(piece_bytes, input.size() - offset)));
  }
  return xof_hex(hasher, 100);
}

// Lengths that end batches of every kernel width (4, 8, 16 chunks and the 64-chunk batch)
// exactly, one byte short and one byte over, plus a deep tree.
void expect_backend_matches_portable(Blake3Backend backend) {
  if (!blake3_backend_is_supported(backend)) {
    GTEST_SKIP() << "this CPU lacks " << blake3_backend_name(backend);
  }
  std::vector<size_t> lengths = {0, 1, 64, 1024, 1025, 3 * kKiB, 300 * kKiB + 17, 1 * kMiB + 1};
  for (const size_t chunks : {2, 4, 5, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 128, 129}) {
    for (const long delta : {-1L, 0L, 1L}) {
      lengths.push_back(static_cast<size_t>(static_cast<long>(chunks * kKiB) + delta));
    }
  }
  const std::vector<uint8_t> data = random_input(*std::max_element(lengths.begin(), lengths.end()), 9);
  for (const size_t len : lengths) {
    const auto input = std::span(data).first(len);
    for (const Mode mode : {Mode::kHash, Mode::kKeyed, Mode::kDeriveKey}) {
      for (const size_t piece_bytes : {len + 1, size_t{1000}, size_t{4 * kKiB + 3}}) {
        SCOPED_TRACE("length " + std::to_string(len) + " mode " +
                     std::to_string(static_cast<int>(mode)) + " piece " +
                     std::to_string(piece_bytes));
        EXPECT_EQ(digest_with(backend, mode, input, piece_bytes),
                  digest_with(Blake3Backend::kPortable, mode, input, piece_bytes));
      }
    }
  }
}

TEST(Blake3Backends, Sse41KernelMatchesPortable) {
  expect_backend_matches_portable(Blake3Backend::kSse41);
}

TEST(Blake3Backends, Avx2KernelMatchesPortable) {
  expect_backend_matches_portable(Blake3Backend::kAvx2);
}

TEST(Blake3Backends, Avx512KernelMatchesPortable) {
  expect_backend_matches_portable(Blake3Backend::kAvx512);
}

TEST(Blake3Backends, BestBackendIsSupported) {
  EXPECT_TRUE(blake3_backend_is_supported(blake3_best_backend()));
  EXPECT_TRUE(blake3_backend_is_supported(Blake3Backend::kPortable));
}

// --- threads ---------------------------------------------------------------------------

// The threaded hash splits at power-of-two chunk counts that depend on the size and the
// thread count; sizes just around those splits must still give the single-threaded hash.
TEST(Blake3Parallel, EqualsSingleThreadedAroundSplitPoints) {
  std::vector<size_t> sizes;
  for (const size_t base : {128 * kKiB, 256 * kKiB, 512 * kKiB, 1 * kMiB, 2 * kMiB, 3 * kMiB,
                            4 * kMiB, 8 * kMiB}) {
    for (const long delta : {-1025L, -1024L, -1L, 0L, 1L, 1024L, 1025L}) {
      sizes.push_back(static_cast<size_t>(static_cast<long>(base) + delta));
    }
  }
  const std::vector<uint8_t> data = random_input(*std::max_element(sizes.begin(), sizes.end()), 11);
  for (const size_t size : sizes) {
    const auto input = std::span(data).first(size);
    const Blake3Hash expected = blake3_hash(input);
    for (const size_t threads : {1, 2, 3, 4, 7}) {
      EXPECT_EQ(blake3_hash_parallel(input, threads), expected)
          << "size " << size << " threads " << threads;
    }
  }
}

// --- verified-streaming building blocks ------------------------------------------------

// Hash of an input rebuilt from 16 KiB chunk-group chaining values, combined the way
// BLAKE3's tree does: the left child covers the largest power of two of groups.
Blake3Hash combine_groups(const std::vector<Blake3Hash>& cvs, size_t begin, size_t end,
                          bool is_root) {
  if (end - begin == 1) return cvs[begin];
  const size_t left = std::bit_floor(end - begin - 1);
  return blake3_parent_cv(combine_groups(cvs, begin, begin + left, false),
                          combine_groups(cvs, begin + left, end, false), is_root);
}

TEST(Blake3Subtree, ChunkGroupCvsAndParentsReproduceTheRootHash) {
  constexpr size_t kGroupBytes = 16 * kKiB;
  constexpr uint64_t kGroupChunks = kGroupBytes / kBlake3ChunkSizeBytes;
  for (const size_t len : {2 * kGroupBytes, 5 * kGroupBytes + 1000, 8 * kGroupBytes,
                           11 * kGroupBytes + 1, 13 * kGroupBytes - 1}) {
    SCOPED_TRACE("length " + std::to_string(len));
    const std::vector<uint8_t> input = random_input(len, len);
    std::vector<Blake3Hash> cvs;
    for (size_t offset = 0; offset < len; offset += kGroupBytes) {
      const size_t take = std::min(kGroupBytes, len - offset);
      cvs.push_back(blake3_subtree_cv(std::span(input).subspan(offset, take),
                                      offset / kGroupBytes * kGroupChunks, false));
    }
    EXPECT_EQ(combine_groups(cvs, 0, cvs.size(), true), blake3_hash(input));
  }
}

TEST(Blake3Subtree, BatchedSubtreeCvsEqualOneAtATime) {
  for (const uint64_t subtree_chunks : {uint64_t{1}, uint64_t{16}, uint64_t{256}, uint64_t{512}}) {
    const size_t subtree_bytes = subtree_chunks * kKiB;
    for (const size_t len : {size_t{1}, subtree_bytes, 3 * subtree_bytes + 17, 37 * subtree_bytes,
                             40 * subtree_bytes - 1}) {
      SCOPED_TRACE("subtree of " + std::to_string(subtree_chunks) + " chunks, length " +
                   std::to_string(len));
      const std::vector<uint8_t> input = random_input(len, len + subtree_chunks);
      const uint64_t start_chunk = 4 * subtree_chunks;  // not the first subtree: counters matter
      std::vector<Blake3Hash> batched((len + subtree_bytes - 1) / subtree_bytes);
      blake3_subtree_cvs(input, start_chunk, subtree_chunks, batched);
      for (size_t i = 0; i < batched.size(); ++i) {
        const size_t offset = i * subtree_bytes;
        const auto run = std::span(input).subspan(offset, std::min(subtree_bytes, len - offset));
        EXPECT_EQ(batched[i], blake3_subtree_cv(run, start_chunk + i * subtree_chunks, false))
            << "run " << i;
      }
    }
  }
}

TEST(Blake3Subtree, WholeInputAsRootSubtreeIsItsHash) {
  for (const size_t len : {size_t{0}, size_t{1}, 16 * kKiB, 16 * kKiB - 5}) {
    const std::vector<uint8_t> input = random_input(len, 3);
    EXPECT_EQ(blake3_subtree_cv(input, 0, true), blake3_hash(input));
  }
  // Two chunks: the root is the parent of the two chunk chaining values.
  const std::vector<uint8_t> two = random_input(2 * kKiB, 4);
  const Blake3Hash left = blake3_subtree_cv(std::span(two).first(kKiB), 0, false);
  const Blake3Hash right = blake3_subtree_cv(std::span(two).subspan(kKiB), 1, false);
  EXPECT_EQ(blake3_parent_cv(left, right, true), blake3_hash(two));
  EXPECT_NE(blake3_parent_cv(left, right, false), blake3_hash(two));
}

}  // namespace
}  // namespace aspen::crypto
