// aspen-dns: an authoritative DNS server (UDP and TCP, RFC 1035) for records kept in an
// Aspen cluster's KV store (docs/dns.md). Stateless: everything it serves is read through
// the client library; any number of them can serve the same zones.
//
//   aspen-dns --listen 127.0.0.1:5353 --ticket aspen... [--zone example.test.]...
//
// Threads: --threads workers run the asio loop; each answers the query it received (the
// store read blocks that worker only), so at most --threads queries are in flight and the
// rest wait in the kernel's socket buffers. One more thread keeps a watch on the dns/
// prefix and empties the answer cache on every change (unless --no-watch).
#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/read.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/credentials.h"
#include "core/log.h"
#include "dns/records.h"
#include "dns/server.h"

namespace {

using namespace aspen;
using asio::ip::tcp;
using asio::ip::udp;

inline constexpr size_t kMaxTcpConnections = 256;
inline constexpr uint32_t kTcpIdleTimeoutMs = 10000;  // RFC 7766 6.2.3 suggests seconds

uint64_t now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

class UdpService {
 public:
  UdpService(asio::io_context& io, udp::endpoint at, dns::Server& server) : socket_(io, at), server_(server) {}
  void start() { receive(); }
  uint16_t port() const { return socket_.local_endpoint().port(); }
  void close() {
    asio::error_code ec;
    socket_.close(ec);
  }

 private:
  void receive() {
    auto buf = std::make_shared<std::array<char, dns::kMaxMessageBytes>>();
    auto from = std::make_shared<udp::endpoint>();
    socket_.async_receive_from(asio::buffer(*buf), *from, [this, buf, from](asio::error_code ec, size_t n) {
      if (ec == asio::error::operation_aborted) return;
      // The next datagram may be taken by another worker while this one is answered. Only
      // the worker holding the completion touches the asio socket; the answer goes out with
      // sendto(2) on the descriptor, which any thread may call.
      receive();
      if (ec) return;
      auto response = server_.handle(std::string_view(buf->data(), n), false, now_ms());
      if (!response) return;
      // A full send buffer drops the answer, as the network could; the client asks again.
      (void)::sendto(socket_.native_handle(), response->data(), response->size(), MSG_DONTWAIT, from->data(), from->size());
    });
  }

  udp::socket socket_;
  dns::Server& server_;
};

// One TCP connection: length-prefixed queries answered in order (RFC 1035 4.2.2), closed
// after kTcpIdleTimeoutMs without a query. Its handlers run on its strand.
class TcpConnection : public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(tcp::socket socket, dns::Server& server, std::atomic<size_t>& open)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), server_(server), open_(open) {}
  ~TcpConnection() { open_.fetch_sub(1); }
  void start() { read_length(); }

 private:
  void arm_timer() {
    timer_.expires_after(std::chrono::milliseconds(kTcpIdleTimeoutMs));
    timer_.async_wait([self = shared_from_this()](asio::error_code ec) {
      if (!ec) {
        asio::error_code ignored;
        self->socket_.close(ignored);
      }
    });
  }
  void read_length() {
    arm_timer();
    asio::async_read(socket_, asio::buffer(length_), [self = shared_from_this()](asio::error_code ec, size_t) {
      if (ec) return self->stop();
      const size_t n = (size_t{self->length_[0]} << 8) | self->length_[1];
      if (n == 0) return self->stop();
      self->query_.resize(n);
      asio::async_read(self->socket_, asio::buffer(self->query_), [self](asio::error_code ec2, size_t) {
        if (ec2) return self->stop();
        self->answer();
      });
    });
  }
  void answer() {
    auto response = server_.handle(query_, true, now_ms());
    if (!response) return read_length();
    out_.clear();
    out_.push_back(static_cast<char>(response->size() >> 8));
    out_.push_back(static_cast<char>(response->size() & 0xff));
    out_ += *response;
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](asio::error_code ec, size_t) {
      if (ec) return self->stop();
      self->read_length();
    });
  }
  void stop() {
    timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  dns::Server& server_;
  std::atomic<size_t>& open_;
  std::array<uint8_t, 2> length_{};
  std::string query_;
  std::string out_;
};

