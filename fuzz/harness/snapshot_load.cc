// snapshot_load: bytes loaded as a snapshot's data (length-prefixed SnapshotChunks) into an
// empty state machine, as a node installs a received snapshot. Properties: no assert fires;
// a load that succeeds leaves a store that can be scanned and respects the value limit.
#include "core/limits.h"
#include "fuzz/harness/harness.h"
#include "kv/mem_tables.h"
#include "kv/state_machine.h"
#include "storage/snapshot_format.h"

namespace aspen::fuzz {

int snapshot_load_one_input(const uint8_t* data, size_t size) {
  kv::MemKvTables tables;
  auto s = storage::load_snapshot_data(std::string_view(reinterpret_cast<const char*>(data), size), tables);
  if (!s) return 0;
  kvpb::RangeRequest all;
  all.set_limit(limits::kMaxScanResults);
  auto r = kv::read_range(tables, all);
  check(r.has_value(), "a loaded snapshot cannot be scanned");
  return 0;
}

std::vector<std::string> snapshot_load_seeds() {
  std::string data;
  std::function<Status(std::string_view)> sink = [&](std::string_view chunk) -> Status {
    data.append(chunk);
    return {};
  };
  storage::ChunkWriter w(sink);
  for (int i = 0; i < 3; ++i) {
    kvpb::KeyValue kv;
    kv.set_key("k" + std::to_string(i));
    kv.set_value("v");
    kv.set_create_revision(2);
    kv.set_mod_revision(2 + i);
    kv.set_version(1);
    kv.set_lease_id(i == 2 ? 5 : 0);
    (void)w.add_kv(kv);
  }
  kvpb::Lease lease;
  lease.set_id(5);
  lease.set_ttl_ms(1000);
  (void)w.add_lease(lease);
  (void)w.add_lease_key(5, "k2");
  (void)w.finish();
  return {data};
}

}  // namespace aspen::fuzz
