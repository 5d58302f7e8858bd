// aspen-prometheus-adapter: lets Prometheus scrape a whole Aspen cluster at one address.
//
//   aspen-prometheus-adapter --target $ASPEN_TICKET --listen 127.0.0.1:9477
//
// GET /metrics  every member's metrics page merged into one (each series labelled node_id,
//               the member it came from), plus aspen_adapter_member_up and
//               aspen_adapter_member_scrape_duration_seconds per member.
// GET /healthz  200 "ok" while some member answers a health check, 503 otherwise.
// HTTP comes from cpp-httplib; the cluster is reached over the client protocol (QUIC) with
// the key and token named by ASPEN_IDENTITY and ASPEN_TOKEN_FILE (docs/operations.md).
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <httplib.h>

#include "client/client.h"
#include "client/credentials.h"
#include "core/log.h"
#include "ops/cluster_scrape.h"

namespace {

using namespace aspen;

constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;
// Scrapes served at once; more wait their turn (each already fans out to every member).
constexpr size_t kMaxConcurrentScrapes = 2;
// Prometheus sends its scrape timeout; members get this share of it, the rest is ours.
constexpr double kMemberShareOfScrapeTimeout = 0.8;

bool split_listen(const std::string& listen, std::string& host, int& port) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    return used == listen.size() - colon - 1 && port >= 0 && port <= 65535;
  } catch (const std::exception&) {
    return false;
  }
}

// Counts scrapes in progress; a scrape over the limit waits for a slot.
class ScrapeSlots {
 public:
  void acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return busy_ < kMaxConcurrentScrapes; });
    ++busy_;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      --busy_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t busy_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  // SIGTERM and SIGINT stop the server from a thread of their own: blocked here, before any
  // other thread exists, so that every thread inherits the mask and only sigwait sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  log::set_level("warn");
  CLI::App app{
      "aspen-prometheus-adapter: serve every member's metrics of an Aspen cluster to Prometheus\n"
      "at one HTTP address. Each series carries the label node_id of the member it came from;\n"
      "aspen_adapter_member_up{node_id} says which members answered."};
  app.footer(
      "Endpoints:\n"
      "  /metrics   the merged page (Prometheus text format 0.0.4)\n"
      "  /healthz   200 while some member answers, 503 otherwise\n"
      "Credentials: ASPEN_IDENTITY (key file) and ASPEN_TOKEN_FILE (a token granting at least\n"
      "reads of the cluster's status) name the client the adapter is; see docs/operations.md.\n"
      "Exit codes: 0 stopped by SIGTERM/SIGINT, 2 usage error, 3 could not listen or reach the ticket.\n"
      "Example:\n  aspen-prometheus-adapter --target $ASPEN_TICKET --listen 127.0.0.1:9477");
  std::string ticket;
  std::string listen = "127.0.0.1:9477";
  uint32_t member_timeout_ms = 2000;
  std::string log_level = "warn";
  app.add_option("--target", ticket, "Cluster ticket (default: $ASPEN_TICKET)")->envname("ASPEN_TICKET");
  app.add_option("--listen", listen, "HOST:PORT to serve HTTP on (port 0: any free port, printed at start)")
      ->capture_default_str();
  app.add_option("--member-timeout-ms", member_timeout_ms,
                 "How long each member has to answer a scrape (also capped by Prometheus's scrape timeout)")
      ->capture_default_str()
      ->check(CLI::Range(50u, 60000u));
  app.add_option("--log-level", log_level, "trace | debug | info | warn | error")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return kExitUsage;
  }
  log::set_level(log_level);
  std::string host;
  int port = 0;
  if (!split_listen(listen, host, port)) {
    std::cerr << "error: --listen must be HOST:PORT (e.g. 127.0.0.1:9477), got '" << listen << "'\n";
    return kExitUsage;
  }
  if (ticket.empty()) {
    std::cerr << "error: no cluster ticket: pass --target or set ASPEN_TICKET\n";
    return kExitUsage;
  }
  client::ClientOptions options;
  options.timeout_ms = member_timeout_ms;
  options.attempt_timeout_ms = member_timeout_ms;
  options.connect_timeout_ms = member_timeout_ms;
  if (auto s = client::apply_credentials_from_env(options); !s) {
    std::cerr << "error: " << s.error().to_string() << "\n";
    return kExitUsage;
  }
  auto connected = client::Client::connect(std::string_view(ticket), options);
  if (!connected) {
    std::cerr << "error: " << connected.error().to_string() << "\n";
    return connected.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
  }
  client::Client& cluster = **connected;
  ops::ClusterScraper scraper(cluster);
  ScrapeSlots slots;

  httplib::Server server;
  server.Get("/metrics", [&](const httplib::Request& req, httplib::Response& res) {
    uint32_t timeout_ms = member_timeout_ms;
    if (req.has_header("X-Prometheus-Scrape-Timeout-Seconds")) {
      try {
        const double s = std::stod(req.get_header_value("X-Prometheus-Scrape-Timeout-Seconds"));
        if (s > 0) timeout_ms = std::clamp<uint32_t>(static_cast<uint32_t>(s * 1000 * kMemberShareOfScrapeTimeout), 50,
                                                     member_timeout_ms);
      } catch (const std::exception&) {
        // A malformed header: keep the flag's timeout.
      }
    }
    slots.acquire();
    ops::ScrapeResult r = scraper.scrape(ops::ScrapeOptions{.member_timeout_ms = timeout_ms});
    slots.release();
    for (const auto& m : r.members) {
      if (!m.is_up) ASPEN_LOG_WARN("scrape: node {} did not answer: {}", m.node_id, m.error);
    }
    res.set_content(std::move(r.text), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    for (const auto& n : cluster.known_nodes()) {
      client::cpb::Request req;
      req.mutable_get_health();
      if (auto h = cluster.call(req, client::Target{n.node_id()}, member_timeout_ms)) {
        res.set_content(fmt::format("ok: node {} answers ({})\n", n.node_id(), h->get_health().status()), "text/plain");
        return;
      }
    }
    res.status = 503;
    res.set_content("no member of the cluster answers\n", "text/plain");
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("aspen-prometheus-adapter: /metrics (every member), /healthz\n", "text/plain");
  });

  if (port == 0) {
    port = server.bind_to_any_port(host);
  } else if (!server.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::cerr << "error: cannot listen on " << listen << " (address in use, or not an address of this host)\n";
    return kExitUnavailable;
  }
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
  });
  // Tests and scripts read the bound port from this line.
  std::printf("ASPEN_ADAPTER_READY listen=%s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  const bool is_clean = server.listen_after_bind();
  if (!is_clean) {
    // listen_after_bind returned without stop(): wake the stopper thread ourselves.
    pthread_kill(stopper.native_handle(), SIGTERM);
  }
  stopper.join();
  return is_clean ? 0 : kExitUnavailable;
}
