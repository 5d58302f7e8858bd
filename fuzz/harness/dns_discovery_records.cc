// dns_discovery_records: what a DNS server answers DNS discovery (src/cluster/dns_discovery.h),
// after c-ares parsed it: SRV records, each target's TXT records and addresses, and raw
// answers whose TTLs are read. Records of the input: tag 0 an SRV record (byte 0: target
// 0-3, bytes 1-2: port), tag 1 a TXT record of target (byte 0 % 4), tag 2 an address of
// target (byte 0 % 4), tag 3 a raw DNS message, tag 4 a lone TXT record for the parser.
// Properties: no assert fires; every `aspen` TXT parses or is refused with a verdict and a
// bounded message, and what parses prints and parses back the same; the nodes found are
// bounded, named once each, with an address, and each refusal is counted.
#include "cluster/dns_discovery.h"
#include "fuzz/harness/harness.h"

namespace aspen::fuzz {
namespace {

constexpr size_t kMaxRecords = 512;

std::string target_name(uint8_t byte) { return "t" + std::to_string(byte % 4) + ".test"; }

transport::PublicKey key_of(uint8_t byte) {
  std::array<uint8_t, transport::kPublicKeySizeBytes> raw{};
  raw.fill(byte);
  return transport::PublicKey(raw);
}

void check_txt(std::string_view record) {
  auto r = cluster::parse_aspen_txt(record);
  if (r) {
    check(r->node_id != kNoNode, "a parsed TXT names a node");
    auto again = cluster::parse_aspen_txt(cluster::format_aspen_txt(*r));
    check(again.has_value() && *again == *r, "a parsed TXT prints and parses back the same");
  } else {
    check(r.error().verdict != cluster::DnsRecordVerdict::kAccepted, "a refusal has a reason");
    check(r.error().message.size() <= 400, "a refusal's message is bounded");
  }
}

}  // namespace

int dns_discovery_records_one_input(const uint8_t* data, size_t size) {
  cluster::DnsLookupAnswer answer;
  for (const Record& r : split_records(data, size, kMaxRecords)) {
    const uint8_t first = r.bytes.empty() ? 0 : static_cast<uint8_t>(r.bytes[0]);
    const std::string_view rest = r.bytes.empty() ? r.bytes : r.bytes.substr(1);
    switch (r.tag % 5) {
      case 0: {
        const uint16_t port = r.bytes.size() >= 3 ? static_cast<uint16_t>((static_cast<uint8_t>(r.bytes[1]) << 8) |
                                                                           static_cast<uint8_t>(r.bytes[2]))
                                                  : 7000;
        answer.srv.push_back({target_name(first), port, static_cast<uint16_t>(first >> 2), 0});
        break;
      }
      case 1:
        answer.targets[target_name(first)].txts.emplace_back(rest);
        check_txt(rest);
        break;
      case 2:
        answer.targets[target_name(first)].ips.emplace_back(rest);
        break;
      case 3:
        if (auto ttl = cluster::min_answer_ttl_s(r.bytes)) check(*ttl <= 0x7fffffffU, "a TTL is at most 2^31-1");
        break;
      default:
        check_txt(r.bytes);
        break;
    }
  }
  answer.srv_dropped = cluster::take_srv_records(answer.srv);
  check(answer.srv.size() <= cluster::kMaxDnsSrvRecords, "SRV records are bounded");
  const auto found = cluster::assemble_dns_peers(answer);
  check(found.peers.size() <= cluster::kMaxDnsSrvRecords, "nodes found are bounded");
  check(found.counts[0] == found.peers.size(), "each node found is counted as accepted");
  check(found.problems.size() <= cluster::kMaxDnsProblems, "problems logged are bounded");
  for (size_t i = 0; i < found.peers.size(); ++i) {
    check(found.peers[i].node_id != kNoNode && !found.peers[i].addrs.empty(), "a node found has an id and address");
    check(found.peers[i].addrs.size() <= limits::kMaxNodeAddresses, "addresses are bounded");
    if (i > 0) check(found.peers[i - 1].node_id < found.peers[i].node_id, "each node once");
  }
  return 0;
}

std::vector<std::string> dns_discovery_records_seeds() {
  std::vector<std::string> seeds;
  std::string one;
  append_record(one, 0, std::string("\x00\x1b\x59", 3));  // t0.test:7001
  append_record(one, 1, std::string("\x00", 1) + cluster::format_aspen_txt({1, key_of(1), std::nullopt}));
  append_record(one, 2, std::string("\x00", 1) + "127.0.0.1");
  append_record(one, 0, std::string("\x01\x1b\x5a", 3));  // t1.test:7002
  append_record(one, 1, std::string("\x01", 1) + cluster::format_aspen_txt({2, key_of(2), 7002}));
  append_record(one, 2, std::string("\x01", 1) + "::1");
  append_record(one, 4, "aspen id=3 key=" + std::string(64, 'a') + " port=7003 later=1");
  append_record(one, 3, std::string("\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x01" "a\x04test\x00\x00\x01\x00\x01"
                                    "\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01",
                                    40));
  seeds.push_back(one);
  std::string bad;
  append_record(bad, 0, std::string("\x02\x1b\x5b", 3));
  append_record(bad, 1, std::string("\x02", 1) + "aspen id=0 key=zz");
  append_record(bad, 1, std::string("\x02", 1) + "aspen id=5 id=6");
  append_record(bad, 2, std::string("\x02", 1) + "not an ip");
  seeds.push_back(bad);
  return seeds;
}

}  // namespace aspen::fuzz
