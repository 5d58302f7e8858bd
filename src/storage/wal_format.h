// The Wal's on-disk records and batches, checked in place: what replay needs to tell a
// torn write from damage. Internal to src/storage (wal.cc and its tests); the format itself
// is described in wal.h.
//
// Every function reads only the bytes it is given, below `end`: a segment's bytes are
// untrusted (a disk may return anything) and nothing here asserts on them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/types.h"
#include "storage/wal.h"

namespace aspen::storage::wal_format {

// Format 1: records without batch markers (earlier versions; read, never written).
inline constexpr char kSegmentMagicV1[8] = {'A', 'S', 'P', 'N', 'W', 'A', 'L', '1'};
// Format 2: every write is a batch behind a marker.
inline constexpr char kSegmentMagicV2[8] = {'A', 'S', 'P', 'N', 'W', 'A', 'L', '2'};
inline constexpr uint32_t kBatchPayloadBytes = Wal::kBatchMarkerBytes - Wal::kRecordHeaderBytes;

uint32_t record_crc(uint8_t type, std::string_view payload);
uint32_t crc_of(std::string_view bytes);
uint32_t read_u32_be(const uint8_t* p);

enum class RecordState { kOk, kZero, kShort, kBadChecksum };
// "is intact", "is missing", "is cut short", "fails its checksum".
std::string_view describe(RecordState state);

// One record read in place from a mapped segment.
struct RecordAt {
  RecordState state = RecordState::kShort;
  uint8_t type = 0;
  std::string_view payload;  // empty unless the whole record lies before the end
  uint64_t size_bytes = 0;   // header and payload
};
RecordAt record_at(const uint8_t* bytes, uint64_t off, uint64_t end);

// An intact batch: its marker and its whole body passed their checksums.
struct BatchAt {
  uint64_t synced_through = 0;
  uint64_t body_begin = 0;
  uint64_t body_end = 0;
};
// The batch whose marker is at `off`, if it is intact.
std::optional<BatchAt> batch_at(const uint8_t* bytes, uint64_t off, uint64_t end);

// The offset of the first intact batch in [from, end) that was written after the bytes at
// `damaged_at` had been synced: proof that damage there is not a torn write.
std::optional<uint64_t> find_later_synced_batch(const uint8_t* bytes, uint64_t from, uint64_t end, uint64_t damaged_at);

// Names the entry a damaged batch at `off` held first, as far as its records still tell:
// the first entry whose record fails, or the batch's first entry when its marker is the
// damaged part. `last_index` is the last entry replayed before the batch.
std::string damaged_entry(const uint8_t* bytes, uint64_t off, uint64_t end, Index last_index);

}  // namespace aspen::storage::wal_format
