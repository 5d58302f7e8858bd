// The DNS message format as mDNS (RFC 6762) uses it, and no more: a header, questions, and
// PTR, SRV, TXT and A records (other types are kept as opaque data so that a message that
// carries them still decodes). Written for mDNS discovery (cluster/mdns.h), which reads
// datagrams anyone on the LAN may send: the decoder takes untrusted bytes and refuses, with
// InvalidArgument naming the problem, anything that crosses a limit below or does not parse.
// It follows name compression pointers only backwards and at most kMaxMdnsNameJumps times,
// so no datagram makes it loop or read out of bounds. The encoder writes names uncompressed
// (our messages are small) and refuses a message larger than the size it is given.
//
// Not src/dns's codec: the layering (core < ... < cluster < node < client < ... < layers)
// puts src/dns above the node, so discovery cannot use it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace aspen::cluster {

// One datagram read from the mDNS socket (a jumbo frame's payload); larger ones are refused
// unread.
inline constexpr size_t kMaxMdnsDatagramBytes = 9000;
// What this node sends: fits an Ethernet MTU, so it is never fragmented.
inline constexpr size_t kMaxMdnsSendBytes = 1500;
// Questions and records (all sections together) decoded from one message; past these the
// message is refused.
inline constexpr size_t kMaxMdnsQuestions = 32;
inline constexpr size_t kMaxMdnsRecords = 64;
// RFC 1035: a label is 1-63 octets, a name at most 255 octets on the wire.
inline constexpr size_t kMaxMdnsLabelBytes = 63;
inline constexpr size_t kMaxMdnsNameWireBytes = 255;
// Compression pointers followed while reading one name.
inline constexpr size_t kMaxMdnsNameJumps = 16;
// Character-strings of one TXT record.
inline constexpr size_t kMaxMdnsTxtStrings = 16;
static_assert(kMaxMdnsSendBytes <= kMaxMdnsDatagramBytes);

inline constexpr uint16_t kDnsTypeA = 1;
inline constexpr uint16_t kDnsTypePtr = 12;
inline constexpr uint16_t kDnsTypeTxt = 16;
inline constexpr uint16_t kDnsTypeSrv = 33;
inline constexpr uint16_t kDnsTypeAny = 255;
inline constexpr uint16_t kDnsClassIn = 1;

// A domain name as its labels ("_aspen", "_udp", "local"). Labels may hold any byte but are
// compared without regard to ASCII case (RFC 1035 4.1.4 / RFC 6762 16).
struct DnsName {
  std::vector<std::string> labels;

  static DnsName from_dotted(std::string_view dotted);  // "a.b.local" (no escapes)
  std::string to_string() const;                        // dotted, for logs
  bool equals(const DnsName& other) const;              // case-insensitive
  // True if `suffix`'s labels end this name (case-insensitive).
  bool ends_with(const DnsName& suffix) const;
  friend bool operator==(const DnsName&, const DnsName&) = default;
};

struct DnsQuestion {
  DnsName name;
  uint16_t type = kDnsTypePtr;
  uint16_t rclass = kDnsClassIn;
  bool is_unicast_response = false;  // the QU bit (top bit of the class)
  friend bool operator==(const DnsQuestion&, const DnsQuestion&) = default;
};

struct DnsSrv {
  uint16_t priority = 0;
  uint16_t weight = 0;
  uint16_t port = 0;
  DnsName target;
  friend bool operator==(const DnsSrv&, const DnsSrv&) = default;
};

struct DnsRecord {
  DnsName name;
  uint16_t type = kDnsTypeA;
  uint16_t rclass = kDnsClassIn;
  bool is_cache_flush = false;  // top bit of the class in mDNS answers
  uint32_t ttl_s = 0;
  // The data, by type: PTR -> ptr; SRV -> srv; TXT -> txt; A -> a; any other -> raw.
  DnsName ptr;
  DnsSrv srv;
  std::vector<std::string> txt;
  std::array<uint8_t, 4> a{};
  std::string raw;
  friend bool operator==(const DnsRecord&, const DnsRecord&) = default;
};

struct DnsMessage {
  uint16_t id = 0;  // 0 in mDNS
  bool is_response = false;
  bool is_authoritative = false;
  std::vector<DnsQuestion> questions;
  std::vector<DnsRecord> answers;
  // The authority and additional sections, read together (mDNS discovery uses both the same
  // way); written as additional records.
  std::vector<DnsRecord> additionals;
  friend bool operator==(const DnsMessage&, const DnsMessage&) = default;
};

// The message's wire form, or InvalidArgument if a name or label is too long, a record
// cannot be written, or the whole is over `max_bytes`.
Result<std::string> encode_dns_message(const DnsMessage& message, size_t max_bytes = kMaxMdnsSendBytes);
// Reads one datagram. InvalidArgument says why it was refused.
Result<DnsMessage> decode_dns_message(std::string_view bytes);

}  // namespace aspen::cluster
