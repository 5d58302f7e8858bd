#include "storage/wal_format.h"

#include <zlib.h>

#include <cstring>
#include <fmt/format.h>

#include "aspen/raft.pb.h"
#include "core/encoding.h"

namespace aspen::storage::wal_format {

uint32_t record_crc(uint8_t type, std::string_view payload) {
  uLong crc = crc32(0L, &type, 1);
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size())));
}

uint32_t crc_of(std::string_view bytes) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

uint32_t read_u32_be(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string_view describe(RecordState state) {
  switch (state) {
    case RecordState::kOk: return "is intact";
    case RecordState::kZero: return "is missing";
    case RecordState::kShort: return "is cut short";
    case RecordState::kBadChecksum: return "fails its checksum";
  }
  return "is unreadable";
}

RecordAt record_at(const uint8_t* bytes, uint64_t off, uint64_t end) {
  RecordAt r;
  if (off + Wal::kRecordHeaderBytes > end) return r;
  const uint32_t len = read_u32_be(bytes + off);
  const uint32_t crc = read_u32_be(bytes + off + 4);
  r.type = bytes[off + 8];
  if (len == 0 && crc == 0 && r.type == 0) {
    r.state = RecordState::kZero;
    return r;
  }
  if (len > Wal::kMaxRecordBytes || off + Wal::kRecordHeaderBytes + len > end) return r;
  r.payload = std::string_view(reinterpret_cast<const char*>(bytes + off + Wal::kRecordHeaderBytes), len);
  r.size_bytes = Wal::kRecordHeaderBytes + len;
  r.state = record_crc(r.type, r.payload) == crc ? RecordState::kOk : RecordState::kBadChecksum;
  return r;
}

std::optional<BatchAt> batch_at(const uint8_t* bytes, uint64_t off, uint64_t end) {
  const RecordAt marker = record_at(bytes, off, end);
  if (marker.state != RecordState::kOk || marker.type != Wal::kBatch || marker.payload.size() != kBatchPayloadBytes) {
    return std::nullopt;
  }
  Decoder d(marker.payload);
  const uint64_t self = *d.get_u64_be();
  const uint64_t synced_through = *d.get_u64_be();
  const uint32_t body_bytes = *d.get_u32_be();
  const uint32_t body_crc = *d.get_u32_be();
  const uint64_t body_begin = off + marker.size_bytes;
  // The marker names its own offset, so a marker-like run of bytes inside an entry (or a
  // batch left where it was not written) is never taken for a batch here.
  if (self != off || body_bytes > end - body_begin) return std::nullopt;
  std::string_view body(reinterpret_cast<const char*>(bytes + body_begin), body_bytes);
  if (crc_of(body) != body_crc) return std::nullopt;
  return BatchAt{synced_through, body_begin, body_begin + body_bytes};
}

std::optional<uint64_t> find_later_synced_batch(const uint8_t* bytes, uint64_t from, uint64_t end, uint64_t damaged_at) {
  // A marker's type byte sits 8 bytes into it; memchr skips the zeros of the preallocated
  // remainder quickly.
  uint64_t p = from;
  while (p + Wal::kBatchMarkerBytes <= end) {
    const void* hit = std::memchr(bytes + p + 8, Wal::kBatch, static_cast<size_t>(end - Wal::kBatchMarkerBytes + 1 - p));
    if (hit == nullptr) return std::nullopt;
    p = static_cast<uint64_t>(static_cast<const uint8_t*>(hit) - bytes) - 8;
    if (read_u32_be(bytes + p) == kBatchPayloadBytes) {
      if (const auto b = batch_at(bytes, p, end)) {
        if (b->synced_through > damaged_at) return p;
        p = b->body_end;
        continue;
      }
    }
    ++p;
  }
  return std::nullopt;
}

std::string damaged_entry(const uint8_t* bytes, uint64_t off, uint64_t end, Index last_index) {
  const RecordAt marker = record_at(bytes, off, end);
  const bool is_marker_ok = marker.state == RecordState::kOk && marker.type == Wal::kBatch;
  Index seen = last_index;
  for (uint64_t p = off + Wal::kBatchMarkerBytes; p < end;) {
    const RecordAt r = record_at(bytes, p, end);
    pb::Entry e;
    const bool is_next_entry = r.type == Wal::kEntry && !r.payload.empty() &&
                               e.ParseFromArray(r.payload.data(), static_cast<int>(r.payload.size())) &&
                               e.index() == seen + 1;
    if (r.state != RecordState::kOk) {
      return fmt::format("entry {} (its record at offset {} {})", seen + 1, p, describe(r.state));
    }
    if (!is_marker_ok && is_next_entry) {
      return fmt::format("entry {} onwards (the batch's marker at offset {} {})", e.index(), off,
                         marker.type == Wal::kBatch ? describe(marker.state) : "is damaged");
    }
    if (is_next_entry) seen = e.index();
    if (r.type == Wal::kBatch) break;  // the next batch
    p += r.size_bytes;
  }
  return fmt::format("the batch after entry {}", last_index);
}

}  // namespace aspen::storage::wal_format
