#include "fusefs/kv_fs.h"

#include <fcntl.h>
#include <linux/fs.h>

#include <cerrno>
#include <cstring>

#include "core/limits.h"
#include "fusefs/mapping.h"

namespace aspen::fusefs {

namespace {

// The first key after every key that starts with `prefix` ("" for none: the end of the store).
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return "";
}

bool is_root_path(const std::string& path) { return path == "/"; }

}  // namespace

KvFs::KvFs(kv::KeyValueStore& store, FsOptions options, std::function<uint64_t()> now_ms)
    : store_(store), options_(std::move(options)), now_ms_(std::move(now_ms)), mount_ms_(now_ms_()) {
  options_.prefix = normalize_prefix(options_.prefix);
}

Result<std::optional<kvpb::KeyValue>> KvFs::read_key(const std::string& key) { return kv::get(store_, key); }

Result<bool> KvFs::has_children(const std::string& dir_key, bool is_root) {
  kvpb::RangeRequest r;
  r.set_start(dir_prefix(dir_key, is_root));
  r.set_is_prefix(true);
  r.set_limit(1);
  r.set_is_count_only(true);
  auto page = store_.range(r);
  if (!page) return std::unexpected(page.error());
  return page->count() > 0;
}

uint64_t KvFs::mtime_for(const std::string& key, uint64_t revision) {
  std::lock_guard lock(mu_);
  auto it = mtimes_.find(key);
  if (it != mtimes_.end() && it->second.first == revision) return it->second.second;
  if (mtimes_.size() >= kMaxCachedEntries) mtimes_.clear();
  const uint64_t now = now_ms_();
  mtimes_[key] = {revision, now};
  return now;
}

Attr KvFs::file_attr(const kvpb::KeyValue& kv) {
  Attr a;
  a.size = kv.value().size();
  a.revision = kv.mod_revision();
  // The time of the key's last change where the store has it; for keys last written before
  // the store kept it, when this mount first saw the current revision.
  a.mtime_ms = kv.mod_time_ms() != 0 ? kv.mod_time_ms() : mtime_for(kv.key(), kv.mod_revision());
  return a;
}

void KvFs::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  attrs_.erase(key);
  if (auto it = values_.find(key); it != values_.end()) {
    value_bytes_ -= it->second.value.size();
    values_.erase(it);
  }
  dirs_.clear();
}

void KvFs::remember_value(const std::string& key, uint64_t revision, const std::string& value) {
  if (options_.data_ttl_ms == 0) return;
  std::lock_guard lock(mu_);
  if (auto it = values_.find(key); it != values_.end()) {
    value_bytes_ -= it->second.value.size();
    values_.erase(it);
  }
  if (values_.size() >= kMaxCachedEntries || value_bytes_ + value.size() > kMaxDataCacheBytes) {
    values_.clear();
    value_bytes_ = 0;
  }
  values_[key] = CachedValue{now_ms_() + options_.data_ttl_ms, revision, value};
  value_bytes_ += value.size();
}

int KvFs::getattr(const std::string& path, Attr* out) {
  if (is_root_path(path)) {
    *out = Attr{true, 0, mount_ms_, 0};
    return 0;
  }
  auto key = key_for_path(options_.prefix, path);
  if (!key) return -errno_for(key.error());
  // A file open here with unsaved writes is what this mount shows.
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, h] : handles_) {
      if (h->key != *key || !h->is_writable) continue;
      std::lock_guard hl(h->mu);
      if (h->is_dirty) {
        *out = Attr{false, h->data.size(), now_ms_(), 0};
        return 0;
      }
    }
    if (auto it = attrs_.find(*key); it != attrs_.end() && now_ms_() < it->second.expires_ms) {
      *out = it->second.attr;
      return 0;
    }
  }
  auto kv = read_key(*key);
  if (!kv) return -errno_for(kv.error());
  Attr a;
  if (*kv) {
    a = file_attr(**kv);
    remember_value(*key, (*kv)->mod_revision(), (*kv)->value());
  } else {
    auto dir = has_children(*key, false);
    if (!dir) return -errno_for(dir.error());
    if (!*dir) return -ENOENT;
    a = Attr{true, 0, mount_ms_, 0};
  }
  if (options_.attr_ttl_ms > 0) {
    std::lock_guard lock(mu_);
    if (attrs_.size() >= kMaxCachedEntries) attrs_.clear();
    attrs_[*key] = CachedAttr{now_ms_() + options_.attr_ttl_ms, a};
  }
  *out = a;
  return 0;
}

