#include "dns/message.h"

#include <fmt/format.h>

#include <map>

#include "core/assert.h"

namespace aspen::dns {

namespace {

Status short_message() { return make_error(ErrorCode::kInvalidArgument, "the message ends early"); }

uint16_t read_u16(std::string_view b, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) | static_cast<uint8_t>(b[at + 1]));
}
uint32_t read_u32(std::string_view b, size_t at) { return (uint32_t{read_u16(b, at)} << 16) | read_u16(b, at + 2); }

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
void put_u32(std::string& out, uint32_t v) {
  put_u16(out, static_cast<uint16_t>(v >> 16));
  put_u16(out, static_cast<uint16_t>(v & 0xffff));
}

// Rdata of the known types with their names decompressed. `start`/`end` bound the rdata.
Result<std::string> read_rdata(std::string_view msg, uint16_t type, size_t start, size_t end) {
  std::string out;
  size_t pos = start;
  auto name = [&]() -> Status {
    auto n = read_wire_name(msg, pos);
    if (!n) return std::unexpected(n.error());
    if (pos > end) return make_error(ErrorCode::kInvalidArgument, "a name runs past its rdata");
    append_wire_name(out, *n);
    return {};
  };
  auto fixed = [&](size_t n) -> Status {
    if (pos + n > end) return make_error(ErrorCode::kInvalidArgument, "rdata is cut short");
    out.append(msg.substr(pos, n));
    pos += n;
    return {};
  };
  Status s;
  switch (type) {
    case type::kNs:
    case type::kCname: s = name(); break;
    case type::kMx:
      s = fixed(2);
      if (s) s = name();
      break;
    case type::kSrv:
      s = fixed(6);
      if (s) s = name();
      break;
    case type::kSoa:
      s = name();
      if (s) s = name();
      if (s) s = fixed(20);
      break;
    default: return std::string(msg.substr(start, end - start));
  }
  if (!s) return std::unexpected(s.error());
  if (pos != end) return make_error(ErrorCode::kInvalidArgument, fmt::format("{} rdata has trailing bytes", type_name(type)));
  return out;
}

// Name compression while encoding: each suffix written at an offset below 0x4000 is
// remembered by its lowercase text.
class NameWriter {
 public:
  void write(std::string& out, const Name& name) {
    const Name lower = name.lower();
    for (size_t i = 0; i < name.labels.size(); ++i) {
      const std::string key = suffix_key(lower, i);
      if (auto it = offsets_.find(key); it != offsets_.end()) {
        put_u16(out, static_cast<uint16_t>(0xC000 | it->second));
        return;
      }
      if (out.size() < 0x4000) offsets_.emplace(key, static_cast<uint16_t>(out.size()));
      out.push_back(static_cast<char>(name.labels[i].size()));
      out.append(name.labels[i]);
    }
    out.push_back('\0');
  }

 private:
  static std::string suffix_key(const Name& n, size_t from) {
    std::string k;
    for (size_t i = from; i < n.labels.size(); ++i) {
      k.push_back(static_cast<char>(n.labels[i].size()));
      k.append(n.labels[i]);
    }
    return k;
  }
  std::map<std::string, uint16_t> offsets_;
};

// Rdata with its names compressed where RFC 3597 allows (NS, CNAME, SOA, MX; not SRV).
// Rdata that does not read back as its type's layout goes out verbatim.
void write_rdata(std::string& out, NameWriter& names, const Record& r) {
  const size_t len_at = out.size();
  put_u16(out, 0);
  const std::string_view rd = r.rdata;
  const bool is_compressible = r.type == type::kNs || r.type == type::kCname || r.type == type::kMx || r.type == type::kSoa;
  const size_t prefix = r.type == type::kMx ? 2 : 0;
  const size_t name_count = r.type == type::kSoa ? 2 : 1;
  const size_t suffix = r.type == type::kSoa ? 20 : 0;
  std::vector<Name> parsed;
  size_t pos = prefix;
  bool is_compressed = is_compressible && rd.size() >= prefix;
  for (size_t i = 0; is_compressed && i < name_count; ++i) {
    auto n = read_wire_name(rd, pos);
    if (!n) {
      is_compressed = false;
    } else {
      parsed.push_back(std::move(*n));
    }
  }
  if (is_compressed && pos + suffix == rd.size()) {
    out.append(rd.substr(0, prefix));
    for (const auto& n : parsed) names.write(out, n);
    out.append(rd.substr(pos, suffix));
  } else {
    out.append(rd);
  }
  const size_t len = out.size() - len_at - 2;
  ASPEN_ASSERT(len <= 0xFFFF);
  out[len_at] = static_cast<char>(len >> 8);
  out[len_at + 1] = static_cast<char>(len & 0xff);
}

void write_record(std::string& out, NameWriter& names, const Record& r) {
  names.write(out, r.name);
  put_u16(out, r.type);
  put_u16(out, r.klass);
  put_u32(out, r.ttl);
  write_rdata(out, names, r);
}

void write_header(std::string& out, const Header& h, size_t qd, size_t an, size_t ns, size_t ar) {
  put_u16(out, h.id);
  uint8_t b2 = static_cast<uint8_t>((h.is_response ? 0x80 : 0) | ((h.opcode & 0x0F) << 3) | (h.is_authoritative ? 0x04 : 0) |
                                    (h.is_truncated ? 0x02 : 0) | (h.is_recursion_desired ? 0x01 : 0));
  uint8_t b3 = static_cast<uint8_t>((h.is_recursion_available ? 0x80 : 0) | (h.rcode & 0x0F));
  out.push_back(static_cast<char>(b2));
  out.push_back(static_cast<char>(b3));
  put_u16(out, static_cast<uint16_t>(qd));
  put_u16(out, static_cast<uint16_t>(an));
  put_u16(out, static_cast<uint16_t>(ns));
  put_u16(out, static_cast<uint16_t>(ar));
}

}  // namespace

