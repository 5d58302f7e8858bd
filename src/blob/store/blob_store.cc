// BlobStore (blob_store.h): files, their meta records, and the order of writes that keeps a
// half-done import invisible.
#include "blob/store/blob_store.h"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "blob/outboard.h"
#include "blob/range_encoder.h"
#include "core/assert.h"
#include "core/encoding.h"
#include "core/log.h"

namespace aspen::blob {

namespace fs = std::filesystem;

namespace {

constexpr char kDataExt[] = ".data";
constexpr char kOutboardExt[] = ".obao";
constexpr size_t kMetaValueBytes = 16;  // size (u64 BE), added_ms (u64 BE)

Error io_error(std::string_view what, const std::string& path, int err) {
  // The path stays in the node's log; clients get the sanitized message from the service.
  return Error(err == ENOSPC ? ErrorCode::kStorageFull : ErrorCode::kInternal,
               fmt::format("blob store: {} {}: {}", what, path, std::strerror(err)));
}

Error lmdb_error(std::string_view what, int rc) {
  return Error(rc == MDB_MAP_FULL ? ErrorCode::kStorageFull : ErrorCode::kInternal,
               fmt::format("blob store metadata: {}: {}", what, mdb_strerror(rc)));
}

Status sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(io_error("open directory", dir, errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return std::unexpected(io_error("sync directory", dir, err));
  return {};
}

Status write_all(int fd, uint64_t offset_bytes, std::span<const uint8_t> bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset_bytes));
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(io_error("write", path, errno));
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
    offset_bytes += static_cast<uint64_t>(n);
  }
  return {};
}

std::string encode_meta(const BlobInfo& info) {
  std::string v;
  put_u64_be(v, info.size_bytes);
  put_u64_be(v, info.added_ms);
  return v;
}

std::optional<BlobInfo> decode_meta(const MDB_val& k, const MDB_val& v) {
  if (k.mv_size != crypto::kBlake3HashSizeBytes || v.mv_size != kMetaValueBytes) return std::nullopt;
  BlobInfo info;
  std::memcpy(info.hash.data(), k.mv_data, info.hash.size());
  Decoder d(std::string_view(static_cast<const char*>(v.mv_data), v.mv_size));
  info.size_bytes = *d.get_u64_be();
  info.added_ms = *d.get_u64_be();
  return info;
}

}  // namespace

// --- hex ---

std::string hash_to_hex(const Blake3Hash& hash) { return crypto::blake3_to_hex(hash); }

Result<Blake3Hash> hash_from_hex(std::string_view hex) {
  auto fail = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' is not a blob hash: a BLAKE3 hash is 64 hex digits, as b3sum prints it",
                                  hex.substr(0, 80)));
  };
  if (hex.size() != 2 * crypto::kBlake3HashSizeBytes) return fail();
  auto bytes = from_hex(hex);
  if (!bytes) return fail();
  Blake3Hash h{};
  std::memcpy(h.data(), bytes->data(), h.size());
  return h;
}

// --- LMDB ---

struct BlobStore::Lmdb {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  ~Lmdb() {
    if (env != nullptr) mdb_env_close(env);
  }
  // A read transaction, aborted on scope exit.
  struct Read {
    MDB_txn* txn = nullptr;
    ~Read() {
      if (txn != nullptr) mdb_txn_abort(txn);
    }
  };
};

