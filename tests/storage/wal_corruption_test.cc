// Wal: damage found at open (issue 14, item 7). A crash can tear only the last batch (one
// pwrite and one fdatasync per batch), so damage followed by an intact batch that was written
// after the damaged bytes were synced is Corruption naming the file, the offset and the entry;
// a torn last batch is dropped and every batch before it kept; segments written by earlier
// versions (format 1, no batch markers) still open. A property flips or cuts one place in a
// log of random batches and checks that open never loses a batch silently.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "storage/wal.h"
#include "storage/wal_format.h"
#include "store_test_util.h"
#include "wal_test_util.h"

namespace aspen::storage {
namespace {

using testing::TempDir;
using namespace wal_testing;

void xor_byte(const std::string& path, uint64_t offset, uint8_t mask = 0x01) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= mask;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

void zero_bytes(const std::string& path, uint64_t offset, uint64_t count) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  std::string zeros(static_cast<size_t>(count), '\0');
  ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(zeros.size()));
  ::close(fd);
}

Result<std::unique_ptr<Wal>> try_open(const std::string& dir, uint64_t segment_bytes = 1 << 20) {
  WalOptions o;
  o.dir = dir;
  o.segment_size_bytes = segment_bytes;
  return Wal::open(o, {});
}

// Three batches in one segment: entries 1-5, 6-8, 9-10. Returns the offsets of the batches.
std::vector<uint64_t> write_three_batches(const std::string& dir) {
  auto w = open_wal(dir);
  std::vector<uint64_t> at;
  uint64_t off = Wal::kSegmentHeaderBytes;
  for (const auto& es : {run(1, 5, 1), run(6, 8, 1), run(9, 10, 2)}) {
    at.push_back(off);
    EXPECT_TRUE(append(*w, es).has_value());
    off += batch_bytes(es);
  }
  at.push_back(off);  // where the records end
  return at;
}

TEST(WalCorruption, BitFlipInAnEarlierBatchOfTheLastSegmentIsCorruptionNamingFileOffsetAndEntry) {
  TempDir dir;
  const auto at = write_three_batches(dir.path());
  const std::string seg = segment_paths(dir.path())[0];
  // Entry 7 is the second record of the second batch; flip a byte of its payload.
  const uint64_t entry7 = at[1] + Wal::kBatchMarkerBytes + Wal::kRecordHeaderBytes + entry(6, 1).ByteSizeLong();
  xor_byte(seg, entry7 + Wal::kRecordHeaderBytes + 3);
  auto w = try_open(dir.path());
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kCorruption);
  const std::string& msg = w.error().message();
  EXPECT_NE(msg.find(seg), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset " + std::to_string(at[1])), std::string::npos) << msg;
  EXPECT_NE(msg.find("entry 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a torn write"), std::string::npos) << msg;
}

TEST(WalCorruption, DamagedMarkerOfAnEarlierBatchIsCorruptionNamingItsFirstEntry) {
  TempDir dir;
  const auto at = write_three_batches(dir.path());
  const std::string seg = segment_paths(dir.path())[0];
  xor_byte(seg, at[1] + Wal::kRecordHeaderBytes + 20);  // the marker's body checksum
  auto w = try_open(dir.path());
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kCorruption);
  EXPECT_NE(w.error().message().find("entry 6 onwards"), std::string::npos) << w.error().message();
}

// A sector read back as zeros in the middle of the log looks like the end of the records;
// the intact batch after it says otherwise.
TEST(WalCorruption, ZeroedBatchBeforeAnIntactOneIsCorruption) {
  TempDir dir;
  const auto at = write_three_batches(dir.path());
  const std::string seg = segment_paths(dir.path())[0];
  zero_bytes(seg, at[1], at[2] - at[1]);
  auto w = try_open(dir.path());
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kCorruption);
  EXPECT_NE(w.error().message().find("is zeroed"), std::string::npos) << w.error().message();
  EXPECT_NE(w.error().message().find("entry 6"), std::string::npos) << w.error().message();
}

