#include "dns/admin.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/limits.h"
#include "dns/message.h"

namespace aspen::dns {

namespace {

kvpb::TxnOp put_op(std::string key, std::string value) {
  kvpb::TxnOp op;
  op.mutable_put()->set_key(std::move(key));
  op.mutable_put()->set_value(std::move(value));
  return op;
}

kvpb::TxnOp delete_op(std::string key) {
  kvpb::TxnOp op;
  op.mutable_delete_()->set_key(std::move(key));
  return op;
}

struct ZoneAt {
  Zone zone;
  uint64_t mod_revision = 0;
};

Result<ZoneAt> read_zone_holding(kv::KeyValueStore& store, const Name& name) {
  RecordReader reader(store);
  auto zones = reader.zones();
  if (!zones) return std::unexpected(zones.error());
  const Zone* z = zone_for(*zones, name);
  if (z == nullptr) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("no zone holds {} (create one with 'aspen-cli dns zone create')", name.to_text()));
  }
  auto kv = kv::get(store, zone_key(z->name));
  if (!kv) return std::unexpected(kv.error());
  if (!*kv) return make_error(ErrorCode::kUnavailable, "the zone was deleted meanwhile");
  auto fresh = decode_zone(z->name, (*kv)->value());
  if (!fresh) return std::unexpected(fresh.error());
  return ZoneAt{std::move(*fresh), (*kv)->mod_revision()};
}

// One change of a zone's records and its serial, retried while the zone changes under it.
// `build` reads what it needs and returns the operations (or an error that ends the call).
template <typename Build>
Status change_zone(kv::KeyValueStore& store, const Name& name, Build build) {
  for (size_t attempt = 0; attempt < kMaxAdminAttempts; ++attempt) {
    auto zat = read_zone_holding(store, name);
    if (!zat) return std::unexpected(zat.error());
    auto ops = build(zat->zone);
    if (!ops) return std::unexpected(ops.error());
    Zone bumped = zat->zone;
    bumped.soa.serial = bumped.soa.serial == UINT32_MAX ? 1 : bumped.soa.serial + 1;  // RFC 1982 wraps
    kvpb::Command cmd;
    auto* txn = cmd.mutable_txn();
    auto* cmp = txn->add_compares();
    cmp->set_key(zone_key(zat->zone.name));
    cmp->set_target(kvpb::Compare::TARGET_MOD_REVISION);
    cmp->set_op(kvpb::Compare::OP_EQUAL);
    cmp->set_number(zat->mod_revision);
    for (auto& op : *ops) *txn->add_success() = std::move(op);
    *txn->add_success() = put_op(zone_key(zat->zone.name), encode_zone(bumped));
    auto r = store.execute(std::move(cmd));
    if (!r) return std::unexpected(r.error());
    if (r->succeeded()) return {};
  }
  return make_error(ErrorCode::kUnavailable,
                    fmt::format("the zone of {} kept changing; gave up after {} attempts", name.to_text(), kMaxAdminAttempts));
}

}  // namespace

Result<std::vector<Zone>> list_zones(kv::KeyValueStore& store) { return RecordReader(store).zones(); }

Status create_zone(kv::KeyValueStore& store, const Zone& zone) {
  if (zone.name.is_root()) return make_error(ErrorCode::kInvalidArgument, "the root cannot be a zone");
  if (zone.name.is_wildcard()) return make_error(ErrorCode::kInvalidArgument, "a zone name cannot be a wildcard");
  if (zone.ttl_s > kMaxTtlS) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("TTL {} s is over kMaxTtlS = {} s", zone.ttl_s, kMaxTtlS));
  }
  auto existing = list_zones(store);
  if (!existing) return std::unexpected(existing.error());
  if (existing->size() >= kMaxZones) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("there are {} zones already (kMaxZones)", kMaxZones));
  }
  auto r = kv::cas(store, zone_key(zone.name), std::nullopt, encode_zone(zone));
  if (!r) return std::unexpected(r.error());
  if (!r->succeeded()) return make_error(ErrorCode::kInvalidArgument, fmt::format("zone {} exists already", zone.name.to_text()));
  return {};
}

Result<uint64_t> delete_zone(kv::KeyValueStore& store, const Name& zone) {
  auto d = kv::del(store, zone_key(zone));
  if (!d) return std::unexpected(d.error());
  if (d->deleted() == 0) return make_error(ErrorCode::kNotFound, fmt::format("no zone {}", zone.to_text()));
  // The records go in pages; a zone of the same name created meanwhile would lose them too,
  // which is why the zone goes first and the docs say so.
  uint64_t removed = 0;
  const std::string prefix = node_prefix(zone, zone);
  while (true) {
    auto page = kv::scan_prefix(store, prefix, limits::kMaxBatchSize);
    if (!page) return std::unexpected(page.error());
    if (page->kvs().empty()) break;
    kvpb::Command cmd;
    for (const auto& kv : page->kvs()) cmd.mutable_delete_multi()->add_keys(kv.key());
    auto r = store.execute(std::move(cmd));
    if (!r) return std::unexpected(r.error());
    removed += r->deleted();
  }
  return removed;
}

