// DNS discovery's records (cluster/dns_discovery.h): the TXT format, names, how an SRV/TXT/A
// answer becomes nodes and what in it is refused (each refusal counted once), the TTL read
// from raw answers and when to look again. Hostile input: rapidcheck over random bytes.
#include "cluster/dns_discovery.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>

#include "cluster/dns_discovery_settings.h"

namespace aspen::cluster {
namespace {

transport::PublicKey key_of(uint8_t byte) {
  std::array<uint8_t, transport::kPublicKeySizeBytes> raw{};
  raw.fill(byte);
  return transport::PublicKey(raw);
}

std::string txt(NodeId id, uint8_t key, std::optional<uint16_t> port = std::nullopt) {
  return format_aspen_txt(AspenTxt{id, key_of(key), port});
}

uint64_t count(const DnsAssembly& a, DnsRecordVerdict v) { return a.counts[static_cast<size_t>(v)]; }

TEST(DnsDiscoveryTxt, AWellFormedRecordParses) {
  const std::string key = key_of(7).to_string();
  auto r = parse_aspen_txt("aspen id=3 key=" + key);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->node_id, 3u);
  EXPECT_EQ(r->key, key_of(7));
  EXPECT_FALSE(r->port.has_value());
  // Extra spaces, a port, a later version's field, hex keys.
  auto p = parse_aspen_txt("aspen  port=7003 key=" + std::string(64, 'a') + " future=1 id=18446744073709551615 ");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->node_id, UINT64_MAX);
  EXPECT_EQ(p->port, 7003);
  EXPECT_EQ(p->key, key_of(0xaa));
}

TEST(DnsDiscoveryTxt, EachWayARecordIsWrongIsRefusedWithAReason) {
  const std::string key = key_of(7).to_string();
  struct Case {
    std::string record;
    DnsRecordVerdict verdict;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"aspenid=3", DnsRecordVerdict::kBadTxt, "does not start with 'aspen '"},
      {"aspen id=0 key=" + key, DnsRecordVerdict::kBadTxt, "id must be a non-zero integer"},
      {"aspen id=-1 key=" + key, DnsRecordVerdict::kBadTxt, "id must be a non-zero integer"},
      {"aspen id=3x key=" + key, DnsRecordVerdict::kBadTxt, "id must be a non-zero integer"},
      {"aspen id=99999999999999999999 key=" + key, DnsRecordVerdict::kBadTxt, "id must be"},
      {"aspen key=" + key, DnsRecordVerdict::kBadTxt, "no id= field"},
      {"aspen id=3", DnsRecordVerdict::kBadKey, "no key= field"},
      {"aspen id=3 key=zzzz", DnsRecordVerdict::kBadKey, "key: not a public key"},
      {"aspen id=3 key=" + std::string(64, 'g'), DnsRecordVerdict::kBadKey, "not hex digits"},
      {"aspen id=3 id=4 key=" + key, DnsRecordVerdict::kBadTxt, "field 'id' is given twice"},
      {"aspen id=3 key=" + key + " port=0", DnsRecordVerdict::kBadTxt, "port must be 1 to 65535"},
      {"aspen id=3 key=" + key + " port=65536", DnsRecordVerdict::kBadTxt, "port must be 1 to 65535"},
      {"aspen id=3 key=" + key + " junk", DnsRecordVerdict::kBadTxt, "field 'junk' is not name=value"},
      {"aspen id=3 key=" + key + " =x", DnsRecordVerdict::kBadTxt, "is not name=value"},
      {"aspen id=3 key=" + key + " x=" + std::string(600, 'y'), DnsRecordVerdict::kOversized, "more than the 512"},
  };
  for (const auto& c : cases) {
    auto r = parse_aspen_txt(c.record);
    ASSERT_FALSE(r) << c.record;
    EXPECT_EQ(r.error().verdict, c.verdict) << c.record << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
    EXPECT_LE(r.error().message.size(), 300u) << "the message quotes a bounded excerpt";
  }
}

