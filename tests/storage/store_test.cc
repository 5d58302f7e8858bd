// The Store contract, run against both implementations (MemStore and LmdbStore).
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "aspen/client.pb.h"
#include "core/encoding.h"
#include "core/limits.h"
#include "raft/confchange.h"
#include "storage/lmdb_store.h"
#include "storage/mem_store.h"
#include "store_test_util.h"

namespace aspen::storage {
namespace {

using testing::append_and_apply;
using testing::put_entry;
using testing::TempDir;
using testing::value_of;
using testing::voters;

struct MemFactory {
  std::unique_ptr<Store> make() { return std::make_unique<MemStore>(); }
  std::unique_ptr<Store> make_other() { return make(); }
};

struct LmdbFactory {
  TempDir dir;
  std::unique_ptr<Store> make() {
    return open(dir.path() + "/db");
  }
  // A second, independent store (make() again reopens the first).
  std::unique_ptr<Store> make_other() { return open(dir.path() + "/other"); }
  static std::unique_ptr<Store> open(const std::string& path) {
    auto s = LmdbStore::open(LmdbOptions{path, uint64_t{256} << 20});
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
    return std::move(*s);
  }
};

template <typename F>
class StoreContract : public ::testing::Test {
 protected:
  F factory;
};

using Factories = ::testing::Types<MemFactory, LmdbFactory>;
TYPED_TEST_SUITE(StoreContract, Factories);

TYPED_TEST(StoreContract, BootstrapSetsTheFoundingMembership) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1, 2, 3})).has_value());
  EXPECT_EQ(s->first_index(), 2u);
  EXPECT_EQ(s->last_index(), 1u);
  EXPECT_EQ(*s->term(1), 1u);
  EXPECT_EQ(s->applied_index(), 1u);
  auto st = s->initial_state();
  EXPECT_EQ(st.hard_state.commit(), 1u);
  EXPECT_EQ(st.conf_state.voters_size(), 3);
  EXPECT_FALSE(s->bootstrap(voters({1})).has_value());  // only once
}

TYPED_TEST(StoreContract, WriteAppendsAndAppliesInOneBatch) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  auto out = append_and_apply(*s, 2, 11, 2);
  ASSERT_TRUE(out.has_value()) << out.error().to_string();
  EXPECT_EQ(out->applied.size(), 10u);
  EXPECT_EQ(out->applied.back().result.revision(), 11u);
  EXPECT_EQ(s->last_index(), 11u);
  EXPECT_EQ(s->applied_index(), 11u);
  EXPECT_EQ(value_of(*s, "k7"), "v7");
  auto ents = s->entries(2, 12, kNoLimit);
  ASSERT_TRUE(ents.has_value());
  EXPECT_EQ(ents->size(), 10u);
  EXPECT_EQ(*s->term(5), 2u);
  // Size-limited reads return at least one entry.
  EXPECT_EQ(s->entries(2, 12, 1)->size(), 1u);
}

// The size a storage quota is measured against grows with the data and shrinks when the
// data is deleted (LMDB's freed pages are reused, so they do not count).
// Deleted values stay in the history (MVCC) until compaction drops them.
TYPED_TEST(StoreContract, StateSizeFollowsTheDataBothWaysOnceHistoryIsCompacted) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  const uint64_t empty = s->state_size_bytes();
  const std::string big(64 << 10, 'x');
  std::vector<pb::Entry> puts;
  for (Index i = 2; i < 2 + 64; ++i) puts.push_back(put_entry(i, 1, "big" + std::to_string(i), big));
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(puts.back().index());
  WriteBatch b;
  b.entries = &puts;
  b.hard_state = &hs;
  b.committed = &puts;
  ASSERT_TRUE(s->write(b).has_value());
  const uint64_t full = s->state_size_bytes();
  EXPECT_GE(full, empty + 64 * big.size()) << empty << " -> " << full;
  std::vector<pb::Entry> dels;
  for (Index i = 2; i < 2 + 64; ++i) {
    kvpb::Command cmd;
    cmd.mutable_delete_()->set_key("big" + std::to_string(i));
    pb::Entry e;
    e.set_index(puts.back().index() + i - 1);
    e.set_term(1);
    e.set_data(cmd.SerializeAsString());
    dels.push_back(std::move(e));
  }
  hs.set_commit(dels.back().index());
  b.entries = &dels;
  b.committed = &dels;
  ASSERT_TRUE(s->write(b).has_value());
  EXPECT_GE(s->state_size_bytes(), empty + 64 * big.size()) << "the history still holds every value";
  kvpb::Command compact;
  compact.mutable_compact()->set_revision(dels.back().index());
  pb::Entry ce;
  ce.set_index(dels.back().index() + 1);
  ce.set_term(1);
  ce.set_data(compact.SerializeAsString());
  std::vector<pb::Entry> compacts{ce};
  hs.set_commit(ce.index());
  b.entries = &compacts;
  b.committed = &compacts;
  auto out = s->write(b);
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->applied.size(), 1u);
  EXPECT_TRUE(out->applied[0].result.succeeded()) << out->applied[0].result.error_message();
  EXPECT_LE(s->state_size_bytes(), empty + (full - empty) / 8) << empty << " -> " << full << " -> " << s->state_size_bytes();
}

