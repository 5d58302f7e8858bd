// src/blob outboards: the root is BLAKE3 of the data (b3sum is the oracle), the outboard has
// the documented size and layout, and the reader is used as documented.
#include "blob/outboard.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "blob/blob_io.h"
#include "crypto/blake3.h"
#include "tests/blob/blob_test_util.h"
#include "tests/crypto/b3sum_oracle.h"

namespace aspen::blob {
namespace {

namespace fs = std::filesystem;
using crypto::Blake3Hash;
using namespace aspen::blob::testing;

using TempDir = aspen::testing::OracleDir;

// b3sum's lines for `files`, in order (one process for all of them).
std::vector<std::string> b3sum_lines(const std::vector<fs::path>& files) {
  std::string command = "b3sum --no-names";
  for (const fs::path& f : files) command += " '" + f.string() + "'";
  auto r = aspen::testing::run_command(command);
  if (!r.is_ok) return {};
  std::vector<std::string> lines;
  for (size_t at = 0; at < r.out.size();) {
    const size_t nl = r.out.find('\n', at);
    lines.push_back(r.out.substr(at, nl - at));
    at = nl == std::string::npos ? r.out.size() : nl + 1;
  }
  return lines;
}

TEST(BlobOutboard, RootEqualsB3sumAtChunkAndGroupEdges) {
  ASSERT_TRUE(aspen::testing::has_b3sum()) << aspen::testing::kNoB3sum;
  std::vector<uint64_t> sizes = {0,     1,     1023,  1024,     1025, 16383,
                                 16384, 16385, 32768, kMiB - 1, kMiB, kMiB + 1};
  std::mt19937_64 rng(16);
  for (int i = 0; i < 3; ++i) sizes.push_back(2 * kMiB + rng() % (6 * kMiB));
  TempDir dir;
  std::vector<fs::path> files;
  std::vector<Blake3Hash> roots;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const std::vector<uint8_t> data = random_blob(static_cast<size_t>(sizes[i]), 100 + i);
    files.push_back(dir.write("blob" + std::to_string(i), data));
    const Outboard ob = outboard_of(data);
    EXPECT_EQ(ob.size_bytes, sizes[i]);
    EXPECT_EQ(compute_outboard(data)->root, ob.root) << "in place and through a reader agree";
    EXPECT_EQ(ob.parents.size(), outboard_size_bytes(sizes[i]));
    roots.push_back(ob.root);
  }
  const std::vector<std::string> expected = b3sum_lines(files);
  ASSERT_EQ(expected.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(crypto::blake3_to_hex(roots[i]), expected[i]) << "size " << sizes[i];
  }
}

TEST(BlobOutboard, SizeIsOneParentPerGroupButOne) {
  EXPECT_EQ(outboard_size_bytes(0), 0u);
  EXPECT_EQ(outboard_size_bytes(1), 0u);
  EXPECT_EQ(outboard_size_bytes(kGroup), 0u);
  EXPECT_EQ(outboard_size_bytes(kGroup + 1), 64u);
  EXPECT_EQ(outboard_size_bytes(2 * kGroup), 64u);
  EXPECT_EQ(outboard_size_bytes(kMiB), 63u * 64);
  EXPECT_EQ(outboard_size_bytes(limits::kMaxBlobSizeBytes), limits::kMaxBlobOutboardBytes - 64);
  EXPECT_EQ(num_chunk_groups(0), 1u);
  EXPECT_EQ(num_chunk_groups(kGroup + 1), 2u);
}

RC_GTEST_PROP(BlobOutboard, SizeFormulaHoldsForEverySize, (uint64_t raw)) {
  const uint64_t size = raw % (limits::kMaxBlobSizeBytes + 1);
  const uint64_t groups = size == 0 ? 1 : (size - 1) / kGroup + 1;
  RC_ASSERT(num_chunk_groups(size) == groups);
  RC_ASSERT(outboard_size_bytes(size) == 64 * (groups - 1));
  RC_ASSERT(outboard_size_bytes(size) <= size / 256);
}

// Five groups: root = P0(A, g4) with A = P1(P2(g0, g1), P3(g2, g3)). Pre-order: P0, P1, P2, P3.
TEST(BlobOutboard, ParentsAreInPreOrderLeftThenRight) {
  const std::vector<uint8_t> data = random_blob(4 * kGroup + 77, 5);
  std::vector<Blake3Hash> g;
  for (uint64_t i = 0; i < 5; ++i) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kGroup, data.size() - i * kGroup));
    g.push_back(crypto::blake3_subtree_cv(std::span(data).subspan(i * kGroup, len), i * 16, false));
  }
  const Blake3Hash p2 = crypto::blake3_parent_cv(g[0], g[1], false);
  const Blake3Hash p3 = crypto::blake3_parent_cv(g[2], g[3], false);
  const Blake3Hash p1 = crypto::blake3_parent_cv(p2, p3, false);
  auto pair = [](const Blake3Hash& l, const Blake3Hash& r) {
    std::vector<uint8_t> v(l.begin(), l.end());
    v.insert(v.end(), r.begin(), r.end());
    return v;
  };
  std::vector<uint8_t> expected = pair(p1, g[4]);
  for (const auto& p : {pair(p2, p3), pair(g[0], g[1]), pair(g[2], g[3])})
    expected.insert(expected.end(), p.begin(), p.end());
  const Outboard ob = outboard_of(data);
  EXPECT_EQ(ob.parents, expected);
  EXPECT_EQ(ob.root, crypto::blake3_parent_cv(p1, g[4], true));
  EXPECT_EQ(ob.root, crypto::blake3_hash(data));
}

