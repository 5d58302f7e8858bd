#include "layer/directory.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/encoding.h"
#include "core/limits.h"
#include "layer/hca.h"
#include "layer/kv_ops.h"

namespace aspen::layer {

namespace {

constexpr int64_t kSubdirs = 0;  // node + (0, name) = child prefix (FDB's SUBDIRS)
const Bytes kLayerKey{"layer"};
const Bytes kVersionKey{"version"};
const Bytes kHcaKey{"hca"};
// The directory format version written under the root (FDB's 1.0.0), 3 little-endian u32s.
constexpr uint32_t kVersion[3] = {1, 0, 0};

std::string path_text(const Path& path) {
  std::string s;
  for (const auto& p : path) s += "/" + p;
  return s.empty() ? "/" : s;
}

std::string version_value() {
  std::string s;
  for (uint32_t v : kVersion) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  return s;
}

}  // namespace

// What walk() found: the directory entries along the path, up to the first missing name.
struct DirectoryLayer::Walk {
  std::vector<std::string> entry_keys;
  std::vector<uint64_t> entry_mod_revisions;
  std::vector<std::string> prefixes;
  size_t found() const { return prefixes.size(); }
  // Compares that hold only while every entry found is unchanged.
  void pin(Txn& txn) const {
    for (size_t i = 0; i < entry_keys.size(); ++i) txn.compares.push_back(cmp_mod_revision(entry_keys[i], entry_mod_revisions[i]));
  }
};

DirectoryLayer::DirectoryLayer(kv::KeyValueStore& store, uint64_t seed, DirectoryOptions options)
    : store_(store),
      options_(std::move(options)),
      node_ss_(Subspace::from_raw(options_.node_prefix)),
      root_node_(node_ss_.sub({Bytes{options_.node_prefix}})),
      rng_(seed) {
  ASPEN_ASSERT(!options_.node_prefix.empty());
  ASPEN_ASSERT(!options_.content_prefix.starts_with(options_.node_prefix));
}

Subspace DirectoryLayer::node(std::string_view prefix) const { return node_ss_.sub({Bytes{std::string(prefix)}}); }

Status DirectoryLayer::check_path(const Path& path, bool allow_root) const {
  if (path.empty() && !allow_root) return make_error(ErrorCode::kInvalidArgument, "the root directory cannot be changed");
  if (path.size() > limits::kMaxDirectoryDepth) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a directory path has at most {} names, got {}", limits::kMaxDirectoryDepth, path.size()));
  }
  for (const auto& name : path) {
    if (name.empty() || name.size() > limits::kMaxDirectoryNameBytes) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("a directory name has 1..{} bytes, got {}", limits::kMaxDirectoryNameBytes, name.size()));
    }
  }
  return {};
}

Result<DirectoryLayer::Walk> DirectoryLayer::walk(const Path& path) {
  Walk w;
  std::string prefix = node_ss_.key();
  for (const auto& name : path) {
    std::string key = node(prefix).pack({kSubdirs, name});
    auto kv = kv::get(store_, key);
    if (!kv) return std::unexpected(kv.error());
    if (!*kv) break;
    if ((*kv)->value().empty()) return make_error(ErrorCode::kCorruption, "a directory entry holds an empty prefix");
    prefix = (*kv)->value();
    w.entry_keys.push_back(std::move(key));
    w.entry_mod_revisions.push_back((*kv)->mod_revision());
    w.prefixes.push_back(prefix);
  }
  return w;
}

Result<std::string> DirectoryLayer::read_layer(const std::string& prefix) {
  auto kv = kv::get(store_, node(prefix).pack({kLayerKey}));
  if (!kv) return std::unexpected(kv.error());
  return *kv ? (*kv)->value() : std::string();
}

Status DirectoryLayer::ensure_version() {
  std::string key = root_node_.pack({kVersionKey});
  auto kv = kv::get(store_, key);
  if (!kv) return std::unexpected(kv.error());
  if (*kv) {
    const std::string& v = (*kv)->value();
    if (v.size() != 12 || static_cast<uint8_t>(v[0]) > kVersion[0] || v[1] || v[2] || v[3]) {
      return make_error(ErrorCode::kCorruption, "the directory layer's stored version is newer or unreadable");
    }
    return {};
  }
  auto r = kv::cas(store_, key, std::nullopt, version_value());  // a lost race wrote the same
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::string> DirectoryLayer::allocate_prefix() {
  auto n = hca_allocate(store_, root_node_.sub({kHcaKey}), [this](uint64_t bound) {
    std::lock_guard lock(rng_mu_);
    return rng_.uniform(bound);
  });
  if (!n) return std::unexpected(n.error());
  std::string prefix = options_.content_prefix + pack({Integer::of_unsigned(*n)});
  // Allocated prefixes never overlap each other; keys written by hand under one would.
  bool is_free = true;
  auto s = scan_range(store_, prefix, prefix_end(prefix), 1, [&](const kvpb::KeyValue&) { return is_free = false; });
  if (!s) return std::unexpected(s.error());
  if (!is_free) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("allocated prefix 0x{} already holds keys written outside the directory layer",
                                  to_hex(prefix)));
  }
  return prefix;
}

