// Subspace: pack/unpack under a prefix, containment and ranges.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "layer/subspace.h"

namespace aspen::layer {
namespace {

TEST(Subspace, PacksUnderItsPrefixAndUnpacksBack) {
  Subspace users(Tuple{"app", "users"});
  EXPECT_EQ(users.key(), pack(Tuple{"app", "users"}));
  std::string k = users.pack({int64_t{42}, "email"});
  EXPECT_EQ(k, pack(Tuple{"app", "users", 42, "email"}));
  EXPECT_TRUE(users.contains(k));
  EXPECT_EQ(*users.unpack(k), (Tuple{42, "email"}));
  EXPECT_EQ(users.sub({int64_t{42}}).key(), users.pack({int64_t{42}}));
  EXPECT_EQ(Subspace(Tuple{"x"}, "\x15\x01").key(), std::string("\x15\x01\x02x\x00", 5));
}

TEST(Subspace, UnpackOutsideOrMalformedIsRefused) {
  Subspace s = Subspace::from_raw("\x15\x07");
  auto outside = s.unpack("\x15\x08\x14");
  ASSERT_FALSE(outside.has_value());
  EXPECT_EQ(outside.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(outside.error().message().find("outside the subspace"), std::string::npos);
  EXPECT_EQ(s.unpack(std::string("\x15\x07\xff", 3)).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Subspace, EmptySubspaceIsTheWholeKeySpace) {
  Subspace all;
  EXPECT_TRUE(all.contains("anything"));
  EXPECT_EQ(*all.unpack(pack(Tuple{1, 2})), (Tuple{1, 2}));
  EXPECT_EQ(all.range().begin, std::string(1, '\0'));
  EXPECT_EQ(all.range().end, std::string(1, '\xff'));
}

RC_GTEST_PROP(SubspaceProperty, RangeHoldsEveryPackedKeyAndUnpackInverts,
              (const std::string& raw_prefix, const std::string& s, int64_t i)) {
  Subspace sp = Subspace::from_raw(raw_prefix);
  Tuple t{s, i};
  std::string k = sp.pack(t);
  KeyRange r = sp.range();
  RC_ASSERT(r.begin <= k);
  RC_ASSERT(k < r.end);
  RC_ASSERT(sp.contains(k));
  RC_ASSERT(*sp.unpack(k) == t);
  KeyRange narrow = sp.range({s});
  RC_ASSERT(narrow.begin <= k && k < narrow.end);
}

}  // namespace
}  // namespace aspen::layer
