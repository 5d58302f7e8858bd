#include "dns/name.h"

#include <fmt/format.h>

namespace aspen::dns {

namespace {

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool label_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  }
  return true;
}

}  // namespace

size_t Name::wire_size() const {
  size_t n = 1;
  for (const auto& l : labels) n += 1 + l.size();
  return n;
}

std::string Name::to_text() const {
  if (labels.empty()) return ".";
  std::string out;
  for (const auto& l : labels) {
    for (char ch : l) {
      const auto c = static_cast<unsigned char>(ch);
      if (c <= ' ' || c > '~' || c == '.' || c == '\\') {
        out += fmt::format("\\{:03d}", c);
      } else {
        out.push_back(ch);
      }
    }
    out.push_back('.');
  }
  return out;
}

Name Name::lower() const {
  Name out = *this;
  for (auto& l : out.labels) {
    for (auto& c : l) c = lower_ascii(c);
  }
  return out;
}

Name Name::parent() const {
  Name out;
  if (labels.size() > 1) out.labels.assign(labels.begin() + 1, labels.end());
  return out;
}

bool Name::is_subdomain_of(const Name& zone) const {
  if (zone.labels.size() > labels.size()) return false;
  const size_t skip = labels.size() - zone.labels.size();
  for (size_t i = 0; i < zone.labels.size(); ++i) {
    if (!label_equal(labels[skip + i], zone.labels[i])) return false;
  }
  return true;
}

bool Name::equals(const Name& other) const {
  return labels.size() == other.labels.size() && is_subdomain_of(other);
}

bool is_storable_label(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabelBytes) return false;
  if (label == "*") return true;
  for (char c : label) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<Name> parse_name(std::string_view text) {
  if (text.empty()) return make_error(ErrorCode::kInvalidArgument, "a name is empty (write \".\" for the root)");
  if (text == ".") return Name{};
  std::string_view rest = text;
  if (rest.back() == '.') rest.remove_suffix(1);
  Name name;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t dot = rest.find('.', start);
    if (dot == std::string_view::npos) dot = rest.size();
    std::string label(rest.substr(start, dot - start));
    for (auto& c : label) c = lower_ascii(c);
    if (label.empty()) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("name '{}' has an empty label", text));
    }
    if (label.size() > kMaxLabelBytes) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("name '{}' has a label of {} bytes (at most {})", text, label.size(), kMaxLabelBytes));
    }
    if (!is_storable_label(label)) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("name '{}': label '{}' may hold only letters, digits, '-' and '_' "
                                    "('*' alone as the leftmost label)",
                                    text, label));
    }
    if (label == "*" && !name.labels.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("name '{}': '*' is a wildcard only as the leftmost label", text));
    }
    name.labels.push_back(std::move(label));
    start = dot + 1;
  }
  if (name.wire_size() > kMaxNameWireBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("name '{}' is {} bytes on the wire (at most {})", text, name.wire_size(), kMaxNameWireBytes));
  }
  return name;
}

Result<Name> read_wire_name(std::string_view message, size_t& offset) {
  Name name;
  size_t pos = offset;
  size_t jumps = 0;
  size_t wire = 1;
  bool has_jumped = false;
  size_t segment_start = offset;  // where the labels being read now began
  while (true) {
    if (pos >= message.size()) return make_error(ErrorCode::kInvalidArgument, "a name runs past the message");
    const auto len = static_cast<uint8_t>(message[pos]);
    if ((len & 0xC0) == 0xC0) {
      if (pos + 1 >= message.size()) return make_error(ErrorCode::kInvalidArgument, "a compression pointer is cut short");
      const size_t target = (size_t{len & 0x3Fu} << 8) | static_cast<uint8_t>(message[pos + 1]);
      if (++jumps > kMaxCompressionJumps) {
        return make_error(ErrorCode::kInvalidArgument, "a name follows too many compression pointers");
      }
      // Each pointer must point before the labels read since the last one: positions strictly
      // decrease, so no loop is possible (the jump limit is a second net).
      if (target >= segment_start) return make_error(ErrorCode::kInvalidArgument, "a compression pointer does not point backwards");
      if (!has_jumped) offset = pos + 2;
      has_jumped = true;
      pos = target;
      segment_start = target;
      continue;
    }
    if ((len & 0xC0) != 0) return make_error(ErrorCode::kInvalidArgument, "a label type other than 0 or 3");
    if (len == 0) {
      if (!has_jumped) offset = pos + 1;
      return name;
    }
    if (pos + 1 + len > message.size()) return make_error(ErrorCode::kInvalidArgument, "a label runs past the message");
    wire += 1 + len;
    if (wire > kMaxNameWireBytes) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("a name longer than {} bytes", kMaxNameWireBytes));
    }
    name.labels.emplace_back(message.substr(pos + 1, len));
    pos += 1 + len;
  }
}

void append_wire_name(std::string& out, const Name& name) {
  for (const auto& l : name.labels) {
    out.push_back(static_cast<char>(l.size()));
    out.append(l);
  }
  out.push_back('\0');
}

}  // namespace aspen::dns
