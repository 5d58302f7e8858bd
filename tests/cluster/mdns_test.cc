// mDNS discovery's codec (cluster/mdns_codec.h) and core (cluster/mdns.h): round trips,
// properties over random messages and random bytes, hostile datagrams (pointer loops,
// lengths that lie, floods, other clusters, forged ids), and what two cores learn of each
// other.
#include "cluster/mdns.h"

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <rapidcheck/gtest.h>

#include <random>
#include <string>

#include "core/rng.h"

namespace aspen::cluster {
namespace {

constexpr uint64_t kNowMs = 1'800'000'000'000;
const std::string kTag(32, 'a');
const std::string kOtherTag(32, 'b');

transport::PublicKey key_of(uint8_t byte) {
  std::array<uint8_t, transport::kSecretSeedSizeBytes> seed{};
  seed.fill(byte);
  return transport::NodeIdentity::from_seed(seed).public_key();
}

MdnsCoreConfig config_of(NodeId id, std::string ip, std::string tag = kTag) {
  MdnsCoreConfig c;
  c.node_id = id;
  c.key = key_of(static_cast<uint8_t>(id));
  c.ipv4 = std::move(ip);
  c.port = static_cast<uint16_t>(7000 + id);
  c.cluster_tag = std::move(tag);
  return c;
}

// --- codec ------------------------------------------------------------------------------

TEST(MdnsCodec, AnnouncementRoundTripsAndFitsOnePacket) {
  MdnsCore core(config_of(1, "10.0.0.1"));
  const std::string bytes = core.announcement();
  EXPECT_LE(bytes.size(), kMaxMdnsSendBytes);
  auto m = decode_dns_message(bytes);
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_TRUE(m->is_response);
  ASSERT_EQ(m->answers.size(), 3u);
  ASSERT_EQ(m->additionals.size(), 1u);
  EXPECT_EQ(m->answers[0].type, kDnsTypePtr);
  EXPECT_EQ(m->answers[0].ptr.to_string(), "aspen-1-aaaaaaaa._aspen._udp.local");
  EXPECT_EQ(m->answers[1].srv.port, 7001);
  EXPECT_EQ(m->answers[1].srv.target.to_string(), "aspen-1-aaaaaaaa.local");
  EXPECT_EQ(m->answers[2].txt.size(), 4u);
  EXPECT_EQ((m->additionals[0].a), (std::array<uint8_t, 4>{10, 0, 0, 1}));
  auto again = encode_dns_message(*m);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, bytes);
}

TEST(MdnsCodec, NamesCompareWithoutCase) {
  EXPECT_TRUE(DnsName::from_dotted("_ASPEN._udp.Local").equals(DnsName::from_dotted("_aspen._udp.local")));
  EXPECT_TRUE(DnsName::from_dotted("x._aspen._udp.local").ends_with(DnsName::from_dotted("_aspen._UDP.local")));
  EXPECT_FALSE(DnsName::from_dotted("local").ends_with(DnsName::from_dotted("_udp.local")));
}

// A header, then `body`.
std::string with_header(uint16_t qd, uint16_t an, std::string body, uint16_t flags = 0x8400) {
  std::string out = {0, 0, static_cast<char>(flags >> 8), static_cast<char>(flags & 0xff), static_cast<char>(qd >> 8),
                     static_cast<char>(qd & 0xff), static_cast<char>(an >> 8), static_cast<char>(an & 0xff), 0, 0, 0, 0};
  return out + body;
}

TEST(MdnsCodec, CompressionPointersThatLoopOrPointForwardAreRefused) {
  // A question whose name is a pointer to itself (offset 12).
  auto self_loop = decode_dns_message(with_header(1, 0, std::string("\xc0\x0c\x00\x0c\x00\x01", 6)));
  ASSERT_FALSE(self_loop.has_value());
  EXPECT_NE(self_loop.error().message().find("backwards"), std::string::npos);
  // A pointer forward, past itself.
  EXPECT_FALSE(decode_dns_message(with_header(1, 0, std::string("\xc0\x20\x00\x0c\x00\x01", 6))).has_value());
  // A reserved label type (0x40).
  EXPECT_FALSE(decode_dns_message(with_header(1, 0, std::string("\x40\x00\x00\x0c\x00\x01", 6))).has_value());
}

TEST(MdnsCodec, PointerChainsAreBounded) {
  // Record 1: name "a" at offset 12, type 99, its data a chain of 20 compression pointers,
  // each to the one before (the first to "a"). Record 2's name is the last pointer: reading
  // it takes more than kMaxMdnsNameJumps jumps.
  std::string msg = with_header(0, 2, std::string());
  const size_t data_at = msg.size() + 3 + 10;
  std::string data;
  size_t p = msg.size();  // "a" label of record 1's name
  for (int i = 0; i < 20; ++i) {
    const size_t at = data_at + data.size();
    data += static_cast<char>(0xc0 | (p >> 8));
    data += static_cast<char>(p & 0xff);
    p = at;
  }
  msg += std::string("\x01" "a\x00", 3);
  msg += std::string("\x00\x63\x00\x01\x00\x00\x00\x00", 8);
  msg += static_cast<char>(0);
  msg += static_cast<char>(data.size());
  msg += data;
  // Record 2: its name is the last pointer of the chain.
  msg += static_cast<char>(0xc0 | (p >> 8));
  msg += static_cast<char>(p & 0xff);
  msg += std::string("\x00\x63\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  auto chained = decode_dns_message(msg);
  ASSERT_FALSE(chained.has_value());
  EXPECT_NE(chained.error().message().find("too many compression pointers"), std::string::npos);
}

TEST(MdnsCodec, LengthsThatLieAreRefused) {
  MdnsCore core(config_of(1, "10.0.0.1"));
  const std::string good = core.announcement();
  // Every proper prefix is refused (never read past the end).
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(decode_dns_message(good.substr(0, n)).has_value()) << n;
  }
  // A header that claims more records than the limit.
  EXPECT_FALSE(decode_dns_message(with_header(0, 65535, std::string())).has_value());
  EXPECT_FALSE(decode_dns_message(with_header(65535, 0, std::string())).has_value());
  // An A record of 5 bytes.
  auto bad_a = decode_dns_message(with_header(0, 1, std::string("\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x05" "abcde", 16)));
  EXPECT_FALSE(bad_a.has_value());
  // Over the datagram limit.
  EXPECT_FALSE(decode_dns_message(std::string(kMaxMdnsDatagramBytes + 1, '\0')).has_value());
}

TEST(MdnsCodec, EncoderRefusesWhatDoesNotFit) {
  DnsMessage m;
  m.questions.push_back(DnsQuestion{DnsName{{std::string(64, 'x')}}, kDnsTypePtr, kDnsClassIn, false});
  EXPECT_FALSE(encode_dns_message(m).has_value());  // a label over 63 bytes
  m.questions = {DnsQuestion{DnsName{std::vector<std::string>(60, std::string(5, 'x'))}, kDnsTypePtr, kDnsClassIn, false}};
  EXPECT_FALSE(encode_dns_message(m).has_value());  // a name over 255 bytes
  DnsMessage big;
  big.is_response = true;
  for (int i = 0; i < 40; ++i) {
    DnsRecord r;
    r.name = DnsName::from_dotted("x.local");
    r.type = 99;
    r.raw = std::string(60, 'r');
    big.answers.push_back(r);
  }
  auto refused = encode_dns_message(big, kMaxMdnsSendBytes);
  ASSERT_FALSE(refused.has_value());
  EXPECT_TRUE(encode_dns_message(big, kMaxMdnsDatagramBytes).has_value());
}

rc::Gen<std::string> gen_label() {
  return rc::gen::map(rc::gen::container<std::string>(rc::gen::inRange<char>(1, 127)), [](std::string s) {
    if (s.empty()) s = "x";
    if (s.size() > kMaxMdnsLabelBytes) s.resize(kMaxMdnsLabelBytes);
    return s;
  });
}

// A vector of 0 to max_size-1 elements of `gen`.
template <typename T>
rc::Gen<std::vector<T>> gen_vector(size_t max_size, rc::Gen<T> gen) {
  return rc::gen::mapcat(rc::gen::inRange<size_t>(0, max_size),
                         [gen](size_t n) { return rc::gen::container<std::vector<T>>(n, gen); });
}

rc::Gen<DnsName> gen_name() {
  return rc::gen::map(gen_vector(4, gen_label()), [](std::vector<std::string> labels) { return DnsName{std::move(labels)}; });
}

rc::Gen<DnsRecord> gen_record() {
  return rc::gen::apply(
      [](DnsName name, int kind, uint16_t rclass, bool flush, uint32_t ttl, DnsName target, uint16_t port,
         std::vector<std::string> txt, uint32_t a, std::string raw) {
        DnsRecord r;
        r.name = std::move(name);
        r.rclass = rclass & 0x7fff;
        r.is_cache_flush = flush;
        r.ttl_s = ttl;
        switch (kind) {
          case 0: r.type = kDnsTypePtr; r.ptr = std::move(target); break;
          case 1: r.type = kDnsTypeSrv; r.srv = DnsSrv{port, static_cast<uint16_t>(port ^ 7), port, std::move(target)}; break;
          case 2:
            r.type = kDnsTypeTxt;
            for (auto& t : txt) t.resize(std::min<size_t>(t.size(), 32));
            if (txt.empty()) txt.emplace_back("k=v");
            r.txt = std::move(txt);
            break;
          case 3:
            r.type = kDnsTypeA;
            r.a = {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16), static_cast<uint8_t>(a >> 8),
                   static_cast<uint8_t>(a)};
            break;
          default: r.type = 99; r.raw = raw.substr(0, 200); break;
        }
        return r;
      },
      gen_name(), rc::gen::inRange(0, 5), rc::gen::arbitrary<uint16_t>(), rc::gen::arbitrary<bool>(),
      rc::gen::arbitrary<uint32_t>(), gen_name(), rc::gen::arbitrary<uint16_t>(),
      gen_vector(kMaxMdnsTxtStrings, rc::gen::arbitrary<std::string>()),
      rc::gen::arbitrary<uint32_t>(), rc::gen::arbitrary<std::string>());
}

