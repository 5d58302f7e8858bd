#include "sql/key_bounds.h"

#include "core/encoding.h"
#include "core/limits.h"

namespace aspen::sql {

namespace {
char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
}  // namespace

std::string like_prefix(std::string_view pattern) { return std::string(pattern.substr(0, pattern.find_first_of("%_"))); }

std::string glob_prefix(std::string_view pattern) { return std::string(pattern.substr(0, pattern.find_first_of("*?["))); }

void KeyBounds::raise_begin(std::string_view b) {
  if (b > begin_) begin_ = std::string(b);
}

void KeyBounds::lower_end(std::string_view e) {
  if (e.empty()) {
    is_empty_ = true;  // nothing is below the empty key
    return;
  }
  if (end_.empty() || e < end_) end_ = std::string(e);
}

void KeyBounds::apply(KeyOp op, std::string_view v) {
  std::string just_after = std::string(v) + '\0';
  switch (op) {
    case KeyOp::kEq:
      raise_begin(v);
      lower_end(just_after);
      return;
    case KeyOp::kGt:
      raise_begin(just_after);
      return;
    case KeyOp::kGe:
      raise_begin(v);
      return;
    case KeyOp::kLt:
      lower_end(v);
      return;
    case KeyOp::kLe:
      lower_end(just_after);
      return;
    case KeyOp::kGlob: {
      std::string p = glob_prefix(v);
      if (p.empty()) return;
      raise_begin(p);
      if (std::string e = prefix_end(p); !e.empty()) lower_end(e);
      return;
    }
    case KeyOp::kLike: {
      std::string p = like_prefix(v);
      if (p.empty()) return;
      std::string lo = p, hi = p;
      for (char& c : lo) c = ascii_upper(c);
      for (char& c : hi) c = ascii_lower(c);
      raise_begin(lo);
      if (std::string e = prefix_end(hi); !e.empty()) lower_end(e);
      return;
    }
  }
}

std::string KeyBounds::begin() const {
  // Shorter is smaller: still a lower bound.
  if (begin_.size() > limits::kMaxKeySizeBytes + 1) return begin_.substr(0, limits::kMaxKeySizeBytes + 1);
  return begin_;
}

std::string KeyBounds::end() const {
  // The end of the range of keys starting with a shortened end is above the end.
  if (end_.size() > limits::kMaxKeySizeBytes + 1) return prefix_end(std::string_view(end_).substr(0, limits::kMaxKeySizeBytes));
  return end_;
}

}  // namespace aspen::sql
