// Socket addresses and the address book: which addresses a peer (named by its public key)
// can be reached at.
//
// The book is updated at run time (configuration today, discovery later) and read by the
// connection pool when it dials. Thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "transport/identity.h"

namespace aspen::transport {

// An IP address (v4 or v6, textual) and a UDP port.
struct SocketAddr {
  std::string ip;
  uint16_t port = 0;

  // "127.0.0.1:7000" or "[::1]:7000".
  static Result<SocketAddr> parse(std::string_view text);
  // The same, but the host may also be a name ("db-1.example:7000", "localhost:7000"),
  // looked up through the system resolver (IPv4 preferred). Blocks while it looks up: for
  // configuration and command lines, not for the event loop. Addresses are stored and
  // sent as IPs, so a name is resolved once, where it was given.
  static Result<SocketAddr> resolve(std::string_view text);
  std::string to_string() const;
  friend auto operator<=>(const SocketAddr&, const SocketAddr&) = default;
};

class AddressBook {
 public:
  // Replaces the peer's addresses. An empty list forgets the peer.
  void set(const PublicKey& peer, std::vector<SocketAddr> addrs);
  // Adds one address (kept first: the newest address is tried first). No duplicates.
  void add(const PublicKey& peer, const SocketAddr& addr);
  void remove(const PublicKey& peer, const SocketAddr& addr);
  std::vector<SocketAddr> get(const PublicKey& peer) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<PublicKey, std::vector<SocketAddr>> addrs_;
};

}  // namespace aspen::transport
