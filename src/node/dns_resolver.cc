#include "node/dns_resolver.h"

#include <arpa/inet.h>
#include <ares.h>
#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <mutex>

#include "core/assert.h"

namespace aspen::node::internal {

namespace {

// c-ares per query: this long per try, this many tries per server.
constexpr int kQueryTimeoutMs = 2000;
constexpr int kQueryTries = 2;
// ns_t_* values (arpa/nameser.h spells them; c-ares takes plain ints).
constexpr int kClassIn = 1;
constexpr int kTypeA = 1;
constexpr int kTypeTxt = 16;
constexpr int kTypeAaaa = 28;
constexpr int kTypeSrv = 33;

// One query in flight: where its answer goes. Lives in a deque (stable addresses) until the
// channel has no query left.
struct Query {
  int type = 0;
  std::string target;  // the SRV target for TXT/A/AAAA; empty for the SRV query
  bool is_done = false;
  int status = ARES_SUCCESS;
  bool is_oversized = false;
  std::string answer;  // the raw message, when status is ARES_SUCCESS and it is not oversized
};

void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  auto* q = static_cast<Query*>(arg);
  q->is_done = true;
  q->status = status;
  if (status != ARES_SUCCESS || abuf == nullptr || alen <= 0) return;
  if (static_cast<size_t>(alen) > cluster::kMaxDnsAnswerBytes) {
    q->is_oversized = true;
    return;
  }
  q->answer.assign(reinterpret_cast<const char*>(abuf), static_cast<size_t>(alen));
}

std::string normalized(std::string_view host) {
  std::string out(host);
  if (out.ends_with('.')) out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

const unsigned char* bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }
int length(const std::string& s) { return static_cast<int>(s.size()); }

std::vector<cluster::DnsSrvRecord> parse_srv(const std::string& answer) {
  std::vector<cluster::DnsSrvRecord> out;
  ares_srv_reply* srv = nullptr;
  if (ares_parse_srv_reply(bytes(answer), length(answer), &srv) != ARES_SUCCESS) return out;
  for (const ares_srv_reply* r = srv; r != nullptr; r = r->next) {
    out.push_back(cluster::DnsSrvRecord{normalized(r->host != nullptr ? r->host : ""), r->port, r->priority, r->weight});
  }
  ares_free_data(srv);
  return out;
}

// Each record's character-strings joined; a record is cut one byte past the limit, so the
// parser still sees (and refuses) it as oversized without holding more.
std::vector<std::string> parse_txt(const std::string& answer) {
  std::vector<std::string> out;
  ares_txt_ext* txt = nullptr;
  if (ares_parse_txt_reply_ext(bytes(answer), length(answer), &txt) != ARES_SUCCESS) return out;
  for (const ares_txt_ext* r = txt; r != nullptr; r = r->next) {
    if (r->record_start != 0 || out.empty()) out.emplace_back();
    std::string& record = out.back();
    const size_t room = cluster::kMaxDnsTxtRecordBytes + 1 - std::min(record.size(), cluster::kMaxDnsTxtRecordBytes + 1);
    record.append(reinterpret_cast<const char*>(r->txt), std::min(r->length, room));
  }
  ares_free_data(txt);
  return out;
}

void parse_addrs(const Query& q, std::vector<std::string>& ips) {
  char text[INET6_ADDRSTRLEN] = {};
  if (q.type == kTypeA) {
    std::array<ares_addrttl, cluster::kMaxDnsAddrsPerTarget> addrs{};
    int n = static_cast<int>(addrs.size());
    if (ares_parse_a_reply(bytes(q.answer), length(q.answer), nullptr, addrs.data(), &n) != ARES_SUCCESS) return;
    for (int i = 0; i < n; ++i) {
      if (inet_ntop(AF_INET, &addrs[static_cast<size_t>(i)].ipaddr, text, sizeof text) != nullptr) ips.emplace_back(text);
    }
  } else {
    std::array<ares_addr6ttl, cluster::kMaxDnsAddrsPerTarget> addrs{};
    int n = static_cast<int>(addrs.size());
    if (ares_parse_aaaa_reply(bytes(q.answer), length(q.answer), nullptr, addrs.data(), &n) != ARES_SUCCESS) return;
    for (int i = 0; i < n; ++i) {
      if (inet_ntop(AF_INET6, &addrs[static_cast<size_t>(i)].ip6addr, text, sizeof text) != nullptr) {
        ips.emplace_back(text);
      }
    }
  }
}

}  // namespace

struct DnsResolver::Channel {
  ares_channel channel = nullptr;
  ~Channel() {
    if (channel != nullptr) ares_destroy(channel);
  }

