#include "storage/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "core/assert.h"
#include "core/encoding.h"
#include "raft/log_storage.h"
#include "storage/wal_format.h"

namespace aspen::storage {

using namespace wal_format;

namespace {

constexpr std::string_view kSegmentSuffix = ".wal";

Error io_error(std::string_view what, const std::string& path, int err) {
  // A full disk is an operator's problem with a known remedy; say so.
  if (err == ENOSPC || err == EDQUOT) {
    return Error(ErrorCode::kStorageFull, fmt::format("{} {}: the disk is full; free space and the node retries", what, path));
  }
  return Error(ErrorCode::kInternal, fmt::format("{} {}: {}", what, path, std::strerror(err)));
}

std::string segment_name(uint64_t seq) { return fmt::format("{:016x}{}", seq, kSegmentSuffix); }

// The sequence number a file name encodes, or nullopt for files that are not segments.
std::optional<uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != 16 + kSegmentSuffix.size() || !name.ends_with(kSegmentSuffix)) return std::nullopt;
  uint64_t seq = 0;
  for (char c : name.substr(0, 16)) {
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    seq = (seq << 4) | static_cast<uint64_t>(v);
  }
  return seq;
}

Status write_all(int fd, const char* data, size_t size, uint64_t offset, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(io_error("cannot write", path, errno));
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

}  // namespace

struct Wal::Segment {
  uint64_t seq = 0;
  std::string path;
  int fd = -1;
  uint64_t capacity_bytes = 0;  // preallocated size
  uint64_t records_end = 0;     // replay only: where its valid records ended
  Index max_index = 0;          // highest entry or reset index written in it
  ~Segment() {
    if (fd >= 0) ::close(fd);
  }
};

void Wal::encode_record(std::string& out, RecordType type, std::string_view payload) {
  ASPEN_ASSERT(payload.size() <= kMaxRecordBytes);
  put_u32_be(out, static_cast<uint32_t>(payload.size()));
  put_u32_be(out, record_crc(static_cast<uint8_t>(type), payload));
  out.push_back(static_cast<char>(type));
  out.append(payload);
}

Wal::Wal(WalOptions options) : options_(std::move(options)) {}

