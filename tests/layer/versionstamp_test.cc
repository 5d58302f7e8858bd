// Tuples with an incomplete versionstamp, written through a KeyValueStore, come back complete.
#include "layer/versionstamp.h"

#include <gtest/gtest.h>

#include "kv/deterministic_store.h"
#include "layer/subspace.h"

namespace aspen::layer {
namespace {

TEST(LayerVersionstamp, AnIncompleteStampInAKeyComesBackComplete) {
  kv::DeterministicKeyValueStore store;
  Subspace log = Subspace::from_raw("log/");
  std::vector<kvpb::Put> puts;
  for (uint16_t i = 0; i < 3; ++i) {
    auto p = versionstamped_key_put(log.key(), {Element("event"), Element(Versionstamp::incomplete(7)), Element(i)},
                                    "v" + std::to_string(i));
    ASSERT_TRUE(p.has_value()) << p.error().message();
    puts.push_back(*p);
  }
  auto first = put_versionstamped(store, {puts[0]});
  ASSERT_TRUE(first.has_value());
  auto second = put_versionstamped(store, {puts[1], puts[2]});
  ASSERT_TRUE(second.has_value());
  auto page = kv::scan_prefix(store, log.key());
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->kvs_size(), 3);
  const std::vector<Versionstamp> expected = {committed_versionstamp(first->revision(), 0, 7),
                                              committed_versionstamp(second->revision(), 0, 7),
                                              committed_versionstamp(second->revision(), 1, 7)};
  for (int i = 0; i < 3; ++i) {
    auto t = log.unpack(page->kvs(i).key());
    ASSERT_TRUE(t.has_value()) << t.error().message();
    ASSERT_EQ(t->size(), 3u);
    const auto& v = (*t)[1].get<Versionstamp>();
    EXPECT_TRUE(v.is_complete());
    EXPECT_EQ(v, expected[static_cast<size_t>(i)]) << to_string(*t);
    EXPECT_EQ((*t)[2], Element(i));
    EXPECT_EQ(page->kvs(i).value(), "v" + std::to_string(i));
  }
}

TEST(LayerVersionstamp, AnIncompleteStampInAValueComesBackComplete) {
  kv::DeterministicKeyValueStore store;
  auto p = versionstamped_value_put("latest", {Element(Tuple{Element(Versionstamp::incomplete())}), Element("x")});
  ASSERT_TRUE(p.has_value());
  auto r = put_versionstamped(store, {*p});
  ASSERT_TRUE(r.has_value());
  auto kv = kv::get(store, "latest");
  ASSERT_TRUE(kv.has_value() && kv->has_value());
  auto t = unpack((*kv)->value());
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, (Tuple{Element(Tuple{Element(committed_versionstamp(r->revision(), 0))}), Element("x")}));
}

TEST(LayerVersionstamp, ATupleWithoutExactlyOneIncompleteStampIsRefused) {
  EXPECT_EQ(versionstamped_key_put("p", {Element("no stamp")}, "v").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(versionstamped_value_put("k", {Element(Versionstamp::incomplete()), Element(Versionstamp::incomplete())})
                .error()
                .code(),
            ErrorCode::kInvalidArgument);
  kv::DeterministicKeyValueStore store;
  EXPECT_EQ(put_versionstamped(store, {}).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace aspen::layer
