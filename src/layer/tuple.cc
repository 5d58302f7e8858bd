#include "layer/tuple.h"

#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"

namespace aspen::layer {

namespace {

constexpr uint8_t kNullCode = 0x00;
constexpr uint8_t kBytesCode = 0x01;
constexpr uint8_t kStringCode = 0x02;
constexpr uint8_t kNestedCode = 0x05;
constexpr uint8_t kNegBigIntCode = 0x0b;
constexpr uint8_t kIntZeroCode = 0x14;
constexpr uint8_t kPosBigIntCode = 0x1d;
constexpr uint8_t kFloatCode = 0x20;
constexpr uint8_t kDoubleCode = 0x21;
constexpr uint8_t kFalseCode = 0x26;
constexpr uint8_t kTrueCode = 0x27;
constexpr uint8_t kUuidCode = 0x30;
constexpr uint8_t kVersionstampCode = 0x33;
constexpr uint8_t kEscape = 0xff;

size_t byte_length(uint64_t v) {
  size_t n = 0;
  while (v != 0) {
    ++n;
    v >>= 8;
  }
  return n;
}

void put_be(std::string& out, uint64_t v, size_t n) {
  for (size_t i = n; i > 0; --i) out.push_back(static_cast<char>((v >> (8 * (i - 1))) & 0xff));
}

// Null bytes inside byte and unicode strings become 0x00 0xff, so the terminating 0x00 sorts
// a string before every longer string it is a prefix of.
void put_escaped(std::string& out, uint8_t code, std::string_view s) {
  out.push_back(static_cast<char>(code));
  for (char c : s) {
    out.push_back(c);
    if (c == '\0') out.push_back(static_cast<char>(kEscape));
  }
  out.push_back('\0');
}

void put_integer(std::string& out, const Integer& v) {
  size_t n = byte_length(v.magnitude);
  if (!v.is_negative) {
    out.push_back(static_cast<char>(kIntZeroCode + n));
    put_be(out, v.magnitude, n);
    return;
  }
  ASPEN_ASSERT(n > 0);  // a negative zero is not canonical (Integer::of never makes one)
  // One's complement of the magnitude in n bytes: larger magnitudes sort first.
  out.push_back(static_cast<char>(kIntZeroCode - n));
  put_be(out, ~v.magnitude, n);
}

void put_big_integer(std::string& out, const BigInteger& v) {
  // Only magnitudes of 9..255 bytes have this form; anything shorter is an Integer.
  ASPEN_ASSERT(v.magnitude_be.size() > 8 && v.magnitude_be.size() <= 255 && v.magnitude_be[0] != '\0');
  if (!v.is_negative) {
    out.push_back(static_cast<char>(kPosBigIntCode));
    out.push_back(static_cast<char>(v.magnitude_be.size()));
    out += v.magnitude_be;
    return;
  }
  out.push_back(static_cast<char>(kNegBigIntCode));
  out.push_back(static_cast<char>(v.magnitude_be.size() ^ 0xff));
  for (char c : v.magnitude_be) out.push_back(static_cast<char>(~static_cast<uint8_t>(c)));
}

// IEEE bits big-endian; negatives have every bit flipped, positives only the sign bit, which
// turns the sign-magnitude order into an unsigned one (the IEEE total order).
template <typename U>
void put_ieee(std::string& out, uint8_t code, U bits) {
  constexpr U kSign = U{1} << (sizeof(U) * 8 - 1);
  bits = (bits & kSign) ? ~bits : (bits ^ kSign);
  out.push_back(static_cast<char>(code));
  put_be(out, bits, sizeof(U));
}

template <typename U>
U ieee_from_encoded(U bits) {
  constexpr U kSign = U{1} << (sizeof(U) * 8 - 1);
  return (bits & kSign) ? (bits ^ kSign) : ~bits;
}

void append_impl(std::string& out, const Element& e, bool is_nested, std::vector<size_t>* stamps) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Null>) {
          out.push_back(static_cast<char>(kNullCode));
          // Inside a nested tuple a bare 0x00 ends the tuple; null is escaped.
          if (is_nested) out.push_back(static_cast<char>(kEscape));
        } else if constexpr (std::is_same_v<T, Bytes>) {
          put_escaped(out, kBytesCode, v.data);
        } else if constexpr (std::is_same_v<T, std::string>) {
          put_escaped(out, kStringCode, v);
        } else if constexpr (std::is_same_v<T, Tuple>) {
          out.push_back(static_cast<char>(kNestedCode));
          for (const Element& child : v) append_impl(out, child, true, stamps);
          out.push_back('\0');
        } else if constexpr (std::is_same_v<T, Integer>) {
          put_integer(out, v);
        } else if constexpr (std::is_same_v<T, BigInteger>) {
          put_big_integer(out, v);
        } else if constexpr (std::is_same_v<T, Float>) {
          put_ieee(out, kFloatCode, std::bit_cast<uint32_t>(v.value));
        } else if constexpr (std::is_same_v<T, Double>) {
          put_ieee(out, kDoubleCode, std::bit_cast<uint64_t>(v.value));
        } else if constexpr (std::is_same_v<T, bool>) {
          out.push_back(static_cast<char>(v ? kTrueCode : kFalseCode));
        } else if constexpr (std::is_same_v<T, Uuid>) {
          out.push_back(static_cast<char>(kUuidCode));
          out.append(reinterpret_cast<const char*>(v.bytes.data()), v.bytes.size());
        } else {
          static_assert(std::is_same_v<T, Versionstamp>);
          out.push_back(static_cast<char>(kVersionstampCode));
          if (stamps && !v.is_complete()) stamps->push_back(out.size());
          out.append(reinterpret_cast<const char*>(v.tr_version.data()), v.tr_version.size());
          put_be(out, v.user_version, 2);
        }
      },
      e.value);
}

