#include "dns/records.h"

#include <fmt/format.h>

#include <charconv>

#include "core/assert.h"
#include "core/limits.h"
#include "dns/message.h"

namespace aspen::dns {

namespace {

std::optional<uint32_t> parse_ttl_line(std::string_view line) {
  if (!line.starts_with("ttl=")) return std::nullopt;
  line.remove_prefix(4);
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
  if (line.empty() || ec != std::errc() || end != line.data() + line.size() || v > kMaxTtlS) return std::nullopt;
  return v;
}

std::vector<std::string_view> lines(std::string_view v) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < v.size()) {
    size_t nl = v.find('\n', start);
    if (nl == std::string_view::npos) nl = v.size();
    out.push_back(v.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

Status corrupt(std::string_view what) {
  return make_error(ErrorCode::kCorruption, fmt::format("stored DNS data does not decode: {}", what));
}

// The owner name of a record key below the zone's record prefix: "b/a/=A" is a.b.<zone>.
std::optional<std::pair<Name, uint16_t>> parse_rest(const Name& zone, std::string_view rest) {
  const size_t eq = rest.rfind('=');
  if (eq == std::string_view::npos) return std::nullopt;
  auto t = type_from_name(rest.substr(eq + 1));
  if (!t) return std::nullopt;
  std::string_view path = rest.substr(0, eq);
  Name name = zone;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const std::string_view label = path.substr(0, slash);
    if (!is_storable_label(label)) return std::nullopt;
    name.labels.insert(name.labels.begin(), std::string(label));
    path.remove_prefix(slash + 1);
  }
  return std::pair{std::move(name), *t};
}

}  // namespace

std::string zone_key(const Name& zone) { return std::string(kZoneKeyPrefix) + zone.lower().to_text(); }

std::string node_prefix(const Name& zone, const Name& name) {
  ASPEN_ASSERT(name.is_subdomain_of(zone));
  std::string out = std::string(kRecordKeyPrefix) + zone.lower().to_text() + "/";
  const Name lower = name.lower();
  const size_t own = lower.labels.size() - zone.labels.size();
  for (size_t i = own; i-- > 0;) {
    out += lower.labels[i];
    out.push_back('/');
  }
  return out;
}

std::string record_set_key(const Name& zone, const Name& name, uint16_t type) {
  return node_prefix(zone, name) + "=" + type_name(type);
}

std::string encode_record_set(const RecordSet& set) {
  std::string out = fmt::format("ttl={}\n", set.ttl_s);
  for (const auto& rd : set.rdata) out += rdata_to_text(set.type, rd) + "\n";
  return out;
}

Result<RecordSet> decode_record_set(uint16_t type, std::string_view value) {
  if (value.size() > kMaxRecordSetBytes) return std::unexpected(corrupt("a record set over kMaxRecordSetBytes").error());
  const auto ls = lines(value);
  if (ls.empty()) return std::unexpected(corrupt("an empty record set").error());
  auto ttl = parse_ttl_line(ls[0]);
  if (!ttl) return std::unexpected(corrupt("no 'ttl=<seconds>' line").error());
  if (ls.size() - 1 > kMaxValuesPerRecordSet) return std::unexpected(corrupt("too many values").error());
  RecordSet set;
  set.type = type;
  set.ttl_s = *ttl;
  for (size_t i = 1; i < ls.size(); ++i) {
    auto rd = rdata_from_text(type, ls[i]);
    if (!rd) return std::unexpected(corrupt(rd.error().message()).error());
    set.rdata.push_back(std::move(*rd));
  }
  if (set.rdata.empty()) return std::unexpected(corrupt("a record set without values").error());
  return set;
}

std::string encode_zone(const Zone& zone) { return fmt::format("ttl={}\nsoa={}\n", zone.ttl_s, soa_to_text(zone.soa)); }

Result<Zone> decode_zone(const Name& name, std::string_view value) {
  const auto ls = lines(value);
  if (ls.size() != 2 || !ls[1].starts_with("soa=")) return std::unexpected(corrupt("a zone is 'ttl=' and 'soa=' lines").error());
  auto ttl = parse_ttl_line(ls[0]);
  if (!ttl) return std::unexpected(corrupt("no 'ttl=<seconds>' line").error());
  auto soa = soa_from_text(ls[1].substr(4));
  if (!soa) return std::unexpected(corrupt(soa.error().message()).error());
  return Zone{name.lower(), *ttl, std::move(*soa)};
}

const Zone* zone_for(const std::vector<Zone>& zones, const Name& name) {
  const Zone* best = nullptr;
  for (const auto& z : zones) {
    if (name.is_subdomain_of(z.name) && (best == nullptr || z.name.labels.size() > best->name.labels.size())) best = &z;
  }
  return best;
}

Result<std::vector<Zone>> RecordReader::zones() {
  kvpb::RangeRequest r;
  r.set_start(std::string(kZoneKeyPrefix));
  r.set_is_prefix(true);
  r.set_limit(kMaxZones);
  auto page = store_.range(r);
  if (!page) return std::unexpected(page.error());
  std::vector<Zone> out;
  for (const auto& kv : page->kvs()) {
    auto name = parse_name(std::string_view(kv.key()).substr(kZoneKeyPrefix.size()));
    if (!name || name->is_root()) continue;
    auto z = decode_zone(*name, kv.value());
    if (z) out.push_back(std::move(*z));
  }
  return out;
}

Result<std::map<uint16_t, RecordSet>> RecordReader::record_sets(const Zone& zone, const Name& name) {
  std::map<uint16_t, RecordSet> out;
  for (const auto& l : name.lower().labels) {
    if (!is_storable_label(l)) return out;  // nothing can be stored under such a name
  }
  kvpb::RangeRequest r;
  r.set_start(node_prefix(zone.name, name) + "=");
  r.set_is_prefix(true);
  r.set_limit(32);  // the types a name can hold are far fewer
  auto page = store_.range(r);
  if (!page) return std::unexpected(page.error());
  for (const auto& kv : page->kvs()) {
    auto t = type_from_name(std::string_view(kv.key()).substr(r.start().size()));
    if (!t || *t == type::kSoa) continue;
    auto set = decode_record_set(*t, kv.value());
    if (set) out.emplace(*t, std::move(*set));
  }
  if (name.equals(zone.name)) {
    RecordSet soa;
    soa.type = type::kSoa;
    soa.ttl_s = zone.ttl_s;
    soa.rdata.push_back(soa_to_rdata(zone.soa));
    out.emplace(type::kSoa, std::move(soa));
  }
  return out;
}

Result<bool> RecordReader::exists(const Zone& zone, const Name& name) {
  if (name.equals(zone.name)) return true;
  for (const auto& l : name.lower().labels) {
    if (!is_storable_label(l)) return false;
  }
  kvpb::RangeRequest r;
  r.set_start(node_prefix(zone.name, name));
  r.set_is_prefix(true);
  r.set_limit(1);
  r.set_is_count_only(true);
  auto page = store_.range(r);
  if (!page) return std::unexpected(page.error());
  return page->count() > 0;
}

Result<std::vector<std::pair<Name, RecordSet>>> RecordReader::all_record_sets(const Zone& zone) {
  std::vector<std::pair<Name, RecordSet>> out;
  const std::string prefix = node_prefix(zone.name, zone.name);
  std::string continuation;
  while (true) {
    kvpb::RangeRequest r;
    r.set_start(prefix);
    r.set_is_prefix(true);
    r.set_limit(limits::kDefaultScanLimit);
    r.set_continuation(continuation);
    auto page = store_.range(r);
    if (!page) return std::unexpected(page.error());
    for (const auto& kv : page->kvs()) {
      auto owner = parse_rest(zone.name, std::string_view(kv.key()).substr(prefix.size()));
      if (!owner) continue;
      auto set = decode_record_set(owner->second, kv.value());
      if (set) out.emplace_back(std::move(owner->first), std::move(*set));
    }
    if (!page->has_more()) break;
    continuation = page->continuation();
  }
  return out;
}

}  // namespace aspen::dns
