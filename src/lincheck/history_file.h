// The text form of a client history, one operation per line, as aspen-chaos-client writes it
// and aspen-lincheck reads it (the format is documented in docs/reliability.md):
//
//   # comment
//   <process> read   <key> <value|nil>              <invoke> <complete> <ok|fail|unknown>
//   <process> write  <key> <value>                  <invoke> <complete> <outcome>
//   <process> cas    <key> <expected|nil> <new>     <invoke> <complete> <outcome>
//   <process> delete <key>                          <invoke> <complete> <outcome>
//
// Times are unsigned integers in any one monotonic unit; `-` for the completion of an
// unknown outcome. Keys and values are tokens: bytes outside [A-Za-z0-9._~:/+=@,-] are
// written %XX; the empty value is `""` and `nil` (absence) is written as is, so the value
// "nil" itself is `%6Eil`.
//
// Outcomes: `ok` the operation took effect (a read returned the value given; a CAS swapped);
// `fail` it surely did not (a CAS: the key did not hold the expected value, which the checker
// uses; a write, delete or read that failed constrains nothing and is not checked);
// `unknown` it may or may not have taken effect (a timeout, a lost connection).
//
//   auto h = read_history(stream);
//   if (!h) ... h.error() names the line;
//   CheckResult r = check_linearizable(h->operations);
#pragma once

#include <cstdint>
#include <expected>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lincheck/linearizability.h"

namespace aspen::lincheck {

enum class Outcome : uint8_t { kOk, kFail, kUnknown };

// One line of a history file.
struct Record {
  uint64_t process = 0;
  OpKind kind = OpKind::kRead;
  std::string key;
  std::string value;                       // write, cas: the new value
  std::optional<std::string> expected;     // cas: nullopt = expects the key absent
  std::optional<std::string> read_result;  // read with outcome ok: nullopt = the key was absent
  uint64_t invoke_time = 0;
  std::optional<uint64_t> complete_time;   // required unless the outcome is unknown
  Outcome outcome = Outcome::kOk;
};

// The line for a record, without a newline.
std::string format_record(const Record& record);

// One line (without its newline; not a comment or blank). The error says what is wrong.
std::expected<Record, std::string> parse_record(std::string_view line);

// The operation the checker sees, or nullopt when the record constrains nothing (a read,
// write or delete that failed, a read whose outcome is unknown).
std::optional<Operation> to_operation(const Record& record);

struct History {
  std::vector<Operation> operations;  // what check_linearizable() is given
  uint64_t records = 0;               // operation lines read
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t unknown = 0;
};

// Reads every line; blank lines and lines starting with '#' are skipped. The error names the
// first bad line by its number.
std::expected<History, std::string> read_history(std::istream& in);

// Token encoding of keys and values (above).
std::string encode_token(std::string_view bytes);
std::expected<std::string, std::string> decode_token(std::string_view token);

}  // namespace aspen::lincheck
