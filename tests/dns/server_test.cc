// aspen-dns's zone logic and message handling (src/dns/resolver.h, server.h, admin.h) over
// the deterministic store: every record type, CNAME chains, wildcards (RFC 4592), NXDOMAIN
// vs NODATA with the SOA (RFC 2308), REFUSED outside the zones, TC over UDP, EDNS, the cache
// and its invalidation, and the admin validation errors.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "dns/admin.h"
#include "dns/rdata.h"
#include "dns/server.h"
#include "kv/deterministic_store.h"

namespace aspen::dns {
namespace {

Name N(const char* text) { return *parse_name(text); }

class DnsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Zone z;
    z.name = N("example.test.");
    z.soa = Soa{N("ns1.example.test."), N("hostmaster.example.test."), 1, 3600, 600, 86400, 30};
    ASSERT_TRUE(create_zone(store_, z).has_value());
    set("www.example.test.", type::kA, {"192.0.2.1", "192.0.2.2"});
    set("www.example.test.", type::kAaaa, {"2001:db8::1"});
    set("alias.example.test.", type::kCname, {"www.example.test."});
    set("outside.example.test.", type::kCname, {"www.elsewhere.net."});
    set("*.svc.example.test.", type::kA, {"192.0.2.9"});
    set("example.test.", type::kMx, {"10 mail.example.test."});
    set("example.test.", type::kNs, {"ns1.example.test."});
    set("_sip._udp.example.test.", type::kSrv, {"10 5 5060 sip.example.test."});
    set("txt.example.test.", type::kTxt, {"v=spf1 -all"});
    set("deep.a.b.example.test.", type::kA, {"192.0.2.3"});
  }
  void set(const char* name, uint16_t t, std::vector<std::string> values, uint32_t ttl = 300) {
    auto r = set_records(store_, SetRequest{N(name), t, std::move(values), ttl});
    ASSERT_TRUE(r.has_value()) << name << ": " << r.error().to_string();
  }
  Message ask(const char* name, uint16_t t, bool is_tcp = false, std::optional<uint16_t> edns = std::nullopt) {
    Message q;
    q.header.id = 4242;
    q.header.is_recursion_desired = true;
    Name asked;
    auto parsed = parse_name(name);
    if (parsed) asked = *parsed;
    q.questions.push_back(Question{asked, t, kClassIn});
    if (edns) {
      Record opt;
      opt.type = type::kOpt;
      opt.klass = *edns;
      q.additional.push_back(opt);
    }
    auto out = server_.handle(encode_message(q, kMaxMessageBytes).bytes, is_tcp, now_ms_);
    EXPECT_TRUE(out.has_value());
    auto m = decode_message(out.value_or(""));
    EXPECT_TRUE(m.has_value());
    if (!m) return {};
    EXPECT_EQ(m->header.id, 4242);
    EXPECT_TRUE(m->header.is_response);
    EXPECT_TRUE(m->header.is_recursion_desired);
    EXPECT_FALSE(m->header.is_recursion_available);
    return *m;
  }
  static std::vector<std::string> texts(const std::vector<Record>& rs, uint16_t t) {
    std::vector<std::string> out;
    for (const auto& r : rs) {
      if (r.type == t) out.push_back(rdata_to_text(t, r.rdata));
    }
    return out;
  }
  static void expect_soa_authority(const Message& m) {
    ASSERT_EQ(m.authority.size(), 1u);
    EXPECT_EQ(m.authority[0].type, type::kSoa);
    EXPECT_TRUE(m.authority[0].name.equals(N("example.test.")));
    EXPECT_EQ(m.authority[0].ttl, 30u) << "min(SOA TTL, MINIMUM), RFC 2308";
  }

  kv::DeterministicKeyValueStore store_;
  Server server_{store_, ServerOptions{{}, 0}};  // no cache unless a test makes its own
  uint64_t now_ms_ = 1000;
};

