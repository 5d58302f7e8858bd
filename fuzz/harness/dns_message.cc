// dns_message: bytes from the network as aspen-dns reads them. The first byte chooses:
//   even: the bytes after it are a DNS message: decode_message must return a Message or an
//         error; a decoded message encodes (with compression) to bytes that decode to the
//         same records; and the whole server (dns::Server over a store holding a small zone)
//         answers it over UDP within the UDP limit and over TCP within kMaxMessageBytes.
//   odd:  the bytes are a stored record set or zone value (anyone with write access to dns/
//         could put them there): decode_record_set / decode_zone return a value or an error,
//         and what decodes encodes to a value that decodes to the same thing.
#include "dns/admin.h"
#include "dns/message.h"
#include "dns/server.h"
#include "fuzz/harness/harness.h"
#include "kv/deterministic_store.h"

namespace aspen::fuzz {

namespace {

bool same_records(const std::vector<dns::Record>& a, const std::vector<dns::Record>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].name.equals(b[i].name) || a[i].type != b[i].type || a[i].klass != b[i].klass || a[i].ttl != b[i].ttl ||
        a[i].rdata != b[i].rdata) {
      return false;
    }
  }
  return true;
}

struct Fixture {
  kv::DeterministicKeyValueStore store;
  std::unique_ptr<dns::Server> server;
  Fixture() {
    dns::Zone z;
    z.name = *dns::parse_name("example.test.");
    z.soa = dns::Soa{*dns::parse_name("ns1.example.test."), *dns::parse_name("hostmaster.example.test.")};
    check(dns::create_zone(store, z).has_value(), "fixture zone");
    auto set = [&](const char* name, uint16_t t, std::vector<std::string> values) {
      check(dns::set_records(store, dns::SetRequest{*dns::parse_name(name), t, std::move(values)}).has_value(), "fixture set");
    };
    set("www.example.test.", dns::type::kA, {"192.0.2.1", "192.0.2.2"});
    set("www.example.test.", dns::type::kAaaa, {"2001:db8::1"});
    set("alias.example.test.", dns::type::kCname, {"www.example.test."});
    set("*.svc.example.test.", dns::type::kA, {"192.0.2.9"});
    set("example.test.", dns::type::kMx, {"10 mail.example.test."});
    set("example.test.", dns::type::kNs, {"ns1.example.test."});
    set("_sip._udp.example.test.", dns::type::kSrv, {"10 5 5060 sip.example.test."});
    set("big.example.test.", dns::type::kTxt, {std::string(1500, 'x'), std::string(1200, 'y')});
    server = std::make_unique<dns::Server>(store, dns::ServerOptions{});
  }
};

void message_property(std::string_view input) {
  auto m = dns::decode_message(input);
  if (m) {
    check(m->questions.size() + m->answers.size() + m->authority.size() + m->additional.size() <= dns::kMaxRecordsPerMessage,
          "more records than the limit");
    auto enc = dns::encode_message(*m, dns::kMaxMessageBytes);
    if (!enc.is_truncated) {
      auto again = dns::decode_message(enc.bytes);
      check(again.has_value(), "an encoded message does not decode");
      check(again->questions.size() == m->questions.size(), "questions changed in a round trip");
      check(same_records(again->answers, m->answers) && same_records(again->authority, m->authority) &&
                same_records(again->additional, m->additional),
            "records changed in a round trip");
    }
  } else {
    check(m.error().code() == ErrorCode::kInvalidArgument || m.error().code() == ErrorCode::kMessageTooLarge,
          "a malformed message gave an unexpected error code");
  }
  static Fixture fixture;
  const uint64_t now_ms = 1000;
  if (auto udp = fixture.server->handle(input, false, now_ms)) {
    check(udp->size() <= dns::kMaxUdpPayloadBytes, "a UDP answer over the UDP limit");
    check(dns::decode_message(*udp).has_value(), "the server's UDP answer does not decode");
  }
  if (auto tcp = fixture.server->handle(input, true, now_ms)) {
    check(tcp->size() <= dns::kMaxMessageBytes, "a TCP answer over the limit");
    check(dns::decode_message(*tcp).has_value(), "the server's TCP answer does not decode");
  }
}

void stored_property(std::string_view input) {
  static const dns::Name zone_name = *dns::parse_name("example.test.");
  for (uint16_t t : {dns::type::kA, dns::type::kAaaa, dns::type::kCname, dns::type::kNs, dns::type::kMx, dns::type::kSrv,
                     dns::type::kTxt}) {
    auto set = dns::decode_record_set(t, input);
    if (!set) continue;
    auto again = dns::decode_record_set(t, dns::encode_record_set(*set));
    check(again.has_value() && again->rdata == set->rdata && again->ttl_s == set->ttl_s, "a record set changed in a round trip");
  }
  if (auto z = dns::decode_zone(zone_name, input)) {
    auto again = dns::decode_zone(zone_name, dns::encode_zone(*z));
    check(again.has_value() && dns::soa_to_rdata(again->soa) == dns::soa_to_rdata(z->soa), "a zone changed in a round trip");
  }
}

std::string query(const char* name, uint16_t t, bool with_opt) {
  dns::Message m;
  m.header.id = 0x1234;
  m.header.is_recursion_desired = true;
  m.questions.push_back(dns::Question{*dns::parse_name(name), t, dns::kClassIn});
  if (with_opt) {
    dns::Record opt;
    opt.type = dns::type::kOpt;
    opt.klass = 4096;
    m.additional.push_back(opt);
  }
  return dns::encode_message(m, dns::kMaxMessageBytes).bytes;
}

}  // namespace

int dns_message_one_input(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) == 0) {
    message_property(input);
  } else {
    stored_property(input);
  }
  return 0;
}

std::vector<std::string> dns_message_seeds() {
  std::vector<std::string> out;
  for (auto [name, t, opt] : {std::tuple{"www.example.test.", dns::type::kA, false}, std::tuple{"www.example.test.", dns::type::kAaaa, true},
                              std::tuple{"alias.example.test.", dns::type::kA, true}, std::tuple{"x.svc.example.test.", dns::type::kA, false},
                              std::tuple{"nope.example.test.", dns::type::kA, false}, std::tuple{"example.test.", dns::type::kMx, true},
                              std::tuple{"example.test.", dns::type::kSoa, false}, std::tuple{"big.example.test.", dns::type::kTxt, false},
                              std::tuple{"_sip._udp.example.test.", dns::type::kSrv, true}, std::tuple{"other.zone.", dns::type::kA, false}}) {
    out.push_back(std::string(1, '\0') + query(name, t, opt));
  }
  // Stored values (odd first byte).
  out.push_back(std::string(1, '\x01') + "ttl=300\n192.0.2.1\n192.0.2.2\n");
  out.push_back(std::string(1, '\x01') + "ttl=60\n10 5 5060 sip.example.test.\n");
  out.push_back(std::string(1, '\x01') + "ttl=3600\nsoa=ns1.example.test. hostmaster.example.test. 7 3600 600 86400 60\n");
  return out;
}

}  // namespace aspen::fuzz
