// The watch decisions without I/O (watch/watch.h): request validation, which changes a watch
// reports, and how events become messages (one per revision, fragments past the bound).
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "core/encoding.h"
#include "core/limits.h"
#include "watch/watch.h"

namespace aspen::watch {
namespace {

kvpb::HistoryEntry entry(Index rev, uint32_t pos, const std::string& key, const std::string& value, bool is_delete = false) {
  kvpb::HistoryEntry e;
  e.set_revision(rev);
  e.set_position(pos);
  e.mutable_record()->mutable_kv()->set_key(key);
  e.mutable_record()->mutable_kv()->set_value(value);
  e.mutable_record()->mutable_kv()->set_mod_revision(rev);
  e.mutable_record()->set_is_delete(is_delete);
  return e;
}

TEST(WatchSpec, AKeyAPrefixOrARangeAndNothingAmbiguous) {
  cpb::WatchCreateRequest r;
  r.set_start("a");
  auto one = make_watch_spec(r);
  ASSERT_TRUE(one.has_value());
  EXPECT_TRUE(wants(*one, entry(1, 0, "a", "")));
  EXPECT_FALSE(wants(*one, entry(1, 0, "ab", "")));
  r.set_is_prefix(true);
  auto prefix = make_watch_spec(r);
  ASSERT_TRUE(prefix.has_value());
  EXPECT_TRUE(wants(*prefix, entry(1, 0, "ab", "")));
  EXPECT_FALSE(wants(*prefix, entry(1, 0, "b", "")));
  r.set_end("z");
  EXPECT_FALSE(make_watch_spec(r).has_value()) << "a prefix and an end key";
  r.set_is_prefix(false);
  r.set_end("0");
  EXPECT_FALSE(make_watch_spec(r).has_value()) << "an end before the start";
  cpb::WatchCreateRequest all;
  all.set_is_prefix(true);
  auto everything = make_watch_spec(all);
  ASSERT_TRUE(everything.has_value());
  EXPECT_TRUE(wants(*everything, entry(1, 0, "\xff\xff", "")));
  EXPECT_FALSE(make_watch_spec(cpb::WatchCreateRequest{}).has_value()) << "no key at all";
  cpb::WatchCreateRequest big;
  big.set_start(std::string(limits::kMaxKeySizeBytes + 1, 'k'));
  auto too_big = make_watch_spec(big);
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ(too_big.error().code(), ErrorCode::kKeyTooLarge);
  cpb::WatchCreateRequest fast;
  fast.set_start("a");
  fast.set_progress_interval_ms(1);
  EXPECT_FALSE(make_watch_spec(fast).has_value()) << "progress floods are refused";
}

TEST(WatchSpec, AOneShotWatchNeedsABoundedTimeoutAndReadsOnlyAtItsChange) {
  cpb::WatchCreateRequest r;
  r.set_start("lock/a");
  r.set_is_no_put(true);
  r.set_is_once(true);
  auto no_timeout = make_watch_spec(r);
  ASSERT_FALSE(no_timeout.has_value()) << "a one-shot watch without a timeout would never be answered";
  EXPECT_EQ(no_timeout.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(no_timeout.error().message().find("once_timeout_ms"), std::string::npos) << no_timeout.error().message();
  r.set_once_timeout_ms(limits::kMaxWatchOnceTimeoutMs + 1);
  EXPECT_FALSE(make_watch_spec(r).has_value()) << "over the limit";
  r.set_once_timeout_ms(limits::kMaxWatchOnceTimeoutMs);
  auto once = make_watch_spec(r);
  ASSERT_TRUE(once.has_value()) << once.error().to_string();
  EXPECT_TRUE(once->is_once);
  EXPECT_FALSE(once->then_read.has_value());

  r.mutable_then_read()->set_start("lock/");
  r.mutable_then_read()->set_end("lock0");
  r.mutable_then_read()->set_limit(100);
  auto with_read = make_watch_spec(r);
  ASSERT_TRUE(with_read.has_value()) << with_read.error().to_string();
  ASSERT_TRUE(with_read->then_read.has_value());
  EXPECT_EQ(with_read->then_read->start(), "lock/");

  auto at_revision = r;
  at_revision.mutable_then_read()->set_revision(7);
  auto refused = make_watch_spec(at_revision);
  ASSERT_FALSE(refused.has_value()) << "the node picks the read's revision";
  EXPECT_NE(refused.error().message().find("revision"), std::string::npos);
  auto too_many = r;
  too_many.mutable_then_read()->set_limit(limits::kMaxScanResults + 1);
  EXPECT_FALSE(make_watch_spec(too_many).has_value()) << "the read keeps a scan's limits";

  cpb::WatchCreateRequest streaming;
  streaming.set_start("a");
  streaming.set_once_timeout_ms(100);
  EXPECT_FALSE(make_watch_spec(streaming).has_value()) << "a timeout belongs to a one-shot watch";
  streaming.set_once_timeout_ms(0);
  streaming.mutable_then_read()->set_start("a");
  EXPECT_FALSE(make_watch_spec(streaming).has_value()) << "so does a read";
}

TEST(WatchOnceAnswer, CarriesTheRevisionAndItsEventsWhenTheyFitOneMessage) {
  WatchBatcher one;
  one.add(9, to_event(entry(9, 0, "k", "", true), std::nullopt, false));
  auto a = once_answer(9, one.take(true));
  EXPECT_TRUE(a.is_once_answer());
  EXPECT_FALSE(a.is_once_timed_out());
  EXPECT_EQ(a.revision(), 9u);
  ASSERT_EQ(a.events_size(), 1);
  EXPECT_EQ(a.events(0).type(), cpb::WatchEvent::DELETE);

  auto bare = once_answer(12, {});
  EXPECT_TRUE(bare.is_once_answer());
  EXPECT_EQ(bare.revision(), 12u);
  EXPECT_EQ(bare.events_size(), 0);
  EXPECT_FALSE(bare.is_once_timed_out());

  auto late = once_timed_out_answer(30);
  EXPECT_TRUE(late.is_once_answer());
  EXPECT_TRUE(late.is_once_timed_out());
  EXPECT_EQ(late.revision(), 30u);
}

TEST(WatchSpec, FiltersLeaveOutPutsOrDeletes) {
  cpb::WatchCreateRequest r;
  r.set_start("k");
  r.set_is_no_delete(true);
  auto spec = make_watch_spec(r);
  ASSERT_TRUE(spec.has_value());
  EXPECT_TRUE(wants(*spec, entry(1, 0, "k", "v")));
  EXPECT_FALSE(wants(*spec, entry(2, 0, "k", "", true)));
  r.set_is_no_put(true);
  EXPECT_FALSE(make_watch_spec(r).has_value()) << "a watch that reports nothing";
}

TEST(WatchBatcher, OneMessagePerRevision) {
  WatchBatcher b;
  b.add(5, to_event(entry(5, 0, "a", "1"), std::nullopt, false));
  b.add(5, to_event(entry(5, 1, "b", "1"), std::nullopt, false));
  b.add(7, to_event(entry(7, 0, "a", "2"), std::nullopt, false));
  auto msgs = b.take(true);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].revision(), 5u);
  EXPECT_EQ(msgs[0].events_size(), 2);
  EXPECT_FALSE(msgs[0].is_fragment());
  EXPECT_EQ(msgs[1].revision(), 7u);
  EXPECT_TRUE(b.empty());
}

TEST(WatchBatcher, ARevisionPastTheBoundTravelsInFragmentsUnderAFrame) {
  WatchBatcher b;
  const std::string value(300 << 10, 'x');
  for (uint32_t i = 0; i < 10; ++i) b.add(9, to_event(entry(9, i, "k" + std::to_string(i), value), std::nullopt, false));
  auto msgs = b.take(true);
  ASSERT_GE(msgs.size(), 3u);
  int events = 0;
  for (size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_EQ(msgs[i].revision(), 9u);
    EXPECT_EQ(msgs[i].is_fragment(), i + 1 < msgs.size()) << "all but the last piece say more follows";
    EXPECT_LE(msgs[i].ByteSizeLong(), limits::kMaxWatchResponseBytes + value.size() + 1024);
    events += msgs[i].events_size();
  }
  EXPECT_EQ(events, 10);
}

TEST(WatchBatcher, AnIncompleteLastRevisionIsMarkedAFragment) {
  WatchBatcher b;
  b.add(3, to_event(entry(3, 0, "a", "1"), std::nullopt, false));
  auto msgs = b.take(false);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].is_fragment());
}

