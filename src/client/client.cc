#include "client/client.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <sodium.h>

#include "client/node_directory.h"
#include "core/assert.h"
#include "core/limits.h"
#include "kv/commands.h"
#include "rpc/error_info.h"
#include "transport/endpoint.h"

namespace aspen::client {

using internal::Clock;
using transport::PublicKey;

namespace {

// Where a request may be answered.
enum class Routing : uint8_t {
  kLeader,     // only the leader: NotLeader hints are followed
  kAnyNode,    // any node, the believed leader first (status queries)
  kSpread,     // any node, spread round-robin (stale reads)
  kFirstPeer,  // the ticket's first peer (InitCluster)
};

struct RequestTraits {
  Routing routing = Routing::kLeader;
  // Not idempotent: once it may have reached a node it is never sent again.
  bool is_write = false;
  // How long the node may hold the request before it answers, on top of an attempt's timeout
  // (a one-shot watch waits for its change).
  uint32_t answer_wait_ms = 0;
};

Routing read_routing(cpb::Consistency consistency) {
  return consistency == cpb::CONSISTENCY_STALE ? Routing::kSpread : Routing::kLeader;
}

RequestTraits traits_of(const cpb::Request& r) {
  switch (r.op_case()) {
    case cpb::Request::kWrite:
    case cpb::Request::kAddLearner:
    case cpb::Request::kChangeMembership:
    case cpb::Request::kRemoveNode:
      return {Routing::kLeader, true};
    case cpb::Request::kInitCluster:
      return {Routing::kFirstPeer, true};
    case cpb::Request::kRead:
      return {read_routing(r.read().consistency()), false};
    case cpb::Request::kBatchRead:
      return {read_routing(r.batch_read().consistency()), false};
    case cpb::Request::kScan:
      return {read_routing(r.scan().consistency()), false};
    case cpb::Request::kLeaseList:
    case cpb::Request::kTriggerSnapshot:
    case cpb::Request::kRevokeToken:  // idempotent: revoking twice is revoking once
    case cpb::Request::kAlarmDisarm:  // idempotent: disarming twice is disarming once
    case cpb::Request::kAlarmRaise:
    case cpb::Request::kBlobTagSet:     // idempotent: setting a tag twice is setting it once
    case cpb::Request::kBlobTagDelete:
    case cpb::Request::kBlobHoldersUpdate:
      return {Routing::kLeader, false};
    case cpb::Request::kAlarmList:
    case cpb::Request::kWhoAmI:
    case cpb::Request::kGetHealth:
    case cpb::Request::kGetMetrics:
    case cpb::Request::kGetRaftMetrics:
    case cpb::Request::kGetLogs:
    case cpb::Request::kGetPeers:
    case cpb::Request::kGetLeader:
    case cpb::Request::kGetNodeInfo:
    case cpb::Request::kWatchCreate:
      // A one-shot watch is a call (Client::wait_for_delete_then_read); Client::watch opens
      // its own streams for the others.
      if (r.watch_create().is_once()) return {Routing::kAnyNode, false, r.watch_create().once_timeout_ms()};
      break;
    case cpb::Request::kGetClusterTicket:
    case cpb::Request::kWatchProgress:
    case cpb::Request::kBlobStatus:
    case cpb::Request::kBlobList:
    case cpb::Request::kBlobTagList:
    case cpb::Request::kBlobGc:
    case cpb::Request::kBlobAdd:  // client/blob_client.h opens their streams
    case cpb::Request::kBlobGet:
    case cpb::Request::kLogSubscribe:   // Client::subscribe_log, on its own protocol
    case cpb::Request::OP_NOT_SET:
      break;
  }
  return {Routing::kAnyNode, false};
}

// NotLeader hints followed at once before backing off: a hint pointing at a node that
// itself redirects (an election in progress) must not spin.
constexpr int kMaxImmediateRedirects = 3;
// The longest pause between tries while a node says an election is under way (and while the
// leader it named cannot be reached): a new leader usually leads within a few hundred
// milliseconds of the old one's death, and a pause of up to max_backoff_ms after that would
// add to every client's outage (the median kill -9 to first write was ~0.52 s, of which up to
// 250 ms were this wait).
constexpr uint32_t kElectionRetryMaxMs = 40;
// How long a pinned call that cannot reach its node spends asking the others where it is.
constexpr uint32_t kMemberRefreshTimeoutMs = 2000;

uint32_t ms_until(Clock::time_point deadline, uint64_t cap_ms = UINT32_MAX) {
  const auto now = Clock::now();
  if (now >= deadline) return 1;  // the transport needs a positive timeout; it fails at once
  const auto left = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
  return static_cast<uint32_t>(std::clamp<uint64_t>(left, 1, std::min<uint64_t>(cap_ms, UINT32_MAX)));
}

uint64_t elapsed_ms(Clock::time_point since) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

// A sleep drawn from [backoff/2, backoff], so clients that failed together retry apart.
uint32_t jittered(uint32_t backoff_ms) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const uint32_t low = backoff_ms / 2;
  return low + static_cast<uint32_t>(rng() % (backoff_ms - low + 1));
}

// A random non-zero session id: two clients drawing the same one would share a session.
uint64_t random_session_id() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{rd()} << 32) | rd();
  return id;
}

bool is_retryable(ErrorCode code) {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kTimeout || code == ErrorCode::kProposalDropped;
}

