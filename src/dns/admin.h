// Managing zones and records in the KV store (what `aspen-cli dns` does; docs/dns.md).
// Every change to a zone's records also raises the zone's SOA serial, in one transaction
// conditioned on the zone record's revision (a concurrent change makes it read and try
// again, at most kMaxAdminAttempts times).
//
// Validation, with errors that say what a valid value looks like: names (dns/name.h),
// values per type (dns/rdata.h), TTLs up to kMaxTtlS, at most kMaxValuesPerRecordSet values,
// a CNAME alone at its name and never at the apex, SOA only through the zone itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dns/records.h"

namespace aspen::dns {

inline constexpr size_t kMaxAdminAttempts = 20;

Result<std::vector<Zone>> list_zones(kv::KeyValueStore& store);
// InvalidArgument if it exists already.
Status create_zone(kv::KeyValueStore& store, const Zone& zone);
// Removes the zone record first (the zone stops being served), then its record sets.
// Returns how many record sets were removed. NotFound if there is no such zone.
Result<uint64_t> delete_zone(kv::KeyValueStore& store, const Name& zone);

struct SetRequest {
  Name name;
  uint16_t type = 0;
  std::vector<std::string> values;  // text forms
  uint32_t ttl_s = kDefaultTtlS;
  bool is_add = false;  // add the values to the set instead of replacing it
};
// The set as stored afterwards.
Result<RecordSet> set_records(kv::KeyValueStore& store, const SetRequest& request);

// Deletes the set of `type` at `name` (every set there without a type); with `value`, only
// that value of the set. Returns how many values were removed; NotFound when nothing matched.
Result<uint64_t> delete_records(kv::KeyValueStore& store, const Name& name, std::optional<uint16_t> type,
                                std::optional<std::string> value);

struct ListedSet {
  Name name;
  RecordSet set;
};
Result<std::vector<ListedSet>> list_records(kv::KeyValueStore& store, const Name& zone);

}  // namespace aspen::dns
