// Wal: the Raft log and hard state in append-only segment files, one fdatasync per batch.
//
// Why a log of its own: an LMDB commit makes a B-tree durable (several scattered pages, and
// a second flush for the meta page); an append to a preallocated file is one sequential
// write and one fdatasync that touches no file metadata. The state machine stays in LMDB,
// applied off the commit path; on restart the entries after its applied index are replayed
// from here. (The same split as etcd's WAL + bbolt.)
//
// Layout: `<dir>/<seq as 16 hex digits>.wal`, each starting with an 16-byte header (magic,
// sequence number) and preallocated to segment_size_bytes with zeros, followed by records:
//   u32 BE payload length | u32 BE CRC-32 of (type byte + payload) | u8 type | payload
// A zero length ends a segment's records. Types: an entry (a serialized pb::Entry), the hard
// state (pb::HardState), a reset (u64 BE index, u64 BE term: the log is empty after that
// point, written after a snapshot was installed in the state machine store), a checkpoint
// (below) and a batch marker.
//
// Format 2 (magic ASPNWAL2) groups records into batches: each write is one batch, a marker
// record (u64 BE its own offset, u64 BE synced_through, u32 BE body length, u32 BE CRC-32 of
// the body) followed by the body, its records. `synced_through` is the offset below which
// every byte of the segment was made durable by an fdatasync that returned before this batch
// was written. Format 1 (ASPNWAL1, written by earlier versions) has no markers; it is still
// read, and never written.
//
// Crash safety: a batch is one pwrite and then (unless it holds only a commit index) one
// fdatasync; a crash may leave a partly written batch at the tail of the segment being
// written. A node never appends to a segment it found at open: every open (and every roll to
// a new segment) starts a new segment whose first record, a checkpoint (u64 BE sequence, u64
// BE end offset), says where the records of the segment before it end. Replay reads a segment
// up to that end, and a record there that is short or fails its checksum is damage
// (Corruption), not a crash. Only the last segment has no checkpoint after it; there, the
// first batch that is short or fails its checksum is a torn tail and ends the log, unless an
// intact batch after it says (by its synced_through) that the failing one had been synced:
// a crash cannot undo a synced write, so that is damage (Corruption naming the segment, the
// offset and the entry), and acknowledged entries are never dropped silently. Damage inside
// the very last batch cannot be told from a torn write and is dropped like one (the store
// above checks that no applied entry went with it). A format-1 last segment keeps the old
// rule: its first bad record ends the log. A gap in entry indices across segments is
// Corruption.
//
// A replayed log's terms come from records whose checksums passed; a damaged record never
// reads as term 0.
//
// Threads: append(), reset() and compact() run on one thread (the storage thread); the
// read methods may run on any thread concurrently (an internal mutex guards the index).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "aspen/raft.pb.h"
#include "core/error.h"
#include "core/types.h"

namespace aspen::storage {

namespace pb = aspen::raftpb;

struct WalOptions {
  std::string dir;  // created (mode 0700) if missing
  // Each new segment is preallocated to this size, so an append only writes data blocks and
  // fdatasync need not flush a new file size. A batch larger than a segment gets one of its
  // own, grown past this size.
  uint64_t segment_size_bytes = uint64_t{64} << 20;
};

// The point the state machine store says the log starts after: its compaction point (or the
// snapshot it installed). Replay drops entries at or below it.
struct WalFloor {
  Index index = 0;
  Term term = 0;
};

struct WalReset {
  Index index = 0;
  Term term = 0;
};

struct WalWrite {
  // The state machine store installed a snapshot at (index, term): the log is empty after
  // it, before this write's entries.
  std::optional<WalReset> reset;
  const pb::HardState* hard_state = nullptr;
  const std::vector<pb::Entry>* entries = nullptr;
  bool is_sync = true;
};

class Wal {
 public:
  // Opens the directory (creating it), replays every segment and starts a new segment.
  // Corruption when synced records are damaged or missing; the message names the segment
  // file, the offset and the entry.
  static Result<std::unique_ptr<Wal>> open(const WalOptions& options, WalFloor floor);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // One write: an optional reset, the hard state, entries (a conflicting suffix is
  // replaced, §5.3). Entries must start above the log's base and at or before
  // last_index() + 1. Durable when it returns if it holds a reset or entries or asks for a
  // sync (a commit-index-only hard state need not be durable).
  Status write(const WalWrite& w);
  // Drops entries up to and including `index` from memory and deletes every segment that
  // holds nothing above it. The caller must have made its state machine durable through
  // `index` first (the deleted entries cannot be replayed any more).
  Status compact(Index index);