TYPED_TEST(StoreContract, ReappliedEntriesAreSkipped) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*s, 2, 5, 2).has_value());
  std::vector<pb::Entry> again{put_entry(4, 2, "k4", "changed"), put_entry(5, 2, "k5", "changed")};
  WriteBatch b;
  b.committed = &again;
  auto out = s->write(b);
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(out->applied.empty());
  EXPECT_EQ(value_of(*s, "k4"), "v4");
}

TYPED_TEST(StoreContract, ConflictingSuffixIsReplaced) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents;
  for (Index i = 2; i <= 6; ++i) ents.push_back(put_entry(i, 2, "k", "old"));
  WriteBatch b;
  b.entries = &ents;
  ASSERT_TRUE(s->write(b).has_value());
  // A newer leader's entries from index 4 on replace 4..6 (§5.3).
  std::vector<pb::Entry> newer{put_entry(4, 3, "k", "new")};
  WriteBatch b2;
  b2.entries = &newer;
  ASSERT_TRUE(s->write(b2).has_value());
  EXPECT_EQ(s->last_index(), 4u);
  EXPECT_EQ(*s->term(4), 3u);
  EXPECT_EQ(*s->term(3), 2u);
  EXPECT_EQ(s->term(5).error().code(), ErrorCode::kUnavailable);
}

TYPED_TEST(StoreContract, AppendWithAGapIsRefused) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> gap{put_entry(5, 2, "k", "v")};
  WriteBatch b;
  b.entries = &gap;
  EXPECT_FALSE(s->write(b).has_value());
  EXPECT_EQ(s->last_index(), 1u);
}

TYPED_TEST(StoreContract, CompactionDropsOldEntriesButKeepsTheirBoundaryTerm) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*s, 2, 20, 2).has_value());
  ASSERT_TRUE(s->compact(15).has_value());
  EXPECT_EQ(s->first_index(), 16u);
  EXPECT_EQ(*s->term(15), 2u);
  EXPECT_EQ(s->term(14).error().code(), ErrorCode::kCompacted);
  EXPECT_EQ(s->entries(10, 20, kNoLimit).error().code(), ErrorCode::kCompacted);
  EXPECT_EQ(s->entries(16, 21, kNoLimit)->size(), 5u);
  EXPECT_FALSE(s->compact(25).has_value());  // beyond applied
}

TYPED_TEST(StoreContract, ConfChangeEntriesUpdateTheStoredMembership) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1, 2, 3})).has_value());
  pb::ConfChange cc;
  auto* c = cc.add_changes();
  c->set_type(pb::CONF_CHANGE_ADD_LEARNER);
  c->set_node_id(4);
  pb::Entry e;
  e.set_index(2);
  e.set_term(2);
  e.set_type(pb::ENTRY_CONF_CHANGE);
  e.set_data(cc.SerializeAsString());
  std::vector<pb::Entry> ents{e};
  WriteBatch b;
  b.entries = &ents;
  b.committed = &ents;
  ASSERT_TRUE(s->write(b).has_value());
  EXPECT_EQ(s->conf_state().learners_size(), 1);
  EXPECT_EQ(s->initial_state().conf_state.learners(0), 4u);
}

// Leases are listed in id order, a page at a time, from after a given id; each carries the
// number of keys attached to it.
TYPED_TEST(StoreContract, LeasesAreListedInPagesWithTheirKeyCounts) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents;
  Index index = 2;
  auto add = [&](const kvpb::Command& c) {
    pb::Entry e;
    e.set_index(index++);
    e.set_term(2);
    e.set_data(c.SerializeAsString());
    ents.push_back(e);
  };
  for (uint64_t id : {30, 10, 20}) {
    kvpb::Command grant;
    grant.set_timestamp_ms(5);
    grant.mutable_lease_grant()->set_id(id);
    grant.mutable_lease_grant()->set_ttl_ms(10000);
    add(grant);
  }
  for (const char* key : {"a", "b"}) {
    kvpb::Command leased;
    leased.set_timestamp_ms(5);
    leased.mutable_put()->set_key(key);
    leased.mutable_put()->set_lease_id(20);
    add(leased);
  }
  WriteBatch wb;
  wb.entries = &ents;
  wb.committed = &ents;
  ASSERT_TRUE(s->write(wb).has_value());
  auto first = s->list_leases(0, 2);
  ASSERT_TRUE(first.has_value()) << first.error().to_string();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id(), 10u);
  EXPECT_EQ((*first)[1].id(), 20u);
  EXPECT_EQ((*first)[1].key_count(), 2u);
  auto rest = s->list_leases(20, 2);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].id(), 30u);
  EXPECT_TRUE(s->list_leases(30, 2)->empty());
  EXPECT_TRUE(s->list_leases(UINT64_MAX, 2)->empty());
}