Result<Directory> DirectoryLayer::open_or_create(const Path& path, std::string_view layer, bool allow_open,
                                                 bool allow_create) {
  if (auto s = check_path(path, false); !s) return std::unexpected(s.error());
  if (layer.size() > limits::kMaxDirectoryLayerBytes) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("a layer tag has at most {} bytes", limits::kMaxDirectoryLayerBytes));
  }
  for (size_t attempt = 0; attempt < limits::kMaxDirectoryAttempts; ++attempt) {
    auto w = walk(path);
    if (!w) return std::unexpected(w.error());
    if (w->found() == path.size()) {
      if (!allow_open) return make_error(ErrorCode::kInvalidArgument, fmt::format("directory {} already exists", path_text(path)));
      auto stored = read_layer(w->prefixes.back());
      if (!stored) return std::unexpected(stored.error());
      if (!layer.empty() && *stored != layer) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("directory {} has layer '{}', not '{}'", path_text(path), *stored, layer));
      }
      return Directory{path, *stored, Subspace::from_raw(w->prefixes.back())};
    }
    if (!allow_create) return make_error(ErrorCode::kNotFound, fmt::format("directory {} does not exist", path_text(path)));
    if (auto s = ensure_version(); !s) return std::unexpected(s.error());
    // Create the first missing name; missing parents are created one per round.
    size_t i = w->found();
    bool is_last = i + 1 == path.size();
    std::string parent = i == 0 ? node_ss_.key() : w->prefixes[i - 1];
    auto prefix = allocate_prefix();
    if (!prefix) return std::unexpected(prefix.error());
    std::string entry = node(parent).pack({kSubdirs, path[i]});
    Txn txn;
    w->pin(txn);
    txn.compares.push_back(cmp_mod_revision(entry, 0));
    txn.success.push_back(op_put(entry, *prefix));
    txn.success.push_back(op_put(node(*prefix).pack({kLayerKey}), is_last ? layer : std::string_view{}));
    auto r = run_txn(store_, std::move(txn));
    if (!r) return std::unexpected(r.error());
    if (r->succeeded() && is_last) return Directory{path, std::string(layer), Subspace::from_raw(*prefix)};
    // Created a parent, or lost a race (a path entry changed): look again.
  }
  return make_error(ErrorCode::kUnavailable, fmt::format("directory {}: too much contention, gave up", path_text(path)));
}

Result<Directory> DirectoryLayer::create_or_open(const Path& path, std::string_view layer) {
  return open_or_create(path, layer, true, true);
}
Result<Directory> DirectoryLayer::create(const Path& path, std::string_view layer) {
  return open_or_create(path, layer, false, true);
}
Result<Directory> DirectoryLayer::open(const Path& path, std::string_view layer) {
  return open_or_create(path, layer, true, false);
}

Result<bool> DirectoryLayer::exists(const Path& path) {
  if (auto s = check_path(path, true); !s) return std::unexpected(s.error());
  auto w = walk(path);
  if (!w) return std::unexpected(w.error());
  return w->found() == path.size();
}

Result<std::vector<std::string>> DirectoryLayer::list(const Path& path) {
  if (auto s = check_path(path, true); !s) return std::unexpected(s.error());
  auto w = walk(path);
  if (!w) return std::unexpected(w.error());
  if (w->found() != path.size()) return make_error(ErrorCode::kNotFound, fmt::format("directory {} does not exist", path_text(path)));
  Subspace n = node(path.empty() ? node_ss_.key() : w->prefixes.back());
  Subspace subdirs = n.sub({kSubdirs});
  KeyRange r = subdirs.range();
  std::vector<std::string> names;
  Status bad;
  auto s = scan_range(store_, r.begin, r.end, static_cast<uint32_t>(limits::kDefaultScanLimit), [&](const kvpb::KeyValue& kv) {
    auto t = subdirs.unpack(kv.key());
    if (!t || t->size() != 1 || !(*t)[0].holds<std::string>()) {
      bad = make_error(ErrorCode::kCorruption, "a directory entry key is malformed");
      return false;
    }
    names.push_back((*t)[0].get<std::string>());
    return true;
  });
  if (!s) return std::unexpected(s.error());
  if (!bad) return std::unexpected(bad.error());
  return names;
}

