// BlobStore: imports are visible only once verified and published, reads never pass a
// damaged byte, what a crash leaves mid-import is gone at the next open, GC keeps what is
// protected, young or open.
#include "blob/store/blob_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "blob/range_verifier.h"
#include "blob_test_util.h"

namespace aspen::blob {
namespace {

using testing::kGroup;
using testing::kMiB;
using testing::random_blob;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("aspen-blobstore-{}-{}", ::getpid(), ::testing::UnitTest::GetInstance()->random_seed() + counter_++);
    std::filesystem::remove_all(dir_);
    reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen(uint64_t max_blob_size_bytes = limits::kMaxBlobSizeBytes) {
    store_.reset();
    auto s = BlobStore::open({.dir = dir_.string(), .max_blob_size_bytes = max_blob_size_bytes});
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    store_ = std::move(*s);
  }
  // Imports `data` in pieces of `piece` bytes.
  Result<BlobInfo> add(std::span<const uint8_t> data, size_t piece = 7001, uint64_t now_ms = 1000,
                       std::optional<Blake3Hash> expected = std::nullopt) {
    auto imp = store_->begin_import();
    if (!imp) return std::unexpected(imp.error());
    for (size_t off = 0; off < data.size(); off += piece) {
      if (auto s = (*imp)->append(data.subspan(off, std::min(piece, data.size() - off))); !s) {
        return std::unexpected(s.error());
      }
    }
    return (*imp)->finish(expected, now_ms);
  }
  // Reads [start, end) through the range encoding and a verifier, as a remote reader would.
  Result<std::vector<uint8_t>> get(const Blake3Hash& hash, uint64_t start, uint64_t end) {
    auto h = store_->open_read(hash);
    if (!h) return std::unexpected(h.error());
    std::vector<uint8_t> enc;
    Status s = (*h)->encode({start, end}, [&](std::span<const uint8_t> f) {
      enc.insert(enc.end(), f.begin(), f.end());
      return Status{};
    });
    if (!s) return std::unexpected(s.error());
    auto v = RangeVerifier::create(hash, (*h)->info().size_bytes, {start, end});
    if (!v) return std::unexpected(v.error());
    std::vector<uint8_t> out;
    Status fs = v->feed(enc, [&](uint64_t off, std::span<const uint8_t> d) {
      for (size_t i = 0; i < d.size(); ++i) {
        if (off + i >= v->range().start_bytes && off + i < v->range().end_bytes) out.push_back(d[i]);
      }
      return Status{};
    });
    if (!fs) return std::unexpected(fs.error());
    if (auto f = v->finish(); !f) return std::unexpected(f.error());
    return out;
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, ImportedBlobIsNamedByItsHashAndReadsBackWhole) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{1023}, size_t{1024}, kGroup - 1, kGroup, kGroup + 1, 3 * kMiB + 17}) {
    auto data = random_blob(size, size);
    auto info = add(data);
    ASSERT_TRUE(info.has_value()) << info.error().to_string();
    EXPECT_EQ(info->hash, crypto::blake3_hash(std::span<const uint8_t>(data)));
    EXPECT_EQ(info->size_bytes, size);
    EXPECT_TRUE(std::filesystem::exists(dir_ / "data" / (hash_to_hex(info->hash) + ".data")));
    auto back = get(info->hash, 0, UINT64_MAX);
    ASSERT_TRUE(back.has_value()) << back.error().to_string();
    EXPECT_EQ(*back, data) << size;
  }
  EXPECT_EQ(store_->blob_count(), 8u);
}

TEST_F(BlobStoreTest, RandomRangesVerifyAndMatch) {
  auto data = random_blob(5 * kGroup + 333, 7);
  auto info = add(data);
  ASSERT_TRUE(info.has_value());
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50; ++i) {
    uint64_t a = rng() % data.size(), b = rng() % data.size();
    if (a > b) std::swap(a, b);
    auto back = get(info->hash, a, b);
    ASSERT_TRUE(back.has_value()) << back.error().to_string();
    EXPECT_EQ(*back, std::vector<uint8_t>(data.begin() + static_cast<long>(a), data.begin() + static_cast<long>(b)));
  }
}

