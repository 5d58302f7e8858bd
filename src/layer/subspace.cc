#include "layer/subspace.h"

#include <fmt/format.h>

#include "core/encoding.h"

namespace aspen::layer {

Subspace::Subspace(const Tuple& t, std::string_view raw_prefix) : prefix_(raw_prefix) { prefix_ += layer::pack(t); }

Subspace Subspace::from_raw(std::string prefix) {
  Subspace s;
  s.prefix_ = std::move(prefix);
  return s;
}

Subspace Subspace::sub(const Tuple& t) const { return from_raw(pack(t)); }

std::string Subspace::pack(const Tuple& t) const {
  std::string out = prefix_;
  for (const Element& e : t) append(out, e);
  return out;
}

Result<Tuple> Subspace::unpack(std::string_view key) const {
  if (!contains(key)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("key 0x{} is outside the subspace 0x{}", to_hex(key), to_hex(prefix_)));
  }
  return layer::unpack(key.substr(prefix_.size()));
}

KeyRange Subspace::range(const Tuple& t) const {
  std::string p = pack(t);
  return KeyRange{p + '\x00', p + '\xff'};
}

}  // namespace aspen::layer
