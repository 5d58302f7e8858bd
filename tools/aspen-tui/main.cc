// aspen-tui: a terminal UI for watching and operating an Aspen cluster.
//
//   aspen-tui [--ticket T | ASPEN_TICKET] [--refresh MS] [--debug] [--monochrome]
//
// Views (Tab / Shift+Tab): Cluster (nodes with markers, details, init / add learner / change
// voters), Metrics (sparklines of throughput and latency, Raft indices, round trips),
// Key-Value (browse by prefix, read, write), Help. q quits, ? opens help.
// The cluster is polled on a thread of its own and requests run on a worker thread: the
// screen never waits for the network, and a member that does not answer shows as offline.
#include <locale.h>
#include <ncurses.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/basic_file_sink.h>

#include "client/client.h"
#include "client/credentials.h"
#include "core/log.h"
#include "ops/cluster_poll.h"
#include "tui.h"

namespace {

using namespace aspen;

constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;
// How often the loop looks for keys and new data; the screen is redrawn only on a change.
constexpr int kInputPollMs = 50;

void init_colors(bool is_monochrome) {
  if (is_monochrome || !has_colors()) return;
  start_color();
  use_default_colors();
  init_pair(1, COLOR_GREEN, -1);   // leader
  init_pair(2, COLOR_RED, -1);     // offline
  init_pair(3, COLOR_CYAN, -1);    // titles
  init_pair(4, COLOR_YELLOW, -1);  // learner
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aspen-tui: watch and operate an Aspen cluster in the terminal."};
  app.footer(
      "Keys: Tab/Shift+Tab views, ? help, q quit (the Help view lists every key).\n"
      "Credentials: ASPEN_IDENTITY (key file) and ASPEN_TOKEN_FILE (token) as for aspen-cli.\n"
      "Colours follow the terminal; --monochrome (or NO_COLOR set) uses attributes only.\n"
      "Exit codes: 0 quit, 2 usage error, 3 the ticket could not be used.");
  std::string ticket;
  tui::Options options;
  app.add_option("--ticket", ticket, "Cluster ticket (default: $ASPEN_TICKET)")->envname("ASPEN_TICKET");
  app.add_option("--refresh", options.refresh_ms, "Poll the cluster every MS milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(ops::kMinRefreshMs, 60000u));
  app.add_flag("--debug", options.is_debug, "Log the client library's debug lines to aspen-tui.log");
  app.add_flag("--monochrome", options.is_monochrome, "No colours, attributes only");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return kExitUsage;
  }
  if (ticket.empty()) {
    std::cerr << "error: no cluster ticket: pass --ticket or set ASPEN_TICKET\n";
    return kExitUsage;
  }
  if (const char* no_color = std::getenv("NO_COLOR"); no_color != nullptr && *no_color != '\0') {
    options.is_monochrome = true;
  }
  // Log lines would tear the screen: off, or to a file with --debug.
  if (options.is_debug) {
    try {
      spdlog::set_default_logger(spdlog::basic_logger_mt("aspen-tui", "aspen-tui.log"));
    } catch (const spdlog::spdlog_ex& e) {
      std::cerr << "error: --debug: cannot open aspen-tui.log: " << e.what() << "\n";
      return kExitUsage;
    }
    log::set_level("debug");
  } else {
    log::set_level("off");
  }
  client::ClientOptions copts;
  // Short: an operator's request fails fast rather than leaving a form waiting.
  copts.timeout_ms = 5000;
  copts.connect_timeout_ms = 1000;
  copts.attempt_timeout_ms = 1000;
  if (auto s = client::apply_credentials_from_env(copts); !s) {
    std::cerr << "error: " << s.error().to_string() << "\n";
    return kExitUsage;
  }
  auto connected = client::Client::connect(std::string_view(ticket), copts);
  if (!connected) {
    std::cerr << "error: " << connected.error().to_string() << "\n";
    return connected.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
  }
  ops::ClusterPoller poller(**connected, ops::PollerOptions{.refresh_ms = options.refresh_ms});
  poller.start();

  setlocale(LC_ALL, "");
  initscr();
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  set_escdelay(25);
  curs_set(0);
  timeout(kInputPollMs);
  init_colors(options.is_monochrome);
  {
    tui::App ui(**connected, poller, options);
    uint64_t drawn_version = ~uint64_t{0};
    auto last_draw = std::chrono::steady_clock::now();
    bool is_dirty = true;
    while (true) {
      const int key = getch();
      if (key != ERR) {
        if (!ui.on_key(key)) break;
        is_dirty = true;
      }
      if (ui.drain()) is_dirty = true;
      if (poller.version() != drawn_version) is_dirty = true;
      // "last contact" ages while nothing else changes: redraw at least every second.
      if (std::chrono::steady_clock::now() - last_draw > std::chrono::seconds(1)) is_dirty = true;
      if (is_dirty) {
        drawn_version = poller.version();
        ui.draw();
        last_draw = std::chrono::steady_clock::now();
        is_dirty = false;
      }
    }
  }
  endwin();
  poller.stop();
  return 0;
}
