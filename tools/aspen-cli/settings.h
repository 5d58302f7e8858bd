// aspen-cli settings: which cluster to talk to (the ticket) and how long to wait, from the
// command line, the environment or a profile file, so that a user need not export variables
// in every shell.
//
// Each setting is taken from the first of these that gives it:
//   1. a flag            --ticket TICKET | --ticket-file PATH      --timeout-ms MS
//   2. the environment   ASPEN_TICKET | ASPEN_CLI_TICKET_FILE      ASPEN_CLI_TIMEOUT_MS
//   3. the profile       ticket = "..." | ticket_file = "..."      timeout_ms = N
//   4. the default       none (commands that need a cluster fail)  10000
// The ticket and a ticket file are two forms of one setting: a layer that gives both is an
// error. (ASPEN_TICKET_FILE is not read: it is where aspen-node writes its ticket.)
//
// The profile is a TOML file: --config PATH, else $ASPEN_CLI_CONFIG, else
// $XDG_CONFIG_HOME/aspen/cli.toml, else $HOME/.config/aspen/cli.toml. A profile named
// explicitly must exist; the default one may be absent. In the profile, a relative
// ticket_file is relative to the profile's directory, and "~/" is the home directory.
// `aspen-cli config show` prints the effective settings and where each came from.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace aspen::cli {

inline constexpr uint32_t kDefaultTimeoutMs = 10000;

// The global flags as given on the command line (nullopt: not given).
struct GlobalFlags {
  std::optional<std::string> ticket;
  std::optional<std::string> ticket_file;
  std::optional<uint32_t> timeout_ms;
  std::optional<std::string> config_path;
  std::optional<std::string> identity_path;  // credentials.h
  std::optional<std::string> token_file;
};

enum class SettingSource { kNone, kFlag, kEnvironment, kProfile, kDefault };
// "none", "flag", "environment", "profile", "default": stable, for `config show --json`.
std::string_view setting_source_name(SettingSource source);

// Where one setting came from: the layer, and the flag, variable or key within it.
struct SettingOrigin {
  SettingSource source = SettingSource::kNone;
  std::string name;  // "--ticket", "ASPEN_TICKET", "ticket_file", "" for a default
};

struct CliSettings {
  std::string profile_path;    // "" when there is no place to look (no HOME)
  std::string profile_origin;  // "--config", "ASPEN_CLI_CONFIG", "XDG_CONFIG_HOME" or "HOME"
  bool is_profile_found = false;

  std::string ticket;       // "" when no layer gives one
  std::string ticket_file;  // the file the ticket was read from, when it came from a file
  SettingOrigin ticket_origin;
  uint32_t timeout_ms = kDefaultTimeoutMs;
  SettingOrigin timeout_origin{SettingSource::kDefault, ""};
};

// Returns a variable's value, or nullptr when unset (std::getenv in the real binary).
using EnvLookup = std::function<const char*(const char*)>;

// Resolves every setting, reading the profile and a ticket file if one is named. An unset
// or empty environment variable counts as absent. InvalidArgument, naming the flag, variable
// or file and line, for a malformed profile, an unknown profile key, a missing profile named
// explicitly, an unreadable or empty ticket file, a non-positive timeout, or a layer that
// gives both a ticket and a ticket file.
Result<CliSettings> resolve_settings(const GlobalFlags& flags, const EnvLookup& env);

}  // namespace aspen::cli
