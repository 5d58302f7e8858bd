// Who a client program is to a cluster: its key file and capability token file, the same
// for every Aspen tool (aspen-cli, aspen-bench, ...). The CLI adds its defaults in
// ~/.config/aspen on top (tools/aspen-cli/credentials.h).
//
//   client::ClientOptions o;
//   if (auto s = client::apply_credentials_from_env(o); !s) ...  // ASPEN_IDENTITY, ASPEN_TOKEN_FILE
#pragma once

#include <string>

#include "client/client.h"
#include "core/error.h"

namespace aspen::client {

// A token file: the text form (aspentoken1...), readable by its owner only (Unauthorized
// otherwise, naming the fix). Returns the token bytes.
Result<std::string> read_token_file(const std::string& path);

// Sets options.identity from the key file named by ASPEN_IDENTITY and options.token from
// the file named by ASPEN_TOKEN_FILE, where they are set. Errors name the variable and file.
Status apply_credentials_from_env(ClientOptions& options);

}  // namespace aspen::client