TEST(DnsDiscoveryTxt, OnlyRecordsStartingWithTheWordAspenAreOurs) {
  EXPECT_TRUE(is_aspen_txt("aspen id=1"));
  EXPECT_TRUE(is_aspen_txt("aspen"));
  EXPECT_FALSE(is_aspen_txt("aspenx id=1"));
  EXPECT_FALSE(is_aspen_txt("v=spf1 -all"));
  EXPECT_FALSE(is_aspen_txt(""));
}

TEST(DnsDiscoveryTxt, ExcerptsOfHostileBytesArePrintableAndBounded) {
  EXPECT_EQ(printable_excerpt(std::string("a\0\"\\\xff", 5), 64), "a\\x00\\x22\\x5c\\xff");
  EXPECT_EQ(printable_excerpt(std::string(100, 'x'), 4), "xxxx...");
}

RC_GTEST_PROP(DnsDiscoveryTxtProperty, AnyBytesParseOrAreRefusedWithAReason, (std::string bytes)) {
  for (const std::string& record : {bytes, "aspen " + bytes, "aspen id=1 key=" + bytes}) {
    auto r = parse_aspen_txt(record);
    if (r) {
      RC_ASSERT(r->node_id != kNoNode);
      RC_ASSERT(record.size() <= kMaxDnsTxtRecordBytes);
      // What parsed prints as a record that parses to the same.
      auto again = parse_aspen_txt(format_aspen_txt(*r));
      RC_ASSERT(again.has_value());
      RC_ASSERT(*again == *r);
    } else {
      RC_ASSERT(r.error().verdict != DnsRecordVerdict::kAccepted);
      RC_ASSERT(r.error().message.starts_with("TXT record \""));
      RC_ASSERT(r.error().message.size() <= 400u);
    }
  }
}

RC_GTEST_PROP(DnsDiscoveryTxtProperty, ValidRecordsRoundTrip, (uint64_t id, uint8_t key, uint16_t port, bool has_port)) {
  RC_PRE(id != kNoNode);
  const AspenTxt t{id, key_of(key), has_port && port != 0 ? std::optional<uint16_t>(port) : std::nullopt};
  auto r = parse_aspen_txt(format_aspen_txt(t));
  RC_ASSERT(r.has_value());
  RC_ASSERT(*r == t);
}

TEST(DnsDiscoveryNames, ServiceAndHostNamesAreCheckedWithAReason) {
  EXPECT_TRUE(validate_dns_name("_aspen._udp.example.test."));
  EXPECT_TRUE(validate_dns_name("_aspen._udp.example.test"));
  EXPECT_TRUE(validate_dns_name("a"));
  EXPECT_TRUE(validate_dns_name(std::string(63, 'a') + ".b"));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {".", "root"},
      {"a..b", "empty label"},
      {".a", "empty label"},
      {std::string(64, 'a') + ".b", "longer than 63"},
      {"a b.c", "only letters"},
      {"a/b", "only letters"},
      {std::string(300, 'a'), "longer than 253"},
  };
  for (const auto& [name, says] : bad) {
    auto s = validate_dns_name(name);
    ASSERT_FALSE(s) << name;
    EXPECT_NE(s.error().message().find(says), std::string::npos) << s.error().message();
  }
}

DnsLookupAnswer answer_with(std::vector<DnsSrvRecord> srv, std::map<std::string, DnsTargetAnswer> targets) {
  DnsLookupAnswer a;
  a.srv = std::move(srv);
  a.srv_dropped = take_srv_records(a.srv);
  a.targets = std::move(targets);
  return a;
}

