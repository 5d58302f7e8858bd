// node_record: bytes stored as a member record (what the cluster keeps under
// __aspen/cluster/node/) read into the peer registry, next to a valid record. Properties: no
// assert fires; a record that is taken names a key and at most kMaxNodeAddresses addresses;
// a malformed one is counted and changes nothing else.
#include "core/limits.h"
#include "fuzz/harness/harness.h"
#include "node/peer_registry.h"

namespace aspen::fuzz {

int node_record_one_input(const uint8_t* data, size_t size) {
  std::array<uint8_t, transport::kPublicKeySizeBytes> raw{};
  raw.fill(1);
  kvpb::KeyValue good;
  good.set_key(node::node_record_key(1));
  good.set_value(node::encode_node_record(1, transport::PublicKey(raw), {{"127.0.0.1", 7001}}));
  kvpb::KeyValue fuzzed;
  fuzzed.set_key(node::node_record_key(2));
  fuzzed.set_value(std::string(reinterpret_cast<const char*>(data), size));
  node::PeerRegistry peers;
  peers.set_records({good, fuzzed});
  check(peers.lookup(1).has_value() || peers.malformed_records() == 0, "a valid record was lost");
  for (NodeId id = 0; id < 4; ++id) {
    if (auto p = peers.lookup(id)) check(p->addrs.size() <= limits::kMaxNodeAddresses, "a record kept too many addresses");
  }
  return 0;
}

std::vector<std::string> node_record_seeds() {
  std::array<uint8_t, transport::kPublicKeySizeBytes> raw{};
  raw.fill(2);
  return {node::encode_node_record(2, transport::PublicKey(raw), {{"127.0.0.1", 7002}, {"::1", 7002}})};
}

}  // namespace aspen::fuzz
