// aspen-cli semaphore acquire|release|status and rwlock read|write|release|status: holder
// queues of waiter keys, each on its holder's lease (coord/waiter_queue.h).
#include <fmt/format.h>

#include <iostream>

#include "cmd_coord.h"
#include "coord/rwlock.h"
#include "coord/semaphore.h"

namespace aspen::cli {

namespace {

struct SemArgs {
  std::string name;
  uint64_t permits = 0;
  std::string holder;
  uint64_t count = 1;
  uint64_t ttl_s = 30;
  uint64_t wait_ms = 0;
  uint64_t lease_id = 0;
};

int run_sem_acquire(const Context& ctx, const SemArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::DistributedSemaphore sem(c, a.name, a.permits);
    Result<std::optional<coord::SemaphorePermit>> r = std::optional<coord::SemaphorePermit>{};
    if (a.wait_ms == 0) {
      r = sem.try_acquire(a.holder, a.count, a.ttl_s * 1000);
    } else {
      const uint64_t deadline = steady_now_ms() + a.wait_ms;
      auto p = sem.try_acquire_until(a.holder, a.count, a.ttl_s * 1000, deadline, real_waiter());
      if (p) {
        r = std::optional<coord::SemaphorePermit>(std::move(*p));
      } else if (!is_wait_expired(p.error(), deadline)) {
        r = std::unexpected(p.error());
      }
    }
    if (!r) return fail(ctx, r.error());
    if (!r->has_value()) {
      if (ctx.is_json) {
        print_json_ok({{"semaphore", a.name}, {"acquired", false}});
      } else {
        std::cerr << "not acquired: fewer than " << a.count << " of " << a.permits << " permits are free\n";
      }
      return kExitFailed;
    }
    const auto& p = **r;
    if (ctx.is_json) {
      print_json_ok({{"semaphore", a.name}, {"acquired", true}, {"holder", p.holder}, {"count", p.count},
                     {"lease_id", p.lease_id}, {"ttl_s", a.ttl_s}});
    } else {
      std::cout << fmt::format("acquired {} of {} permits of {} as {}: lease {} (release with --lease {})\n", p.count,
                               a.permits, a.name, p.holder, p.lease_id, p.lease_id);
    }
    return kExitOk;
  });
}

int run_sem_release(const Context& ctx, const SemArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::DistributedSemaphore sem(c, a.name, a.permits);
    auto s = sem.release(coord::SemaphorePermit{a.name, a.holder, a.count, a.lease_id});
    if (!s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"semaphore", a.name}, {"released", true}, {"holder", a.holder}});
    } else {
      std::cout << "released " << a.holder << "'s permits of " << a.name << "\n";
    }
    return kExitOk;
  });
}

int run_sem_status(const Context& ctx, const SemArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = coord::DistributedSemaphore(c, a.name, a.permits).available();
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"semaphore", a.name}, {"permits", a.permits}, {"available", *r}});
    } else {
      std::cout << *r << " of " << a.permits << " permits free\n";
    }
    return kExitOk;
  });
}

struct RWArgs {
  std::string name;
  std::string holder;
  uint64_t ttl_s = 30;
  uint64_t wait_ms = 0;
};

const char* mode_name(coord::RWMode m) { return m == coord::RWMode::kRead ? "read" : "write"; }

int run_rw_acquire(const Context& ctx, const RWArgs& a, coord::RWMode mode) {
  return with_client(ctx, [&](client::Client& c) {
    coord::DistributedRWLock rw(c, a.name);
    Result<std::optional<coord::RWLockHandle>> r = std::optional<coord::RWLockHandle>{};
    if (a.wait_ms == 0) {
      r = rw.try_acquire(a.holder, mode, a.ttl_s * 1000);
    } else {
      const uint64_t deadline = steady_now_ms() + a.wait_ms;
      auto h = rw.try_acquire_until(a.holder, mode, a.ttl_s * 1000, deadline, real_waiter());
      if (h) {
        r = std::optional<coord::RWLockHandle>(std::move(*h));
      } else if (!is_wait_expired(h.error(), deadline)) {
        r = std::unexpected(h.error());
      }
    }
    if (!r) return fail(ctx, r.error());
    if (!r->has_value()) {
      if (ctx.is_json) {
        print_json_ok({{"rwlock", a.name}, {"acquired", false}, {"mode", mode_name(mode)}});
      } else {
        std::cerr << "not acquired: " << a.name << " is "
                  << (mode == coord::RWMode::kRead ? "write-locked or a writer is waiting" : "held") << "\n";
      }
      return kExitFailed;
    }
    const auto& h = **r;
    if (ctx.is_json) {
      print_json_ok({{"rwlock", a.name}, {"acquired", true}, {"mode", mode_name(mode)}, {"holder", h.holder},
                     {"fencing_token", h.fencing_token}, {"lease_id", h.lease_id}, {"ttl_s", a.ttl_s}});
    } else {
      std::cout << fmt::format("{}-locked {} as {}: fencing token {}, lease {} (ttl {} s)\n", mode_name(mode), a.name,
                               h.holder, h.fencing_token, h.lease_id, a.ttl_s);
    }
    return kExitOk;
  });
}

