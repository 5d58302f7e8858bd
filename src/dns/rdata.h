// Record data of the types aspen-dns stores (A, AAAA, CNAME, TXT, SRV, MX, NS, SOA), in the
// text an operator writes (`aspen-cli dns set`) and in the store, turned into wire form and
// back. Text forms (docs/dns.md):
//   A      192.0.2.1                 AAAA   2001:db8::1
//   CNAME  target.example.test.      NS     ns1.example.test.
//   MX     10 mail.example.test.     SRV    10 5 5060 sip.example.test.   (priority weight port target)
//   TXT    any printable text without line breaks, up to kMaxTxtBytes (sent as 255-byte strings)
//   SOA    ns1.example.test. hostmaster.example.test. SERIAL REFRESH RETRY EXPIRE MINIMUM
// Names in record data are absolute (a missing trailing dot is added) and never wildcards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "dns/name.h"

namespace aspen::dns {

inline constexpr size_t kMaxTxtBytes = 4000;

// Wire rdata for `text`, or InvalidArgument saying what a value of that type looks like.
Result<std::string> rdata_from_text(uint16_t type, std::string_view text);
// The text form of wire rdata (the inverse of rdata_from_text for what it produces).
std::string rdata_to_text(uint16_t type, std::string_view rdata);
// The name a CNAME points to.
std::optional<Name> cname_target(std::string_view rdata);

struct Soa {
  Name mname;
  Name rname;
  uint32_t serial = 1;
  uint32_t refresh_s = 3600;
  uint32_t retry_s = 600;
  uint32_t expire_s = 86400;
  uint32_t minimum_s = 60;  // the TTL of negative answers (RFC 2308)
};
std::string soa_to_rdata(const Soa& soa);
Result<Soa> soa_from_text(std::string_view text);
std::string soa_to_text(const Soa& soa);

}  // namespace aspen::dns