RC_GTEST_PROP(MdnsCodecProperty, MessagesRoundTrip, ()) {
  DnsMessage m;
  m.id = *rc::gen::arbitrary<uint16_t>();
  m.is_response = *rc::gen::arbitrary<bool>();
  m.is_authoritative = *rc::gen::arbitrary<bool>();
  const auto names = *gen_vector(4, gen_name());
  for (const auto& n : names) {
    m.questions.push_back(
        DnsQuestion{n, *rc::gen::arbitrary<uint16_t>(), static_cast<uint16_t>(*rc::gen::arbitrary<uint16_t>() & 0x7fff),
                    *rc::gen::arbitrary<bool>()});
  }
  m.answers = *gen_vector(5, gen_record());
  m.additionals = *gen_vector(4, gen_record());
  auto bytes = encode_dns_message(m, kMaxMdnsDatagramBytes);
  RC_ASSERT(bytes.has_value());
  auto back = decode_dns_message(*bytes);
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == m);
}

RC_GTEST_PROP(MdnsCodecProperty, AnyBytesDecodeWithinTheLimitsOrAreRefused, (std::string bytes)) {
  auto m = decode_dns_message(bytes);
  if (!m) return;
  RC_ASSERT(m->questions.size() <= kMaxMdnsQuestions);
  RC_ASSERT(m->answers.size() + m->additionals.size() <= kMaxMdnsRecords);
  MdnsCore core(config_of(9, "10.0.0.9"));
  const auto received = core.on_datagram(bytes, "10.0.0.1", kNowMs);
  RC_ASSERT(received.learned.size() + received.gone.size() <= kMaxMdnsRecords);
}

