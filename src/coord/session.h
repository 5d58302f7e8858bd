// Session: one lease a client holds for all its coordination records, kept alive by the
// session (etcd's concurrency session). A lock taken in a session costs two writes (its
// waiter key and the key's delete) instead of four (a lease grant and revoke per
// acquisition); if the client dies, the lease lapses after its TTL and everything held in the
// session is let go at once.
//
//   auto session = coord::Session::open(store, /*ttl_ms=*/10'000).value();
//   coord::DistributedLock lock(store, "jobs/reindex", session.get());
//
// Threads: one keep-alive thread ("coord-session"), owned and joined by the Session; it
// renews the lease every ttl/3. Once a renewal finds the lease gone, is_alive() turns false
// and acquisitions in the session fail with LeaseNotFound.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "coord/coord_common.h"

namespace aspen::coord {

class Session {
 public:
  static Result<std::unique_ptr<Session>> open(kv::KeyValueStore& store, uint64_t ttl_ms);
  // Stops the keep-alive and revokes the lease (releasing everything held in the session).
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  uint64_t lease_id() const { return lease_id_; }
  uint64_t ttl_ms() const { return ttl_ms_; }
  bool is_alive() const { return is_alive_.load(); }

 private:
  Session(kv::KeyValueStore& store, uint64_t lease_id, uint64_t ttl_ms);
  void keep_alive();

  kv::KeyValueStore& store_;
  const uint64_t lease_id_;
  const uint64_t ttl_ms_;
  std::atomic<bool> is_alive_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool is_stopping_ = false;  // [mu_]
  std::thread thread_;        // last: started once the rest is set
};

}  // namespace aspen::coord