TEST_F(BlobStoreTest, ExpectedHashMismatchPublishesNothing) {
  auto data = random_blob(100000, 1);
  Blake3Hash wrong{};
  wrong[0] = 1;
  auto info = add(data, 4096, 1000, wrong);
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().code(), ErrorCode::kCorruption);
  EXPECT_EQ(store_->blob_count(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "data"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "tmp"));
}

TEST_F(BlobStoreTest, BlobOverTheSizeLimitIsRefusedNamingTheKnob) {
  reopen(3 * kGroup);
  auto data = random_blob(3 * kGroup + 1, 2);
  auto info = add(data, kGroup);
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(info.error().message().find("blob_max_size_bytes"), std::string::npos) << info.error().message();
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "tmp"));
  auto fixed = store_->begin_import(3 * kGroup + 1);
  ASSERT_FALSE(fixed.has_value());
  auto ok = add(std::span<const uint8_t>(data).first(3 * kGroup));
  EXPECT_TRUE(ok.has_value());
  EXPECT_FALSE(BlobStore::open({.dir = dir_.string() + "x", .max_blob_size_bytes = limits::kMaxBlobSizeBytes + 1}).has_value());
}

TEST_F(BlobStoreTest, CorruptedByteOnDiskIsNeverServed) {
  auto data = random_blob(4 * kGroup + 100, 9);
  auto info = add(data);
  ASSERT_TRUE(info.has_value());
  {
    std::fstream f(dir_ / "data" / (hash_to_hex(info->hash) + ".data"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(2 * kGroup + 5));
    char c = static_cast<char>(data[2 * kGroup + 5] ^ 0x40);
    f.write(&c, 1);
  }
  // Ranges before the damaged group still serve; any range over it fails, and nothing of
  // the damaged group is written.
  auto before = get(info->hash, 0, 2 * kGroup);
  ASSERT_TRUE(before.has_value()) << before.error().to_string();
  auto h = store_->open_read(info->hash);
  ASSERT_TRUE(h.has_value());
  std::vector<uint8_t> enc;
  Status s = (*h)->encode({2 * kGroup, 3 * kGroup}, [&](std::span<const uint8_t> f) {
    enc.insert(enc.end(), f.begin(), f.end());
    return Status{};
  });
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kCorruption);
  for (size_t i = 0; i + kGroup <= enc.size(); ++i) {
    ASSERT_NE(std::memcmp(enc.data() + i, data.data() + 2 * kGroup, 64), 0) << "damaged group data was sent";
  }
  EXPECT_GE(store_->stats().corruptions_detected.load(), 1u);
  h->reset();
  // The damaged blob is dropped; a fresh import brings it back.
  ASSERT_TRUE(store_->remove(info->hash).value());
  EXPECT_FALSE(store_->stat(info->hash).has_value());
  ASSERT_TRUE(add(data).has_value());
  EXPECT_TRUE(get(info->hash, 0, UINT64_MAX).has_value());
}

TEST_F(BlobStoreTest, UnfinishedImportIsInvisibleAndGoneAfterReopen) {
  auto data = random_blob(2 * kMiB, 4);
  auto imp = store_->begin_import();
  ASSERT_TRUE(imp.has_value());
  ASSERT_TRUE((*imp)->append(std::span<const uint8_t>(data).first(kMiB)).has_value());
  EXPECT_EQ(store_->blob_count(), 0u);
  EXPECT_FALSE(std::filesystem::is_empty(dir_ / "tmp"));
  // A crash leaves the import's temp file (an abandoned import removes its own, so the
  // leftover is copied before), and a file renamed into data/ without a record (a kill
  // between rename and commit).
  const auto temp = std::filesystem::directory_iterator(dir_ / "tmp")->path();
  std::filesystem::copy_file(temp, dir_ / "leftover");
  imp->reset();
  std::filesystem::rename(dir_ / "leftover", temp);
  std::ofstream(dir_ / "data" / (std::string(64, 'a') + ".data")) << "partial";
  reopen();
  EXPECT_EQ(store_->blob_count(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "tmp"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "data"));
}

