// mdns_datagram: a datagram received on the mDNS socket (224.0.0.251:5353), which anyone on
// the LAN may send, decoded and read by an mDNS core (src/cluster/mdns.h). The first input
// byte picks the sender's address. Properties: no assert fires; a decoded message stays
// within the codec's limits and encodes back (within the datagram limit) to a message that
// decodes the same; a datagram over kMaxMdnsDatagramBytes or that does not decode teaches
// nothing; every node learned is another node of this cluster with a port; the announcement
// this node sends stays within kMaxMdnsSendBytes.
#include "cluster/mdns.h"
#include "fuzz/harness/harness.h"

#include <fmt/format.h>

namespace aspen::fuzz {
namespace {

constexpr uint64_t kNowMs = 1'800'000'000'000;
const std::string kTag(32, 'f');

cluster::MdnsCoreConfig config_of(NodeId id) {
  std::array<uint8_t, transport::kSecretSeedSizeBytes> seed{};
  seed.fill(static_cast<uint8_t>(id));
  cluster::MdnsCoreConfig c;
  c.node_id = id;
  c.key = transport::NodeIdentity::from_seed(seed).public_key();
  c.ipv4 = fmt::format("10.0.0.{}", id);
  c.port = static_cast<uint16_t>(7000 + id);
  c.cluster_tag = kTag;
  return c;
}

}  // namespace

int mdns_datagram_one_input(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  auto decoded = cluster::decode_dns_message(bytes);
  if (decoded) {
    check(bytes.size() <= cluster::kMaxMdnsDatagramBytes, "a datagram over the limit was decoded");
    check(decoded->questions.size() <= cluster::kMaxMdnsQuestions, "too many questions decoded");
    check(decoded->answers.size() + decoded->additionals.size() <= cluster::kMaxMdnsRecords, "too many records decoded");
    auto again = cluster::encode_dns_message(*decoded, 1 << 16);
    if (again && again->size() <= cluster::kMaxMdnsDatagramBytes) {
      auto back = cluster::decode_dns_message(*again);
      check(back.has_value() && *back == *decoded, "a decoded message does not encode back to itself");
    }
  }
  cluster::MdnsCore core(config_of(9));
  const auto got = core.on_datagram(bytes, fmt::format("10.0.0.{}", data[0]), kNowMs);
  if (!decoded) check(got.learned.empty(), "a node was learned from an undecodable datagram");
  for (const auto& p : got.learned) {
    check(p.node_id != kNoNode && p.node_id != 9, "learned no node, or this node itself");
    check(p.addr.port != 0, "learned a node without a port");
  }
  check(core.announcement().size() <= cluster::kMaxMdnsSendBytes, "this node's announcement is over the send limit");
  return 0;
}

std::vector<std::string> mdns_datagram_seeds() {
  cluster::MdnsCore one(config_of(1));
  return {std::string(1, '\1') + one.announcement(), std::string(1, '\2') + one.query(),
          std::string(1, '\1') + one.announcement(0)};
}

}  // namespace aspen::fuzz
