#include "coord/election.h"

#include <fmt/format.h>

#include "coord/owned_key.h"
#include "core/limits.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "election";
}

bool is_renewal_due(uint64_t last_renewal_ms, uint64_t ttl_ms, uint64_t now_ms) {
  return now_ms >= last_renewal_ms + ttl_ms / 3;
}

Status LeaderElection::check_args() const {
  if (auto s = validate_name(name_); !s) return s;
  if (auto s = validate_id("candidate id", candidate_); !s) return s;
  return validate_ttl_ms(ttl_ms_);
}

Result<bool> LeaderElection::campaign(std::string_view value, uint64_t now_ms) {
  if (auto s = check_args(); !s) return std::unexpected(s.error());
  if (value.size() > limits::kMaxCoordRecordBytes / 2) {
    return make_error(ErrorCode::kValueTooLarge, fmt::format("leader value is {} bytes; the limit is {} bytes",
                                                             value.size(), limits::kMaxCoordRecordBytes / 2));
  }
  if (term_) return true;
  if (pending_lease_id_ == 0) {
    auto lease = kv::lease_grant(store_, ttl_ms_);
    if (!lease) return std::unexpected(lease.error());
    pending_lease_id_ = lease->id();
  } else if (auto k = kv::lease_keepalive(store_, pending_lease_id_); !k) {
    if (k.error().code() != ErrorCode::kLeaseNotFound) return std::unexpected(k.error());
    pending_lease_id_ = 0;  // expired while waiting: grant a fresh one next attempt
    return false;
  }
  Owner me{candidate_, std::string(value), pending_lease_id_, 0};
  auto claim = claim_owned_key(store_, coord_key(kKind, name_), me);
  if (!claim) {
    if (claim.error().code() == ErrorCode::kLeaseNotFound) {
      pending_lease_id_ = 0;
      return false;
    }
    return std::unexpected(claim.error());
  }
  if (!claim->is_claimed) {
    if (claim->owner.holder == candidate_) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("election '{}' is already led by candidate '{}' from another session "
                                    "(fencing token {})",
                                    name_, candidate_, claim->owner.fencing_token));
    }
    return false;
  }
  term_ = LeaderInfo{candidate_, std::string(value), claim->owner.fencing_token, pending_lease_id_};
  pending_lease_id_ = 0;
  last_renewal_ms_ = now_ms;
  return true;
}

Status LeaderElection::campaign_until(std::string_view value, uint64_t deadline_ms, const Waiter& waiter) {
  // Woken when the leader's key changes (resigned, or its lease expired), not by polling.
  auto r = wait_for_change_until<bool>(store_, coord_key(kKind, name_), waiter, deadline_ms,
                                       fmt::format("campaign in election '{}'", name_),
                            [&]() -> Result<std::optional<bool>> {
                              auto won = campaign(value, waiter.now_ms());
                              if (!won) return std::unexpected(won.error());
                              return *won ? std::optional<bool>(true) : std::nullopt;
                            });
  if (!r) {
    if (pending_lease_id_ != 0) (void)kv::lease_revoke(store_, pending_lease_id_);
    pending_lease_id_ = 0;
    return std::unexpected(r.error());
  }
  return {};
}

void LeaderElection::lose() {
  LeaderInfo was = std::move(*term_);
  term_.reset();
  if (on_lost_) on_lost_(was);
}

Result<bool> LeaderElection::renew(uint64_t now_ms) {
  if (!term_) return false;
  auto s = renew_owned_key(store_, coord_key(kKind, name_), term_->fencing_token, term_->lease_id,
                           fmt::format("leadership of election '{}'", name_));
  if (!s) {
    if (s.error().code() != ErrorCode::kNotFound) return std::unexpected(s.error());
    lose();
    return false;
  }
  last_renewal_ms_ = now_ms;
  return true;
}

Result<bool> LeaderElection::tick(uint64_t now_ms) {
  if (!term_) return false;
  if (!is_renewal_due(last_renewal_ms_, ttl_ms_, now_ms)) return true;
  return renew(now_ms);
}

Status LeaderElection::resign() {
  if (!term_) return {};
  LeaderInfo was = std::move(*term_);
  term_.reset();
  auto s = release_owned_key(store_, coord_key(kKind, name_), was.fencing_token, was.lease_id,
                             fmt::format("leadership of election '{}'", name_));
  if (!s && s.error().code() == ErrorCode::kNotFound) return {};  // already lost: resigning is done
  return s;
}

Result<std::optional<LeaderInfo>> LeaderElection::leader() {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  auto o = read_owner(store_, coord_key(kKind, name_));
  if (!o) return std::unexpected(o.error());
  if (!o->has_value()) return std::optional<LeaderInfo>{};
  return std::optional<LeaderInfo>(LeaderInfo{(*o)->holder, (*o)->value, (*o)->fencing_token, (*o)->lease_id});
}

Result<std::optional<LeaderInfo>> LeaderElection::wait_for_leader_change(const std::optional<LeaderInfo>& known,
                                                                        uint64_t deadline_ms, const Waiter& waiter) {
  using Leader = std::optional<LeaderInfo>;
  auto same = [](const Leader& a, const Leader& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->candidate == b->candidate && a->fencing_token == b->fencing_token && a->value == b->value);
  };
  return wait_for_change_until<Leader>(store_, coord_key(kKind, name_), waiter, deadline_ms,
                                       fmt::format("observe election '{}'", name_),
                                       [&]() -> Result<std::optional<Leader>> {
                                         auto now = leader();
                                         if (!now) return std::unexpected(now.error());
                                         if (same(*now, known)) return std::optional<Leader>{};
                                         return std::optional<Leader>(std::move(*now));
                                       });
}

}  // namespace aspen::coord