// --- core -------------------------------------------------------------------------------

TEST(MdnsCore, TwoNodesOfOneClusterLearnEachOther) {
  MdnsCore a(config_of(1, "10.0.0.1"));
  MdnsCore b(config_of(2, "10.0.0.2"));
  auto got = b.on_datagram(a.announcement(), "10.0.0.1", kNowMs);
  EXPECT_EQ(got.verdict, MdnsVerdict::kAccepted);
  ASSERT_EQ(got.learned.size(), 1u);
  EXPECT_EQ(got.learned[0], (MdnsPeer{1, key_of(1), {"10.0.0.1", 7001}}));
  EXPECT_FALSE(got.should_answer);
  // b's query is one a answers.
  auto query = a.on_datagram(b.query(), "10.0.0.2", kNowMs);
  EXPECT_EQ(query.verdict, MdnsVerdict::kQuery);
  EXPECT_TRUE(query.should_answer);
  EXPECT_TRUE(query.learned.empty());
  EXPECT_EQ(a.stats().verdicts[static_cast<size_t>(MdnsVerdict::kQuery)], 1u);
  EXPECT_EQ(b.stats().verdicts[static_cast<size_t>(MdnsVerdict::kAccepted)], 1u);
}

TEST(MdnsCore, AnotherClustersNodesAreIgnoredAndCounted) {
  MdnsCore a(config_of(1, "10.0.0.1", kOtherTag));
  MdnsCore b(config_of(2, "10.0.0.2"));
  auto got = b.on_datagram(a.announcement(), "10.0.0.1", kNowMs);
  EXPECT_EQ(got.verdict, MdnsVerdict::kOtherCluster);
  EXPECT_TRUE(got.learned.empty());
}