int KvFs::readdir(const std::string& path, std::vector<DirEntry>* out) {
  const bool is_root = is_root_path(path);
  auto key = key_for_path(options_.prefix, path);
  if (!key) return -errno_for(key.error());
  {
    std::lock_guard lock(mu_);
    if (auto it = dirs_.find(*key); it != dirs_.end() && now_ms_() < it->second.expires_ms) {
      *out = it->second.entries;
      return 0;
    }
  }
  const std::string dir = dir_prefix(*key, is_root);
  const std::string end = prefix_end(dir);
  std::vector<DirEntry> entries;
  std::map<std::string, size_t> index;  // name -> position in entries
  std::string start = dir;
  std::string continuation;
  bool is_any = false;
  while (entries.size() < kMaxDirEntries) {
    kvpb::RangeRequest r;
    r.set_start(start);
    r.set_end(end);
    r.set_limit(limits::kDefaultScanLimit);
    r.set_continuation(continuation);
    auto page = store_.range(r);
    if (!page) return -errno_for(page.error());
    std::optional<std::string> skip_to;
    for (const auto& kv : page->kvs()) {
      is_any = true;
      auto child = child_of(dir, kv.key());
      if (!child) continue;
      auto [it, is_new] = index.emplace(child->name, entries.size());
      if (child->is_dir) {
        if (is_new) entries.push_back(DirEntry{child->name, Attr{true, 0, mount_ms_, 0}});
        // Everything below this child lists as the child: skip its subtree ('0' follows '/').
        skip_to = dir + child->name + "0";
        break;
      }
      // A file shadows a directory of the same name.
      Attr a = file_attr(kv);
      if (is_new) {
        entries.push_back(DirEntry{child->name, a});
      } else {
        entries[it->second].attr = a;
      }
      if (entries.size() >= kMaxDirEntries) break;
    }
    if (skip_to) {
      start = *skip_to;
      continuation.clear();
      if (!end.empty() && start >= end) break;
      continue;
    }
    if (!page->has_more()) break;
    continuation = page->continuation();
  }
  if (!is_root && !is_any) {
    // No key at or below: the directory does not exist (unless it is a file).
    auto kv = read_key(*key);
    if (!kv) return -errno_for(kv.error());
    return *kv ? -ENOTDIR : -ENOENT;
  }
  if (options_.dir_ttl_ms > 0) {
    std::lock_guard lock(mu_);
    if (dirs_.size() >= kMaxCachedEntries) dirs_.clear();
    dirs_[*key] = CachedDir{now_ms_() + options_.dir_ttl_ms, entries};
    // The listing read every file's attributes: keep them too.
    if (options_.attr_ttl_ms > 0) {
      for (const auto& e : entries) {
        if (e.attr.is_dir) continue;
        if (attrs_.size() >= kMaxCachedEntries) attrs_.clear();
        attrs_[dir + e.name] = CachedAttr{now_ms_() + std::min(options_.attr_ttl_ms, options_.dir_ttl_ms), e.attr};
      }
    }
  }
  *out = std::move(entries);
  return 0;
}

std::shared_ptr<KvFs::Handle> KvFs::handle_of(uint64_t handle) {
  std::lock_guard lock(mu_);
  auto it = handles_.find(handle);
  return it == handles_.end() ? nullptr : it->second;
}

int KvFs::open_handle(const std::string& path, const std::string& key, std::string data, bool is_writable, bool is_dirty,
                      uint64_t* handle) {
  auto h = std::make_shared<Handle>();
  h->path = path;
  h->key = key;
  h->data = std::move(data);
  h->is_writable = is_writable;
  h->is_dirty = is_dirty;
  std::lock_guard lock(mu_);
  if (handles_.size() >= kMaxOpenFiles) return -ENFILE;
  *handle = next_handle_++;
  handles_.emplace(*handle, std::move(h));
  return 0;
}

