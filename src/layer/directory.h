// The directory layer: hierarchical paths (["app", "users"]) mapped to short key prefixes,
// FoundationDB's design and key layout, over any kv::KeyValueStore (an in-process store in
// tests, client::Client on a cluster).
//
//   DirectoryLayer dirs(store, seed);
//   Result<Directory> users = dirs.create_or_open({"app", "users"});
//   std::string key = users->subspace.pack({int64_t{42}});   // e.g. "\x15\x03\x15\x2a"
//
// Layout (FDB's, with its defaults): directory metadata lives under the node prefix 0xfe;
// a directory with prefix P has its node at 0xfe + pack((P,)), holding
//   node + pack((0, name)) = the child's prefix     (one key per subdirectory)
//   node + pack(("layer",)) = the layer tag          (bytes chosen by the creator)
// The root's node is 0xfe + pack((0xfe,)); under it also ("version",) and ("hca", ...), the
// state of the high-contention allocator (hca.h) that hands out prefixes: content prefix
// (default empty) + pack((n,)) for a unique integer n, so no prefix is a prefix of another.
//
// Concurrency: every change is one KV transaction whose compares pin the mod revision of
// every directory entry on the path(s) it touches, so a concurrent create, move or remove of
// any ancestor makes it fail and retry (bounded by limits::kMaxDirectoryAttempts, then Unavailable).
// remove() first unlinks the directory atomically, then deletes its contents and its
// subdirectories' metadata in batches: a crash in between leaves unreachable keys under
// prefixes the allocator never hands out again, never a half-visible directory.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/limits.h"
#include "core/rng.h"
#include "kv/key_value_store.h"
#include "layer/subspace.h"

namespace aspen::layer {

using Path = std::vector<std::string>;

struct Directory {
  Path path;
  std::string layer;
  Subspace subspace;  // the directory's content prefix
  const std::string& prefix() const { return subspace.key(); }
};

struct DirectoryOptions {
  std::string node_prefix = "\xfe";
  std::string content_prefix;
};

class DirectoryLayer {
 public:
  // seed: the allocator's random candidates (tests pass a fixed one; tools a random one).
  DirectoryLayer(kv::KeyValueStore& store, uint64_t seed, DirectoryOptions options = {});

  // Opens the directory, creating it and any missing parents. A non-empty layer must equal
  // the stored one (InvalidArgument otherwise); a new directory gets it.
  Result<Directory> create_or_open(const Path& path, std::string_view layer = {});
  // InvalidArgument ("already exists") if it does.
  Result<Directory> create(const Path& path, std::string_view layer = {});
  // NotFound if it does not exist.
  Result<Directory> open(const Path& path, std::string_view layer = {});
  Result<bool> exists(const Path& path);
  // Names of the subdirectories, in key order (UTF-8 byte order). The root is {}.
  Result<std::vector<std::string>> list(const Path& path = {});
  // Moves a directory (and its subtree; the prefix and contents stay). The new parent must
  // exist and the new path must not; a directory cannot move inside itself.
  Result<Directory> move(const Path& from, const Path& to);
  // Removes the directory, its contents and its subdirectories. NotFound if absent.
  Status remove(const Path& path);
  Result<bool> remove_if_exists(const Path& path);

 private:
  struct Walk;
  Status check_path(const Path& path, bool allow_root) const;
  Result<Walk> walk(const Path& path);
  Result<Directory> open_or_create(const Path& path, std::string_view layer, bool allow_open, bool allow_create);
  Result<std::string> read_layer(const std::string& prefix);
  Status ensure_version();
  Result<std::string> allocate_prefix();
  Status delete_subtree(const std::string& prefix);
  Subspace node(std::string_view prefix) const;

  kv::KeyValueStore& store_;
  DirectoryOptions options_;
  Subspace node_ss_;     // metadata
  Subspace root_node_;   // node of the root directory
  std::mutex rng_mu_;
  Rng rng_;              // guarded by rng_mu_
};

}  // namespace aspen::layer