TEST(DnsDiscoveryAnswers, EachSrvTargetWithItsTxtAndAddressIsANode) {
  auto a = assemble_dns_peers(answer_with(
      {{"node-1.test", 7001, 0, 0}, {"node-2.test", 7002, 0, 0}},
      {{"node-1.test", {{"v=spf1 -all", txt(1, 1)}, {"10.0.0.1", "fd00::1"}, 0}},
       {"node-2.test", {{txt(2, 2)}, {"10.0.0.2"}, 0}}}));
  ASSERT_EQ(a.peers.size(), 2u);
  EXPECT_EQ(a.peers[0].node_id, 1u);
  EXPECT_EQ(a.peers[0].key, key_of(1));
  ASSERT_EQ(a.peers[0].addrs.size(), 2u);
  EXPECT_EQ(a.peers[0].addrs[0].to_string(), "10.0.0.1:7001");
  EXPECT_EQ(a.peers[0].addrs[1].to_string(), "[fd00::1]:7001");
  EXPECT_EQ(a.peers[0].target, "node-1.test");
  EXPECT_EQ(a.peers[1].addrs[0].to_string(), "10.0.0.2:7002");
  EXPECT_EQ(count(a, DnsRecordVerdict::kAccepted), 2u);
  EXPECT_TRUE(a.problems.empty());
}

TEST(DnsDiscoveryAnswers, NodesSharingATargetAreToldApartByPort) {
  auto a = assemble_dns_peers(answer_with({{"host.test", 7001, 0, 0}, {"host.test", 7002, 0, 0}},
                                          {{"host.test", {{txt(1, 1, 7001), txt(2, 2, 7002)}, {"127.0.0.1"}, 0}}}));
  ASSERT_EQ(a.peers.size(), 2u);
  EXPECT_EQ(a.peers[0].addrs[0].to_string(), "127.0.0.1:7001");
  EXPECT_EQ(a.peers[1].addrs[0].to_string(), "127.0.0.1:7002");
  // Without ports, neither TXT can be told to belong to one SRV record.
  auto b = assemble_dns_peers(answer_with({{"host.test", 7001, 0, 0}, {"host.test", 7002, 0, 0}},
                                          {{"host.test", {{txt(1, 1), txt(2, 2)}, {"127.0.0.1"}, 0}}}));
  EXPECT_TRUE(b.peers.empty());
  EXPECT_EQ(count(b, DnsRecordVerdict::kAmbiguous), 2u);
}

TEST(DnsDiscoveryAnswers, EveryKindOfBadRecordIsRefusedAndCountedOnce) {
  auto a = assemble_dns_peers(answer_with(
      {{"no-txt.test", 7001, 0, 0},
       {"bad-txt.test", 7002, 0, 0},
       {"bad-key.test", 7003, 0, 0},
       {"no-addr.test", 7004, 0, 0},
       {"good.test", 7005, 0, 0},
       {"oversized.test", 7006, 0, 0}},
      {{"no-txt.test", {{"v=spf1 -all"}, {"10.0.0.1"}, 0}},
       {"bad-txt.test", {{"aspen id=zero key=x"}, {"10.0.0.2"}, 0}},
       {"bad-key.test", {{"aspen id=3 key=" + std::string(64, 'z')}, {"10.0.0.3"}, 0}},
       {"no-addr.test", {{txt(4, 4)}, {}, 0}},
       {"good.test", {{txt(5, 5)}, {"10.0.0.5", "not an ip"}, 0}},
       {"oversized.test", {{}, {"10.0.0.6"}, 1}}}));
  ASSERT_EQ(a.peers.size(), 1u);
  EXPECT_EQ(a.peers[0].node_id, 5u);
  EXPECT_EQ(a.peers[0].addrs.size(), 1u);
  EXPECT_EQ(count(a, DnsRecordVerdict::kAccepted), 1u);
  EXPECT_EQ(count(a, DnsRecordVerdict::kNoTxt), 1u);
  EXPECT_EQ(count(a, DnsRecordVerdict::kBadTxt), 1u);
  EXPECT_EQ(count(a, DnsRecordVerdict::kBadKey), 1u);
  EXPECT_EQ(count(a, DnsRecordVerdict::kNoAddress), 1u);
  EXPECT_EQ(count(a, DnsRecordVerdict::kOversized), 1u);
  EXPECT_EQ(a.problems.size(), 5u);
}