int KvFs::open(const std::string& path, int flags, uint64_t* handle) {
  const int mode = flags & O_ACCMODE;
  const bool is_writable = mode == O_WRONLY || mode == O_RDWR;
  if (is_writable && options_.is_read_only) return -EROFS;
  if (is_root_path(path)) return -EISDIR;
  auto key = key_for_path(options_.prefix, path);
  if (!key) return -errno_for(key.error());
  const bool is_truncating = is_writable && (flags & O_TRUNC) != 0;
  std::string data;
  {
    std::unique_lock lock(mu_);
    auto it = values_.find(*key);
    if (!is_truncating && it != values_.end() && now_ms_() < it->second.expires_ms && !is_writable) {
      data = it->second.value;
      lock.unlock();
      return open_handle(path, *key, std::move(data), false, false, handle);
    }
  }
  auto kv = read_key(*key);
  if (!kv) return -errno_for(kv.error());
  if (!*kv) {
    auto dir = has_children(*key, false);
    if (dir && *dir) return -EISDIR;
    return -ENOENT;
  }
  remember_value(*key, (*kv)->mod_revision(), (*kv)->value());
  if (!is_truncating) data = (*kv)->value();
  return open_handle(path, *key, std::move(data), is_writable, is_truncating, handle);
}

int KvFs::create(const std::string& path, uint64_t* handle) {
  if (options_.is_read_only) return -EROFS;
  auto key = key_for_path(options_.prefix, path);
  if (!key) return -errno_for(key.error());
  if (is_root_path(path)) return -EEXIST;
  // The key is written at the first flush: `touch` (create, close) leaves an empty file.
  return open_handle(path, *key, "", true, true, handle);
}

int64_t KvFs::read(uint64_t handle, char* buf, size_t size, uint64_t offset) {
  auto h = handle_of(handle);
  if (!h) return -EBADF;
  std::lock_guard lock(h->mu);
  if (offset >= h->data.size()) return 0;
  const size_t n = std::min<size_t>(size, h->data.size() - offset);
  std::memcpy(buf, h->data.data() + offset, n);
  return static_cast<int64_t>(n);
}

int64_t KvFs::write(uint64_t handle, const char* buf, size_t size, uint64_t offset) {
  auto h = handle_of(handle);
  if (!h) return -EBADF;
  if (!h->is_writable) return -EBADF;
  std::lock_guard lock(h->mu);
  if (offset > limits::kMaxValueSizeBytes || size > limits::kMaxValueSizeBytes - offset) {
    h->is_too_large = true;
    return -EFBIG;
  }
  if (h->data.size() < offset + size) h->data.resize(offset + size, '\0');
  std::memcpy(h->data.data() + offset, buf, size);
  h->is_dirty = true;
  return static_cast<int64_t>(size);
}

int KvFs::truncate(const std::string& path, uint64_t size, uint64_t handle) {
  if (options_.is_read_only) return -EROFS;
  if (size > limits::kMaxValueSizeBytes) return -EFBIG;
  if (auto h = handle != 0 ? handle_of(handle) : nullptr; h && h->is_writable) {
    std::lock_guard lock(h->mu);
    h->data.resize(size, '\0');
    h->is_dirty = true;
    return 0;
  }
  // Not open here: read, cut or extend, put back (conditioned on the value read).
  auto key = key_for_path(options_.prefix, path);
  if (!key) return -errno_for(key.error());
  auto kv = read_key(*key);
  if (!kv) return -errno_for(kv.error());
  if (!*kv) return -ENOENT;
  std::string value = (*kv)->value();
  value.resize(size, '\0');
  kvpb::Command cmd;
  auto* txn = cmd.mutable_txn();
  auto* cmp = txn->add_compares();
  cmp->set_key(*key);
  cmp->set_target(kvpb::Compare::TARGET_MOD_REVISION);
  cmp->set_op(kvpb::Compare::OP_EQUAL);
  cmp->set_number((*kv)->mod_revision());
  auto* put = txn->add_success()->mutable_put();
  put->set_key(*key);
  put->set_value(std::move(value));
  auto r = store_.execute(std::move(cmd));
  forget(*key);
  if (!r) return -errno_for(r.error());
  return r->succeeded() ? 0 : -EAGAIN;  // changed meanwhile: the caller may try again
}

int KvFs::put_handle(Handle& h) {
  if (h.is_too_large) return -EFBIG;
  auto r = kv::put(store_, h.key, h.data);
  forget(h.key);
  if (!r) return -errno_for(r.error());
  h.is_dirty = false;
  remember_value(h.key, r->revision(), h.data);
  return 0;
}

int KvFs::flush(uint64_t handle) {
  auto h = handle_of(handle);
  if (!h) return -EBADF;
  std::lock_guard lock(h->mu);
  if (!h->is_dirty) return 0;
  return put_handle(*h);
}