// The bind address: the wildcard of the family the cluster is reached by (the endpoint has
// one socket, and a packet goes only to a peer of the socket's family).
transport::SocketAddr bind_addr_for(const cluster::Ticket& ticket) {
  for (const auto& peer : ticket.peers) {
    for (const auto& addr : peer.addrs) {
      if (addr.ip.find(':') == std::string::npos) return {"0.0.0.0", 0};
    }
  }
  return {"::", 0};
}

Status expect_result(const cpb::Response& r, cpb::Response::ResultCase expected) {
  if (r.result_case() == expected) return {};
  return make_error(ErrorCode::kInternal,
                    fmt::format("the node answered with result {} where {} was expected",
                                static_cast<int>(r.result_case()), static_cast<int>(expected)));
}

}  // namespace

struct Client::Impl {
  // What one send of the request to one node came to.
  struct Attempt {
    enum class Kind : uint8_t {
      kAnswered,  // a Response arrived (it may carry an error)
      kNotSent,   // no connection or stream: the node surely did not see the request
      kLost,      // sent, then no usable answer: the node may have executed it
    };
    Kind kind = Kind::kNotSent;
    cpb::Response response;
    std::optional<Error> error;  // kNotSent, kLost
  };

  Impl(ClientOptions opts, cluster::Ticket t, std::unique_ptr<transport::Endpoint> ep)
      : options(opts), ticket(std::move(t)), endpoint(std::move(ep)), directory(*endpoint, options.connect_timeout_ms) {
    for (const auto& peer : ticket.peers) directory.upsert(peer.node_id, peer.public_key, peer.addrs);
    ASPEN_ASSERT(directory.size() > 0);
    set_token(options.token);
  }

  // Requests carry the token as their auth_token field, appended to their serialized bytes
  // (protobuf fields may come in any order): encoded once here, not per request.
  void set_token(const std::string& token) {
    cpb::Request only_token;
    only_token.set_auth_token(token);
    std::string field = only_token.SerializeAsString();
    std::lock_guard lock(token_mu);
    token_field = std::make_shared<const std::string>(std::move(field));
  }
  std::shared_ptr<const std::string> current_token_field() const {
    std::lock_guard lock(token_mu);
    return token_field;
  }

  Result<cpb::Response> call(const cpb::Request& request, Target target, uint32_t timeout_ms);
  Attempt attempt(const PublicKey& node, const std::string& bytes, Clock::time_point deadline,
                  Clock::time_point answer_deadline);
  PublicKey choose(Routing routing, uint64_t rotation) const;
  Result<PublicKey> resolve(uint64_t node_id, Clock::time_point deadline);
  void learn(const PublicKey& node, const cpb::Response& response);

  // Exactly-once writes (kv/sessions.h): every write carries this client's session id and a
  // number, so one sent again after an unknown outcome is applied once.
  // A write waits (until `deadline`) while the session has kMaxSessionResults writes from its
  // oldest unanswered one on: the cluster keeps that many answers per session, and past it
  // would drop the answer of a write this client may still resend (and refuse the resend).
  Result<uint64_t> begin_write(kvpb::Session& session, Clock::time_point deadline);
  void end_write(uint64_t sequence);

  const ClientOptions options;
  const cluster::Ticket ticket;
  const uint64_t session_id = random_session_id();
  std::mutex session_mu;
  std::condition_variable session_cv;  // a write was answered: the window may have room
  uint64_t next_sequence = 1;          // [session_mu]
  std::set<uint64_t> incomplete;       // [session_mu] writes sent and not answered yet
  mutable std::mutex token_mu;
  std::shared_ptr<const std::string> token_field;  // [token_mu]
  // Declared before the directory: the directory's connections belong to this endpoint.
  std::unique_ptr<transport::Endpoint> endpoint;
  internal::NodeDirectory directory;
  std::atomic<uint64_t> next_rotation{0};
};

Result<uint64_t> Client::Impl::begin_write(kvpb::Session& session, Clock::time_point deadline) {
  std::unique_lock lock(session_mu);
  const auto has_room = [&] {
    return incomplete.empty() || next_sequence - *incomplete.begin() + 1 <= limits::kMaxSessionResults;
  };
  if (!session_cv.wait_until(lock, deadline, has_room)) {
    return make_error(ErrorCode::kTimeout,
                      fmt::format("not sent: {} writes of this client are already in flight behind its oldest "
                                  "unanswered one (the limit)",
                                  limits::kMaxSessionResults));
  }
  const uint64_t seq = next_sequence++;
  incomplete.insert(seq);
  session.set_client_id(session_id);
  session.set_sequence(seq);
  session.set_first_incomplete(*incomplete.begin());
  return seq;
}

void Client::Impl::end_write(uint64_t sequence) {
  {
    std::lock_guard lock(session_mu);
    incomplete.erase(sequence);
  }
  session_cv.notify_all();
}

PublicKey Client::Impl::choose(Routing routing, uint64_t rotation) const {
  const auto keys = directory.keys();
  ASPEN_ASSERT(!keys.empty());
  if (routing == Routing::kLeader || routing == Routing::kAnyNode) {
    if (auto leader = directory.leader()) return *leader;
  }
  return directory.pick(rotation);
}

Result<PublicKey> Client::Impl::resolve(uint64_t node_id, Clock::time_point deadline) {
  if (auto key = directory.find(node_id)) return *key;
  // Not in the ticket and not seen yet: ask the cluster who its members are.
  cpb::Request request;
  request.mutable_get_raft_metrics();
  auto r = call(request, Target{}, ms_until(deadline));
  if (!r) return std::unexpected(r.error());
  if (auto key = directory.find(node_id)) return *key;
  return make_error(ErrorCode::kNotFound, fmt::format("node {} is not a member this client can find", node_id));
}