int run_rw_read(const Context& ctx, const RWArgs& a) { return run_rw_acquire(ctx, a, coord::RWMode::kRead); }
int run_rw_write(const Context& ctx, const RWArgs& a) { return run_rw_acquire(ctx, a, coord::RWMode::kWrite); }

int run_rw_release(const Context& ctx, const RWArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::DistributedRWLock rw(c, a.name);
    auto st = rw.state();
    if (!st) return fail(ctx, st.error());
    // The stored state lists every holder with its lease: find this one's role and lease.
    std::optional<coord::RWLockHandle> handle;
    auto find = [&](const std::vector<coord::LeasedHolder>& list, coord::RWMode mode) {
      for (const auto& h : list) {
        if (h.id == a.holder && !handle) handle = coord::RWLockHandle{a.name, h.id, mode, h.fencing_token, h.lease_id};
      }
    };
    find(st->writer, coord::RWMode::kWrite);
    find(st->readers, coord::RWMode::kRead);
    find(st->waiting_writers, coord::RWMode::kWrite);
    find(st->waiting_readers, coord::RWMode::kRead);
    if (!handle) {
      return fail(ctx, Error(ErrorCode::kNotFound, fmt::format("'{}' does not hold rwlock '{}'", a.holder, a.name)));
    }
    if (auto s = rw.release(*handle); !s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"rwlock", a.name}, {"released", true}, {"holder", a.holder}, {"mode", mode_name(handle->mode)}});
    } else {
      std::cout << "released " << a.name << " (" << a.holder << ")\n";
    }
    return kExitOk;
  });
}

nlohmann::json holder_ids(const std::vector<coord::LeasedHolder>& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : list) out.push_back({{"holder", h.id}, {"lease_id", h.lease_id}});
  return out;
}

int run_rw_status(const Context& ctx, const RWArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto st = coord::DistributedRWLock(c, a.name).state();
    if (!st) return fail(ctx, st.error());
    if (ctx.is_json) {
      print_json_ok({{"rwlock", a.name}, {"writer", holder_ids(st->writer)}, {"readers", holder_ids(st->readers)},
                     {"waiting_writers", holder_ids(st->waiting_writers)},
                     {"waiting_readers", holder_ids(st->waiting_readers)}});
      return kExitOk;
    }
    auto names = [](const std::vector<coord::LeasedHolder>& list) {
      std::string s;
      for (const auto& h : list) s += (s.empty() ? "" : ", ") + h.id;
      return s.empty() ? std::string("-") : s;
    };
    std::cout << "writer:          " << names(st->writer) << "\nreaders:         " << names(st->readers)
              << "\nwaiting writers: " << names(st->waiting_writers) << "\n";
    return kExitOk;
  });
}

}  // namespace

