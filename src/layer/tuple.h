// The tuple layer: order-preserving encoding of typed tuples into keys, byte for byte the
// format of FoundationDB's tuple layer (design/tuple.md in apple/foundationdb), so keys
// written by Aspen's layers read the same in any FDB binding and vice versa.
//
//   Tuple t{Element("users"), Element(int64_t{42}), Element(Bytes{"\x00raw"})};
//   std::string key = pack(t);              // sorts like the tuple
//   Result<Tuple> back = unpack(key);       // == t
//
// Order: for any tuples a and b, pack(a) < pack(b) bytewise exactly when a < b in tuple order
// (element by element; a prefix sorts first; elements of different types by type code, all
// integers as one type compared by value; floats in IEEE total order). Property-tested in
// tests/layer/tuple_test.cc against a model comparison that never looks at bytes.
//
// Types and codes: null 0x00, bytes 0x01, unicode string 0x02 (UTF-8 bytes as given; neither
// pack nor unpack checks UTF-8, so any bytes round-trip), nested tuple 0x05, integers 0x0c..0x1c
// (magnitude up to 2^64-1, either sign) and the big-integer codes 0x0b/0x1d (9..255 byte
// magnitudes), float 0x20, double 0x21, false 0x26, true 0x27, UUID 0x30, 96-bit versionstamp
// 0x33. unpack() reads untrusted bytes: any input gives a Tuple or an InvalidArgument error,
// never a crash, and nesting deeper than limits::kMaxTupleNestingDepth is refused.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.h"
#include "core/limits.h"

namespace aspen::layer {

struct Element;
using Tuple = std::vector<Element>;

struct Null {
  friend bool operator==(Null, Null) = default;
};
// A byte string (code 0x01), as opposed to a unicode string (std::string, code 0x02).
struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};
// An integer in [-(2^64-1), 2^64-1]: sign and magnitude, so uint64 and int64 both fit.
// Canonical: zero is never negative.
struct Integer {
  bool is_negative = false;
  uint64_t magnitude = 0;
  static Integer of(int64_t v);
  static Integer of_unsigned(uint64_t v) { return Integer{false, v}; }
  // The value if it fits an int64_t.
  std::optional<int64_t> as_int64() const;
  friend bool operator==(const Integer&, const Integer&) = default;
};
// An integer of magnitude >= 2^64 (the big-integer codes): the magnitude's big-endian bytes,
// 9..255 of them, the first non-zero.
struct BigInteger {
  bool is_negative = false;
  std::string magnitude_be;
  friend bool operator==(const BigInteger&, const BigInteger&) = default;
};
// Floats compare by bit pattern (NaNs with different payloads are different elements, -0 is
// not 0), which is what the encoding preserves.
struct Float {
  float value = 0;
  friend bool operator==(Float a, Float b) { return std::bit_cast<uint32_t>(a.value) == std::bit_cast<uint32_t>(b.value); }
};
struct Double {
  double value = 0;
  friend bool operator==(Double a, Double b) {
    return std::bit_cast<uint64_t>(a.value) == std::bit_cast<uint64_t>(b.value);
  }
};
struct Uuid {
  std::array<uint8_t, 16> bytes{};
  friend bool operator==(const Uuid&, const Uuid&) = default;
};
// FDB's 96-bit versionstamp: 10 bytes of transaction version (commit version and batch order,
// big-endian) and 2 of user version. An incomplete one (transaction version all 0xff) is a
// placeholder that pack_with_versionstamp locates for the writer to fill in.
struct Versionstamp {
  std::array<uint8_t, 10> tr_version{};
  uint16_t user_version = 0;
  static Versionstamp incomplete(uint16_t user_version = 0);
  bool is_complete() const;
  friend bool operator==(const Versionstamp&, const Versionstamp&) = default;
};

struct Element {
  using Value = std::variant<Null, Bytes, std::string, Tuple, Integer, BigInteger, Float, Double, bool, Uuid, Versionstamp>;
  Value value;

  Element() : value(Null{}) {}
  Element(Null v) : value(v) {}
  Element(Bytes v) : value(std::move(v)) {}
  Element(std::string v) : value(std::move(v)) {}
  Element(const char* v) : value(std::string(v)) {}
  Element(Tuple v) : value(std::move(v)) {}
  Element(Integer v) : value(v) {}
  Element(BigInteger v) : value(std::move(v)) {}
  Element(int64_t v) : value(Integer::of(v)) {}
  Element(int v) : value(Integer::of(v)) {}
  Element(uint64_t v) : value(Integer::of_unsigned(v)) {}
  Element(Float v) : value(v) {}
  Element(Double v) : value(v) {}
  Element(double v) : value(Double{v}) {}
  Element(bool v) : value(v) {}
  Element(Uuid v) : value(v) {}
  Element(Versionstamp v) : value(v) {}

  template <typename T>
  bool holds() const {
    return std::holds_alternative<T>(value);
  }
  template <typename T>
  const T& get() const {
    return std::get<T>(value);
  }
  friend bool operator==(const Element&, const Element&) = default;
};

// Appends the encoding of one element (as a top-level element) to out.
void append(std::string& out, const Element& e);
// The encoding of the tuple: the concatenation of its elements'.
std::string pack(const Tuple& t);
// Decodes a whole key. InvalidArgument (saying where and why) on malformed bytes.
Result<Tuple> unpack(std::string_view bytes);

// FDB's pack_with_versionstamp: pack(t) followed by the 4-byte little-endian offset of the
// incomplete versionstamp's 10 transaction-version bytes. InvalidArgument unless t holds
// exactly one incomplete versionstamp (at any depth).
Result<std::string> pack_with_versionstamp(const Tuple& t);

// The range of keys strictly inside the tuple as a prefix: [pack(t) + 0x00, pack(t) + 0xff).
// Every key pack(t + more) lies in it, and pack(t) itself does not.
struct KeyRange {
  std::string begin;
  std::string end;
};
KeyRange tuple_range(const Tuple& prefix);

// Debugging text, in FDB's Python repr style: ("users", 42, b"\x00raw").
std::string to_string(const Tuple& t);

}  // namespace aspen::layer