void Client::Impl::learn(const PublicKey& node, const cpb::Response& response) {
  // Learning is best effort: a malformed address from a node is skipped, not an error of
  // the call that carried it.
  switch (response.result_case()) {
    case cpb::Response::kGetRaftMetrics: {
      const auto& m = response.get_raft_metrics();
      directory.upsert(m.node_id(), node, {});
      for (const auto& member : m.members()) (void)directory.upsert(member);
      if (m.leader_id() != 0) {
        if (auto leader = directory.find(m.leader_id())) directory.set_leader(*leader);
      }
      break;
    }
    case cpb::Response::kGetLeader:
      if (response.get_leader().leader().node_id() != 0) {
        const auto& leader = response.get_leader().leader();
        if (directory.upsert(leader)) {
          if (auto key = PublicKey::parse(leader.public_key())) directory.set_leader(*key);
        }
      }
      break;
    case cpb::Response::kGetNodeInfo:
      directory.upsert(response.get_node_info().node().node_id(), node, {});
      break;
    case cpb::Response::kGetHealth:
      directory.upsert(response.get_health().node_id(), node, {});
      break;
    default:
      break;
  }
}

Client::Impl::Attempt Client::Impl::attempt(const PublicKey& node, const std::string& bytes,
                                            Clock::time_point deadline, Clock::time_point answer_deadline) {
  Attempt out;
  const auto not_sent = [&](const Error& e) {
    out.kind = Attempt::Kind::kNotSent;
    out.error = Error(e.code(), fmt::format("{}: {}", directory.describe(node), e.message()));
    return std::move(out);
  };
  auto nc = directory.connection(node, deadline);
  if (!nc) return not_sent(nc.error());
  // A node that stopped answering also stops granting streams: waiting for one is bounded
  // by the attempt's own timeout, so a dead leader costs an attempt, not the stream-open limit.
  // Opening the stream, queueing the request and finishing our side is one step on the
  // transport's loop; it fails only before the request is queued, so a failure here means
  // the node never saw the request.
  auto stream = nc->conn.open_bi_with(bytes, true, ms_until(std::min(deadline, answer_deadline), limits::kStreamOpenTimeoutMs));
  if (!stream) {
    if (!nc->conn.is_open()) directory.drop(node, nc->generation);
    return not_sent(stream.error());
  }
  auto reply = [&] {
    internal::AwaitingAnswer awaiting(*nc);
    return stream->recv(ms_until(answer_deadline));
  }();
  if (!reply || !reply->has_value()) {
    stream->reset();
    Error e = reply ? Error(ErrorCode::kUnavailable, "the node closed the stream without answering") : reply.error();
    // A node that let an attempt time out is presumed hung: the next call redials it, which
    // fails fast if it is gone, instead of waiting out another attempt on a dead connection.
    if (!reply && e.code() == ErrorCode::kTimeout) {
      directory.drop(node, nc->generation);
    } else if (!nc->conn.is_open()) {
      directory.drop(node, nc->generation);
    }
    out.kind = Attempt::Kind::kLost;
    out.error = Error(e.code(), fmt::format("{}: {}", directory.describe(node), e.message()));
    return out;
  }
  if (!out.response.ParseFromString(**reply)) {
    stream->reset();
    out.kind = Attempt::Kind::kLost;
    out.error = Error(ErrorCode::kInternal, fmt::format("{}: malformed response", directory.describe(node)));
    return out;
  }
  out.kind = Attempt::Kind::kAnswered;
  return out;
}

