// aspen-cli internals shared by the command groups: the global options, exit codes,
// connecting, and printing (human text by default, one JSON object with --json).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "aspen/kv.pb.h"
#include "client/client.h"
#include "core/error.h"
#include "settings.h"

namespace aspen::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the operation ran and said no (CAS false, key not found)
inline constexpr int kExitUsage = 2;        // bad command line, missing or malformed ticket, bad profile
inline constexpr int kExitUnavailable = 3;  // no leader, node unreachable, timeout
inline constexpr int kExitInvalid = 4;      // an argument or a limit refused, here or by the cluster
inline constexpr int kExitUnauthorized = 5; // no token, a bad one, or one without the needed capability

inline constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the operation failed (CAS/transaction condition false, key or lease not found, ...)\n"
    "  2  usage error (bad arguments, missing or malformed ticket, bad profile, unreadable file)\n"
    "  3  cluster unavailable: no leader, node unreachable, or timeout (a write that timed out\n"
    "     may or may not have been applied)\n"
    "  4  invalid argument or limit (key/value too large, ...), refused before sending or by\n"
    "     the cluster\n"
    "  5  not authorized: no capability token, an expired/revoked/foreign one, or one that\n"
    "     lacks the capability (the message names it); nothing was changed\n";

struct Context {
  GlobalFlags flags;  // resolved against the environment and the profile when a command runs
  bool is_json = false;
};

// What the chosen command will do once parsing succeeded; returns the exit code.
using Action = std::function<int()>;

void add_cluster_commands(CLI::App& app, Context& ctx, Action& action);
// cluster discover: gossip followed with only a ticket (cmd_cluster_discover.cc).
void add_cluster_discover_command(CLI::App& cluster, Context& ctx, Action& action);
void add_kv_commands(CLI::App& app, Context& ctx, Action& action);
void add_lease_commands(CLI::App& app, Context& ctx, Action& action);
void add_node_commands(CLI::App& app, Context& ctx, Action& action);
// counter, lock, election, queue, ...: the src/coord primitives (cmd_coord*.cc).
void add_coord_commands(CLI::App& app, Context& ctx, Action& action);
// config show, completion bash (cmd_config.cc). Add them last: completion walks the tree.
void add_config_commands(CLI::App& app, Context& ctx, Action& action);
// dir ls|mkdir|mv|rm: the directory layer (cmd_dir.cc).
void add_dir_commands(CLI::App& app, Context& ctx, Action& action);
// sql query|shell: SQL over the store (cmd_sql.cc).
void add_sql_commands(CLI::App& app, Context& ctx, Action& action);
// auth whoami|token ..., identity show (cmd_auth.cc).
void add_auth_commands(CLI::App& app, Context& ctx, Action& action);
// blob add|get|status|list|tag|gc: content-addressed blobs (cmd_blob.cc).
void add_blob_commands(CLI::App& app, Context& ctx, Action& action);
// dns set|delete|list|zone ...: the records aspen-dns serves (cmd_dns.cc).
void add_dns_commands(CLI::App& app, Context& ctx, Action& action);

// The settings in effect (settings.h), from this process's environment.
Result<CliSettings> current_settings(const Context& ctx);

// Connects with the ticket and timeout in effect (flags, environment, profile), then runs fn.
// Missing or malformed ticket, or a bad profile: usage error.
int with_client(const Context& ctx, const std::function<int(client::Client&)>& fn);
struct Credentials;
// The same, also handing over the credentials in use (cluster init writes new ones).
int with_client_and_credentials(const Context& ctx, const std::function<int(client::Client&, Credentials&)>& fn);

int exit_code_for(const Error& error);
// Reports the error (stderr, or a JSON object on stdout with --json) and returns its exit code.
int fail(const Context& ctx, const Error& error);
// A usage error found after parsing (e.g. a malformed public key).
int usage_error(const Context& ctx, const std::string& message);

// Prints {"ok": true, ...fields}.
void print_json_ok(nlohmann::json fields);

bool is_valid_utf8(std::string_view bytes);
// Bytes for a human: the text if valid UTF-8, else "0x" + hex; `is_hex` says which. Not for
// scripts: a text that starts with "0x" looks the same (they use --raw, -o or --json).
std::string display_bytes(std::string_view bytes, bool* is_hex = nullptr);
// Sets obj[name] to the text, or to base64 when the bytes are not valid UTF-8, and
// obj[name + "_encoding"] to "utf8" or "base64".
void set_bytes(nlohmann::json& obj, const std::string& name, std::string_view bytes);
nlohmann::json kv_json(const kvpb::KeyValue& kv);
nlohmann::json lease_json(const kvpb::Lease& lease);

}  // namespace aspen::cli