Result<RecordSet> set_records(kv::KeyValueStore& store, const SetRequest& req) {
  const uint16_t t = req.type;
  if (t == type::kSoa) {
    return make_error(ErrorCode::kInvalidArgument, "the SOA belongs to the zone: use 'aspen-cli dns zone create' with its options");
  }
  if (!type_from_name(type_name(t))) {
    return make_error(ErrorCode::kInvalidArgument, "types stored are A, AAAA, CNAME, TXT, SRV, MX, NS");
  }
  if (req.ttl_s > kMaxTtlS) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("TTL {} s is over kMaxTtlS = {} s", req.ttl_s, kMaxTtlS));
  }
  if (req.values.empty()) return make_error(ErrorCode::kInvalidArgument, "no value given");
  std::vector<std::string> rdata;
  for (const auto& v : req.values) {
    auto rd = rdata_from_text(t, v);
    if (!rd) return std::unexpected(rd.error());
    if (std::find(rdata.begin(), rdata.end(), *rd) == rdata.end()) rdata.push_back(std::move(*rd));
  }
  RecordSet result;
  auto s = change_zone(store, req.name, [&](const Zone& zone) -> Result<std::vector<kvpb::TxnOp>> {
    RecordReader reader(store);
    auto here = reader.record_sets(zone, req.name);
    if (!here) return std::unexpected(here.error());
    if (t == type::kCname && req.name.equals(zone.name)) {
      return make_error(ErrorCode::kInvalidArgument, "a CNAME cannot be at a zone's apex (the SOA and NS are there)");
    }
    for (const auto& [other, set] : *here) {
      if (other == t) continue;
      if (t == type::kCname) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("{} has {} records; a CNAME must be alone at its name", req.name.to_text(), type_name(other)));
      }
      if (other == type::kCname) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("{} is a CNAME; no other type can be at its name", req.name.to_text()));
      }
    }
    RecordSet set;
    set.type = t;
    set.ttl_s = req.ttl_s;
    if (req.is_add) {
      if (auto it = here->find(t); it != here->end()) set.rdata = it->second.rdata;
    }
    for (const auto& rd : rdata) {
      if (std::find(set.rdata.begin(), set.rdata.end(), rd) == set.rdata.end()) set.rdata.push_back(rd);
    }
    if (t == type::kCname && set.rdata.size() > 1) {
      return make_error(ErrorCode::kInvalidArgument, "a CNAME has exactly one value");
    }
    if (set.rdata.size() > kMaxValuesPerRecordSet) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{} values (at most kMaxValuesPerRecordSet = {})", set.rdata.size(), kMaxValuesPerRecordSet));
    }
    std::string value = encode_record_set(set);
    if (value.size() > kMaxRecordSetBytes) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("the record set would be {} bytes (at most kMaxRecordSetBytes = {})", value.size(), kMaxRecordSetBytes));
    }
    result = set;
    std::vector<kvpb::TxnOp> ops;
    ops.push_back(put_op(record_set_key(zone.name, req.name, t), std::move(value)));
    return ops;
  });
  if (!s) return std::unexpected(s.error());
  return result;
}

Result<uint64_t> delete_records(kv::KeyValueStore& store, const Name& name, std::optional<uint16_t> t,
                                std::optional<std::string> value) {
  std::optional<std::string> value_rd;
  if (value) {
    if (!t) return make_error(ErrorCode::kInvalidArgument, "deleting one value needs its type");
    auto rd = rdata_from_text(*t, *value);
    if (!rd) return std::unexpected(rd.error());
    value_rd = std::move(*rd);
  }
  uint64_t removed = 0;
  auto s = change_zone(store, name, [&](const Zone& zone) -> Result<std::vector<kvpb::TxnOp>> {
    removed = 0;
    RecordReader reader(store);
    auto here = reader.record_sets(zone, name);
    if (!here) return std::unexpected(here.error());
    here->erase(type::kSoa);
    std::vector<kvpb::TxnOp> ops;
    for (const auto& [ht, set] : *here) {
      if (t && ht != *t) continue;
      if (!value_rd) {
        removed += set.rdata.size();
        ops.push_back(delete_op(record_set_key(zone.name, name, ht)));
        continue;
      }
      RecordSet rest = set;
      std::erase(rest.rdata, *value_rd);
      if (rest.rdata.size() == set.rdata.size()) continue;
      removed += 1;
      ops.push_back(rest.rdata.empty() ? delete_op(record_set_key(zone.name, name, ht))
                                       : put_op(record_set_key(zone.name, name, ht), encode_record_set(rest)));
    }
    if (ops.empty()) {
      return make_error(ErrorCode::kNotFound, fmt::format("no such record at {}", name.to_text()));
    }
    return ops;
  });
  if (!s) return std::unexpected(s.error());
  return removed;
}

Result<std::vector<ListedSet>> list_records(kv::KeyValueStore& store, const Name& zone_name) {
  RecordReader reader(store);
  auto zones = reader.zones();
  if (!zones) return std::unexpected(zones.error());
  auto it = std::find_if(zones->begin(), zones->end(), [&](const Zone& z) { return z.name.equals(zone_name); });
  if (it == zones->end()) return make_error(ErrorCode::kNotFound, fmt::format("no zone {}", zone_name.to_text()));
  auto sets = reader.all_record_sets(*it);
  if (!sets) return std::unexpected(sets.error());
  std::vector<ListedSet> out;
  RecordSet soa;
  soa.type = type::kSoa;
  soa.ttl_s = it->ttl_s;
  soa.rdata.push_back(soa_to_rdata(it->soa));
  out.push_back(ListedSet{it->name, std::move(soa)});
  for (auto& [n, s] : *sets) out.push_back(ListedSet{std::move(n), std::move(s)});
  return out;
}

}  // namespace aspen::dns
