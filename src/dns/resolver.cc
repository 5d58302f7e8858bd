#include "dns/resolver.h"

namespace aspen::dns {

namespace {

struct Lookup {
  bool is_nxdomain = false;
  std::map<uint16_t, RecordSet> sets;  // empty and !is_nxdomain: NODATA
};

Result<Lookup> lookup(RecordReader& reader, const Zone& zone, const Name& name) {
  Lookup out;
  auto sets = reader.record_sets(zone, name);
  if (!sets) return std::unexpected(sets.error());
  if (!sets->empty()) {
    out.sets = std::move(*sets);
    return out;
  }
  auto exists = reader.exists(zone, name);
  if (!exists) return std::unexpected(exists.error());
  if (*exists) return out;  // an empty non-terminal: NODATA
  // The closest encloser: the longest ancestor that exists (the apex always does).
  Name encloser = name.parent();
  while (encloser.labels.size() > zone.name.labels.size()) {
    auto e = reader.exists(zone, encloser);
    if (!e) return std::unexpected(e.error());
    if (*e) break;
    encloser = encloser.parent();
  }
  Name wildcard = encloser;
  wildcard.labels.insert(wildcard.labels.begin(), "*");
  auto wild = reader.record_sets(zone, wildcard);
  if (!wild) return std::unexpected(wild.error());
  if (!wild->empty()) {
    out.sets = std::move(*wild);
    return out;
  }
  auto wild_exists = reader.exists(zone, wildcard);
  if (!wild_exists) return std::unexpected(wild_exists.error());
  out.is_nxdomain = !*wild_exists;
  return out;
}

void add_set(std::vector<Record>& out, const Name& owner, const RecordSet& set) {
  for (const auto& rd : set.rdata) out.push_back(Record{owner, set.type, kClassIn, set.ttl_s, rd});
}

// RFC 2308 3: the SOA of a negative answer, its TTL the smaller of its own and MINIMUM.
Record negative_soa(const Zone& zone) {
  return Record{zone.name, type::kSoa, kClassIn, std::min(zone.ttl_s, zone.soa.minimum_s), soa_to_rdata(zone.soa)};
}

}  // namespace

Result<Answer> resolve(RecordReader& reader, const std::vector<Zone>& zones, const Question& question) {
  Answer ans;
  if (question.klass != kClassIn && question.klass != kClassAny) {
    ans.rcode = rcode::kRefused;
    return ans;
  }
  if (question.type == type::kAxfr || question.type == type::kIxfr) {
    ans.rcode = rcode::kRefused;
    return ans;
  }
  if (question.type == type::kOpt) {
    ans.rcode = rcode::kFormErr;
    return ans;
  }
  Name name = question.name.lower();
  const Zone* zone = zone_for(zones, name);
  if (zone == nullptr) {
    ans.rcode = rcode::kRefused;
    return ans;
  }
  ans.is_authoritative = true;
  std::vector<Name> visited;  // names whose CNAME was followed
  for (size_t link = 0; link <= kMaxCnameChain; ++link) {
    auto found = lookup(reader, *zone, name);
    if (!found) return std::unexpected(found.error());
    if (found->is_nxdomain) {
      ans.rcode = rcode::kNxDomain;
      ans.authority.push_back(negative_soa(*zone));
      return ans;
    }
    const auto& sets = found->sets;
    if (question.type == type::kAny && !sets.empty()) {
      for (const auto& [t, set] : sets) add_set(ans.answers, name, set);
      return ans;
    }
    if (auto it = sets.find(question.type); it != sets.end()) {
      add_set(ans.answers, name, it->second);
      return ans;
    }
    auto cname = sets.find(type::kCname);
    if (cname == sets.end() || cname->second.rdata.empty()) {
      ans.authority.push_back(negative_soa(*zone));  // NODATA
      return ans;
    }
    add_set(ans.answers, name, cname->second);
    auto target = cname_target(cname->second.rdata.front());
    const Zone* next = target ? zone_for(zones, *target) : nullptr;
    if (next == nullptr) return ans;  // out of our zones: the resolver follows it
    visited.push_back(name);
    for (const auto& v : visited) {
      if (v.equals(*target)) return ans;  // a loop: the chain so far, each link once
    }
    name = target->lower();
    zone = next;
  }
  return ans;  // a chain longer than kMaxCnameChain: what was found so far
}

}  // namespace aspen::dns