Result<cpb::Response> Client::Impl::call(const cpb::Request& request, Target target, uint32_t timeout_ms) {
  if (request.op_case() == cpb::Request::OP_NOT_SET) {
    return make_error(ErrorCode::kInvalidArgument, "request has no operation");
  }
  if (timeout_ms == 0) return make_error(ErrorCode::kInvalidArgument, "timeout_ms must be positive");
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::milliseconds(timeout_ms);
  const RequestTraits traits = traits_of(request);
  // A write in a session may be sent again when its outcome is unknown: the state machine
  // applies it once. Other writes (membership changes) are sent at most once.
  std::optional<cpb::Request> sessioned;
  std::optional<uint64_t> sequence;
  if (request.has_write() && !request.write().command().has_session()) {
    sessioned = request;
    auto seq = begin_write(*sessioned->mutable_write()->mutable_command()->mutable_session(), deadline);
    if (!seq) return std::unexpected(seq.error());
    sequence = *seq;
  }
  struct EndWrite {
    Impl* impl;
    std::optional<uint64_t> seq;
    ~EndWrite() {
      if (seq) impl->end_write(*seq);
    }
  } end_write_guard{this, sequence};
  const bool is_exactly_once = request.has_write() && (sessioned || request.write().command().has_session());
  bool is_outcome_unknown = false;  // an attempt may have applied the write
  // A refusal ends the call, but it speaks only for its own attempt: once an earlier attempt's
  // outcome is unknown, that attempt may still apply (a leader with a full disk refuses the
  // resend at admission while the first copy is in its log), so the call's outcome stays
  // unknown.
  const auto refusal_after = [&](Error e) -> Result<cpb::Response> {
    if (!is_outcome_unknown) return std::unexpected(std::move(e));
    return make_error(ErrorCode::kTimeout,
                      fmt::format("an earlier attempt got no answer, so the write may or may not have been applied "
                                  "(at most once); the last attempt was refused: {}",
                                  e.to_string()));
  };
  std::string bytes;
  if (!(sessioned ? *sessioned : request).SerializeToString(&bytes)) {
    return make_error(ErrorCode::kInternal, "request does not serialize");
  }
  if (request.auth_token().empty()) bytes += *current_token_field();
  if (bytes.size() > limits::kMaxFrameSizeBytes) {
    return make_error(ErrorCode::kMessageTooLarge, fmt::format("request of {} bytes exceeds the {}-byte message limit",
                                                               bytes.size(), limits::kMaxFrameSizeBytes));
  }

  std::optional<PublicKey> fixed;  // set = exactly this node, no redirects
  if (target.node_id != 0) {
    auto key = resolve(target.node_id, deadline);
    if (!key) return std::unexpected(key.error());
    fixed = *key;
  } else if (traits.routing == Routing::kFirstPeer) {
    fixed = ticket.peers.front().public_key;
  }

  uint64_t rotation = next_rotation.fetch_add(1, std::memory_order_relaxed);
  uint32_t backoff_ms = options.initial_backoff_ms;
  int attempts = 0;
  int immediate_redirects = 0;
  bool has_refreshed_members = false;
  std::optional<PublicKey> hinted;
  std::optional<Error> last_error;
  while (true) {
    ++attempts;
    bool is_election_wait = false;  // this try found the cluster between leaders
    const PublicKey node = fixed ? *fixed : hinted ? *hinted : choose(traits.routing, rotation);
    hinted.reset();
    const auto answer_deadline = std::min(
        deadline, Clock::now() + std::chrono::milliseconds(traits.answer_wait_ms) +
                      std::chrono::milliseconds(traits.is_write ? options.write_attempt_timeout_ms
                                                                : options.attempt_timeout_ms));
    Attempt a = attempt(node, bytes, deadline, answer_deadline);

    if (a.kind == Attempt::Kind::kAnswered) directory.clear_suspect(node);
    if (a.kind == Attempt::Kind::kAnswered && !a.response.has_error()) {
      if (traits.routing == Routing::kLeader && !fixed) {
        // A follower may have relayed the request: the next one goes to the leader itself.
        std::optional<PublicKey> leader;
        if (a.response.has_served_by() && directory.upsert(a.response.served_by())) {
          if (auto key = PublicKey::parse(a.response.served_by().public_key())) leader = *key;
        }
        directory.set_leader(leader ? *leader : node);
      }
      learn(node, a.response);
      return std::move(a.response);
    }

    bool should_back_off = true;
    if (a.kind == Attempt::Kind::kAnswered) {
      const auto& info = a.response.error();
      Error e = rpc::from_error_info(info);
      if (e.code() == ErrorCode::kNotLeader) {
        // Refused before execution: always safe to send elsewhere, writes included.
        is_election_wait = rpc::is_election_refusal(e);
        if (fixed) return refusal_after(std::move(e));
        directory.forget_leader(node);
        ++rotation;
        if (!info.leader().public_key().empty() && directory.upsert(info.leader())) {
          auto key = PublicKey::parse(info.leader().public_key());
          // A hint naming a node that just failed us is stale: the follower has not yet
          // noticed that its leader is gone.
          if (key && *key != node && !directory.is_suspect(*key)) {
            directory.set_leader(*key);
            hinted = *key;
            should_back_off = ++immediate_redirects > kMaxImmediateRedirects;
          }
        }
      } else if (e.code() == ErrorCode::kTimeout && traits.is_write && is_exactly_once) {
        // Relayed and lost on the way: the same numbered write again cannot apply twice.
        is_outcome_unknown = true;
        directory.forget_leader(node);
        ++rotation;
      } else if (e.code() == ErrorCode::kTimeout && traits.is_write) {
        return make_error(ErrorCode::kTimeout,
                          fmt::format("{} timed out on the write; it may or may not have been applied: {}",
                                      directory.describe(node), e.message()));
      } else if (is_retryable(e.code())) {
        // Unavailable (no leader yet), ProposalDropped (leadership changed), or a read
        // timeout: the request did not take effect; try again, elsewhere if not pinned.
        is_election_wait = rpc::is_election_refusal(e);
        if (!fixed && traits.routing != Routing::kSpread) directory.forget_leader(node);
        ++rotation;
      } else {
        return refusal_after(std::move(e));
      }
      last_error = Error(e.code(), fmt::format("{}: {}", directory.describe(node), e.message()));
    } else {
      // Not sent, or a read that went unanswered: safe to send again, to another node
      // unless pinned.
      ASPEN_ASSERT(a.error.has_value());
      // A leader that cannot be reached (its process died: the ICMP error ends the try at
      // once) is being replaced.
      is_election_wait = !fixed && directory.leader() == node;
      // Unreachable or silent: avoid it for a while (also forgets it as the leader).
      if (!fixed) directory.mark_suspect(node);
      if (fixed && a.kind == Attempt::Kind::kNotSent && !has_refreshed_members) {
        // A pinned node we cannot reach may have moved (restarted on another address): the
        // other members know where it is now. Once per call.
        has_refreshed_members = true;
        cpb::Request members;
        members.mutable_get_raft_metrics();
        (void)call(members, Target{}, std::max<uint32_t>(1, std::min(ms_until(deadline), kMemberRefreshTimeoutMs)));
      }
      if (a.kind == Attempt::Kind::kLost && is_exactly_once) is_outcome_unknown = true;
      if (a.kind == Attempt::Kind::kLost && traits.is_write && !is_exactly_once) {
        return make_error(ErrorCode::kTimeout,
                          fmt::format("no answer after the write was sent; it may or may not have been applied: {}",
                                      a.error->to_string()));
      }
      if (!fixed) directory.forget_leader(node);
      ++rotation;
      last_error = std::move(a.error);
    }

    if (Clock::now() >= deadline) break;
    if (should_back_off) {
      immediate_redirects = 0;
      const uint32_t pause_ms = is_election_wait ? std::min(backoff_ms, kElectionRetryMaxMs) : backoff_ms;
      const auto sleep_ms = std::min(jittered(pause_ms), ms_until(deadline));
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
      backoff_ms = std::min(options.max_backoff_ms, backoff_ms * 2);
      if (Clock::now() >= deadline) break;
    }
  }
  ASPEN_ASSERT(last_error.has_value());
  if (is_outcome_unknown) {
    return make_error(ErrorCode::kTimeout,
                      fmt::format("no answer in {} ms over {} attempts; the write may or may not have been applied "
                                  "(at most once); last error: {}",
                                  elapsed_ms(started), attempts, last_error->to_string()));
  }
  // A redirect loop that outlived the deadline means no leader could be reached.
  const ErrorCode code = last_error->code() == ErrorCode::kNotLeader ? ErrorCode::kUnavailable : last_error->code();
  return make_error(code, fmt::format("gave up after {} attempts in {} ms; last error: {}", attempts,
                                      elapsed_ms(started), last_error->to_string()));
}