std::string type_name(uint16_t t) {
  switch (t) {
    case type::kA: return "A";
    case type::kNs: return "NS";
    case type::kCname: return "CNAME";
    case type::kSoa: return "SOA";
    case type::kMx: return "MX";
    case type::kTxt: return "TXT";
    case type::kAaaa: return "AAAA";
    case type::kSrv: return "SRV";
    case type::kOpt: return "OPT";
    case type::kAny: return "ANY";
    default: return fmt::format("TYPE{}", t);
  }
}

std::optional<uint16_t> type_from_name(std::string_view name) {
  std::string upper(name);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (uint16_t t : {type::kA, type::kNs, type::kCname, type::kSoa, type::kMx, type::kTxt, type::kAaaa, type::kSrv}) {
    if (type_name(t) == upper) return t;
  }
  return std::nullopt;
}

const Record* Message::opt() const {
  for (const auto& r : additional) {
    if (r.type == type::kOpt) return &r;
  }
  return nullptr;
}

std::optional<Header> decode_header(std::string_view b) {
  if (b.size() < 12) return std::nullopt;
  Header h;
  h.id = read_u16(b, 0);
  const auto b2 = static_cast<uint8_t>(b[2]);
  const auto b3 = static_cast<uint8_t>(b[3]);
  h.is_response = (b2 & 0x80) != 0;
  h.opcode = (b2 >> 3) & 0x0F;
  h.is_authoritative = (b2 & 0x04) != 0;
  h.is_truncated = (b2 & 0x02) != 0;
  h.is_recursion_desired = (b2 & 0x01) != 0;
  h.is_recursion_available = (b3 & 0x80) != 0;
  h.rcode = b3 & 0x0F;
  return h;
}

Result<Message> decode_message(std::string_view b) {
  if (b.size() > kMaxMessageBytes) {
    return make_error(ErrorCode::kMessageTooLarge, fmt::format("a DNS message over {} bytes", kMaxMessageBytes));
  }
  auto h = decode_header(b);
  if (!h) return make_error(ErrorCode::kInvalidArgument, "a DNS message shorter than its 12-byte header");
  Message m;
  m.header = *h;
  const size_t qd = read_u16(b, 4), an = read_u16(b, 6), ns = read_u16(b, 8), ar = read_u16(b, 10);
  if (qd + an + ns + ar > kMaxRecordsPerMessage) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("a DNS message with over {} records", kMaxRecordsPerMessage));
  }
  size_t pos = 12;
  for (size_t i = 0; i < qd; ++i) {
    auto name = read_wire_name(b, pos);
    if (!name) return std::unexpected(name.error());
    if (pos + 4 > b.size()) return std::unexpected(short_message().error());
    m.questions.push_back(Question{std::move(*name), read_u16(b, pos), read_u16(b, pos + 2)});
    pos += 4;
  }
  for (auto [count, section] : {std::pair{an, &m.answers}, std::pair{ns, &m.authority}, std::pair{ar, &m.additional}}) {
    for (size_t i = 0; i < count; ++i) {
      auto name = read_wire_name(b, pos);
      if (!name) return std::unexpected(name.error());
      if (pos + 10 > b.size()) return std::unexpected(short_message().error());
      Record r;
      r.name = std::move(*name);
      r.type = read_u16(b, pos);
      r.klass = read_u16(b, pos + 2);
      r.ttl = read_u32(b, pos + 4);
      const size_t len = read_u16(b, pos + 8);
      pos += 10;
      if (pos + len > b.size()) return std::unexpected(short_message().error());
      auto rd = read_rdata(b, r.type, pos, pos + len);
      if (!rd) return std::unexpected(rd.error());
      r.rdata = std::move(*rd);
      pos += len;
      section->push_back(std::move(r));
    }
  }
  if (pos != b.size()) return make_error(ErrorCode::kInvalidArgument, "bytes after the last record");
  return m;
}

Encoded encode_message(const Message& m, size_t max_bytes) {
  ASPEN_ASSERT(max_bytes >= 12 && max_bytes <= kMaxMessageBytes);
  Encoded e;
  {
    NameWriter names;
    std::string& out = e.bytes;
    write_header(out, m.header, m.questions.size(), m.answers.size(), m.authority.size(), m.additional.size());
    for (const auto& q : m.questions) {
      names.write(out, q.name);
      put_u16(out, q.type);
      put_u16(out, q.klass);
    }
    for (const auto* section : {&m.answers, &m.authority, &m.additional}) {
      for (const auto& r : *section) write_record(out, names, r);
    }
    if (out.size() <= max_bytes) return e;
  }
  // Too large: the questions and the OPT record only, with TC.
  e.bytes.clear();
  e.is_truncated = true;
  Header h = m.header;
  h.is_truncated = true;
  const Record* opt = m.opt();
  NameWriter names;
  write_header(e.bytes, h, m.questions.size(), 0, 0, opt != nullptr ? 1 : 0);
  for (const auto& q : m.questions) {
    names.write(e.bytes, q.name);
    put_u16(e.bytes, q.type);
    put_u16(e.bytes, q.klass);
  }
  if (opt != nullptr) write_record(e.bytes, names, *opt);
  if (e.bytes.size() > max_bytes) {  // even the question does not fit: the header alone
    e.bytes.resize(12);
    for (size_t i = 4; i < 12; ++i) e.bytes[i] = '\0';
  }
  return e;
}

}  // namespace aspen::dns