TEST(MdnsCore, OwnDatagramsLoopedBackTeachNothing) {
  MdnsCore a(config_of(1, "10.0.0.1"));
  auto got = a.on_datagram(a.announcement(), "10.0.0.1", kNowMs);
  EXPECT_EQ(got.verdict, MdnsVerdict::kOwn);
  EXPECT_TRUE(got.learned.empty());
}

TEST(MdnsCore, AnotherKeyClaimingThisNodesIdIsRefused) {
  MdnsCoreConfig impostor = config_of(1, "10.0.0.66");
  impostor.key = key_of(66);
  MdnsCore fake(impostor);
  MdnsCore a(config_of(1, "10.0.0.1"));
  auto got = a.on_datagram(fake.announcement(), "10.0.0.66", kNowMs);
  EXPECT_EQ(got.verdict, MdnsVerdict::kBadRecord);
  EXPECT_TRUE(got.learned.empty());
}

// A node that stops sends its records with TTL 0: the others hear who left (and learn no
// address from it). Goodbyes of another cluster, or this node's own looped back, name no one.
TEST(MdnsCore, AGoodbyeNamesTheNodeThatLeft) {
  MdnsCore a(config_of(1, "10.0.0.1"));
  MdnsCore b(config_of(2, "10.0.0.2"));
  auto got = b.on_datagram(a.announcement(0), "10.0.0.1", kNowMs);
  EXPECT_EQ(got.verdict, MdnsVerdict::kGoodbye);
  EXPECT_TRUE(got.learned.empty());
  ASSERT_EQ(got.gone.size(), 1u);
  EXPECT_EQ(got.gone[0].node_id, 1u);
  EXPECT_EQ(got.gone[0].key, key_of(1));
  EXPECT_EQ(b.stats().verdicts[static_cast<size_t>(MdnsVerdict::kGoodbye)], 1u);

  MdnsCore other(config_of(3, "10.0.0.3", kOtherTag));
  auto foreign = b.on_datagram(other.announcement(0), "10.0.0.3", kNowMs);
  EXPECT_EQ(foreign.verdict, MdnsVerdict::kOtherCluster);
  EXPECT_TRUE(foreign.gone.empty());
  auto own = a.on_datagram(a.announcement(0), "10.0.0.1", kNowMs);
  EXPECT_EQ(own.verdict, MdnsVerdict::kOwn);
  EXPECT_TRUE(own.gone.empty());
}

