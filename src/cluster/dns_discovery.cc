#include "cluster/dns_discovery.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "cluster/dns_discovery_settings.h"
#include "core/assert.h"

namespace aspen::cluster {

namespace {

constexpr std::array<std::string_view, kDnsRecordVerdictCount> kVerdictNames = {
    "accepted", "bad_txt", "bad_key", "no_txt", "ambiguous", "no_address", "too_many", "oversized", "conflict"};

// How much of a hostile record a message quotes.
constexpr size_t kMaxQuotedBytes = 64;

template <typename T>
std::optional<T> parse_decimal(std::string_view text) {
  T value = 0;
  if (text.empty() || text.size() > 20) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::unexpected<TxtProblem> txt_problem(DnsRecordVerdict verdict, std::string_view record, std::string_view why) {
  return std::unexpected(TxtProblem{
      verdict, fmt::format("TXT record \"{}\": {}", printable_excerpt(record, kMaxQuotedBytes), why)});
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

uint16_t be16(std::string_view m, size_t pos) {
  return static_cast<uint16_t>((static_cast<uint8_t>(m[pos]) << 8) | static_cast<uint8_t>(m[pos + 1]));
}

uint32_t be32(std::string_view m, size_t pos) {
  return (uint32_t{be16(m, pos)} << 16) | be16(m, pos + 2);
}

// Moves `pos` past a (possibly compressed) name; false if it runs off the end or holds a
// label type RFC 1035 does not define. A pointer ends the name: nothing is followed.
bool skip_name(std::string_view m, size_t& pos) {
  for (;;) {
    if (pos >= m.size()) return false;
    const auto len = static_cast<uint8_t>(m[pos]);
    if (len == 0) {
      ++pos;
      return true;
    }
    if ((len & 0xC0) == 0xC0) {
      if (pos + 2 > m.size()) return false;
      pos += 2;
      return true;
    }
    if ((len & 0xC0) != 0) return false;
    pos += 1 + size_t{len};
  }
}

}  // namespace

std::string_view dns_record_verdict_name(DnsRecordVerdict verdict) {
  const auto i = static_cast<size_t>(verdict);
  ASPEN_ASSERT(i < kVerdictNames.size());
  return kVerdictNames[i];
}

void DnsAssembly::refuse(DnsRecordVerdict verdict, std::string why) {
  ASPEN_ASSERT(verdict != DnsRecordVerdict::kAccepted);
  ++counts[static_cast<size_t>(verdict)];
  if (problems.size() < kMaxDnsProblems) problems.push_back(std::move(why));
}

Status validate_dns_name(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' is not a DNS name: {}", printable_excerpt(name, kMaxQuotedBytes), why));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > kMaxDnsNameSizeBytes + 1 || (name.size() > kMaxDnsNameSizeBytes && !name.ends_with('.'))) {
    return bad(fmt::format("longer than {} characters", kMaxDnsNameSizeBytes));
  }
  std::string_view rest = name.ends_with('.') ? name.substr(0, name.size() - 1) : name;
  if (rest.empty()) return bad("the root alone names no service");
  while (true) {
    const size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    if (label.empty()) return bad("it has an empty label (two dots in a row, or a leading dot)");
    if (label.size() > kMaxDnsLabelSizeBytes) {
      return bad(fmt::format("a label is longer than {} characters", kMaxDnsLabelSizeBytes));
    }
    for (char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!ok) return bad("labels may hold only letters, digits, '-' and '_'");
    }
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  return {};
}

bool is_aspen_txt(std::string_view record) {
  return record.starts_with("aspen") && (record.size() == 5 || record[5] == ' ');
}

Result<transport::PublicKey> parse_txt_key(std::string_view text) {
  if (text.size() == 2 * transport::kPublicKeySizeBytes) {
    std::array<uint8_t, transport::kPublicKeySizeBytes> raw{};
    for (size_t i = 0; i < raw.size(); ++i) {
      const int hi = hex_value(text[2 * i]);
      const int lo = hex_value(text[2 * i + 1]);
      if (hi < 0 || lo < 0) return make_error(ErrorCode::kInvalidArgument, "64 characters but not hex digits");
      raw[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    return transport::PublicKey(raw);
  }
  auto key = transport::PublicKey::parse(text);
  if (!key) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("not a public key (52 base32 characters as aspen-node prints it, or 64 hex "
                                  "digits; {} characters given)",
                                  text.size()));
  }
  return *key;
}

std::expected<AspenTxt, TxtProblem> parse_aspen_txt(std::string_view record) {
  if (record.size() > kMaxDnsTxtRecordBytes) {
    return txt_problem(DnsRecordVerdict::kOversized, record,
                       fmt::format("{} bytes, more than the {} a record may have", record.size(), kMaxDnsTxtRecordBytes));
  }
  if (!is_aspen_txt(record)) return txt_problem(DnsRecordVerdict::kBadTxt, record, "does not start with 'aspen '");
  AspenTxt out;
  bool has_key = false;
  std::set<std::string_view> seen;
  std::string_view rest = record.substr(5);
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest = rest.substr(start);
    const size_t end = std::min(rest.find(' '), rest.size());
    const std::string_view field = rest.substr(0, end);
    rest = rest.substr(end);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return txt_problem(DnsRecordVerdict::kBadTxt, record,
                         fmt::format("field '{}' is not name=value", printable_excerpt(field, 24)));
    }
    const std::string_view name = field.substr(0, eq);
    const std::string_view value = field.substr(eq + 1);
    if (!seen.insert(name).second) {
      return txt_problem(DnsRecordVerdict::kBadTxt, record,
                         fmt::format("field '{}' is given twice", printable_excerpt(name, 24)));
    }
    if (name == "id") {
      const auto id = parse_decimal<uint64_t>(value);
      if (!id || *id == kNoNode) return txt_problem(DnsRecordVerdict::kBadTxt, record, "id must be a non-zero integer");
      out.node_id = *id;
    } else if (name == "key") {
      auto key = parse_txt_key(value);
      if (!key) return txt_problem(DnsRecordVerdict::kBadKey, record, "key: " + key.error().message());
      out.key = *key;
      has_key = true;
    } else if (name == "port") {
      const auto port = parse_decimal<uint16_t>(value);
      if (!port || *port == 0) return txt_problem(DnsRecordVerdict::kBadTxt, record, "port must be 1 to 65535");
      out.port = *port;
    }
    // Other names: a later version's fields, ignored.
  }
  if (out.node_id == kNoNode) return txt_problem(DnsRecordVerdict::kBadTxt, record, "no id= field");
  if (!has_key) return txt_problem(DnsRecordVerdict::kBadKey, record, "no key= field");
  return out;
}

