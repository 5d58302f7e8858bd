// Key bounds from SQL constraints: what a WHERE clause on `key` lets a virtual table scan.
//
// Pure. Each constraint narrows [begin, end) (end "" = unbounded). The result is a superset
// of the keys the constraints accept (SQLite re-checks every row), so an imprecise bound
// costs reads, never answers: LIKE is case-insensitive for ASCII and gets the range of
// every case variant of its prefix; bounds longer than a key can be are shortened outward.
#pragma once

#include <string>
#include <string_view>

namespace aspen::sql {

enum class KeyOp : char {
  kEq = '=',
  kGt = '>',
  kGe = 'G',
  kLt = '<',
  kLe = 'L',
  kLike = '~',
  kGlob = '*',
};

class KeyBounds {
 public:
  void apply(KeyOp op, std::string_view operand);
  bool is_empty() const { return is_empty_ || (!end_.empty() && end_ <= begin_); }
  // Valid for a RangeRequest: each at most kMaxKeySizeBytes + 1 bytes.
  std::string begin() const;
  std::string end() const;

 private:
  void raise_begin(std::string_view b);
  void lower_end(std::string_view e);
  std::string begin_;
  std::string end_;  // "" = unbounded
  bool is_empty_ = false;
};

// The literal prefix of a LIKE or GLOB pattern (up to its first wildcard).
std::string like_prefix(std::string_view pattern);
std::string glob_prefix(std::string_view pattern);

}  // namespace aspen::sql
