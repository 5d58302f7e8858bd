#include "cluster/mdns_codec.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"

namespace aspen::cluster {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool label_equals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lower(x) == lower(y);
         });
}

std::unexpected<Error> invalid(std::string message) { return make_error(ErrorCode::kInvalidArgument, std::move(message)); }

// --- writing ----------------------------------------------------------------------------

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void bytes(std::string_view b) { out_.append(b); }
  Status name(const DnsName& n) {
    size_t wire = 1;
    for (const auto& label : n.labels) {
      if (label.empty() || label.size() > kMaxMdnsLabelBytes) {
        return invalid(fmt::format("a label of {} bytes (1 to {})", label.size(), kMaxMdnsLabelBytes));
      }
      wire += 1 + label.size();
    }
    if (wire > kMaxMdnsNameWireBytes) return invalid(fmt::format("a name of {} bytes (at most {})", wire, kMaxMdnsNameWireBytes));
    for (const auto& label : n.labels) {
      u8(static_cast<uint8_t>(label.size()));
      bytes(label);
    }
    u8(0);
    return {};
  }
  size_t size() const { return out_.size(); }
  // Writes a u16 at `pos` (a length filled in after its data).
  void patch_u16(size_t pos, uint16_t v) {
    out_[pos] = static_cast<char>(v >> 8);
    out_[pos + 1] = static_cast<char>(v);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

Status write_record(Writer& w, const DnsRecord& r) {
  if (auto s = w.name(r.name); !s) return s;
  w.u16(r.type);
  w.u16(static_cast<uint16_t>((r.rclass & 0x7fff) | (r.is_cache_flush ? 0x8000 : 0)));
  w.u32(r.ttl_s);
  const size_t length_at = w.size();
  w.u16(0);
  switch (r.type) {
    case kDnsTypePtr:
      if (auto s = w.name(r.ptr); !s) return s;
      break;
    case kDnsTypeSrv:
      w.u16(r.srv.priority);
      w.u16(r.srv.weight);
      w.u16(r.srv.port);
      if (auto s = w.name(r.srv.target); !s) return s;
      break;
    case kDnsTypeTxt:
      if (r.txt.size() > kMaxMdnsTxtStrings) return invalid("too many TXT strings");
      for (const auto& t : r.txt) {
        if (t.size() > 255) return invalid("a TXT string over 255 bytes");
        w.u8(static_cast<uint8_t>(t.size()));
        w.bytes(t);
      }
      // Written as given: an empty list is empty data, so that decode(encode(m)) == m.
      break;
    case kDnsTypeA:
      for (uint8_t b : r.a) w.u8(b);
      break;
    default:
      if (r.raw.size() > 0xffff) return invalid("record data over 65535 bytes");
      w.bytes(r.raw);
      break;
  }
  const size_t length = w.size() - length_at - 2;
  if (length > 0xffff) return invalid("record data over 65535 bytes");
  w.patch_u16(length_at, static_cast<uint16_t>(length));
  return {};
}

// --- reading ----------------------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  size_t pos() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }
  bool u8(uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<uint8_t>(bytes_[pos_++]);
    return true;
  }
  bool u16(uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<uint16_t>((static_cast<uint8_t>(bytes_[pos_]) << 8) | static_cast<uint8_t>(bytes_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    uint16_t hi = 0;
    uint16_t lo = 0;
    if (!u16(hi) || !u16(lo)) return false;
    v = (uint32_t{hi} << 16) | lo;
    return true;
  }
  bool skip(size_t n) {
    if (left() < n) return false;
    pos_ += n;
    return true;
  }
  // A name at the current position; compression pointers (RFC 1035 4.1.4) may point only
  // before the place they are read at, so every jump goes backwards and the walk ends.
  Result<DnsName> name() {
    DnsName out;
    size_t at = pos_;
    size_t jumps = 0;
    size_t wire = 1;
    bool has_jumped = false;
    while (true) {
      if (at >= bytes_.size()) return invalid("a name runs past the end");
      const auto len = static_cast<uint8_t>(bytes_[at]);
      if ((len & 0xc0) == 0xc0) {
        if (at + 1 >= bytes_.size()) return invalid("a compression pointer runs past the end");
        const size_t target = ((len & 0x3fu) << 8) | static_cast<uint8_t>(bytes_[at + 1]);
        if (target >= at) return invalid("a compression pointer that does not point backwards");
        if (++jumps > kMaxMdnsNameJumps) return invalid("too many compression pointers in a name");
        if (!has_jumped) pos_ = at + 2;
        has_jumped = true;
        at = target;
        continue;
      }
      if ((len & 0xc0) != 0) return invalid("a label with a reserved length type");
      if (len == 0) {
        if (!has_jumped) pos_ = at + 1;
        return out;
      }
      wire += 1 + len;
      if (wire > kMaxMdnsNameWireBytes) return invalid("a name over 255 bytes");
      if (at + 1 + len > bytes_.size()) return invalid("a label runs past the end");
      out.labels.emplace_back(bytes_.substr(at + 1, len));
      at += 1 + len;
    }
  }
  std::string_view take(size_t n) {
    ASPEN_ASSERT(n <= left());
    auto v = bytes_.substr(pos_, n);
    pos_ += n;
    return v;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

Result<DnsRecord> read_record(Reader& r) {
  DnsRecord rec;
  auto name = r.name();
  if (!name) return std::unexpected(name.error());
  rec.name = std::move(*name);
  uint16_t rclass = 0;
  uint16_t length = 0;
  if (!r.u16(rec.type) || !r.u16(rclass) || !r.u32(rec.ttl_s) || !r.u16(length)) return invalid("a record runs past the end");
  rec.rclass = rclass & 0x7fff;
  rec.is_cache_flush = (rclass & 0x8000) != 0;
  if (length > r.left()) return invalid("record data runs past the end");
  const size_t end = r.pos() + length;
  switch (rec.type) {
    case kDnsTypePtr: {
      auto p = r.name();
      if (!p) return std::unexpected(p.error());
      rec.ptr = std::move(*p);
      break;
    }
    case kDnsTypeSrv: {
      if (!r.u16(rec.srv.priority) || !r.u16(rec.srv.weight) || !r.u16(rec.srv.port)) return invalid("a short SRV record");
      auto t = r.name();
      if (!t) return std::unexpected(t.error());
      rec.srv.target = std::move(*t);
      break;
    }
    case kDnsTypeTxt: {
      while (r.pos() < end) {
        uint8_t len = 0;
        if (!r.u8(len) || r.pos() + len > end) return invalid("a TXT string runs past its record");
        if (rec.txt.size() >= kMaxMdnsTxtStrings) return invalid("too many TXT strings");
        rec.txt.emplace_back(r.take(len));
      }
      break;
    }
    case kDnsTypeA: {
      if (length != 4) return invalid("an A record that is not 4 bytes");
      for (auto& b : rec.a) r.u8(b);
      break;
    }
    default:
      rec.raw = std::string(r.take(length));
      break;
  }
  if (r.pos() != end) return invalid("record data of another length than it says");
  return rec;
}

}  // namespace

DnsName DnsName::from_dotted(std::string_view dotted) {
  DnsName n;
  while (!dotted.empty()) {
    const size_t dot = dotted.find('.');
    n.labels.emplace_back(dotted.substr(0, dot));
    if (dot == std::string_view::npos) break;
    dotted.remove_prefix(dot + 1);
  }
  return n;
}

std::string DnsName::to_string() const {
  std::string out;
  for (const auto& l : labels) {
    if (!out.empty()) out += '.';
    for (char c : l) out += (c >= 0x21 && c <= 0x7e) ? c : '?';
  }
  return out.empty() ? "." : out;
}

bool DnsName::equals(const DnsName& other) const {
  return labels.size() == other.labels.size() &&
         std::equal(labels.begin(), labels.end(), other.labels.begin(), label_equals);
}

bool DnsName::ends_with(const DnsName& suffix) const {
  if (suffix.labels.size() > labels.size()) return false;
  return std::equal(suffix.labels.begin(), suffix.labels.end(), labels.end() - static_cast<ptrdiff_t>(suffix.labels.size()),
                    label_equals);
}

Result<std::string> encode_dns_message(const DnsMessage& m, size_t max_bytes) {
  if (m.questions.size() > kMaxMdnsQuestions) return invalid("too many questions");
  if (m.answers.size() + m.additionals.size() > kMaxMdnsRecords) return invalid("too many records");
  Writer w;
  w.u16(m.id);
  uint16_t flags = 0;
  if (m.is_response) flags |= 0x8000;
  if (m.is_authoritative) flags |= 0x0400;
  w.u16(flags);
  w.u16(static_cast<uint16_t>(m.questions.size()));
  w.u16(static_cast<uint16_t>(m.answers.size()));
  w.u16(0);
  w.u16(static_cast<uint16_t>(m.additionals.size()));
  for (const auto& q : m.questions) {
    if (auto s = w.name(q.name); !s) return std::unexpected(s.error());
    w.u16(q.type);
    w.u16(static_cast<uint16_t>((q.rclass & 0x7fff) | (q.is_unicast_response ? 0x8000 : 0)));
  }
  for (const auto* section : {&m.answers, &m.additionals}) {
    for (const auto& r : *section) {
      if (auto s = write_record(w, r); !s) return std::unexpected(s.error());
      if (w.size() > max_bytes) break;
    }
  }
  if (w.size() > max_bytes) return invalid(fmt::format("a message of {} bytes (at most {})", w.size(), max_bytes));
  return w.take();
}

Result<DnsMessage> decode_dns_message(std::string_view bytes) {
  if (bytes.size() > kMaxMdnsDatagramBytes) {
    return invalid(fmt::format("a datagram of {} bytes (at most {})", bytes.size(), kMaxMdnsDatagramBytes));
  }
  Reader r(bytes);
  DnsMessage m;
  uint16_t flags = 0;
  uint16_t counts[4] = {};
  if (!r.u16(m.id) || !r.u16(flags)) return invalid("shorter than a DNS header");
  for (auto& c : counts) {
    if (!r.u16(c)) return invalid("shorter than a DNS header");
  }
  m.is_response = (flags & 0x8000) != 0;
  m.is_authoritative = (flags & 0x0400) != 0;
  if ((flags & 0x7800) != 0) return invalid("not a standard query or response (opcode)");
  if (counts[0] > kMaxMdnsQuestions) return invalid(fmt::format("{} questions (at most {})", counts[0], kMaxMdnsQuestions));
  const size_t records = size_t{counts[1]} + counts[2] + counts[3];
  if (records > kMaxMdnsRecords) return invalid(fmt::format("{} records (at most {})", records, kMaxMdnsRecords));
  for (uint16_t i = 0; i < counts[0]; ++i) {
    DnsQuestion q;
    auto name = r.name();
    if (!name) return std::unexpected(name.error());
    q.name = std::move(*name);
    uint16_t rclass = 0;
    if (!r.u16(q.type) || !r.u16(rclass)) return invalid("a question runs past the end");
    q.rclass = rclass & 0x7fff;
    q.is_unicast_response = (rclass & 0x8000) != 0;
    m.questions.push_back(std::move(q));
  }
  for (size_t i = 0; i < records; ++i) {
    auto rec = read_record(r);
    if (!rec) return std::unexpected(rec.error());
    (i < counts[1] ? m.answers : m.additionals).push_back(std::move(*rec));
  }
  // Trailing bytes are tolerated (some responders pad); they are not read.
  return m;
}

}  // namespace aspen::cluster
