// Connection pool: one connection per (peer, protocol), dialled on demand from the address
// book, reused while it stays open, and redialled after it fails.
//
// A failed dial puts the (peer, protocol) pair into exponential backoff (bounded by
// max_backoff_ms); calls during backoff fail fast with Unavailable instead of stacking up
// connect timeouts. A successful dial resets the backoff. Thread-safe; concurrent callers
// for the same pair share one dial.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/limits.h"
#include "transport/address_book.h"
#include "transport/endpoint.h"

namespace aspen::transport {

struct ConnectionPoolOptions {
  uint32_t connect_timeout_ms = limits::kConnectTimeoutMs;
  uint32_t initial_backoff_ms = 100;
  uint32_t max_backoff_ms = 5000;
};

class ConnectionPool {
 public:
  ConnectionPool(Endpoint& endpoint, std::shared_ptr<const AddressBook> address_book,
                 ConnectionPoolOptions options = {});

  Result<Connection> get(const PublicKey& peer, const std::string& alpn);
  // Closes and forgets the pair's connection (e.g. the caller saw it misbehave).
  void drop(const PublicKey& peer, const std::string& alpn);
  // Pairs with an open connection.
  size_t open_count() const;

 private:
  struct Entry {
    std::mutex mu;  // held while dialling: one dial per pair at a time
    std::optional<Connection> conn;
    uint32_t backoff_ms = 0;
    std::chrono::steady_clock::time_point retry_after{};
    std::optional<Error> last_error;
  };
  std::shared_ptr<Entry> entry(const PublicKey& peer, const std::string& alpn);

  Endpoint& endpoint_;
  std::shared_ptr<const AddressBook> address_book_;
  ConnectionPoolOptions options_;
  mutable std::mutex mu_;
  std::map<std::pair<PublicKey, std::string>, std::shared_ptr<Entry>> entries_;
};

}  // namespace aspen::transport