// A crash in the middle of the last batch leaves a prefix of it: at every cut, the log keeps
// exactly the two earlier batches, and their last term is the real one (never 0).
TEST(WalCorruption, TornLastBatchIsDroppedAndEveryEarlierBatchKept) {
  for (uint64_t cut = 0;; ++cut) {
    TempDir dir;
    const auto at = write_three_batches(dir.path());
    if (at[2] + cut >= at[3]) break;
    zero_bytes(segment_paths(dir.path())[0], at[2] + cut, at[3] - at[2] - cut);
    auto w = open_wal(dir.path());
    ASSERT_NE(w, nullptr) << "cut at " << cut;
    EXPECT_EQ(w->last_index(), 8u) << "cut at " << cut;
    EXPECT_EQ(*w->term(w->last_index()), 1u);
  }
}

// Damage inside the last batch cannot be told from a torn write: it is dropped like one, and
// the replayed log's last term still comes from an intact record.
TEST(WalCorruption, DamagedLastBatchIsDroppedAndLastTermStaysReal) {
  TempDir dir;
  const auto at = write_three_batches(dir.path());
  xor_byte(segment_paths(dir.path())[0], at[2] + Wal::kBatchMarkerBytes + Wal::kRecordHeaderBytes + 1);
  auto w = open_wal(dir.path());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->last_index(), 8u);
  EXPECT_EQ(*w->term(8), 1u);
  ASSERT_TRUE(append(*w, run(9, 9, 3)).has_value());
}

// A write holding only a commit index is not synced. If a crash loses it while the synced
// write after it survives, the later batch's marker says the failing bytes were never synced:
// a torn tail, not Corruption.
TEST(WalCorruption, LostUnsyncedBatchBeforeASyncedOneIsATornTail) {
  TempDir dir;
  uint64_t unsynced_at = 0;
  uint64_t unsynced_bytes = 0;
  {
    auto w = open_wal(dir.path());
    ASSERT_TRUE(append(*w, run(1, 3, 1)).has_value());
    unsynced_at = Wal::kSegmentHeaderBytes + batch_bytes(run(1, 3, 1));
    const auto hs = hard_state(1, 1, 2);
    WalWrite commit_only;
    commit_only.hard_state = &hs;
    commit_only.is_sync = false;
    ASSERT_TRUE(w->write(commit_only).has_value());
    unsynced_bytes = batch_bytes({}, &hs);
    ASSERT_TRUE(append(*w, run(4, 5, 1)).has_value());
  }
  zero_bytes(segment_paths(dir.path())[0], unsynced_at, unsynced_bytes);
  auto w = open_wal(dir.path());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->last_index(), 3u);
}

TEST(WalCorruption, DamageBeforeACheckpointNamesTheEntryItFollows) {
  TempDir dir;
  {
    auto w = open_wal(dir.path(), {}, 4096);
    for (Index i = 1; i <= 12; ++i) ASSERT_TRUE(append(*w, run(i, i, 1, 1000)).has_value());
  }
  const auto paths = segment_paths(dir.path());
  ASSERT_GT(paths.size(), 2u);
  // The first segment's second batch (entry 2); later segments' checkpoints vouch for it.
  xor_byte(paths[0], Wal::kSegmentHeaderBytes + batch_bytes(run(1, 1, 1, 1000)) + Wal::kBatchMarkerBytes + 40);
  auto w = try_open(dir.path(), 4096);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kCorruption);
  EXPECT_NE(w.error().message().find(paths[0]), std::string::npos) << w.error().message();
  EXPECT_NE(w.error().message().find("after entry 1"), std::string::npos) << w.error().message();
}

