// LmdbStore specifics: durability across reopen and kill -9, long keys, a full map, and
// corrupted files.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <lmdb.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>

#include "core/limits.h"
#include "storage/lmdb_store.h"
#include "store_test_util.h"

namespace aspen::storage {
namespace {

using testing::append_and_apply;
using testing::put_entry;
using testing::TempDir;
using testing::value_of;
using testing::voters;

std::unique_ptr<LmdbStore> open_store(const std::string& dir, uint64_t map_size = uint64_t{256} << 20) {
  auto s = LmdbStore::open(LmdbOptions{dir, map_size});
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
  return s ? std::move(*s) : nullptr;
}

TEST(LmdbStore, ReopenRecoversLogHardStateMembershipAndData) {
  TempDir dir;
  {
    auto s = open_store(dir.path() + "/db");
    ASSERT_TRUE(s->bootstrap(voters({1, 2, 3})).has_value());
    ASSERT_TRUE(append_and_apply(*s, 2, 50, 4).has_value());
    ASSERT_TRUE(s->compact(10).has_value());
  }
  auto s = open_store(dir.path() + "/db");
  EXPECT_EQ(s->last_index(), 50u);
  EXPECT_EQ(s->first_index(), 11u);
  EXPECT_EQ(s->applied_index(), 50u);
  EXPECT_EQ(s->initial_state().hard_state.term(), 4u);
  EXPECT_EQ(s->initial_state().hard_state.commit(), 50u);
  EXPECT_EQ(s->conf_state().voters_size(), 3);
  EXPECT_EQ(value_of(*s, "k42"), "v42");
  EXPECT_EQ(*s->term(10), 4u);
}

// The largest applied stamp survives a reopen with the log compacted away: it is the floor a
// restarted node stamps above (node/node_hlc.h).
TEST(LmdbStore, ReopenRecoversTheAppliedStampWithTheLogCompacted) {
  TempDir dir;
  const HlcTimestamp t{1'800'000'000'000, 3, 2};
  {
    auto s = open_store(dir.path() + "/db");
    ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
    std::vector<pb::Entry> ents{testing::with_hlc(testing::put_entry(2, 2, "k", "v"), t),
                                testing::put_entry(3, 2, "k", "w")};
    WriteBatch wb;
    wb.entries = &ents;
    wb.committed = &ents;
    ASSERT_TRUE(s->write(wb).has_value());
    ASSERT_TRUE(s->compact(3).has_value());
  }
  auto s = open_store(dir.path() + "/db");
  EXPECT_EQ(s->first_index(), 4u);
  EXPECT_EQ(s->applied_hlc(), t);
}

// A data directory written before leases were indexed by expiry: the index is built when
// the store opens, and expiry works as before.
TEST(LmdbStore, LeaseExpiryIndexIsRebuiltWhenMissing) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  {
    auto s = open_store(db);
    ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
    kvpb::Command grant;
    grant.set_timestamp_ms(1000);
    grant.mutable_lease_grant()->set_id(7);
    grant.mutable_lease_grant()->set_ttl_ms(1000);
    std::vector<pb::Entry> ents(1);
    ents[0].set_index(2);
    ents[0].set_term(2);
    ents[0].set_data(grant.SerializeAsString());
    WriteBatch wb;
    wb.entries = &ents;
    wb.committed = &ents;
    ASSERT_TRUE(s->write(wb).has_value());
    EXPECT_EQ(*s->expired_leases(2000, 10), (std::vector<uint64_t>{7}));
  }
  {  // Empty the index, as an older version would have left it.
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
    ASSERT_EQ(mdb_env_open(env, db.c_str(), MDB_NOTLS, 0600), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi = 0;
    ASSERT_EQ(mdb_dbi_open(txn, "lease_expiry", 0, &dbi), 0);
    ASSERT_EQ(mdb_drop(txn, dbi, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  auto s = open_store(db);
  EXPECT_EQ(*s->expired_leases(1999, 10), (std::vector<uint64_t>{}));
  EXPECT_EQ(*s->expired_leases(2000, 10), (std::vector<uint64_t>{7}));
}

// Keys up to 1 KiB exceed LMDB's 511-byte key limit; they must still round-trip and scan in
// exact byte order, also when many share a long prefix.
RC_GTEST_PROP(LmdbStore, LongKeysScanInByteOrder, (std::vector<std::pair<uint16_t, std::string>> raw)) {
  TempDir dir;
  auto s = open_store(dir.path() + "/db");
  RC_ASSERT(s->bootstrap(voters({1})).has_value());
  std::string base(470, 'p');
  std::map<std::string, std::string> model;
  std::vector<pb::Entry> ents;
  Index i = 2;
  for (const auto& [len_raw, tail] : raw) {
    std::string key = base + tail;
    key.resize(std::min<size_t>(limits::kMaxKeySizeBytes, 470 + len_raw % 560), 'x');
    if (key.size() > limits::kMaxKeySizeBytes) continue;
    ents.push_back(put_entry(i, 2, key, "v" + std::to_string(i)));
    ++i;
    model[key] = ents.back().data();
  }
  ents.push_back(put_entry(i++, 2, "a-short-key", "s"));
  ents.push_back(put_entry(i++, 2, "q-short-key", "s"));
  WriteBatch b;
  b.entries = &ents;
  b.committed = &ents;
  RC_ASSERT(s->write(b).has_value());
  std::vector<std::string> seen;
  kvpb::RangeRequest req;
  req.set_start(base);
  req.set_is_prefix(true);
  req.set_limit(3);
  for (int pages = 0; pages < 1000; ++pages) {
    auto r = s->range(req);
    RC_ASSERT(r.has_value());
    for (const auto& kv : r->kvs()) seen.push_back(kv.key());
    if (!r->has_more()) break;
    req.set_continuation(r->continuation());
  }
  std::vector<std::string> expected;
  for (const auto& [k, v] : model) expected.push_back(k);
  RC_ASSERT(seen == expected);
  for (const auto& k : expected) RC_ASSERT(value_of(*s, k).has_value());
}

TEST(LmdbStore, FullMapIsAClearErrorAndReadsKeepWorking) {
  TempDir dir;
  auto s = open_store(dir.path() + "/db", uint64_t{4} << 20);
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*s, 2, 3, 1).has_value());
  std::string big(256 << 10, 'x');
  Error last_error(ErrorCode::kOk, "");
  Index i = 4;
  for (; i < 200; ++i) {
    std::vector<pb::Entry> ents{put_entry(i, 1, "big" + std::to_string(i), big)};
    pb::HardState hs;
    hs.set_term(1);
    hs.set_commit(i);
    WriteBatch b;
    b.entries = &ents;
    b.hard_state = &hs;
    b.committed = &ents;
    auto r = s->write(b);
    if (!r) {
      last_error = r.error();
      break;
    }
  }
  ASSERT_EQ(last_error.code(), ErrorCode::kStorageFull) << last_error.to_string();
  EXPECT_NE(last_error.message().find("maximum size"), std::string::npos);
  // The entry reached the log (its own files); the failed apply left the state machine as
  // it was, and everything is readable. The apply is retried once space is freed.
  EXPECT_EQ(s->last_index(), i);
  EXPECT_EQ(s->applied_index(), i - 1);
  EXPECT_EQ(value_of(*s, "k2"), "v2");
  EXPECT_TRUE(s->entries(2, s->last_index() + 1, kNoLimit).has_value());
  s.reset();
  auto again = open_store(dir.path() + "/db", uint64_t{4} << 20);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->last_index(), i);
  EXPECT_EQ(again->applied_index(), i - 1);
}

TEST(LmdbStore, GarbageDataFileIsReportedAsCorruption) {
  TempDir dir;
  std::string db = dir.path() + "/db";
  ASSERT_EQ(::mkdir(db.c_str(), 0700), 0);
  {
    std::ofstream f(db + "/data.mdb", std::ios::binary);
    std::string junk(64 << 10, '\x5a');
    f << junk;
  }
  auto s = LmdbStore::open(LmdbOptions{db, uint64_t{64} << 20});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kCorruption);
  EXPECT_NE(s.error().message().find(db), std::string::npos);  // names the directory
}

// A synced log record damaged later (bit rot, a bad sector) is reported, not mistaken for
// the torn tail of a crash: a later segment records where its predecessor's records ended.
TEST(LmdbStore, FlippedByteInALogEntryIsCorruption) {
  TempDir dir;
  std::string db = dir.path() + "/db";
  const std::string marker = "MARKER-0123456789-MARKER";
  {
    auto s = open_store(db);
    ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
    std::vector<pb::Entry> ents{put_entry(2, 1, "k", marker)};
    WriteBatch b;
    b.entries = &ents;  // appended, not applied: the marker lives only in the log record
    ASSERT_TRUE(s->write(b).has_value());
  }
  ASSERT_NE(open_store(db), nullptr);  // a restart: the log goes on in a new segment
  bool is_flipped = false;
  for (const auto& f : std::filesystem::directory_iterator(db + "/wal")) {
    std::string bytes;
    {
      std::ifstream in(f.path(), std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    size_t pos = bytes.find(marker);
    if (pos == std::string::npos) continue;
    bytes[pos + 3] ^= 0x20;
    std::ofstream out(f.path(), std::ios::binary | std::ios::trunc);
    out << bytes;
    is_flipped = true;
  }
  ASSERT_TRUE(is_flipped);
  auto s = LmdbStore::open(LmdbOptions{db, uint64_t{256} << 20});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kCorruption);
  EXPECT_NE(s.error().message().find("checksum"), std::string::npos) << s.error().message();
}

// What the Raft core does after a restart: apply the committed entries after the applied
// index again, from the log (every entry here is committed).
Status apply_rest_of_log(Store& s) {
  if (s.applied_index() >= s.last_index()) return {};
  auto ents = s.entries(s.applied_index() + 1, s.last_index() + 1, kNoLimit);
  if (!ents) return std::unexpected(ents.error());
  WriteBatch b;
  b.committed = &*ents;
  auto r = s.apply(b);
  if (!r) return std::unexpected(r.error());
  return {};
}

// A child process writes in a loop and reports each index after write() returned; the
// parent kills it with SIGKILL at a random moment. Every reported write must survive, and
// the store must open. Repeated many times.
TEST(LmdbStore, KillNineInAWriteLoopLosesNoAcknowledgedWrite) {
  TempDir dir;
  std::string db = dir.path() + "/db";
  {
    auto s = open_store(db);
    ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  }
  std::mt19937 rng(12345);
  Index acked_max = 1;
  for (int iteration = 0; iteration < 25; ++iteration) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto s = LmdbStore::open(LmdbOptions{db, uint64_t{256} << 20});
      if (!s) {
        std::fprintf(stderr, "child: open failed: %s\n", s.error().to_string().c_str());
        ::_exit(3);
      }
      if (auto r = apply_rest_of_log(**s); !r) {
        std::fprintf(stderr, "child: replay failed: %s\n", r.error().to_string().c_str());
        ::_exit(6);
      }
      for (Index i = (*s)->last_index() + 1;; i += 3) {
        if (auto w = append_and_apply(**s, i, i + 2, 1); !w) {
          std::fprintf(stderr, "child: write failed: %s\n", w.error().to_string().c_str());
          ::_exit(4);
        }
        uint64_t acked = i + 2;
        if (::write(fds[1], &acked, sizeof(acked)) != sizeof(acked)) ::_exit(5);
      }
    }
    ::close(fds[1]);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 30000 + 1000);
    // Read acknowledgements until the deadline, then kill without warning.
    while (std::chrono::steady_clock::now() < deadline) {
      uint64_t acked = 0;
      if (::read(fds[0], &acked, sizeof(acked)) != sizeof(acked)) break;
      acked_max = std::max(acked_max, acked);
    }
    ::kill(pid, SIGKILL);
    uint64_t acked = 0;
    while (::read(fds[0], &acked, sizeof(acked)) == sizeof(acked)) acked_max = std::max(acked_max, acked);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited on its own with " << WEXITSTATUS(status);
    auto s = open_store(db);
    ASSERT_NE(s, nullptr) << "store must open after kill -9 (iteration " << iteration << ")";
    ASSERT_GE(s->last_index(), acked_max) << "iteration " << iteration;
    ASSERT_TRUE(apply_rest_of_log(*s).has_value());
    ASSERT_GE(s->applied_index(), acked_max);
    ASSERT_EQ(value_of(*s, "k" + std::to_string(acked_max)), "v" + std::to_string(acked_max));
  }
  EXPECT_GT(acked_max, 25u);
}

}  // namespace
}  // namespace aspen::storage
