// DNS discovery's records and decisions (docs/discovery.md, "DNS discovery"): which nodes an
// SRV/TXT answer names, and what in it is refused. Pure: the node shell
// (node/dns_discovery_service.h) asks the DNS with c-ares and hands the answers here.
//
// The records. An SRV name (for example `_aspen._udp.example.test.`; RFC 2782: service
// `_aspen`, protocol `_udp` because Aspen speaks QUIC over UDP) lists bootstrap members, one
// SRV record each: its target is a host name and its port the node's UDP port. The node id
// and public key live in a TXT record at the SRV target's name:
//
//   _aspen._udp.example.test.  300 IN SRV 0 0 7001 node-1.example.test.
//   node-1.example.test.       300 IN A   10.0.0.1
//   node-1.example.test.       300 IN TXT "aspen id=1 key=<public key>"
//
// TXT format: `aspen` then space-separated `name=value` fields: `id` (the node id, a non-zero
// decimal integer), `key` (the node's public key as aspen-node prints it, 52 base32
// characters, or 64 hex digits) and, optionally, `port` (to tell apart several nodes that
// share one target name: the TXT applies to the SRV record with that port). Each field at
// most once; fields with other names are ignored, so later versions may add some. TXT
// records that do not start with `aspen` (SPF, ...) are not ours and are skipped.
//
// None of it grants membership or trust: a node found here is an address to dial under the
// key the TXT names (the QUIC handshake checks it) and a candidate for `cluster add-learner
// ID`. Everything is bounded (the limits below); what crosses a limit or does not parse is
// refused, counted by reason, and never stops the node.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/limits.h"
#include "core/types.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::cluster {

inline constexpr std::string_view kDnsDiscoverySource = "dns";

// SRV records taken from one answer (the rest are refused as too_many); each target costs
// three more lookups (TXT, A, AAAA).
inline constexpr size_t kMaxDnsSrvRecords = 32;
// TXT records read at one target name; the rest are refused as too_many.
inline constexpr size_t kMaxDnsTxtRecordsPerName = 16;
// One TXT record, its character-strings joined. A valid one is under 120 bytes.
inline constexpr size_t kMaxDnsTxtRecordBytes = 512;
// Addresses taken from one target's A and AAAA answers.
inline constexpr size_t kMaxDnsAddrsPerTarget = 8;
static_assert(kMaxDnsAddrsPerTarget <= limits::kMaxNodeAddresses);
// One DNS answer (UDP, or TCP after truncation, may be up to 64 KiB): larger ones are refused
// unread. 32 SRV records with long names fit in well under 8 KiB.
inline constexpr size_t kMaxDnsAnswerBytes = 16384;

// Why a record was taken or refused: the label of aspen_dns_discovery_records_total.
enum class DnsRecordVerdict : uint8_t {
  kAccepted,   // a node: id, key and addresses
  kBadTxt,     // an `aspen` TXT record that does not parse (the id, a field, the syntax)
  kBadKey,     // an `aspen` TXT record whose key is not a public key
  kNoTxt,      // an SRV record whose target has no `aspen` TXT record for its port
  kAmbiguous,  // several TXT records for one SRV record, or one id under two keys
  kNoAddress,  // an SRV record whose target has no A or AAAA address
  kTooMany,    // records past kMaxDnsSrvRecords / kMaxDnsTxtRecordsPerName
  kOversized,  // a TXT record past kMaxDnsTxtRecordBytes, or an answer past kMaxDnsAnswerBytes
  kConflict,   // the node's id is known under another key (records, --peers, gossip, ...)
};
inline constexpr size_t kDnsRecordVerdictCount = 9;
std::string_view dns_record_verdict_name(DnsRecordVerdict verdict);

// --- names -----------------------------------------------------------------------------

// A host or SRV name: labels of 1-63 letters, digits, '-' or '_', separated by dots, at most
// 253 characters, an optional final dot. InvalidArgument says what is wrong.
Status validate_dns_name(std::string_view name);