// ------------------------------------------------------------------------------ Client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::connect(std::string_view ticket, ClientOptions options) {
  auto t = cluster::decode_ticket(ticket);
  if (!t) return std::unexpected(t.error());
  return connect(std::move(*t), options);
}

Result<std::unique_ptr<Client>> Client::connect(cluster::Ticket ticket, ClientOptions options) {
  if (ticket.peers.empty()) return make_error(ErrorCode::kInvalidArgument, "the ticket names no peers");
  if (options.timeout_ms == 0 || options.connect_timeout_ms == 0 || options.attempt_timeout_ms == 0 ||
      options.write_attempt_timeout_ms == 0) {
    return make_error(ErrorCode::kInvalidArgument, "client timeouts must be positive");
  }
  if (options.initial_backoff_ms == 0 || options.initial_backoff_ms > options.max_backoff_ms) {
    return make_error(ErrorCode::kInvalidArgument, "client backoff must satisfy 0 < initial_backoff_ms <= max_backoff_ms");
  }
  for (const auto& peer : ticket.peers) {
    if (peer.addrs.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("ticket peer {} has no address", peer.public_key.short_string()));
    }
  }
  transport::EndpointConfig config;
  config.bind_addr = bind_addr_for(ticket);
  // Notice a node that vanished (crash, kill -9) within seconds rather than at the default
  // 30 s idle timeout: keep-alive PINGs go unanswered and the connection is declared dead.
  config.idle_timeout_ms = 3000;
  config.keep_alive_ms = 500;
  auto endpoint = transport::Endpoint::bind(options.identity ? *options.identity : transport::NodeIdentity::generate(),
                                            config);
  if (!endpoint) return std::unexpected(endpoint.error());
  auto impl = std::make_unique<Impl>(options, std::move(ticket), std::move(*endpoint));
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<cpb::Response> Client::call(const cpb::Request& request, Target target) {
  return impl_->call(request, target, impl_->options.timeout_ms);
}

Result<cpb::Response> Client::call(const cpb::Request& request, Target target, uint32_t timeout_ms) {
  return impl_->call(request, target, timeout_ms);
}

std::vector<cpb::NodeAddress> Client::known_nodes() const { return impl_->directory.addresses(); }

Result<Client::ProtocolStream> Client::open_protocol_stream(const std::string& alpn, const cpb::Request& request,
                                                            Target target, uint32_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  PublicKey node;
  if (target.node_id != 0) {
    auto key = impl_->resolve(target.node_id, deadline);
    if (!key) return std::unexpected(key.error());
    node = *key;
  } else {
    node = impl_->choose(Routing::kAnyNode, impl_->next_rotation++);
  }
  std::vector<transport::SocketAddr> addrs;
  for (const auto& a : impl_->directory.addresses()) {
    if (a.public_key() != node.to_string()) continue;
    for (const auto& text : a.addrs()) {
      if (auto addr = transport::SocketAddr::parse(text)) addrs.push_back(*addr);
    }
  }
  auto conn = impl_->endpoint->connect(node, addrs, alpn, ms_until(deadline, impl_->options.connect_timeout_ms));
  if (!conn) {
    impl_->directory.mark_suspect(node);
    return std::unexpected(Error(conn.error().code(), fmt::format("{}: {}", impl_->directory.describe(node), conn.error().message())));
  }
  std::string bytes = request.SerializeAsString() + *impl_->current_token_field();
  auto stream = conn->open_bi_with(std::move(bytes), false, ms_until(deadline, limits::kStreamOpenTimeoutMs));
  if (!stream) {
    conn->close();
    return std::unexpected(stream.error());
  }
  return ProtocolStream{*conn, *stream, impl_->directory.node_id_of(node)};
}

// --- key-value ---

Result<std::optional<kvpb::KeyValue>> Client::read(std::string_view key, cpb::Consistency consistency, Target target) {
  if (auto s = kv::validate_key(key); !s) return std::unexpected(s.error());
  cpb::Request request;
  request.mutable_read()->set_key(std::string(key));
  request.mutable_read()->set_consistency(consistency);
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kRead); !s) return std::unexpected(s.error());
  if (!r->read().found()) return std::optional<kvpb::KeyValue>{};
  return std::optional<kvpb::KeyValue>(std::move(*r->mutable_read()->mutable_kv()));
}