// Expired leases come from the expiry index, soonest first, and a keep-alive moves a lease
// in it; a revoked lease leaves it.
TYPED_TEST(StoreContract, ExpiredLeasesComeSoonestFirstAndFollowKeepAlives) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents;
  Index index = 2;
  auto add = [&](uint64_t now_ms, auto fill) {
    kvpb::Command c;
    c.set_timestamp_ms(now_ms);
    fill(c);
    pb::Entry e;
    e.set_index(index++);
    e.set_term(2);
    e.set_data(c.SerializeAsString());
    ents.push_back(e);
  };
  // Lease 1 expires at 3000, 2 at 2000, 3 at 4000 (granted at 1000 with these TTLs).
  for (auto [id, ttl] : {std::pair<uint64_t, uint64_t>{1, 2000}, {2, 1000}, {3, 3000}}) {
    add(1000, [&](kvpb::Command& c) {
      c.mutable_lease_grant()->set_id(id);
      c.mutable_lease_grant()->set_ttl_ms(ttl);
    });
  }
  WriteBatch wb;
  wb.entries = &ents;
  wb.committed = &ents;
  ASSERT_TRUE(s->write(wb).has_value());
  EXPECT_EQ(*s->expired_leases(1999, 10), (std::vector<uint64_t>{}));
  EXPECT_EQ(*s->expired_leases(3000, 10), (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(*s->expired_leases(9999, 2), (std::vector<uint64_t>{2, 1}));
  // Lease 2 kept alive at 2500 now expires at 3500; lease 1 revoked.
  ents.clear();
  add(2500, [](kvpb::Command& c) { c.mutable_lease_keepalive()->set_id(2); });
  add(2500, [](kvpb::Command& c) { c.mutable_lease_revoke()->set_id(1); });
  ASSERT_TRUE(s->write(wb).has_value());
  EXPECT_EQ(*s->expired_leases(3000, 10), (std::vector<uint64_t>{}));
  EXPECT_EQ(*s->expired_leases(4000, 10), (std::vector<uint64_t>{2, 3}));
}

TYPED_TEST(StoreContract, SnapshotMovesTheWholeStateToAnotherStore) {
  auto a = this->factory.make();
  ASSERT_TRUE(a->bootstrap(voters({1, 2})).has_value());
  ASSERT_TRUE(append_and_apply(*a, 2, 300, 3).has_value());
  kvpb::Command grant;
  grant.set_timestamp_ms(5);
  grant.mutable_lease_grant()->set_id(77);
  grant.mutable_lease_grant()->set_ttl_ms(10000);
  kvpb::Command leased;
  leased.set_timestamp_ms(5);
  leased.mutable_put()->set_key("leased");
  leased.mutable_put()->set_lease_id(77);
  std::vector<pb::Entry> ents(2);
  ents[0].set_index(301);
  ents[0].set_term(3);
  ents[0].set_data(grant.SerializeAsString());
  ents[1].set_index(302);
  ents[1].set_term(3);
  ents[1].set_data(leased.SerializeAsString());
  WriteBatch wb;
  wb.entries = &ents;
  wb.committed = &ents;
  ASSERT_TRUE(a->write(wb).has_value());
  auto snap = a->snapshot();
  ASSERT_TRUE(snap.has_value()) << snap.error().to_string();
  EXPECT_EQ(snap->metadata().index(), 302u);
  EXPECT_EQ(snap->metadata().term(), 3u);

  MemStore b;  // installs into either kind; the format is shared
  WriteBatch install;
  install.snapshot = &*snap;
  ASSERT_TRUE(b.write(install).has_value());
  EXPECT_EQ(b.applied_index(), 302u);
  EXPECT_EQ(b.first_index(), 303u);
  EXPECT_EQ(*b.term(302), 3u);
  EXPECT_EQ(value_of(b, "k250"), "v250");
  EXPECT_EQ(b.list_leases(0, SIZE_MAX)->size(), 1u);
  EXPECT_EQ(b.conf_state().voters_size(), 2);
  // Revoking the lease on the receiver deletes the leased key: the index came across too.
  kvpb::Command revoke;
  revoke.mutable_lease_revoke()->set_id(77);
  std::vector<pb::Entry> more(1);
  more[0].set_index(303);
  more[0].set_term(3);
  more[0].set_data(revoke.SerializeAsString());
  WriteBatch wb2;
  wb2.entries = &more;
  wb2.committed = &more;
  ASSERT_TRUE(b.write(wb2).has_value());
  EXPECT_FALSE(value_of(b, "leased").has_value());
}

// MVCC through both stores: every version is kept in the same transaction as the apply,
// reads at a past revision see it, and a snapshot carries the history to another store.
TYPED_TEST(StoreContract, HistoryServesPastRevisionsAndTravelsInSnapshots) {
  auto a = this->factory.make();
  ASSERT_TRUE(a->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents{put_entry(2, 1, "k", "first"), put_entry(3, 1, "k", "second"),
                              put_entry(4, 1, "other", "x")};
  const std::string long_key(900, 'L');  // longer than LMDB's own key limit
  ents.push_back(put_entry(5, 1, long_key, "long1"));
  ents.push_back(put_entry(6, 1, long_key, "long2"));
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(6);
  WriteBatch b;
  b.entries = &ents;
  b.hard_state = &hs;
  b.committed = &ents;
  ASSERT_TRUE(a->write(b).has_value());
  auto at = [](const Store& s, const std::string& key, Index rev) -> std::optional<std::string> {
    auto req = kv::key_range(key);
    req.set_revision(rev);
    auto r = s.range(req);
    EXPECT_TRUE(r.has_value()) << r.error().to_string();
    if (!r || r->kvs_size() == 0) return std::nullopt;
    return r->kvs(0).value();
  };
  EXPECT_EQ(at(*a, "k", 2), "first");
  EXPECT_EQ(at(*a, "k", 3), "second");
  EXPECT_EQ(at(*a, "other", 3), std::nullopt);
  EXPECT_EQ(at(*a, long_key, 5), "long1");
  EXPECT_EQ(at(*a, long_key, 6), "long2");
  kvpb::RangeRequest all;
  all.set_revision(4);
  auto page = a->range(all);
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->kvs_size(), 2);
  EXPECT_EQ(page->kvs(0).key(), "k");
  EXPECT_EQ(page->kvs(1).key(), "other");
  EXPECT_EQ(page->revision(), 4u);

  auto snap = a->snapshot();
  ASSERT_TRUE(snap.has_value()) << snap.error().to_string();
  auto c = this->factory.make();
  WriteBatch install;
  install.snapshot = &*snap;
  ASSERT_TRUE(c->write(install).has_value());
  EXPECT_EQ(at(*c, "k", 2), "first");
  EXPECT_EQ(at(*c, long_key, 5), "long1");
  EXPECT_EQ(c->range(kv::key_range("k"))->revision(), 6u) << "the store revision came across";
}

TYPED_TEST(StoreContract, CorruptSnapshotIsRefusedAndChangesNothing) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*s, 2, 4, 2).has_value());
  pb::Snapshot bad;
  bad.mutable_metadata()->set_index(100);
  bad.mutable_metadata()->set_term(5);
  bad.set_data("\x05garbage-that-is-not-a-chunk");
  WriteBatch b;
  b.snapshot = &bad;
  auto r = s->write(b);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorruption);
  EXPECT_EQ(s->applied_index(), 4u);
  EXPECT_EQ(value_of(*s, "k3"), "v3");
}

