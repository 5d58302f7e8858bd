#include "core/encoding.h"

#include <fmt/format.h>

namespace aspen {

void put_u32_be(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_u64_be(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_length_prefixed(std::string& out, std::string_view bytes) {
  put_varint(out, bytes.size());
  out.append(bytes);
}

Result<std::string_view> Decoder::get_bytes(size_t n) {
  if (in_.size() < n) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("truncated input: need {} bytes, have {}", n, in_.size()));
  }
  std::string_view out = in_.substr(0, n);
  in_.remove_prefix(n);
  return out;
}

Result<uint32_t> Decoder::get_u32_be() {
  auto bytes = get_bytes(4);
  if (!bytes) return std::unexpected(bytes.error());
  uint32_t v = 0;
  for (unsigned char c : *bytes) v = (v << 8) | c;
  return v;
}

Result<uint64_t> Decoder::get_u64_be() {
  auto bytes = get_bytes(8);
  if (!bytes) return std::unexpected(bytes.error());
  uint64_t v = 0;
  for (unsigned char c : *bytes) v = (v << 8) | c;
  return v;
}

Result<uint64_t> Decoder::get_varint() {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (in_.empty()) return make_error(ErrorCode::kCorruption, "truncated varint");
    auto byte = static_cast<unsigned char>(in_.front());
    in_.remove_prefix(1);
    // The 10th byte may carry only the top bit of a 64-bit value.
    if (i == 9 && byte > 1) return make_error(ErrorCode::kCorruption, "varint overflows 64 bits");
    v |= uint64_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80) == 0) return v;
  }
  return make_error(ErrorCode::kCorruption, "varint longer than 10 bytes");
}

Result<std::string_view> Decoder::get_length_prefixed(size_t max_size_bytes) {
  auto n = get_varint();
  if (!n) return std::unexpected(n.error());
  if (*n > max_size_bytes) {
    return make_error(ErrorCode::kMessageTooLarge,
                      fmt::format("length {} exceeds the limit of {} bytes", *n, max_size_bytes));
  }
  return get_bytes(static_cast<size_t>(*n));
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string format_mib(uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    const auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

Result<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return make_error(ErrorCode::kInvalidArgument, "hex has an odd length");
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]);
    const int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return make_error(ErrorCode::kInvalidArgument, "hex has a non-hex character");
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

}  // namespace aspen
