// ServiceRegistry: instances register under a service name with metadata and a TTL; clients
// discover the healthy ones.
//
//   ServiceRegistry reg(store);
//   auto r = reg.register_instance("api", "api-1", "10.0.0.5:8080", {{"zone", "a"}}, 10'000);
//   every few seconds: reg.heartbeat(*r);          // NotFound once the TTL lapsed: re-register
//   auto healthy = reg.discover("api");
//
// State: "__coord:svc:<service>:<instance>" = {address, metadata}, attached to the instance's
// lease. Healthy means "its lease is alive": an instance that stops heartbeating disappears
// when its TTL runs out, without anyone cleaning up.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "coord/coord_common.h"

namespace aspen::coord {

struct ServiceInstance {
  std::string service;
  std::string instance_id;
  std::string address;
  std::map<std::string, std::string> metadata;
  uint64_t lease_id = 0;
};

struct Registration {
  std::string service;
  std::string instance_id;
  uint64_t lease_id = 0;
};

class ServiceRegistry {
 public:
  explicit ServiceRegistry(kv::KeyValueStore& store) : store_(store) {}

  // Registering an instance id again replaces its entry (and its lease).
  Result<Registration> register_instance(std::string_view service, std::string_view instance_id,
                                         std::string_view address,
                                         const std::map<std::string, std::string>& metadata, uint64_t ttl_ms);
  Status heartbeat(const Registration& reg);   // NotFound once expired
  Status deregister(const Registration& reg);  // NotFound if already gone
  // Healthy instances, by instance id; at most kMaxServiceInstances.
  Result<std::vector<ServiceInstance>> discover(std::string_view service);

 private:
  kv::KeyValueStore& store_;
};

}  // namespace aspen::coord
