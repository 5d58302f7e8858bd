#include "client/node_directory.h"

#include <algorithm>

#include <fmt/format.h>

#include "cluster/ticket.h"
#include "core/assert.h"
#include "core/limits.h"

namespace aspen::client::internal {

namespace {

// Every voter and learner, plus ticket peers that may have left: hints from the network
// cannot grow the directory without bound.
constexpr size_t kMaxKnownNodes = limits::kMaxClusterVoters + limits::kMaxClusterLearners + cluster::kMaxTicketPeers;

}  // namespace

NodeDirectory::NodeDirectory(transport::Endpoint& endpoint, uint32_t connect_timeout_ms)
    : endpoint_(endpoint), connect_timeout_ms_(connect_timeout_ms) {
  ASPEN_ASSERT(connect_timeout_ms_ > 0);
}

NodeDirectory::Node* NodeDirectory::find_locked(const transport::PublicKey& key) {
  for (auto& n : nodes_) {
    if (n->key == key) return n.get();
  }
  return nullptr;
}

const NodeDirectory::Node* NodeDirectory::find_locked(const transport::PublicKey& key) const {
  for (const auto& n : nodes_) {
    if (n->key == key) return n.get();
  }
  return nullptr;
}

std::vector<transport::SocketAddr> NodeDirectory::addrs_of(const transport::PublicKey& key) const {
  std::lock_guard lock(mu_);
  const Node* n = find_locked(key);
  return n != nullptr ? n->addrs : std::vector<transport::SocketAddr>{};
}

void NodeDirectory::upsert(uint64_t node_id, const transport::PublicKey& key, std::vector<transport::SocketAddr> addrs) {
  std::lock_guard lock(mu_);
  Node* node = find_locked(key);
  if (node == nullptr) {
    if (nodes_.size() >= kMaxKnownNodes || addrs.empty()) return;
    auto fresh = std::make_unique<Node>();
    fresh->key = key;
    nodes_.push_back(std::move(fresh));
    node = nodes_.back().get();
  }
  if (node_id != 0) {
    // A node id names one key: a stale entry claiming the same id (a node that was
    // re-created with a new key) loses it.
    for (auto& other : nodes_) {
      if (other.get() != node && other->node_id == node_id) other->node_id = 0;
    }
    node->node_id = node_id;
  }
  if (!addrs.empty()) node->addrs = std::move(addrs);
}

Status NodeDirectory::upsert(const clientpb::NodeAddress& address) {
  if (address.public_key().empty()) return {};
  auto key = transport::PublicKey::parse(address.public_key());
  if (!key) return make_error(ErrorCode::kInvalidArgument, fmt::format("bad public key: {}", key.error().message()));
  std::vector<transport::SocketAddr> addrs;
  for (const auto& text : address.addrs()) {
    auto addr = transport::SocketAddr::parse(text);
    if (!addr) return std::unexpected(addr.error());
    addrs.push_back(std::move(*addr));
  }
  upsert(address.node_id(), *key, std::move(addrs));
  return {};
}

size_t NodeDirectory::size() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

std::vector<transport::PublicKey> NodeDirectory::keys() const {
  std::lock_guard lock(mu_);
  std::vector<transport::PublicKey> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n->key);
  return out;
}

std::optional<transport::PublicKey> NodeDirectory::find(uint64_t node_id) const {
  if (node_id == 0) return std::nullopt;
  std::lock_guard lock(mu_);
  for (const auto& n : nodes_) {
    if (n->node_id == node_id) return n->key;
  }
  return std::nullopt;
}

uint64_t NodeDirectory::node_id_of(const transport::PublicKey& key) const {
  std::lock_guard lock(mu_);
  const Node* node = find_locked(key);
  return node == nullptr ? 0 : node->node_id;
}

std::string NodeDirectory::describe(const transport::PublicKey& key) const {
  const uint64_t id = node_id_of(key);
  if (id == 0) return key.short_string();
  return fmt::format("node {} ({})", id, key.short_string());
}

std::vector<clientpb::NodeAddress> NodeDirectory::addresses() const {
  std::lock_guard lock(mu_);
  std::vector<clientpb::NodeAddress> out;
  for (const auto& n : nodes_) {
    clientpb::NodeAddress a;
    a.set_node_id(n->node_id);
    a.set_public_key(n->key.to_string());
    for (const auto& addr : n->addrs) a.add_addrs(addr.to_string());
    out.push_back(std::move(a));
  }
  return out;
}

std::optional<transport::PublicKey> NodeDirectory::leader() const {
  std::lock_guard lock(mu_);
  return leader_;
}

