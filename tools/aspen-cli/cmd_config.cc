// aspen-cli config show | completion bash: the CLI's own settings and shell integration.
// Neither needs a cluster.
#include <fmt/format.h>

#include <iostream>

#include "cli.h"
#include "completion.h"
#include "settings.h"

namespace aspen::cli {

namespace {

// "(from ASPEN_TICKET)", "(from ticket_file in the profile)", "(default)".
std::string origin_text(const SettingOrigin& origin) {
  switch (origin.source) {
    case SettingSource::kNone:
      return "(not set)";
    case SettingSource::kDefault:
      return "(default)";
    case SettingSource::kProfile:
      return fmt::format("(from {} in the profile)", origin.name);
    case SettingSource::kFlag:
    case SettingSource::kEnvironment:
      break;
  }
  return fmt::format("(from {})", origin.name);
}

nlohmann::json origin_json(const SettingOrigin& origin) {
  return {{"source", std::string(setting_source_name(origin.source))}, {"origin", origin.name}};
}

nlohmann::json settings_json(const CliSettings& s) {
  nlohmann::json profile = {{"path", s.profile_path}, {"origin", s.profile_origin}, {"found", s.is_profile_found}};
  nlohmann::json ticket = origin_json(s.ticket_origin);
  ticket["value"] = s.ticket.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.ticket);
  if (!s.ticket_file.empty()) ticket["file"] = s.ticket_file;
  nlohmann::json timeout = origin_json(s.timeout_origin);
  timeout["value"] = s.timeout_ms;
  return {{"profile", std::move(profile)}, {"ticket", std::move(ticket)}, {"timeout_ms", std::move(timeout)}};
}

void print_settings(const CliSettings& s) {
  if (s.profile_path.empty()) {
    std::cout << "profile     (none: HOME is not set)\n";
  } else {
    std::cout << fmt::format("profile     {} (from {}; {})\n", s.profile_path, s.profile_origin,
                             s.is_profile_found ? "found" : "not found");
  }
  if (s.ticket.empty()) {
    std::cout << "ticket      (none: commands that talk to a cluster fail)\n";
  } else {
    std::cout << fmt::format("ticket      {} {}\n", s.ticket, origin_text(s.ticket_origin));
    if (!s.ticket_file.empty()) std::cout << fmt::format("            read from {}\n", s.ticket_file);
  }
  std::cout << fmt::format("timeout_ms  {} {}\n", s.timeout_ms, origin_text(s.timeout_origin));
}

int run_config_show(const Context& ctx) {
  auto settings = current_settings(ctx);
  if (!settings) return usage_error(ctx, settings.error().message());
  if (ctx.is_json) {
    print_json_ok(settings_json(*settings));
  } else {
    print_settings(*settings);
  }
  return kExitOk;
}

}  // namespace

void add_config_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* config = app.add_subcommand("config", "The CLI's own settings: ticket and timeout, and where each comes from");
  config->require_subcommand(1);
  auto* show = config->add_subcommand("show", "Print the effective settings and where each came from");
  show->footer(
      "Each setting comes from the first of: a flag (--ticket / --ticket-file, --timeout-ms), the\n"
      "environment (ASPEN_TICKET / ASPEN_CLI_TICKET_FILE, ASPEN_CLI_TIMEOUT_MS), the profile, the\n"
      "default. The profile is --config PATH, else $ASPEN_CLI_CONFIG, else\n"
      "$XDG_CONFIG_HOME/aspen/cli.toml, else ~/.config/aspen/cli.toml; it is TOML with the keys\n"
      "ticket or ticket_file (relative to the profile's directory), and timeout_ms:\n"
      "  ticket_file = \"~/aspen/prod.ticket\"\n"
      "  timeout_ms = 5000\n"
      "Example:\n  aspen-cli config show --json");
  show->callback([&ctx, &action] { action = [&ctx] { return run_config_show(ctx); }; });

  auto* completion = app.add_subcommand("completion", "Print a shell completion script");
  completion->require_subcommand(1);
  auto* bash = completion->add_subcommand("bash", "Print the bash completion script (generated from the commands)");
  bash->footer(
      "Load it in this shell:\n  source <(aspen-cli completion bash)\n"
      "or for every new shell:\n"
      "  mkdir -p ~/.local/share/bash-completion/completions\n"
      "  aspen-cli completion bash > ~/.local/share/bash-completion/completions/aspen-cli");
  const CLI::App* root = &app;
  bash->callback([&action, root] {
    action = [root] {
      std::cout << bash_completion_script(*root);
      return kExitOk;
    };
  });
}

}  // namespace aspen::cli
