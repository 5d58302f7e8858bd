// The zone logic of aspen-dns: what an authoritative server answers to one question, read
// from the record sets in the KV store (dns/records.h). Sans-I/O apart from the reads.
//
//   - a name in no served zone: REFUSED, not authoritative (aspen-dns never recurses);
//   - the type asked for at the name: the answer; ANY: every set at the name;
//   - a CNAME at the name (and another type asked): the CNAME, then the target's answer if
//     the target is in a served zone, at most kMaxCnameChain links;
//   - a name that exists (records at or below it) without the type: NODATA (NOERROR, no
//     answer, the zone's SOA in the authority section, RFC 2308);
//   - a name that does not exist: the wildcard "*.<closest encloser>" answers if it exists
//     (RFC 4592: only for names that do not exist, including empty non-terminals); else
//     NXDOMAIN with the SOA;
//   - AXFR/IXFR are refused, classes other than IN (and ANY) are refused.
// No delegation: aspen-dns answers for everything below a zone's apex itself; NS records
// below the apex are served as data, not as referrals.
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.h"
#include "dns/message.h"
#include "dns/records.h"

namespace aspen::dns {

inline constexpr size_t kMaxCnameChain = 8;

struct Answer {
  uint8_t rcode = rcode::kNoError;
  bool is_authoritative = false;
  std::vector<Record> answers;
  std::vector<Record> authority;
};

// `zones` are the zones served (already filtered by the operator's --zone list).
// Errors are store failures (the server answers SERVFAIL).
Result<Answer> resolve(RecordReader& reader, const std::vector<Zone>& zones, const Question& question);

}  // namespace aspen::dns