Result<kvpb::RangeResult> Client::scan(const kvpb::RangeRequest& range, cpb::Consistency consistency, Target target) {
  if (auto s = kv::validate_range(range); !s) return std::unexpected(s.error());
  cpb::Request request;
  *request.mutable_scan()->mutable_range() = range;
  request.mutable_scan()->set_consistency(consistency);
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kScan); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_scan()->mutable_result());
}

// Watch streams go on the client protocol over the node's shared connection, log
// subscriptions on the log protocol over a connection of the stream's own. Any member serves
// them: the believed leader first (most up to date), then the others in turn; a pinned one
// always goes to its node.
Watch::Opener Client::watch_opener(Impl* impl, uint64_t pinned, bool is_log_protocol) {
  return [impl, pinned, is_log_protocol](const cpb::Request& create, uint64_t attempt,
                                         Clock::time_point deadline) -> Result<transport::Stream> {
    PublicKey node;
    if (pinned != 0) {
      auto key = impl->resolve(pinned, deadline);
      if (!key) return std::unexpected(key.error());
      node = *key;
    } else {
      node = attempt == 0 ? impl->choose(Routing::kAnyNode, 0) : impl->directory.pick(impl->next_rotation++);
    }
    std::string bytes = create.SerializeAsString() + *impl->current_token_field();
    const uint32_t open_ms = ms_until(deadline, limits::kStreamOpenTimeoutMs);
    if (is_log_protocol) {
      auto conn = impl->endpoint->connect(node, impl->directory.addrs_of(node), internal::kLogsAlpn,
                                          ms_until(deadline, impl->options.connect_timeout_ms));
      if (!conn) {
        impl->directory.mark_suspect(node);
        return std::unexpected(conn.error());
      }
      auto stream = conn->open_bi_with(std::move(bytes), false, open_ms);
      if (!stream) conn->close();
      return stream;
    }
    auto nc = impl->directory.connection(node, deadline);
    if (!nc) return std::unexpected(nc.error());
    auto stream = nc->conn.open_bi_with(std::move(bytes), false, open_ms);
    if (!stream && !nc->conn.is_open()) impl->directory.drop(node, nc->generation);
    return stream;
  };
}

Result<std::unique_ptr<Watch>> Client::watch(const WatchOptions& options) {
  cpb::Request create;
  cpb::WatchCreateRequest& req = *create.mutable_watch_create();
  req.set_start(options.key);
  req.set_end(options.end);
  req.set_is_prefix(options.is_prefix);
  req.set_is_to_end(options.is_to_end);
  req.set_start_revision(options.start_revision);
  req.set_is_no_put(options.is_no_put);
  req.set_is_no_delete(options.is_no_delete);
  req.set_has_prev_kv(options.has_prev_kv);
  req.set_progress_interval_ms(options.progress_interval_ms);
  if (options.is_prefix && !options.end.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a watch takes a prefix or an end key, not both");
  }
  if (!options.key.empty()) {
    if (auto s = kv::validate_key(options.key); !s) return std::unexpected(s.error());
  }
  auto w = std::make_unique<Watch>(std::move(create), watch_opener(impl_.get(), options.node_id, false),
                                   impl_->options.max_backoff_ms);
  if (auto s = w->start(impl_->options.timeout_ms); !s) return std::unexpected(s.error());
  return w;
}

Result<std::unique_ptr<Watch>> Client::subscribe_log(const LogSubscribeOptions& options) {
  if (!options.prefix.empty()) {
    if (auto s = kv::validate_key(options.prefix); !s) return std::unexpected(s.error());
  }
  cpb::Request create;
  cpb::LogSubscribeRequest& req = *create.mutable_log_subscribe();
  req.set_prefix(options.prefix);
  req.set_from_index(options.from_index);
  req.set_progress_interval_ms(options.progress_interval_ms);
  auto w = std::make_unique<Watch>(std::move(create), watch_opener(impl_.get(), options.node_id, true),
                                   impl_->options.max_backoff_ms);
  if (auto s = w->start(impl_->options.timeout_ms); !s) return std::unexpected(s.error());
  return w;
}

namespace {

// A ChangeWaiter over a watch: any event is a change.
class WatchChangeWaiter : public kv::ChangeWaiter {
 public:
  explicit WatchChangeWaiter(std::unique_ptr<Watch> watch) : watch_(std::move(watch)) {}
  Result<bool> wait(uint64_t timeout_ms) override {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      auto b = watch_->next(ms_until(deadline));
      if (!b) {
        if (b.error().code() == ErrorCode::kTimeout) return false;
        return std::unexpected(b.error());
      }
      if (!b->is_progress()) return true;
      if (Clock::now() >= deadline) return false;
    }
  }

 private:
  std::unique_ptr<Watch> watch_;
};

}  // namespace

Result<std::unique_ptr<kv::ChangeWaiter>> Client::watch_range(std::string_view start, std::string_view end) {
  WatchOptions o;
  o.key = std::string(start);
  o.end = std::string(end);
  o.is_to_end = end.empty();
  auto w = watch(o);
  if (!w) return std::unexpected(w.error());
  return std::unique_ptr<kv::ChangeWaiter>(std::make_unique<WatchChangeWaiter>(std::move(*w)));
}

Result<uint64_t> Client::wait_for_delete(std::string_view key, uint64_t after_revision, uint64_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  WatchOptions o;
  o.key = std::string(key);
  o.start_revision = after_revision + 1;
  o.is_no_put = true;
  auto w = watch(o);
  if (!w) return std::unexpected(w.error());
  while (Clock::now() < deadline) {
    auto b = (*w)->next(ms_until(deadline));
    if (!b) {
      if (b.error().code() == ErrorCode::kTimeout) continue;
      return std::unexpected(b.error());
    }
    if (!b->events.empty()) return b->revision;  // deletes only (is_no_put)
  }
  return uint64_t{0};
}