TEST(BlobOutboard, SameResultWhateverTheReaderReturnsPerCallOrInMemory) {
  const std::vector<uint8_t> data = random_blob(37 * kGroup + 1234, 7);
  const Outboard whole = outboard_of(data);
  std::mt19937_64 rng(7);
  uint64_t next_offset = 0;
  size_t largest_request = 0;
  BlobReader stingy = [&](uint64_t offset, std::span<uint8_t> out) -> Result<size_t> {
    EXPECT_EQ(offset, next_offset) << "the blob is read front to back, once";
    largest_request = std::max(largest_request, out.size());
    const size_t n = std::min<size_t>({out.size(), 1 + rng() % 5000, data.size() - offset});
    std::memcpy(out.data(), data.data() + offset, n);
    next_offset += n;
    return n;
  };
  Result<Outboard> ob = compute_outboard(data.size(), stingy);
  ASSERT_TRUE(ob.has_value()) << ob.error().to_string();
  EXPECT_EQ(ob->root, whole.root);
  EXPECT_EQ(ob->parents, whole.parents);
  EXPECT_EQ(next_offset, data.size());
  Result<Outboard> in_memory = compute_outboard(data);
  ASSERT_TRUE(in_memory.has_value());
  EXPECT_EQ(in_memory->root, whole.root);
  EXPECT_EQ(in_memory->parents, whole.parents);
  EXPECT_LE(largest_request, 1 * kMiB) << "memory beyond the outboard stays a small batch";
}

TEST(BlobOutboard, ReaderThatEndsEarlyIsCorruptionNamingTheOffset) {
  const std::vector<uint8_t> data = random_blob(3 * kGroup, 8);
  Result<Outboard> ob = compute_outboard(3 * kGroup + 10, blob_reader_over(data));
  ASSERT_FALSE(ob.has_value());
  EXPECT_EQ(ob.error().code(), ErrorCode::kCorruption);
  EXPECT_NE(ob.error().message().find("ends at byte 49152"), std::string::npos)
      << ob.error().message();
}

TEST(BlobOutboard, ReaderErrorIsPassedOn) {
  BlobReader failing = [](uint64_t, std::span<uint8_t>) -> Result<size_t> {
    return make_error(ErrorCode::kUnavailable, "disk gone");
  };
  Result<Outboard> ob = compute_outboard(100, failing);
  ASSERT_FALSE(ob.has_value());
  EXPECT_EQ(ob.error(), Error(ErrorCode::kUnavailable, "disk gone"));
}

TEST(BlobOutboard, SizeAboveTheLimitIsRefusedBeforeReading) {
  bool was_read = false;
  BlobReader reader = [&](uint64_t, std::span<uint8_t>) -> Result<size_t> {
    was_read = true;
    return size_t{0};
  };
  Result<Outboard> ob = compute_outboard(limits::kMaxBlobSizeBytes + 1, reader);
  ASSERT_FALSE(ob.has_value());
  EXPECT_EQ(ob.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(ob.error().message().find("kMaxBlobSizeBytes"), std::string::npos);
  EXPECT_FALSE(was_read);
}

}  // namespace
}  // namespace aspen::blob