TEST(MdnsCore, OtherServicesAreIgnored) {
  MdnsCore b(config_of(2, "10.0.0.2"));
  DnsMessage printer;
  printer.is_response = true;
  DnsRecord txt;
  txt.name = DnsName::from_dotted("Office._ipp._tcp.local");
  txt.type = kDnsTypeTxt;
  txt.ttl_s = 120;
  txt.txt = {"id=5", "key=x"};
  printer.answers.push_back(txt);
  EXPECT_EQ(b.on_datagram(*encode_dns_message(printer), "10.0.0.7", kNowMs).verdict, MdnsVerdict::kIgnored);
}

// A TXT record under our type with each field broken in turn.
std::string forged(const std::vector<std::string>& txt, bool has_srv = true) {
  DnsMessage m;
  m.is_response = true;
  const DnsName instance = DnsName::from_dotted("evil._aspen._udp.local");
  DnsRecord t;
  t.name = instance;
  t.type = kDnsTypeTxt;
  t.ttl_s = 120;
  t.txt = txt;
  m.answers.push_back(t);
  if (has_srv) {
    DnsRecord s;
    s.name = instance;
    s.type = kDnsTypeSrv;
    s.ttl_s = 120;
    s.srv = DnsSrv{0, 0, 7005, DnsName::from_dotted("evil.local")};
    m.answers.push_back(s);
  }
  return *encode_dns_message(m);
}

TEST(MdnsCore, RecordsWithBadFieldsAreRefusedAndCounted) {
  MdnsCore b(config_of(2, "10.0.0.2"));
  const std::string key = "key=" + key_of(5).to_string();
  const std::string tag = "tag=" + kTag;
  EXPECT_EQ(b.on_datagram(forged({"id=0", key, tag}), "10.0.0.5", kNowMs).verdict, MdnsVerdict::kBadRecord);
  EXPECT_EQ(b.on_datagram(forged({"id=5x", key, tag}), "10.0.0.5", kNowMs).verdict, MdnsVerdict::kBadRecord);
  EXPECT_EQ(b.on_datagram(forged({"id=5", "key=notakey", tag}), "10.0.0.5", kNowMs).verdict, MdnsVerdict::kBadRecord);
  EXPECT_EQ(b.on_datagram(forged({"id=5", tag}), "10.0.0.5", kNowMs).verdict, MdnsVerdict::kBadRecord);
  EXPECT_EQ(b.on_datagram(forged({"id=5", key}), "10.0.0.5", kNowMs).verdict, MdnsVerdict::kBadRecord);
  EXPECT_EQ(b.on_datagram(forged({"id=5", key, tag}, false), "10.0.0.5", kNowMs).verdict, MdnsVerdict::kBadRecord);
  // Complete, without an A record: the sender's address is taken.
  auto ok = b.on_datagram(forged({"id=5", key, tag}), "10.0.0.5", kNowMs);
  EXPECT_EQ(ok.verdict, MdnsVerdict::kAccepted);
  ASSERT_EQ(ok.learned.size(), 1u);
  EXPECT_EQ(ok.learned[0].addr, (transport::SocketAddr{"10.0.0.5", 7005}));
  EXPECT_EQ(b.stats().verdicts[static_cast<size_t>(MdnsVerdict::kBadRecord)], 6u);
}

TEST(MdnsCore, AFloodFromOneSenderIsCutOffAndOthersStillHeard) {
  MdnsCore a(config_of(1, "10.0.0.1"));
  MdnsCore b(config_of(2, "10.0.0.2"));
  const std::string ann = a.announcement();
  for (uint32_t i = 0; i < kMdnsSenderDatagramsPerMin; ++i) {
    EXPECT_EQ(b.on_datagram(ann, "10.0.0.1", kNowMs).verdict, MdnsVerdict::kAccepted);
  }
  EXPECT_EQ(b.on_datagram(ann, "10.0.0.1", kNowMs).verdict, MdnsVerdict::kRateLimited);
  EXPECT_EQ(b.on_datagram(ann, "10.0.0.3", kNowMs).verdict, MdnsVerdict::kAccepted);
  // A minute later the sender is heard again.
  EXPECT_EQ(b.on_datagram(ann, "10.0.0.1", kNowMs + kMdnsRateWindowMs).verdict, MdnsVerdict::kAccepted);
}

