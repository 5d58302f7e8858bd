#include "coord/barrier.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "barrier";
constexpr uint8_t kBarrierRecord = 'R';

std::string encode_barrier(const BarrierState& s) {
  RecordWriter w(kBarrierRecord);
  w.u64(s.parties).u64(s.generation).u64(s.is_released ? 1 : 0).u64(s.members.size());
  for (const auto& m : s.members) w.str(m);
  return w.finish();
}

Result<std::optional<BarrierState>> decode_barrier(const std::optional<kvpb::KeyValue>& kv) {
  if (!kv) return std::optional<BarrierState>{};
  auto r = RecordReader::open(kv->value(), kBarrierRecord, kv->key());
  if (!r) return std::unexpected(r.error());
  BarrierState s;
  auto parties = r->u64();
  auto gen = parties ? r->u64() : parties;
  auto released = gen ? r->u64() : gen;
  auto n = released ? r->u64() : released;
  if (!n) return std::unexpected(n.error());
  if (*parties == 0 || *parties > limits::kMaxBarrierParties || *n > *parties) {
    return make_error(ErrorCode::kCorruption, fmt::format("barrier record at '{}' is inconsistent", kv->key()));
  }
  s.parties = static_cast<uint32_t>(*parties);
  s.generation = *gen;
  s.is_released = *released != 0;
  for (uint64_t i = 0; i < *n; ++i) {
    auto m = r->str();
    if (!m) return std::unexpected(m.error());
    s.members.push_back(std::move(*m));
  }
  if (auto st = r->finish(); !st) return std::unexpected(st.error());
  return std::optional<BarrierState>(std::move(s));
}

bool is_member(const BarrierState& s, std::string_view party) {
  return std::find(s.members.begin(), s.members.end(), party) != s.members.end();
}
}  // namespace

Result<std::pair<BarrierState, BarrierTicket>> barrier_enter(const std::optional<BarrierState>& state,
                                                              uint32_t parties, std::string_view party) {
  BarrierState s = state ? *state : BarrierState{parties, 1, false, {}};
  if (s.parties != parties) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("barrier is for {} parties, not {}", s.parties, parties));
  }
  if (is_member(s, party)) return std::pair{s, BarrierTicket{s.generation, false}};  // retried enter
  if (s.is_released) {
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("barrier generation {} is released and still leaving; enter again after "
                                  "all its parties left",
                                  s.generation));
  }
  ASPEN_ASSERT(s.members.size() < s.parties);
  s.members.emplace_back(party);
  BarrierTicket t{s.generation, false};
  if (s.members.size() == s.parties) {
    s.is_released = true;
    t.did_release = true;
  }
  return std::pair{std::move(s), t};
}

Result<BarrierState> barrier_leave(const BarrierState& state, std::string_view party) {
  BarrierState s = state;
  auto it = std::find(s.members.begin(), s.members.end(), party);
  if (it == s.members.end()) {
    return make_error(ErrorCode::kNotFound, fmt::format("party '{}' is not in barrier generation {}", party,
                                                        s.generation));
  }
  s.members.erase(it);
  if (s.is_released && s.members.empty()) {  // the last one out resets for the next round
    s.is_released = false;
    s.generation += 1;
  }
  return s;
}

bool barrier_is_released(const BarrierState& state, const BarrierTicket& ticket) {
  return ticket.generation < state.generation || (ticket.generation == state.generation && state.is_released);
}

Status BarrierManager::check() const {
  if (auto s = validate_name(name_); !s) return s;
  if (parties_ == 0 || parties_ > limits::kMaxBarrierParties) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("barrier parties {} is outside [1, {}]", parties_, limits::kMaxBarrierParties));
  }
  return {};
}

Result<BarrierTicket> BarrierManager::enter(std::string_view party) {
  if (auto s = check(); !s) return std::unexpected(s.error());
  if (auto s = validate_id("party id", party); !s) return std::unexpected(s.error());
  return update_key<BarrierTicket>(store_, coord_key(kKind, name_), fmt::format("barrier '{}'", name_),
                                   [&](const std::optional<kvpb::KeyValue>& cur) -> Result<Update<BarrierTicket>> {
                                     auto st = decode_barrier(cur);
                                     if (!st) return std::unexpected(st.error());
                                     auto next = barrier_enter(*st, parties_, party);
                                     if (!next) return std::unexpected(next.error());
                                     if (*st && next->first.members == (*st)->members) {
                                       return Update<BarrierTicket>{std::nullopt, next->second};
                                     }
                                     return Update<BarrierTicket>{encode_barrier(next->first), next->second};
                                   });
}

Result<BarrierState> BarrierManager::state() {
  if (auto s = check(); !s) return std::unexpected(s.error());
  auto kv = kv::get(store_, coord_key(kKind, name_));
  if (!kv) return std::unexpected(kv.error());
  auto st = decode_barrier(*kv);
  if (!st) return std::unexpected(st.error());
  return st->value_or(BarrierState{parties_, 1, false, {}});
}

Result<bool> BarrierManager::is_released(const BarrierTicket& ticket) {
  auto st = state();
  if (!st) return std::unexpected(st.error());
  return barrier_is_released(*st, ticket);
}

Status BarrierManager::wait(const BarrierTicket& ticket, uint64_t deadline_ms, const Waiter& waiter) {
  auto r = wait_for_change_until<bool>(store_, coord_key(kKind, name_), waiter, deadline_ms,
                                       fmt::format("wait for barrier '{}'", name_),
                            [&]() -> Result<std::optional<bool>> {
                              auto released = is_released(ticket);
                              if (!released) return std::unexpected(released.error());
                              return *released ? std::optional<bool>(true) : std::nullopt;
                            });
  if (!r) return std::unexpected(r.error());
  return {};
}

Status BarrierManager::leave(std::string_view party) {
  if (auto s = check(); !s) return s;
  if (auto s = validate_id("party id", party); !s) return s;
  auto r = update_key<bool>(store_, coord_key(kKind, name_), fmt::format("barrier '{}'", name_),
                            [&](const std::optional<kvpb::KeyValue>& cur) -> Result<Update<bool>> {
                              auto st = decode_barrier(cur);
                              if (!st) return std::unexpected(st.error());
                              if (!*st) {
                                return make_error(ErrorCode::kNotFound,
                                                  fmt::format("party '{}' is not in barrier '{}'", party, name_));
                              }
                              auto next = barrier_leave(**st, party);
                              if (!next) return std::unexpected(next.error());
                              return Update<bool>{encode_barrier(*next), true};
                            });
  if (!r) return std::unexpected(r.error());
  return {};
}

}  // namespace aspen::coord
