#include "node/snapshot_staging.h"

#include <fmt/format.h>

#include "core/buggify.h"
#include "core/encoding.h"

namespace aspen::node {

SnapshotReception::Frame SnapshotReception::on_frame(std::string_view frame) {
  auto refuse = [this](std::string_view why) {
    is_refused_ = true;
    return Frame{Frame::Kind::kRefuse, {}, why};
  };
  if (is_refused_) return refuse("snapshot frame after a refusal");
  if (frame.empty()) return refuse("empty snapshot frame");
  if (message_) return refuse("snapshot data after its final message");
  if (frame[0] == kSnapshotMessageTag) {
    message_ = std::string(frame.substr(1));
    return Frame{Frame::Kind::kMessage, {}, {}};
  }
  if (frame[0] != kSnapshotChunkTag) return refuse("unknown snapshot frame");
  // As a reset stream or a failed write of the staged file would.
  if (ASPEN_BUGGIFY("node.snapshot_chunk_failed")) return refuse("a snapshot chunk was lost");
  std::string_view chunk = frame.substr(1);
  Frame out{Frame::Kind::kAppend, {}, {}};
  put_varint(out.record, chunk.size());
  // Checked before anything is written: a peer cannot make this node store more than the limit.
  if (size_bytes_ + out.record.size() + chunk.size() > max_size_bytes_) return refuse("snapshot over the size limit");
  out.record.append(chunk);
  size_bytes_ += out.record.size();
  return out;
}

Result<pb::Message> SnapshotReception::on_end(NodeId from, NodeId self) const {
  if (is_refused_) return make_error(ErrorCode::kInvalidArgument, "the snapshot stream was refused");
  if (!message_) return make_error(ErrorCode::kInvalidArgument, "the snapshot stream ended without its final message");
  pb::Message m;
  if (!m.ParseFromString(*message_)) return make_error(ErrorCode::kInvalidArgument, "malformed final snapshot message");
  if (m.type() != pb::MSG_SNAP) return make_error(ErrorCode::kInvalidArgument, "the final message is not a snapshot");
  if (m.from() != from || m.to() != self) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the snapshot claims to be from {} to {} on node {}'s stream", m.from(), m.to(), from));
  }
  if (!m.snapshot().data().empty()) {
    return make_error(ErrorCode::kInvalidArgument, "the final snapshot message carries data; it must come in chunks");
  }
  return m;
}

bool StagedSnapshots::stage(Index index, Term term, std::string handle) {
  return staged_.try_emplace({index, term}, std::move(handle)).second;
}

std::optional<std::string> StagedSnapshots::settle(Index index, Term term, bool was_new, bool is_taken) {
  if (!was_new || is_taken) return std::nullopt;
  auto it = staged_.find({index, term});
  if (it == staged_.end()) return std::nullopt;
  std::string handle = std::move(it->second);
  staged_.erase(it);
  return handle;
}

const std::string* StagedSnapshots::find(Index index, Term term) const {
  auto it = staged_.find({index, term});
  return it == staged_.end() ? nullptr : &it->second;
}

std::vector<std::string> StagedSnapshots::drop_up_to(Index index) {
  std::vector<std::string> out;
  while (!staged_.empty() && staged_.begin()->first.first <= index) {
    out.push_back(std::move(staged_.begin()->second));
    staged_.erase(staged_.begin());
  }
  return out;
}

Status check_snapshot_space(uint64_t staged_bytes, bool is_complete, uint64_t disk_free_bytes,
                            uint64_t min_free_bytes) {
  // While receiving, the bytes already written are already off the free space.
  const uint64_t needed = is_complete ? staged_bytes + min_free_bytes : min_free_bytes;
  if (disk_free_bytes >= needed) return {};
  return make_error(ErrorCode::kStorageFull,
                    is_complete ? fmt::format("not enough disk to install a snapshot of {}: it needs {} free (its "
                                              "size again, plus the {} reserve), {} is free",
                                              format_mib(staged_bytes), format_mib(needed), format_mib(min_free_bytes),
                                              format_mib(disk_free_bytes))
                                : fmt::format("not enough disk to receive a snapshot: {} received, {} free, below "
                                              "the {} reserve",
                                              format_mib(staged_bytes), format_mib(disk_free_bytes), format_mib(min_free_bytes)));
}

}  // namespace aspen::node