  Result<std::vector<pb::Entry>> entries(Index lo, Index hi, uint64_t max_size_bytes) const;
  // Term of entry i for i in [base, last]; Compacted below, Unavailable above.
  Result<Term> term(Index i) const;
  Index base_index() const;  // the last entry not in the log (compacted or before a reset)
  Index last_index() const;
  pb::HardState hard_state() const;
  bool has_hard_state() const;
  // Bytes of the records of the entries held.
  uint64_t size_bytes() const;
  size_t segment_count() const;
  // Bytes the segments occupy on disk (preallocated space included).
  uint64_t disk_size_bytes() const;

  // Record types (exposed for tests that write damaged segments).
  enum RecordType : uint8_t { kEntry = 1, kHardState = 2, kReset = 3, kCheckpoint = 4, kBatch = 5 };
  static constexpr size_t kRecordHeaderBytes = 9;
  static constexpr size_t kSegmentHeaderBytes = 16;
  static constexpr size_t kBatchMarkerBytes = kRecordHeaderBytes + 24;
  // The largest record accepted: one entry is bounded by the command limit, well below this.
  static constexpr uint32_t kMaxRecordBytes = uint32_t{64} << 20;
  // Appends one framed record to `out`.
  static void encode_record(std::string& out, RecordType type, std::string_view payload);

 private:
  struct Segment;
  struct Slot {
    Term term = 0;
    uint64_t segment_seq = 0;
    uint64_t offset = 0;     // of the record's header
    uint32_t size_bytes = 0; // the whole record
  };
  struct Replay;
  struct SegmentBytes;

  explicit Wal(WalOptions options);
  Status replay(WalFloor floor);
  // Replays one mapped segment's records into the index. [mu_]
  Status replay_segment(Segment& seg, const SegmentBytes& bytes, Replay& rp);
  Status replay_batches(Segment& seg, const SegmentBytes& bytes, Replay& rp);
  Status replay_records_v1(Segment& seg, const SegmentBytes& bytes, Replay& rp);
  // Adds one checked record to the index. [mu_]
  Status replay_record(Segment& seg, uint8_t type, std::string_view payload, uint64_t offset, Replay& rp);
  // Creates the next segment; its checkpoint names the end of the records of `prev_seq` (0:
  // none to name).
  Status start_segment(uint64_t min_size_bytes, uint64_t prev_seq, uint64_t prev_end);  // [writer]
  // Writes one batch: `batch` starts with kBatchMarkerBytes reserved for its marker (filled
  // in here), then its records; `offset_out` gets the offset of the batch's first byte.
  Status write_batch(std::string& batch, bool is_sync, uint64_t* offset_out);  // [writer]
  void truncate_after(Index index);  // [mu_] drops slots after `index`
  Result<pb::Entry> read_entry(Index i) const;  // [mu_]

  WalOptions options_;
  int dir_fd_ = -1;
  std::shared_ptr<Segment> active_;  // [writer] the segment appends go to
  uint64_t write_offset_ = 0;        // [writer] next free byte of active_
  uint64_t synced_offset_ = 0;       // [writer] bytes of active_ known durable
  bool is_active_failed_ = false;    // [writer] a write to active_ failed: the next one rolls

  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Segment>> segments_;  // [mu_] by sequence number
  Index base_index_ = 0;                                   // [mu_]
  Term base_term_ = 0;                                     // [mu_]
  std::deque<Slot> slots_;                                 // [mu_] entry base_index_ + 1 + k
  uint64_t size_bytes_ = 0;                                // [mu_] sum of slots_' sizes
  pb::HardState hard_state_;                               // [mu_]
  bool has_hard_state_ = false;                            // [mu_]
};

}  // namespace aspen::storage
