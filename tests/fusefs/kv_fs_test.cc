// The filesystem aspen-fuse mounts (src/fusefs), driven directly over the deterministic
// store: key/path mapping and what is hidden, no escape from the prefix, errno mapping,
// writes as one put at flush, EFBIG past the value limit, rename as one transaction,
// mkdir/rmdir markers, caches with their TTLs, and read-only mounts.
#include <fcntl.h>
#include <linux/fs.h>

#include <gtest/gtest.h>

#include "core/limits.h"
#include "fusefs/kv_fs.h"
#include "fusefs/mapping.h"
#include "kv/deterministic_store.h"

namespace aspen::fusefs {
namespace {

TEST(FuseMapping, PathsMapUnderThePrefixAndNeverLeaveIt) {
  EXPECT_EQ(normalize_prefix("app"), "app/");
  EXPECT_EQ(normalize_prefix("/app/"), "app/");
  EXPECT_EQ(normalize_prefix(""), "");
  EXPECT_EQ(*key_for_path("app/", "/config/db"), "app/config/db");
  EXPECT_EQ(*key_for_path("app/", "/"), "app/");
  EXPECT_EQ(*key_for_path("", "/x"), "x");
  for (const char* bad : {"/../etc", "/a/../../b", "/a//b", "/./a", "relative", "/a/"}) {
    auto k = key_for_path("app/", bad);
    ASSERT_FALSE(k.has_value()) << bad;
    EXPECT_EQ(k.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(key_for_path("", "/" + std::string(256, 'n')).error().code(), ErrorCode::kKeyTooLarge);
  std::string deep;
  for (int i = 0; i < 10; ++i) deep += "/" + std::string(200, 'd');
  EXPECT_EQ(key_for_path("", deep).error().code(), ErrorCode::kKeyTooLarge);
}

TEST(FuseMapping, KeysThatAreNotFileNamesAreHidden) {
  EXPECT_EQ(child_of("d/", "d/file")->name, "file");
  EXPECT_FALSE(child_of("d/", "d/file")->is_dir);
  EXPECT_TRUE(child_of("d/", "d/sub/x")->is_dir);
  EXPECT_FALSE(child_of("d/", "d/").has_value()) << "the directory's own marker";
  EXPECT_FALSE(child_of("d/", "d//x").has_value()) << "an empty segment";
  EXPECT_FALSE(child_of("d/", "d/../x").has_value());
  EXPECT_FALSE(child_of("d/", "d/.").has_value());
  EXPECT_FALSE(child_of("d/", std::string("d/a\0b", 5)).has_value());
  EXPECT_FALSE(child_of("d/", "d/" + std::string(256, 'x')).has_value());
  EXPECT_FALSE(child_of("d/", "e/x").has_value());
}

TEST(FuseMapping, StoreErrorsBecomeTheErrnoAUserExpects) {
  EXPECT_EQ(errno_for(Error(ErrorCode::kNotFound, "")), ENOENT);
  EXPECT_EQ(errno_for(Error(ErrorCode::kUnauthorized, "")), EACCES);
  EXPECT_EQ(errno_for(Error(ErrorCode::kStorageFull, "")), ENOSPC);
  EXPECT_EQ(errno_for(Error(ErrorCode::kUnavailable, "")), EAGAIN);
  EXPECT_EQ(errno_for(Error(ErrorCode::kNotLeader, "")), EAGAIN);
  EXPECT_EQ(errno_for(Error(ErrorCode::kTimeout, "")), EIO) << "a write that may or may not have applied";
  EXPECT_EQ(errno_for(Error(ErrorCode::kValueTooLarge, "")), EFBIG);
  EXPECT_EQ(errno_for(Error(ErrorCode::kKeyTooLarge, "")), ENAMETOOLONG);
}

class KvFsTest : public ::testing::Test {
 protected:
  KvFs make(FsOptions o) { return KvFs(store_, std::move(o), [this] { return now_ms_; }); }
  static std::string read_all(KvFs& fs, const std::string& path) {
    uint64_t h = 0;
    if (fs.open(path, O_RDONLY, &h) != 0) return "<open failed>";
    std::string out(2 << 20, '\0');
    const int64_t n = fs.read(h, out.data(), out.size(), 0);
    fs.release(h);
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  static int write_file(KvFs& fs, const std::string& path, const std::string& data) {
    uint64_t h = 0;
    int r = fs.create(path, &h);
    if (r != 0) return r;
    const int64_t n = fs.write(h, data.data(), data.size(), 0);
    if (n < 0) {
      fs.release(h);
      return static_cast<int>(n);
    }
    r = fs.flush(h);
    fs.release(h);
    return r;
  }
  static std::vector<std::string> names(KvFs& fs, const std::string& path) {
    std::vector<DirEntry> entries;
    EXPECT_EQ(fs.readdir(path, &entries), 0) << path;
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.name + (e.attr.is_dir ? "/" : ""));
    return out;
  }
  std::optional<std::string> value_of(const std::string& key) {
    auto kv = kv::get(store_, key);
    if (!kv || !*kv) return std::nullopt;
    return (*kv)->value();
  }

  kv::DeterministicKeyValueStore store_;
  uint64_t now_ms_ = 1'000'000;
};

TEST_F(KvFsTest, KeysAppearAsFilesAndPrefixesAsDirectories) {
  for (const char* k : {"app/config/db", "app/config/cache", "app/readme", "app//hidden", "app/a/b/c/deep", "other/x"}) {
    ASSERT_TRUE(kv::put(store_, k, std::string("v:") + k).has_value());
  }
  auto fs = make({.prefix = "app"});
  EXPECT_EQ(names(fs, "/"), (std::vector<std::string>{"a/", "config/", "readme"}));
  EXPECT_EQ(names(fs, "/config"), (std::vector<std::string>{"cache", "db"}));
  EXPECT_EQ(read_all(fs, "/config/db"), "v:app/config/db");
  Attr a;
  ASSERT_EQ(fs.getattr("/config/db", &a), 0);
  EXPECT_FALSE(a.is_dir);
  EXPECT_EQ(a.size, std::string("v:app/config/db").size());
  EXPECT_GT(a.revision, 0u);
  EXPECT_EQ(a.mtime_ms, store_.now_ms()) << "mtime is the time of the key's last change";
  ASSERT_EQ(fs.getattr("/a/b", &a), 0);
  EXPECT_TRUE(a.is_dir);
  EXPECT_EQ(fs.getattr("/nope", &a), -ENOENT);
  EXPECT_EQ(fs.getattr("/../other/x", &a), -EINVAL) << "no path leaves the prefix";
  std::vector<DirEntry> entries;
  EXPECT_EQ(fs.readdir("/readme", &entries), -ENOTDIR);
  EXPECT_EQ(fs.readdir("/missing", &entries), -ENOENT);
}

TEST_F(KvFsTest, AWriteBecomesOnePutAtFlushAndOverTheLimitIsEfbig) {
  auto fs = make({.prefix = "w"});
  uint64_t h = 0;
  ASSERT_EQ(fs.create("/f", &h), 0);
  Attr a;
  ASSERT_EQ(fs.write(h, "hello ", 6, 0), 6);
  EXPECT_EQ(fs.getattr("/f", &a), 0) << "an open, unsaved file shows in this mount";
  EXPECT_EQ(a.size, 6u);
  ASSERT_EQ(fs.write(h, "world", 5, 6), 5);
  EXPECT_FALSE(value_of("w/f").has_value()) << "nothing is written before flush";
  ASSERT_EQ(fs.flush(h), 0);
  EXPECT_EQ(value_of("w/f"), "hello world");
  ASSERT_EQ(fs.release(h), 0);
  // Overwrite part of it: the whole value is put again.
  ASSERT_EQ(fs.open("/f", O_WRONLY, &h), 0);
  ASSERT_EQ(fs.write(h, "HELLO", 5, 0), 5);
  ASSERT_EQ(fs.release(h), 0);
  EXPECT_EQ(value_of("w/f"), "HELLO world");
  // Past the value limit: EFBIG, and the key keeps its value.
  ASSERT_EQ(fs.open("/f", O_WRONLY | O_TRUNC, &h), 0);
  std::string big(limits::kMaxValueSizeBytes, 'x');
  ASSERT_EQ(fs.write(h, big.data(), big.size(), 0), static_cast<int64_t>(big.size())) << "exactly the limit fits";
  EXPECT_EQ(fs.write(h, "y", 1, big.size()), -EFBIG);
  EXPECT_EQ(fs.flush(h), -EFBIG);
  fs.release(h);
  EXPECT_EQ(value_of("w/f"), "HELLO world");
  EXPECT_EQ(fs.truncate("/f", limits::kMaxValueSizeBytes + 1, 0), -EFBIG);
  ASSERT_EQ(fs.truncate("/f", 5, 0), 0);
  EXPECT_EQ(value_of("w/f"), "HELLO");
  ASSERT_EQ(write_file(fs, "/empty", ""), 0);
  EXPECT_EQ(value_of("w/empty"), "") << "touch leaves an empty file";
}

TEST_F(KvFsTest, RenameIsOneTransactionAndDirectoriesAreExdev) {
  auto fs = make({.prefix = "r"});
  ASSERT_EQ(write_file(fs, "/a", "A"), 0);
  ASSERT_EQ(write_file(fs, "/b", "B"), 0);
  ASSERT_EQ(fs.rename("/a", "/c", 0), 0);
  EXPECT_FALSE(value_of("r/a").has_value());
  EXPECT_EQ(value_of("r/c"), "A");
  EXPECT_EQ(fs.rename("/c", "/b", RENAME_NOREPLACE), -EEXIST);
  EXPECT_EQ(value_of("r/c"), "A") << "nothing changed";
  ASSERT_EQ(fs.rename("/c", "/b", 0), 0);
  EXPECT_EQ(value_of("r/b"), "A") << "the target is replaced";
  EXPECT_EQ(fs.rename("/missing", "/x", 0), -ENOENT);
  ASSERT_EQ(fs.mkdir("/d"), 0);
  ASSERT_EQ(write_file(fs, "/d/f", "F"), 0);
  EXPECT_EQ(fs.rename("/d", "/e", 0), -EXDEV) << "mv copies directories instead";
  EXPECT_EQ(fs.rename("/b", "/d", 0), -EISDIR);
  EXPECT_EQ(fs.rename("/b", "/x", RENAME_EXCHANGE), -EINVAL);
}

TEST_F(KvFsTest, MkdirLeavesAMarkerAndRmdirRefusesWhileNotEmpty) {
  auto fs = make({.prefix = "m"});
  ASSERT_EQ(fs.mkdir("/d"), 0);
  EXPECT_EQ(value_of("m/d/"), "");
  EXPECT_EQ(fs.mkdir("/d"), -EEXIST);
  EXPECT_EQ(names(fs, "/"), std::vector<std::string>{"d/"});
  EXPECT_TRUE(names(fs, "/d").empty()) << "an empty directory lists nothing (its marker is hidden)";
  ASSERT_EQ(write_file(fs, "/d/f", "x"), 0);
  EXPECT_EQ(fs.rmdir("/d"), -ENOTEMPTY);
  ASSERT_EQ(fs.unlink("/d/f"), 0);
  EXPECT_EQ(fs.unlink("/d/f"), -ENOENT);
  ASSERT_EQ(fs.rmdir("/d"), 0);
  Attr a;
  EXPECT_EQ(fs.getattr("/d", &a), -ENOENT);
  EXPECT_EQ(fs.rmdir("/d"), -ENOENT);
}

TEST_F(KvFsTest, CachesServeWithinTheirTtlAndOwnWritesAtOnce) {
  auto fs = make({.prefix = "c", .data_ttl_ms = 5000, .attr_ttl_ms = 2000, .dir_ttl_ms = 1000});
  ASSERT_TRUE(kv::put(store_, "c/one", "1").has_value());
  EXPECT_EQ(names(fs, "/"), std::vector<std::string>{"one"});
  ASSERT_TRUE(kv::put(store_, "c/two", "2").has_value());  // written elsewhere
  EXPECT_EQ(names(fs, "/"), std::vector<std::string>{"one"}) << "within the listing TTL";
  now_ms_ += 1000;
  EXPECT_EQ(names(fs, "/"), (std::vector<std::string>{"one", "two"})) << "never past it";
  EXPECT_EQ(read_all(fs, "/one"), "1");
  ASSERT_TRUE(kv::put(store_, "c/one", "changed").has_value());
  EXPECT_EQ(read_all(fs, "/one"), "1") << "within the data TTL";
  now_ms_ += 5000;
  EXPECT_EQ(read_all(fs, "/one"), "changed");
  ASSERT_EQ(write_file(fs, "/three", "3"), 0);
  EXPECT_EQ(names(fs, "/"), (std::vector<std::string>{"one", "three", "two"})) << "own writes at once";
  EXPECT_EQ(read_all(fs, "/three"), "3");
  // TTL 0: no caching at all.
  auto direct = make({.prefix = "c", .data_ttl_ms = 0, .attr_ttl_ms = 0, .dir_ttl_ms = 0});
  EXPECT_EQ(read_all(direct, "/one"), "changed");
  ASSERT_TRUE(kv::put(store_, "c/one", "again").has_value());
  EXPECT_EQ(read_all(direct, "/one"), "again");
}

TEST_F(KvFsTest, AReadOnlyMountRefusesEveryChange) {
  ASSERT_TRUE(kv::put(store_, "ro/f", "x").has_value());
  auto fs = make({.prefix = "ro", .is_read_only = true});
  uint64_t h = 0;
  EXPECT_EQ(fs.create("/g", &h), -EROFS);
  EXPECT_EQ(fs.open("/f", O_WRONLY, &h), -EROFS);
  EXPECT_EQ(fs.unlink("/f"), -EROFS);
  EXPECT_EQ(fs.mkdir("/d"), -EROFS);
  EXPECT_EQ(fs.rename("/f", "/g", 0), -EROFS);
  EXPECT_EQ(fs.truncate("/f", 0, 0), -EROFS);
  EXPECT_EQ(read_all(fs, "/f"), "x");
}

TEST_F(KvFsTest, OpenFilesAreBounded) {
  auto fs = make({.prefix = "o"});
  ASSERT_TRUE(kv::put(store_, "o/f", "x").has_value());
  std::vector<uint64_t> open;
  uint64_t h = 0;
  for (size_t i = 0; i < kMaxOpenFiles; ++i) {
    ASSERT_EQ(fs.open("/f", O_RDONLY, &h), 0);
    open.push_back(h);
  }
  EXPECT_EQ(fs.open("/f", O_RDONLY, &h), -ENFILE);
  for (auto o : open) fs.release(o);
  EXPECT_EQ(fs.open("/f", O_RDONLY, &h), 0);
}

}  // namespace
}  // namespace aspen::fusefs
