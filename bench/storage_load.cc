// aspen-storage-bench: what the storage layer costs on this machine's disk.
//
//   build/aspen-storage-bench [--dir DIR] [--seconds S] [--keys N]
//
// 1. fdatasync latency of a 4 KiB write: the physical floor for a durable commit.
// 2. Single-writer commit latency: one LmdbStore::write() of one 256-byte entry, appended
//    and applied, per operation.
// 3. Group commit: N writer threads each submit one 256-byte entry and wait for it to be
//    durable; one storage thread takes everything queued while the previous transaction
//    was syncing and commits it as the next transaction (what the node's storage thread
//    does with Raft Readys). Reports ops/s, latency and the average batch size.
// 4. Apply throughput loading N keys (1,000 entries per transaction), point-read latency
//    with N keys, and the data file size.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "kv/commands.h"
#include "storage/lmdb_store.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace pb = aspen::raftpb;
using aspen::storage::LmdbStore;
using aspen::storage::WriteBatch;

double us_since(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

struct Percentiles {
  double p50 = 0, p99 = 0, p999 = 0;
};

Percentiles percentiles(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]; };
  return {at(0.50), at(0.99), at(0.999)};
}

pb::Entry make_entry(uint64_t index, const std::string& key, const std::string& value) {
  aspen::kvpb::Command cmd;
  cmd.set_timestamp_ms(1);
  cmd.mutable_put()->set_key(key);
  cmd.mutable_put()->set_value(value);
  pb::Entry e;
  e.set_index(index);
  e.set_term(1);
  e.set_data(cmd.SerializeAsString());
  return e;
}

void bench_fdatasync(const std::string& dir) {
  std::string path = dir + "/fsync-probe";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  std::string block(4096, 'x');
  std::vector<double> lat;
  for (int i = 0; i < 2000; ++i) {
    auto t = Clock::now();
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>((i % 64) * 4096)) < 0 || ::fdatasync(fd) != 0) {
      std::perror("fdatasync probe");
      break;
    }
    lat.push_back(us_since(t));
  }
  ::close(fd);
  ::unlink(path.c_str());
  auto p = percentiles(lat);
  std::printf("fdatasync (4 KiB write):        p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us\n", p.p50, p.p99, p.p999);
}

std::unique_ptr<LmdbStore> fresh_store(const std::string& dir) {
  std::filesystem::remove_all(dir);
  auto s = LmdbStore::open(aspen::storage::LmdbOptions{dir, uint64_t{16} << 30});
  if (!s) {
    std::fprintf(stderr, "open: %s\n", s.error().to_string().c_str());
    std::exit(1);
  }
  pb::ConfState cs;
  cs.add_voters(1);
  (void)(*s)->bootstrap(cs);
  return std::move(*s);
}

// Writes one batch of entries [next, next+n) with hard state and apply, as a Ready would.
bool write_batch(LmdbStore& s, std::vector<pb::Entry>& ents) {
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(ents.back().index());
  WriteBatch b;
  b.entries = &ents;
  b.hard_state = &hs;
  b.committed = &ents;
  return s.write(b).has_value();
}

void bench_single_writer(const std::string& dir) {
  auto s = fresh_store(dir);
  std::string value(256, 'v');
  std::vector<double> lat;
  uint64_t index = 2;
  for (int i = 0; i < 2000; ++i, ++index) {
    std::vector<pb::Entry> ents{make_entry(index, "key" + std::to_string(i % 1000), value)};
    auto t = Clock::now();
    if (!write_batch(*s, ents)) std::exit(1);
    lat.push_back(us_since(t));
  }
  auto p = percentiles(lat);
  std::printf("single-writer commit (256 B):   p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us\n", p.p50, p.p99, p.p999);
}

struct Request {
  std::string key;
  Clock::time_point submitted;
  bool is_done = false;
};

