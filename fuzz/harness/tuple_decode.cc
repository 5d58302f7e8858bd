// tuple_decode: arbitrary bytes read as a packed tuple (layer::unpack), as the directory
// layer and SQL tables read keys and values that anyone with write access could have put.
// Properties: no assert fires; a decoded tuple packs to its canonical form, which decodes
// to the same tuple and packs to itself; the canonical form is the input itself or shorter
// (unpack also takes the longer, non-minimal integer forms other bindings may write: a
// big-integer code for a value that fits 64 bits, a negative zero); a tuple holding exactly
// one incomplete versionstamp packs with its offset, which points at the ten 0xff bytes.
#include <cstring>

#include "fuzz/harness/harness.h"
#include "layer/tuple.h"

namespace aspen::fuzz {

namespace {

size_t incomplete_stamps(const layer::Tuple& t) {
  size_t n = 0;
  for (const auto& e : t) {
    if (e.holds<layer::Tuple>()) n += incomplete_stamps(e.get<layer::Tuple>());
    if (e.holds<layer::Versionstamp>() && !e.get<layer::Versionstamp>().is_complete()) ++n;
  }
  return n;
}

}  // namespace

int tuple_decode_one_input(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto t = layer::unpack(input);
  if (!t) {
    check(t.error().code() == ErrorCode::kInvalidArgument, "a malformed tuple gave an error other than InvalidArgument");
    return 0;
  }
  const std::string canonical = layer::pack(*t);
  check(canonical == input || canonical.size() < input.size(), "a decoded tuple packs longer than its input");
  auto again = layer::unpack(canonical);
  check(again.has_value(), "a packed tuple does not decode");
  check(*again == *t, "a packed tuple decodes to another tuple");
  check(layer::pack(*again) == canonical, "the canonical form is not a fixed point");
  (void)layer::to_string(*t);
  auto stamped = layer::pack_with_versionstamp(*t);
  check(stamped.has_value() == (incomplete_stamps(*t) == 1), "pack_with_versionstamp disagrees on the stamps");
  if (stamped) {
    check(stamped->size() == canonical.size() + 4 && stamped->starts_with(canonical), "a stamped key is not pack + offset");
    uint32_t offset = 0;
    for (size_t i = 0; i < 4; ++i) offset |= uint32_t{static_cast<uint8_t>((*stamped)[canonical.size() + i])} << (8 * i);
    check(offset + 10 <= canonical.size() && canonical.compare(offset, 10, std::string(10, '\xff')) == 0,
          "the versionstamp offset does not point at the incomplete stamp");
  }
  return 0;
}

std::vector<std::string> tuple_decode_seeds() {
  using layer::Element;
  using layer::Tuple;
  layer::Uuid uuid;
  for (size_t i = 0; i < uuid.bytes.size(); ++i) uuid.bytes[i] = static_cast<uint8_t>(i * 17);
  std::vector<std::string> out = {
      layer::pack({}),
      layer::pack({Element(layer::Null{}), Element(layer::Bytes{std::string("a\0b", 3)}), Element("héllo")}),
      layer::pack({Element(int64_t{0}), Element(int64_t{-1}), Element(int64_t{255}), Element(INT64_MIN),
                   Element(UINT64_MAX), Element(layer::Integer{true, UINT64_MAX})}),
      layer::pack({Element(layer::BigInteger{false, std::string(9, '\x01')}),
                   Element(layer::BigInteger{true, std::string(12, '\x7f')})}),
      layer::pack({Element(layer::Float{-1.5f}), Element(3.25), Element(true), Element(false), Element(uuid)}),
      layer::pack({Element(Tuple{Element(layer::Null{}), Element(Tuple{Element("x"), Element(int64_t{7})})}),
                   Element(layer::Versionstamp::incomplete(3))}),
      std::string("\x1d\x08\xff\xff\xff\xff\xff\xff\xff\xff", 10),  // 2^64-1 as Python writes it
      std::string("\x13\xff", 2),                                   // a negative zero
  };
  layer::Versionstamp complete;
  complete.tr_version = {0, 0, 0, 0, 0, 0, 0, 9, 0, 1};
  complete.user_version = 2;
  out.push_back(layer::pack({Element("users"), Element(complete)}));
  return out;
}

}  // namespace aspen::fuzz
