// The JSON form of a transaction for `aspen-cli kv txn` (see kTxnHelp), parsed into a
// kvpb::Txn. Separate from the command so the syntax is documented and checked in one place.
#pragma once

#include <string>
#include <string_view>

#include "aspen/kv.pb.h"
#include "core/error.h"

namespace aspen::cli {

inline constexpr const char* kTxnHelp = R"(Transaction syntax (JSON, from stdin or --file):
  {
    "compare": [ {"key": K, "target": "value"|"version"|"create"|"mod",
                  "op": "=="|"!="|"<"|">", "value": STRING | "number": N}, ... ],
    "success": [ OP, ... ],     run when every compare holds
    "failure": [ OP, ... ]      run otherwise
  }
  OP is one of
    {"put": {"key": K, "value": V, "lease": ID}}      (lease optional)
    {"delete": {"key": K}}
    {"get": {"key": K}}
    {"range": {"prefix": P, "limit": N}}  or  {"range": {"start": A, "end": B, "limit": N}}
  A missing key has version and revisions 0.
  Bytes that are not text: give any key, value, prefix, start or end in base64 and add
  "<field>_encoding": "base64" beside it, e.g. {"key": "/wA=", "key_encoding": "base64"}
  (the form --json prints them in).

Example: set leader=me only if nobody holds it, otherwise read who does:
  echo '{"compare":[{"key":"leader","target":"version","op":"==","number":0}],
         "success":[{"put":{"key":"leader","value":"me"}}],
         "failure":[{"get":{"key":"leader"}}]}' | aspen-cli kv txn
)";

// InvalidArgument naming the offending field.
Result<kvpb::Txn> parse_txn_json(std::string_view text);

}  // namespace aspen::cli