// A format-1 segment as earlier versions wrote it: header, then records without markers.
std::string old_format_segment(uint64_t seq, const std::vector<pb::Entry>& entries, const pb::HardState& hs) {
  std::string out("ASPNWAL1", 8);
  put_u64_be(out, seq);
  Wal::encode_record(out, Wal::kHardState, hs.SerializeAsString());
  for (const auto& e : entries) Wal::encode_record(out, Wal::kEntry, e.SerializeAsString());
  out.resize(out.size() + 4096, '\0');  // preallocated
  return out;
}

void write_file(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::close(fd);
}

TEST(WalCorruption, OldFormatSegmentsStillOpenAndTheLogGrowsInTheNewFormat) {
  TempDir dir;
  write_file(dir.path() + "/0000000000000001.wal", old_format_segment(1, run(1, 5, 2), hard_state(2, 3, 4)));
  {
    auto w = open_wal(dir.path());
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->last_index(), 5u);
    EXPECT_EQ(w->hard_state().vote(), 3u);
    auto es = w->entries(1, 6, UINT64_MAX);
    ASSERT_TRUE(es.has_value());
    EXPECT_EQ((*es)[4].data(), entry(5, 2).data());
    ASSERT_TRUE(append(*w, run(6, 7, 2)).has_value());
  }
  auto w = open_wal(dir.path());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(terms_of(*w), (std::vector<Term>{2, 2, 2, 2, 2, 2, 2}));
}

TEST(WalCorruption, OldFormatLastSegmentKeepsItsTornTailRule) {
  TempDir dir;
  std::string seg = old_format_segment(1, run(1, 5, 2), hard_state(2, 3, 4));
  // Damage entry 4's record: format 1 has no markers, so replay stops before it.
  const uint64_t hs_bytes = Wal::kRecordHeaderBytes + hard_state(2, 3, 4).ByteSizeLong();
  const uint64_t entry_bytes = Wal::kRecordHeaderBytes + entry(1, 2).ByteSizeLong();
  seg[Wal::kSegmentHeaderBytes + hs_bytes + 3 * entry_bytes + Wal::kRecordHeaderBytes + 2] ^= 0x10;
  write_file(dir.path() + "/0000000000000001.wal", seg);
  auto w = open_wal(dir.path());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->last_index(), 3u);
}

// Random batches in one segment; then one byte flipped, or the file zeroed or cut from some
// point on (what a crash in the middle of the last write leaves). Open must never crash and:
// a flip in the segment header or in a batch that an intact batch follows is Corruption; any
// other damage opens, with every batch that ends before the damage and none after it.
RC_GTEST_PROP(WalCorruption, DamageNeverLosesABatchThatAnIntactBatchFollows, ()) {
  TempDir dir;
  struct Batch {
    uint64_t begin = 0;
    uint64_t end = 0;
    Index last_index = 0;
  };
  std::vector<Batch> batches;
  std::vector<Term> terms;
  {
    auto w = open_wal(dir.path());
    RC_ASSERT(w != nullptr);
    uint64_t off = Wal::kSegmentHeaderBytes;
    Term term = 1;
    const int count = *rc::gen::inRange(1, 8);
    for (int k = 0; k < count; ++k) {
      if (*rc::gen::inRange(0, 3) == 0) ++term;
      const Index from = terms.size() + 1;
      auto es = run(from, from + *rc::gen::inRange<Index>(1, 5) - 1, term, *rc::gen::inRange<size_t>(0, 300));
      const auto hs = hard_state(term, *rc::gen::inRange<uint64_t>(0, 4), from - 1);
      const bool has_hs = *rc::gen::arbitrary<bool>();
      RC_ASSERT(append(*w, es, has_hs ? &hs : nullptr).has_value());
      const uint64_t size = batch_bytes(es, has_hs ? &hs : nullptr);
      for (const auto& e : es) terms.push_back(e.term());
      batches.push_back(Batch{off, off + size, es.back().index()});
      off += size;
    }
  }
  const std::string seg = segment_paths(dir.path())[0];
  const uint64_t end = batches.back().end;
  const int kind = *rc::gen::inRange(0, 3);
  const uint64_t at = *rc::gen::inRange<uint64_t>(kind == 0 ? 0 : Wal::kSegmentHeaderBytes, end + 64);
  if (kind == 0) {
    xor_byte(seg, at, *rc::gen::inRange<uint8_t>(1, 255));
  } else if (kind == 1) {
    zero_bytes(seg, at, end + 64 - at);
  } else {
    RC_ASSERT(::truncate(seg.c_str(), static_cast<off_t>(at)) == 0);
  }
  RC_TAG(kind == 0 ? "flip" : kind == 1 ? "zeroed tail" : "cut file");

  // The batch the damage falls in (batches.size(): after every batch).
  size_t hit = 0;
  while (hit < batches.size() && batches[hit].end <= at) ++hit;
  auto w = try_open(dir.path());
  const bool is_corruption_expected = kind == 0 && (at < Wal::kSegmentHeaderBytes || hit + 1 < batches.size());
  if (is_corruption_expected) {
    RC_ASSERT(!w.has_value());
    RC_ASSERT(w.error().code() == ErrorCode::kCorruption);
    RC_ASSERT(w.error().message().find(seg) != std::string::npos);
    return;
  }
  RC_ASSERT(w.has_value());
  const Index last = hit == 0 ? 0 : batches[hit - 1].last_index;
  RC_ASSERT((*w)->last_index() == last);
  RC_ASSERT(terms_of(**w) == std::vector<Term>(terms.begin(), terms.begin() + static_cast<std::ptrdiff_t>(last)));
}

