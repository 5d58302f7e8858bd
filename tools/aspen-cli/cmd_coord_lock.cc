// aspen-cli lock acquire|release|renew|status and election campaign|resign|leader: keys owned
// by one holder through a lease, with a fencing token.
//
// A CLI process exits right after acquiring, so the lock (or leadership) outlives it until its
// TTL lapses, or until release/resign. release and renew find the holder's record (token and
// lease) in the store again, so the operator only names the holder.
#include <fmt/format.h>

#include <iostream>

#include "cmd_coord.h"
#include "completion.h"
#include "coord/election.h"
#include "coord/lock.h"
#include "kv/key_value_store.h"
#include "payload.h"

namespace aspen::cli {

namespace {

struct LockArgs {
  std::string name;
  std::string holder;
  uint64_t ttl_s = 30;
  uint64_t wait_ms = 0;
  uint64_t token = 0;  // 0: whatever token the holder has
};

nlohmann::json lock_info_json(const coord::LockInfo& i) {
  return {{"holder", i.holder}, {"fencing_token", i.fencing_token}, {"lease_id", i.lease_id}};
}

int run_lock_acquire(const Context& ctx, const LockArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::DistributedLock lock(c, a.name);
    const uint64_t ttl_ms = a.ttl_s * 1000;
    Result<std::optional<coord::LockHandle>> r = std::optional<coord::LockHandle>{};
    if (a.wait_ms == 0) {
      r = lock.try_acquire(a.holder, ttl_ms);
    } else {
      const uint64_t deadline = steady_now_ms() + a.wait_ms;
      auto h = lock.try_acquire_until(a.holder, ttl_ms, deadline, real_waiter());
      if (h) {
        r = std::optional<coord::LockHandle>(std::move(*h));
      } else if (!is_wait_expired(h.error(), deadline)) {
        r = std::unexpected(h.error());
      }
    }
    if (!r) return fail(ctx, r.error());
    if (r->has_value()) {
      const auto& h = **r;
      if (ctx.is_json) {
        print_json_ok({{"lock", a.name}, {"acquired", true}, {"holder", h.holder}, {"fencing_token", h.fencing_token},
                       {"lease_id", h.lease_id}, {"ttl_s", a.ttl_s}});
      } else {
        std::cout << fmt::format("acquired lock {} as {}: fencing token {}, lease {} (ttl {} s)\n", a.name, h.holder,
                                 h.fencing_token, h.lease_id, a.ttl_s);
      }
      return kExitOk;
    }
    // Not acquired: say who has it (it may have been released since; this is a hint).
    auto now = lock.holder();
    if (ctx.is_json) {
      nlohmann::json out = {{"lock", a.name}, {"acquired", false}};
      if (now && now->has_value()) out["current"] = lock_info_json(**now);
      print_json_ok(std::move(out));
    } else {
      std::cerr << "not acquired: lock " << a.name << " is held"
                << (now && now->has_value() ? " by " + (*now)->holder : std::string()) << "\n";
    }
    return kExitFailed;
  });
}

// The holder's current handle, or an Error (NotFound) saying why there is none.
Result<coord::LockHandle> find_handle(coord::DistributedLock& lock, const LockArgs& a) {
  auto info = lock.holder();
  if (!info) return std::unexpected(info.error());
  if (!info->has_value()) return make_error(ErrorCode::kNotFound, fmt::format("lock '{}' is not held", a.name));
  const auto& i = **info;
  if (i.holder != a.holder || (a.token != 0 && i.fencing_token != a.token)) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("lock '{}' is held by '{}' with fencing token {}, not by '{}'{}", a.name, i.holder,
                                  i.fencing_token, a.holder, a.token != 0 ? fmt::format(" with {}", a.token) : ""));
  }
  return coord::LockHandle{a.name, i.holder, i.fencing_token, i.lease_id};
}

int run_lock_release_or_renew(const Context& ctx, const LockArgs& a, bool is_release) {
  return with_client(ctx, [&](client::Client& c) {
    coord::DistributedLock lock(c, a.name);
    auto h = find_handle(lock, a);
    if (!h) return fail(ctx, h.error());
    auto s = is_release ? lock.release(*h) : lock.renew(*h);
    if (!s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"lock", a.name}, {is_release ? "released" : "renewed", true}, {"holder", h->holder},
                     {"fencing_token", h->fencing_token}, {"lease_id", h->lease_id}});
    } else {
      std::cout << fmt::format("{} lock {} (holder {}, fencing token {})\n", is_release ? "released" : "renewed",
                               a.name, h->holder, h->fencing_token);
    }
    return kExitOk;
  });
}

int run_lock_release(const Context& ctx, const LockArgs& a) { return run_lock_release_or_renew(ctx, a, true); }
int run_lock_renew(const Context& ctx, const LockArgs& a) { return run_lock_release_or_renew(ctx, a, false); }