Result<kv::DeletionSeen> Client::wait_for_delete_then_read(std::string_view key, uint64_t after_revision,
                                                           const kvpb::RangeRequest* then_read, uint64_t timeout_ms) {
  ASPEN_ASSERT(timeout_ms > 0);
  if (auto s = kv::validate_key(key); !s) return std::unexpected(s.error());
  const auto started = Clock::now();
  const auto wait_ms = static_cast<uint32_t>(std::min<uint64_t>(timeout_ms, limits::kMaxWatchOnceTimeoutMs));
  cpb::Request request;
  auto* create = request.mutable_watch_create();
  create->set_start(std::string(key));
  create->set_start_revision(after_revision + 1);
  create->set_is_no_put(true);
  create->set_is_once(true);
  create->set_once_timeout_ms(wait_ms);
  if (then_read != nullptr) *create->mutable_then_read() = *then_read;
  // Any member answers (traits_of: the believed leader first, which applies first); a member
  // lost meanwhile costs an attempt, and the wait goes on at another from the same revision.
  auto r = call(request, Target{}, wait_ms + impl_->options.timeout_ms);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kWatch); !s) return std::unexpected(s.error());
  auto& answer = *r->mutable_watch();
  if (answer.is_canceled()) {
    if (answer.compact_revision() != 0) {
      return make_error(ErrorCode::kCompacted,
                        fmt::format("{} (compact revision {})", answer.cancel_reason(), answer.compact_revision()));
    }
    return make_error(ErrorCode::kUnavailable, answer.cancel_reason());
  }
  if (!answer.is_once_answer()) {
    // A node of an older version took it for a streaming watch: wait the other way.
    const auto left_ms = static_cast<uint64_t>(ms_until(started + std::chrono::milliseconds(timeout_ms)));
    if (left_ms == 0) return kv::DeletionSeen{};
    return kv::ChangeNotifier::wait_for_delete_then_read(key, after_revision, then_read, left_ms);
  }
  if (answer.is_once_timed_out()) return kv::DeletionSeen{};
  kv::DeletionSeen seen{answer.revision(), std::nullopt};
  if (then_read != nullptr && answer.has_read()) seen.read = std::move(*answer.mutable_read());
  return seen;
}

Result<kvpb::RangeResult> Client::range_at(const kvpb::RangeRequest& request, uint64_t revision) {
  ASPEN_ASSERT(revision != 0);
  const auto leader = impl_->directory.leader();
  const uint64_t node_id = leader ? impl_->directory.node_id_of(*leader) : 0;
  if (node_id == 0) return make_error(ErrorCode::kUnavailable, "no leader known to read from");
  kvpb::RangeRequest at = request;
  at.set_revision(revision);
  return scan(at, cpb::CONSISTENCY_STALE, Target{node_id});
}

Result<kvpb::CommandResult> Client::execute(kvpb::Command cmd) {
  if (auto s = kv::validate_command(cmd); !s) return std::unexpected(s.error());
  cpb::Request request;
  *request.mutable_write()->mutable_command() = std::move(cmd);
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kWrite); !s) return std::unexpected(s.error());
  // A command refused at apply time (a put on a lease that expired meanwhile, ...) is an
  // error like any other, not an ok result to inspect.
  if (auto s = kv::result_status(r->write().result()); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_write()->mutable_result());
}

Result<kvpb::RangeResult> Client::range(const kvpb::RangeRequest& request) { return scan(request); }

Result<std::vector<kvpb::Lease>> Client::list_leases() {
  // Page by page (the node answers at most kMaxLeaseListPage at a time); the cluster holds
  // at most kMaxLeases, so this ends.
  std::vector<kvpb::Lease> out;
  cpb::Request request;
  request.mutable_lease_list();
  while (true) {
    auto r = call(request);
    if (!r) return std::unexpected(r.error());
    if (auto s = expect_result(*r, cpb::Response::kLeaseList); !s) return std::unexpected(s.error());
    auto* page = r->mutable_lease_list();
    for (auto& l : *page->mutable_leases()) out.push_back(std::move(l));
    if (!page->has_more() || page->leases().empty() || out.size() > limits::kMaxLeases) break;
    request.mutable_lease_list()->set_after_id(out.back().id());
  }
  return out;
}

// --- cluster ---

Result<cpb::GetHealthResponse> Client::health(Target target) {
  cpb::Request request;
  request.mutable_get_health();
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kGetHealth); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_get_health());
}

Result<cpb::GetRaftMetricsResponse> Client::raft_metrics(Target target) {
  cpb::Request request;
  request.mutable_get_raft_metrics();
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kGetRaftMetrics); !s) return std::unexpected(s.error());
  cpb::GetRaftMetricsResponse m = std::move(*r->mutable_get_raft_metrics());
  // Target{} means the leader's view (only the leader reports replication progress): when
  // the node that answered is not the leader but names one, ask the leader.
  if (target.node_id == 0 && m.leader_id() != 0 && m.leader_id() != m.node_id() && impl_->directory.find(m.leader_id())) {
    auto from_leader = call(request, Target{m.leader_id()});
    if (from_leader && from_leader->has_get_raft_metrics()) return std::move(*from_leader->mutable_get_raft_metrics());
  }
  return m;
}