// --- decoding untrusted bytes ---

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  Result<Tuple> top_level() {
    Tuple t;
    while (pos_ < in_.size()) {
      auto e = element(0, false);
      if (!e) return std::unexpected(e.error());
      t.push_back(std::move(*e));
    }
    return t;
  }

 private:
  std::unexpected<Error> bad(std::string_view why) const {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("malformed tuple at byte {}: {}", pos_, why));
  }
  uint8_t at(size_t i) const { return static_cast<uint8_t>(in_[i]); }
  bool has(size_t n) const { return in_.size() - pos_ >= n; }

  uint64_t get_be(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | at(pos_ + i);
    pos_ += n;
    return v;
  }

  // A 0x00-terminated string with 0x00 0xff escapes; pos_ is past the type code.
  Result<std::string> escaped() {
    std::string s;
    while (pos_ < in_.size()) {
      char c = in_[pos_++];
      if (c != '\0') {
        s.push_back(c);
        continue;
      }
      if (pos_ < in_.size() && at(pos_) == kEscape) {
        s.push_back('\0');
        ++pos_;
        continue;
      }
      return s;
    }
    return bad("string without its terminating 0x00");
  }

  // The big-integer forms: a magnitude of `len` bytes (inverted when negative), normalized
  // to an Integer when it fits 64 bits (Python writes 2^64-1 this way).
  Result<Element> big_integer(bool is_negative) {
    if (!has(1)) return bad("big integer without a length");
    size_t len = at(pos_++);
    if (is_negative) len ^= 0xff;
    if (!has(len)) return bad("big integer shorter than its length");
    std::string mag(in_.substr(pos_, len));
    pos_ += len;
    if (is_negative) {
      for (char& c : mag) c = static_cast<char>(~static_cast<uint8_t>(c));
    }
    size_t first = mag.find_first_not_of('\0');
    if (first == std::string::npos) return Element(Integer{});
    mag.erase(0, first);
    if (mag.size() <= 8) {
      uint64_t v = 0;
      for (char c : mag) v = (v << 8) | static_cast<uint8_t>(c);
      return Element(Integer{is_negative, v});
    }
    return Element(BigInteger{is_negative, std::move(mag)});
  }

  Result<Element> element(size_t depth, bool is_nested) {
    ASPEN_ASSERT(pos_ < in_.size());
    uint8_t code = at(pos_++);
    if (code == kNullCode) {
      // Only reached at top level: the nested loop handles 0x00 itself.
      ASPEN_ASSERT(!is_nested);
      return Element(Null{});
    }
    if (code == kBytesCode) {
      auto s = escaped();
      if (!s) return std::unexpected(s.error());
      return Element(Bytes{std::move(*s)});
    }
    if (code == kStringCode) {
      auto s = escaped();
      if (!s) return std::unexpected(s.error());
      return Element(std::move(*s));
    }
    if (code == kNestedCode) return nested(depth + 1);
    if (code > kNegBigIntCode && code < kPosBigIntCode) {
      size_t n = code >= kIntZeroCode ? code - kIntZeroCode : kIntZeroCode - code;
      if (!has(n)) return bad("integer shorter than its type code says");
      uint64_t v = get_be(n);
      if (code >= kIntZeroCode) return Element(Integer{false, v});
      uint64_t mask = n == 8 ? ~uint64_t{0} : ((uint64_t{1} << (8 * n)) - 1);
      uint64_t mag = ~v & mask;
      return Element(Integer{mag != 0, mag});
    }
    if (code == kPosBigIntCode || code == kNegBigIntCode) return big_integer(code == kNegBigIntCode);
    if (code == kFloatCode) {
      if (!has(4)) return bad("float shorter than 4 bytes");
      return Element(Float{std::bit_cast<float>(ieee_from_encoded(static_cast<uint32_t>(get_be(4))))});
    }
    if (code == kDoubleCode) {
      if (!has(8)) return bad("double shorter than 8 bytes");
      return Element(Double{std::bit_cast<double>(ieee_from_encoded(get_be(8)))});
    }
    if (code == kFalseCode) return Element(false);
    if (code == kTrueCode) return Element(true);
    if (code == kUuidCode) {
      if (!has(16)) return bad("UUID shorter than 16 bytes");
      Uuid u;
      std::memcpy(u.bytes.data(), in_.data() + pos_, 16);
      pos_ += 16;
      return Element(u);
    }
    if (code == kVersionstampCode) {
      if (!has(12)) return bad("versionstamp shorter than 12 bytes");
      Versionstamp v;
      std::memcpy(v.tr_version.data(), in_.data() + pos_, 10);
      pos_ += 10;
      v.user_version = static_cast<uint16_t>(get_be(2));
      return Element(v);
    }
    --pos_;
    return bad(fmt::format("unknown type code 0x{:02x}", code));
  }

  Result<Element> nested(size_t depth) {
    if (depth > limits::kMaxTupleNestingDepth) return bad(fmt::format("nested deeper than {}", limits::kMaxTupleNestingDepth));
    Tuple t;
    while (pos_ < in_.size()) {
      if (at(pos_) == kNullCode) {
        if (pos_ + 1 < in_.size() && at(pos_ + 1) == kEscape) {
          t.emplace_back(Null{});
          pos_ += 2;
          continue;
        }
        ++pos_;  // the terminator
        return Element(std::move(t));
      }
      auto e = element(depth, true);
      if (!e) return std::unexpected(e.error());
      t.push_back(std::move(*e));
    }
    return bad("nested tuple without its terminating 0x00");
  }

  std::string_view in_;
  size_t pos_ = 0;
};

