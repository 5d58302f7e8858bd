// Transport numbers on loopback: QUIC handshake time, 100-byte request/response round trip
// on an open connection (p50/p99 over 10k samples), bulk throughput on one stream, each next
// to plain TCP measured the same way in the same process.
//
//   build/aspen_bench --benchmark_filter='Transport' --benchmark_counters_tabular=true
//
// QUIC round trips are measured two ways:
// - Async (what the node does): the server is a LoopProtocolHandler echoing on its loop
//   thread, and the client sends each request from the callback that received the previous
//   reply, on its loop thread. No thread handoff on either side.
// - Blocking: Stream::send/recv from a client thread against a threaded echo handler, so
//   each round trip also crosses from the caller's thread to the loop and back on both
//   sides.
// Bulk: a blocking sender (backpressure) into a LoopProtocolHandler sink.
// The TCP baseline is a blocking echo server thread with TCP_NODELAY. A third bulk figure,
// TLS 1.3 (GnuTLS, AES-128-GCM as QUIC negotiates, PSK so no certificates are needed) over
// the same TCP, separates what encryption costs from what the QUIC stack costs.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/assert.h"
#include "transport/endpoint.h"

namespace {

using namespace aspen::transport;
using Clock = std::chrono::steady_clock;

constexpr int kRttSamples = 10000;
constexpr size_t kRttMessageBytes = 100;
constexpr size_t kBulkBytes = size_t{200} << 20;
constexpr size_t kBulkChunkBytes = size_t{1} << 20;

void report_percentiles(benchmark::State& state, std::vector<double>& samples_us) {
  std::sort(samples_us.begin(), samples_us.end());
  state.counters["p50_us"] = samples_us[samples_us.size() / 2];
  state.counters["p99_us"] = samples_us[samples_us.size() * 99 / 100];
  state.counters["max_us"] = samples_us.back();
}

// ---------------------------------------------------------------------------------- QUIC

class Echo : public ProtocolHandler {
 public:
  void on_connection(Connection conn) override {
    std::vector<std::thread> threads;
    while (auto s = conn.accept_bi(60000)) {
      threads.emplace_back([s = *s]() mutable {
        while (true) {
          auto m = s.recv(60000);
          if (!m || !*m) break;
          // Sink mode: a message starting with 'S' is counted, not echoed; "E" ends the run.
          if ((**m)[0] == 'S') continue;
          if (!s.send(**m)) break;
        }
        s.finish();
      });
    }
    for (auto& t : threads) t.join();
  }
};

// The same on the loop thread: echoes, or (messages starting with 'S') swallows and, when
// the peer finishes, answers "k" and finishes.
class LoopEcho : public LoopProtocolHandler {
 public:
  void on_message(Stream& stream, std::string message) override {
    if (message[0] == 'S') return;
    ASPEN_ASSERT(stream.send_async(message).has_value());
  }
  void on_stream_closed(Stream& stream, std::optional<aspen::Error> error) override {
    if (error) return;
    (void)stream.send_async("k");
    stream.finish();
  }
};

struct QuicPair {
  NodeIdentity server_id = NodeIdentity::generate();
  NodeIdentity client_id = NodeIdentity::generate();
  std::unique_ptr<Endpoint> server;
  std::unique_ptr<Endpoint> client = std::move(*Endpoint::bind(client_id, {}));
  explicit QuicPair(const EndpointConfig& server_config = {})
      : server(std::move(*Endpoint::bind(server_id, server_config))) {
    ASPEN_ASSERT(server->register_handler("bench", std::make_shared<Echo>()).has_value());
    ASPEN_ASSERT(server->register_handler("bench-loop", std::make_shared<LoopEcho>()).has_value());
  }
  Connection dial(const std::string& alpn = "bench") {
    auto c = client->connect(server->public_key(), std::vector{server->local_addr()}, alpn);
    ASPEN_ASSERT(c.has_value());
    return *c;
  }
};

// Arg 0: the default (no Retry while the server is not loaded); arg 1: every handshake
// goes through a Retry (address validation), one more round trip.
void BM_TransportQuicHandshake(benchmark::State& state) {
  EndpointConfig server_config;
  server_config.retry = state.range(0) == 1 ? RetryPolicy::kAlways : RetryPolicy::kUnderLoad;
  QuicPair pair(server_config);
  (void)pair.dial();  // warm up lazy crypto initialisation
  std::vector<double> samples;
  for (auto _ : state) {
    const auto start = Clock::now();
    Connection c = pair.dial();
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    samples.push_back(us);
    state.SetIterationTime(us / 1e6);
    c.close();
  }
  report_percentiles(state, samples);
}
BENCHMARK(BM_TransportQuicHandshake)
    ->ArgName("retry")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(200)
    ->Unit(benchmark::kMicrosecond);

// Client side of the async round trip: everything below runs on the client's loop thread.
struct AsyncPinger {
  std::string msg = std::string(kRttMessageBytes, 'r');
  std::vector<double> samples;
  Clock::time_point start;
  std::promise<void> done;