class TcpService {
 public:
  TcpService(asio::io_context& io, tcp::endpoint at, dns::Server& server)
      : io_(io), acceptor_(io, at, /*reuse_address=*/true), server_(server) {}
  void start() { accept(); }
  void close() {
    asio::error_code ec;
    acceptor_.close(ec);
  }

 private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](asio::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (open_.fetch_add(1) >= kMaxTcpConnections) {
          open_.fetch_sub(1);  // over kMaxTcpConnections: closed at once
        } else {
          std::make_shared<TcpConnection>(std::move(socket), server_, open_)->start();
        }
      }
      accept();
    });
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  dns::Server& server_;
  std::atomic<size_t> open_{0};
};

// Empties the cache whenever something under dns/ changes; reopens the watch after errors.
class Invalidator {
 public:
  Invalidator(client::Client& c, dns::Server& server) : client_(c), server_(server) {
    thread_ = std::thread([this] { run(); });
  }
  ~Invalidator() {
    {
      std::lock_guard lock(mu_);
      is_stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  bool stopping() {
    std::lock_guard lock(mu_);
    return is_stopping_;
  }
  void run() {
    while (!stopping()) {
      client::WatchOptions o;
      o.key = "dns/";
      o.is_prefix = true;
      auto w = client_.watch(o);
      if (w) {
        server_.invalidate();  // changes before the watch opened are not in the cache after this
        while (!stopping()) {
          auto b = (*w)->next(500);
          if (b) {
            if (!b->is_progress()) server_.invalidate();
            continue;
          }
          if (b.error().code() == ErrorCode::kTimeout) continue;
          ASPEN_LOG_WARN("aspen-dns: watch on dns/ ended: {}; answers are cached for at most the cache TTL meanwhile",
                         b.error().to_string());
          break;
        }
      } else {
        ASPEN_LOG_WARN("aspen-dns: cannot watch dns/: {}", w.error().to_string());
      }
      server_.invalidate();
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return is_stopping_; });
    }
  }

  client::Client& client_;
  dns::Server& server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool is_stopping_ = false;  // [mu_]
  std::thread thread_;
};

