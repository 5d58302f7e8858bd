#include "transport/connection_pool.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/assert.h"

namespace aspen::transport {

ConnectionPool::ConnectionPool(Endpoint& endpoint, std::shared_ptr<const AddressBook> address_book,
                               ConnectionPoolOptions options)
    : endpoint_(endpoint), address_book_(std::move(address_book)), options_(options) {
  ASPEN_ASSERT(address_book_ != nullptr);
  ASPEN_ASSERT(options_.initial_backoff_ms > 0 && options_.initial_backoff_ms <= options_.max_backoff_ms);
}

std::shared_ptr<ConnectionPool::Entry> ConnectionPool::entry(const PublicKey& peer, const std::string& alpn) {
  std::lock_guard lock(mu_);
  auto& e = entries_[{peer, alpn}];
  if (e == nullptr) e = std::make_shared<Entry>();
  return e;
}

Result<Connection> ConnectionPool::get(const PublicKey& peer, const std::string& alpn) {
  auto e = entry(peer, alpn);
  std::lock_guard lock(e->mu);
  if (e->conn && e->conn->is_open()) return *e->conn;
  e->conn.reset();
  const auto now = std::chrono::steady_clock::now();
  if (now < e->retry_after) {
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(e->retry_after - now).count();
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("{} is in backoff for {} ms after: {}", peer.short_string(), wait_ms,
                                  e->last_error ? e->last_error->to_string() : "an earlier failure"));
  }
  const auto addrs = address_book_->get(peer);
  Result<Connection> conn =
      addrs.empty() ? make_error(ErrorCode::kUnavailable, fmt::format("no known address for {}", peer.to_string()))
                    : endpoint_.connect(peer, addrs, alpn, options_.connect_timeout_ms);
  if (conn) {
    e->conn = *conn;
    e->backoff_ms = 0;
    e->last_error.reset();
    return conn;
  }
  e->backoff_ms = e->backoff_ms == 0 ? options_.initial_backoff_ms
                                     : std::min(options_.max_backoff_ms, e->backoff_ms * 2);
  e->retry_after = std::chrono::steady_clock::now() + std::chrono::milliseconds(e->backoff_ms);
  e->last_error = conn.error();
  return conn;
}

void ConnectionPool::drop(const PublicKey& peer, const std::string& alpn) {
  auto e = entry(peer, alpn);
  std::lock_guard lock(e->mu);
  if (e->conn) e->conn->close();
  e->conn.reset();
}

size_t ConnectionPool::open_count() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [key, e] : entries_) {
    std::lock_guard entry_lock(e->mu);
    if (e->conn && e->conn->is_open()) ++n;
  }
  return n;
}

}  // namespace aspen::transport
