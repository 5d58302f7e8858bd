// aspen-cli cluster discover: follows gossip with only a ticket (no cookie, no token). The
// ticket's gossip follow topic (src/node/gossip_topic.h) lets this client ask each ticket
// peer, on ALPN "aspen-gossip", for the announcements it holds; every announcement is checked
// here (cluster/gossip_follow.h) before it is shown. Read-only: nothing is announced, and
// what is shown grants nothing (the operator still adds learners).
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <map>

#include "cli.h"
#include "cluster/gossip_follow.h"
#include "cluster/ticket.h"
#include "node/gossip_topic.h"
#include "transport/endpoint.h"

namespace aspen::cli {

namespace {

uint64_t wall_now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// One ticket peer's answer to a follow request.
Result<std::vector<cluster::Announcement>> ask(transport::Endpoint& endpoint, const cluster::TicketPeer& peer,
                                               const cluster::GossipTopic& follow_topic, uint32_t timeout_ms) {
  auto conn = endpoint.connect(peer.public_key, peer.addrs, std::string(cluster::kGossipAlpn), timeout_ms);
  if (!conn) return std::unexpected(conn.error());
  auto stream = conn->open_bi(timeout_ms);
  if (!stream) {
    conn->close();
    return std::unexpected(stream.error());
  }
  Result<std::vector<cluster::Announcement>> out = make_error(ErrorCode::kUnavailable, "no answer");
  if (auto s = stream->send(cluster::encode_follow_request(follow_topic), timeout_ms); !s) {
    out = std::unexpected(s.error());
  } else {
    stream->finish();
    auto reply = stream->recv(timeout_ms);
    if (!reply) {
      out = std::unexpected(reply.error());
    } else if (!reply->has_value()) {
      out = make_error(ErrorCode::kUnavailable,
                       "the node closed the stream without an answer (gossip off, another cluster, or a node "
                       "older than the follow topic)");
    } else {
      out = cluster::read_follow_reply(**reply, conn->peer_key(), follow_topic, node::gossip_follow_topic,
                                       wall_now_ms());
    }
  }
  conn->close();
  return out;
}

int run_discover(const Context& ctx) {
  auto settings = current_settings(ctx);
  if (!settings) return usage_error(ctx, settings.error().message());
  if (settings->ticket.empty()) {
    return usage_error(ctx, "no cluster ticket: pass --ticket or --ticket-file, or set ASPEN_TICKET");
  }
  auto ticket = cluster::decode_ticket(settings->ticket);
  if (!ticket) return usage_error(ctx, "bad ticket: " + ticket.error().message());
  if (!ticket->gossip_follow_topic) {
    return usage_error(ctx,
                       "this ticket carries no gossip follow topic: it was printed by a node with gossip off or "
                       "by an older version; get a current one with 'aspen-cli cluster ticket'");
  }
  transport::EndpointConfig config;
  config.bind_addr = {"0.0.0.0", 0};
  bool has_ipv4 = false;
  for (const auto& p : ticket->peers) {
    for (const auto& a : p.addrs) has_ipv4 = has_ipv4 || a.ip.find(':') == std::string::npos;
  }
  if (!has_ipv4) config.bind_addr = {"::", 0};
  auto endpoint = transport::Endpoint::bind(transport::NodeIdentity::generate(), config);
  if (!endpoint) return fail(ctx, endpoint.error());

  std::map<NodeId, cluster::Announcement> nodes;
  std::map<NodeId, transport::PublicKey> ticket_keys;
  for (const auto& p : ticket->peers) {
    if (p.node_id != kNoNode) ticket_keys.emplace(p.node_id, p.public_key);
  }
  auto known_key = [&](NodeId id) -> std::optional<transport::PublicKey> {
    auto it = ticket_keys.find(id);
    return it == ticket_keys.end() ? std::nullopt : std::optional(it->second);
  };
  const uint32_t timeout_ms = std::min<uint32_t>(settings->timeout_ms, 5000);
  size_t answered = 0;
  size_t other_key = 0;
  std::vector<std::string> errors;
  for (const auto& p : ticket->peers) {
    auto answer = ask(**endpoint, p, *ticket->gossip_follow_topic, timeout_ms);
    if (!answer) {
      errors.push_back(fmt::format("{}: {}", p.addrs.front().to_string(), answer.error().message()));
      continue;
    }
    ++answered;
    other_key += cluster::merge_followed(nodes, *answer, known_key);
  }
  if (answered == 0) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "; ") + e;
    return fail(ctx, Error(ErrorCode::kUnavailable, "no ticket peer answered a follow request: " + all));
  }
  const uint64_t now = wall_now_ms();
  if (ctx.is_json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [id, a] : nodes) {
      std::vector<std::string> addrs;
      for (const auto& addr : a.addrs) addrs.push_back(addr.to_string());
      list.push_back({{"node_id", id}, {"public_key", a.public_key.to_string()}, {"addrs", addrs},
                      {"announced_ms", a.timestamp_ms}});
    }
    print_json_ok({{"now_ms", now}, {"peers_asked", ticket->peers.size()}, {"peers_answered", answered},
                   {"refused_other_key", other_key}, {"nodes", std::move(list)}});
    return kExitOk;
  }
  std::cout << fmt::format("{:>8}  {:<10} {:<22} {}\n", "NODE", "KEY", "ADDRESS", "SIGNED");
  for (const auto& [id, a] : nodes) {
    const std::string age = a.timestamp_ms >= now ? "now"
                                                   : fmt::format("{:.1f} s ago", static_cast<double>(now - a.timestamp_ms) / 1000.0);
    std::cout << fmt::format("{:>8}  {:<10} {:<22} {}\n", id, a.public_key.to_string().substr(0, 10),
                             a.addrs.empty() ? std::string("-") : a.addrs.front().to_string(), age);
  }
  std::cout << fmt::format("{} of {} ticket peers answered", answered, ticket->peers.size());
  if (other_key > 0) std::cout << fmt::format("; {} announcements named another key for a known node and were left out", other_key);
  std::cout << "\n";
  for (const auto& e : errors) std::cerr << "not answered: " << e << "\n";
  return kExitOk;
}

}  // namespace

void add_cluster_discover_command(CLI::App& cluster, Context& ctx, Action& action) {
  auto* discover = cluster.add_subcommand(
      "discover", "List the cluster's nodes as gossip announces them, with only a ticket (no cookie, no token)");
  discover->footer(
      "Asks each node of the ticket, on the gossip protocol, for the signed announcements it\n"
      "holds (its own and others' it heard) and shows each node's id, key and address once\n"
      "its signature is checked. Needs a ticket from a node with gossip on ('aspen-cli cluster\n"
      "ticket' prints one). Read-only: this client is announced to no one, and a node listed\n"
      "here is not a member until the operator adds it.\n"
      "Example:\n  aspen-cli --ticket <ticket> cluster discover --json");
  discover->callback([&ctx, &action] { action = [&ctx] { return run_discover(ctx); }; });
}

}  // namespace aspen::cli