void repr(std::string& out, const Element& e);

void repr_bytes(std::string& out, std::string_view s) {
  for (char c : s) {
    auto u = static_cast<uint8_t>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
}

void repr_tuple(std::string& out, const Tuple& t) {
  out.push_back('(');
  for (size_t i = 0; i < t.size(); ++i) {
    if (i > 0) out += ", ";
    repr(out, t[i]);
  }
  if (t.size() == 1) out.push_back(',');
  out.push_back(')');
}

void repr(std::string& out, const Element& e) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Null>) {
          out += "None";
        } else if constexpr (std::is_same_v<T, Bytes>) {
          out += "b\"";
          repr_bytes(out, v.data);
          out += "\"";
        } else if constexpr (std::is_same_v<T, std::string>) {
          out += "\"";
          repr_bytes(out, v);
          out += "\"";
        } else if constexpr (std::is_same_v<T, Tuple>) {
          repr_tuple(out, v);
        } else if constexpr (std::is_same_v<T, Integer>) {
          out += fmt::format("{}{}", v.is_negative ? "-" : "", v.magnitude);
        } else if constexpr (std::is_same_v<T, BigInteger>) {
          out += v.is_negative ? "-0x" : "0x";
          for (char c : v.magnitude_be) out += fmt::format("{:02x}", static_cast<uint8_t>(c));
        } else if constexpr (std::is_same_v<T, Float>) {
          out += fmt::format("{}f", v.value);
        } else if constexpr (std::is_same_v<T, Double>) {
          out += fmt::format("{}", v.value);
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "True" : "False";
        } else if constexpr (std::is_same_v<T, Uuid>) {
          out += "UUID(";
          for (uint8_t b : v.bytes) out += fmt::format("{:02x}", b);
          out += ")";
        } else {
          out += "Versionstamp(";
          for (uint8_t b : v.tr_version) out += fmt::format("{:02x}", b);
          out += fmt::format(", {})", v.user_version);
        }
      },
      e.value);
}

}  // namespace

