#include "coord/session.h"

#include <pthread.h>

namespace aspen::coord {

Result<std::unique_ptr<Session>> Session::open(kv::KeyValueStore& store, uint64_t ttl_ms) {
  if (auto s = validate_ttl_ms(ttl_ms); !s) return std::unexpected(s.error());
  auto lease = kv::lease_grant(store, ttl_ms);
  if (!lease) return std::unexpected(lease.error());
  return std::unique_ptr<Session>(new Session(store, lease->id(), ttl_ms));
}

Session::Session(kv::KeyValueStore& store, uint64_t lease_id, uint64_t ttl_ms)
    : store_(store), lease_id_(lease_id), ttl_ms_(ttl_ms), thread_([this] { keep_alive(); }) {}

Session::~Session() {
  {
    std::lock_guard lock(mu_);
    is_stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  (void)kv::lease_revoke(store_, lease_id_);
}

void Session::keep_alive() {
  pthread_setname_np(pthread_self(), "coord-session");
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(ttl_ms_ / 3), [this] { return is_stopping_; })) {
    lock.unlock();
    auto r = kv::lease_keepalive(store_, lease_id_);
    lock.lock();
    // A transient failure (no leader for a moment) is tried again next time; a lease that is
    // gone stays gone.
    if (!r && r.error().code() == ErrorCode::kLeaseNotFound) {
      is_alive_ = false;
      return;
    }
  }
}

}  // namespace aspen::coord