int KvFs::release(uint64_t handle) {
  std::shared_ptr<Handle> h;
  {
    std::lock_guard lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return -EBADF;
    h = std::move(it->second);
    handles_.erase(it);
  }
  // close(2) flushed already; this catches a handle closed without a flush.
  std::lock_guard lock(h->mu);
  return h->is_dirty ? put_handle(*h) : 0;
}

int KvFs::unlink(const std::string& path) {
  if (options_.is_read_only) return -EROFS;
  auto key = key_for_path(options_.prefix, path);
  if (!key) return -errno_for(key.error());
  auto r = kv::del(store_, *key);
  forget(*key);
  if (!r) return -errno_for(r.error());
  return r->deleted() > 0 ? 0 : -ENOENT;
}

int KvFs::mkdir(const std::string& path) {
  if (options_.is_read_only) return -EROFS;
  if (is_root_path(path)) return -EEXIST;
  auto key = key_for_path(options_.prefix, path);
  if (!key) return -errno_for(key.error());
  auto r = kv::cas(store_, *key + "/", std::nullopt, "");
  forget(*key);
  if (!r) return -errno_for(r.error());
  return r->succeeded() ? 0 : -EEXIST;
}

int KvFs::rmdir(const std::string& path) {
  if (options_.is_read_only) return -EROFS;
  if (is_root_path(path)) return -EBUSY;
  auto key = key_for_path(options_.prefix, path);
  if (!key) return -errno_for(key.error());
  const std::string marker = *key + "/";
  auto page = kv::scan_prefix(store_, marker, 2);
  if (!page) return -errno_for(page.error());
  bool has_marker = false;
  for (const auto& kv : page->kvs()) {
    if (kv.key() == marker) {
      has_marker = true;
    } else {
      return -ENOTEMPTY;
    }
  }
  if (!has_marker) {
    auto kv = read_key(*key);
    if (kv && *kv) return -ENOTDIR;
    return -ENOENT;
  }
  // A key put below meanwhile keeps the directory there (implicitly): nothing is lost.
  auto r = kv::del(store_, marker);
  forget(*key);
  if (!r) return -errno_for(r.error());
  return 0;
}

int KvFs::rename(const std::string& from, const std::string& to, unsigned flags) {
  if (options_.is_read_only) return -EROFS;
  if ((flags & RENAME_EXCHANGE) != 0 || (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) != 0) return -EINVAL;
  auto from_key = key_for_path(options_.prefix, from);
  if (!from_key) return -errno_for(from_key.error());
  auto to_key = key_for_path(options_.prefix, to);
  if (!to_key) return -errno_for(to_key.error());
  if (is_root_path(from) || is_root_path(to)) return -EBUSY;
  if (*from_key == *to_key) return 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto kv = read_key(*from_key);
    if (!kv) return -errno_for(kv.error());
    if (!*kv) {
      auto dir = has_children(*from_key, false);
      if (!dir) return -errno_for(dir.error());
      return *dir ? -EXDEV : -ENOENT;  // a directory: mv copies and removes instead
    }
    auto to_dir = has_children(*to_key, false);
    if (!to_dir) return -errno_for(to_dir.error());
    if (*to_dir) return -EISDIR;
    kvpb::Command cmd;
    auto* txn = cmd.mutable_txn();
    auto* cmp = txn->add_compares();
    cmp->set_key(*from_key);
    cmp->set_target(kvpb::Compare::TARGET_MOD_REVISION);
    cmp->set_op(kvpb::Compare::OP_EQUAL);
    cmp->set_number((*kv)->mod_revision());
    if ((flags & RENAME_NOREPLACE) != 0) {
      auto* absent = txn->add_compares();
      absent->set_key(*to_key);
      absent->set_target(kvpb::Compare::TARGET_VERSION);
      absent->set_op(kvpb::Compare::OP_EQUAL);
      absent->set_number(0);
    }
    auto* put = txn->add_success()->mutable_put();
    put->set_key(*to_key);
    put->set_value((*kv)->value());
    txn->add_success()->mutable_delete_()->set_key(*from_key);
    auto r = store_.execute(std::move(cmd));
    forget(*from_key);
    forget(*to_key);
    if (!r) return -errno_for(r.error());
    if (r->succeeded()) return 0;
    if ((flags & RENAME_NOREPLACE) != 0) {
      auto target = read_key(*to_key);
      if (target && *target) return -EEXIST;
    }
    // The source changed between the read and the transaction: read it again.
  }
  return -EAGAIN;
}

}  // namespace aspen::fusefs
