// The filesystem aspen-fuse mounts, without FUSE: POSIX-shaped operations on paths over a
// KeyValueStore, answering 0 or -errno the way a FUSE callback does. tools/aspen-fuse wires
// them to libfuse; tests drive them directly over the deterministic store. docs/fuse.md.
//
// Paths and keys: fusefs/mapping.h. Directories are key prefixes; mkdir writes an empty
// marker key "<dir>/" so an empty directory stays; rmdir removes it (ENOTEMPTY while any
// other key lies below).
//
// Reads: getattr, readdir and open read through three caches, each with its TTL (0: off):
// data (values, 5 s), attributes (2 s), directory listings (1 s). A change made elsewhere is
// seen at most that long after it was made; this mount's own writes update them at once.
// An open file reads the value as it was at open.
//
// Writes: a file open for writing is a buffer; it becomes one put of the whole value at
// flush (close) or fsync, so readers elsewhere see the old or the new value, never a mix.
// Writing past kMaxValueSizeBytes fails with EFBIG, and so does the close: the key keeps
// its previous value (no cut-off file is stored). Two writers of one file: the last to
// close wins. A put whose outcome is unknown (Timeout) fails the close with EIO, never
// silently. rename of a file is one transaction (the source unchanged since it was read,
// put the target, delete the source); of a directory it fails with EXDEV (mv then copies).
// Modes are fixed (files 0644, directories 0755); chmod, chown and utimens are accepted and
// change nothing. mtime is the time of the key's last change (KeyValue.mod_time_ms, the
// leader's clock when it proposed it); for a key last written before the store kept that,
// when this mount first saw its current revision. With is_read_only every change fails with
// EROFS.
//
// Thread-safe: libfuse calls from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kv/key_value_store.h"

namespace aspen::fusefs {

inline constexpr size_t kMaxOpenFiles = 512;                    // each may buffer a whole value
inline constexpr size_t kMaxDirEntries = 100000;                // listed per directory
inline constexpr size_t kMaxCachedEntries = 100000;             // per cache; past it the cache starts over
inline constexpr size_t kMaxDataCacheBytes = size_t{64} << 20;  // values kept by the data cache

struct FsOptions {
  std::string prefix;  // normalized by the constructor
  bool is_read_only = false;
  uint64_t data_ttl_ms = 5000;
  uint64_t attr_ttl_ms = 2000;
  uint64_t dir_ttl_ms = 1000;
};

struct Attr {
  bool is_dir = false;
  uint64_t size = 0;
  uint64_t mtime_ms = 0;
  uint64_t revision = 0;  // mod revision of the key (0 for directories)
};

struct DirEntry {
  std::string name;
  Attr attr;
};

class KvFs {
 public:
  KvFs(kv::KeyValueStore& store, FsOptions options, std::function<uint64_t()> now_ms);

  int getattr(const std::string& path, Attr* out);
  int readdir(const std::string& path, std::vector<DirEntry>* out);
  // flags: O_RDONLY / O_WRONLY / O_RDWR, with O_TRUNC.
  int open(const std::string& path, int flags, uint64_t* handle);
  int create(const std::string& path, uint64_t* handle);
  // Bytes read or written, or -errno.
  int64_t read(uint64_t handle, char* buf, size_t size, uint64_t offset);
  int64_t write(uint64_t handle, const char* buf, size_t size, uint64_t offset);
  // handle 0: the file is not open here (truncate(2) of a path).
  int truncate(const std::string& path, uint64_t size, uint64_t handle);
  int flush(uint64_t handle);
  int release(uint64_t handle);
  int unlink(const std::string& path);
  int mkdir(const std::string& path);
  int rmdir(const std::string& path);
  // flags: 0, or RENAME_NOREPLACE (RENAME_EXCHANGE is EINVAL).
  int rename(const std::string& from, const std::string& to, unsigned flags);

  const FsOptions& options() const { return options_; }

 private:
  struct Handle {
    std::mutex mu;
    std::string path;
    std::string key;
    std::string data;       // [mu]
    bool is_dirty = false;  // [mu]
    bool is_too_large = false;  // [mu] a write went past the value limit: nothing is put
    bool is_writable = false;
  };
  struct CachedAttr {
    uint64_t expires_ms;
    Attr attr;
  };
  struct CachedValue {
    uint64_t expires_ms;
    uint64_t revision;
    std::string value;
  };
  struct CachedDir {
    uint64_t expires_ms;
    std::vector<DirEntry> entries;
  };

  Result<std::optional<kvpb::KeyValue>> read_key(const std::string& key);
  Result<bool> has_children(const std::string& dir_key, bool is_root);
  Attr file_attr(const kvpb::KeyValue& kv);
  uint64_t mtime_for(const std::string& key, uint64_t revision);
  // After a change made here: the key's caches are dropped, every listing too.
  void forget(const std::string& key);
  void remember_value(const std::string& key, uint64_t revision, const std::string& value);
  std::shared_ptr<Handle> handle_of(uint64_t handle);
  int open_handle(const std::string& path, const std::string& key, std::string data, bool is_writable, bool is_dirty,
                  uint64_t* handle);
  int put_handle(Handle& h);

  kv::KeyValueStore& store_;
  FsOptions options_;
  std::function<uint64_t()> now_ms_;
  const uint64_t mount_ms_;

  std::mutex mu_;
  std::unordered_map<std::string, CachedAttr> attrs_;                  // [mu_] by key
  std::unordered_map<std::string, CachedValue> values_;                // [mu_] by key
  size_t value_bytes_ = 0;                                             // [mu_]
  std::unordered_map<std::string, CachedDir> dirs_;                    // [mu_] by directory key
  std::unordered_map<std::string, std::pair<uint64_t, uint64_t>> mtimes_;  // [mu_] key -> (revision, first seen ms)
  std::map<uint64_t, std::shared_ptr<Handle>> handles_;                // [mu_]
  uint64_t next_handle_ = 1;                                           // [mu_]
};

}  // namespace aspen::fusefs