Result<cpb::GetLogsResponse> Client::recent_logs(Target target, uint32_t max_lines, std::string_view min_level) {
  cpb::Request request;
  request.mutable_get_logs()->set_max_lines(max_lines);
  request.mutable_get_logs()->set_min_level(std::string(min_level));
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kGetLogs); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_get_logs());
}

Result<std::string> Client::metrics_text(Target target) {
  cpb::Request request;
  request.mutable_get_metrics();
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kGetMetrics); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_get_metrics()->mutable_prometheus_text());
}

Result<cpb::GetLeaderResponse> Client::leader() {
  cpb::Request request;
  request.mutable_get_leader();
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kGetLeader); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_get_leader());
}

Result<cpb::GetNodeInfoResponse> Client::node_info(Target target) {
  cpb::Request request;
  request.mutable_get_node_info();
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kGetNodeInfo); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_get_node_info());
}

Result<std::string> Client::cluster_ticket() {
  cpb::Request request;
  request.mutable_get_cluster_ticket();
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kGetClusterTicket); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_get_cluster_ticket()->mutable_ticket());
}

Result<InitResult> Client::init_cluster() {
  InitResult out;
  randombytes_buf(out.root_seed.data(), out.root_seed.size());
  const auth::KeyBytes root = auth::public_key_of(out.root_seed);
  cpb::Request request;
  request.mutable_init_cluster()->set_root_public_key(std::string(root.begin(), root.end()));
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kInitCluster); !s) return std::unexpected(s.error());
  out.response = std::move(*r->mutable_init_cluster());
  auth::TokenSpec spec;
  const auto& me = public_key().bytes();
  std::copy(me.begin(), me.end(), spec.audience.begin());
  spec.capabilities = {{auth::Action::kFull, ""}, {auth::Action::kAdmin, ""}, {auth::Action::kDelegate, ""}};
  const auto now_s = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  spec.not_before_s = now_s > 60 ? now_s - 60 : 0;  // some slack for clocks a little behind ours
  spec.expires_s = now_s + kInitAdminTokenTtlS;
  randombytes_buf(spec.id.data(), spec.id.size());
  auto token = auth::issue_token(out.root_seed, spec);
  if (!token) return std::unexpected(token.error());
  out.admin_token = std::move(*token);
  set_token(out.admin_token);
  return out;
}

const transport::PublicKey& Client::public_key() const { return impl_->endpoint->public_key(); }

void Client::set_token(std::string token) { impl_->set_token(token); }

Result<cpb::WhoAmIResponse> Client::who_am_i(Target target) {
  cpb::Request request;
  request.mutable_who_am_i();
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kWhoAmI); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_who_am_i());
}

Status Client::revoke_token(const auth::TokenId& id, uint64_t expires_s) {
  cpb::Request request;
  request.mutable_revoke_token()->set_token_id(std::string(id.begin(), id.end()));
  request.mutable_revoke_token()->set_expires_s(expires_s);
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  return expect_result(*r, cpb::Response::kRevokeToken);
}

Result<std::vector<kvpb::StorageAlarm>> Client::alarm_list(Target target) {
  cpb::Request request;
  request.mutable_alarm_list();
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kAlarmList); !s) return std::unexpected(s.error());
  return std::vector<kvpb::StorageAlarm>(r->alarm_list().alarms().begin(), r->alarm_list().alarms().end());
}

Result<std::vector<kvpb::StorageAlarm>> Client::alarm_disarm(uint64_t member_id) {
  cpb::Request request;
  request.mutable_alarm_disarm()->set_member_id(member_id);
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kAlarmDisarm); !s) return std::unexpected(s.error());
  return std::vector<kvpb::StorageAlarm>(r->alarm_disarm().disarmed().begin(), r->alarm_disarm().disarmed().end());
}

Result<cpb::MembershipResponse> Client::add_learner(const cpb::NodeAddress& node) {
  if (node.node_id() == 0) return make_error(ErrorCode::kInvalidArgument, "a learner needs a non-zero node id");
  // A node given by id alone (no key, no address) is one discovery knows: the leader fills
  // them in or says it cannot.
  cpb::Request request;
  *request.mutable_add_learner()->mutable_node() = node;
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kMembership); !s) return std::unexpected(s.error());
  // The new node can be reached by this client from now on.
  (void)impl_->directory.upsert(node);
  return std::move(*r->mutable_membership());
}

Result<cpb::MembershipResponse> Client::change_membership(const std::vector<uint64_t>& voters, bool retain_as_learners) {
  if (voters.empty()) return make_error(ErrorCode::kInvalidArgument, "the voting membership cannot be empty");
  cpb::Request request;
  for (uint64_t id : voters) request.mutable_change_membership()->add_voters(id);
  request.mutable_change_membership()->set_retain_as_learners(retain_as_learners);
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kMembership); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_membership());
}

Result<cpb::MembershipResponse> Client::remove_node(uint64_t node_id) {
  if (node_id == 0) return make_error(ErrorCode::kInvalidArgument, "node id 0 names no node");
  cpb::Request request;
  request.mutable_remove_node()->set_node_id(node_id);
  auto r = call(request);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kMembership); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_membership());
}

Result<cpb::TriggerSnapshotResponse> Client::trigger_snapshot(Target target) {
  cpb::Request request;
  request.mutable_trigger_snapshot();
  auto r = call(request, target);
  if (!r) return std::unexpected(r.error());
  if (auto s = expect_result(*r, cpb::Response::kTriggerSnapshot); !s) return std::unexpected(s.error());
  return std::move(*r->mutable_trigger_snapshot());
}

}  // namespace aspen::client