// The in-place readers replay uses on untrusted segment bytes: over any bytes (here random
// ones with real batches spliced in at random places), they read nothing at or past `end`
// (the buffer is exactly that long, so ASan would see it) and never assert.
RC_GTEST_PROP(WalCorruption, SegmentReadersStayInsideAnyBytes, (std::vector<uint8_t> noise)) {
  std::string bytes(noise.begin(), noise.end());
  const int batches = *rc::gen::inRange(0, 4);
  for (int k = 0; k < batches; ++k) {
    const auto at = *rc::gen::inRange<size_t>(0, bytes.size() + 1);
    std::string batch(Wal::kBatchMarkerBytes, '\0');
    Wal::encode_record(batch, Wal::kEntry, entry(static_cast<Index>(k + 1), 1).SerializeAsString());
    std::string payload;
    put_u64_be(payload, at);
    put_u64_be(payload, *rc::gen::inRange<uint64_t>(0, bytes.size() + 64));
    put_u32_be(payload, static_cast<uint32_t>(batch.size() - Wal::kBatchMarkerBytes));
    put_u32_be(payload, wal_format::crc_of(std::string_view(batch).substr(Wal::kBatchMarkerBytes)));
    std::string marker;
    Wal::encode_record(marker, Wal::kBatch, payload);
    batch.replace(0, marker.size(), marker);
    bytes.insert(at, batch);
  }
  const auto end = static_cast<uint64_t>(bytes.size());
  std::vector<uint8_t> exact(bytes.begin(), bytes.end());  // exactly `end` bytes on the heap
  const uint8_t* data = exact.data();
  const auto from = *rc::gen::inRange<uint64_t>(0, end + 1);
  for (uint64_t off = from; off < std::min<uint64_t>(end, from + 64); ++off) {
    (void)wal_format::record_at(data, off, end);
    (void)wal_format::batch_at(data, off, end);
    (void)wal_format::damaged_entry(data, off, end, 0);
  }
  if (const auto later = wal_format::find_later_synced_batch(data, from, end, from)) {
    RC_ASSERT(*later >= from);
    RC_ASSERT(wal_format::batch_at(data, *later, end).has_value());
  }
}

}  // namespace
}  // namespace aspen::storage