void NodeDirectory::set_leader(const transport::PublicKey& key) {
  std::lock_guard lock(mu_);
  if (find_locked(key) != nullptr) leader_ = key;
}

void NodeDirectory::forget_leader(const transport::PublicKey& key) {
  std::lock_guard lock(mu_);
  if (leader_ == key) leader_.reset();
}

void NodeDirectory::mark_suspect(const transport::PublicKey& key) {
  std::lock_guard lock(mu_);
  if (Node* n = find_locked(key)) n->suspect_until = Clock::now() + std::chrono::milliseconds(kSuspectMs);
  if (leader_ == key) leader_.reset();
}

void NodeDirectory::clear_suspect(const transport::PublicKey& key) {
  std::lock_guard lock(mu_);
  if (Node* n = find_locked(key)) n->suspect_until = {};
}

bool NodeDirectory::is_suspect(const transport::PublicKey& key) const {
  std::lock_guard lock(mu_);
  const Node* n = find_locked(key);
  return n != nullptr && n->suspect_until > Clock::now();
}

transport::PublicKey NodeDirectory::pick(uint64_t rotation) const {
  std::lock_guard lock(mu_);
  ASPEN_ASSERT(!nodes_.empty());
  const auto now = Clock::now();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = *nodes_[(rotation + i) % nodes_.size()];
    if (n.suspect_until <= now) return n.key;
  }
  return nodes_[rotation % nodes_.size()]->key;
}

Result<NodeConnection> NodeDirectory::connection(const transport::PublicKey& key, Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  Node* node = find_locked(key);
  if (node == nullptr) return make_error(ErrorCode::kNotFound, fmt::format("unknown node {}", key.short_string()));
  while (true) {
    if (node->conn && node->conn->is_open()) return NodeConnection{*node->conn, node->generation, node->awaiting};
    node->conn.reset();
    if (!node->is_dialing) break;
    // Another caller is dialling this node: take its outcome rather than dial twice.
    const uint64_t generation = node->generation;
    const bool is_done = dial_done_.wait_until(lock, deadline, [&] { return !node->is_dialing; });
    if (!is_done) {
      return make_error(ErrorCode::kTimeout, fmt::format("deadline passed while connecting to {}", key.short_string()));
    }
    if (node->generation != generation && !node->conn && node->last_dial_error) {
      return std::unexpected(*node->last_dial_error);
    }
  }
  const auto now = Clock::now();
  if (now >= deadline) {
    return make_error(ErrorCode::kTimeout, fmt::format("deadline passed before connecting to {}", key.short_string()));
  }
  const auto remaining_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
  // With other nodes to try, a node that does not answer quickly is given up sooner: a
  // handshake on a live path takes a round trip or two, and a crashed node never answers.
  const uint64_t per_node_ms = nodes_.size() > 1 ? std::min<uint64_t>(connect_timeout_ms_, kFailoverConnectTimeoutMs)
                                                 : connect_timeout_ms_;
  const auto timeout_ms = static_cast<uint32_t>(std::max<uint64_t>(1, std::min<uint64_t>(per_node_ms, remaining_ms)));
  const std::vector<transport::SocketAddr> addrs = node->addrs;
  node->is_dialing = true;
  lock.unlock();
  auto conn = endpoint_.connect(key, addrs, kClientAlpn, timeout_ms);
  lock.lock();
  node->is_dialing = false;
  ++node->generation;
  if (conn) {
    node->conn = *conn;
    node->awaiting = std::make_shared<std::atomic<uint32_t>>(0);
    node->last_dial_error.reset();
  } else {
    node->last_dial_error = conn.error();
  }
  dial_done_.notify_all();
  if (!conn) return std::unexpected(conn.error());
  return NodeConnection{*conn, node->generation, node->awaiting};
}

void NodeDirectory::drop(const transport::PublicKey& key, uint64_t generation) {
  std::optional<transport::Connection> victim;
  {
    std::lock_guard lock(mu_);
    Node* node = find_locked(key);
    if (node == nullptr || node->generation != generation || !node->conn) return;
    victim = std::move(node->conn);
    node->conn.reset();
  }
  victim->close();
}

AwaitingAnswer::AwaitingAnswer(NodeConnection& nc) : nc_(nc) {
  if (nc_.awaiting->fetch_add(1) == 0) nc_.conn.set_keep_alive_ms(kAwaitingAnswerKeepAliveMs);
}

AwaitingAnswer::~AwaitingAnswer() {
  if (nc_.awaiting->fetch_sub(1) == 1) nc_.conn.set_keep_alive_ms(0);  // 0: the endpoint's idle keep-alive
}

}  // namespace aspen::client::internal