TYPED_TEST(StoreContract, LogSizeGrowsWithAppendsAndShrinksWithCompaction) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  const uint64_t empty = s->log_size_bytes();
  ASSERT_TRUE(append_and_apply(*s, 2, 2001, 2).has_value());
  const uint64_t full = s->log_size_bytes();
  EXPECT_GT(full, empty + 2000 * 10);  // at least the payload of 2,000 small entries
  ASSERT_TRUE(s->compact(1990).has_value());
  EXPECT_LT(s->log_size_bytes(), full / 10);
}

// A node receives a large snapshot into a file (never whole in memory) and installs it from
// there: the state streamed from one store arrives intact in another of either kind.
TYPED_TEST(StoreContract, SnapshotStreamedToAFileInstallsFromTheFile) {
  auto a = this->factory.make();
  ASSERT_TRUE(a->bootstrap(voters({1, 2})).has_value());
  ASSERT_TRUE(append_and_apply(*a, 2, 3000, 3).has_value());
  TempDir dir;
  const std::string path = dir.path() + "/incoming";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  size_t chunks = 0;
  auto meta = a->stream_snapshot([&](std::string_view chunk) -> Status {
    std::string framed;
    put_length_prefixed(framed, chunk);
    ++chunks;
    return std::fwrite(framed.data(), 1, framed.size(), f) == framed.size()
               ? Status{}
               : Status(make_error(ErrorCode::kUnavailable, "write"));
  });
  std::fclose(f);
  ASSERT_TRUE(meta.has_value()) << meta.error().to_string();
  EXPECT_GE(chunks, 1u);
  pb::Snapshot snap;
  *snap.mutable_metadata() = *meta;  // data stays empty: it is in the file
  auto b = this->factory.make_other();
  WriteBatch install;
  install.snapshot = &snap;
  install.snapshot_data_path = &path;
  auto r = b->write(install);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(b->applied_index(), 3000u);
  EXPECT_EQ(value_of(*b, "k2"), "v2");
  EXPECT_EQ(value_of(*b, "k2999"), "v2999");
  EXPECT_EQ(b->conf_state().voters_size(), 2);
}

