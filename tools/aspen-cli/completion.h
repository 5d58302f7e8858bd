// Shell completion for aspen-cli, generated from the CLI11 command tree itself, so that a
// new command or option is completed the moment it exists and the script never drifts.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace aspen::cli {

// Options whose value is a file name carry this type name (->type_name(kPathTypeName)):
// their help shows PATH and completion offers file names after them.
inline constexpr const char* kPathTypeName = "PATH";

// A bash script defining the completion of `aspen-cli` (load it with
// `source <(aspen-cli completion bash)`): subcommands, then the options of the command
// reached, global options included, and file names after PATH options.
std::string bash_completion_script(const CLI::App& root);

}  // namespace aspen::cli
