// aspen-cli credentials: who the CLI is (its Ed25519 identity) and what it may do (its
// capability token), from flags, the environment or the user's config directory.
//
//   identity   --identity FILE   | ASPEN_IDENTITY   | <config dir>/identity.key (created 0600)
//   token      --token-file FILE | ASPEN_TOKEN_FILE | <config dir>/token (if it exists)
//   root key   --root-key-file   |                  | <config dir>/root-<cluster id>.key
// The config directory is $XDG_CONFIG_HOME/aspen, else $HOME/.config/aspen (created 0700).
// Key files hold a hex seed; token files hold the text form (aspentoken1...). Files are
// written 0600 and refused when group or others may read them.
#pragma once

#include <optional>
#include <string>

#include "core/error.h"
#include "transport/identity.h"

namespace aspen::cli {

struct Credentials {
  std::optional<transport::NodeIdentity> identity;  // none: a fresh key for this run only
  std::string identity_path;
  std::string token;       // SignedToken bytes; empty: none
  std::string token_path;  // where the token came from, or where `cluster init` writes it
};

// "" when neither XDG_CONFIG_HOME nor HOME says where it is.
std::string config_dir();
// Creates the config directory (0700) if it is the default place of `path`'s directory.
Status ensure_parent_dir(const std::string& path);

// Loads (or creates) the identity and reads the token, as the table above says.
// `identity_flag` / `token_flag` are the global flags (empty: not given).
Result<Credentials> load_credentials(const std::string& identity_flag, const std::string& token_flag);

// Reads a token file (text form); Unauthorized if others may read it.
Result<std::string> read_token_file(const std::string& path);
// Writes a file only its owner may read, replacing it atomically (temp file + rename).
Status write_private_file(const std::string& path, const std::string& content);

// "90s", "30m", "24h", "7d", or plain seconds. InvalidArgument naming the text.
Result<uint64_t> parse_duration_s(std::string_view text);

}  // namespace aspen::cli