TYPED_TEST(StoreContract, TruncatedSnapshotFileIsRefusedAndChangesNothing) {
  auto a = this->factory.make();
  ASSERT_TRUE(a->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*a, 2, 200, 2).has_value());
  std::string data;
  auto meta = a->stream_snapshot([&](std::string_view chunk) -> Status {
    put_length_prefixed(data, chunk);
    return {};
  });
  ASSERT_TRUE(meta.has_value());
  TempDir dir;
  const std::string path = dir.path() + "/incoming";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(data.data(), 1, data.size() / 2, f), data.size() / 2);
  std::fclose(f);
  auto b = this->factory.make_other();
  ASSERT_TRUE(b->bootstrap(voters({1})).has_value());
  ASSERT_TRUE(append_and_apply(*b, 2, 4, 2).has_value());
  pb::Snapshot snap;
  *snap.mutable_metadata() = *meta;
  WriteBatch install;
  install.snapshot = &snap;
  install.snapshot_data_path = &path;
  auto r = b->write(install);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorruption);
  EXPECT_EQ(b->applied_index(), 4u);
  EXPECT_EQ(value_of(*b, "k3"), "v3");
  const std::string missing = dir.path() + "/no-such-file";
  install.snapshot_data_path = &missing;
  EXPECT_FALSE(b->write(install).has_value());
  EXPECT_EQ(b->applied_index(), 4u);
}

// With is_snapshot_data_streamed (the node's setting) the Raft core's MsgSnap carries only
// the metadata, however large the state: the data goes by stream_snapshot.
// Watchers are sent an apply's changes before the store commits them (WriteBatch::on_history):
// exactly the history entries the commit then makes readable, with the index they follow.
TYPED_TEST(StoreContract, AnApplyHandsOverTheHistoryItWritesWithTheIndexItFollows) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents{put_entry(2, 1, "a", "1"), put_entry(3, 1, "b", "2"), put_entry(4, 1, "a", "3")};
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(4);
  std::vector<std::pair<Index, std::vector<kvpb::HistoryEntry>>> reported;
  WriteBatch b;
  b.entries = &ents;
  b.hard_state = &hs;
  b.committed = &ents;
  b.on_history = [&](Index after, std::vector<kvpb::HistoryEntry> entries) {
    reported.emplace_back(after, std::move(entries));
  };
  ASSERT_TRUE(s->write(b).has_value());
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].first, 1u) << "applied after the bootstrap entry";
  auto page = s->read_history(2, 0, 100, limits::kMaxWatchResponseBytes, false);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->applied, 4u);
  ASSERT_EQ(page->entries.size(), 3u);
  ASSERT_EQ(reported[0].second.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(reported[0].second[i].SerializeAsString(), page->entries[i].SerializeAsString()) << i;
  }
  // Entries applied already: nothing applied, nothing reported.
  reported.clear();
  ASSERT_TRUE(s->apply(b).has_value());
  EXPECT_TRUE(reported.empty());
  // Changes past the bound are not copied; they are in the history all the same.
  const std::string big(limits::kMaxWatchEarlyBytes / 2 + 1, 'x');
  std::vector<pb::Entry> bigs{put_entry(5, 1, "big1", big), put_entry(6, 1, "big2", big)};
  hs.set_commit(6);
  b.entries = &bigs;
  b.committed = &bigs;
  ASSERT_TRUE(s->write(b).has_value());
  EXPECT_TRUE(reported.empty());
  EXPECT_EQ(value_of(*s, "big2")->size(), big.size());
  EXPECT_EQ(s->read_history(UINT64_MAX, 0, 0, 0, false)->revision, 6u);
}

// Writers are answered from an apply's results before the store commits it
// (WriteBatch::on_results): the very results apply() computes, handed over once per apply,
// and apply() keeps each entry's index, term and type (the payloads went to the hook).
TYPED_TEST(StoreContract, AnApplyHandsOverItsResultsOnce) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents{put_entry(2, 1, "a", "1"), put_entry(3, 1, "b", "2")};
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(3);
  std::vector<std::vector<AppliedEntry>> reported;
  WriteBatch b;
  b.entries = &ents;
  b.hard_state = &hs;
  b.committed = &ents;
  b.on_results = [&](std::vector<AppliedEntry>& results) {
    reported.push_back(results);
    for (auto& a : results) a.result.Clear();
  };
  auto w = s->write(b);
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  ASSERT_EQ(reported.size(), 1u);
  ASSERT_EQ(reported[0].size(), 2u);
  ASSERT_EQ(w->applied.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(reported[0][i].index, ents[i].index());
    EXPECT_EQ(reported[0][i].term, 1u);
    EXPECT_EQ(reported[0][i].index, w->applied[i].index);
    EXPECT_EQ(reported[0][i].type, w->applied[i].type);
    EXPECT_TRUE(reported[0][i].result.succeeded()) << i;
    EXPECT_EQ(reported[0][i].result.revision(), ents[i].index()) << i;
  }
  // Entries applied already: nothing applied, nothing reported.
  ASSERT_TRUE(s->apply(b).has_value());
  EXPECT_EQ(reported.size(), 1u);
}