TEST(DnsDiscoveryAnswers, OneIdUnderTwoKeysIsBelievedNeitherWay) {
  auto a = assemble_dns_peers(answer_with({{"a.test", 7001, 0, 0}, {"b.test", 7002, 0, 0}, {"c.test", 7003, 0, 0}},
                                          {{"a.test", {{txt(1, 1)}, {"10.0.0.1"}, 0}},
                                           {"b.test", {{txt(1, 2)}, {"10.0.0.2"}, 0}},
                                           {"c.test", {{txt(1, 1)}, {"10.0.0.3"}, 0}}}));
  EXPECT_TRUE(a.peers.empty());
  EXPECT_EQ(count(a, DnsRecordVerdict::kAccepted), 0u);
  EXPECT_EQ(count(a, DnsRecordVerdict::kAmbiguous), 3u);
  // The same node at two SRV records with one key: one node, two addresses.
  auto b = assemble_dns_peers(answer_with({{"a.test", 7001, 0, 0}, {"b.test", 7001, 0, 0}},
                                          {{"a.test", {{txt(1, 1)}, {"10.0.0.1"}, 0}},
                                           {"b.test", {{txt(1, 1)}, {"10.0.0.2"}, 0}}}));
  ASSERT_EQ(b.peers.size(), 1u);
  EXPECT_EQ(b.peers[0].addrs.size(), 2u);
  EXPECT_EQ(count(b, DnsRecordVerdict::kAccepted), 1u);
}

TEST(DnsDiscoveryAnswers, RecordsPastTheLimitsAreRefusedAsTooMany) {
  std::vector<DnsSrvRecord> srv;
  std::map<std::string, DnsTargetAnswer> targets;
  for (uint16_t i = 1; i <= kMaxDnsSrvRecords + 8; ++i) {
    const std::string name = "n" + std::to_string(i) + ".test";
    srv.push_back({name, static_cast<uint16_t>(7000 + i), static_cast<uint16_t>(i), 0});
    targets[name] = {{txt(i, static_cast<uint8_t>(i))}, {"10.0.0.1"}, 0};
  }
  srv.push_back(srv.front());  // a duplicate is not a record more
  DnsLookupAnswer in = answer_with(srv, targets);
  EXPECT_EQ(in.srv.size(), kMaxDnsSrvRecords);
  EXPECT_EQ(in.srv_dropped, 8u);
  EXPECT_EQ(in.srv.front().priority, 1);  // lowest priority first
  auto a = assemble_dns_peers(in);
  EXPECT_EQ(a.peers.size(), kMaxDnsSrvRecords);
  EXPECT_EQ(count(a, DnsRecordVerdict::kTooMany), 8u);
  EXPECT_LE(a.problems.size(), kMaxDnsProblems);

  DnsTargetAnswer crowded{{}, {"10.0.0.1"}, 0};
  for (uint16_t i = 1; i <= kMaxDnsTxtRecordsPerName + 3; ++i) crowded.txts.push_back(txt(1, 1, i));
  auto b = assemble_dns_peers(answer_with({{"crowded.test", 1, 0, 0}}, {{"crowded.test", crowded}}));
  EXPECT_EQ(b.peers.size(), 1u);
  EXPECT_EQ(count(b, DnsRecordVerdict::kTooMany), 3u);
}

RC_GTEST_PROP(DnsDiscoveryAnswersProperty, AnyAnswerGivesBoundedNodesAndEveryRecordAVerdict,
              (std::vector<std::string> txts, std::vector<std::string> ips, std::vector<uint16_t> ports)) {
  std::vector<DnsSrvRecord> srv;
  std::map<std::string, DnsTargetAnswer> targets;
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string name = "t" + std::to_string(i % 3) + ".test";
    srv.push_back({name, ports[i], 0, 0});
    auto& t = targets[name];
    if (i < txts.size()) t.txts.push_back(i % 2 == 0 ? "aspen " + txts[i] : txts[i]);
    if (i < ips.size()) t.ips.push_back(ips[i]);
    if (i % 4 == 0) t.txts.push_back(txt(i + 1, static_cast<uint8_t>(i)));
    if (i % 5 == 0) t.ips.push_back("127.0.0.1");
  }
  auto a = assemble_dns_peers(answer_with(srv, targets));
  RC_ASSERT(a.peers.size() <= kMaxDnsSrvRecords);
  RC_ASSERT(a.counts[static_cast<size_t>(DnsRecordVerdict::kAccepted)] == a.peers.size());
  RC_ASSERT(a.problems.size() <= kMaxDnsProblems);
  for (const auto& p : a.peers) {
    RC_ASSERT(p.node_id != kNoNode);
    RC_ASSERT(!p.addrs.empty());
    RC_ASSERT(p.addrs.size() <= limits::kMaxNodeAddresses);
  }
}

