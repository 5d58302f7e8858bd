// Payloads in and out of aspen-cli, byte for byte.
//
// A value (kv set, kv cas), an expected value, a queue message or a leader value may come
// from a command-line argument, from stdin or from a file. An argument is limited by the
// kernel (128 KiB on Linux) and cannot carry every byte, so stdin and files are the binary-safe
// ways in. Every input is bounded by the limit of what it feeds and checked while it is read:
// an oversized input is refused with ValueTooLarge, naming the limit, before anything is sent.
//
// On the way out, a value goes to stdout or a file exactly as stored (no newline, no hex);
// JSON carries text as text and anything else as base64, with an explicit "<name>_encoding".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "cli.h"
#include "core/error.h"
#include "core/limits.h"

namespace aspen::cli {

// The limit an input feeds, with the name of its constant so that errors can cite it.
struct PayloadLimit {
  size_t max_bytes = 0;
  const char* name = "";
};
inline constexpr PayloadLimit kValueLimit{limits::kMaxValueSizeBytes, "kMaxValueSizeBytes"};
inline constexpr PayloadLimit kQueuePayloadLimit{limits::kMaxQueuePayloadBytes, "kMaxQueuePayloadBytes"};

// Where one payload comes from. With neither an argument nor a file, the payload is read
// from stdin; "-" as the argument or as the file also means stdin.
struct PayloadSource {
  std::string arg;       // the positional argument, when given
  bool has_arg = false;  // the positional was given ("" is a valid value)
  std::string file;      // --value-file and the like ("" = not given)

  bool is_stdin() const { return has_arg ? arg == "-" : (file.empty() || file == "-"); }
};

// The payload's bytes. ValueTooLarge ("value is N bytes; the limit is M (kMaxValueSizeBytes)")
// when over the limit, InvalidArgument when the file cannot be read. `what` names the payload
// in messages ("value", "expected value", "queue payload").
Result<std::string> read_payload(const PayloadSource& source, PayloadLimit limit, std::string_view what);
// Adds the ways to give one payload: an optional positional `name` (omitted or "-": stdin)
// and `file_flag` PATH, which exclude each other; both fill `source`, which must outlive `cmd`.
void add_payload_options(CLI::App* cmd, PayloadSource& source, const std::string& name, const std::string& file_flag,
                         const std::string& what, PayloadLimit limit);
// Reports a read_payload error: exit 4 for a payload over its limit (as if the cluster had
// refused it), exit 2 for input that could not be read.
int payload_error(const Context& ctx, const Error& error);

// The bytes exactly, no newline. InvalidArgument naming the path when writing fails.
Status write_stdout_bytes(std::string_view bytes);
Status write_file_bytes(const std::string& path, std::string_view bytes);

// RFC 4648 base64 with padding (the standard alphabet), as JSON output carries binary bytes.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

// A key from the command line: the argument's bytes, or, with --key-hex, the bytes it spells
// in hex. A usage message on malformed hex.
Result<std::string> key_from_arg(std::string_view arg, bool is_hex);

}  // namespace aspen::cli