// Both hand-overs come before the commit: the store does not report the entry applied yet,
// and readers do not see it.
TEST(LmdbStoreHistory, TheChangesAndResultsAreHandedOverBeforeTheyAreCommitted) {
  TempDir dir;
  auto s = LmdbFactory::open(dir.path() + "/db");
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents{put_entry(2, 1, "a", "1")};
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(2);
  WriteBatch b;
  b.entries = &ents;
  b.hard_state = &hs;
  b.committed = &ents;
  std::optional<Index> applied_at_history;
  std::optional<Index> applied_at_results;
  std::optional<bool> was_visible_at_results;
  b.on_history = [&](Index, std::vector<kvpb::HistoryEntry>) { applied_at_history = s->applied_index(); };
  b.on_results = [&](std::vector<AppliedEntry>&) {
    applied_at_results = s->applied_index();
    was_visible_at_results = value_of(*s, "a").has_value();
  };
  ASSERT_TRUE(s->write(b).has_value());
  ASSERT_TRUE(applied_at_history.has_value());
  EXPECT_EQ(*applied_at_history, 1u);
  ASSERT_TRUE(applied_at_results.has_value());
  EXPECT_EQ(*applied_at_results, 1u);
  EXPECT_FALSE(*was_visible_at_results);
  EXPECT_EQ(s->applied_index(), 2u);
  EXPECT_EQ(value_of(*s, "a"), "1");
}

TEST(LmdbStoreSnapshot, StreamedModeGivesTheCoreMetadataOnly) {
  TempDir dir;
  LmdbOptions options{dir.path() + "/db", uint64_t{256} << 20};
  options.max_snapshot_bytes = 1024;  // far below the state: a built snapshot would fail
  options.is_snapshot_data_streamed = true;
  auto s = LmdbStore::open(options);
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE((*s)->bootstrap(voters({1, 2, 3})).has_value());
  ASSERT_TRUE(append_and_apply(**s, 2, 500, 2).has_value());
  auto snap = (*s)->snapshot();
  ASSERT_TRUE(snap.has_value()) << snap.error().to_string();
  EXPECT_TRUE(snap->data().empty());
  EXPECT_EQ(snap->metadata().index(), 500u);
  EXPECT_EQ(snap->metadata().term(), 2u);
  EXPECT_EQ(snap->metadata().conf_state().voters_size(), 3);
  options.is_snapshot_data_streamed = false;  // the same limit when building in memory
  (*s).reset();
  auto built = LmdbStore::open(options);
  ASSERT_TRUE(built.has_value());
  auto too_big = (*built)->snapshot();
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ(too_big.error().code(), ErrorCode::kMessageTooLarge);
}

TEST(ConfState, NextConfStateMatchesTheCore) {
  pb::ConfState cs = voters({1, 2, 3});
  pb::ConfChange cc;
  auto* a = cc.add_changes();
  a->set_type(pb::CONF_CHANGE_ADD_VOTER);
  a->set_node_id(4);
  auto* r = cc.add_changes();
  r->set_type(pb::CONF_CHANGE_REMOVE_NODE);
  r->set_node_id(1);
  pb::ConfState joint = raft::next_conf_state(cs, cc);
  EXPECT_EQ(joint.voters_outgoing_size(), 3);
  EXPECT_TRUE(joint.auto_leave());
  pb::ConfState left = raft::next_conf_state(joint, pb::ConfChange{});
  EXPECT_EQ(left.voters_size(), 3);
  EXPECT_EQ(left.voters_outgoing_size(), 0);
  // An invalid change leaves the membership as it was.
  pb::ConfChange remove_all;
  for (uint64_t id : {2, 3, 4}) {
    auto* c = remove_all.add_changes();
    c->set_type(pb::CONF_CHANGE_REMOVE_NODE);
    c->set_node_id(id);
  }
  EXPECT_EQ(raft::next_conf_state(left, remove_all).voters_size(), 3);
}

}  // namespace
}  // namespace aspen::storage

namespace aspen::storage {
namespace {

TYPED_TEST(StoreContract, TriggerSnapshotCompactsToTheAppliedIndex) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(testing::voters({1, 2})).has_value());
  ASSERT_TRUE(testing::append_and_apply(*s, 2, 40, 3).has_value());
  auto meta = s->trigger_snapshot();
  ASSERT_TRUE(meta.has_value()) << meta.error().to_string();
  EXPECT_EQ(meta->index(), 40u);
  EXPECT_EQ(meta->term(), 3u);
  EXPECT_EQ(s->first_index(), 41u);
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ(snap->metadata().index(), 40u);
}

}  // namespace
}  // namespace aspen::storage

