#include "storage/snapshot_format.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/assert.h"
#include "core/encoding.h"
#include "core/limits.h"
#include "kv/command_hlc.h"
#include "kv/commands.h"
#include "storage/store.h"

namespace aspen::storage {

Status ChunkWriter::maybe_flush(size_t added_bytes) {
  bytes_ += added_bytes;
  if (bytes_ < kSnapshotChunkBytes) return {};
  return finish();
}

Status ChunkWriter::add_kv(const kvpb::KeyValue& kv) {
  *chunk_.add_kvs() = kv;
  return maybe_flush(kv.key().size() + kv.value().size() + 32);
}

Status ChunkWriter::add_lease(const kvpb::Lease& lease) {
  *chunk_.add_leases() = lease;
  return maybe_flush(40);
}

Status ChunkWriter::add_lease_key(uint64_t lease_id, std::string_view key) {
  auto* lk = chunk_.add_lease_keys();
  lk->set_lease_id(lease_id);
  lk->set_key(std::string(key));
  return maybe_flush(key.size() + 12);
}

Status ChunkWriter::add_history(const kvpb::HistoryEntry& entry) {
  *chunk_.add_history() = entry;
  return maybe_flush(entry.record().kv().key().size() + entry.record().kv().value().size() + 64);
}

Status ChunkWriter::add_all_history(kv::KvTables& tables) {
  constexpr size_t kPage = 4096;
  constexpr size_t kPageBytes = size_t{16} << 20;
  Index revision = 0;
  uint32_t position = 0;
  while (true) {
    auto page = tables.history_from(revision, position, kPage, kPageBytes);
    if (!page) return std::unexpected(page.error());
    if (page->empty()) return {};
    for (const auto& e : *page) {
      if (auto s = add_history(e); !s) return s;
    }
    revision = page->back().revision();
    if (page->back().position() == UINT32_MAX) {
      ++revision;
      position = 0;
    } else {
      position = page->back().position() + 1;
    }
  }
}

void ChunkWriter::set_applied_hlc(const std::optional<HlcTimestamp>& t) {
  if (t) kv::to_proto(*t, chunk_.mutable_applied_hlc());
}

Status ChunkWriter::finish() {
  if (chunk_.kvs_size() == 0 && chunk_.leases_size() == 0 && chunk_.lease_keys_size() == 0 &&
      chunk_.history_size() == 0 && !chunk_.has_applied_hlc()) {
    return {};
  }
  std::string bytes = chunk_.SerializeAsString();
  chunk_.Clear();
  bytes_ = 0;
  return sink_(bytes);
}

namespace {

// Replays one chunk into `tables` and raises `applied_hlc` to the stamp it carries, if any.
Status load_chunk(std::string_view bytes, kv::KvTables& tables, std::optional<HlcTimestamp>& applied_hlc) {
  kvpb::SnapshotChunk chunk;
  if (!chunk.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error(ErrorCode::kCorruption, "snapshot chunk does not parse");
  }
  if (chunk.has_applied_hlc()) {
    const HlcTimestamp t = kv::from_proto(chunk.applied_hlc());  // clamped
    if (!applied_hlc || t > *applied_hlc) applied_hlc = t;
  }
  for (const auto& kv : chunk.kvs()) {
    if (auto s = tables.put(kv); !s) return s;
  }
  for (const auto& l : chunk.leases()) {
    if (auto s = tables.put_lease(l); !s) return s;
  }
  for (const auto& lk : chunk.lease_keys()) {
    if (auto s = tables.attach_key(lk.lease_id(), lk.key()); !s) return s;
  }
  for (const auto& h : chunk.history()) {
    if (auto s = kv::validate_key(h.record().kv().key()); !s) {
      return make_error(ErrorCode::kCorruption, "a snapshot's history names an invalid key");
    }
    if (auto s = tables.put_history(h); !s) return s;
  }
  return {};
}

// A chunk holds at least one record and a record at most one key and value, so chunks stay
// far below this; a larger length prefix means the file is damaged.
constexpr size_t kMaxChunkBytes = limits::kMaxFrameSizeBytes;

}  // namespace

Result<std::optional<HlcTimestamp>> load_snapshot_data(std::string_view data, kv::KvTables& tables) {
  std::optional<HlcTimestamp> applied_hlc;
  Decoder d(data);
  while (!d.is_empty()) {
    auto bytes = d.get_length_prefixed(kMaxChunkBytes);
    if (!bytes) return std::unexpected(bytes.error());
    if (auto s = load_chunk(*bytes, tables, applied_hlc); !s) return std::unexpected(s.error());
  }
  return applied_hlc;
}

Result<std::optional<HlcTimestamp>> load_snapshot_file(const std::string& path, kv::KvTables& tables) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return make_error(ErrorCode::kUnavailable, fmt::format("open snapshot file {}: {}", path, std::strerror(errno)));
  std::optional<HlcTimestamp> applied_hlc;
  std::string chunk;
  while (true) {
    // Length prefix: a varint, as put_length_prefixed writes it.
    uint64_t size = 0;
    int shift = 0;
    int c = std::fgetc(f.get());
    if (c == EOF) break;  // a clean end between chunks
    while (true) {
      if (shift > 63) return make_error(ErrorCode::kCorruption, "snapshot file: malformed chunk length");
      size |= uint64_t(c & 0x7f) << shift;
      if ((c & 0x80) == 0) break;
      shift += 7;
      c = std::fgetc(f.get());
      if (c == EOF) return make_error(ErrorCode::kCorruption, "snapshot file: truncated chunk length");
    }
    if (size > kMaxChunkBytes) {
      return make_error(ErrorCode::kCorruption, fmt::format("snapshot file: chunk of {} bytes", size));
    }
    chunk.resize(size);
    if (std::fread(chunk.data(), 1, size, f.get()) != size) {
      return make_error(ErrorCode::kCorruption, "snapshot file: truncated chunk");
    }
    if (auto s = load_chunk(chunk, tables, applied_hlc); !s) return std::unexpected(s.error());
  }
  if (std::ferror(f.get())) return make_error(ErrorCode::kUnavailable, fmt::format("read snapshot file {}", path));
  return applied_hlc;
}

