// The directory layer and its allocator over the in-process store: the operations, their
// failure paths, FDB's key layout, and 16 concurrent creators (no prefix handed out twice,
// none a prefix of another, every racer of one path gets the same directory).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "kv/deterministic_store.h"
#include "layer/directory.h"
#include "layer/hca.h"
#include "layer/kv_ops.h"

namespace aspen::layer {
namespace {

using kv::DeterministicKeyValueStore;

bool has_key(kv::KeyValueStore& s, const std::string& k) { return kv::get(s, k)->has_value(); }

size_t count_keys_with_prefix(kv::KeyValueStore& s, const std::string& prefix) {
  size_t n = 0;
  auto st = scan_range(s, prefix, prefix + "\xff\xff\xff\xff", 1000, [&](const kvpb::KeyValue&) {
    ++n;
    return true;
  });
  EXPECT_TRUE(st.has_value());
  return n;
}

TEST(Directory, CreateOpenListExistsWithFdbKeyLayout) {
  DeterministicKeyValueStore s;
  DirectoryLayer dirs(s, 1);
  auto users = dirs.create_or_open({"app", "users"}, "table");
  ASSERT_TRUE(users.has_value()) << users.error().to_string();
  EXPECT_EQ(users->layer, "table");
  // The prefix is a packed integer from the allocator's first window.
  auto n = unpack(users->prefix());
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(n->size(), 1u);
  EXPECT_LT(n->front().get<Integer>().magnitude, 64u);
  auto app = dirs.open({"app"});
  ASSERT_TRUE(app.has_value());
  // FDB's layout: the root node is 0xfe + pack((0xfe,)); its entry for "app" is
  // node + pack((0, "app")) and holds app's prefix.
  std::string root_node = std::string("\xfe") + pack({Bytes{"\xfe"}});
  EXPECT_EQ(kv::get(s, root_node + pack({0, "app"}))->value().value(), app->prefix());
  EXPECT_EQ(kv::get(s, root_node + pack({Bytes{"version"}}))->value().value(),
            std::string("\x01\0\0\0\0\0\0\0\0\0\0\0", 12));
  std::string app_node = std::string("\xfe") + pack({Bytes{app->prefix()}});
  EXPECT_EQ(kv::get(s, app_node + pack({0, "users"}))->value().value(), users->prefix());
  EXPECT_EQ(kv::get(s, std::string("\xfe") + pack({Bytes{users->prefix()}}) + pack({Bytes{"layer"}}))->value().value(),
            "table");

  EXPECT_EQ(dirs.open({"app", "users"})->prefix(), users->prefix());
  EXPECT_EQ(dirs.create_or_open({"app", "users"})->prefix(), users->prefix());
  EXPECT_TRUE(*dirs.exists({"app", "users"}));
  EXPECT_TRUE(*dirs.exists({}));
  EXPECT_FALSE(*dirs.exists({"app", "nope"}));
  ASSERT_TRUE(dirs.create({"app", "orders"}).has_value());
  ASSERT_TRUE(dirs.create({"zeta"}).has_value());
  EXPECT_EQ(*dirs.list({"app"}), (std::vector<std::string>{"orders", "users"}));
  EXPECT_EQ(*dirs.list(), (std::vector<std::string>{"app", "zeta"}));
  EXPECT_TRUE(dirs.list({"app", "users"})->empty());
}

TEST(Directory, FailurePathsSayWhy) {
  DeterministicKeyValueStore s;
  DirectoryLayer dirs(s, 2);
  ASSERT_TRUE(dirs.create({"a"}, "blob").has_value());
  auto again = dirs.create({"a"});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(again.error().message().find("already exists"), std::string::npos);
  EXPECT_EQ(dirs.open({"missing"}).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(dirs.list({"missing"}).error().code(), ErrorCode::kNotFound);
  auto wrong_layer = dirs.open({"a"}, "table");
  ASSERT_FALSE(wrong_layer.has_value());
  EXPECT_NE(wrong_layer.error().message().find("has layer 'blob'"), std::string::npos);
  EXPECT_EQ(dirs.open({"a"})->layer, "blob");  // no layer asked: any layer opens
  EXPECT_EQ(dirs.create({}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(dirs.create({""}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(dirs.create({std::string(limits::kMaxDirectoryNameBytes + 1, 'x')}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(dirs.create(Path(limits::kMaxDirectoryDepth + 1, "d")).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(dirs.create({"b"}, std::string(limits::kMaxDirectoryLayerBytes + 1, 'l')).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(dirs.remove({"missing"}).error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(*dirs.remove_if_exists({"missing"}));
  EXPECT_EQ(dirs.remove({}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(dirs.move({"a"}, {"a", "inside"}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(dirs.move({"missing"}, {"x"}).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(dirs.move({"a"}, {"no", "parent"}).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(dirs.create({"c"}).has_value());
  EXPECT_EQ(dirs.move({"a"}, {"c"}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Directory, HandWrittenKeysUnderTheNextPrefixAreRefusedNotShared) {
  DeterministicKeyValueStore s;
  // With the allocator's random candidate fixed by the seed, find which prefix comes first...
  DeterministicKeyValueStore probe;
  auto first = DirectoryLayer(probe, 5).create({"x"});
  ASSERT_TRUE(first.has_value());
  // ...and squat on it in a fresh store before the directory layer hands it out.
  ASSERT_TRUE(kv::put(s, first->prefix() + "squatter", "v").has_value());
  auto r = DirectoryLayer(s, 5).create({"x"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorruption);
  EXPECT_NE(r.error().message().find("outside the directory layer"), std::string::npos);
}

TEST(Directory, MoveKeepsPrefixAndContents) {
  DeterministicKeyValueStore s;
  DirectoryLayer dirs(s, 3);
  auto d = dirs.create_or_open({"old", "child"});
  ASSERT_TRUE(d.has_value());
  ASSERT_TRUE(kv::put(s, d->subspace.pack({"row"}), "data").has_value());
  ASSERT_TRUE(dirs.create({"new"}).has_value());
  auto moved = dirs.move({"old"}, {"new", "renamed"});
  ASSERT_TRUE(moved.has_value()) << moved.error().to_string();
  EXPECT_FALSE(*dirs.exists({"old"}));
  auto child = dirs.open({"new", "renamed", "child"});
  ASSERT_TRUE(child.has_value());
  EXPECT_EQ(child->prefix(), d->prefix());
  EXPECT_EQ(kv::get(s, child->subspace.pack({"row"}))->value().value(), "data");
}

TEST(Directory, RemoveDeletesContentsSubdirectoriesAndMetadata) {
  DeterministicKeyValueStore s;
  DirectoryLayer dirs(s, 4);
  auto a = dirs.create_or_open({"a"});
  auto b = dirs.create_or_open({"a", "b"});
  auto keep = dirs.create_or_open({"keep"});
  ASSERT_TRUE(a && b && keep);
  for (int i = 0; i < 2500; ++i) ASSERT_TRUE(kv::put(s, b->subspace.pack({i}), "v").has_value());
  ASSERT_TRUE(kv::put(s, a->subspace.pack({"x"}), "v").has_value());
  ASSERT_TRUE(kv::put(s, keep->subspace.pack({"x"}), "v").has_value());
  ASSERT_TRUE(dirs.remove({"a"}).has_value());
  EXPECT_FALSE(*dirs.exists({"a"}));
  EXPECT_FALSE(*dirs.exists({"a", "b"}));
  EXPECT_EQ(count_keys_with_prefix(s, b->prefix()), 0u);
  EXPECT_EQ(count_keys_with_prefix(s, a->prefix()), 0u);
  EXPECT_EQ(count_keys_with_prefix(s, std::string("\xfe") + pack({Bytes{b->prefix()}})), 0u);
  EXPECT_EQ(count_keys_with_prefix(s, std::string("\xfe") + pack({Bytes{a->prefix()}})), 0u);
  EXPECT_TRUE(has_key(s, keep->subspace.pack({"x"})));
  EXPECT_EQ(*dirs.list(), (std::vector<std::string>{"keep"}));
  // The name is free again and gets a fresh prefix.
  auto again = dirs.create({"a"});
  ASSERT_TRUE(again.has_value());
  EXPECT_NE(again->prefix(), a->prefix());
}

TEST(HighContentionAllocator, WindowsGrowAndNothingRepeats) {
  DeterministicKeyValueStore s;
  Subspace hca = Subspace::from_raw("hca");
  Rng rng(9);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1500; ++i) {
    auto n = hca_allocate(s, hca, [&](uint64_t bound) { return rng.uniform(bound); });
    ASSERT_TRUE(n.has_value()) << n.error().to_string();
    EXPECT_TRUE(seen.insert(*n).second) << *n << " handed out twice";
  }
  EXPECT_GE(*seen.rbegin(), 255u);  // past the 64-wide windows into the 1024-wide ones
  EXPECT_EQ(hca_window_size(0), 64u);
  EXPECT_EQ(hca_window_size(255), 1024u);
  EXPECT_EQ(hca_window_size(65535), 8192u);
  // Old windows' claims are cleared: far fewer recent keys remain than allocations.
  EXPECT_LT(count_keys_with_prefix(s, hca.sub({1}).key()), 1500u);
}

TEST(HighContentionAllocator, CorruptCounterIsReported) {
  DeterministicKeyValueStore s;
  Subspace hca = Subspace::from_raw("hca");
  ASSERT_TRUE(kv::put(s, hca.sub({0}).pack({0}), "short").has_value());
  auto n = hca_allocate(s, hca, [](uint64_t) { return uint64_t{0}; });
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().code(), ErrorCode::kCorruption);
}

// 16 clients, each with its own DirectoryLayer (and allocator seed), create distinct paths and
// race on shared ones at the same time.
TEST(Directory, SixteenConcurrentCreatorsNeverShareOrNestPrefixes) {
  DeterministicKeyValueStore s;
  constexpr int kThreads = 16, kPerThread = 25, kShared = 5;
  std::mutex mu;
  std::map<std::string, std::set<std::string>> prefixes_by_path;  // guarded by mu
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      DirectoryLayer dirs(s, 1000 + t);
      for (int i = 0; i < kPerThread; ++i) {
        Path own{"t" + std::to_string(t), "d" + std::to_string(i)};
        Path shared{"shared", "s" + std::to_string(i % kShared)};
        for (const Path& p : {own, shared}) {
          auto d = dirs.create_or_open(p);
          if (!d) {
            ADD_FAILURE() << d.error().to_string();
            failures++;
            continue;
          }
          std::lock_guard lock(mu);
          prefixes_by_path[fmt::format("{}", fmt::join(p, "/"))].insert(d->prefix());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  std::vector<std::string> all;
  for (const auto& [path, prefixes] : prefixes_by_path) {
    EXPECT_EQ(prefixes.size(), 1u) << path << " was handed more than one prefix";
    all.push_back(*prefixes.begin());
  }
  // Each intermediate directory ("t3", "shared") also got a prefix; collect them too.
  DirectoryLayer reader(s, 0);
  auto top = reader.list();
  ASSERT_TRUE(top.has_value());
  for (const auto& name : *top) all.push_back(reader.open({name})->prefix());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread + kShared + kThreads + 1));
  std::sort(all.begin(), all.end());
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_NE(all[i - 1], all[i]) << "prefix handed out twice";
    EXPECT_FALSE(all[i].starts_with(all[i - 1])) << "a prefix is a prefix of another";
  }
  EXPECT_EQ(reader.list({"shared"})->size(), static_cast<size_t>(kShared));
}

}  // namespace
}  // namespace aspen::layer

namespace aspen::layer {
namespace {

// Random sequences of directory operations against a model (a set of paths): the same
// answers, and at every step the listed tree is the model's and no two directories share a
// prefix.
struct DirModel {
  std::set<Path> paths;
  bool has(const Path& p) const { return p.empty() || paths.count(p) > 0; }
  void add_with_parents(const Path& p) {
    for (size_t n = 1; n <= p.size(); ++n) paths.insert(Path(p.begin(), p.begin() + static_cast<long>(n)));
  }
  static bool is_under(const Path& p, const Path& top) {
    return p.size() >= top.size() && std::equal(top.begin(), top.end(), p.begin());
  }
  void remove_subtree(const Path& top) {
    std::erase_if(paths, [&](const Path& p) { return is_under(p, top); });
  }
  void move(const Path& from, const Path& to) {
    std::set<Path> moved;
    for (const auto& p : paths) {
      if (!is_under(p, from)) continue;
      Path q = to;
      q.insert(q.end(), p.begin() + static_cast<long>(from.size()), p.end());
      moved.insert(q);
    }
    remove_subtree(from);
    paths.insert(moved.begin(), moved.end());
  }
  std::vector<std::string> children(const Path& parent) const {
    std::vector<std::string> out;
    for (const auto& p : paths) {
      if (p.size() == parent.size() + 1 && is_under(p, parent)) out.push_back(p.back());
    }
    return out;  // std::set order of paths = name order among siblings
  }
};

RC_GTEST_PROP(DirectoryProperty, OperationsAgreeWithATreeModel, ()) {
  DeterministicKeyValueStore s;
  DirectoryLayer dirs(s, *rc::gen::arbitrary<uint64_t>());
  DirModel model;
  auto gen_path = rc::gen::mapcat(rc::gen::inRange<size_t>(0, 4), [](size_t n) {
    return rc::gen::container<Path>(n, rc::gen::element<std::string>("a", "b", "c"));
  });
  int steps = *rc::gen::inRange(1, 40);
  for (int i = 0; i < steps; ++i) {
    Path p = *gen_path;
    switch (*rc::gen::inRange(0, 5)) {
      case 0: {
        auto d = dirs.create_or_open(p);
        RC_ASSERT(d.has_value() == !p.empty());
        if (!p.empty()) model.add_with_parents(p);
        break;
      }
      case 1: {
        auto d = dirs.create(p);
        bool should = !p.empty() && !model.has(p);
        RC_ASSERT(d.has_value() == should);
        if (should) model.add_with_parents(p);
        break;
      }
      case 2: {
        Path to = *gen_path;
        Path to_parent = to.empty() ? to : Path(to.begin(), to.end() - 1);
        bool should = !p.empty() && !to.empty() && model.has(p) && !model.has(to) && model.has(to_parent) &&
                      !DirModel::is_under(to, p);
        auto d = dirs.move(p, to);
        RC_ASSERT(d.has_value() == should);
        if (should) model.move(p, to);
        break;
      }
      case 3: {
        auto r = dirs.remove_if_exists(p);
        RC_ASSERT(r.has_value() == !p.empty());
        if (!p.empty()) {
          RC_ASSERT(*r == model.has(p));
          model.remove_subtree(p);
        }
        break;
      }
      default: {
        auto names = dirs.list(p);
        RC_ASSERT(names.has_value() == model.has(p));
        if (names) RC_ASSERT(*names == model.children(p));
        break;
      }
    }
  }
  std::set<std::string> prefixes;
  for (const auto& p : model.paths) {
    auto d = dirs.open(p);
    RC_ASSERT(d.has_value());
    RC_ASSERT(prefixes.insert(d->prefix()).second);
  }
  RC_ASSERT(*dirs.list() == model.children({}));
}

}  // namespace
}  // namespace aspen::layer
