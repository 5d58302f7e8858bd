#include "transport/address_book.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <memory>

#include <asio/ip/address.hpp>
#include <fmt/format.h>

namespace aspen::transport {

Result<SocketAddr> SocketAddr::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("bad address '{}'", text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("address '{}' has no port", text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  uint16_t port_value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_value);
  if (ec != std::errc() || end != port.data() + port.size()) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("bad port in '{}'", text));
  }
  asio::error_code aec;
  auto ip = asio::ip::make_address(std::string(host), aec);
  if (aec) return make_error(ErrorCode::kInvalidArgument, fmt::format("bad IP in '{}'", text));
  return SocketAddr{ip.to_string(), port_value};
}

Result<SocketAddr> SocketAddr::resolve(std::string_view text) {
  if (auto literal = parse(text)) return literal;
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || text.front() == '[') {
    return parse(text);  // no host name to look up: parse's error says what is wrong
  }
  const std::string host(text.substr(0, colon));
  const std::string_view port = text.substr(colon + 1);
  uint16_t port_value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_value);
  if (ec != std::errc() || end != port.data() + port.size()) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("bad port in '{}'", text));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("cannot resolve host '{}' in '{}': {}", host, text, ::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(found, ::freeaddrinfo);
  const addrinfo* pick = nullptr;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
    if (a->ai_family == AF_INET6 && pick == nullptr) pick = a;
  }
  if (pick == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("host '{}' has no IP address", host));
  }
  char ip[INET6_ADDRSTRLEN] = {};
  const void* raw = pick->ai_family == AF_INET
                        ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(pick->ai_addr)->sin_addr)
                        : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(pick->ai_addr)->sin6_addr);
  if (::inet_ntop(pick->ai_family, raw, ip, sizeof(ip)) == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("host '{}' has an unusable address", host));
  }
  return SocketAddr{ip, port_value};
}

std::string SocketAddr::to_string() const {
  if (ip.find(':') != std::string::npos) return fmt::format("[{}]:{}", ip, port);
  return fmt::format("{}:{}", ip, port);
}

void AddressBook::set(const PublicKey& peer, std::vector<SocketAddr> addrs) {
  std::lock_guard lock(mu_);
  if (addrs.empty()) {
    addrs_.erase(peer);
  } else {
    addrs_[peer] = std::move(addrs);
  }
}

void AddressBook::add(const PublicKey& peer, const SocketAddr& addr) {
  std::lock_guard lock(mu_);
  auto& list = addrs_[peer];
  std::erase(list, addr);
  list.insert(list.begin(), addr);
}

void AddressBook::remove(const PublicKey& peer, const SocketAddr& addr) {
  std::lock_guard lock(mu_);
  auto it = addrs_.find(peer);
  if (it == addrs_.end()) return;
  std::erase(it->second, addr);
  if (it->second.empty()) addrs_.erase(it);
}

std::vector<SocketAddr> AddressBook::get(const PublicKey& peer) const {
  std::lock_guard lock(mu_);
  auto it = addrs_.find(peer);
  return it == addrs_.end() ? std::vector<SocketAddr>{} : it->second;
}

size_t AddressBook::size() const {
  std::lock_guard lock(mu_);
  return addrs_.size();
}

}  // namespace aspen::transport