Result<std::optional<HlcTimestamp>> load_batch_snapshot(const WriteBatch& batch, kv::KvTables& tables) {
  ASPEN_ASSERT(batch.snapshot != nullptr);
  if (batch.snapshot_data_path != nullptr) return load_snapshot_file(*batch.snapshot_data_path, tables);
  return load_snapshot_data(batch.snapshot->data(), tables);
}

Result<WriteOutcome> Store::write(const WriteBatch& batch) {
  if (auto s = write_log(batch); !s) return std::unexpected(s.error());
  auto applied = apply(batch);
  if (!applied) return std::unexpected(applied.error());
  WriteOutcome out;
  out.applied = std::move(*applied);
  out.entries_appended = batch.entries == nullptr ? 0 : batch.entries->size();
  return out;
}

Result<pb::SnapshotMetadata> Store::trigger_snapshot() {
  Index applied = applied_index();
  auto t = term(applied);
  if (!t) return std::unexpected(t.error());
  if (applied >= first_index()) {
    if (auto s = compact(applied); !s) return std::unexpected(s.error());
  }
  pb::SnapshotMetadata meta;
  meta.set_index(applied);
  meta.set_term(*t);
  *meta.mutable_conf_state() = conf_state();
  return meta;
}

Result<pb::Snapshot> build_snapshot(const Store& store, size_t max_size_bytes) {
  pb::Snapshot snap;
  std::string* data = snap.mutable_data();
  auto meta = store.stream_snapshot([&](std::string_view chunk) -> Status {
    if (data->size() + chunk.size() + 10 > max_size_bytes) {
      return make_error(ErrorCode::kMessageTooLarge,
                        fmt::format("snapshot exceeds the limit of {} bytes", max_size_bytes));
    }
    put_length_prefixed(*data, chunk);
    return {};
  });
  if (!meta) return std::unexpected(meta.error());
  *snap.mutable_metadata() = std::move(*meta);
  return snap;
}

}  // namespace aspen::storage