Result<Directory> DirectoryLayer::move(const Path& from, const Path& to) {
  if (auto s = check_path(from, false); !s) return std::unexpected(s.error());
  if (auto s = check_path(to, false); !s) return std::unexpected(s.error());
  if (to.size() >= from.size() && std::equal(from.begin(), from.end(), to.begin())) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("cannot move {} inside itself ({})", path_text(from), path_text(to)));
  }
  for (size_t attempt = 0; attempt < limits::kMaxDirectoryAttempts; ++attempt) {
    auto wf = walk(from);
    if (!wf) return std::unexpected(wf.error());
    if (wf->found() != from.size()) return make_error(ErrorCode::kNotFound, fmt::format("directory {} does not exist", path_text(from)));
    auto wt = walk(to);
    if (!wt) return std::unexpected(wt.error());
    if (wt->found() == to.size()) return make_error(ErrorCode::kInvalidArgument, fmt::format("directory {} already exists", path_text(to)));
    if (wt->found() + 1 < to.size()) {
      Path parent(to.begin(), to.end() - 1);
      return make_error(ErrorCode::kNotFound, fmt::format("directory {} does not exist", path_text(parent)));
    }
    std::string new_parent = to.size() == 1 ? node_ss_.key() : wt->prefixes.back();
    std::string entry = node(new_parent).pack({kSubdirs, to.back()});
    const std::string& prefix = wf->prefixes.back();
    Txn txn;
    wf->pin(txn);
    wt->pin(txn);
    txn.compares.push_back(cmp_mod_revision(entry, 0));
    txn.success.push_back(op_delete(wf->entry_keys.back()));
    txn.success.push_back(op_put(entry, prefix));
    auto r = run_txn(store_, std::move(txn));
    if (!r) return std::unexpected(r.error());
    if (!r->succeeded()) continue;
    auto layer = read_layer(prefix);
    if (!layer) return std::unexpected(layer.error());
    return Directory{to, *layer, Subspace::from_raw(prefix)};
  }
  return make_error(ErrorCode::kUnavailable, fmt::format("move {}: too much contention, gave up", path_text(from)));
}

Result<bool> DirectoryLayer::remove_if_exists(const Path& path) {
  if (auto s = check_path(path, false); !s) return std::unexpected(s.error());
  for (size_t attempt = 0; attempt < limits::kMaxDirectoryAttempts; ++attempt) {
    auto w = walk(path);
    if (!w) return std::unexpected(w.error());
    if (w->found() != path.size()) return false;
    // Unlink first, atomically: from here on nobody can open it or create under it (their
    // transactions pin this entry), so what follows is garbage collection.
    Txn txn;
    w->pin(txn);
    txn.success.push_back(op_delete(w->entry_keys.back()));
    auto r = run_txn(store_, std::move(txn));
    if (!r) return std::unexpected(r.error());
    if (!r->succeeded()) continue;
    if (auto s = delete_subtree(w->prefixes.back()); !s) return std::unexpected(s.error());
    return true;
  }
  return make_error(ErrorCode::kUnavailable, fmt::format("remove {}: too much contention, gave up", path_text(path)));
}

Status DirectoryLayer::remove(const Path& path) {
  auto r = remove_if_exists(path);
  if (!r) return std::unexpected(r.error());
  if (!*r) return make_error(ErrorCode::kNotFound, fmt::format("directory {} does not exist", path_text(path)));
  return {};
}

Status DirectoryLayer::delete_subtree(const std::string& top) {
  // Iterative: a subtree moved under another can be deeper than any one path.
  std::vector<std::string> pending{top};
  while (!pending.empty()) {
    std::string prefix = std::move(pending.back());
    pending.pop_back();
    Subspace n = node(prefix);
    KeyRange subdirs = n.range({kSubdirs});
    auto s = scan_range(store_, subdirs.begin, subdirs.end, static_cast<uint32_t>(limits::kDefaultScanLimit),
                        [&](const kvpb::KeyValue& kv) {
                          if (!kv.value().empty()) pending.push_back(kv.value());
                          return true;
                        });
    if (!s) return s;
    if (auto d = delete_range(store_, prefix, prefix_end(prefix)); !d) return d;
    if (auto d = delete_range(store_, n.key(), prefix_end(n.key())); !d) return d;
  }
  return {};
}

}  // namespace aspen::layer
