// Byte encoding helpers: fixed-width big-endian integers, LEB128 varints, hex.
//
// Used wherever Aspen writes bytes that another process or a later version will read (frame
// headers, storage keys, command payloads). Decoders never trust their input: they return an
// error instead of reading past the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace aspen {

void put_u32_be(std::string& out, uint32_t v);
void put_u64_be(std::string& out, uint64_t v);
void put_varint(std::string& out, uint64_t v);
// Varint length followed by the bytes.
void put_length_prefixed(std::string& out, std::string_view bytes);

// A cursor over untrusted bytes. Every getter consumes on success and fails cleanly on short
// or malformed input (never reads out of bounds).
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  Result<uint32_t> get_u32_be();
  Result<uint64_t> get_u64_be();
  Result<uint64_t> get_varint();
  Result<std::string_view> get_length_prefixed(size_t max_size_bytes);
  Result<std::string_view> get_bytes(size_t n);

  size_t remaining() const noexcept { return in_.size(); }
  bool is_empty() const noexcept { return in_.empty(); }

 private:
  std::string_view in_;
};

// Lowercase hex of the bytes, and back (either case; InvalidArgument on an odd length or a
// character that is not a hex digit).
std::string to_hex(std::string_view bytes);
// The smallest key greater than every key that starts with `prefix`: the exclusive end of a
// prefix range. "" when there is none (an empty or all-0xff prefix): the end of the keyspace.
std::string prefix_end(std::string_view prefix);
Result<std::string> from_hex(std::string_view hex);
// A size for people: "17.1 MiB" (one decimal, binary mebibytes), as errors and logs give it.
std::string format_mib(uint64_t bytes);

}  // namespace aspen
