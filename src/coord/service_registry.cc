#include "coord/service_registry.h"

#include <fmt/format.h>

#include "core/limits.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "svc";
constexpr uint8_t kInstanceRecord = 'S';

std::string encode_instance(std::string_view address, const std::map<std::string, std::string>& metadata) {
  RecordWriter w(kInstanceRecord);
  w.str(address).u64(metadata.size());
  for (const auto& [k, v] : metadata) w.str(k).str(v);
  return w.finish();
}

Result<ServiceInstance> decode_instance(const kvpb::KeyValue& kv, std::string_view service, size_t prefix_size) {
  auto r = RecordReader::open(kv.value(), kInstanceRecord, kv.key());
  if (!r) return std::unexpected(r.error());
  ServiceInstance inst;
  inst.service = std::string(service);
  inst.instance_id = kv.key().substr(prefix_size);
  inst.lease_id = kv.lease_id();
  auto address = r->str();
  if (!address) return std::unexpected(address.error());
  inst.address = std::move(*address);
  auto n = r->u64();
  if (!n) return std::unexpected(n.error());
  if (*n > limits::kMaxServiceMetadataEntries) {
    return make_error(ErrorCode::kCorruption, fmt::format("service record at '{}' has too many entries", kv.key()));
  }
  for (uint64_t i = 0; i < *n; ++i) {
    auto k = r->str();
    if (!k) return std::unexpected(k.error());
    auto v = r->str();
    if (!v) return std::unexpected(v.error());
    inst.metadata.emplace(std::move(*k), std::move(*v));
  }
  if (auto s = r->finish(); !s) return std::unexpected(s.error());
  return inst;
}

Status not_registered(const Registration& reg) {
  return make_error(ErrorCode::kNotFound,
                    fmt::format("instance '{}' of service '{}' is not registered (its TTL lapsed or it was "
                                "deregistered); register it again",
                                reg.instance_id, reg.service));
}
}  // namespace

Result<Registration> ServiceRegistry::register_instance(std::string_view service, std::string_view instance_id,
                                                        std::string_view address,
                                                        const std::map<std::string, std::string>& metadata,
                                                        uint64_t ttl_ms) {
  if (auto s = validate_name(service); !s) return std::unexpected(s.error());
  if (auto s = validate_id("instance id", instance_id); !s) return std::unexpected(s.error());
  if (auto s = validate_ttl_ms(ttl_ms); !s) return std::unexpected(s.error());
  if (address.size() > limits::kMaxServiceAddressBytes) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("address is {} bytes; the limit is {} bytes",
                                                               address.size(), limits::kMaxServiceAddressBytes));
  }
  if (metadata.size() > limits::kMaxServiceMetadataEntries) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{} metadata entries; the limit is {}",
                                                               metadata.size(), limits::kMaxServiceMetadataEntries));
  }
  std::string value = encode_instance(address, metadata);
  if (value.size() > limits::kMaxCoordRecordBytes) {
    return make_error(ErrorCode::kValueTooLarge, fmt::format("instance record is {} bytes; the limit is {} bytes",
                                                             value.size(), limits::kMaxCoordRecordBytes));
  }
  auto lease = kv::lease_grant(store_, ttl_ms);
  if (!lease) return std::unexpected(lease.error());
  auto r = kv::put(store_, coord_key(kKind, service, instance_id), value, lease->id());
  if (r) {
    if (auto s = kv::result_status(*r); !s) r = std::unexpected(s.error());
  }
  if (!r) {
    (void)kv::lease_revoke(store_, lease->id());
    return std::unexpected(r.error());
  }
  return Registration{std::string(service), std::string(instance_id), lease->id()};
}

Status ServiceRegistry::heartbeat(const Registration& reg) {
  if (auto s = validate_name(reg.service); !s) return s;
  auto lease = kv::lease_keepalive(store_, reg.lease_id);
  if (!lease) return lease.error().code() == ErrorCode::kLeaseNotFound ? not_registered(reg)
                                                                       : std::unexpected(lease.error());
  // The lease lives, but a re-registration may have moved the instance to another lease.
  auto kv = kv::get(store_, coord_key(kKind, reg.service, reg.instance_id));
  if (!kv) return std::unexpected(kv.error());
  if (!kv->has_value() || (*kv)->lease_id() != reg.lease_id) return not_registered(reg);
  return {};
}

Status ServiceRegistry::deregister(const Registration& reg) {
  if (auto s = validate_name(reg.service); !s) return s;
  auto s = kv::lease_revoke(store_, reg.lease_id);
  if (!s && s.error().code() == ErrorCode::kLeaseNotFound) return not_registered(reg);
  return s;
}

Result<std::vector<ServiceInstance>> ServiceRegistry::discover(std::string_view service) {
  if (auto s = validate_name(service); !s) return std::unexpected(s.error());
  const std::string prefix = coord_key(kKind, service, "");
  auto page = kv::scan_prefix(store_, prefix, static_cast<uint32_t>(limits::kMaxServiceInstances));
  if (!page) return std::unexpected(page.error());
  std::vector<ServiceInstance> out;
  for (const auto& kv : page->kvs()) {
    auto inst = decode_instance(kv, service, prefix.size());
    if (!inst) return std::unexpected(inst.error());
    out.push_back(std::move(*inst));
  }
  return out;
}

}  // namespace aspen::coord
