// mDNS discovery (docs/discovery.md, "mDNS"): nodes on one LAN segment that share a cookie
// find each other with no configuration, over multicast DNS (RFC 6762/6763) on
// 224.0.0.251:5353. MdnsCore holds every decision and no I/O: the node shell
// (node/mdns_service.h) owns the socket, passes in the datagrams, the sender's address and
// the time, and sends what the core builds.
//
// What a node announces (service type _aspen._udp.local, TTL kMdnsTtlS):
//   PTR _aspen._udp.local            -> aspen-<id>-<tag8>._aspen._udp.local
//   SRV aspen-<id>-<tag8>._aspen...  -> port <QUIC port>, target aspen-<id>-<tag8>.local
//   TXT aspen-<id>-<tag8>._aspen...  -> "txtvers=1" "id=<node id>" "key=<public key>" "tag=<cluster tag>"
//   A   aspen-<id>-<tag8>.local      -> the node's IPv4 address
// The cluster tag is derived from the cookie with BLAKE3 (the node computes it; the cookie
// never travels, and the tag does not reveal it). Nodes with another tag are ignored and
// counted, so clusters with different cookies on one LAN do not mix. The tag is not a
// secret: anyone on the LAN sees it. Like all discovery, mDNS grants no membership and no
// trust: an announcement is unsigned and says only where a node says it is; the QUIC
// handshake checks the key when that address is dialled, and Raft still demands the cookie.
//
// Everything read is bounded: one datagram (kMaxMdnsDatagramBytes), the records in it
// (cluster/mdns_codec.h), the datagrams one sender may send per minute, the senders whose
// rate is tracked, and how often this node answers queries. A datagram that crosses a limit
// or does not parse is counted by reason and dropped.
//
// Not thread-safe: one thread (the mDNS service's) owns it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/mdns_codec.h"
#include "core/types.h"
#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::cluster {

// The source name in the peer registry and `aspen-cli cluster peers`.
inline constexpr std::string_view kMdnsSource = "mdns";
inline constexpr std::string_view kMdnsServiceType = "_aspen._udp.local";
inline constexpr std::string_view kMdnsGroupIpv4 = "224.0.0.251";
inline constexpr uint16_t kMdnsPort = 5353;
// How long receivers keep our records (RFC 6762 10: 120 s for records with a host name);
// the registry forgets an mDNS peer not heard of for this long.
inline constexpr uint32_t kMdnsTtlS = 120;
// The cluster tag on the wire: hex of the first bytes of BLAKE3(cookie) in derive-key mode.
inline constexpr size_t kMdnsClusterTagBytes = 16;
// Datagrams one sender (by source address) may send per minute before the rest are dropped:
// far above what a peer sends (an announcement per interval and an answer per query).
inline constexpr uint32_t kMdnsSenderDatagramsPerMin = 120;
inline constexpr uint64_t kMdnsRateWindowMs = 60 * 1000;
// Senders whose rate is tracked at once; the stalest window goes first.
inline constexpr size_t kMaxMdnsRateSenders = 256;
// This node answers queries at most this often (RFC 6762 6: one multicast of a record per
// second), however many arrive.
inline constexpr uint64_t kMinMdnsAnswerIntervalMs = 1000;

enum class MdnsVerdict : uint8_t {
  kAccepted,      // it announced at least one node of this cluster
  kGoodbye,       // a node of this cluster said goodbye (its records with TTL 0): it stopped
  kQuery,         // a query (answered if it asks for our service or our names)
  kOwn,           // this node's own datagram, looped back
  kOtherCluster,  // an Aspen node of another cluster (another cookie's tag)
  kIgnored,       // other services' traffic
  kBadRecord,     // an Aspen record with a missing or invalid id, key, tag or SRV, or this node's id
  kMalformed,     // not a DNS message, or it crosses a codec limit
  kOversized,     // over kMaxMdnsDatagramBytes
  kRateLimited,   // the sender sent more than kMdnsSenderDatagramsPerMin this minute
};
inline constexpr size_t kMdnsVerdictCount = 10;
// "accepted", "query", ...: the reason label of aspen_mdns_datagrams_received_total.
std::string_view mdns_verdict_name(MdnsVerdict verdict);

struct MdnsCoreConfig {
  NodeId node_id = kNoNode;
  transport::PublicKey key;
  std::string ipv4;  // the address announced in the A record, dotted
  uint16_t port = 0;  // the node's QUIC port
  std::string cluster_tag;  // 2 * kMdnsClusterTagBytes hex digits
  uint32_t sender_datagrams_per_min = kMdnsSenderDatagramsPerMin;
};

// A node an announcement named.
struct MdnsPeer {
  NodeId node_id = kNoNode;
  transport::PublicKey key;
  transport::SocketAddr addr;
  friend bool operator==(const MdnsPeer&, const MdnsPeer&) = default;
};

struct MdnsReceived {
  MdnsVerdict verdict = MdnsVerdict::kMalformed;
  std::vector<MdnsPeer> learned;
  // Nodes of this cluster that said goodbye (RFC 6762 10.1: their records with TTL 0, sent
  // as they stop): forget what mDNS said of them now rather than when the TTL runs out.
  // Unsigned like every announcement: a forged goodbye costs a node its mDNS entry until
  // its next announcement, never its membership. The address is not set.
  std::vector<MdnsPeer> gone;
  bool should_answer = false;  // a query for our service or names; see may_answer()
};

struct MdnsStats {
  uint64_t datagrams_in = 0;
  uint64_t bytes_in = 0;
  uint64_t announcements_out = 0;  // unsolicited announcements and answers
  uint64_t queries_out = 0;
  uint64_t bytes_out = 0;
  std::array<uint64_t, kMdnsVerdictCount> verdicts{};
};

class MdnsCore {
 public:
  explicit MdnsCore(MdnsCoreConfig config);

  // A query for kMdnsServiceType (PTR).
  std::string query() const;
  // This node's records (see above) as an unsolicited response; `ttl_s` 0 says goodbye.
  // At most kMaxMdnsSendBytes.
  std::string announcement(uint32_t ttl_s = kMdnsTtlS) const;
  // One datagram received from `sender_ip` (dotted IPv4). Counted in stats().
  MdnsReceived on_datagram(std::string_view bytes, const std::string& sender_ip, uint64_t now_ms);
  // Whether to answer a query now (at most one answer per kMinMdnsAnswerIntervalMs); true
  // records the answer.
  bool may_answer(uint64_t now_ms);
  void count_sent(bool is_query, size_t bytes);

  const MdnsStats& stats() const { return stats_; }
  const MdnsCoreConfig& config() const { return config_; }
  // aspen-<id>-<first 8 tag digits>: the instance label and host label.
  std::string instance_label() const;

 private:
  struct RateWindow {
    uint64_t start_ms = 0;
    uint32_t count = 0;
  };
  bool take_rate(const std::string& sender_ip, uint64_t now_ms);
  MdnsVerdict read_response(const DnsMessage& m, const std::string& sender_ip, MdnsReceived& out) const;
  bool asks_for_us(const DnsMessage& m) const;

  const MdnsCoreConfig config_;
  const DnsName service_;
  const DnsName instance_;
  const DnsName host_;
  std::unordered_map<std::string, RateWindow> rates_;
  uint64_t last_answer_ms_ = 0;
  bool has_answered_ = false;
  MdnsStats stats_;
};

}  // namespace aspen::cluster
