// aspen-cli: the operator's command line for an Aspen cluster, over the client protocol.
//
//   aspen-cli --ticket <ticket> kv set greeting hello
//   ASPEN_TICKET=<ticket> aspen-cli cluster status --json
//   aspen-cli kv set cert.der --value-file cert.der && aspen-cli kv get cert.der -o copy.der
//
// The ticket and timeout may also come from a profile (settings.h, docs/cli.md).
// Human-readable output by default; --json prints exactly one JSON object on stdout. Exit
// codes are in cli.h (kExitCodesHelp) and in --help.
#include <iostream>

#include "cli.h"
#include "completion.h"
#include "core/log.h"

namespace {

using namespace aspen::cli;

// Options every command takes. A flag only sets its field of ctx.flags when given, so that
// the environment and the profile fill in the rest (settings.h).
void add_global_options(CLI::App& app, Context& ctx) {
  auto* ticket = app.add_option_function<std::string>(
      "--ticket", [&ctx](const std::string& v) { ctx.flags.ticket = v; },
      "Cluster ticket (else $ASPEN_TICKET, else the profile)");
  auto* ticket_file = app.add_option_function<std::string>(
                             "--ticket-file", [&ctx](const std::string& v) { ctx.flags.ticket_file = v; },
                             "Read the cluster ticket from this file (else $ASPEN_CLI_TICKET_FILE)")
                          ->type_name(kPathTypeName);
  ticket->excludes(ticket_file);
  app.add_flag("--json", ctx.is_json, "Print one JSON object instead of text");
  app.add_option_function<std::string>(
         "--identity", [&ctx](const std::string& v) { ctx.flags.identity_path = v; },
         "This client's key file (else $ASPEN_IDENTITY, else ~/.config/aspen/identity.key, created on first use)")
      ->type_name(kPathTypeName);
  app.add_option_function<std::string>(
         "--token-file", [&ctx](const std::string& v) { ctx.flags.token_file = v; },
         "Capability token to present (else $ASPEN_TOKEN_FILE, else ~/.config/aspen/token)")
      ->type_name(kPathTypeName);
  app.add_option_function<uint32_t>(
      "--timeout-ms", [&ctx](const uint32_t& v) { ctx.flags.timeout_ms = v; },
      "Give up after this long, retries included (writes that time out may or may not apply); "
      "else $ASPEN_CLI_TIMEOUT_MS, else the profile, else 10000");
  app.add_option_function<std::string>(
         "--config", [&ctx](const std::string& v) { ctx.flags.config_path = v; },
         "Profile file (else $ASPEN_CLI_CONFIG, else $XDG_CONFIG_HOME/aspen/cli.toml or ~/.config/aspen/cli.toml)")
      ->type_name(kPathTypeName);
}

}  // namespace

int main(int argc, char** argv) {
  // The client library logs transport details at debug level; an operator wants results.
  aspen::log::set_level("warn");

  CLI::App app{
      "aspen-cli: operate an Aspen cluster (a replicated key-value store) and read or write its\n"
      "data. Every command needs the cluster's ticket, the string printed by aspen-node and by\n"
      "'aspen-cli cluster ticket'."};
  app.footer(std::string(kExitCodesHelp) +
             "\nExamples:\n"
             "  export ASPEN_TICKET=aspen...   # or ticket_file in ~/.config/aspen/cli.toml\n"
             "  aspen-cli cluster status\n"
             "  aspen-cli kv set greeting hello && aspen-cli kv get greeting\n"
             "  aspen-cli kv set cert < cert.der && aspen-cli kv get cert --raw > copy.der\n"
             "  aspen-cli lock acquire jobs/reindex --holder worker-7 --ttl-s 30\n"
             "Run 'aspen-cli <command> --help' for each command's details.");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command

  Context ctx;
  add_global_options(app, ctx);

  Action action;
  add_cluster_commands(app, ctx, action);
  add_kv_commands(app, ctx, action);
  add_lease_commands(app, ctx, action);
  add_node_commands(app, ctx, action);
  add_coord_commands(app, ctx, action);
  add_auth_commands(app, ctx, action);
  add_dir_commands(app, ctx, action);
  add_sql_commands(app, ctx, action);
  add_blob_commands(app, ctx, action);
  add_dns_commands(app, ctx, action);
  add_config_commands(app, ctx, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);  // prints the message
    return kExitUsage;
  }
  if (!action) return usage_error(ctx, "no command given");
  try {
    return action();
  } catch (const std::exception& e) {
    // Nothing below should throw (library errors are Results); this is the last resort.
    std::cerr << "internal error: " << e.what() << "\n";
    return kExitFailed;
  }
}