int run_lock_status(const Context& ctx, const LockArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto info = coord::DistributedLock(c, a.name).holder();
    if (!info) return fail(ctx, info.error());
    if (ctx.is_json) {
      nlohmann::json out = {{"lock", a.name}, {"is_held", info->has_value()}};
      if (info->has_value()) out["current"] = lock_info_json(**info);
      print_json_ok(std::move(out));
    } else if (info->has_value()) {
      std::cout << fmt::format("held by {}: fencing token {}, lease {}\n", (*info)->holder, (*info)->fencing_token,
                               (*info)->lease_id);
    } else {
      std::cout << "free\n";
    }
    return kExitOk;
  });
}

struct ElectionArgs {
  std::string name;
  std::string candidate;
  std::string value;
  std::string value_file;
  uint64_t ttl_s = 30;
  uint64_t wait_ms = 0;
};

nlohmann::json leader_json(const coord::LeaderInfo& l) {
  nlohmann::json j = {{"candidate", l.candidate}, {"fencing_token", l.fencing_token}, {"lease_id", l.lease_id}};
  set_bytes(j, "value", l.value);
  return j;
}

int run_campaign(const Context& ctx, const ElectionArgs& a) {
  std::string value = a.value;
  if (!a.value_file.empty()) {
    // The election refuses a value over its own (smaller) limit before anything is sent.
    auto bytes = read_payload(PayloadSource{"", false, a.value_file}, kValueLimit, "leader value");
    if (!bytes) return payload_error(ctx, bytes.error());
    value = std::move(*bytes);
  }
  return with_client(ctx, [&](client::Client& c) {
    coord::LeaderElection e(c, a.name, a.candidate, a.ttl_s * 1000);
    if (a.wait_ms == 0) {
      auto won = e.campaign(value, steady_now_ms());
      if (!won) return fail(ctx, won.error());
    } else {
      const uint64_t deadline = steady_now_ms() + a.wait_ms;
      auto s = e.campaign_until(value, deadline, real_waiter());
      if (!s && !is_wait_expired(s.error(), deadline)) return fail(ctx, s.error());
    }
    auto leader = e.leader();
    if (!leader) return fail(ctx, leader.error());
    const bool is_elected = e.is_leader();
    if (ctx.is_json) {
      nlohmann::json out = {{"election", a.name}, {"elected", is_elected}};
      if (leader->has_value()) out["leader"] = leader_json(**leader);
      print_json_ok(std::move(out));
    } else if (is_elected) {
      std::cout << fmt::format("elected leader of {}: fencing token {}, lease {} (ttl {} s; keep it with "
                               "'lease keepalive', give it up with 'election resign')\n",
                               a.name, e.fencing_token(), leader->has_value() ? (*leader)->lease_id : 0, a.ttl_s);
    } else {
      std::cerr << "not elected: " << a.name << " is led by "
                << (leader->has_value() ? (*leader)->candidate : std::string("nobody (try again)")) << "\n";
    }
    return is_elected ? kExitOk : kExitFailed;
  });
}

int run_resign(const Context& ctx, const ElectionArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::LeaderElection e(c, a.name, a.candidate, a.ttl_s * 1000);
    auto leader = e.leader();
    if (!leader) return fail(ctx, leader.error());
    if (!leader->has_value() || (*leader)->candidate != a.candidate) {
      return fail(ctx, Error(ErrorCode::kNotFound, fmt::format("'{}' does not lead election '{}'", a.candidate, a.name)));
    }
    // The leader record lives on its own lease (granted by campaign); ending the lease deletes
    // it, which is exactly what resigning does. A lease that already ran out means the
    // leadership had lapsed anyway.
    auto s = kv::lease_revoke(c, (*leader)->lease_id);
    if (!s) {
      if (s.error().code() != ErrorCode::kLeaseNotFound) return fail(ctx, s.error());
      return fail(ctx, Error(ErrorCode::kNotFound, fmt::format("the leadership of '{}' had already lapsed", a.candidate)));
    }
    if (ctx.is_json) {
      print_json_ok({{"election", a.name}, {"resigned", true}, {"fencing_token", (*leader)->fencing_token}});
    } else {
      std::cout << a.candidate << " resigned from " << a.name << "\n";
    }
    return kExitOk;
  });
}

int run_leader(const Context& ctx, const ElectionArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    // The candidate id only matters for campaigning; any valid id will do for observing.
    auto leader = coord::LeaderElection(c, a.name, "observer", a.ttl_s * 1000).leader();
    if (!leader) return fail(ctx, leader.error());
    if (ctx.is_json) {
      nlohmann::json out = {{"election", a.name}, {"has_leader", leader->has_value()}};
      if (leader->has_value()) out["leader"] = leader_json(**leader);
      print_json_ok(std::move(out));
    } else if (leader->has_value()) {
      std::cout << fmt::format("{}\tfencing token {}\t{}\n", (*leader)->candidate, (*leader)->fencing_token,
                               display_bytes((*leader)->value));
    } else {
      std::cerr << "no leader\n";
    }
    return leader->has_value() ? kExitOk : kExitFailed;
  });
}

}  // namespace

