// The blob records in the KV (node/blob_keys.h): holder lists round-trip, any bytes read back
// as a holder list never crash or grow past the member limit, tag names and hashes are
// checked at the boundary.
#include "node/blob_keys.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>

namespace aspen::node {
namespace {

RC_GTEST_PROP(BlobHolders, EncodeThenDecodeGivesTheSortedDistinctIds, (std::vector<uint64_t> ids)) {
  RC_PRE(ids.size() <= limits::kMaxClusterVoters + limits::kMaxClusterLearners);
  std::vector<uint64_t> want = ids;
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  RC_ASSERT(decode_blob_holders(encode_blob_holders(ids)) == want);
}

RC_GTEST_PROP(BlobHolders, ArbitraryBytesDecodeToABoundedList, (std::string bytes)) {
  auto holders = decode_blob_holders(bytes);
  RC_ASSERT(holders.size() <= limits::kMaxClusterVoters + limits::kMaxClusterLearners);
  if (bytes.size() % 8 != 0) RC_ASSERT(holders.empty());
}

TEST(BlobHolders, AnOversizedListReadsAsNone) {
  std::vector<uint64_t> many(limits::kMaxClusterVoters + limits::kMaxClusterLearners + 1);
  for (size_t i = 0; i < many.size(); ++i) many[i] = i + 1;
  EXPECT_TRUE(decode_blob_holders(encode_blob_holders(many)).empty());
}

TEST(BlobTagName, RulesAreCheckedWithTheLimitNamed) {
  EXPECT_TRUE(check_blob_tag_name("release-1.2").has_value());
  EXPECT_TRUE(check_blob_tag_name(std::string(kMaxBlobTagNameBytes, 'x')).has_value());
  auto too_long = check_blob_tag_name(std::string(kMaxBlobTagNameBytes + 1, 'x'));
  ASSERT_FALSE(too_long.has_value());
  EXPECT_NE(too_long.error().message().find("kMaxBlobTagNameBytes"), std::string::npos);
  EXPECT_FALSE(check_blob_tag_name("").has_value());
  EXPECT_FALSE(check_blob_tag_name(std::string("a\nb")).has_value());
  EXPECT_FALSE(check_blob_tag_name(std::string("a\0b", 3)).has_value());
}

TEST(BlobHash, OnlyThirtyTwoBytesAreAHash) {
  EXPECT_TRUE(blob_hash_from_bytes(std::string(32, 'a')).has_value());
  EXPECT_FALSE(blob_hash_from_bytes(std::string(31, 'a')).has_value());
  EXPECT_FALSE(blob_hash_from_bytes(std::string(33, 'a')).has_value());
  EXPECT_FALSE(blob_hash_from_bytes("").has_value());
  // A malformed hash in a request is authorized against the prefix alone, never a wider key.
  EXPECT_EQ(blob_data_key("short"), std::string(kBlobDataPrefix));
  EXPECT_EQ(blob_data_key(std::string(32, '\x01')),
            std::string(kBlobDataPrefix) + "0101010101010101010101010101010101010101010101010101010101010101");
}

}  // namespace
}  // namespace aspen::node
