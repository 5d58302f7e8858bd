#include "dns/rdata.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>
#include <vector>

#include "dns/message.h"

namespace aspen::dns {

namespace {

std::vector<std::string_view> fields(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t') ++j;
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

template <typename T>
std::optional<T> number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
void put_u32(std::string& out, uint32_t v) {
  put_u16(out, static_cast<uint16_t>(v >> 16));
  put_u16(out, static_cast<uint16_t>(v & 0xffff));
}
uint16_t get_u16(std::string_view b, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) | static_cast<uint8_t>(b[at + 1]));
}
uint32_t get_u32(std::string_view b, size_t at) { return (uint32_t{get_u16(b, at)} << 16) | get_u16(b, at + 2); }

Status bad(uint16_t t, std::string_view text, std::string_view shape) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("'{}' is not {} data; write {}", text, type_name(t), shape));
}

// A name inside record data: absolute, no wildcard.
Result<Name> target_name(std::string_view text) {
  auto n = parse_name(text);
  if (!n) return n;
  for (const auto& l : n->labels) {
    if (l == "*") return make_error(ErrorCode::kInvalidArgument, fmt::format("'{}': a wildcard cannot be a target", text));
  }
  return n;
}

// Reads an uncompressed name from rdata; returns text "?" for data that is not one.
std::string name_text(std::string_view rd, size_t& pos) {
  auto n = read_wire_name(rd, pos);
  return n ? n->to_text() : "?";
}

}  // namespace

Result<std::string> rdata_from_text(uint16_t t, std::string_view text) {
  const auto f = fields(text);
  std::string out;
  switch (t) {
    case type::kA: {
      unsigned char buf[4];
      if (f.size() != 1 || ::inet_pton(AF_INET, std::string(f[0]).c_str(), buf) != 1) {
        return std::unexpected(bad(t, text, "an IPv4 address such as 192.0.2.1").error());
      }
      out.assign(reinterpret_cast<char*>(buf), 4);
      return out;
    }
    case type::kAaaa: {
      unsigned char buf[16];
      if (f.size() != 1 || ::inet_pton(AF_INET6, std::string(f[0]).c_str(), buf) != 1) {
        return std::unexpected(bad(t, text, "an IPv6 address such as 2001:db8::1").error());
      }
      out.assign(reinterpret_cast<char*>(buf), 16);
      return out;
    }
    case type::kCname:
    case type::kNs: {
      if (f.size() != 1) return std::unexpected(bad(t, text, "one name such as host.example.test.").error());
      auto n = target_name(f[0]);
      if (!n) return std::unexpected(n.error());
      append_wire_name(out, *n);
      return out;
    }
    case type::kMx: {
      auto pref = f.size() == 2 ? number<uint16_t>(f[0]) : std::nullopt;
      if (!pref) return std::unexpected(bad(t, text, "PREFERENCE NAME such as '10 mail.example.test.'").error());
      auto n = target_name(f[1]);
      if (!n) return std::unexpected(n.error());
      put_u16(out, *pref);
      append_wire_name(out, *n);
      return out;
    }
    case type::kSrv: {
      std::optional<uint16_t> p, w, port;
      if (f.size() == 4) p = number<uint16_t>(f[0]), w = number<uint16_t>(f[1]), port = number<uint16_t>(f[2]);
      if (!p || !w || !port) {
        return std::unexpected(bad(t, text, "PRIORITY WEIGHT PORT TARGET such as '10 5 5060 sip.example.test.'").error());
      }
      auto n = target_name(f[3]);
      if (!n) return std::unexpected(n.error());
      put_u16(out, *p);
      put_u16(out, *w);
      put_u16(out, *port);
      append_wire_name(out, *n);
      return out;
    }
    case type::kTxt: {
      if (text.size() > kMaxTxtBytes) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("TXT data of {} bytes (at most kMaxTxtBytes = {})", text.size(), kMaxTxtBytes));
      }
      for (char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          return make_error(ErrorCode::kInvalidArgument, "TXT data may not hold control characters or line breaks");
        }
      }
      // RFC 1035 3.3.14: character-strings of at most 255 bytes; an empty TXT is one empty string.
      size_t i = 0;
      do {
        const size_t n = std::min<size_t>(255, text.size() - i);
        out.push_back(static_cast<char>(n));
        out.append(text.substr(i, n));
        i += n;
      } while (i < text.size());
      return out;
    }
    case type::kSoa: {
      auto soa = soa_from_text(text);
      if (!soa) return std::unexpected(soa.error());
      return soa_to_rdata(*soa);
    }
    default:
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("type {} is not one aspen-dns stores (A, AAAA, CNAME, TXT, SRV, MX, NS, SOA)", type_name(t)));
  }
}

