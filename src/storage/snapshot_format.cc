#include "storage/snapshot_format.h"

#include <fmt/format.h>

#include "core/encoding.h"
#include "core/limits.h"
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

Status ChunkWriter::finish() {
  if (chunk_.kvs_size() == 0 && chunk_.leases_size() == 0 && chunk_.lease_keys_size() == 0) return {};
  std::string bytes = chunk_.SerializeAsString();
  chunk_.Clear();
  bytes_ = 0;
  return sink_(bytes);
}

Status load_snapshot_data(std::string_view data, kv::KvTables& tables) {
  Decoder d(data);
  while (!d.is_empty()) {
    auto bytes = d.get_length_prefixed(limits::kMaxSnapshotSizeBytes);
    if (!bytes) return std::unexpected(bytes.error());
    kvpb::SnapshotChunk chunk;
    if (!chunk.ParseFromArray(bytes->data(), static_cast<int>(bytes->size()))) {
      return make_error(ErrorCode::kCorruption, "snapshot chunk does not parse");
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
  }
  return {};
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
