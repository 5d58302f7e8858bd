// A scripted stand-in for an Aspen node on the real transport: an Endpoint on 127.0.0.1
// serving ALPN "aspen-client", answering each request with whatever the test's responder
// returns (or never answering, to look hung). Counts requests and connections so tests can
// check where the client sent what.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "aspen/client.pb.h"
#include "cluster/ticket.h"
#include "rpc/error_info.h"
#include "transport/endpoint.h"

namespace aspen::client::testing {

namespace cpb = aspen::clientpb;

// Answers one request; `index` counts this node's requests from 0. nullopt = never answer.
using Responder = std::function<std::optional<cpb::Response>(const cpb::Request& request, int index)>;

class FakeNode {
 public:
  explicit FakeNode(uint64_t node_id) : node_id_(node_id), handler_(std::make_shared<Handler>()) {
    auto ep = transport::Endpoint::bind(identity_, transport::EndpointConfig{});
    EXPECT_TRUE(ep.has_value()) << ep.error().to_string();
    endpoint_ = std::move(*ep);
    EXPECT_TRUE(endpoint_->register_handler("aspen-client", handler_));
    addr_ = endpoint_->local_addr();
  }
  ~FakeNode() { stop(); }
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  void respond(Responder responder) {
    std::lock_guard lock(handler_->mu);
    handler_->responder = std::move(responder);
  }
  // Releases hung requests and closes the endpoint: the node is gone from the network.
  void stop() {
    {
      std::lock_guard lock(handler_->mu);
      handler_->is_stopping = true;
    }
    handler_->released.notify_all();
    if (endpoint_) endpoint_->close();
  }

  uint64_t node_id() const { return node_id_; }
  const transport::PublicKey& key() const { return identity_.public_key(); }
  int requests() const { return handler_->requests.load(); }
  int connections() const { return handler_->connections.load(); }
  cpb::Request last_request() const {
    std::lock_guard lock(handler_->mu);
    return handler_->last_request;
  }
  cluster::TicketPeer ticket_peer() const { return {node_id_, key(), {addr_}}; }
  cpb::NodeAddress address() const {
    cpb::NodeAddress a;
    a.set_node_id(node_id_);
    a.set_public_key(key().to_string());
    a.add_addrs(addr_.to_string());
    return a;
  }

 private:
  struct Handler : transport::ProtocolHandler {
    void on_connection(transport::Connection conn) override {
      connections.fetch_add(1);
      std::vector<std::thread> threads;
      while (true) {
        auto stream = conn.accept_bi(60000);
        if (!stream) break;
        threads.emplace_back([this, s = *stream]() mutable { serve(s); });
      }
      for (auto& t : threads) t.join();
    }
    void serve(transport::Stream stream) {
      auto msg = stream.recv(5000);
      if (!msg || !msg->has_value()) return;
      cpb::Request request;
      if (!request.ParseFromString(**msg)) return;
      Responder r;
      int index = 0;
      {
        std::lock_guard lock(mu);
        r = responder;
        last_request = request;
        index = requests.fetch_add(1);
      }
      std::optional<cpb::Response> response = r ? r(request, index) : std::nullopt;
      if (!response) {
        // Hung: hold the stream until the node stops.
        std::unique_lock lock(mu);
        released.wait(lock, [&] { return is_stopping; });
        return;
      }
      (void)stream.send(response->SerializeAsString());
      stream.finish();
    }

    mutable std::mutex mu;
    std::condition_variable released;
    bool is_stopping = false;
    Responder responder;
    cpb::Request last_request;
    std::atomic<int> requests{0};
    std::atomic<int> connections{0};
  };

  uint64_t node_id_;
  transport::NodeIdentity identity_ = transport::NodeIdentity::generate();
  std::shared_ptr<Handler> handler_;
  std::unique_ptr<transport::Endpoint> endpoint_;
  transport::SocketAddr addr_;
};

inline cpb::Response error_response(ErrorCode code, const std::string& message,
                                    std::optional<cpb::NodeAddress> leader = std::nullopt) {
  cpb::Response r;
  *r.mutable_error() = rpc::to_error_info(Error(code, message));
  if (leader) *r.mutable_error()->mutable_leader() = *leader;
  return r;
}

inline cpb::Response write_ok(uint64_t revision) {
  cpb::Response r;
  r.mutable_write()->mutable_result()->set_revision(revision);
  r.mutable_write()->mutable_result()->set_succeeded(true);
  return r;
}

inline cpb::Response read_ok(const std::string& key, const std::string& value) {
  cpb::Response r;
  r.mutable_read()->set_found(true);
  r.mutable_read()->mutable_kv()->set_key(key);
  r.mutable_read()->mutable_kv()->set_value(value);
  return r;
}

}  // namespace aspen::client::testing