std::string read_ticket_file(const std::string& path) {
  std::ifstream in(path);
  std::string t;
  in >> t;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "aspen-dns: answer DNS queries (UDP and TCP) for the zones and records kept in an Aspen cluster.\n"
      "Manage them with 'aspen-cli dns'. Names outside the zones are refused; there is no recursion."};
  std::string listen = "127.0.0.1:5353";
  std::string ticket;
  std::string ticket_file;
  std::string identity_path;
  std::string token_path;
  std::vector<std::string> zone_texts;
  uint64_t cache_ttl_ms = dns::kDefaultCacheTtlMs;
  unsigned threads = 4;
  bool is_watch_off = false;
  std::string log_level = "warn";
  app.add_option("--listen", listen, "HOST:PORT for both UDP and TCP (port 0: any free port, printed)")
      ->capture_default_str();
  app.add_option("--ticket", ticket, "Cluster ticket (else --ticket-file, else $ASPEN_TICKET)");
  app.add_option("--ticket-file", ticket_file, "Read the cluster ticket from this file");
  app.add_option("--identity", identity_path, "This client's key file (else $ASPEN_IDENTITY)");
  app.add_option("--token-file", token_path, "Capability token with read access to dns/ (else $ASPEN_TOKEN_FILE)");
  app.add_option("--zone", zone_texts, "Serve only these zones (repeatable); default: every zone in the store");
  app.add_option("--cache-ttl-ms", cache_ttl_ms,
                 "Keep answers this long at most (0: read the store for every query). A change is served\n"
                 "within this bound, usually at once: a watch on dns/ empties the cache on every change")
      ->capture_default_str();
  app.add_option("--threads", threads, "Worker threads (queries answered at once)")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_flag("--no-watch", is_watch_off, "Do not watch dns/; rely on --cache-ttl-ms alone");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  log::set_level(log_level);

  if (!identity_path.empty()) ::setenv("ASPEN_IDENTITY", identity_path.c_str(), 1);
  if (!token_path.empty()) ::setenv("ASPEN_TOKEN_FILE", token_path.c_str(), 1);
  if (ticket.empty() && !ticket_file.empty()) ticket = read_ticket_file(ticket_file);
  if (ticket.empty()) {
    if (const char* t = std::getenv("ASPEN_TICKET"); t != nullptr) ticket = t;
  }
  if (ticket.empty()) {
    std::cerr << "aspen-dns: no cluster ticket: pass --ticket, --ticket-file or set ASPEN_TICKET\n";
    return 2;
  }
  dns::ServerOptions options;
  options.cache_ttl_ms = cache_ttl_ms;
  for (const auto& z : zone_texts) {
    auto n = dns::parse_name(z);
    if (!n || n->is_root()) {
      std::cerr << "aspen-dns: --zone " << z << ": " << (n ? "the root cannot be a zone" : n.error().message()) << "\n";
      return 2;
    }
    options.zones.push_back(*n);
  }
  const size_t colon = listen.rfind(':');
  asio::error_code ec;
  asio::ip::address host;
  uint16_t port = 0;
  if (colon != std::string::npos) {
    std::string h = listen.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    host = asio::ip::make_address(h, ec);
    try {
      const unsigned long p = std::stoul(listen.substr(colon + 1));
      if (p > 65535) throw std::out_of_range("port");
      port = static_cast<uint16_t>(p);
    } catch (const std::exception&) {
      ec = asio::error::invalid_argument;
    }
  }
  if (colon == std::string::npos || ec) {
    std::cerr << "aspen-dns: --listen " << listen << ": write HOST:PORT, e.g. 127.0.0.1:5353 or [::1]:5353\n";
    return 2;
  }

  client::ClientOptions copts;
  if (auto s = client::apply_credentials_from_env(copts); !s) {
    std::cerr << "aspen-dns: " << s.error().message() << "\n";
    return 2;
  }
  auto c = client::Client::connect(ticket, copts);
  if (!c) {
    std::cerr << "aspen-dns: " << c.error().message() << "\n";
    return 2;
  }
  dns::Server server(**c, options);

  asio::io_context io;
  std::unique_ptr<UdpService> udp_service;
  std::unique_ptr<TcpService> tcp_service;
  // Port 0: the UDP socket picks a port and TCP takes the same one (retried if it is taken).
  for (int attempt = 0; attempt < 20 && !tcp_service; ++attempt) {
    try {
      udp_service = std::make_unique<UdpService>(io, udp::endpoint(host, port), server);
      tcp_service = std::make_unique<TcpService>(io, tcp::endpoint(host, udp_service->port()), server);
    } catch (const std::system_error& e) {
      udp_service.reset();
      if (port != 0 || attempt == 19) {
        std::cerr << "aspen-dns: cannot listen on " << listen << ": " << e.what() << "\n";
        return 1;
      }
    }
  }
  udp_service->start();
  tcp_service->start();
  std::unique_ptr<Invalidator> invalidator;
  if (!is_watch_off) invalidator = std::make_unique<Invalidator>(**c, server);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](asio::error_code, int) {
    udp_service->close();
    tcp_service->close();
    io.stop();
  });
  std::cout << "ASPEN_DNS_READY listen=" << (host.is_v6() ? "[" + host.to_string() + "]" : host.to_string()) << ":"
            << udp_service->port() << std::endl;
  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : workers) t.join();
  invalidator.reset();
  const auto st = server.stats();
  ASPEN_LOG_INFO("aspen-dns: {} queries, {} from the cache, {} store errors, {} malformed", st.queries, st.cache_hits,
                 st.store_errors, st.malformed);
  return 0;
}