TEST_F(BlobStoreTest, BlobsSurviveReopenAndListPagesInHashOrder) {
  std::set<Blake3Hash> hashes;
  for (int i = 0; i < 25; ++i) hashes.insert(add(random_blob(100 + static_cast<size_t>(i), static_cast<uint64_t>(i)))->hash);
  reopen();
  EXPECT_EQ(store_->blob_count(), 25u);
  std::vector<Blake3Hash> listed;
  std::optional<Blake3Hash> after;
  for (;;) {
    auto page = store_->list(after, 7);
    if (page.empty()) break;
    for (const auto& b : page) listed.push_back(b.hash);
    after = page.back().hash;
  }
  EXPECT_EQ(listed, std::vector<Blake3Hash>(hashes.begin(), hashes.end()));
}

TEST_F(BlobStoreTest, GcKeepsProtectedYoungAndOpenBlobsAndRemovesTheRest) {
  auto a = add(random_blob(1000, 1), 100, /*now_ms=*/1000);
  auto b = add(random_blob(1000, 2), 100, 1000);
  auto c = add(random_blob(1000, 3), 100, 1000);
  auto d = add(random_blob(1000, 4), 100, 9000);  // young at 10000 with grace 5000
  ASSERT_TRUE(a && b && c && d);
  auto open_c = store_->open_read(c->hash);
  ASSERT_TRUE(open_c.has_value());
  auto report = store_->gc(10000, 5000, [&](const Blake3Hash& h) { return h == a->hash; });
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->removed, 1u);
  EXPECT_EQ(report->kept_protected, 1u);
  EXPECT_EQ(report->kept_young, 1u);
  EXPECT_EQ(report->kept_in_use, 1u);
  EXPECT_TRUE(store_->stat(a->hash) && store_->stat(c->hash) && store_->stat(d->hash));
  EXPECT_FALSE(store_->stat(b->hash));
  // Re-adding an old blob gives it a new grace period.
  open_c->reset();
  ASSERT_TRUE(add(random_blob(1000, 3), 100, 9500).has_value());
  report = store_->gc(10000, 5000, [](const Blake3Hash&) { return false; });
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->removed, 1u);  // a only
  EXPECT_TRUE(store_->stat(c->hash) && store_->stat(d->hash));
}

TEST_F(BlobStoreTest, ConcurrentImportsReadsAndGcNeverLoseAProtectedOrOpenBlob) {
  // Writers add blobs (half of them "tagged"), readers read them back, a collector runs GC
  // with no grace period; tagged blobs and blobs being read must survive.
  std::vector<std::vector<uint8_t>> blobs;
  for (int i = 0; i < 40; ++i) blobs.push_back(random_blob(kGroup + static_cast<size_t>(i) * 100, static_cast<uint64_t>(i)));
  std::set<Blake3Hash> tagged;
  for (size_t i = 0; i < blobs.size(); i += 2) tagged.insert(crypto::blake3_hash(std::span<const uint8_t>(blobs[i])));
  std::atomic<bool> is_done{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int round = 0; round < 5; ++round) {
      for (const auto& b : blobs) {
        if (!add(b, 5000, 0).has_value()) ++failures;
      }
    }
    is_done = true;
  });
  std::thread reader([&] {
    while (!is_done) {
      for (const auto& b : blobs) {
        auto h = crypto::blake3_hash(std::span<const uint8_t>(b));
        auto r = get(h, 0, UINT64_MAX);
        // NotFound is fine for an untagged blob the collector took; anything else is not.
        if (!r && r.error().code() != ErrorCode::kNotFound) ++failures;
        if (r && *r != b) ++failures;
      }
    }
  });
  std::thread collector([&] {
    while (!is_done) {
      auto r = store_->gc(1, 0, [&](const Blake3Hash& h) { return tagged.contains(h); });
      if (!r) ++failures;
    }
  });
  writer.join();
  reader.join();
  collector.join();
  EXPECT_EQ(failures.load(), 0);
  for (const auto& h : tagged) EXPECT_TRUE(store_->stat(h).has_value());
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "tmp"));
}

TEST(BlobHashHex, RoundTripsAndRefusesBadText) {
  auto h = crypto::blake3_hash(std::string_view("abc"));
  auto back = hash_from_hex(hash_to_hex(h));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, h);
  EXPECT_FALSE(hash_from_hex("zz").has_value());
  EXPECT_FALSE(hash_from_hex(std::string(64, 'g')).has_value());
  EXPECT_FALSE(hash_from_hex(std::string(66, 'a')).has_value());
}

}  // namespace
}  // namespace aspen::blob