std::string format_aspen_txt(const AspenTxt& txt) {
  ASPEN_ASSERT(txt.node_id != kNoNode);
  std::string out = fmt::format("aspen id={} key={}", txt.node_id, txt.key.to_string());
  if (txt.port) out += fmt::format(" port={}", *txt.port);
  return out;
}

std::string printable_excerpt(std::string_view text, size_t max_bytes) {
  std::string out;
  const size_t n = std::min(text.size(), max_bytes);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

size_t take_srv_records(std::vector<DnsSrvRecord>& records) {
  std::erase_if(records, [](const DnsSrvRecord& r) { return r.port == 0 || r.target.empty(); });
  std::sort(records.begin(), records.end(), [](const DnsSrvRecord& a, const DnsSrvRecord& b) {
    if (a.priority != b.priority) return a.priority < b.priority;
    if (a.weight != b.weight) return a.weight > b.weight;
    if (a.target != b.target) return a.target < b.target;
    return a.port < b.port;
  });
  records.erase(std::unique(records.begin(), records.end(),
                            [](const DnsSrvRecord& a, const DnsSrvRecord& b) {
                              return a.target == b.target && a.port == b.port;
                            }),
                records.end());
  const size_t dropped = records.size() > kMaxDnsSrvRecords ? records.size() - kMaxDnsSrvRecords : 0;
  if (dropped > 0) records.resize(kMaxDnsSrvRecords);
  return dropped;
}

namespace {

// One target's `aspen` TXT records, parsed once (each refusal counted once, not per SRV
// record that names the target).
struct ParsedTarget {
  std::vector<AspenTxt> txts;
  bool has_refused = false;  // an aspen TXT record here was refused (and counted)
};

std::map<std::string, ParsedTarget> parse_targets(const DnsLookupAnswer& answer, DnsAssembly& out) {
  std::map<std::string, ParsedTarget> parsed;
  for (const auto& [target, t] : answer.targets) {
    auto& list = parsed[target].txts;
    bool& has_refused = parsed[target].has_refused;
    has_refused = t.oversized_answers > 0;
    for (size_t i = 0; i < t.oversized_answers; ++i) {
      out.refuse(DnsRecordVerdict::kOversized,
                 fmt::format("{}: an answer larger than {} bytes", printable_excerpt(target, kMaxQuotedBytes),
                             kMaxDnsAnswerBytes));
    }
    size_t ours = 0;
    for (const std::string& txt : t.txts) {
      if (!is_aspen_txt(txt)) continue;  // not ours (SPF, ...)
      if (++ours > kMaxDnsTxtRecordsPerName) {
        has_refused = true;
        out.refuse(DnsRecordVerdict::kTooMany, fmt::format("{}: more than {} aspen TXT records",
                                                           printable_excerpt(target, kMaxQuotedBytes),
                                                           kMaxDnsTxtRecordsPerName));
        continue;
      }
      auto r = parse_aspen_txt(txt);
      if (!r) {
        has_refused = true;
        out.refuse(r.error().verdict, fmt::format("{}: {}", printable_excerpt(target, kMaxQuotedBytes), r.error().message));
        continue;
      }
      list.push_back(*r);
    }
  }
  return parsed;
}

}  // namespace

DnsAssembly assemble_dns_peers(const DnsLookupAnswer& answer) {
  DnsAssembly out;
  for (size_t i = 0; i < answer.srv_dropped; ++i) {
    out.refuse(DnsRecordVerdict::kTooMany, fmt::format("more than {} SRV records", kMaxDnsSrvRecords));
  }
  const auto parsed = parse_targets(answer, out);
  std::map<NodeId, DnsFoundPeer> found;
  std::set<NodeId> ambiguous;
  for (const DnsSrvRecord& srv : answer.srv) {
    const std::string where = fmt::format("{}:{}", printable_excerpt(srv.target, kMaxQuotedBytes), srv.port);
    auto t = answer.targets.find(srv.target);
    std::vector<transport::SocketAddr> addrs;
    if (t != answer.targets.end()) {
      for (const std::string& ip : t->second.ips) {
        if (addrs.size() >= kMaxDnsAddrsPerTarget) break;
        const bool is_v6 = ip.find(':') != std::string::npos;
        auto sa = transport::SocketAddr::parse(is_v6 ? fmt::format("[{}]:{}", ip, srv.port) : fmt::format("{}:{}", ip, srv.port));
        if (sa && std::find(addrs.begin(), addrs.end(), *sa) == addrs.end()) addrs.push_back(*sa);
      }
    }
    std::vector<AspenTxt> matching;
    bool has_refused_txt = false;
    if (auto p = parsed.find(srv.target); p != parsed.end()) {
      has_refused_txt = p->second.has_refused;
      for (const AspenTxt& txt : p->second.txts) {
        if (!txt.port || *txt.port == srv.port) matching.push_back(txt);
      }
    }
    if (matching.empty()) {
      // A target whose TXT record was refused was counted for it; its SRV record is not
      // counted again.
      if (has_refused_txt) continue;
      out.refuse(DnsRecordVerdict::kNoTxt, fmt::format("{}: no usable aspen TXT record at the target", where));
      continue;
    }
    if (matching.size() > 1) {
      out.refuse(DnsRecordVerdict::kAmbiguous,
                 fmt::format("{}: {} aspen TXT records fit (give each a port=)", where, matching.size()));
      continue;
    }
    if (addrs.empty()) {
      out.refuse(DnsRecordVerdict::kNoAddress, fmt::format("{}: the target has no A or AAAA address", where));
      continue;
    }
    const AspenTxt& txt = matching.front();
    if (ambiguous.contains(txt.node_id)) {
      out.refuse(DnsRecordVerdict::kAmbiguous, fmt::format("{}: node {} is named under two keys", where, txt.node_id));
      continue;
    }
    auto [it, is_new] = found.try_emplace(txt.node_id, DnsFoundPeer{txt.node_id, txt.key, {}, srv.target});
    if (!is_new && it->second.key != txt.key) {
      // Neither can be believed over the other: this record is refused, and the one taken
      // before it is counted as refused instead of accepted.
      out.refuse(DnsRecordVerdict::kAmbiguous, fmt::format("{}: node {} is named under two keys", where, txt.node_id));
      ++out.counts[static_cast<size_t>(DnsRecordVerdict::kAmbiguous)];
      --out.counts[static_cast<size_t>(DnsRecordVerdict::kAccepted)];
      ambiguous.insert(txt.node_id);
      found.erase(it);
      continue;
    }
    // The same node at a second SRV record: one more address.
    for (const auto& a : addrs) {
      auto& mine = it->second.addrs;
      if (mine.size() < limits::kMaxNodeAddresses && std::find(mine.begin(), mine.end(), a) == mine.end()) {
        mine.push_back(a);
      }
    }
    if (is_new) ++out.counts[static_cast<size_t>(DnsRecordVerdict::kAccepted)];
  }
  for (auto& [id, peer] : found) out.peers.push_back(std::move(peer));
  return out;
}

std::optional<uint32_t> min_answer_ttl_s(std::string_view m) {
  constexpr size_t kHeaderBytes = 12;
  if (m.size() < kHeaderBytes) return std::nullopt;
  const uint16_t questions = be16(m, 4);
  const uint16_t answers = be16(m, 6);
  size_t pos = kHeaderBytes;
  for (uint16_t i = 0; i < questions; ++i) {
    if (!skip_name(m, pos) || pos + 4 > m.size()) return std::nullopt;
    pos += 4;
  }
  std::optional<uint32_t> min_ttl;
  for (uint16_t i = 0; i < answers; ++i) {
    if (!skip_name(m, pos) || pos + 10 > m.size()) return std::nullopt;
    uint32_t ttl = be32(m, pos + 4);
    if ((ttl & 0x80000000U) != 0) ttl = 0;
    const uint16_t rdlength = be16(m, pos + 8);
    pos += 10;
    if (pos + rdlength > m.size()) return std::nullopt;
    pos += rdlength;
    min_ttl = min_ttl ? std::min(*min_ttl, ttl) : ttl;
  }
  return min_ttl;
}

uint64_t next_dns_lookup_delay_ms(uint32_t interval_s, std::optional<uint32_t> min_ttl_s, uint32_t failures) {
  ASPEN_ASSERT(interval_s >= 1);
  const uint64_t interval_ms = uint64_t{interval_s} * 1000;
  if (failures > 0) {
    const uint32_t shift = std::min<uint32_t>(failures - 1, 20);
    return std::min<uint64_t>(interval_ms, uint64_t{1000} << shift);
  }
  if (!min_ttl_s) return interval_ms;
  const uint64_t floor_ms = uint64_t{std::min(kMinDnsDiscoveryRefreshS, interval_s)} * 1000;
  return std::clamp<uint64_t>(uint64_t{*min_ttl_s} * 1000, floor_ms, interval_ms);
}

}  // namespace aspen::cluster
