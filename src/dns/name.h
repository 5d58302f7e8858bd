// Domain names for aspen-dns (docs/dns.md): a name is a list of labels, leftmost first, the
// root implied. Names from the network keep the case they arrived in (the question is
// echoed as asked); comparisons and storage use the lowercase form (RFC 4343).
//
// Two readers of untrusted bytes live here: read_wire_name (a name inside a DNS message,
// with compression pointers followed a bounded number of times, never backwards past the
// start) and parse_name (text from an operator or from the store, restricted to the
// characters aspen-dns stores: letters, digits, '-', '_', and '*' as a whole leftmost label).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace aspen::dns {

inline constexpr size_t kMaxNameWireBytes = 255;  // RFC 1035 2.3.4, length bytes and the root included
inline constexpr size_t kMaxLabelBytes = 63;
// Compression pointers followed while reading one name. A name has at most 127 labels, so a
// legal message never needs more; a loop of pointers ends here.
inline constexpr size_t kMaxCompressionJumps = 128;

struct Name {
  std::vector<std::string> labels;  // leftmost first; empty = the root

  bool is_root() const { return labels.empty(); }
  // Bytes of the uncompressed wire form (length bytes, labels, the root's zero).
  size_t wire_size() const;
  // "www.example.test." (the root is "."); bytes outside [!-~] and '.' '\' inside a label are
  // written \DDD, as in RFC 1035 5.1.
  std::string to_text() const;
  // The same name in lowercase (ASCII only, RFC 4343).
  Name lower() const;
  // The name without its leftmost label (the root stays the root).
  Name parent() const;
  // Whether this name is `zone` or below it (case-insensitive).
  bool is_subdomain_of(const Name& zone) const;
  bool is_wildcard() const { return !labels.empty() && labels.front() == "*"; }
  // Case-insensitive equality.
  bool equals(const Name& other) const;
};

// Operator or stored text: "www.example.test." or "www.example.test" (both absolute), "." the
// root. Labels of 1..63 bytes of [A-Za-z0-9_-], '*' only as the whole leftmost label; at
// most 255 bytes on the wire. Returned in lowercase. InvalidArgument names what is wrong.
Result<Name> parse_name(std::string_view text);

// Whether a label is one aspen-dns can store (the parse_name alphabet, lowercase).
bool is_storable_label(std::string_view label);

// Reads a name at `offset` of `message`, following compression pointers. On success
// `offset` moves past the name where it began (past the first pointer, if any).
Result<Name> read_wire_name(std::string_view message, size_t& offset);

// Appends the uncompressed wire form.
void append_wire_name(std::string& out, const Name& name);

}  // namespace aspen::dns
