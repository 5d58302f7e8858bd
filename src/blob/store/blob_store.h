// BlobStore: a node's content-addressed blobs on disk (docs/blobs.md).
//
// Layout under `dir` (the node's data_dir/blobs):
//   data/<hex>.data   the blob's bytes, named by its BLAKE3 hash (lowercase hex, as b3sum)
//   data/<hex>.obao   its outboard (blob/outboard.h): the tree that proves any range of it
//   tmp/              imports in progress; emptied at open (what a crash left is not a blob)
//   meta/             an LMDB environment: hash -> size and the time the blob was added
//
// An import writes the bytes to a temp file as they arrive (never the whole blob in memory),
// then syncs it, hashes it, writes the outboard and only then renames both into data/ and
// records the blob in meta/. A blob is visible (stat, list, open_read) only once its meta
// record is committed, so a process killed mid-import leaves nothing visible: at the next
// open the temp files are removed, and files in data/ without a meta record (a kill between
// rename and commit) too.
//
// Reads never hand out an unverified byte: encode() checks every group and parent against
// the hash before it writes it (blob/range_encoder.h). A damaged blob fails with Corruption
// naming the blob; the caller then drops it (remove) so replication fetches a good copy.
//
// GC: gc() removes blobs no caller protects (tags, in the service above), older than a
// grace period, and not pinned by an open read handle. An import of a blob that is already
// there refreshes its added time, so a re-added blob gets a new grace period.
//
//   auto store = BlobStore::open({.dir = data_dir + "/blobs"});
//   auto import = (*store)->begin_import();
//   (*import)->append(bytes) ...;  auto info = (*import)->finish(std::nullopt, now_ms);
//   auto blob = (*store)->open_read(info->hash);  (*blob)->encode(range, writer);
//
// Thread-safe: imports, reads and GC may run on different threads at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "blob/blob_io.h"
#include "blob/byte_range.h"
#include "core/error.h"
#include "core/limits.h"
#include "crypto/blake3.h"

namespace aspen::blob {

using crypto::Blake3Hash;

// Blob metadata records the store keeps (the LMDB map holds at most this much).
inline constexpr uint64_t kBlobMetaMapSizeBytes = uint64_t{1} << 30;  // 1 GiB: millions of records
// Blobs one list() page returns at most.
inline constexpr size_t kMaxBlobListPage = 1000;
static_assert(kMaxBlobListPage <= limits::kMaxScanResults);

struct BlobInfo {
  Blake3Hash hash{};
  uint64_t size_bytes = 0;
  uint64_t added_ms = 0;  // wall clock of the (latest) import: the grace period runs from it
  bool was_present = false;  // finish(): the store held the blob already (not kept on disk)
};

struct BlobStoreOptions {
  std::string dir;
  // The largest blob an import accepts (a node knob; at most limits::kMaxBlobSizeBytes).
  uint64_t max_blob_size_bytes = limits::kMaxBlobSizeBytes;
  // Sync each meta record (and the renamed files) before an import returns. Off only for
  // benchmarks that create many blobs and do not survive a crash.
  bool is_durable = true;
};

struct BlobStoreStats {
  std::atomic<uint64_t> imports{0};            // imports that ended with a new blob
  std::atomic<uint64_t> imports_deduplicated{0};
  std::atomic<uint64_t> imports_failed{0};
  std::atomic<uint64_t> bytes_imported{0};
  std::atomic<uint64_t> corruptions_detected{0};  // reads that found a damaged blob
  std::atomic<uint64_t> blobs_removed{0};         // by GC or because damaged
  std::atomic<uint64_t> imports_in_progress{0};
  std::atomic<uint64_t> reads_in_progress{0};
};

class BlobStore;

// Keeps a blob from GC while it lives: a blob just imported stays pinned until the cluster
// has recorded who holds it (GC withdraws that record first; see node/blob_service.h).
class BlobPin {
 public:
  BlobPin() = default;
  BlobPin(BlobPin&& other) noexcept : store_(other.store_), hash_(other.hash_) { other.store_ = nullptr; }
  BlobPin& operator=(BlobPin&& other) noexcept;
  BlobPin(const BlobPin&) = delete;
  BlobPin& operator=(const BlobPin&) = delete;
  ~BlobPin() { release(); }
  void release();

 private:
  friend class BlobStore;
  BlobStore* store_ = nullptr;
  Blake3Hash hash_{};
};

// One import in progress. Destroying it before finish() abandons it (the temp file goes).
class BlobImport {
 public:
  ~BlobImport();
  BlobImport(const BlobImport&) = delete;
  BlobImport& operator=(const BlobImport&) = delete;

  // The next bytes of the blob. InvalidArgument once the blob would pass the store's
  // max_blob_size_bytes (naming it); the import is then failed.
  Status append(std::span<const uint8_t> bytes);
  // Bytes of the blob at `offset_bytes` (a verified group of a fetch; at most the size given
  // to begin_import). Groups may come in any order; finish() checks the whole.
  Status write_at(uint64_t offset_bytes, std::span<const uint8_t> bytes);
  uint64_t size_bytes() const { return size_bytes_; }

  // Syncs, hashes and publishes the blob. With `expected`, a blob whose hash differs is
  // refused (Corruption) and nothing is published. A blob already in the store is not
  // written again; its added time becomes now_ms.
  // With `pin`, the blob is pinned (atomically with becoming visible) until *pin is released.
  Result<BlobInfo> finish(const std::optional<Blake3Hash>& expected, uint64_t now_ms, BlobPin* pin = nullptr);