TEST(WatchEvent, PreviousValueOnlyWhenAsked) {
  kvpb::KeyValue prev;
  prev.set_key("a");
  prev.set_value("old");
  EXPECT_FALSE(to_event(entry(2, 0, "a", "new"), prev, false).has_prev_kv());
  auto ev = to_event(entry(2, 0, "a", "new"), prev, true);
  EXPECT_EQ(ev.prev_kv().value(), "old");
  EXPECT_EQ(to_event(entry(3, 0, "a", "", true), std::nullopt, true).type(), cpb::WatchEvent::DELETE);
}

// Whatever a client sends, validation answers (never crashes) and an accepted spec is a
// well-formed range: the start below the end (or no end), and keys in it are wanted.
RC_GTEST_PROP(WatchSpec, AnyRequestIsRefusedOrWellFormed, ()) {
  cpb::WatchCreateRequest r;
  r.set_start(*rc::gen::container<std::string>(*rc::gen::inRange<size_t>(0, 1100), rc::gen::arbitrary<char>()));
  if (*rc::gen::arbitrary<bool>()) r.set_end(*rc::gen::arbitrary<std::string>());
  r.set_is_prefix(*rc::gen::arbitrary<bool>());
  r.set_is_to_end(*rc::gen::arbitrary<bool>());
  r.set_is_no_put(*rc::gen::arbitrary<bool>());
  r.set_is_no_delete(*rc::gen::arbitrary<bool>());
  r.set_start_revision(*rc::gen::arbitrary<uint64_t>());
  r.set_progress_interval_ms(*rc::gen::arbitrary<uint32_t>());
  r.set_is_once(*rc::gen::arbitrary<bool>());
  if (*rc::gen::arbitrary<bool>()) r.set_once_timeout_ms(*rc::gen::arbitrary<uint32_t>());
  if (*rc::gen::arbitrary<bool>()) {
    auto* read = r.mutable_then_read();
    read->set_start(*rc::gen::arbitrary<std::string>());
    if (*rc::gen::arbitrary<bool>()) read->set_end(*rc::gen::arbitrary<std::string>());
    read->set_is_prefix(*rc::gen::arbitrary<bool>());
    read->set_limit(*rc::gen::arbitrary<uint32_t>());
    if (*rc::gen::arbitrary<bool>()) read->set_revision(*rc::gen::arbitrary<uint64_t>());
    if (*rc::gen::arbitrary<bool>()) read->set_continuation(*rc::gen::arbitrary<std::string>());
  }
  auto spec = make_watch_spec(r);
  if (!spec) return;
  // What a one-shot watch may ask is bounded: a timeout within the limit, a read that is a
  // valid scan at no revision of its own; a streaming watch asks neither.
  RC_ASSERT(spec->is_once == r.is_once());
  if (spec->is_once) {
    RC_ASSERT(spec->once_timeout_ms >= 1 && spec->once_timeout_ms <= limits::kMaxWatchOnceTimeoutMs);
  } else {
    RC_ASSERT(!spec->then_read.has_value() && spec->once_timeout_ms == 0);
  }
  if (spec->then_read) {
    RC_ASSERT(spec->then_read->revision() == 0);
    RC_ASSERT(spec->then_read->limit() <= limits::kMaxScanResults);
  }
  RC_ASSERT(spec->end.empty() || spec->start < spec->end);
  RC_ASSERT(spec->progress_interval_ms >= limits::kMinWatchProgressIntervalMs);
  auto e = entry(1, 0, spec->start, "v", spec->is_no_put);
  RC_ASSERT(wants(*spec, e));
}


