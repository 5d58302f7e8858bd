#include "lincheck/history_file.h"

#include <charconv>
#include <cstdio>

namespace aspen::lincheck {
namespace {

constexpr std::string_view kNil = "nil";
constexpr std::string_view kEmpty = "\"\"";
constexpr std::string_view kNoTime = "-";

bool is_plain(unsigned char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::string_view("._~:/+=@,-").find(static_cast<char>(c)) != std::string_view::npos;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string encode_optional(const std::optional<std::string>& v) {
  return v ? encode_token(*v) : std::string(kNil);
}

std::expected<std::optional<std::string>, std::string> decode_optional(std::string_view token) {
  if (token == kNil) return std::optional<std::string>();
  auto v = decode_token(token);
  if (!v) return std::unexpected(v.error());
  return std::optional<std::string>(std::move(*v));
}

std::expected<uint64_t, std::string> parse_u64(std::string_view token, std::string_view what) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (ec != std::errc() || end != token.data() + token.size()) {
    return std::unexpected(std::string(what) + " is not an unsigned integer: '" + std::string(token) + "'");
  }
  return v;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

const char* kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::kRead: return "read";
    case OpKind::kWrite: return "write";
    case OpKind::kCas: return "cas";
    case OpKind::kDelete: return "delete";
  }
  return "?";
}

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk: return "ok";
    case Outcome::kFail: return "fail";
    case Outcome::kUnknown: return "unknown";
  }
  return "?";
}

}  // namespace