std::string rdata_to_text(uint16_t t, std::string_view rd) {
  size_t pos = 0;
  switch (t) {
    case type::kA:
    case type::kAaaa: {
      const int af = t == type::kA ? AF_INET : AF_INET6;
      if (rd.size() != (t == type::kA ? 4u : 16u)) break;
      char buf[INET6_ADDRSTRLEN] = {};
      if (::inet_ntop(af, rd.data(), buf, sizeof buf) == nullptr) break;
      return buf;
    }
    case type::kCname:
    case type::kNs: return name_text(rd, pos);
    case type::kMx:
      if (rd.size() < 3) break;
      pos = 2;
      return fmt::format("{} {}", get_u16(rd, 0), name_text(rd, pos));
    case type::kSrv:
      if (rd.size() < 7) break;
      pos = 6;
      return fmt::format("{} {} {} {}", get_u16(rd, 0), get_u16(rd, 2), get_u16(rd, 4), name_text(rd, pos));
    case type::kTxt: {
      std::string out;
      while (pos < rd.size()) {
        const size_t n = static_cast<uint8_t>(rd[pos]);
        out.append(rd.substr(pos + 1, n));
        pos += 1 + n;
      }
      return out;
    }
    case type::kSoa: {
      const std::string m = name_text(rd, pos);
      const std::string r = name_text(rd, pos);
      if (pos + 20 != rd.size()) break;
      return fmt::format("{} {} {} {} {} {} {}", m, r, get_u32(rd, pos), get_u32(rd, pos + 4), get_u32(rd, pos + 8),
                         get_u32(rd, pos + 12), get_u32(rd, pos + 16));
    }
    default: break;
  }
  // RFC 3597's generic form.
  std::string hex;
  for (char c : rd) hex += fmt::format("{:02x}", static_cast<uint8_t>(c));
  return fmt::format("\\# {} {}", rd.size(), hex);
}

std::optional<Name> cname_target(std::string_view rdata) {
  size_t pos = 0;
  auto n = read_wire_name(rdata, pos);
  if (!n) return std::nullopt;
  return *n;
}

std::string soa_to_rdata(const Soa& soa) {
  std::string out;
  append_wire_name(out, soa.mname);
  append_wire_name(out, soa.rname);
  for (uint32_t v : {soa.serial, soa.refresh_s, soa.retry_s, soa.expire_s, soa.minimum_s}) put_u32(out, v);
  return out;
}

Result<Soa> soa_from_text(std::string_view text) {
  const auto f = fields(text);
  const auto shape = "MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM such as "
                     "'ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60'";
  if (f.size() != 7) return std::unexpected(bad(type::kSoa, text, shape).error());
  Soa soa;
  auto m = target_name(f[0]);
  if (!m) return std::unexpected(m.error());
  auto r = target_name(f[1]);
  if (!r) return std::unexpected(r.error());
  soa.mname = *m;
  soa.rname = *r;
  uint32_t* nums[] = {&soa.serial, &soa.refresh_s, &soa.retry_s, &soa.expire_s, &soa.minimum_s};
  for (size_t i = 0; i < 5; ++i) {
    auto v = number<uint32_t>(f[2 + i]);
    if (!v) return std::unexpected(bad(type::kSoa, text, shape).error());
    *nums[i] = *v;
  }
  return soa;
}

std::string soa_to_text(const Soa& soa) {
  return fmt::format("{} {} {} {} {} {} {}", soa.mname.to_text(), soa.rname.to_text(), soa.serial, soa.refresh_s,
                     soa.retry_s, soa.expire_s, soa.minimum_s);
}

}  // namespace aspen::dns