void add_semaphore_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* sem = app.add_subcommand("semaphore", "Counting semaphores: at most --permits units held at once");
  sem->require_subcommand(1);
  sem->footer("Every command names the semaphore's size with --permits; a size that differs from\n"
              "the stored one is refused (exit 4).");

  auto acq = std::make_shared<SemArgs>();
  auto* acq_cmd = sem->add_subcommand("acquire", "Take permits; prints the lease that release needs");
  acq_cmd->add_option("name", acq->name, "Semaphore name")->required();
  acq_cmd->add_option("--permits", acq->permits, "The semaphore's size")->required();
  acq_cmd->add_option("--holder", acq->holder, "Who takes them")->required();
  acq_cmd->add_option("--count", acq->count, "How many permits")->capture_default_str();
  add_ttl_option(acq_cmd, acq->ttl_s, "How long the permits last without renewal");
  add_wait_option(acq_cmd, acq->wait_ms, "while too few permits are free");
  acq_cmd->footer("Exit 1 if too few permits are free. Renew with 'aspen-cli lease keepalive LEASE_ID'.\n"
                  "Example:\n  aspen-cli semaphore acquire gpu-pool --permits 4 --holder job-9 --ttl-s 60");
  set_action(acq_cmd, ctx, action, acq, &run_sem_acquire);

  auto rel = std::make_shared<SemArgs>();
  auto* rel_cmd = sem->add_subcommand("release", "Give permits back");
  rel_cmd->add_option("name", rel->name, "Semaphore name")->required();
  rel_cmd->add_option("--permits", rel->permits, "The semaphore's size")->required();
  rel_cmd->add_option("--holder", rel->holder, "Who holds them")->required();
  rel_cmd->add_option("--lease", rel->lease_id, "The lease id 'acquire' printed")->required();
  rel_cmd->footer("Exit 1 if the holder does not hold permits with that lease (its TTL lapsed).\n"
                  "Example:\n  aspen-cli semaphore release gpu-pool --permits 4 --holder job-9 --lease 7781");
  set_action(rel_cmd, ctx, action, rel, &run_sem_release);

  auto st = std::make_shared<SemArgs>();
  auto* st_cmd = sem->add_subcommand("status", "Show how many permits are free");
  st_cmd->add_option("name", st->name, "Semaphore name")->required();
  st_cmd->add_option("--permits", st->permits, "The semaphore's size")->required();
  st_cmd->footer("Example:\n  aspen-cli semaphore status gpu-pool --permits 4");
  set_action(st_cmd, ctx, action, st, &run_sem_status);
}

void add_rwlock_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* rw = app.add_subcommand("rwlock", "Reader-writer locks: many readers or one writer");
  rw->require_subcommand(1);
  rw->footer("Readers and writers are served in arrival order (--wait-ms waits its turn): a reader\n"
             "that arrives while a writer waits waits behind it (a one-shot read is refused), so\n"
             "writers are not starved.");

  for (const bool is_write : {false, true}) {
    auto args = std::make_shared<RWArgs>();
    auto* cmd = rw->add_subcommand(is_write ? "write" : "read",
                                   is_write ? "Take the lock exclusively" : "Take the lock shared with other readers");
    cmd->add_option("name", args->name, "Lock name")->required();
    cmd->add_option("--holder", args->holder, "Who holds it (release names it again)")->required();
    add_ttl_option(cmd, args->ttl_s, "How long the lock lasts without renewal");
    add_wait_option(cmd, args->wait_ms, "while the lock is not available");
    cmd->footer(is_write ? "Exit 1 if not acquired. Prints a fencing token.\n"
                           "Example:\n  aspen-cli rwlock write catalog --holder w-1 --wait-ms 10000"
                         : "Exit 1 if not acquired.\nExample:\n  aspen-cli rwlock read catalog --holder r-1");
    set_action(cmd, ctx, action, args, is_write ? &run_rw_write : &run_rw_read);
  }

  auto rel = std::make_shared<RWArgs>();
  auto* rel_cmd = rw->add_subcommand("release", "Release a read or write hold (or leave the queue)");
  rel_cmd->add_option("name", rel->name, "Lock name")->required();
  rel_cmd->add_option("--holder", rel->holder, "The holder id it was taken with")->required();
  rel_cmd->footer("Exit 1 if the holder does not hold it (its TTL lapsed).\n"
                  "Example:\n  aspen-cli rwlock release catalog --holder w-1");
  set_action(rel_cmd, ctx, action, rel, &run_rw_release);

  auto st = std::make_shared<RWArgs>();
  auto* st_cmd = rw->add_subcommand("status", "Show the writer, readers and waiting writers");
  st_cmd->add_option("name", st->name, "Lock name")->required();
  st_cmd->footer("Holders whose TTL lapsed are listed until the next acquisition prunes them.\n"
                 "Example:\n  aspen-cli rwlock status catalog --json");
  set_action(st_cmd, ctx, action, st, &run_rw_status);
}

}  // namespace aspen::cli