  // Drives the channel until no query is left; false if `wake_fd` became readable first (the
  // queries are then cancelled: their callbacks run with ARES_ECANCELLED).
  bool run(int wake_fd) {
    for (;;) {
      std::array<ares_socket_t, ARES_GETSOCK_MAXNUM> socks{};
      const int bits = ares_getsock(channel, socks.data(), ARES_GETSOCK_MAXNUM);
      std::array<pollfd, ARES_GETSOCK_MAXNUM + 1> fds{};
      nfds_t n = 0;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        const bool is_read = ARES_GETSOCK_READABLE(bits, i) != 0;
        const bool is_write = ARES_GETSOCK_WRITABLE(bits, i) != 0;
        if (!is_read && !is_write) continue;
        fds[n++] = pollfd{socks[static_cast<size_t>(i)],
                          static_cast<short>((is_read ? POLLIN : 0) | (is_write ? POLLOUT : 0)), 0};
      }
      if (n == 0) return true;  // nothing in flight: every query has its answer
      fds[n] = pollfd{wake_fd, POLLIN, 0};
      timeval tv{};
      const timeval* left = ares_timeout(channel, nullptr, &tv);
      const int timeout_ms = left == nullptr ? kQueryTimeoutMs
                                             : static_cast<int>(left->tv_sec * 1000 + (left->tv_usec + 999) / 1000);
      const int ready = ::poll(fds.data(), n + 1, timeout_ms);
      if (ready < 0 && errno != EINTR) return false;
      if ((fds[n].revents & POLLIN) != 0) {
        ares_cancel(channel);
        return false;
      }
      if (ready <= 0) {
        ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
        continue;
      }
      for (nfds_t i = 0; i < n; ++i) {
        const short ev = fds[i].revents;
        if (ev == 0) continue;
        const bool is_read = (ev & (POLLIN | POLLERR | POLLHUP)) != 0;
        const bool is_write = (ev & POLLOUT) != 0;
        ares_process_fd(channel, is_read ? fds[i].fd : ARES_SOCKET_BAD, is_write ? fds[i].fd : ARES_SOCKET_BAD);
      }
    }
  }
};

DnsResolver::DnsResolver(std::unique_ptr<Channel> channel) : channel_(std::move(channel)) {}
DnsResolver::~DnsResolver() = default;

Result<std::unique_ptr<DnsResolver>> DnsResolver::create(const cluster::DnsDiscoverySettings& settings) {
  static std::once_flag library_once;
  static int library_status = ARES_SUCCESS;
  std::call_once(library_once, [] { library_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (library_status != ARES_SUCCESS) {
    return make_error(ErrorCode::kUnavailable, fmt::format("c-ares: {}", ares_strerror(library_status)));
  }
  auto channel = std::make_unique<Channel>();
  ares_options options{};
  options.timeout = kQueryTimeoutMs;
  options.tries = kQueryTries;
  const int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  if (int s = ares_init_options(&channel->channel, &options, mask); s != ARES_SUCCESS) {
    channel->channel = nullptr;
    return make_error(ErrorCode::kUnavailable, fmt::format("c-ares could not start: {}", ares_strerror(s)));
  }
  if (settings.server) {
    const std::string csv = settings.server->to_string();
    if (int s = ares_set_servers_ports_csv(channel->channel, csv.c_str()); s != ARES_SUCCESS) {
      return make_error(ErrorCode::kUnavailable, fmt::format("DNS server {}: {}", csv, ares_strerror(s)));
    }
  }
  return std::unique_ptr<DnsResolver>(new DnsResolver(std::move(channel)));
}

DnsLookupOutcome DnsResolver::lookup(const std::string& name, int wake_fd) {
  DnsLookupOutcome out;
  std::deque<Query> queries;
  auto ask = [&](const std::string& qname, int type, const std::string& target) {
    queries.push_back(Query{type, target, false, ARES_SUCCESS, false, {}});
    ++out.queries;
    ares_query(channel_->channel, qname.c_str(), kClassIn, type, on_answer, &queries.back());
  };
  auto note_ttl = [&](const Query& q) {
    if (auto ttl = cluster::min_answer_ttl_s(q.answer)) out.min_ttl_s = out.min_ttl_s ? std::min(*out.min_ttl_s, *ttl) : *ttl;
  };

  ask(name, kTypeSrv, "");
  if (!channel_->run(wake_fd)) {
    out.is_stopped = true;
    return out;
  }
  const Query& srv = queries.front();
  cluster::DnsLookupAnswer answer;
  if (srv.is_oversized) {
    out.answer = make_error(ErrorCode::kUnavailable,
                            fmt::format("the SRV answer is larger than {} bytes", cluster::kMaxDnsAnswerBytes));
    return out;
  }
  if (srv.status == ARES_ENODATA || srv.status == ARES_ENOTFOUND) {
    out.answer = std::move(answer);  // the zone lists no member (any more)
    return out;
  }
  if (srv.status != ARES_SUCCESS) {
    out.answer = make_error(ErrorCode::kUnavailable, fmt::format("SRV {}: {}", name, ares_strerror(srv.status)));
    return out;
  }
  note_ttl(srv);
  answer.srv = parse_srv(srv.answer);
  answer.srv_dropped = cluster::take_srv_records(answer.srv);

  for (const auto& r : answer.srv) {
    if (answer.targets.contains(r.target)) continue;
    answer.targets[r.target];
    ask(r.target, kTypeTxt, r.target);
    ask(r.target, kTypeA, r.target);
    ask(r.target, kTypeAaaa, r.target);
  }
  if (!channel_->run(wake_fd)) {
    out.is_stopped = true;
    return out;
  }
  for (size_t i = 1; i < queries.size(); ++i) {
    const Query& q = queries[i];
    ASPEN_ASSERT(q.is_done);
    auto& t = answer.targets[q.target];
    if (q.is_oversized) {
      ++t.oversized_answers;
      continue;
    }
    if (q.status != ARES_SUCCESS) continue;  // no TXT or no AAAA: assemble_dns_peers says what is missing
    note_ttl(q);
    if (q.type == kTypeTxt) {
      t.txts = parse_txt(q.answer);
    } else {
      parse_addrs(q, t.ips);
    }
  }
  out.answer = std::move(answer);
  return out;
}

}  // namespace aspen::node::internal