Result<std::unique_ptr<BlobStore>> BlobStore::open(BlobStoreOptions options) {
  if (options.max_blob_size_bytes == 0 || options.max_blob_size_bytes > limits::kMaxBlobSizeBytes) {
    return make_error(ErrorCode::kConfigInvalid,
                      fmt::format("blob_max_size_bytes must be in [1, {}] (limits::kMaxBlobSizeBytes), not {}",
                                  limits::kMaxBlobSizeBytes, options.max_blob_size_bytes));
  }
  std::error_code ec;
  for (const char* sub : {"data", "tmp", "meta"}) {
    fs::create_directories(fs::path(options.dir) / sub, ec);
    if (ec) return make_error(ErrorCode::kConfigInvalid, fmt::format("blob store: cannot create {}/{}: {}", options.dir, sub, ec.message()));
  }
  auto lmdb = std::make_unique<Lmdb>();
  int rc = mdb_env_create(&lmdb->env);
  if (rc != 0) return std::unexpected(lmdb_error("create", rc));
  if ((rc = mdb_env_set_mapsize(lmdb->env, kBlobMetaMapSizeBytes)) != 0) return std::unexpected(lmdb_error("map size", rc));
  // MDB_NOTLS: read transactions are used from whichever thread serves a request.
  unsigned flags = MDB_NOTLS | (options.is_durable ? 0u : MDB_NOSYNC);
  const std::string meta_dir = options.dir + "/meta";
  if ((rc = mdb_env_open(lmdb->env, meta_dir.c_str(), flags, 0600)) != 0) {
    return std::unexpected(lmdb_error(fmt::format("open {}", meta_dir), rc));
  }
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(lmdb->env, nullptr, 0, &txn)) != 0) return std::unexpected(lmdb_error("begin", rc));
  if ((rc = mdb_dbi_open(txn, nullptr, 0, &lmdb->dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
    return std::unexpected(lmdb_error("open database", rc));
  }
  std::unique_ptr<BlobStore> store(new BlobStore(std::move(options), std::move(lmdb)));
  if (auto s = store->reconcile(); !s) return std::unexpected(s.error());
  return store;
}

BlobStore::BlobStore(BlobStoreOptions options, std::unique_ptr<Lmdb> lmdb)
    : options_(std::move(options)), lmdb_(std::move(lmdb)) {}

BlobStore::~BlobStore() = default;

std::string BlobStore::data_path(const Blake3Hash& hash) const {
  return fmt::format("{}/data/{}{}", options_.dir, hash_to_hex(hash), kDataExt);
}
std::string BlobStore::outboard_path(const Blake3Hash& hash) const {
  return fmt::format("{}/data/{}{}", options_.dir, hash_to_hex(hash), kOutboardExt);
}

Status BlobStore::reconcile() {
  std::error_code ec;
  // Imports a crash interrupted: never published, never visible.
  size_t temps = 0;
  for (const auto& f : fs::directory_iterator(options_.dir + "/tmp", ec)) {
    fs::remove(f.path(), ec);
    ++temps;
  }
  // Records whose files are gone (someone deleted them) are dropped; files without a record
  // (a crash between rename and commit) are removed.
  std::map<std::string, bool> recorded;  // hex -> seen on disk
  for (const auto& info : list(std::nullopt, SIZE_MAX)) recorded.emplace(hash_to_hex(info.hash), false);
  size_t orphans = 0;
  for (const auto& f : fs::directory_iterator(options_.dir + "/data", ec)) {
    const std::string stem = f.path().stem().string();
    auto it = recorded.find(stem);
    if (it == recorded.end()) {
      fs::remove(f.path(), ec);
      ++orphans;
      continue;
    }
    if (f.path().extension() == kDataExt) it->second = true;
  }
  size_t lost = 0;
  for (const auto& [hex, is_on_disk] : recorded) {
    if (is_on_disk) continue;
    auto h = hash_from_hex(hex);
    ASPEN_ASSERT(h.has_value());
    if (auto s = delete_meta(*h); !s) return s;
    fs::remove(outboard_path(*h), ec);
    ++lost;
  }
  if (temps + orphans + lost > 0) {
    ASPEN_LOG_WARN("blob store {}: removed {} unfinished imports, {} unrecorded files, {} records of missing blobs",
                   options_.dir, temps, orphans, lost);
  }
  return {};
}

Status BlobStore::put_meta(const BlobInfo& info) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(lmdb_->env, nullptr, 0, &txn);
  if (rc != 0) return std::unexpected(lmdb_error("begin", rc));
  MDB_val k{info.hash.size(), const_cast<uint8_t*>(info.hash.data())};
  std::string v = encode_meta(info);
  MDB_val val{v.size(), v.data()};
  if ((rc = mdb_put(txn, lmdb_->dbi, &k, &val, 0)) != 0) {
    mdb_txn_abort(txn);
    return std::unexpected(lmdb_error("put", rc));
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return std::unexpected(lmdb_error("commit", rc));
  return {};
}

Status BlobStore::delete_meta(const Blake3Hash& hash) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(lmdb_->env, nullptr, 0, &txn);
  if (rc != 0) return std::unexpected(lmdb_error("begin", rc));
  MDB_val k{hash.size(), const_cast<uint8_t*>(hash.data())};
  rc = mdb_del(txn, lmdb_->dbi, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return std::unexpected(lmdb_error("delete", rc));
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return std::unexpected(lmdb_error("commit", rc));
  return {};
}

std::optional<BlobInfo> BlobStore::stat(const Blake3Hash& hash) const {
  Lmdb::Read r;
  if (mdb_txn_begin(lmdb_->env, nullptr, MDB_RDONLY, &r.txn) != 0) return std::nullopt;
  MDB_val k{hash.size(), const_cast<uint8_t*>(hash.data())};
  MDB_val v;
  if (mdb_get(r.txn, lmdb_->dbi, &k, &v) != 0) return std::nullopt;
  return decode_meta(k, v);
}

std::vector<BlobInfo> BlobStore::list(const std::optional<Blake3Hash>& after, size_t limit) const {
  std::vector<BlobInfo> out;
  Lmdb::Read r;
  if (mdb_txn_begin(lmdb_->env, nullptr, MDB_RDONLY, &r.txn) != 0) return out;
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(r.txn, lmdb_->dbi, &cur) != 0) return out;
  MDB_val k{}, v{};
  int rc;
  if (after) {
    k = MDB_val{after->size(), const_cast<uint8_t*>(after->data())};
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == after->size() && std::memcmp(k.mv_data, after->data(), after->size()) == 0) {
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
  } else {
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  }
  for (; rc == 0 && out.size() < limit; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (auto info = decode_meta(k, v)) out.push_back(*info);
  }
  mdb_cursor_close(cur);
  return out;
}

uint64_t BlobStore::blob_count() const {
  Lmdb::Read r;
  if (mdb_txn_begin(lmdb_->env, nullptr, MDB_RDONLY, &r.txn) != 0) return 0;
  MDB_stat st{};
  if (mdb_stat(r.txn, lmdb_->dbi, &st) != 0) return 0;
  return st.ms_entries;
}

// --- imports ---

Result<std::unique_ptr<BlobImport>> BlobStore::begin_import(std::optional<uint64_t> fixed_size_bytes) {
  if (fixed_size_bytes && *fixed_size_bytes > options_.max_blob_size_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a blob of {} bytes is larger than this node's blob size limit of {} bytes "
                                  "(knob blob_max_size_bytes)",
                                  *fixed_size_bytes, options_.max_blob_size_bytes));
  }
  std::string path = fmt::format("{}/tmp/import-{}-{}", options_.dir, ::getpid(), next_temp_id_.fetch_add(1));
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(io_error("create", path, errno));
  stats_.imports_in_progress.fetch_add(1);
  return std::unique_ptr<BlobImport>(new BlobImport(*this, fd, std::move(path), fixed_size_bytes.value_or(UINT64_MAX)));
}

BlobImport::BlobImport(BlobStore& store, int fd, std::string path, uint64_t fixed_size_bytes)
    : store_(store), fd_(fd), path_(std::move(path)), fixed_size_bytes_(fixed_size_bytes) {
  if (fixed_size_bytes_ != UINT64_MAX) size_bytes_ = fixed_size_bytes_;
}

BlobImport::~BlobImport() { abandon(); }

void BlobImport::abandon() {
  if (is_done_) return;
  is_done_ = true;
  ::close(fd_);
  ::unlink(path_.c_str());
  store_.stats_.imports_in_progress.fetch_sub(1);
}

Status BlobImport::append(std::span<const uint8_t> bytes) {
  ASPEN_ASSERT(fixed_size_bytes_ == UINT64_MAX);
  if (is_done_) return make_error(ErrorCode::kInvalidArgument, "the import has ended");
  if (bytes.size() > store_.options_.max_blob_size_bytes - size_bytes_) {
    store_.stats_.imports_failed.fetch_add(1);
    abandon();
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the blob is larger than this node's blob size limit of {} bytes (knob "
                                  "blob_max_size_bytes); nothing was stored",
                                  store_.options_.max_blob_size_bytes));
  }
  if (auto s = write_all(fd_, size_bytes_, bytes, path_); !s) {
    store_.stats_.imports_failed.fetch_add(1);
    abandon();
    return s;
  }
  size_bytes_ += bytes.size();
  return {};
}

Status BlobImport::write_at(uint64_t offset_bytes, std::span<const uint8_t> bytes) {
  ASPEN_ASSERT(fixed_size_bytes_ != UINT64_MAX);
  if (is_done_) return make_error(ErrorCode::kInvalidArgument, "the import has ended");
  if (offset_bytes > fixed_size_bytes_ || bytes.size() > fixed_size_bytes_ - offset_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("bytes at {} (+{}) lie past the blob's size {}", offset_bytes, bytes.size(), fixed_size_bytes_));
  }
  return write_all(fd_, offset_bytes, bytes, path_);
}

Result<BlobInfo> BlobImport::finish(const std::optional<Blake3Hash>& expected, uint64_t now_ms, BlobPin* pin) {
  if (is_done_) return make_error(ErrorCode::kInvalidArgument, "the import has ended");
  auto fail = [&](Error e) -> Result<BlobInfo> {
    store_.stats_.imports_failed.fetch_add(1);
    abandon();
    return std::unexpected(std::move(e));
  };
  if (fixed_size_bytes_ != UINT64_MAX && ::ftruncate(fd_, static_cast<off_t>(fixed_size_bytes_)) != 0) {
    return fail(io_error("truncate", path_, errno));
  }
  if (store_.options_.is_durable && ::fsync(fd_) != 0) return fail(io_error("sync", path_, errno));
  // Hashed from the file as written (through the page cache), so what is published is what
  // the disk holds, not what we meant to write.
  Result<Outboard> ob;
  if (size_bytes_ == 0) {
    ob = compute_outboard(std::span<const uint8_t>());
  } else {
    void* map = ::mmap(nullptr, size_bytes_, PROT_READ, MAP_SHARED, fd_, 0);
    if (map == MAP_FAILED) return fail(io_error("map", path_, errno));
    ::madvise(map, size_bytes_, MADV_SEQUENTIAL);
    ob = compute_outboard(std::span<const uint8_t>(static_cast<const uint8_t*>(map), size_bytes_));
    ::munmap(map, size_bytes_);
  }
  if (!ob) return fail(ob.error());
  if (expected && *expected != ob->root) {
    return fail(Error(ErrorCode::kCorruption, fmt::format("the blob's bytes hash to {}, not the expected {}",
                                                          hash_to_hex(ob->root), hash_to_hex(*expected))));
  }
  auto info = store_.publish(path_, ob->root, size_bytes_, ob->parents, now_ms, pin);
  if (!info) return fail(info.error());
  // publish() took the temp file (renamed or removed it).
  is_done_ = true;
  ::close(fd_);
  store_.stats_.imports_in_progress.fetch_sub(1);
  return info;
}