  void send_next(Stream& s) {
    start = Clock::now();
    ASPEN_ASSERT(s.send_async(msg).has_value());
  }
  void on_reply(Stream& s) {
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    if (samples.size() == static_cast<size_t>(kRttSamples)) return done.set_value();
    send_next(s);
  }
};

void BM_TransportQuicRtt100BAsync(benchmark::State& state) {
  QuicPair pair;
  Connection c = pair.dial("bench-loop");
  for (auto _ : state) {
    auto pinger = std::make_shared<AsyncPinger>();
    pinger->samples.reserve(kRttSamples);
    auto finished = pinger->done.get_future();
    StreamCallbacks cb;
    cb.on_message = [pinger](Stream& s, std::string) { pinger->on_reply(s); };
    c.open_bi_async(std::move(cb), [pinger](aspen::Result<Stream> s) {
      ASPEN_ASSERT(s.has_value());
      pinger->send_next(*s);
    });
    finished.wait();
    report_percentiles(state, pinger->samples);
  }
}
BENCHMARK(BM_TransportQuicRtt100BAsync)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_TransportQuicRtt100BBlocking(benchmark::State& state) {
  QuicPair pair;
  Connection c = pair.dial();
  auto stream = c.open_bi();
  ASPEN_ASSERT(stream.has_value());
  const std::string msg(kRttMessageBytes, 'r');
  std::vector<double> samples;
  samples.reserve(kRttSamples);
  for (auto _ : state) {
    for (int i = 0; i < kRttSamples; ++i) {
      const auto start = Clock::now();
      ASPEN_ASSERT(stream->send(msg).has_value());
      auto reply = stream->recv();
      ASPEN_ASSERT(reply.has_value() && reply->has_value());
      samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
  }
  report_percentiles(state, samples);
}
BENCHMARK(BM_TransportQuicRtt100BBlocking)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_TransportQuicBulk(benchmark::State& state) {
  QuicPair pair;
  Connection c = pair.dial("bench-loop");
  double total_s = 0;
  for (auto _ : state) {
    auto stream = c.open_bi();
    ASPEN_ASSERT(stream.has_value());
    const std::string chunk(kBulkChunkBytes, 'S');
    const auto start = Clock::now();
    for (size_t sent = 0; sent < kBulkBytes; sent += chunk.size()) ASPEN_ASSERT(stream->send(chunk, 60000).has_value());
    stream->finish();
    auto ack = stream->recv(60000);  // the server answers after reading everything
    ASPEN_ASSERT(ack.has_value() && ack->has_value());
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    state.SetIterationTime(s);
    total_s += s;
  }
  state.counters["MB_per_s"] = static_cast<double>(state.iterations() * kBulkBytes) / total_s / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBulkBytes));
}
BENCHMARK(BM_TransportQuicBulk)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// ----------------------------------------------------------------------------------- TCP

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// A listening TCP socket on 127.0.0.1 and a free port; `addr` is set to its address.
int listen_on_loopback(sockaddr_in& addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  addr = sockaddr_in{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASPEN_ASSERT(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ASPEN_ASSERT(::listen(fd, 1) == 0);
  return fd;
}

// A blocking TCP server on 127.0.0.1: echoes fixed-size messages (mode 'E') or swallows
// a stream until EOF and answers one byte (mode 'S').
struct TcpServer {
  int listen_fd = -1;
  uint16_t port = 0;
  std::thread thread;

  explicit TcpServer(char mode, size_t message_bytes) {
    sockaddr_in addr{};
    listen_fd = listen_on_loopback(addr);
    port = ntohs(addr.sin_port);
    thread = std::thread([this, mode, message_bytes] {
      const int fd = ::accept(listen_fd, nullptr, nullptr);
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::vector<char> buf(std::max<size_t>(message_bytes, 1 << 20));
      if (mode == 'E') {
        while (read_all(fd, buf.data(), message_bytes) && write_all(fd, buf.data(), message_bytes)) {
        }
      } else {
        while (::read(fd, buf.data(), buf.size()) > 0) {
        }
        write_all(fd, "k", 1);
      }
      ::close(fd);
    });
  }
  int dial() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASPEN_ASSERT(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
  }
  ~TcpServer() {
    thread.join();
    ::close(listen_fd);
  }
};

void BM_TransportTcpRtt100B(benchmark::State& state) {
  TcpServer server('E', kRttMessageBytes);
  const int fd = server.dial();
  std::string msg(kRttMessageBytes, 'r');
  std::vector<double> samples;
  samples.reserve(kRttSamples);
  for (auto _ : state) {
    for (int i = 0; i < kRttSamples; ++i) {
      const auto start = Clock::now();
      ASPEN_ASSERT(write_all(fd, msg.data(), msg.size()) && read_all(fd, msg.data(), msg.size()));
      samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
  }
  ::close(fd);
  report_percentiles(state, samples);
}
BENCHMARK(BM_TransportTcpRtt100B)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_TransportTcpBulk(benchmark::State& state) {
  double total_s = 0;
  for (auto _ : state) {
    TcpServer server('S', 0);
    const int fd = server.dial();
    std::string chunk(kBulkChunkBytes, 'S');
    const auto start = Clock::now();
    for (size_t sent = 0; sent < kBulkBytes; sent += chunk.size()) ASPEN_ASSERT(write_all(fd, chunk.data(), chunk.size()));
    ::shutdown(fd, SHUT_WR);
    char ack = 0;
    ASPEN_ASSERT(read_all(fd, &ack, 1));
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    state.SetIterationTime(s);
    total_s += s;
    ::close(fd);
  }
  state.counters["MB_per_s"] = static_cast<double>(state.iterations() * kBulkBytes) / total_s / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBulkBytes));
}
BENCHMARK(BM_TransportTcpBulk)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// ------------------------------------------------------------------------ TLS over TCP

constexpr const char* kTlsPriority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:-KX-ALL:+PSK:%DISABLE_TLS13_COMPAT_MODE";
const unsigned char kPskBytes[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

int server_psk(gnutls_session_t, const char*, gnutls_datum_t* key) {
  key->data = static_cast<unsigned char*>(gnutls_malloc(sizeof(kPskBytes)));
  std::memcpy(key->data, kPskBytes, sizeof(kPskBytes));
  key->size = sizeof(kPskBytes);
  return 0;
}

// One TLS session on a connected socket; the handshake runs in the constructor.
struct TlsOverTcp {
  gnutls_session_t session = nullptr;
  gnutls_psk_server_credentials_t server_cred = nullptr;
  gnutls_psk_client_credentials_t client_cred = nullptr;

  TlsOverTcp(int fd, bool is_server) {
    ASPEN_ASSERT(gnutls_init(&session, is_server ? GNUTLS_SERVER : GNUTLS_CLIENT) == 0);
    ASPEN_ASSERT(gnutls_priority_set_direct(session, kTlsPriority, nullptr) == 0);
    if (is_server) {
      ASPEN_ASSERT(gnutls_psk_allocate_server_credentials(&server_cred) == 0);
      gnutls_psk_set_server_credentials_function(server_cred, server_psk);
      ASPEN_ASSERT(gnutls_credentials_set(session, GNUTLS_CRD_PSK, server_cred) == 0);
    } else {
      ASPEN_ASSERT(gnutls_psk_allocate_client_credentials(&client_cred) == 0);
      const gnutls_datum_t key{const_cast<unsigned char*>(kPskBytes), sizeof(kPskBytes)};
      ASPEN_ASSERT(gnutls_psk_set_client_credentials(client_cred, "bench", &key, GNUTLS_PSK_KEY_RAW) == 0);
      ASPEN_ASSERT(gnutls_credentials_set(session, GNUTLS_CRD_PSK, client_cred) == 0);
    }
    gnutls_transport_set_int(session, fd);
    int rc;
    do {
      rc = gnutls_handshake(session);
    } while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(gnutls_cipher_get(session) == GNUTLS_CIPHER_AES_128_GCM);
  }
  ~TlsOverTcp() {
    gnutls_deinit(session);
    if (server_cred != nullptr) gnutls_psk_free_server_credentials(server_cred);
    if (client_cred != nullptr) gnutls_psk_free_client_credentials(client_cred);
  }
  bool send_all(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = gnutls_record_send(session, p, n);
      if (w < 0 && gnutls_error_is_fatal(static_cast<int>(w)) == 0) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  // Bytes received, 0 at the peer's close_notify, -1 on error.
  ssize_t recv_some(char* p, size_t n) {
    while (true) {
      const ssize_t r = gnutls_record_recv(session, p, n);
      if (r < 0 && gnutls_error_is_fatal(static_cast<int>(r)) == 0) continue;
      return r;
    }
  }
};

void BM_TransportTlsOverTcpBulk(benchmark::State& state) {
  double total_s = 0;
  for (auto _ : state) {
    sockaddr_in addr{};
    const int listen_fd = listen_on_loopback(addr);
    std::thread server([listen_fd] {
      const int fd = ::accept(listen_fd, nullptr, nullptr);
      TlsOverTcp tls(fd, true);
      std::vector<char> buf(1 << 20);
      while (tls.recv_some(buf.data(), buf.size()) > 0) {
      }
      tls.send_all("k", 1);
      gnutls_bye(tls.session, GNUTLS_SHUT_WR);
      ::close(fd);
    });
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASPEN_ASSERT(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    {
      TlsOverTcp tls(fd, false);
      const std::string chunk(kBulkChunkBytes, 'S');
      const auto start = Clock::now();
      for (size_t sent = 0; sent < kBulkBytes; sent += chunk.size()) ASPEN_ASSERT(tls.send_all(chunk.data(), chunk.size()));
      ASPEN_ASSERT(gnutls_bye(tls.session, GNUTLS_SHUT_WR) == 0);
      char ack = 0;
      ASPEN_ASSERT(tls.recv_some(&ack, 1) == 1);
      const double s = std::chrono::duration<double>(Clock::now() - start).count();
      state.SetIterationTime(s);
      total_s += s;
    }
    server.join();
    ::close(fd);
    ::close(listen_fd);
  }
  state.counters["MB_per_s"] = static_cast<double>(state.iterations() * kBulkBytes) / total_s / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBulkBytes));
}
BENCHMARK(BM_TransportTlsOverTcpBulk)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace
