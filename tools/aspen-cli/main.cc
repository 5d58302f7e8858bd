// aspen-cli: the operator's command line for an Aspen cluster, over the client protocol.
//
//   aspen-cli --ticket <ticket> kv set greeting hello
//   ASPEN_TICKET=<ticket> aspen-cli cluster status --json
//
// Human-readable output by default; --json prints exactly one JSON object on stdout. Exit
// codes are in cli.h (kExitCodesHelp) and in --help.
#include <iostream>

#include "cli.h"
#include "core/log.h"

int main(int argc, char** argv) {
  using namespace aspen::cli;
  // The client library logs transport details at debug level; an operator wants results.
  aspen::log::set_level("warn");

  CLI::App app{
      "aspen-cli: operate an Aspen cluster (a replicated key-value store) and read or write its\n"
      "data. Every command needs the cluster's ticket, the string printed by aspen-node and by\n"
      "'aspen-cli cluster ticket'."};
  app.footer(std::string(kExitCodesHelp) +
             "\nExamples:\n"
             "  export ASPEN_TICKET=aspen...\n"
             "  aspen-cli cluster status\n"
             "  aspen-cli kv set greeting hello && aspen-cli kv get greeting\n"
             "  aspen-cli lock acquire jobs/reindex --holder worker-7 --ttl-s 30\n"
             "Run 'aspen-cli <command> --help' for each command's details.");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command

  Context ctx;
  app.add_option("--ticket", ctx.ticket, "Cluster ticket (default: $ASPEN_TICKET)")->envname("ASPEN_TICKET");
  app.add_flag("--json", ctx.is_json, "Print one JSON object instead of text");
  app.add_option("--timeout-ms", ctx.timeout_ms,
                 "Give up after this long, retries included (writes that time out may or may not apply)")
      ->capture_default_str();

  Action action;
  add_cluster_commands(app, ctx, action);
  add_kv_commands(app, ctx, action);
  add_lease_commands(app, ctx, action);
  add_node_commands(app, ctx, action);
  add_coord_commands(app, ctx, action);

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
