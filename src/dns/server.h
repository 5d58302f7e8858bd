// The message handling of aspen-dns without sockets: bytes of a query in, bytes of the
// response out, with an answer cache. tools/aspen-dns does the UDP and TCP I/O around it.
//
// Cache: answers (positive and negative) are kept per (name, type, class) for
// cache_ttl_ms, the list of zones too; invalidate() drops everything (aspen-dns calls it
// on every change a watch on the dns/ prefix reports). So a change is served at most
// cache_ttl_ms after it was written, and usually as soon as the watch sees it. Store
// failures are answered SERVFAIL and never cached. cache_ttl_ms 0 reads the store for
// every query.
//
// Thread-safe: the tool calls handle() from several threads; the cache has its own lock
// and store reads run outside it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dns/resolver.h"

namespace aspen::dns {

inline constexpr size_t kMaxCachedAnswers = 100000;  // past it the cache starts over
inline constexpr uint64_t kDefaultCacheTtlMs = 5000;

struct ServerOptions {
  // Zones answered for; empty: every zone in the store. A listed zone that is not in the
  // store is not served (REFUSED) until it is created.
  std::vector<Name> zones;
  uint64_t cache_ttl_ms = kDefaultCacheTtlMs;
};

struct ServerStats {
  uint64_t queries = 0;
  uint64_t cache_hits = 0;
  uint64_t store_errors = 0;
  uint64_t malformed = 0;
};

class Server {
 public:
  Server(kv::KeyValueStore& store, ServerOptions options);

  // The response to one query received over UDP (is_tcp false: at most 512 bytes, or the
  // EDNS size up to kMaxUdpPayloadBytes, else truncated with TC) or TCP (up to
  // kMaxMessageBytes). nullopt: nothing to send (a response, or under 12 bytes).
  std::optional<std::string> handle(std::string_view query, bool is_tcp, uint64_t now_ms);

  // Forget every cached answer and the zone list.
  void invalidate();

  ServerStats stats() const;

 private:
  struct CachedAnswer {
    uint64_t expires_ms = 0;
    Answer answer;
  };
  Result<Answer> answer_for(const Question& q, uint64_t now_ms);
  Result<std::vector<Zone>> served_zones(uint64_t now_ms);

  kv::KeyValueStore& store_;
  const ServerOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, CachedAnswer> answers_;  // [mu_]
  std::optional<std::vector<Zone>> zones_;                 // [mu_]
  uint64_t zones_expire_ms_ = 0;                           // [mu_]
  uint64_t generation_ = 0;  // [mu_] bumped by invalidate(): a read begun before it is not cached
  std::atomic<uint64_t> queries_{0}, cache_hits_{0}, store_errors_{0}, malformed_{0};
};

}  // namespace aspen::dns
