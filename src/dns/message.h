// DNS messages (RFC 1035 section 4) for aspen-dns: decode bytes from the network into a
// Message, encode a Message into bytes under a size limit with name compression.
//
// Decoding is bounded: at most kMaxMessageBytes of input, at most kMaxRecordsPerMessage
// records, names read by read_wire_name (dns/name.h). The rdata of the types aspen-dns
// knows (NS, CNAME, SOA, MX, SRV) is stored decompressed, so a record's rdata stands on its
// own; other types keep their bytes as they came. fuzz/harness/dns_message.cc fuzzes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "dns/name.h"

namespace aspen::dns {

inline constexpr size_t kMaxMessageBytes = 65535;       // the TCP length prefix is 16 bits
inline constexpr size_t kMaxRecordsPerMessage = 4096;   // all sections together
inline constexpr size_t kMinUdpPayloadBytes = 512;      // without EDNS (RFC 1035 4.2.1)
// What aspen-dns offers and sends at most over UDP with EDNS: the size that avoids IP
// fragmentation on common paths (DNS flag day 2020).
inline constexpr size_t kMaxUdpPayloadBytes = 1232;

namespace type {
inline constexpr uint16_t kA = 1;
inline constexpr uint16_t kNs = 2;
inline constexpr uint16_t kCname = 5;
inline constexpr uint16_t kSoa = 6;
inline constexpr uint16_t kMx = 15;
inline constexpr uint16_t kTxt = 16;
inline constexpr uint16_t kAaaa = 28;
inline constexpr uint16_t kSrv = 33;
inline constexpr uint16_t kOpt = 41;
inline constexpr uint16_t kIxfr = 251;
inline constexpr uint16_t kAxfr = 252;
inline constexpr uint16_t kAny = 255;
}  // namespace type
inline constexpr uint16_t kClassIn = 1;
inline constexpr uint16_t kClassAny = 255;

namespace rcode {
inline constexpr uint8_t kNoError = 0;
inline constexpr uint8_t kFormErr = 1;
inline constexpr uint8_t kServFail = 2;
inline constexpr uint8_t kNxDomain = 3;
inline constexpr uint8_t kNotImp = 4;
inline constexpr uint8_t kRefused = 5;
}  // namespace rcode

// "A", "AAAA", ... for the types above; "TYPE<n>" otherwise (RFC 3597).
std::string type_name(uint16_t type);
// The inverse for the types aspen-dns stores (case-insensitive); nullopt otherwise.
std::optional<uint16_t> type_from_name(std::string_view name);

struct Header {
  uint16_t id = 0;
  bool is_response = false;  // QR
  uint8_t opcode = 0;
  bool is_authoritative = false;  // AA
  bool is_truncated = false;      // TC
  bool is_recursion_desired = false;
  bool is_recursion_available = false;
  uint8_t rcode = 0;  // the low 4 bits; EDNS carries the rest (aspen-dns never needs them)
};

struct Question {
  Name name;
  uint16_t type = 0;
  uint16_t klass = kClassIn;
};

struct Record {
  Name name;
  uint16_t type = 0;
  uint16_t klass = kClassIn;
  uint32_t ttl = 0;
  std::string rdata;  // wire form, names uncompressed
};

struct Message {
  Header header;
  std::vector<Question> questions;
  std::vector<Record> answers;
  std::vector<Record> authority;
  std::vector<Record> additional;

  // The OPT pseudo-record of the additional section, if any (RFC 6891).
  const Record* opt() const;
};

// Decodes a whole message; trailing bytes after the last record are refused.
Result<Message> decode_message(std::string_view bytes);

// Reads only the 12-byte header (to answer FORMERR to a message that does not decode).
std::optional<Header> decode_header(std::string_view bytes);

struct Encoded {
  std::string bytes;
  bool is_truncated = false;  // the records did not fit: header and questions only, TC set
};
// Encodes with name compression. When the message exceeds max_bytes the answer, authority
// and additional sections are left out except the OPT record, and TC is set (RFC 2181 9:
// a resolver then asks again over TCP). max_bytes is at most kMaxMessageBytes.
Encoded encode_message(const Message& message, size_t max_bytes);

}  // namespace aspen::dns