Result<BlobInfo> BlobStore::publish(const std::string& temp_path, const Blake3Hash& hash, uint64_t size_bytes,
                                    std::span<const uint8_t> outboard, uint64_t now_ms, BlobPin* pin) {
  BlobInfo info{hash, size_bytes, now_ms};
  // The outboard first, to its own temp file, outside the lock.
  const std::string temp_outboard = temp_path + kOutboardExt;
  int fd = ::open(temp_outboard.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(io_error("create", temp_outboard, errno));
  Status w = write_all(fd, 0, outboard, temp_outboard);
  if (w && options_.is_durable && ::fsync(fd) != 0) w = std::unexpected(io_error("sync", temp_outboard, errno));
  ::close(fd);
  if (!w) {
    ::unlink(temp_outboard.c_str());
    return std::unexpected(w.error());
  }
  std::lock_guard lock(mu_);
  if (stat(hash)) {
    // Already here: the new copy goes, the old one gets a new grace period.
    ::unlink(temp_outboard.c_str());
    ::unlink(temp_path.c_str());
    stats_.imports_deduplicated.fetch_add(1);
    if (auto s = put_meta(info); !s) return std::unexpected(s.error());
    info.was_present = true;
    pin_locked(hash, pin);
    return info;
  }
  // Outboard, then data, then the record: a blob is visible only with both files in place.
  const std::string ob_path = outboard_path(hash);
  const std::string data = data_path(hash);
  if (::rename(temp_outboard.c_str(), ob_path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp_outboard.c_str());
    ::unlink(temp_path.c_str());
    return std::unexpected(io_error("rename", ob_path, err));
  }
  if (::rename(temp_path.c_str(), data.c_str()) != 0) {
    int err = errno;
    ::unlink(ob_path.c_str());
    ::unlink(temp_path.c_str());
    return std::unexpected(io_error("rename", data, err));
  }
  if (options_.is_durable) {
    if (auto s = sync_dir(options_.dir + "/data"); !s) return std::unexpected(s.error());
  }
  if (auto s = put_meta(info); !s) {
    ::unlink(data.c_str());
    ::unlink(ob_path.c_str());
    return std::unexpected(s.error());
  }
  stats_.imports.fetch_add(1);
  stats_.bytes_imported.fetch_add(size_bytes);
  pin_locked(hash, pin);
  return info;
}

// --- reads ---

Result<std::unique_ptr<BlobReadHandle>> BlobStore::open_read(const Blake3Hash& hash) {
  std::lock_guard lock(mu_);
  auto info = stat(hash);
  if (!info) return make_error(ErrorCode::kNotFound, fmt::format("blob {} is not stored on this node", hash_to_hex(hash)));
  const std::string data = data_path(hash);
  int fd = ::open(data.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(io_error("open", data, errno));
  const uint64_t ob_bytes = outboard_size_bytes(info->size_bytes);
  const uint8_t* ob = nullptr;
  if (ob_bytes > 0) {
    const std::string ob_path = outboard_path(hash);
    int ofd = ::open(ob_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ofd < 0) {
      int err = errno;
      ::close(fd);
      return std::unexpected(io_error("open", ob_path, err));
    }
    struct stat st {};
    // A truncated outboard would fault when read through the map: it is damage, said so here.
    if (::fstat(ofd, &st) != 0 || static_cast<uint64_t>(st.st_size) != ob_bytes) {
      ::close(ofd);
      ::close(fd);
      stats_.corruptions_detected.fetch_add(1);
      return make_error(ErrorCode::kCorruption, fmt::format("blob {}: its outboard has the wrong size", hash_to_hex(hash)));
    }
    void* map = ::mmap(nullptr, ob_bytes, PROT_READ, MAP_SHARED, ofd, 0);
    ::close(ofd);
    if (map == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return std::unexpected(io_error("map", ob_path, err));
    }
    ob = static_cast<const uint8_t*>(map);
  }
  ++pins_[hash];
  stats_.reads_in_progress.fetch_add(1);
  return std::unique_ptr<BlobReadHandle>(new BlobReadHandle(*this, *info, fd, ob, ob_bytes));
}

void BlobStore::unpin(const Blake3Hash& hash) {
  std::lock_guard lock(mu_);
  auto it = pins_.find(hash);
  ASPEN_ASSERT(it != pins_.end() && it->second > 0);
  if (--it->second == 0) pins_.erase(it);
}

void BlobStore::pin_locked(const Blake3Hash& hash, BlobPin* pin) {
  if (pin == nullptr) return;
  pin->release();
  ++pins_[hash];
  pin->store_ = this;
  pin->hash_ = hash;
}

void BlobPin::release() {
  if (store_ != nullptr) store_->unpin(hash_);
  store_ = nullptr;
}

BlobPin& BlobPin::operator=(BlobPin&& other) noexcept {
  if (this != &other) {
    release();
    store_ = other.store_;
    hash_ = other.hash_;
    other.store_ = nullptr;
  }
  return *this;
}

BlobReadHandle::BlobReadHandle(BlobStore& store, BlobInfo info, int fd, const uint8_t* outboard, size_t outboard_bytes)
    : store_(store), info_(info), fd_(fd), outboard_(outboard), outboard_bytes_(outboard_bytes) {}

BlobReadHandle::~BlobReadHandle() {
  if (outboard_ != nullptr) ::munmap(const_cast<uint8_t*>(outboard_), outboard_bytes_);
  ::close(fd_);
  store_.unpin(info_.hash);
  store_.stats_.reads_in_progress.fetch_sub(1);
}

Status BlobReadHandle::encode(ByteRange range, const BlobWriter& writer) {
  const int fd = fd_;
  BlobReader reader = [fd](uint64_t offset_bytes, std::span<uint8_t> out) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset_bytes));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return make_error(ErrorCode::kInternal, fmt::format("blob read failed: {}", std::strerror(errno)));
    }
  };
  Status s = encode_range(info_.hash, info_.size_bytes, std::span<const uint8_t>(outboard_, outboard_bytes_), reader,
                          range, writer);
  if (!s && s.error().code() == ErrorCode::kCorruption) {
    store_.stats_.corruptions_detected.fetch_add(1);
    return make_error(ErrorCode::kCorruption,
                      fmt::format("blob {} is damaged on this node ({}); nothing past the damage was sent",
                                  hash_to_hex(info_.hash), s.error().message()));
  }
  return s;
}