namespace aspen::storage {
namespace {

// MemStore models LmdbStore's applies (MDB_NOMETASYNC commits over a log that keeps the
// entries): a crash may undo every apply since the state machine was last synced, never the
// synced log; a compaction syncs the state machine first.
TEST(MemStoreCrash, AppliesAreLostUntilTheStateMachineIsSyncedButTheLogStays) {
  MemStore s;
  ASSERT_TRUE(s.bootstrap(testing::voters({1})).has_value());
  std::vector<pb::Entry> ents;
  for (Index i = 2; i <= 4; ++i) ents.push_back(testing::put_entry(i, 2, "k" + std::to_string(i), "v"));
  WriteBatch append;
  append.entries = &ents;
  ASSERT_TRUE(s.write(append).has_value());  // synced: entries are durable

  WriteBatch apply;
  apply.committed = &ents;
  ASSERT_TRUE(s.apply(apply).has_value());
  EXPECT_EQ(s.applied_index(), 4u);
  s.crash();
  EXPECT_EQ(s.applied_index(), 1u) << "the unsynced apply is undone";
  EXPECT_EQ(s.last_index(), 4u) << "the synced entries stay";

  ASSERT_TRUE(s.apply(apply).has_value());
  std::vector<pb::Entry> more{testing::put_entry(5, 2, "k5", "v")};
  WriteBatch next;
  next.entries = &more;
  ASSERT_TRUE(s.write(next).has_value());  // a log sync does not sync the state machine
  s.crash();
  EXPECT_EQ(s.applied_index(), 1u);
  EXPECT_EQ(s.last_index(), 5u);

  ASSERT_TRUE(s.apply(apply).has_value());
  ASSERT_TRUE(s.compact(3).has_value());
  s.crash();
  EXPECT_EQ(s.applied_index(), 4u) << "compaction synced the state machine";
  EXPECT_EQ(testing::value_of(s, "k3"), "v");
}

// A hard state that only moves the commit index skips its sync and may be undone.
TEST(MemStoreCrash, CommitOnlyHardStateIsLostButTermAndVoteAreNot) {
  MemStore s;
  ASSERT_TRUE(s.bootstrap(testing::voters({1})).has_value());
  std::vector<pb::Entry> ents;
  for (Index i = 2; i <= 4; ++i) ents.push_back(testing::put_entry(i, 3, "k" + std::to_string(i), "v"));
  pb::HardState voted;
  voted.set_term(3);
  voted.set_vote(1);
  voted.set_commit(1);
  WriteBatch b;
  b.hard_state = &voted;
  b.entries = &ents;
  ASSERT_TRUE(s.write_log(b).has_value());
  pb::HardState moved = voted;
  moved.set_commit(4);
  WriteBatch c;
  c.hard_state = &moved;
  c.is_sync_required = false;
  ASSERT_TRUE(s.write_log(c).has_value());
  EXPECT_EQ(s.initial_state().hard_state.commit(), 4u);
  s.crash();
  EXPECT_EQ(s.initial_state().hard_state.commit(), 1u) << "the unsynced commit index is undone";
  EXPECT_EQ(s.initial_state().hard_state.term(), 3u);
  EXPECT_EQ(s.initial_state().hard_state.vote(), 1u);
  EXPECT_EQ(s.last_index(), 4u);
}

// 40 values of 1 MiB in one range: a page stops by bytes (it fits one frame, and no more
// than a page's worth of values is loaded), and the continuation walks all of them exactly
// once.
TYPED_TEST(StoreContract, ScanOfLargeValuesIsPagedByBytesAndFitsAFrame) {
  auto s = this->factory.make();
  ASSERT_TRUE(s->bootstrap(voters({1})).has_value());
  constexpr int kKeys = 40;
  std::vector<pb::Entry> ents;
  for (int i = 0; i < kKeys; ++i) {
    ents.push_back(put_entry(static_cast<Index>(2 + i), 2, fmt::format("big/{:02}", i),
                             std::string(limits::kMaxValueSizeBytes, static_cast<char>('a' + i % 26))));
  }
  pb::HardState hs;
  hs.set_term(2);
  hs.set_commit(1 + kKeys);
  WriteBatch b;
  b.entries = &ents;
  b.hard_state = &hs;
  b.committed = &ents;
  ASSERT_TRUE(s->write(b).has_value());

  kvpb::RangeRequest rr;
  rr.set_start("big/");
  rr.set_is_prefix(true);
  std::set<std::string> seen;
  int pages = 0;
  while (true) {
    auto page = s->range(rr);
    ASSERT_TRUE(page.has_value()) << page.error().to_string();
    ++pages;
    clientpb::Response resp;
    *resp.mutable_scan()->mutable_result() = *page;
    EXPECT_LE(resp.ByteSizeLong(), limits::kMaxFrameSizeBytes);
    EXPECT_LE(static_cast<size_t>(page->kvs_size()), limits::kMaxScanResultBytes / limits::kMaxValueSizeBytes + 1);
    for (const auto& kv : page->kvs()) EXPECT_TRUE(seen.insert(kv.key()).second) << kv.key();
    if (!page->has_more()) break;
    ASSERT_FALSE(page->continuation().empty());
    rr.set_continuation(page->continuation());
    ASSERT_LT(pages, kKeys + 1);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kKeys));
  EXPECT_GE(pages, kKeys / 5);
}

// The store keeps the largest stamp of the commands it applied, stamped or not, key-changing
// or not, with the applied index; a snapshot carries it, and one from a version before that
// (no stamp in its chunks) still installs and gives none.
TYPED_TEST(StoreContract, AppliedHlcIsTheLargestAppliedStampAndTravelsInSnapshots) {
  constexpr uint64_t kT = 1'800'000'000'000;
  const HlcTimestamp t1{kT, 0, 1};
  const HlcTimestamp t2{kT, 1, 1};
  const HlcTimestamp t3{kT + 7, 0, 2};
  const HlcTimestamp t4{kT + 9, 0, 2};
  auto a = this->factory.make();
  ASSERT_TRUE(a->bootstrap(voters({1})).has_value());
  EXPECT_FALSE(a->applied_hlc().has_value());
  kvpb::Command grant;
  grant.mutable_lease_grant()->set_id(9);
  grant.mutable_lease_grant()->set_ttl_ms(1000);
  pb::Entry grant_entry;
  grant_entry.set_index(5);
  grant_entry.set_term(2);
  grant_entry.set_data(grant.SerializeAsString());
  std::vector<pb::Entry> ents{testing::with_hlc(put_entry(2, 2, "a", "1"), t1), put_entry(3, 2, "b", "2"),
                              testing::with_hlc(put_entry(4, 2, "a", "3"), t2), testing::with_hlc(grant_entry, t3),
                              put_entry(6, 2, "c", "4")};
  WriteBatch wb;
  wb.entries = &ents;
  wb.committed = &ents;
  ASSERT_TRUE(a->write(wb).has_value());
  EXPECT_EQ(a->applied_hlc(), t3) << "the lease grant changes no key; its stamp counts all the same";
  auto snap = a->snapshot();
  ASSERT_TRUE(snap.has_value()) << snap.error().to_string();

  // The same chunks without the stamp: a snapshot as an older version streams it.
  std::string stripped;
  Decoder d(snap->data());
  while (!d.is_empty()) {
    auto bytes = d.get_length_prefixed(limits::kMaxFrameSizeBytes);
    ASSERT_TRUE(bytes.has_value());
    kvpb::SnapshotChunk chunk;
    ASSERT_TRUE(chunk.ParseFromArray(bytes->data(), static_cast<int>(bytes->size())));
    chunk.clear_applied_hlc();
    put_length_prefixed(stripped, chunk.SerializeAsString());
  }
  ASSERT_NE(stripped, snap->data()) << "the snapshot carries the stamp";
  pb::Snapshot old_snap = *snap;
  old_snap.set_data(stripped);
  auto b = this->factory.make_other();
  ASSERT_TRUE(b->bootstrap(voters({1})).has_value());
  WriteBatch install_old;
  install_old.snapshot = &old_snap;
  ASSERT_TRUE(b->write(install_old).has_value());
  EXPECT_EQ(b->applied_index(), 6u);
  EXPECT_EQ(value_of(*b, "a"), "3");
  EXPECT_FALSE(b->applied_hlc().has_value());

  std::vector<pb::Entry> more{testing::with_hlc(put_entry(7, 2, "d", "5"), t4)};
  WriteBatch wb2;
  wb2.entries = &more;
  wb2.committed = &more;
  ASSERT_TRUE(a->write(wb2).has_value());
  EXPECT_EQ(a->applied_hlc(), t4);
  auto snap2 = a->snapshot();
  ASSERT_TRUE(snap2.has_value());
  WriteBatch install;
  install.snapshot = &*snap2;
  ASSERT_TRUE(b->write(install).has_value());
  EXPECT_EQ(b->applied_index(), 7u);
  EXPECT_EQ(b->applied_hlc(), t4) << "the stamp came across with the snapshot";
  MemStore c;  // the format is shared
  ASSERT_TRUE(c.write(install).has_value());
  EXPECT_EQ(c.applied_hlc(), t4);

  // Applying goes on from the installed stamp; an unstamped command leaves it.
  std::vector<pb::Entry> last{put_entry(8, 2, "e", "6")};
  WriteBatch wb3;
  wb3.entries = &last;
  wb3.committed = &last;
  ASSERT_TRUE(b->write(wb3).has_value());
  EXPECT_EQ(b->applied_hlc(), t4);
}

}  // namespace
}  // namespace aspen::storage