 private:
  friend class BlobStore;
  BlobImport(BlobStore& store, int fd, std::string path, uint64_t fixed_size_bytes);
  void abandon();

  BlobStore& store_;
  int fd_;
  std::string path_;
  uint64_t size_bytes_ = 0;
  uint64_t fixed_size_bytes_;  // UINT64_MAX: grows with append
  bool is_done_ = false;
};

// An open blob; pins it against GC while it lives.
class BlobReadHandle {
 public:
  ~BlobReadHandle();
  BlobReadHandle(const BlobReadHandle&) = delete;
  BlobReadHandle& operator=(const BlobReadHandle&) = delete;

  const BlobInfo& info() const { return info_; }
  // Writes the range encoding of `range` (blob/range_encoder.h), every node checked first.
  // Corruption (counted in the store's stats) if the blob or its outboard is damaged.
  Status encode(ByteRange range, const BlobWriter& writer);

 private:
  friend class BlobStore;
  BlobReadHandle(BlobStore& store, BlobInfo info, int fd, const uint8_t* outboard, size_t outboard_bytes);

  BlobStore& store_;
  BlobInfo info_;
  int fd_;
  const uint8_t* outboard_;  // mmap of the .obao file (nullptr when empty)
  size_t outboard_bytes_;
};

struct GcReport {
  uint64_t scanned = 0;
  uint64_t removed = 0;
  uint64_t removed_bytes = 0;
  uint64_t kept_protected = 0;  // a tag (or the caller's rule) protects them
  uint64_t kept_young = 0;      // inside the grace period
  uint64_t kept_in_use = 0;     // a read handle is open
  std::vector<Blake3Hash> removed_hashes;
};

class BlobStore {
 public:
  static Result<std::unique_ptr<BlobStore>> open(BlobStoreOptions options);
  ~BlobStore();
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // A new import. With `fixed_size_bytes`, the blob's size is known (a fetch that writes
  // groups at their offsets); InvalidArgument above max_blob_size_bytes.
  Result<std::unique_ptr<BlobImport>> begin_import(std::optional<uint64_t> fixed_size_bytes = std::nullopt);
  std::optional<BlobInfo> stat(const Blake3Hash& hash) const;
  // NotFound if the store does not hold the blob.
  Result<std::unique_ptr<BlobReadHandle>> open_read(const Blake3Hash& hash);
  // Blobs in hash order, those after `after` (all from the first when unset), at most
  // `limit` (capped at kMaxBlobListPage).
  std::vector<BlobInfo> list(const std::optional<Blake3Hash>& after, size_t limit) const;
  // Drops a blob at once (a damaged one: readers still holding it read from their open file
  // and fail on the damage themselves). False if it was not there.
  Result<bool> remove(const Blake3Hash& hash);
  // Removes every blob that is older than `grace_ms` at `now_ms`, not protected, and not
  // open for reading (a node-local policy; the node's GC uses the two steps below so that it
  // can consult the cluster between them).
  Result<GcReport> gc(uint64_t now_ms, uint64_t grace_ms, const std::function<bool(const Blake3Hash&)>& is_protected);

  // Step 1: from `cursor` on (hash order), up to `limit` blobs that are past the grace
  // period and not open; the others looked at are counted in `report`. Moves `cursor` to the
  // last blob looked at; sets `is_exhausted` once there are no more.
  std::vector<BlobInfo> gc_candidates(std::optional<Blake3Hash>& cursor, bool& is_exhausted, size_t limit,
                                      uint64_t now_ms, uint64_t grace_ms, GcReport& report) const;
  // Step 2: removes the blob if it is still past the grace period (an import refreshes it)
  // and still not open, atomically with that check. True if removed.
  Result<bool> remove_if_collectable(const Blake3Hash& hash, uint64_t now_ms, uint64_t grace_ms, GcReport& report);

  uint64_t blob_count() const;
  uint64_t max_blob_size_bytes() const { return options_.max_blob_size_bytes; }
  const BlobStoreStats& stats() const { return stats_; }
  const std::string& dir() const { return options_.dir; }

 private:
  friend class BlobImport;
  friend class BlobReadHandle;
  friend class BlobPin;
  struct Lmdb;
  BlobStore(BlobStoreOptions options, std::unique_ptr<Lmdb> lmdb);
  Status reconcile();
  std::string data_path(const Blake3Hash& hash) const;
  std::string outboard_path(const Blake3Hash& hash) const;
  Status put_meta(const BlobInfo& info);
  Status delete_meta(const Blake3Hash& hash);
  // With mu_ held: unlinks the files and the record.
  Status remove_locked(const Blake3Hash& hash);
  Result<BlobInfo> publish(const std::string& temp_path, const Blake3Hash& hash, uint64_t size_bytes,
                           std::span<const uint8_t> outboard, uint64_t now_ms, BlobPin* pin);
  // With mu_ held.
  void pin_locked(const Blake3Hash& hash, BlobPin* pin);
  void unpin(const Blake3Hash& hash);

  const BlobStoreOptions options_;
  std::unique_ptr<Lmdb> lmdb_;
  mutable std::mutex mu_;                 // publishing, removing and pinning are atomic under it
  std::map<Blake3Hash, uint32_t> pins_;   // [mu_] open read handles and BlobPins per blob
  std::atomic<uint64_t> next_temp_id_{0};
  BlobStoreStats stats_;
};

// Lowercase hex of a hash, and back (InvalidArgument: not 64 hex digits).
std::string hash_to_hex(const Blake3Hash& hash);
Result<Blake3Hash> hash_from_hex(std::string_view hex);

}  // namespace aspen::blob
