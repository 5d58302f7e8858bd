// How aspen-dns keeps zones and records in the KV store (docs/dns.md), and reading them.
//
//   dns/zone/<zone>                          the zone: "ttl=<s>\nsoa=<SOA text>\n"
//   dns/rr/<zone>/<labels, right to left, each followed by '/'>=<TYPE>
//                                            one record set: "ttl=<s>\n<value>\n<value>\n..."
// e.g. the A records of www.example.test. in zone example.test. are under
//   dns/rr/example.test./www/=A      and the apex NS under  dns/rr/example.test./=NS
// Names are stored lowercase. Labels hold only [a-z0-9_-] or '*' (dns/name.h), so '/' and
// '=' never appear inside one: every name below a node shares the node's key prefix, which
// makes "does anything exist at or below this name" one bounded prefix scan.
//
// Values are written by `aspen-cli dns` (dns/admin.h) but anyone with write access to the
// prefix could put anything there: decode_rrset and decode_zone are bounded, fuzzed
// (fuzz/harness/dns_message.cc) and refuse what they do not understand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "dns/name.h"
#include "dns/rdata.h"
#include "kv/key_value_store.h"

namespace aspen::dns {

inline constexpr std::string_view kZoneKeyPrefix = "dns/zone/";
inline constexpr std::string_view kRecordKeyPrefix = "dns/rr/";
inline constexpr size_t kMaxZones = 1000;              // zones read (and served) at once
inline constexpr size_t kMaxValuesPerRecordSet = 100;  // values of one name and type
inline constexpr size_t kMaxRecordSetBytes = 16384;    // one stored record set
inline constexpr uint32_t kMaxTtlS = 7 * 86400;
inline constexpr uint32_t kDefaultTtlS = 300;

struct RecordSet {
  uint16_t type = 0;
  uint32_t ttl_s = kDefaultTtlS;
  std::vector<std::string> rdata;  // wire form, one per value
};

struct Zone {
  Name name;  // lowercase
  uint32_t ttl_s = 3600;  // of the SOA record
  Soa soa;
};

std::string zone_key(const Name& zone);
// The key prefix of everything at or below `name` (which is `zone` or below it).
std::string node_prefix(const Name& zone, const Name& name);
std::string record_set_key(const Name& zone, const Name& name, uint16_t type);

std::string encode_record_set(const RecordSet& set);
Result<RecordSet> decode_record_set(uint16_t type, std::string_view value);
std::string encode_zone(const Zone& zone);
Result<Zone> decode_zone(const Name& name, std::string_view value);

// The zone that holds `name`: the longest of `zones` that `name` is in, or nullptr.
const Zone* zone_for(const std::vector<Zone>& zones, const Name& name);

// Reads zones and record sets (linearizable reads of the KeyValueStore). Stateless.
class RecordReader {
 public:
  explicit RecordReader(kv::KeyValueStore& store) : store_(store) {}
  // Every zone in the store (at most kMaxZones), in key order. A zone record that does not
  // decode is left out (and does not fail the others).
  Result<std::vector<Zone>> zones();
  // The record sets at exactly `name` (the SOA comes from the zone record at the apex).
  // A set that does not decode is left out.
  Result<std::map<uint16_t, RecordSet>> record_sets(const Zone& zone, const Name& name);
  // Whether anything is stored at or below `name` (the apex always exists).
  Result<bool> exists(const Zone& zone, const Name& name);
  // Every record set of the zone, owner names with it, in key order (paged scans).
  Result<std::vector<std::pair<Name, RecordSet>>> all_record_sets(const Zone& zone);

 private:
  kv::KeyValueStore& store_;
};

}  // namespace aspen::dns
