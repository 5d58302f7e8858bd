// Subspace: a key prefix that namespaces tuple-encoded keys (FoundationDB's Subspace).
//
//   Subspace users(Tuple{"app", "users"});        // or Subspace::from_raw(dir.prefix)
//   std::string k = users.pack({int64_t{42}});    // prefix + pack((42,))
//   users.unpack(k) == Tuple{42};  users.contains(k);
//   KeyRange all = users.range();                 // every key users.pack() can make
//
// A subspace is a value: copying it copies the prefix. Pure, no I/O.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "layer/tuple.h"

namespace aspen::layer {

class Subspace {
 public:
  // The empty prefix: the whole key space.
  Subspace() = default;
  // The prefix raw_prefix + pack(t).
  explicit Subspace(const Tuple& t, std::string_view raw_prefix = {});
  static Subspace from_raw(std::string prefix);

  const std::string& key() const { return prefix_; }
  // The subspace of this one's prefix followed by pack(t).
  Subspace sub(const Tuple& t) const;
  std::string pack(const Tuple& t) const;
  // The tuple after the prefix. InvalidArgument if the key is outside the subspace or what
  // follows the prefix is not a valid tuple.
  Result<Tuple> unpack(std::string_view key) const;
  // [prefix + pack(t) + 0x00, prefix + pack(t) + 0xff): every key pack(t + more) makes, not
  // the key pack(t) itself.
  KeyRange range(const Tuple& t = {}) const;
  bool contains(std::string_view key) const { return key.starts_with(prefix_); }

  friend bool operator==(const Subspace&, const Subspace&) = default;

 private:
  std::string prefix_;
};

}  // namespace aspen::layer