// --- removal and GC ---

Status BlobStore::remove_locked(const Blake3Hash& hash) {
  // The record first: once it is gone the blob is invisible, whatever happens to the files.
  if (auto s = delete_meta(hash); !s) return s;
  ::unlink(data_path(hash).c_str());
  ::unlink(outboard_path(hash).c_str());
  stats_.blobs_removed.fetch_add(1);
  return {};
}

Result<bool> BlobStore::remove(const Blake3Hash& hash) {
  std::lock_guard lock(mu_);
  if (!stat(hash)) return false;
  if (auto s = remove_locked(hash); !s) return std::unexpected(s.error());
  return true;
}

std::vector<BlobInfo> BlobStore::gc_candidates(std::optional<Blake3Hash>& cursor, bool& is_exhausted, size_t limit,
                                               uint64_t now_ms, uint64_t grace_ms, GcReport& report) const {
  std::vector<BlobInfo> out;
  is_exhausted = false;
  while (out.size() < limit) {
    // One blob at a time past `limit` is never looked at: the cursor stays on the last one seen.
    auto page = list(cursor, std::min(kMaxBlobListPage, limit - out.size()));
    if (page.empty()) {
      is_exhausted = true;
      break;
    }
    cursor = page.back().hash;
    std::lock_guard lock(mu_);
    for (const auto& info : page) {
      ++report.scanned;
      if (now_ms < info.added_ms || now_ms - info.added_ms < grace_ms) {
        ++report.kept_young;
      } else if (pins_.contains(info.hash)) {
        ++report.kept_in_use;
      } else {
        out.push_back(info);
      }
    }
  }
  return out;
}

Result<bool> BlobStore::remove_if_collectable(const Blake3Hash& hash, uint64_t now_ms, uint64_t grace_ms,
                                              GcReport& report) {
  std::lock_guard lock(mu_);
  // Re-read under the lock: an import may have refreshed it, or a reader opened it, since
  // it was chosen.
  auto info = stat(hash);
  if (!info) return false;
  if (now_ms < info->added_ms || now_ms - info->added_ms < grace_ms) {
    ++report.kept_young;
    return false;
  }
  if (pins_.contains(hash)) {
    ++report.kept_in_use;
    return false;
  }
  if (auto s = remove_locked(hash); !s) return std::unexpected(s.error());
  ++report.removed;
  report.removed_bytes += info->size_bytes;
  report.removed_hashes.push_back(hash);
  return true;
}

Result<GcReport> BlobStore::gc(uint64_t now_ms, uint64_t grace_ms,
                               const std::function<bool(const Blake3Hash&)>& is_protected) {
  GcReport report;
  std::optional<Blake3Hash> cursor;
  bool is_exhausted = false;
  while (!is_exhausted) {
    auto candidates = gc_candidates(cursor, is_exhausted, kMaxBlobListPage, now_ms, grace_ms, report);
    for (const auto& c : candidates) {
      if (is_protected(c.hash)) {
        ++report.kept_protected;
        continue;
      }
      if (auto r = remove_if_collectable(c.hash, now_ms, grace_ms, report); !r) return std::unexpected(r.error());
    }
  }
  return report;
}

}  // namespace aspen::blob
