// The DNS wire format (src/dns/message.h, name.h, rdata.h): round trips, compression,
// truncation, and hostile input (pointer loops, forward pointers, long names, counts that
// promise more than the bytes hold) refused with an error, never a crash.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "dns/message.h"
#include "dns/rdata.h"

namespace aspen::dns {
namespace {

Name N(const char* text) { return *parse_name(text); }

Message query_for(const char* name, uint16_t t) {
  Message m;
  m.header.id = 77;
  m.header.is_recursion_desired = true;
  m.questions.push_back(Question{N(name), t, kClassIn});
  return m;
}

TEST(DnsName, ParsesAbsoluteAndRelativeTextToTheSameLowercaseName) {
  EXPECT_EQ(N("WWW.Example.TEST").to_text(), "www.example.test.");
  EXPECT_EQ(N("www.example.test.").labels.size(), 3u);
  EXPECT_TRUE(N(".").is_root());
  EXPECT_TRUE(N("*.svc.example.test.").is_wildcard());
}

TEST(DnsName, RefusesBadNamesWithAClearError) {
  for (const char* bad : {"", "a..b", "a b.test", "*a.test", "a.*.test", "x/y.test", "a=b.test"}) {
    auto n = parse_name(bad);
    ASSERT_FALSE(n.has_value()) << bad;
    EXPECT_EQ(n.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_FALSE(n.error().message().empty());
  }
  EXPECT_FALSE(parse_name(std::string(64, 'a') + ".test").has_value()) << "a 64-byte label";
  std::string long_name;
  for (int i = 0; i < 50; ++i) long_name += "abcde.";
  auto n = parse_name(long_name);
  ASSERT_FALSE(n.has_value());
  EXPECT_NE(n.error().message().find("255"), std::string::npos);
}

TEST(DnsName, SubdomainAndEqualityIgnoreCase) {
  Name a;
  a.labels = {"WWW", "Example", "test"};
  EXPECT_TRUE(a.is_subdomain_of(N("example.test.")));
  EXPECT_TRUE(a.equals(N("www.example.test.")));
  EXPECT_FALSE(N("example.test.").is_subdomain_of(a));
  EXPECT_FALSE(N("xexample.test.").is_subdomain_of(N("example.test.")));
}

TEST(DnsMessage, AResponseRoundTripsWithCompressedNames) {
  Message m = query_for("www.example.test.", type::kMx);
  m.header.is_response = true;
  m.header.is_authoritative = true;
  m.answers.push_back(Record{N("www.example.test."), type::kMx, kClassIn, 300, *rdata_from_text(type::kMx, "10 mail.example.test.")});
  m.answers.push_back(Record{N("www.example.test."), type::kCname, kClassIn, 60, *rdata_from_text(type::kCname, "x.example.test.")});
  m.authority.push_back(Record{N("example.test."), type::kSoa, kClassIn, 60,
                               *rdata_from_text(type::kSoa, "ns1.example.test. hostmaster.example.test. 5 1 2 3 4")});
  auto enc = encode_message(m, kMaxMessageBytes);
  EXPECT_FALSE(enc.is_truncated);
  // Compression: the owner names after the question are two-byte pointers.
  size_t uncompressed = 12 + 4 + m.questions[0].name.wire_size();
  for (const auto& r : m.answers) uncompressed += r.name.wire_size() + 10 + r.rdata.size();
  uncompressed += m.authority[0].name.wire_size() + 10 + m.authority[0].rdata.size();
  EXPECT_LT(enc.bytes.size(), uncompressed - 40);
  auto back = decode_message(enc.bytes);
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  EXPECT_EQ(back->header.id, 77);
  EXPECT_TRUE(back->header.is_authoritative);
  ASSERT_EQ(back->answers.size(), 2u);
  EXPECT_EQ(back->answers[0].rdata, m.answers[0].rdata) << "rdata is decompressed on decode";
  EXPECT_EQ(rdata_to_text(type::kMx, back->answers[0].rdata), "10 mail.example.test.");
  EXPECT_EQ(rdata_to_text(type::kSoa, back->authority[0].rdata), "ns1.example.test. hostmaster.example.test. 5 1 2 3 4");
}

TEST(DnsMessage, TooLargeForTheLimitKeepsTheQuestionAndSetsTc) {
  Message m = query_for("big.example.test.", type::kTxt);
  m.header.is_response = true;
  for (int i = 0; i < 5; ++i) {
    m.answers.push_back(Record{N("big.example.test."), type::kTxt, kClassIn, 1, *rdata_from_text(type::kTxt, std::string(200, 'a' + i))});
  }
  auto enc = encode_message(m, kMinUdpPayloadBytes);
  EXPECT_TRUE(enc.is_truncated);
  EXPECT_LE(enc.bytes.size(), kMinUdpPayloadBytes);
  auto back = decode_message(enc.bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->header.is_truncated);
  EXPECT_EQ(back->questions.size(), 1u);
  EXPECT_TRUE(back->answers.empty());
  EXPECT_FALSE(encode_message(m, kMaxMessageBytes).is_truncated);
}

TEST(DnsMessage, HostileBytesAreRefusedNotFollowed) {
  std::string header("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  // A pointer to itself, a pointer forward, a loop of two labels, a label past the end.
  for (std::string tail : {std::string("\xc0\x0c\x00\x01\x00\x01", 6), std::string("\xc0\x20\x00\x01\x00\x01", 6),
                           std::string("\x01" "a\xc0\x0c\x00\x01\x00\x01", 8), std::string("\x3f" "abc", 4),
                           std::string("\x40\x00", 2), std::string("\x01" "a", 2)}) {
    auto m = decode_message(header + tail);
    EXPECT_FALSE(m.has_value()) << "tail of " << tail.size() << " bytes";
  }
  // A question count that promises more than the bytes hold.
  std::string many = header;
  many[4] = '\xff';
  many[5] = '\xff';
  EXPECT_FALSE(decode_message(many).has_value());
  EXPECT_EQ(decode_message(std::string(kMaxMessageBytes + 1, '\0')).error().code(), ErrorCode::kMessageTooLarge);
  EXPECT_FALSE(decode_message("short").has_value());
  // A name of 128 one-byte labels is over 255 bytes.
  std::string long_name;
  for (int i = 0; i < 128; ++i) long_name += std::string("\x01x", 2);
  EXPECT_FALSE(decode_message(header + long_name + std::string("\x00\x00\x01\x00\x01", 5)).has_value());
}

TEST(DnsRdata, TextFormsRoundTripAndBadValuesSayWhatIsExpected) {
  const std::vector<std::pair<uint16_t, std::string>> good = {
      {type::kA, "192.0.2.1"}, {type::kAaaa, "2001:db8::1"}, {type::kCname, "t.example.test."}, {type::kNs, "ns.example.test."},
      {type::kMx, "10 mail.example.test."}, {type::kSrv, "1 2 3 sip.example.test."}, {type::kTxt, "hello world"},
      {type::kSoa, "a.test. b.test. 1 2 3 4 5"}};
  for (const auto& [t, text] : good) {
    auto rd = rdata_from_text(t, text);
    ASSERT_TRUE(rd.has_value()) << type_name(t) << " " << text;
    EXPECT_EQ(rdata_to_text(t, *rd), text);
  }
  const std::vector<std::pair<uint16_t, std::string>> bad = {
      {type::kA, "300.1.1.1"}, {type::kA, "::1"}, {type::kAaaa, "192.0.2.1"}, {type::kMx, "mail.example.test."},
      {type::kSrv, "1 2 sip.test."}, {type::kSrv, "1 2 70000 sip.test."}, {type::kCname, "*.x.test."},
      {type::kTxt, "line\nbreak"}, {type::kTxt, std::string(kMaxTxtBytes + 1, 'x')}};
  for (const auto& [t, text] : bad) {
    auto rd = rdata_from_text(t, text);
    ASSERT_FALSE(rd.has_value()) << type_name(t) << " " << text;
    EXPECT_EQ(rd.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_NE(rdata_from_text(type::kMx, "x").error().message().find("PREFERENCE NAME"), std::string::npos);
  // A TXT over 255 bytes goes out as several character-strings and comes back whole.
  const std::string long_text(600, 'q');
  EXPECT_EQ(rdata_to_text(type::kTxt, *rdata_from_text(type::kTxt, long_text)), long_text);
}

// Any message built from valid parts encodes and decodes to the same records.
RC_GTEST_PROP(DnsMessageProperty, EncodeThenDecodeIsIdentity, ()) {
  auto label = *rc::gen::container<std::string>(*rc::gen::inRange<size_t>(1, 12), rc::gen::elementOf(std::string("abcxyz019-_")));
  auto make_name = [&] {
    Name n;
    const auto depth = *rc::gen::inRange<size_t>(0, 5);
    for (size_t i = 0; i < depth; ++i) n.labels.push_back(*rc::gen::elementOf(std::vector<std::string>{label, "a", "b", "test"}));
    return n;
  };
  Message m;
  m.header.id = *rc::gen::arbitrary<uint16_t>();
  m.header.is_response = *rc::gen::arbitrary<bool>();
  m.header.rcode = *rc::gen::inRange<uint8_t>(0, 16);
  m.questions.push_back(Question{make_name(), *rc::gen::arbitrary<uint16_t>(), kClassIn});
  const auto count = *rc::gen::inRange<size_t>(0, 20);
  for (size_t i = 0; i < count; ++i) {
    Record r;
    r.name = make_name();
    r.ttl = *rc::gen::arbitrary<uint32_t>();
    switch (*rc::gen::inRange(0, 5)) {
      case 0: r.type = type::kA, r.rdata = *rc::gen::container<std::string>(4, rc::gen::arbitrary<char>()); break;
      case 1: r.type = type::kCname, r.rdata.clear(), append_wire_name(r.rdata, make_name()); break;
      case 2: r.type = type::kMx, r.rdata = std::string("\x00\x0a", 2), append_wire_name(r.rdata, make_name()); break;
      case 3: r.type = type::kSoa, r.rdata.clear(), append_wire_name(r.rdata, make_name()), append_wire_name(r.rdata, make_name()),
              r.rdata += std::string(20, '\x07'); break;
      default: r.type = type::kTxt, r.rdata = *rdata_from_text(type::kTxt, *rc::gen::container<std::string>(rc::gen::inRange('a', 'z')));
    }
    (i % 3 == 0 ? m.answers : i % 3 == 1 ? m.authority : m.additional).push_back(r);
  }
  auto enc = encode_message(m, kMaxMessageBytes);
  RC_ASSERT(!enc.is_truncated);
  auto back = decode_message(enc.bytes);
  RC_ASSERT(back.has_value());
  RC_ASSERT(back->header.id == m.header.id);
  RC_ASSERT(back->header.rcode == m.header.rcode);
  for (auto [a, b] : {std::pair{&m.answers, &back->answers}, std::pair{&m.authority, &back->authority},
                      std::pair{&m.additional, &back->additional}}) {
    RC_ASSERT(a->size() == b->size());
    for (size_t i = 0; i < a->size(); ++i) {
      RC_ASSERT((*a)[i].name.equals((*b)[i].name));
      RC_ASSERT((*a)[i].rdata == (*b)[i].rdata);
      RC_ASSERT((*a)[i].ttl == (*b)[i].ttl);
    }
  }
}

// Any bytes: a Message or an error, and never more records than the limit.
RC_GTEST_PROP(DnsMessageProperty, ArbitraryBytesDecodeOrFailCleanly, (const std::string& bytes)) {
  auto m = decode_message(bytes);
  if (m) RC_ASSERT(m->answers.size() + m->authority.size() + m->additional.size() <= kMaxRecordsPerMessage);
}

}  // namespace
}  // namespace aspen::dns
