#include "coord/sequence.h"

#include <charconv>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "seq";

Result<uint64_t> parse_next(const std::optional<kvpb::KeyValue>& kv) {
  if (!kv) return uint64_t{1};
  const std::string& s = kv->value();
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0) {
    return make_error(ErrorCode::kCorruption, fmt::format("sequence at '{}' does not hold a positive id", kv->key()));
  }
  return v;
}
}  // namespace

Result<IdBlock> SequenceGenerator::reserve(uint64_t count) {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  if (count == 0 || count > limits::kMaxSequenceBlockSize) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("sequence block of {} ids is outside [1, {}]", count,
                                                               limits::kMaxSequenceBlockSize));
  }
  return update_key<IdBlock>(store_, coord_key(kKind, name_), fmt::format("sequence '{}'", name_),
                             [&](const std::optional<kvpb::KeyValue>& cur) -> Result<Update<IdBlock>> {
                               auto first = parse_next(cur);
                               if (!first) return std::unexpected(first.error());
                               if (*first > UINT64_MAX - count) {
                                 return make_error(ErrorCode::kInvalidArgument,
                                                   fmt::format("sequence '{}' is exhausted", name_));
                               }
                               IdBlock b{*first, *first + count};
                               return Update<IdBlock>{std::to_string(b.end), b};
                             });
}

Result<uint64_t> SequenceGenerator::next() {
  std::lock_guard lock(mu_);
  if (block_.first == block_.end) {
    auto b = reserve(block_size_);
    if (!b) return std::unexpected(b.error());
    // Blocks reserved later start higher, so ids from one generator strictly increase.
    ASPEN_ASSERT(b->first >= block_.end);
    block_ = *b;
  }
  return block_.first++;
}

}  // namespace aspen::coord
