#include "coord/counter.h"

#include <charconv>

#include <fmt/format.h>

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "counter";
}

Result<int64_t> parse_counter(const std::optional<kvpb::KeyValue>& kv) {
  if (!kv) return int64_t{0};
  const std::string& s = kv->value();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("counter at '{}' does not hold a decimal int64", kv->key()));
  }
  return v;
}

Result<int64_t> checked_add(int64_t value, int64_t delta) {
  int64_t out = 0;
  if (__builtin_add_overflow(value, delta, &out)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("adding {} to {} would overflow a 64-bit counter", delta, value));
  }
  return out;
}

Result<int64_t> AtomicCounter::get() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto kv = kv::get(store_, coord_key(kKind, name_));
  if (!kv) return std::unexpected(kv.error());
  return parse_counter(*kv);
}

Result<int64_t> AtomicCounter::add(int64_t delta) {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  return update_key<int64_t>(store_, coord_key(kKind, name_), fmt::format("counter '{}'", name_),
                             [&](const std::optional<kvpb::KeyValue>& cur) -> Result<Update<int64_t>> {
                               auto v = parse_counter(cur);
                               if (!v) return std::unexpected(v.error());
                               auto next = checked_add(*v, delta);
                               if (!next) return std::unexpected(next.error());
                               return Update<int64_t>{std::to_string(*next), *next};
                             });
}

Result<bool> AtomicCounter::compare_and_set(int64_t expected, int64_t desired) {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  return update_key<bool>(store_, coord_key(kKind, name_), fmt::format("counter '{}'", name_),
                          [&](const std::optional<kvpb::KeyValue>& cur) -> Result<Update<bool>> {
                            auto v = parse_counter(cur);
                            if (!v) return std::unexpected(v.error());
                            if (*v != expected) return Update<bool>{std::nullopt, false};
                            return Update<bool>{std::to_string(desired), true};
                          });
}

}  // namespace aspen::coord