std::string encode_token(std::string_view bytes) {
  if (bytes.empty()) return std::string(kEmpty);
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    // "nil" stands for absence, so a value spelled so escapes its first letter.
    bool is_nil_start = i == 0 && bytes == kNil;
    if (is_plain(c) && !is_nil_start) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::expected<std::string, std::string> decode_token(std::string_view token) {
  if (token == kEmpty) return std::string();
  if (token.empty()) return std::unexpected(std::string("empty token (write the empty value as \"\")"));
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size(); ++i) {
    char c = token[i];
    if (c == '%') {
      const bool has_two_digits = i + 2 < token.size();
      int hi = has_two_digits ? hex_digit(token[i + 1]) : -1;
      int lo = has_two_digits ? hex_digit(token[i + 2]) : -1;
      if (hi < 0 || lo < 0) return std::unexpected("bad %XX escape in '" + std::string(token) + "'");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (is_plain(static_cast<unsigned char>(c))) {
      out += c;
    } else {
      return std::unexpected("character '" + std::string(1, c) + "' must be escaped as %XX in '" +
                             std::string(token) + "'");
    }
  }
  return out;
}

std::string format_record(const Record& r) {
  std::string out = std::to_string(r.process) + " " + kind_name(r.kind) + " " + encode_token(r.key);
  switch (r.kind) {
    case OpKind::kRead:
      out += " " + (r.outcome == Outcome::kOk ? encode_optional(r.read_result) : std::string(kNoTime));
      break;
    case OpKind::kWrite:
      out += " " + encode_token(r.value);
      break;
    case OpKind::kCas:
      out += " " + encode_optional(r.expected) + " " + encode_token(r.value);
      break;
    case OpKind::kDelete:
      break;
  }
  out += " " + std::to_string(r.invoke_time);
  out += " " + (r.complete_time ? std::to_string(*r.complete_time) : std::string(kNoTime));
  out += " ";
  out += outcome_name(r.outcome);
  return out;
}

std::expected<Record, std::string> parse_record(std::string_view line) {
  std::vector<std::string_view> f = split_fields(line);
  if (f.size() < 2) return std::unexpected(std::string("expected: <process> <op> <key> ... <invoke> <complete> <outcome>"));
  Record r;
  auto process = parse_u64(f[0], "process");
  if (!process) return std::unexpected(process.error());
  r.process = *process;
  size_t args = 0;
  if (f[1] == "read") {
    r.kind = OpKind::kRead;
    args = 1;
  } else if (f[1] == "write") {
    r.kind = OpKind::kWrite;
    args = 1;
  } else if (f[1] == "cas") {
    r.kind = OpKind::kCas;
    args = 2;
  } else if (f[1] == "delete") {
    r.kind = OpKind::kDelete;
    args = 0;
  } else {
    return std::unexpected("unknown operation '" + std::string(f[1]) + "' (read, write, cas, delete)");
  }
  // process, op, key, args, invoke, complete, outcome
  const size_t want = 3 + args + 3;
  if (f.size() != want) {
    return std::unexpected(std::string(f[1]) + " takes " + std::to_string(want) + " fields, this line has " +
                           std::to_string(f.size()));
  }
  const std::string_view outcome = f[want - 1];
  if (outcome == "ok") {
    r.outcome = Outcome::kOk;
  } else if (outcome == "fail") {
    r.outcome = Outcome::kFail;
  } else if (outcome == "unknown") {
    r.outcome = Outcome::kUnknown;
  } else {
    return std::unexpected("outcome must be ok, fail or unknown, not '" + std::string(outcome) + "'");
  }
  auto key = decode_token(f[2]);
  if (!key) return std::unexpected("key: " + key.error());
  r.key = std::move(*key);
  if (r.kind == OpKind::kRead && r.outcome == Outcome::kOk) {
    auto v = decode_optional(f[3]);
    if (!v) return std::unexpected("value: " + v.error());
    r.read_result = std::move(*v);
  } else if (r.kind == OpKind::kWrite) {
    auto v = decode_token(f[3]);
    if (!v) return std::unexpected("value: " + v.error());
    r.value = std::move(*v);
  } else if (r.kind == OpKind::kCas) {
    auto e = decode_optional(f[3]);
    if (!e) return std::unexpected("expected value: " + e.error());
    r.expected = std::move(*e);
    auto v = decode_token(f[4]);
    if (!v) return std::unexpected("new value: " + v.error());
    r.value = std::move(*v);
  }
  auto invoke = parse_u64(f[want - 3], "invoke time");
  if (!invoke) return std::unexpected(invoke.error());
  r.invoke_time = *invoke;
  if (f[want - 2] != kNoTime) {
    auto complete = parse_u64(f[want - 2], "complete time");
    if (!complete) return std::unexpected(complete.error());
    if (*complete < r.invoke_time) return std::unexpected(std::string("complete time is before the invoke time"));
    r.complete_time = *complete;
  } else if (r.outcome != Outcome::kUnknown) {
    return std::unexpected(std::string("an ok or failed operation needs its complete time ('-' only with unknown)"));
  }
  return r;
}

std::optional<Operation> to_operation(const Record& r) {
  const bool is_unknown = r.outcome == Outcome::kUnknown;
  // A failed CAS observed that the key did not hold the expected value; any other failure,
  // and a read that never answered, tells nothing about the register.
  if (r.outcome == Outcome::kFail && r.kind != OpKind::kCas) return std::nullopt;
  if (is_unknown && r.kind == OpKind::kRead) return std::nullopt;
  Operation op;
  op.client_id = r.process;
  op.kind = r.kind;
  op.key = r.key;
  op.value = r.value;
  op.expected = r.expected;
  op.read_result = r.read_result;
  op.cas_succeeded = r.kind == OpKind::kCas && r.outcome == Outcome::kOk;
  op.is_indeterminate = is_unknown;
  op.invoke_time = r.invoke_time;
  op.return_time = is_unknown ? 0 : *r.complete_time;
  return op;
}

std::expected<History, std::string> read_history(std::istream& in) {
  History h;
  std::string line;
  uint64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string_view v = line;
    size_t first = v.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || v[first] == '#') continue;
    auto r = parse_record(v);
    if (!r) return std::unexpected("line " + std::to_string(number) + ": " + r.error());
    ++h.records;
    switch (r->outcome) {
      case Outcome::kOk: ++h.ok; break;
      case Outcome::kFail: ++h.failed; break;
      case Outcome::kUnknown: ++h.unknown; break;
    }
    if (auto op = to_operation(*r)) h.operations.push_back(std::move(*op));
  }
  if (in.bad()) return std::unexpected(std::string("read error"));
  return h;
}

}  // namespace aspen::lincheck