Integer Integer::of(int64_t v) {
  if (v >= 0) return Integer{false, static_cast<uint64_t>(v)};
  // -(v) without overflow at INT64_MIN.
  return Integer{true, ~static_cast<uint64_t>(v) + 1};
}

std::optional<int64_t> Integer::as_int64() const {
  constexpr uint64_t kMaxPositive = static_cast<uint64_t>(INT64_MAX);
  if (!is_negative) {
    if (magnitude > kMaxPositive) return std::nullopt;
    return static_cast<int64_t>(magnitude);
  }
  if (magnitude > kMaxPositive + 1) return std::nullopt;
  return static_cast<int64_t>(~magnitude + 1);
}

Versionstamp Versionstamp::incomplete(uint16_t user_version) {
  Versionstamp v;
  v.tr_version.fill(0xff);
  v.user_version = user_version;
  return v;
}

bool Versionstamp::is_complete() const {
  for (uint8_t b : tr_version) {
    if (b != 0xff) return true;
  }
  return false;
}

void append(std::string& out, const Element& e) { append_impl(out, e, false, nullptr); }

std::string pack(const Tuple& t) {
  std::string out;
  for (const Element& e : t) append_impl(out, e, false, nullptr);
  return out;
}

Result<Tuple> unpack(std::string_view bytes) { return Reader(bytes).top_level(); }

Result<std::string> pack_with_versionstamp(const Tuple& t) {
  std::string out;
  std::vector<size_t> stamps;
  for (const Element& e : t) append_impl(out, e, false, &stamps);
  if (stamps.size() != 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("pack_with_versionstamp needs exactly one incomplete versionstamp, found {}",
                                  stamps.size()));
  }
  auto offset = static_cast<uint32_t>(stamps[0]);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((offset >> (8 * i)) & 0xff));
  return out;
}

KeyRange tuple_range(const Tuple& prefix) {
  std::string p = pack(prefix);
  return KeyRange{p + '\x00', p + '\xff'};
}

std::string to_string(const Tuple& t) {
  std::string out;
  repr_tuple(out, t);
  return out;
}

}  // namespace aspen::layer