void add_lock_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* lock = app.add_subcommand("lock", "Distributed mutual-exclusion locks with fencing tokens");
  lock->require_subcommand(1);
  lock->footer(
      "The fencing token strictly increases with every acquisition: pass it along with every\n"
      "write the lock protects, so the resource can refuse a holder whose lock already expired.");

  auto acq = std::make_shared<LockArgs>();
  auto* acq_cmd = lock->add_subcommand("acquire", "Take a lock and print its fencing token");
  acq_cmd->add_option("name", acq->name, "Lock name")->required();
  acq_cmd->add_option("--holder", acq->holder, "Who holds it (release and renew name it again)")->required();
  add_ttl_option(acq_cmd, acq->ttl_s, "How long the lock lasts without renewal");
  add_wait_option(acq_cmd, acq->wait_ms, "while another holder has it");
  acq_cmd->footer("Exit 1 if another holder has it (after --wait-ms).\n"
                  "Example:\n  aspen-cli lock acquire jobs/reindex --holder worker-7 --ttl-s 30 --wait-ms 5000");
  set_action(acq_cmd, ctx, action, acq, &run_lock_acquire);

  auto rel = std::make_shared<LockArgs>();
  auto* rel_cmd = lock->add_subcommand("release", "Release a lock you hold");
  rel_cmd->add_option("name", rel->name, "Lock name")->required();
  rel_cmd->add_option("--holder", rel->holder, "The holder id it was acquired with")->required();
  rel_cmd->add_option("--token", rel->token, "Only if it still has this fencing token");
  rel_cmd->footer("Exit 1 if the holder does not hold it (expired, or taken over).\n"
                  "Example:\n  aspen-cli lock release jobs/reindex --holder worker-7");
  set_action(rel_cmd, ctx, action, rel, &run_lock_release);

  auto ren = std::make_shared<LockArgs>();
  auto* ren_cmd = lock->add_subcommand("renew", "Restart a held lock's TTL");
  ren_cmd->add_option("name", ren->name, "Lock name")->required();
  ren_cmd->add_option("--holder", ren->holder, "The holder id it was acquired with")->required();
  ren_cmd->add_option("--token", ren->token, "Only if it still has this fencing token");
  ren_cmd->footer("Exit 1 if the lock was lost.\nExample:\n  aspen-cli lock renew jobs/reindex --holder worker-7");
  set_action(ren_cmd, ctx, action, ren, &run_lock_renew);

  auto st = std::make_shared<LockArgs>();
  auto* st_cmd = lock->add_subcommand("status", "Show who holds a lock");
  st_cmd->add_option("name", st->name, "Lock name")->required();
  st_cmd->footer("Example:\n  aspen-cli lock status jobs/reindex --json");
  set_action(st_cmd, ctx, action, st, &run_lock_status);
}

void add_election_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* el = app.add_subcommand("election", "Leader election: one leader per name, with a fencing token");
  el->require_subcommand(1);

  auto camp = std::make_shared<ElectionArgs>();
  auto* camp_cmd = el->add_subcommand("campaign", "Try to become the leader");
  camp_cmd->add_option("name", camp->name, "Election name")->required();
  camp_cmd->add_option("--candidate", camp->candidate, "This candidate's id")->required();
  auto* value_opt = camp_cmd->add_option("--value", camp->value, "What the leader advertises (an address, say)");
  auto* value_file_opt =
      camp_cmd->add_option("--value-file", camp->value_file, "Advertise this file's bytes instead ('-': stdin)")
          ->type_name(kPathTypeName);
  value_opt->excludes(value_file_opt);
  add_ttl_option(camp_cmd, camp->ttl_s, "How long leadership lasts without renewal");
  add_wait_option(camp_cmd, camp->wait_ms, "while another candidate leads");
  camp_cmd->footer(
      "Exit 0 when elected, 1 when another candidate leads. Leadership ends when its lease\n"
      "lapses: renew it with 'aspen-cli lease keepalive LEASE_ID'.\n"
      "Example:\n  aspen-cli election campaign scheduler --candidate node-3 --value 10.0.0.3:7000 --ttl-s 10");
  set_action(camp_cmd, ctx, action, camp, &run_campaign);

  auto res = std::make_shared<ElectionArgs>();
  auto* res_cmd = el->add_subcommand("resign", "Give up leadership now");
  res_cmd->add_option("name", res->name, "Election name")->required();
  res_cmd->add_option("--candidate", res->candidate, "The leader's candidate id")->required();
  res_cmd->footer("Exit 1 if that candidate is not the leader.\n"
                  "Example:\n  aspen-cli election resign scheduler --candidate node-3");
  set_action(res_cmd, ctx, action, res, &run_resign);

  auto lead = std::make_shared<ElectionArgs>();
  auto* lead_cmd = el->add_subcommand("leader", "Show the current leader");
  lead_cmd->add_option("name", lead->name, "Election name")->required();
  lead_cmd->footer("Exit 1 when nobody leads.\nExample:\n  aspen-cli election leader scheduler --json");
  set_action(lead_cmd, ctx, action, lead, &run_leader);
}

}  // namespace aspen::cli
