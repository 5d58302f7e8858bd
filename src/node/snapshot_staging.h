// Snapshot staging: the rules a node follows from the first byte of a snapshot it receives
// to the moment the storage thread has installed it. Sans-I/O: the shell (RaftLinks)
// carries the decisions out with files in the data directory, the simulator with the data
// in memory, so both run the same rules.
//
//   SnapshotReception in;                       // one snapshot stream, after its greeting
//   auto f = in.on_frame(bytes);                // kAppend: write f.record to the file
//   auto m = in.on_end(peer_id, self_id);       // the MsgSnap to step, or why not
//   bool is_new = staged.stage(index, term, file);
//   core.step(*m);
//   if (auto drop = staged.settle(index, term, is_new, taken)) remove(*drop);
//   ... the core asks to install (index, term): staged.find(index, term) is its data ...
//   for (auto& f : staged.drop_up_to(installed_index)) remove(f);
//
// Wire format of a snapshot stream after the greeting: frames tagged kSnapshotChunkTag + a
// chunk of the state (stored as varint length + bytes: the format of pb::Snapshot.data), then
// exactly one kSnapshotMessageTag + the MsgSnap, which carries metadata only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aspen/raft.pb.h"
#include "core/error.h"
#include "core/types.h"

namespace aspen::node {

namespace pb = aspen::raftpb;

inline constexpr char kSnapshotChunkTag = 'c';
inline constexpr char kSnapshotMessageTag = 'm';

// One snapshot stream being received.
class SnapshotReception {
 public:
  struct Frame {
    enum class Kind { kAppend, kMessage, kRefuse } kind = Kind::kRefuse;
    std::string record;      // kAppend: the bytes to append to the staged data
    std::string_view why;    // kRefuse: for the log; the stream is reset and its data removed
  };
  // `max_size_bytes`: the staged data may not grow past it (limits::kMaxStreamedSnapshotBytes).
  explicit SnapshotReception(uint64_t max_size_bytes) : max_size_bytes_(max_size_bytes) {}

  Frame on_frame(std::string_view frame);
  // The stream ended without error: the MsgSnap to step (it came from `from`, to `self`,
  // and has no inline data), or why it is refused.
  Result<pb::Message> on_end(NodeId from, NodeId self) const;
  uint64_t size_bytes() const { return size_bytes_; }

 private:
  uint64_t max_size_bytes_;
  uint64_t size_bytes_ = 0;
  std::optional<std::string> message_;
  bool is_refused_ = false;
};

// Disk space for a snapshot (the node keeps min_free_bytes free, as for its storage alarm).
// While it arrives, the staged data must leave the reserve free; before it is stepped, the
// disk must also hold its install: the state machine is rebuilt from the staged file, about
// as large again, while the old state and the file still exist. OK, or StorageFull saying
// what is needed and what is free (the sender tries again later).
Status check_snapshot_space(uint64_t staged_bytes, bool is_complete, uint64_t disk_free_bytes,
                            uint64_t min_free_bytes);
// How often, in received bytes, a reception checks the disk.
inline constexpr uint64_t kSnapshotSpaceCheckBytes = uint64_t{8} << 20;

// Received snapshots waiting for their install, by (index, term). A handle says where the
// data is: a file path in the shell, the data itself in the simulator.
class StagedSnapshots {
 public:
  // Keeps `handle` for (index, term) unless one is staged already: the same snapshot
  // received twice keeps its first data, which the storage thread may already be reading.
  // Returns whether `handle` was kept; if not, the caller discards it.
  bool stage(Index index, Term term, std::string handle);
  // After the core stepped the MsgSnap: a snapshot the core did not take (an older one than
  // it has, or a step that failed) is never installed. `is_taken`: the core's unstable
  // snapshot is exactly (index, term). Returns a handle to discard, if any.
  std::optional<std::string> settle(Index index, Term term, bool was_new, bool is_taken);
  // The data of the snapshot the core asks to install; null if none is staged (a core that
  // took a snapshot not received on a snapshot stream), which the caller treats as a fault.
  const std::string* find(Index index, Term term) const;
  // A snapshot at `index` was installed: it and every older one are done. Returns the
  // handles to discard.
  std::vector<std::string> drop_up_to(Index index);
  size_t size() const { return staged_.size(); }

 private:
  std::map<std::pair<Index, Term>, std::string> staged_;
};

}  // namespace aspen::node
