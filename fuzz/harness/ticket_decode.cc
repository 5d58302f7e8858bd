// ticket_decode: text given as a cluster ticket (--ticket, ASPEN_TICKET, a ticket file),
// decoded by cluster::decode_ticket. The first input byte picks the form: the text as it is,
// or the rest of the input base32-encoded behind the "aspen" prefix (so that the protobuf
// parser and the field checks, the gossip follow topic's among them, are reached). Properties:
// no assert fires; a decoded ticket is within the limits (peers, addresses, a follow topic of
// exactly 32 bytes) and encodes back to a ticket that decodes the same.
#include "cluster/ticket.h"
#include "fuzz/harness/harness.h"

namespace aspen::fuzz {
namespace {

bool same(const cluster::Ticket& a, const cluster::Ticket& b) {
  if (a.cluster_id != b.cluster_id || a.gossip_follow_topic != b.gossip_follow_topic) return false;
  if (a.peers.size() != b.peers.size()) return false;
  for (size_t i = 0; i < a.peers.size(); ++i) {
    if (a.peers[i].node_id != b.peers[i].node_id || a.peers[i].public_key != b.peers[i].public_key ||
        a.peers[i].addrs != b.peers[i].addrs) {
      return false;
    }
  }
  return true;
}

}  // namespace

int ticket_decode_one_input(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 1) text = std::string(cluster::kTicketPrefix) + transport::base32_encode(data + 1, size - 1);
  auto decoded = cluster::decode_ticket(text);
  if (!decoded) {
    check(decoded.error().code() == ErrorCode::kInvalidArgument, "a refused ticket is not InvalidArgument");
    check(decoded.error().message().size() <= 512, "a refusal's message is unbounded");
    return 0;
  }
  check(text.size() <= cluster::kMaxTicketSizeBytes, "a ticket over the size limit was decoded");
  check(!decoded->peers.empty() && decoded->peers.size() <= cluster::kMaxTicketPeers, "peers out of bounds");
  for (const auto& p : decoded->peers) check(!p.addrs.empty(), "a peer without addresses was decoded");
  // Re-encoding may pick other bytes (field order, an unknown field dropped) but the same
  // ticket; a cluster id that is not UTF-8 would not have parsed.
  auto again = cluster::decode_ticket(cluster::encode_ticket(*decoded));
  check(again.has_value() && same(*again, *decoded), "a decoded ticket does not encode back to itself");
  return 0;
}

std::vector<std::string> ticket_decode_seeds() {
  std::array<uint8_t, transport::kPublicKeySizeBytes> raw{};
  raw.fill(3);
  cluster::Ticket t;
  t.cluster_id = "c-fuzz";
  t.peers.push_back({1, transport::PublicKey(raw), {{"127.0.0.1", 7001}, {"::1", 7001}}});
  const std::string without_topic = cluster::encode_ticket(t);
  cluster::GossipTopic topic{};
  topic.fill(0x5a);
  t.gossip_follow_topic = topic;
  const std::string with_topic = cluster::encode_ticket(t);
  // Form 0: the text itself; form 1: the bytes behind the prefix, base32-encoded by the target.
  auto raw_of = [](const std::string& ticket) {
    auto bytes = transport::base32_decode(std::string_view(ticket).substr(cluster::kTicketPrefix.size()));
    return std::string(1, '\1') + (bytes ? *bytes : std::string());
  };
  return {std::string(1, '\0') + without_topic, std::string(1, '\0') + with_topic, raw_of(without_topic),
          raw_of(with_topic)};
}

}  // namespace aspen::fuzz