// --- TXT -------------------------------------------------------------------------------

struct AspenTxt {
  NodeId node_id = kNoNode;
  transport::PublicKey key;
  std::optional<uint16_t> port;  // the SRV record this TXT belongs to, when a target has several
  friend bool operator==(const AspenTxt&, const AspenTxt&) = default;
};

// Does the record claim to be ours (first word `aspen`)? Other TXT records are skipped.
bool is_aspen_txt(std::string_view record);
// Why an `aspen` TXT record was refused: kBadTxt, kBadKey or kOversized, and a message that
// names the field and quotes at most 64 printable bytes of the record.
struct TxtProblem {
  DnsRecordVerdict verdict = DnsRecordVerdict::kBadTxt;
  std::string message;
};
std::expected<AspenTxt, TxtProblem> parse_aspen_txt(std::string_view record);
// The canonical text: "aspen id=<id> key=<base32>[ port=<port>]".
std::string format_aspen_txt(const AspenTxt& txt);
// A public key as 52 base32 characters (aspen-node's form) or 64 hex digits.
Result<transport::PublicKey> parse_txt_key(std::string_view text);
// At most `max_bytes` of `text` for a log line, non-printable bytes as \xNN.
std::string printable_excerpt(std::string_view text, size_t max_bytes);

// --- answers ---------------------------------------------------------------------------

struct DnsSrvRecord {
  std::string target;  // lower case, without the final dot
  uint16_t port = 0;
  uint16_t priority = 0;
  uint16_t weight = 0;
  friend bool operator==(const DnsSrvRecord&, const DnsSrvRecord&) = default;
};

// Sorts by priority (lowest first), then weight (highest first), target and port; drops exact
// duplicates and records with port 0; keeps the first kMaxDnsSrvRecords. Returns how many
// records were dropped for the limit. The resolver looks up the targets of what is kept.
size_t take_srv_records(std::vector<DnsSrvRecord>& records);

struct DnsTargetAnswer {
  std::vector<std::string> txts;  // each TXT record, its strings joined
  std::vector<std::string> ips;   // A and AAAA answers as text
  size_t oversized_answers = 0;   // answers for this target refused for size (counted once each)
};

struct DnsLookupAnswer {
  std::vector<DnsSrvRecord> srv;                   // after take_srv_records
  size_t srv_dropped = 0;                          // take_srv_records' count
  std::map<std::string, DnsTargetAnswer> targets;  // by SRV target
};

struct DnsFoundPeer {
  NodeId node_id = kNoNode;
  transport::PublicKey key;
  std::vector<transport::SocketAddr> addrs;
  std::string target;  // the SRV target it came from (the first, if several)
};

struct DnsAssembly {
  std::vector<DnsFoundPeer> peers;  // by node id, each id once
  std::array<uint64_t, kDnsRecordVerdictCount> counts{};
  // Why records were refused, for the log: at most kMaxDnsProblems lines.
  std::vector<std::string> problems;
  void refuse(DnsRecordVerdict verdict, std::string why);
};
inline constexpr size_t kMaxDnsProblems = 8;

// The nodes an answer names, with every refusal counted (each refused record once).
DnsAssembly assemble_dns_peers(const DnsLookupAnswer& answer);

// The smallest TTL of the answer section of a DNS message (seconds; RFC 2181 §8: a TTL with
// the top bit set reads as 0), or nullopt when it has no answers or does not parse. Reads
// only what the header promises and stops at the end of the bytes.
std::optional<uint32_t> min_answer_ttl_s(std::string_view message);

// When to look again: after a success, the smallest TTL seen, no sooner than
// kMinDnsDiscoveryRefreshS (unless the interval is shorter) and no later than the interval;
// after `failures` failed lookups in a row, 1 s doubling up to the interval.
uint64_t next_dns_lookup_delay_ms(uint32_t interval_s, std::optional<uint32_t> min_ttl_s, uint32_t failures);

}  // namespace aspen::cluster
