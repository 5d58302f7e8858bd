#include "coord/counter.h"

#include "kv/commands.h"

#include <charconv>

#include <fmt/format.h>

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "counter";
}

Result<int64_t> parse_counter(const std::optional<kvpb::KeyValue>& kv) {
  if (!kv) return int64_t{0};
  auto v = kv::parse_int64_value(kv->value());
  if (!v) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("counter at '{}' does not hold a decimal int64", kv->key()));
  }
  return v;
}

Result<int64_t> checked_add(int64_t value, int64_t delta) { return kv::checked_add(value, delta); }

Result<int64_t> AtomicCounter::get() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto kv = kv::get(store_, coord_key(kKind, name_));
  if (!kv) return std::unexpected(kv.error());
  return parse_counter(*kv);
}

Result<int64_t> AtomicCounter::add(int64_t delta) {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  // One Add command: the state machine adds, so concurrent adds never conflict or retry.
  kvpb::Command cmd;
  cmd.mutable_add()->set_key(coord_key(kKind, name_));
  cmd.mutable_add()->set_delta(delta);
  auto r = store_.execute(std::move(cmd));
  if (!r) return std::unexpected(r.error());  // InvalidArgument: not a counter, or an overflow
  return parse_counter(r->current());
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