Wal::~Wal() {
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

Result<std::unique_ptr<Wal>> Wal::open(const WalOptions& options, WalFloor floor) {
  ASPEN_ASSERT(options.segment_size_bytes > kSegmentHeaderBytes);
  if (::mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(io_error("cannot create log directory", options.dir, errno));
  }
  std::unique_ptr<Wal> wal(new Wal(options));
  wal->dir_fd_ = ::open(options.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (wal->dir_fd_ < 0) return std::unexpected(io_error("cannot open log directory", options.dir, errno));
  if (auto s = wal->replay(floor); !s) return std::unexpected(s.error());
  return wal;
}

// Replay state: the term the replayed log holds at base_index_ (0 when unknown). A snapshot
// installed in the state machine store just before a crash moves the floor past a log that
// may disagree with it; Raft then keeps the entries after the snapshot only if the log holds
// the snapshot's last entry with the same term (§7), and so does replay.
struct Wal::Replay {
  Term term_at_base = 0;
};

// A segment mapped for replay: its records are read up to `end`, which a later segment's
// checkpoint fixed (`is_end_known`), or else the file's end.
struct Wal::SegmentBytes {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  uint64_t end = 0;
  bool is_end_known = false;
};

namespace {

// Damage in the synced part of a segment: names the file, the offset and the entry after
// which the log stops being readable.
Error damage(const std::string& path, uint64_t off, std::string_view what, Index last_index, uint64_t end) {
  return Error(ErrorCode::kCorruption,
               fmt::format("log segment {}: the record at offset {} {}, after entry {} (the log was synced up to offset {})",
                           path, off, what, last_index, end));
}

}  // namespace

Status Wal::replay(WalFloor floor) {
  std::vector<std::pair<uint64_t, std::string>> files;
  if (DIR* d = ::fdopendir(::dup(dir_fd_)); d != nullptr) {
    while (dirent* ent = ::readdir(d)) {
      if (auto seq = parse_segment_name(ent->d_name)) files.emplace_back(*seq, ent->d_name);
    }
    ::closedir(d);
  } else {
    return std::unexpected(io_error("cannot list log directory", options_.dir, errno));
  }
  std::sort(files.begin(), files.end());

  // Where each segment's records end, from its successor's checkpoint.
  std::map<uint64_t, uint64_t> known_end;
  for (const auto& [seq, name] : files) {
    const std::string path = options_.dir + "/" + name;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::unexpected(io_error("cannot open log segment", path, errno));
    uint8_t head[kSegmentHeaderBytes + kRecordHeaderBytes + 16];
    const ssize_t n = ::pread(fd, head, sizeof(head), 0);
    ::close(fd);
    if (n != static_cast<ssize_t>(sizeof(head))) continue;
    if (std::memcmp(head, kSegmentMagicV1, 8) != 0 && std::memcmp(head, kSegmentMagicV2, 8) != 0) continue;
    const uint8_t* rec = head + kSegmentHeaderBytes;
    std::string_view payload(reinterpret_cast<const char*>(rec + kRecordHeaderBytes), 16);
    if (read_u32_be(rec) != 16 || rec[8] != kCheckpoint || record_crc(kCheckpoint, payload) != read_u32_be(rec + 4)) continue;
    Decoder d(payload);
    auto prev = d.get_u64_be();
    auto end = prev ? d.get_u64_be() : prev;
    if (end) known_end[*prev] = *end;
  }

  std::unique_lock lock(mu_);
  base_index_ = floor.index;
  base_term_ = floor.term;
  Replay rp;
  for (const auto& [seq, name] : files) {
    auto seg = std::make_shared<Segment>();
    seg->seq = seq;
    seg->path = options_.dir + "/" + name;
    seg->fd = ::open(seg->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (seg->fd < 0) return std::unexpected(io_error("cannot open log segment", seg->path, errno));
    struct stat st {};
    if (::fstat(seg->fd, &st) != 0) return std::unexpected(io_error("cannot stat log segment", seg->path, errno));
    const auto size = static_cast<uint64_t>(st.st_size);
    seg->capacity_bytes = size;
    segments_[seq] = seg;
    if (size < kSegmentHeaderBytes) continue;  // a crash while it was created: holds nothing
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, seg->fd, 0);
    if (map == MAP_FAILED) return std::unexpected(io_error("cannot map log segment", seg->path, errno));
    SegmentBytes bytes;
    bytes.data = static_cast<const uint8_t*>(map);
    bytes.size = size;
    const auto known = known_end.find(seq);
    bytes.is_end_known = known != known_end.end();
    bytes.end = bytes.is_end_known ? std::min(known->second, size) : size;
    Status status;
    if (bytes.is_end_known && known->second > size) {
      status = std::unexpected(damage(seg->path, size, "is missing: the file is shorter than its records",
                                      base_index_ + slots_.size(), known->second));
    } else {
      status = replay_segment(*seg, bytes, rp);
    }
    ::munmap(map, size);
    if (!status) return status;
  }
  const bool is_base_disputed = rp.term_at_base != 0 && rp.term_at_base != base_term_;
  if (is_base_disputed) truncate_after(base_index_);
  if (has_hard_state_ && hard_state_.commit() > base_index_ + slots_.size()) {
    // Commit is not required to be durable; never claim more than the log holds.
    hard_state_.set_commit(base_index_ + slots_.size());
  }
  const Index base = base_index_;
  const Term base_term = base_term_;
  uint64_t prev_seq = 0;
  uint64_t prev_end = 0;
  if (!segments_.empty() && segments_.rbegin()->second->records_end >= kSegmentHeaderBytes) {
    prev_seq = segments_.rbegin()->first;
    prev_end = segments_.rbegin()->second->records_end;
    // The new checkpoint will vouch for these records as synced; the last batches before a
    // crash of the process (not the machine) may still sit only in the page cache.
    if (::fdatasync(segments_.rbegin()->second->fd) != 0) {
      return std::unexpected(io_error("cannot sync log segment", segments_.rbegin()->second->path, errno));
    }
  }
  lock.unlock();
  if (auto s = start_segment(0, prev_seq, prev_end); !s) return s;
  if (is_base_disputed) {
    // Make the replay's decision durable, so a later replay does not revive the old entries.
    std::string rec(kBatchMarkerBytes, '\0');
    std::string payload;
    put_u64_be(payload, base);
    put_u64_be(payload, base_term);
    encode_record(rec, kReset, payload);
    if (auto s = write_batch(rec, true, nullptr); !s) return s;
    active_->max_index = std::max(active_->max_index, base);
  }
  return {};
}

Status Wal::replay_segment(Segment& seg, const SegmentBytes& bytes, Replay& rp) {
  uint64_t header_seq = 0;
  for (size_t k = 8; k < 16; ++k) header_seq = (header_seq << 8) | bytes.data[k];
  const bool is_v1 = std::memcmp(bytes.data, kSegmentMagicV1, 8) == 0;
  const bool is_v2 = std::memcmp(bytes.data, kSegmentMagicV2, 8) == 0;
  if ((!is_v1 && !is_v2) || header_seq != seg.seq) {
    // A segment is created and its header synced before any record goes into it: a bad
    // header with records after it is damage, not a crash during creation.
    const uint64_t first_record_end = std::min<uint64_t>(bytes.size, kSegmentHeaderBytes + kRecordHeaderBytes);
    const bool has_records = std::any_of(bytes.data + kSegmentHeaderBytes, bytes.data + first_record_end, [](uint8_t b) { return b != 0; });
    if (has_records) return make_error(ErrorCode::kCorruption, fmt::format("log segment {} has a damaged header", seg.path));
    return {};
  }
  return is_v2 ? replay_batches(seg, bytes, rp) : replay_records_v1(seg, bytes, rp);
}

// Format 1: records one after another; in the last segment the first bad record ends the log.
Status Wal::replay_records_v1(Segment& seg, const SegmentBytes& bytes, Replay& rp) {
  uint64_t off = kSegmentHeaderBytes;
  Status status;
  while (status && off < bytes.end) {
    const RecordAt r = record_at(bytes.data, off, bytes.end);
    if (r.state != RecordState::kOk) {
      // Past the last synced write this is the torn tail of a crash; before it, damage.
      if (bytes.is_end_known) status = std::unexpected(damage(seg.path, off, describe(r.state), base_index_ + slots_.size(), bytes.end));
      break;
    }
    if (r.type == kBatch) {
      status = make_error(ErrorCode::kCorruption, fmt::format("log segment {} holds a record of unknown type {} at offset {}", seg.path, r.type, off));
      break;
    }
    status = replay_record(seg, r.type, r.payload, off, rp);
    off += r.size_bytes;
  }
  seg.records_end = off;
  return status;
}

// Format 2: a checkpoint, then batches. In the last segment, a batch that fails ends the log
// only if no intact batch after it was written once it had been synced.
Status Wal::replay_batches(Segment& seg, const SegmentBytes& bytes, Replay& rp) {
  uint64_t off = kSegmentHeaderBytes;
  if (const RecordAt r = record_at(bytes.data, off, bytes.end); r.state == RecordState::kOk && r.type == kCheckpoint) {
    off += r.size_bytes;
  }
  while (off < bytes.end) {
    const auto batch = batch_at(bytes.data, off, bytes.end);
    if (!batch) {
      const Index last = base_index_ + slots_.size();
      const RecordAt r = record_at(bytes.data, off, bytes.end);
      if (bytes.is_end_known) {
        return std::unexpected(damage(seg.path, off, r.state == RecordState::kOk ? "is a batch that fails its checksum" : describe(r.state),
                                      last, bytes.end));
      }
      // A zero record is where the writes ended, as is a torn write, unless a batch after it
      // was written once this offset had been synced: then these bytes were damaged later.
      if (const auto later = find_later_synced_batch(bytes.data, off + 1, bytes.end, off)) {
        return make_error(ErrorCode::kCorruption,
                          fmt::format("log segment {}: the batch at offset {} {} and holds {}; the intact batch at offset {} "
                                      "was written after it had been synced, so this is damage, not a torn write",
                                      seg.path, off, r.state == RecordState::kZero ? "is zeroed" : "fails its checksum",
                                      damaged_entry(bytes.data, off, bytes.end, last), *later));
      }
      break;  // the end of the log: nothing or a torn write after it
    }
    for (uint64_t p = batch->body_begin; p < batch->body_end;) {
      const RecordAt r = record_at(bytes.data, p, batch->body_end);
      if (r.state != RecordState::kOk || r.type == kBatch || r.type == kCheckpoint) {
        return make_error(ErrorCode::kCorruption, fmt::format("log segment {}: the batch at offset {} holds a malformed record at offset {}",
                                                              seg.path, off, p));
      }
      if (auto s = replay_record(seg, r.type, r.payload, p, rp); !s) return s;
      p += r.size_bytes;
    }
    off = batch->body_end;
  }
  seg.records_end = off;
  return {};
}

Status Wal::replay_record(Segment& seg, uint8_t type, std::string_view payload, uint64_t offset, Replay& rp) {
  const auto record_size = static_cast<uint32_t>(kRecordHeaderBytes + payload.size());
  switch (type) {
    case kEntry: {
      pb::Entry e;
      if (!e.ParseFromArray(payload.data(), static_cast<int>(payload.size())) || e.index() == 0) {
        return make_error(ErrorCode::kCorruption,
                          fmt::format("log segment {} holds an entry that does not parse at offset {}", seg.path, offset));
      }
      const Index i = e.index();
      seg.max_index = std::max(seg.max_index, i);
      if (i <= base_index_) {
        // Rewrites the log at or below the base: everything after it goes.
        truncate_after(base_index_);
        rp.term_at_base = i == base_index_ ? e.term() : 0;
        return {};
      }
      const Index last = base_index_ + slots_.size();
      if (i > last + 1) {
        return make_error(ErrorCode::kCorruption,
                          fmt::format("log entry {} follows entry {} in {} at offset {}: entries are missing", i, last, seg.path, offset));
      }
      truncate_after(i - 1);
      slots_.push_back(Slot{e.term(), seg.seq, offset, record_size});
      size_bytes_ += record_size;
      return {};
    }
    case kHardState:
      if (!hard_state_.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        return make_error(ErrorCode::kCorruption,
                          fmt::format("log segment {} holds a hard state that does not parse at offset {}", seg.path, offset));
      }
      has_hard_state_ = true;
      return {};
    case kReset: {
      Decoder d(payload);
      auto index = d.get_u64_be();
      auto term = index ? d.get_u64_be() : index;
      if (!term) {
        return make_error(ErrorCode::kCorruption, fmt::format("log segment {} holds a malformed reset at offset {}", seg.path, offset));
      }
      seg.max_index = std::max(seg.max_index, *index);
      truncate_after(base_index_);
      if (*index >= base_index_) {
        base_index_ = *index;
        base_term_ = *term;
        rp.term_at_base = *term;
      } else {
        rp.term_at_base = 0;
      }
      return {};
    }
    case kCheckpoint:
      return {};
    default:
      return make_error(ErrorCode::kCorruption,
                        fmt::format("log segment {} holds a record of unknown type {} at offset {}", seg.path, type, offset));
  }
}

Status Wal::start_segment(uint64_t min_size_bytes, uint64_t prev_seq, uint64_t prev_end) {
  uint64_t seq = 1;
  {
    std::lock_guard lock(mu_);
    if (!segments_.empty()) seq = segments_.rbegin()->first + 1;
  }
  auto seg = std::make_shared<Segment>();
  seg->seq = seq;
  seg->path = options_.dir + "/" + segment_name(seq);
  seg->fd = ::open(seg->path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (seg->fd < 0) return std::unexpected(io_error("cannot create log segment", seg->path, errno));
  seg->capacity_bytes = std::max(options_.segment_size_bytes, min_size_bytes + kSegmentHeaderBytes);
  // Allocated blocks read as zeros, which end the records; appends then change no file
  // size, so fdatasync flushes data only. Filesystems without fallocate grow the file.
  if (::fallocate(seg->fd, 0, 0, static_cast<off_t>(seg->capacity_bytes)) != 0) {
    if (errno == ENOSPC || errno == EDQUOT) {
      Error e = io_error("cannot preallocate log segment", seg->path, errno);
      ::unlink(seg->path.c_str());
      return std::unexpected(e);
    }
    if (::ftruncate(seg->fd, static_cast<off_t>(seg->capacity_bytes)) != 0) {
      return std::unexpected(io_error("cannot size log segment", seg->path, errno));
    }
  }
  std::string header(kSegmentMagicV2, 8);
  put_u64_be(header, seq);
  if (prev_seq != 0) {
    std::string payload;
    put_u64_be(payload, prev_seq);
    put_u64_be(payload, prev_end);
    encode_record(header, kCheckpoint, payload);
  }
  if (auto s = write_all(seg->fd, header.data(), header.size(), 0, seg->path); !s) return s;
  if (::fdatasync(seg->fd) != 0) return std::unexpected(io_error("cannot sync log segment", seg->path, errno));
  if (::fsync(dir_fd_) != 0) return std::unexpected(io_error("cannot sync log directory", options_.dir, errno));
  {
    std::lock_guard lock(mu_);
    segments_[seq] = seg;
  }
  active_ = std::move(seg);
  write_offset_ = header.size();
  synced_offset_ = header.size();
  return {};
}

Status Wal::write_batch(std::string& batch, bool is_sync, uint64_t* offset_out) {
  ASPEN_ASSERT(batch.size() >= kBatchMarkerBytes);
  const uint64_t body_bytes = batch.size() - kBatchMarkerBytes;
  if (body_bytes > UINT32_MAX) return make_error(ErrorCode::kInvalidArgument, "a log write larger than 4 GiB");
  const uint64_t checkpoint_bytes = kRecordHeaderBytes + 16;
  if (active_ == nullptr) {
    if (auto s = start_segment(batch.size() + checkpoint_bytes, 0, 0); !s) return s;
  } else if (is_active_failed_ || (write_offset_ + batch.size() > active_->capacity_bytes &&
                                   write_offset_ > kSegmentHeaderBytes + checkpoint_bytes)) {
    // The checkpoint ends the old segment's records at its last synced byte: after a failed
    // write what lies past it is unknown, and a batch never synced held only a commit index,
    // which need not survive. Replay then never reads those bytes.
    if (auto s = start_segment(batch.size() + checkpoint_bytes, active_->seq, synced_offset_); !s) return s;
    is_active_failed_ = false;
  }
  const uint64_t offset = write_offset_;
  // The marker: where the batch is, what was durable before it, the body's length and CRC.
  std::string payload;
  put_u64_be(payload, offset);
  put_u64_be(payload, synced_offset_);
  put_u32_be(payload, static_cast<uint32_t>(body_bytes));
  put_u32_be(payload, crc_of(std::string_view(batch).substr(kBatchMarkerBytes)));
  std::string marker;
  encode_record(marker, kBatch, payload);
  ASPEN_ASSERT(marker.size() == kBatchMarkerBytes);
  std::memcpy(batch.data(), marker.data(), kBatchMarkerBytes);
  auto written = write_all(active_->fd, batch.data(), batch.size(), offset, active_->path);
  if (written && is_sync && ::fdatasync(active_->fd) != 0) {
    const int err = errno;
    written = std::unexpected(io_error("cannot sync log segment", active_->path, err));
  }
  if (!written) {
    // What reached the file is unknown (and after a failed fdatasync, so is what the page
    // cache still holds): never write into this segment again; the retry goes to a new one.
    is_active_failed_ = true;
    return written;
  }
  write_offset_ += batch.size();
  if (is_sync) synced_offset_ = write_offset_;
  if (offset_out != nullptr) *offset_out = offset;
  return {};
}

Status Wal::write(const WalWrite& w) {
  const bool has_entries = w.entries != nullptr && !w.entries->empty();
  if (!has_entries && w.hard_state == nullptr && !w.reset) return {};
  if (has_entries) {
    std::lock_guard lock(mu_);
    const Index base = w.reset ? w.reset->index : base_index_;
    const Index last = w.reset ? base : base_index_ + slots_.size();
    const Index first = w.entries->front().index();
    if (first <= base || first > last + 1) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("appending entry {} to a log holding ({}, {}] would leave a gap", first, base, last));
    }
  }
  // The order inside the one write matters for a torn tail: a reset, then the hard state
  // (its term and vote), then entries. A crash keeps a prefix, and any prefix is a state
  // Raft could have persisted: a new term without its entries, or fewer entries.
  std::string records(kBatchMarkerBytes, '\0');  // the batch's marker goes here
  if (w.reset) {
    std::string payload;
    put_u64_be(payload, w.reset->index);
    put_u64_be(payload, w.reset->term);
    encode_record(records, kReset, payload);
  }
  if (w.hard_state != nullptr) encode_record(records, kHardState, w.hard_state->SerializeAsString());
  std::vector<std::pair<uint64_t, uint32_t>> placed;  // offset within `records`, size
  if (has_entries) {
    placed.reserve(w.entries->size());
    std::string payload;
    for (size_t k = 0; k < w.entries->size(); ++k) {
      const pb::Entry& e = (*w.entries)[k];
      ASPEN_ASSERT_MSG(k == 0 || e.index() == (*w.entries)[k - 1].index() + 1, "appended entries are consecutive");
      payload.clear();
      e.AppendToString(&payload);
      if (payload.size() > kMaxRecordBytes) {
        return make_error(ErrorCode::kInvalidArgument, fmt::format("log entry {} is larger than a log record may be", e.index()));
      }
      placed.emplace_back(records.size(), static_cast<uint32_t>(kRecordHeaderBytes + payload.size()));
      encode_record(records, kEntry, payload);
    }
  }
  uint64_t offset = 0;
  if (auto s = write_batch(records, w.is_sync || w.reset || has_entries, &offset); !s) return s;
  std::lock_guard lock(mu_);
  if (w.reset) {
    truncate_after(base_index_);
    base_index_ = w.reset->index;
    base_term_ = w.reset->term;
    active_->max_index = std::max(active_->max_index, w.reset->index);
  }
  if (w.hard_state != nullptr) {
    hard_state_ = *w.hard_state;
    has_hard_state_ = true;
  }
  if (has_entries) {
    truncate_after(w.entries->front().index() - 1);
    for (size_t k = 0; k < w.entries->size(); ++k) {
      slots_.push_back(Slot{(*w.entries)[k].term(), active_->seq, offset + placed[k].first, placed[k].second});
      size_bytes_ += placed[k].second;
    }
    active_->max_index = std::max(active_->max_index, w.entries->back().index());
  }
  return {};
}

Status Wal::compact(Index index) {
  bool has_hs = false;
  pb::HardState hs;
  {
    std::lock_guard lock(mu_);
    if (index <= base_index_) return make_error(ErrorCode::kCompacted, "already compacted");
    if (index > base_index_ + slots_.size()) return make_error(ErrorCode::kInvalidArgument, "cannot compact past the last entry");
    has_hs = has_hard_state_;
    hs = hard_state_;
  }
  // The segments about to go may hold the latest hard state (the vote): write it again first.
  if (has_hs) {
    std::string rec(kBatchMarkerBytes, '\0');
    encode_record(rec, kHardState, hs.SerializeAsString());
    if (auto s = write_batch(rec, true, nullptr); !s) return s;
  }
  std::vector<std::shared_ptr<Segment>> doomed;
  {
    std::lock_guard lock(mu_);
    const size_t dropped = static_cast<size_t>(index - base_index_);
    base_term_ = slots_[dropped - 1].term;
    for (size_t k = 0; k < dropped; ++k) size_bytes_ -= slots_[k].size_bytes;
    slots_.erase(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(dropped));
    base_index_ = index;
    // Only a prefix of segments goes: a later segment's reset or truncation must never be
    // replayed without the records before it.
    for (auto it = segments_.begin(); it != segments_.end();) {
      if (it->second == active_ || it->second->max_index > index) break;
      doomed.push_back(it->second);
      it = segments_.erase(it);
    }
  }
  for (const auto& seg : doomed) {
    if (::unlink(seg->path.c_str()) != 0 && errno != ENOENT) {
      return std::unexpected(io_error("cannot delete log segment", seg->path, errno));
    }
  }
  return {};
}

void Wal::truncate_after(Index index) {
  if (index < base_index_) index = base_index_;
  const auto keep = static_cast<size_t>(index - base_index_);
  while (slots_.size() > keep) {
    size_bytes_ -= slots_.back().size_bytes;
    slots_.pop_back();
  }
}

Result<pb::Entry> Wal::read_entry(Index i) const {
  Slot slot;
  std::shared_ptr<Segment> seg;
  {
    std::lock_guard lock(mu_);
    if (i <= base_index_) return make_error(ErrorCode::kCompacted, "requested entries are compacted");
    ASPEN_ASSERT_MSG(i <= base_index_ + slots_.size(), "read of an entry beyond the log");
    slot = slots_[static_cast<size_t>(i - base_index_ - 1)];
    auto it = segments_.find(slot.segment_seq);
    ASPEN_ASSERT_MSG(it != segments_.end(), "an entry's segment is held while the entry is");
    seg = it->second;
  }
  // Outside the lock: appends go on; the segment stays open while `seg` holds it.
  std::string buf(slot.size_bytes, '\0');
  uint64_t done = 0;
  while (done < slot.size_bytes) {
    ssize_t n = ::pread(seg->fd, buf.data() + done, slot.size_bytes - done, static_cast<off_t>(slot.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::unexpected(io_error("cannot read log segment", seg->path, n < 0 ? errno : EIO));
    done += static_cast<uint64_t>(n);
  }
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
  const uint32_t len = read_u32_be(p);
  std::string_view payload(buf.data() + kRecordHeaderBytes, slot.size_bytes - kRecordHeaderBytes);
  pb::Entry e;
  if (len != payload.size() || p[8] != kEntry || record_crc(p[8], payload) != read_u32_be(p + 4) ||
      !e.ParseFromArray(payload.data(), static_cast<int>(payload.size())) || e.index() != i) {
    return make_error(ErrorCode::kCorruption, fmt::format("log entry {} in {} fails its checksum", i, seg->path));
  }
  return e;
}

Result<std::vector<pb::Entry>> Wal::entries(Index lo, Index hi, uint64_t max_size_bytes) const {
  std::vector<pb::Entry> out;
  uint64_t size = 0;
  for (Index i = lo; i < hi; ++i) {
    auto e = read_entry(i);
    if (!e) return std::unexpected(e.error());
    size += raft::entry_size_bytes(*e);
    if (!out.empty() && size > max_size_bytes) break;
    out.push_back(std::move(*e));
  }
  return out;
}

Result<Term> Wal::term(Index i) const {
  std::lock_guard lock(mu_);
  if (i == base_index_) return base_term_;
  if (i < base_index_) return make_error(ErrorCode::kCompacted, "term of a compacted entry");
  if (i > base_index_ + slots_.size()) return make_error(ErrorCode::kUnavailable, "term of an entry beyond the log");
  return slots_[static_cast<size_t>(i - base_index_ - 1)].term;
}

Index Wal::base_index() const {
  std::lock_guard lock(mu_);
  return base_index_;
}

Index Wal::last_index() const {
  std::lock_guard lock(mu_);
  return base_index_ + slots_.size();
}

pb::HardState Wal::hard_state() const {
  std::lock_guard lock(mu_);
  return hard_state_;
}

bool Wal::has_hard_state() const {
  std::lock_guard lock(mu_);
  return has_hard_state_;
}

uint64_t Wal::size_bytes() const {
  std::lock_guard lock(mu_);
  return size_bytes_;
}

uint64_t Wal::disk_size_bytes() const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  for (const auto& [seq, seg] : segments_) total += seg->capacity_bytes;
  return total;
}

size_t Wal::segment_count() const {
  std::lock_guard lock(mu_);
  return segments_.size();
}

}  // namespace aspen::storage