// A DNS message: header, one question, answers with the given TTLs (A records).
std::string message_with_ttls(const std::vector<uint32_t>& ttls) {
  std::string m = {0, 1, static_cast<char>(0x81), static_cast<char>(0x80), 0, 1, 0, static_cast<char>(ttls.size()),
                   0, 0, 0, 0};
  m += std::string("\x01" "a\x04test\x00", 8) + std::string("\x00\x01\x00\x01", 4);
  for (uint32_t ttl : ttls) {
    m += std::string("\xc0\x0c\x00\x01\x00\x01", 6);
    for (int shift = 24; shift >= 0; shift -= 8) m += static_cast<char>((ttl >> shift) & 0xff);
    m += std::string("\x00\x04\x0a\x00\x00\x01", 6);
  }
  return m;
}

TEST(DnsDiscoveryTtl, TheSmallestAnswerTtlIsRead) {
  EXPECT_EQ(min_answer_ttl_s(message_with_ttls({300, 60, 120})), 60u);
  EXPECT_EQ(min_answer_ttl_s(message_with_ttls({0x80000000U})), 0u);  // RFC 2181 §8
  EXPECT_FALSE(min_answer_ttl_s(message_with_ttls({})).has_value());
  const std::string whole = message_with_ttls({30});
  for (size_t n = 0; n < whole.size(); ++n) EXPECT_FALSE(min_answer_ttl_s(whole.substr(0, n)).has_value()) << n;
}

RC_GTEST_PROP(DnsDiscoveryTtlProperty, AnyBytesGiveATtlOrNone, (std::string bytes, std::vector<uint32_t> ttls)) {
  (void)min_answer_ttl_s(bytes);
  std::string m = message_with_ttls(std::vector<uint32_t>(ttls.begin(), ttls.begin() + std::min<size_t>(ttls.size(), 40)));
  if (!ttls.empty()) RC_ASSERT(min_answer_ttl_s(m).has_value());
  m += bytes;  // trailing bytes after the promised answers are not read
  (void)min_answer_ttl_s(m);
  if (!m.empty()) m[m.size() / 2] = static_cast<char>(m[m.size() / 2] ^ 0xff);
  (void)min_answer_ttl_s(m);
}

TEST(DnsDiscoveryTiming, TtlsAreRespectedWithinBoundsAndFailuresBackOff) {
  EXPECT_EQ(next_dns_lookup_delay_ms(60, std::nullopt, 0), 60000u);
  EXPECT_EQ(next_dns_lookup_delay_ms(60, 30, 0), 30000u);
  EXPECT_EQ(next_dns_lookup_delay_ms(60, 0, 0), 5000u);       // no lookup storm on TTL 0
  EXPECT_EQ(next_dns_lookup_delay_ms(60, 86400, 0), 60000u);  // the interval bounds long TTLs
  EXPECT_EQ(next_dns_lookup_delay_ms(2, 0, 0), 2000u);        // a shorter interval wins over the floor
  EXPECT_EQ(next_dns_lookup_delay_ms(60, 30, 1), 1000u);
  EXPECT_EQ(next_dns_lookup_delay_ms(60, 30, 3), 4000u);
  EXPECT_EQ(next_dns_lookup_delay_ms(60, 30, 50), 60000u);
}

}  // namespace
}  // namespace aspen::cluster