TEST_F(DnsServerTest, AnswersEveryStoredTypeAuthoritatively) {
  auto a = ask("www.example.test.", type::kA);
  EXPECT_EQ(a.header.rcode, rcode::kNoError);
  EXPECT_TRUE(a.header.is_authoritative);
  EXPECT_EQ(texts(a.answers, type::kA), (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_EQ(a.answers[0].ttl, 300u);
  EXPECT_EQ(texts(ask("www.example.test.", type::kAaaa).answers, type::kAaaa), std::vector<std::string>{"2001:db8::1"});
  EXPECT_EQ(texts(ask("example.test.", type::kMx).answers, type::kMx), std::vector<std::string>{"10 mail.example.test."});
  EXPECT_EQ(texts(ask("example.test.", type::kNs).answers, type::kNs), std::vector<std::string>{"ns1.example.test."});
  EXPECT_EQ(texts(ask("_sip._udp.example.test.", type::kSrv).answers, type::kSrv),
            std::vector<std::string>{"10 5 5060 sip.example.test."});
  EXPECT_EQ(texts(ask("txt.example.test.", type::kTxt).answers, type::kTxt), std::vector<std::string>{"v=spf1 -all"});
  auto soa = ask("example.test.", type::kSoa);
  ASSERT_EQ(soa.answers.size(), 1u);
  EXPECT_NE(rdata_to_text(type::kSoa, soa.answers[0].rdata).find("ns1.example.test. hostmaster.example.test."), std::string::npos);
  EXPECT_EQ(texts(ask("alias.example.test.", type::kCname).answers, type::kCname), std::vector<std::string>{"www.example.test."});
  auto any = ask("www.example.test.", type::kAny);
  EXPECT_EQ(any.answers.size(), 3u);
}

TEST_F(DnsServerTest, EveryChangeRaisesTheSoaSerial) {
  auto serial = [&] {
    auto soa = ask("example.test.", type::kSoa);
    return soa.answers.empty() ? std::string() : rdata_to_text(type::kSoa, soa.answers[0].rdata);
  };
  const std::string before = serial();
  set("new.example.test.", type::kA, {"192.0.2.77"});
  EXPECT_NE(serial(), before);
}

TEST_F(DnsServerTest, ACnameIsFollowedInsideTheZonesAndLeftToTheResolverOutside) {
  auto a = ask("alias.example.test.", type::kA);
  EXPECT_EQ(a.header.rcode, rcode::kNoError);
  ASSERT_EQ(a.answers.size(), 3u);
  EXPECT_EQ(a.answers[0].type, type::kCname);
  EXPECT_EQ(texts(a.answers, type::kA), (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_TRUE(a.answers[1].name.equals(N("www.example.test.")));
  auto out = ask("outside.example.test.", type::kA);
  EXPECT_EQ(out.header.rcode, rcode::kNoError);
  ASSERT_EQ(out.answers.size(), 1u);
  EXPECT_EQ(out.answers[0].type, type::kCname);
}

TEST_F(DnsServerTest, ACnameLoopOrOverlongChainEnds) {
  set("loop1.example.test.", type::kCname, {"loop2.example.test."});
  set("loop2.example.test.", type::kCname, {"loop1.example.test."});
  auto a = ask("loop1.example.test.", type::kA);
  EXPECT_EQ(a.header.rcode, rcode::kNoError);
  EXPECT_EQ(a.answers.size(), 2u) << "each link once";
  // A chain longer than kMaxCnameChain stops there.
  for (size_t i = 0; i <= kMaxCnameChain + 2; ++i) {
    set(fmt::format("c{}.example.test.", i).c_str(), type::kCname, {fmt::format("c{}.example.test.", i + 1)});
  }
  EXPECT_EQ(ask("c0.example.test.", type::kA).answers.size(), kMaxCnameChain + 1);
}

TEST_F(DnsServerTest, AWildcardAnswersForNamesThatDoNotExistOnly) {
  auto a = ask("anything.svc.example.test.", type::kA);
  EXPECT_EQ(a.header.rcode, rcode::kNoError);
  ASSERT_EQ(a.answers.size(), 1u);
  EXPECT_TRUE(a.answers[0].name.equals(N("anything.svc.example.test."))) << "the owner is the name asked";
  EXPECT_EQ(rdata_to_text(type::kA, a.answers[0].rdata), "192.0.2.9");
  // Deeper names are covered too (the closest encloser is svc.example.test.).
  EXPECT_EQ(ask("x.y.svc.example.test.", type::kA).answers.size(), 1u);
  // Another type at a wildcard name: NODATA, not NXDOMAIN.
  auto nodata = ask("anything.svc.example.test.", type::kAaaa);
  EXPECT_EQ(nodata.header.rcode, rcode::kNoError);
  EXPECT_TRUE(nodata.answers.empty());
  expect_soa_authority(nodata);
  // A name that exists below the wildcard's parent blocks it (RFC 4592 2.2.1).
  set("real.svc.example.test.", type::kTxt, {"here"});
  auto blocked = ask("real.svc.example.test.", type::kA);
  EXPECT_EQ(blocked.header.rcode, rcode::kNoError);
  EXPECT_TRUE(blocked.answers.empty());
  // The wildcard's own parent is not matched by it.
  EXPECT_EQ(ask("svc.example.test.", type::kA).answers.size(), 0u);
}

TEST_F(DnsServerTest, NxdomainAndNodataCarryTheSoa) {
  auto nx = ask("nope.example.test.", type::kA);
  EXPECT_EQ(nx.header.rcode, rcode::kNxDomain);
  EXPECT_TRUE(nx.header.is_authoritative);
  EXPECT_TRUE(nx.answers.empty());
  expect_soa_authority(nx);
  auto nodata = ask("www.example.test.", type::kMx);
  EXPECT_EQ(nodata.header.rcode, rcode::kNoError);
  EXPECT_TRUE(nodata.answers.empty());
  expect_soa_authority(nodata);
  // An empty non-terminal exists: NODATA.
  auto ent = ask("a.b.example.test.", type::kA);
  EXPECT_EQ(ent.header.rcode, rcode::kNoError);
  expect_soa_authority(ent);
  EXPECT_EQ(ask("b.example.test.", type::kA).header.rcode, rcode::kNoError);
  // A CNAME to a name that does not exist: NXDOMAIN with the CNAME (RFC 6604).
  set("dangling.example.test.", type::kCname, {"gone.example.test."});
  auto dangling = ask("dangling.example.test.", type::kA);
  EXPECT_EQ(dangling.header.rcode, rcode::kNxDomain);
  EXPECT_EQ(dangling.answers.size(), 1u);
}

TEST_F(DnsServerTest, NamesOutsideTheZonesAndZoneTransfersAreRefused) {
  auto r = ask("www.example.com.", type::kA);
  EXPECT_EQ(r.header.rcode, rcode::kRefused);
  EXPECT_FALSE(r.header.is_authoritative);
  EXPECT_TRUE(r.answers.empty());
  EXPECT_EQ(ask("example.test.", type::kAxfr).header.rcode, rcode::kRefused);
  EXPECT_EQ(ask(".", type::kNs).header.rcode, rcode::kRefused);
  // A server limited to other zones refuses this one.
  Server limited(store_, ServerOptions{{N("other.test.")}, 0});
  Message q;
  q.questions.push_back(Question{N("www.example.test."), type::kA, kClassIn});
  auto out = decode_message(*limited.handle(encode_message(q, kMaxMessageBytes).bytes, false, 0));
  EXPECT_EQ(out->header.rcode, rcode::kRefused);
}

TEST_F(DnsServerTest, QueryCaseIsEchoedAndIgnoredForMatching) {
  Message q;
  q.header.id = 1;
  Name mixed;
  mixed.labels = {"WwW", "ExAmple", "TEST"};
  q.questions.push_back(Question{mixed, type::kA, kClassIn});
  auto out = decode_message(*server_.handle(encode_message(q, kMaxMessageBytes).bytes, false, 0));
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->answers.size(), 2u);
  EXPECT_EQ(out->questions[0].name.labels, mixed.labels);
  EXPECT_EQ(out->answers[0].name.labels, mixed.labels);
}

TEST_F(DnsServerTest, TooLargeForUdpIsTruncatedAndWholeOverTcp) {
  set("big.example.test.", type::kTxt, {std::string(300, 'a'), std::string(300, 'b'), std::string(300, 'c')});
  auto udp = ask("big.example.test.", type::kTxt);
  EXPECT_TRUE(udp.header.is_truncated);
  EXPECT_TRUE(udp.answers.empty());
  auto tcp = ask("big.example.test.", type::kTxt, true);
  EXPECT_FALSE(tcp.header.is_truncated);
  EXPECT_EQ(tcp.answers.size(), 3u);
  // With EDNS the UDP answer may be up to kMaxUdpPayloadBytes (it fits) and carries an OPT.
  auto edns = ask("big.example.test.", type::kTxt, false, 4096);
  EXPECT_FALSE(edns.header.is_truncated);
  EXPECT_EQ(edns.answers.size(), 3u);
  ASSERT_NE(edns.opt(), nullptr);
  EXPECT_EQ(edns.opt()->klass, kMaxUdpPayloadBytes);
}

TEST_F(DnsServerTest, MalformedQueriesGetFormerrOrNothing) {
  // A header with a question that runs past the end: FORMERR with the id.
  std::string bad("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05" "abc", 16);
  auto out = server_.handle(bad, false, 0);
  ASSERT_TRUE(out.has_value());
  auto m = decode_message(*out);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->header.id, 0x1234);
  EXPECT_EQ(m->header.rcode, rcode::kFormErr);
  EXPECT_FALSE(server_.handle("tiny", false, 0).has_value()) << "under 12 bytes: nothing to answer";
  std::string response = bad;
  response[2] = static_cast<char>(0x81);
  EXPECT_FALSE(server_.handle(response, false, 0).has_value()) << "responses are never answered";
  Message two;
  two.questions.push_back(Question{N("a.example.test."), type::kA, kClassIn});
  two.questions.push_back(Question{N("b.example.test."), type::kA, kClassIn});
  EXPECT_EQ(decode_message(*server_.handle(encode_message(two, kMaxMessageBytes).bytes, false, 0))->header.rcode, rcode::kFormErr);
  Message notify;
  notify.header.opcode = 4;
  notify.questions.push_back(Question{N("example.test."), type::kSoa, kClassIn});
  EXPECT_EQ(decode_message(*server_.handle(encode_message(notify, kMaxMessageBytes).bytes, false, 0))->header.rcode, rcode::kNotImp);
}

TEST_F(DnsServerTest, CachedAnswersLastTheTtlAndInvalidateDropsThem) {
  Server cached(store_, ServerOptions{{}, 5000});
  Message q;
  q.questions.push_back(Question{N("www.example.test."), type::kA, kClassIn});
  const std::string query = encode_message(q, kMaxMessageBytes).bytes;
  auto first = [&](uint64_t at) {
    auto m = decode_message(*cached.handle(query, false, at));
    return m->answers.empty() ? std::string() : rdata_to_text(type::kA, m->answers[0].rdata);
  };
  EXPECT_EQ(first(0), "192.0.2.1");
  set("www.example.test.", type::kA, {"192.0.2.50"});
  EXPECT_EQ(first(4999), "192.0.2.1") << "within the cache TTL the old answer may be served";
  EXPECT_EQ(cached.stats().cache_hits, 1u);
  EXPECT_EQ(first(5000), "192.0.2.50") << "never past it";
  set("www.example.test.", type::kA, {"192.0.2.51"});
  cached.invalidate();
  EXPECT_EQ(first(5001), "192.0.2.51") << "a change reported by the watch is served at once";
}

TEST(DnsAdmin, ValidatesZonesAndRecordsWithClearErrors) {
  kv::DeterministicKeyValueStore store;
  auto no_zone = set_records(store, SetRequest{N("www.example.test."), type::kA, {"192.0.2.1"}});
  ASSERT_FALSE(no_zone.has_value());
  EXPECT_EQ(no_zone.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(no_zone.error().message().find("zone create"), std::string::npos);
  Zone z;
  z.name = N("example.test.");
  z.soa = Soa{N("ns1.example.test."), N("hostmaster.example.test.")};
  ASSERT_TRUE(create_zone(store, z).has_value());
  EXPECT_FALSE(create_zone(store, z).has_value()) << "exists already";
  auto bad_value = set_records(store, SetRequest{N("www.example.test."), type::kA, {"not-an-ip"}});
  ASSERT_FALSE(bad_value.has_value());
  EXPECT_NE(bad_value.error().message().find("IPv4"), std::string::npos);
  EXPECT_FALSE(set_records(store, SetRequest{N("www.example.test."), type::kA, {"192.0.2.1"}, kMaxTtlS + 1}).has_value());
  EXPECT_FALSE(set_records(store, SetRequest{N("example.test."), type::kCname, {"x.example.test."}}).has_value()) << "apex";
  EXPECT_FALSE(set_records(store, SetRequest{N("example.test."), type::kSoa, {"a. b. 1 2 3 4 5"}}).has_value());
  ASSERT_TRUE(set_records(store, SetRequest{N("www.example.test."), type::kA, {"192.0.2.1"}}).has_value());
  auto cname_clash = set_records(store, SetRequest{N("www.example.test."), type::kCname, {"x.example.test."}});
  ASSERT_FALSE(cname_clash.has_value());
  EXPECT_NE(cname_clash.error().message().find("alone"), std::string::npos);
  std::vector<std::string> many;
  for (size_t i = 0; i <= kMaxValuesPerRecordSet; ++i) many.push_back(fmt::format("10.0.{}.{}", i / 256, i % 256));
  EXPECT_FALSE(set_records(store, SetRequest{N("many.example.test."), type::kA, many}).has_value());
  // --add appends, delete of one value leaves the rest, delete of the name removes all.
  ASSERT_TRUE(set_records(store, SetRequest{N("www.example.test."), type::kA, {"192.0.2.2"}, 300, true}).has_value());
  auto listed = list_records(store, N("example.test."));
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 2u) << "the SOA and www's A set";
  EXPECT_EQ(listed->at(1).set.rdata.size(), 2u);
  EXPECT_EQ(*delete_records(store, N("www.example.test."), type::kA, "192.0.2.1"), 1u);
  EXPECT_EQ(*delete_records(store, N("www.example.test."), std::nullopt, std::nullopt), 1u);
  EXPECT_EQ(delete_records(store, N("www.example.test."), std::nullopt, std::nullopt).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(set_records(store, SetRequest{N("a.example.test."), type::kA, {"192.0.2.1"}}).has_value());
  EXPECT_EQ(*delete_zone(store, N("example.test.")), 1u);
  EXPECT_TRUE(list_zones(store)->empty());
  EXPECT_TRUE(kv::scan_prefix(store, "dns/")->kvs().empty()) << "nothing left under dns/";
}

TEST(DnsAdmin, StoredDataThatDoesNotDecodeIsSkippedNotServed) {
  kv::DeterministicKeyValueStore store;
  Zone z;
  z.name = N("example.test.");
  z.soa = Soa{N("ns1.example.test."), N("hostmaster.example.test.")};
  ASSERT_TRUE(create_zone(store, z).has_value());
  ASSERT_TRUE(kv::put(store, record_set_key(z.name, N("x.example.test."), type::kA), "garbage").has_value());
  ASSERT_TRUE(kv::put(store, "dns/zone/broken.test.", "ttl=abc").has_value());
  Server server(store, ServerOptions{{}, 0});
  Message q;
  q.questions.push_back(Question{N("x.example.test."), type::kA, kClassIn});
  auto out = decode_message(*server.handle(encode_message(q, kMaxMessageBytes).bytes, false, 0));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->header.rcode, rcode::kNoError) << "the name exists (a key is there) but holds nothing servable";
  EXPECT_TRUE(out->answers.empty());
  EXPECT_EQ(list_zones(store)->size(), 1u);
  EXPECT_EQ(decode_record_set(type::kA, "ttl=1\n" + std::string(kMaxRecordSetBytes, 'x')).error().code(), ErrorCode::kCorruption);
}

}  // namespace
}  // namespace aspen::dns