// A one-shot watch's read, told from the store's range before an apply's changes and the
// changes themselves (watch_service: early answers), is exactly the range of the state at the
// revision: checked against a model that applies the changes to a map.
RC_GTEST_PROP(WatchRangeWithChanges, IsTheRangeOfTheStateAtTheRevision, ()) {
  const std::vector<std::string> keys{"a", "ab", "b", "ba", "c", "d"};
  constexpr Index kBaseRevision = 10;
  std::map<std::string, std::string> state;
  for (const auto& k : keys) {
    if (*rc::gen::arbitrary<bool>()) state[k] = "v0" + k;
  }
  std::vector<kvpb::HistoryEntry> changes;
  Index rev = kBaseRevision;
  const size_t n = *rc::gen::inRange<size_t>(0, 10);
  for (size_t i = 0; i < n; ++i) {
    if (i == 0 || *rc::gen::inRange(0, 3) != 0) ++rev;  // sometimes several keys in one revision
    const std::string key = *rc::gen::elementOf(keys);
    const bool is_delete = *rc::gen::arbitrary<bool>();
    changes.push_back(entry(rev, static_cast<uint32_t>(i), key, is_delete ? "" : fmt::format("v{}", i), is_delete));
  }
  kvpb::RangeRequest request;
  if (*rc::gen::arbitrary<bool>()) {
    request.set_start(*rc::gen::element<std::string>("", "a", "b"));
    request.set_is_prefix(true);
  } else {
    request.set_start(*rc::gen::elementOf(keys));
    const std::string end = *rc::gen::element<std::string>("", "b", "c", "e");
    if (end.empty() || end > request.start()) request.set_end(end);
  }
  request.set_limit(*rc::gen::inRange<uint32_t>(0, 6));
  const Index at = *rc::gen::inRange<Index>(kBaseRevision, rev + 2);
  const std::string end = request.is_prefix() ? prefix_end(request.start()) : request.end();
  const auto in_range = [&](const std::string& k) { return k >= request.start() && (end.empty() || k < end); };
  const size_t limit = request.limit() == 0 ? limits::kDefaultScanLimit : request.limit();

  kvpb::RangeResult base;  // what the store answers before the changes
  base.set_revision(kBaseRevision);
  for (const auto& [k, v] : state) {
    if (!in_range(k)) continue;
    if (static_cast<size_t>(base.kvs_size()) == limit) {
      base.set_has_more(true);
      break;
    }
    auto* kv = base.add_kvs();
    kv->set_key(k);
    kv->set_value(v);
  }
  std::map<std::string, std::string> model = state;  // the state at `at`
  for (const auto& e : changes) {
    if (e.revision() > at) break;
    if (e.record().is_delete()) {
      model.erase(e.record().kv().key());
    } else {
      model[e.record().kv().key()] = e.record().kv().value();
    }
  }
  std::vector<std::pair<std::string, std::string>> expected;
  for (const auto& [k, v] : model) {
    if (in_range(k)) expected.emplace_back(k, v);
  }

  auto got = range_with_changes(request, base, changes, at);
  if (base.has_more() || expected.size() > limit) {
    RC_ASSERT(!got.has_value());  // cannot be told from one page
    return;
  }
  RC_ASSERT(got.has_value());
  RC_ASSERT(got->revision() == at);
  RC_ASSERT(!got->has_more());
  RC_ASSERT(got->count() == expected.size());
  std::vector<std::pair<std::string, std::string>> actual;
  for (const auto& kv : got->kvs()) actual.emplace_back(kv.key(), kv.value());
  RC_ASSERT(actual == expected);
}

TEST(WatchRangeWithChanges, CountsOnlyAndPagesOfMoreAreNotTold) {
  kvpb::RangeRequest count;
  count.set_start("a");
  count.set_is_prefix(true);
  count.set_is_count_only(true);
  kvpb::RangeResult base;
  base.set_revision(3);
  EXPECT_FALSE(range_with_changes(count, base, {}, 3).has_value());
  kvpb::RangeRequest page = count;
  page.set_is_count_only(false);
  base.set_has_more(true);
  EXPECT_FALSE(range_with_changes(page, base, {}, 3).has_value());
  base.set_has_more(false);
  auto same = range_with_changes(page, base, {}, 3);
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(same->kvs_size(), 0);
  EXPECT_EQ(same->revision(), 3u);
}

}  // namespace
}  // namespace aspen::watch