TEST(MdnsCore, RateStateStaysBoundedUnderSpoofedSenders) {
  MdnsCore b(config_of(2, "10.0.0.2"));
  const std::string q = MdnsCore(config_of(1, "10.0.0.1")).query();
  for (uint32_t i = 0; i < 4 * kMaxMdnsRateSenders; ++i) {
    b.on_datagram(q, fmt::format("10.1.{}.{}", i / 256, i % 256), kNowMs + i);
  }
  EXPECT_EQ(b.stats().verdicts[static_cast<size_t>(MdnsVerdict::kQuery)], 4 * kMaxMdnsRateSenders);
}

TEST(MdnsCore, AnswersAreRateLimited) {
  MdnsCore a(config_of(1, "10.0.0.1"));
  EXPECT_TRUE(a.may_answer(kNowMs));
  EXPECT_FALSE(a.may_answer(kNowMs + 10));
  EXPECT_FALSE(a.may_answer(kNowMs + kMinMdnsAnswerIntervalMs - 1));
  EXPECT_TRUE(a.may_answer(kNowMs + kMinMdnsAnswerIntervalMs));
}

TEST(MdnsCore, OversizedAndMalformedDatagramsAreCounted) {
  MdnsCore b(config_of(2, "10.0.0.2"));
  EXPECT_EQ(b.on_datagram(std::string(kMaxMdnsDatagramBytes + 1, 'x'), "10.0.0.1", kNowMs).verdict,
            MdnsVerdict::kOversized);
  EXPECT_EQ(b.on_datagram("garbage", "10.0.0.1", kNowMs).verdict, MdnsVerdict::kMalformed);
  EXPECT_EQ(b.stats().datagrams_in, 2u);
}

// Hostile datagrams: valid announcements and queries with random bytes flipped, cut, or
// spliced. Nothing crashes, and whatever is learned is a well-formed peer of this cluster.
TEST(MdnsCore, MutatedDatagramsNeverCrashAndLearnOnlyWellFormedPeers) {
  MdnsCore a(config_of(1, "10.0.0.1"));
  MdnsCore b(config_of(2, "10.0.0.2"));
  const std::vector<std::string> seeds = {a.announcement(), a.query(), a.announcement(0),
                                          forged({"id=5", "key=" + key_of(5).to_string(), "tag=" + kTag})};
  Rng rng(42);
  size_t learned = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string d = seeds[rng.uniform(seeds.size())];
    const uint64_t edits = 1 + rng.uniform(8);
    for (uint64_t e = 0; e < edits && !d.empty(); ++e) {
      switch (rng.uniform(4)) {
        case 0: d[rng.uniform(d.size())] = static_cast<char>(rng.uniform(256)); break;
        case 1: d.resize(rng.uniform(d.size() + 1)); break;
        case 2: d.insert(rng.uniform(d.size() + 1), 1, static_cast<char>(0xc0 | rng.uniform(64))); break;
        default: d += seeds[rng.uniform(seeds.size())].substr(0, rng.uniform(64)); break;
      }
    }
    const auto got = b.on_datagram(d, fmt::format("10.2.{}.{}", i % 200, i % 250), kNowMs + static_cast<uint64_t>(i));
    for (const auto& p : got.learned) {
      EXPECT_NE(p.node_id, kNoNode);
      EXPECT_NE(p.node_id, 2u);
      EXPECT_NE(p.addr.port, 0);
      ++learned;
    }
  }
  EXPECT_GT(learned, 0u);  // some mutations leave the announcement intact
  uint64_t total = 0;
  for (auto v : b.stats().verdicts) total += v;
  EXPECT_EQ(total, 20000u);
}

}  // namespace
}  // namespace aspen::cluster