void bench_group_commit(const std::string& dir, int writers, double seconds) {
  auto s = fresh_store(dir);
  std::mutex mu;
  std::condition_variable cv_work;
  std::condition_variable cv_done;
  std::deque<Request*> queue;
  bool is_stopping = false;
  std::vector<double> lat;
  uint64_t batches = 0;
  uint64_t ops = 0;
  std::string value(256, 'v');

  std::thread committer([&] {
    uint64_t index = 2;
    while (true) {
      std::vector<Request*> batch;
      {
        std::unique_lock lock(mu);
        cv_work.wait(lock, [&] { return is_stopping || !queue.empty(); });
        if (queue.empty()) return;
        batch.assign(queue.begin(), queue.end());
        queue.clear();
      }
      std::vector<pb::Entry> ents;
      ents.reserve(batch.size());
      for (auto* r : batch) ents.push_back(make_entry(index++, r->key, value));
      if (!write_batch(*s, ents)) std::exit(1);
      {
        std::lock_guard lock(mu);
        ++batches;
        for (auto* r : batch) {
          lat.push_back(us_since(r->submitted));
          r->is_done = true;
        }
        ops += batch.size();
      }
      cv_done.notify_all();
    }
  });
  auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      aspen::Rng rng(static_cast<uint64_t>(w) + 1);
      while (Clock::now() < deadline) {
        Request r{"key" + std::to_string(rng.uniform(100000)), Clock::now(), false};
        {
          std::lock_guard lock(mu);
          queue.push_back(&r);
        }
        cv_work.notify_one();
        std::unique_lock lock(mu);
        cv_done.wait(lock, [&] { return r.is_done; });
      }
    });
  }
  auto started = Clock::now();
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  {
    std::lock_guard lock(mu);
    is_stopping = true;
  }
  cv_work.notify_one();
  committer.join();
  auto p = percentiles(lat);
  std::printf("group commit, %3d writers:      %8.0f ops/s  p50 %7.0f us  p99 %7.0f us  avg batch %6.1f\n", writers,
              static_cast<double>(ops) / elapsed, p.p50, p.p99,
              batches ? static_cast<double>(ops) / static_cast<double>(batches) : 0.0);
}

void bench_bulk(const std::string& dir, uint64_t keys) {
  auto s = fresh_store(dir);
  std::string value(256, 'v');
  auto t = Clock::now();
  uint64_t index = 2;
  for (uint64_t k = 0; k < keys; k += 1000) {
    std::vector<pb::Entry> ents;
    for (uint64_t i = k; i < std::min(keys, k + 1000); ++i) {
      char key[32];
      std::snprintf(key, sizeof(key), "user/%010llu", static_cast<unsigned long long>(i * 2654435761ULL % keys));
      ents.push_back(make_entry(index++, key, value));
    }
    if (!write_batch(*s, ents)) std::exit(1);
    // Compact the log as a node does after snapshots, so the file holds the data, not
    // a million log records.
    if ((k / 1000) % 100 == 99) (void)s->compact(index - 1000);
  }
  double secs = us_since(t) / 1e6;
  std::printf("apply %llu keys (1,000/txn):   %8.0f entries/s  (%.1f s)\n", static_cast<unsigned long long>(keys),
              static_cast<double>(keys) / secs, secs);
  std::mt19937_64 rng(7);
  std::vector<double> lat;
  for (int i = 0; i < 100000; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "user/%010llu", static_cast<unsigned long long>(rng() % keys));
    auto req = aspen::kv::key_range(key);
    auto t0 = Clock::now();
    auto r = s->range(req);
    lat.push_back(us_since(t0));
    if (!r || r->kvs_size() != 1) {
      std::fprintf(stderr, "point read of %s failed\n", key);
      std::exit(1);
    }
  }
  auto p = percentiles(lat);
  std::printf("point read with %llu keys:     p50 %7.1f us  p99 %7.1f us\n", static_cast<unsigned long long>(keys), p.p50,
              p.p99);
  std::printf("data file with %llu keys:      %.1f MB (%.0f bytes/key)\n", static_cast<unsigned long long>(keys),
              static_cast<double>(s->file_size_bytes()) / 1e6,
              static_cast<double>(s->file_size_bytes()) / static_cast<double>(keys));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "./aspen-storage-bench";
  double seconds = 3;
  uint64_t keys = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--dir") dir = argv[i + 1];
    else if (flag == "--seconds") seconds = std::stod(argv[i + 1]);
    else if (flag == "--keys") keys = std::stoull(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: aspen-storage-bench [--dir DIR] [--seconds S] [--keys N]\n");
      return 64;
    }
  }
  std::filesystem::create_directories(dir);
  bench_fdatasync(dir);
  bench_single_writer(dir + "/single");
  for (int writers : {1, 16, 64, 256}) bench_group_commit(dir + "/group", writers, seconds);
  bench_bulk(dir + "/bulk", keys);
  std::filesystem::remove_all(dir);
  return 0;
}
