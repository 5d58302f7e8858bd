// Raw throughput of the sans-I/O Raft core: a 3-node cluster in one thread with no I/O at all.
// Storage is MemoryLogStorage, messages are handed over in-process, and the state machine is
// a counter. What is measured is the CPU cost of consensus itself (message handling, log
// bookkeeping, protobuf copies) per committed entry.
//
//   build/aspen_bench --benchmark_filter=RaftCore
//
// Reported: items_per_second = entries committed (and applied on the leader) per second, for
// 1 and for 64 proposals in flight, 256-byte entries.
#include <benchmark/benchmark.h>

#include <deque>
#include <memory>
#include <vector>

#include "core/assert.h"
#include "raft/raft.h"

namespace {

namespace pb = aspen::raftpb;
using aspen::raft::MemoryLogStorage;
using aspen::raft::RaftConfig;
using aspen::raft::RaftCore;
using aspen::raft::Ready;

class InMemoryCluster {
 public:
  explicit InMemoryCluster(size_t n) {
    pb::ConfState cs;
    for (size_t i = 1; i <= n; ++i) cs.add_voters(i);
    for (size_t i = 1; i <= n; ++i) {
      auto storage = std::make_unique<MemoryLogStorage>();
      pb::Snapshot boot;
      boot.mutable_metadata()->set_index(1);
      boot.mutable_metadata()->set_term(1);
      *boot.mutable_metadata()->mutable_conf_state() = cs;
      ASPEN_ASSERT(storage->apply_snapshot(boot).has_value());
      pb::HardState hs;
      hs.set_term(1);
      hs.set_commit(1);
      storage->set_hard_state(hs);
      RaftConfig cfg;
      cfg.id = i;
      cfg.applied = 1;
      cfg.seed = i;
      auto core = RaftCore::create(cfg, storage.get());
      ASPEN_ASSERT(core.has_value());
      storages_.push_back(std::move(storage));
      cores_.push_back(std::move(*core));
    }
    cores_[0]->campaign();
    run_until_quiet();
    ASPEN_ASSERT(cores_[0]->is_leader());
  }

  RaftCore& leader() { return *cores_[0]; }

  // Handles every node's Ready (persist, route, apply, advance) until nothing is left to do.
  // Returns the number of entries the leader applied.
  uint64_t run_until_quiet() {
    uint64_t applied_on_leader = 0;
    bool is_busy = true;
    while (is_busy) {
      is_busy = false;
      for (size_t i = 0; i < cores_.size(); ++i) {
        if (!cores_[i]->has_ready()) continue;
        is_busy = true;
        Ready rd = cores_[i]->ready();
        if (rd.snapshot) ASPEN_ASSERT(storages_[i]->apply_snapshot(*rd.snapshot).has_value());
        ASPEN_ASSERT(storages_[i]->append(rd.entries).has_value());
        if (rd.hard_state) storages_[i]->set_hard_state(*rd.hard_state);
        for (auto& m : rd.messages) inbox_.push_back(std::move(m));
        if (i == 0) {
          for (const auto& e : rd.committed_entries) applied_on_leader += e.data().empty() ? 0 : 1;
        }
        cores_[i]->advance(rd);
        // Keep memory bounded over millions of entries, as a real node's compaction does.
        auto& st = *storages_[i];
        if (st.last_index() > st.first_index() + 100000) {
          ASPEN_ASSERT(st.compact(st.last_index() - 1000).has_value());
        }
      }
      while (!inbox_.empty()) {
        is_busy = true;
        pb::Message m = std::move(inbox_.front());
        inbox_.pop_front();
        (void)cores_[m.to() - 1]->step(m);
      }
    }
    return applied_on_leader;
  }

 private:
  std::vector<std::unique_ptr<MemoryLogStorage>> storages_;
  std::vector<std::unique_ptr<RaftCore>> cores_;
  std::deque<pb::Message> inbox_;
};

void BM_RaftCoreCommit(benchmark::State& state) {
  const auto in_flight = static_cast<size_t>(state.range(0));
  const std::string payload(256, 'x');
  InMemoryCluster cluster(3);
  uint64_t committed = 0;
  for (auto _ : state) {
    // One round: `in_flight` proposals are outstanding together, then the cluster runs
    // until all of them are committed and applied (they share Readys and messages, which is
    // what group commit and pipelining buy).
    for (size_t i = 0; i < in_flight; ++i) {
      auto s = cluster.leader().propose(payload);
      ASPEN_ASSERT(s.has_value());
    }
    uint64_t done = cluster.run_until_quiet();
    ASPEN_ASSERT(done == in_flight);
    committed += done;
  }
  state.SetItemsProcessed(static_cast<int64_t>(committed));
  state.counters["entries_per_s"] =
      benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RaftCoreCommit)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond);

}  // namespace
