// Client sessions (kv/sessions.h): a numbered write applies once, however often it arrives.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "core/limits.h"
#include "kv/mem_tables.h"
#include "kv/sessions.h"
#include "kv/state_machine.h"

namespace aspen::kv {
namespace {

// Applies commands as a replica would: one revision per entry, leader time given.
class Replica {
 public:
  kvpb::CommandResult apply(kvpb::Command cmd, uint64_t now_ms = 1'000'000) {
    cmd.set_timestamp_ms(now_ms);
    auto r = apply_command(tables_, cmd, ++revision_);
    EXPECT_TRUE(r.has_value()) << r.error().to_string();
    return r.value_or(kvpb::CommandResult{});
  }
  std::optional<kvpb::KeyValue> get(const std::string& key) {
    auto kv = tables_.get(key);
    EXPECT_TRUE(kv.has_value());
    return kv.value_or(std::nullopt);
  }
  Index revision() const { return revision_; }

 private:
  MemKvTables tables_;
  Index revision_ = 0;
};

kvpb::Command put_in(uint64_t client, uint64_t seq, uint64_t first_incomplete, const std::string& key,
                     const std::string& value) {
  kvpb::Command c;
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value(value);
  c.mutable_session()->set_client_id(client);
  c.mutable_session()->set_sequence(seq);
  c.mutable_session()->set_first_incomplete(first_incomplete);
  return c;
}

ErrorCode code_of(const kvpb::CommandResult& r) { return static_cast<ErrorCode>(r.error_code()); }

TEST(KvSessions, RepeatedWriteIsAnsweredWithTheFirstResultAndAppliedOnce) {
  Replica r;
  auto first = r.apply(put_in(7, 1, 1, "k", "v"));
  ASSERT_TRUE(first.succeeded());
  auto again = r.apply(put_in(7, 1, 1, "k", "v"));
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(r.get("k")->version(), 1u);
  EXPECT_EQ(r.get("k")->mod_revision(), first.revision());
}

TEST(KvSessions, RepeatOfAFailedCasGetsTheSameFailureEvenIfTheKeyChangedSince) {
  Replica r;
  kvpb::Command cas;
  cas.mutable_cas()->set_key("k");
  cas.mutable_cas()->set_expected_value("nope");
  cas.mutable_cas()->set_new_value("x");
  *cas.mutable_session() = put_in(9, 1, 1, "", "").session();
  auto first = r.apply(cas);
  ASSERT_FALSE(first.succeeded());
  r.apply(put_in(9, 2, 2, "k", "nope"));  // now the CAS would succeed if applied again
  auto again = r.apply(cas);
  EXPECT_FALSE(again.succeeded());
  EXPECT_EQ(r.get("k")->value(), "nope");
}

TEST(KvSessions, WritesOfOneSessionMayApplyOutOfOrderAndEachOnce) {
  Replica r;
  r.apply(put_in(5, 2, 1, "b", "2"));
  r.apply(put_in(5, 1, 1, "a", "1"));
  r.apply(put_in(5, 2, 1, "b", "2"));
  r.apply(put_in(5, 1, 1, "a", "1"));
  EXPECT_EQ(r.get("a")->version(), 1u);
  EXPECT_EQ(r.get("b")->version(), 1u);
}

TEST(KvSessions, WriteBelowFirstIncompleteIsRefusedNotApplied) {
  Replica r;
  r.apply(put_in(3, 1, 1, "k", "one"));
  r.apply(put_in(3, 2, 2, "k", "two"));  // the client saw write 1 answered
  auto late = r.apply(put_in(3, 1, 1, "k", "one"));
  EXPECT_EQ(code_of(late), ErrorCode::kSessionExpired) << late.error_message();
  EXPECT_EQ(r.get("k")->value(), "two");
}

TEST(KvSessions, SessionsAreIndependent) {
  Replica r;
  r.apply(put_in(1, 1, 1, "k", "a"));
  r.apply(put_in(2, 1, 1, "k", "b"));
  EXPECT_EQ(r.get("k")->version(), 2u);
  EXPECT_EQ(r.get("k")->value(), "b");
}

TEST(KvSessions, MalformedSessionsAreRefused) {
  Replica r;
  for (auto [client, seq, first] : {std::tuple{0, 1, 1}, {1, 0, 0}, {1, 2, 3}, {1, 1, 0}}) {
    auto res = r.apply(put_in(client, seq, first, "k", "v"));
    EXPECT_EQ(code_of(res), ErrorCode::kInvalidArgument) << client << " " << seq << " " << first;
  }
  EXPECT_FALSE(r.get("k").has_value());
}

TEST(KvSessions, KeptAnswersAreBoundedAndAnOldRetryIsRefused) {
  Replica r;
  // A client that never reports its writes answered (first_incomplete stays 1).
  const uint64_t n = limits::kMaxSessionResults + 10;
  for (uint64_t seq = 1; seq <= n; ++seq) r.apply(put_in(4, seq, 1, "k" + std::to_string(seq), "v"));
  auto rec_kv = r.get(session_key(4));
  ASSERT_TRUE(rec_kv.has_value());
  kvpb::SessionRecord rec;
  ASSERT_TRUE(rec.ParseFromString(rec_kv->value()));
  EXPECT_EQ(static_cast<size_t>(rec.results_size()), limits::kMaxSessionResults);
  EXPECT_EQ(rec.first_incomplete(), n - limits::kMaxSessionResults + 1);
  auto old = r.apply(put_in(4, 1, 1, "k1", "v"));
  EXPECT_EQ(code_of(old), ErrorCode::kSessionExpired);
  EXPECT_EQ(r.get("k1")->version(), 1u);
  auto recent = r.apply(put_in(4, n, 1, "k" + std::to_string(n), "v"));
  EXPECT_TRUE(recent.succeeded());
  EXPECT_EQ(r.get("k" + std::to_string(n))->version(), 1u);
}

TEST(KvSessions, LargeAnswerIsKeptAsASummaryNamingItsRevision) {
  Replica r;
  r.apply(put_in(8, 1, 1, "big", std::string(limits::kMaxSessionResultBytes + 100, 'x')));
  kvpb::Command cas;  // fails and carries the current (large) value in its answer
  cas.mutable_cas()->set_key("big");
  cas.mutable_cas()->set_expected_value("other");
  cas.mutable_cas()->set_new_value("y");
  *cas.mutable_session() = put_in(8, 2, 2, "", "").session();
  auto first = r.apply(cas);
  ASSERT_FALSE(first.succeeded());
  ASSERT_GT(first.ByteSizeLong(), limits::kMaxSessionResultBytes);
  auto again = r.apply(cas);
  EXPECT_EQ(code_of(again), ErrorCode::kSessionExpired);
  EXPECT_EQ(again.revision(), first.revision());
  EXPECT_NE(again.error_message().find("revision " + std::to_string(first.revision())), std::string::npos)
      << again.error_message();
}

TEST(KvSessions, FullTableEvictsOnlyASessionIdleLongEnough) {
  Replica r;
  const uint64_t t0 = 10'000'000;
  for (uint64_t id = 1; id <= limits::kMaxClientSessions; ++id) r.apply(put_in(id, 1, 1, "k", "v"), t0 + id);
  // All active within the last minute: a new session is refused and its write not applied.
  auto refused = r.apply(put_in(999'999, 1, 1, "new", "v"), t0 + limits::kMaxClientSessions + 1);
  EXPECT_EQ(code_of(refused), ErrorCode::kSessionExpired) << refused.error_message();
  EXPECT_FALSE(r.get("new").has_value());
  // Later, the longest idle (client 1) makes room.
  auto later = t0 + 1 + limits::kMinSessionIdleBeforeEvictionMs;
  auto ok = r.apply(put_in(999'999, 1, 1, "new", "v"), later);
  EXPECT_TRUE(ok.succeeded()) << ok.error_message();
  EXPECT_FALSE(r.get(session_key(1)).has_value());
  EXPECT_TRUE(r.get(session_key(2)).has_value());
  EXPECT_EQ(r.get(std::string(kSessionCountKey))->value(), std::to_string(limits::kMaxClientSessions));
}

// However a session's writes are delivered (repeated, reordered, interleaved with other
// clients'), each write applies exactly once: every write's key ends at version 1.
RC_GTEST_PROP(KvSessions, AnyDeliveryOrderAppliesEachWriteOnce, ()) {
  const auto writes = *rc::gen::inRange<uint64_t>(1, 40);
  const auto deliveries = *rc::gen::container<std::vector<uint64_t>>(rc::gen::inRange<uint64_t>(1, writes + 1));
  Replica r;
  std::map<uint64_t, bool> applied_ok;
  std::vector<uint64_t> all = deliveries;  // then every write once more, so each arrives at least once
  for (uint64_t seq = 1; seq <= writes; ++seq) all.push_back(seq);
  for (uint64_t seq : all) {
    auto res = r.apply(put_in(11, seq, 1, "k" + std::to_string(seq), "v"));
    if (res.succeeded()) applied_ok[seq] = true;
  }
  for (uint64_t seq = 1; seq <= writes; ++seq) {
    auto kv = r.get("k" + std::to_string(seq));
    RC_ASSERT(kv.has_value());
    RC_ASSERT(kv->version() == 1u);
    RC_ASSERT(applied_ok[seq]);
  }
}

// What a node asks before refusing a resend for its own reasons: a kept answer, or a write
// below first_incomplete, is one the session has seen; the next write is not.
TEST(KvSessions, SessionHasSeenKeptAnswersAndWritesBelowFirstIncomplete) {
  kvpb::SessionRecord r;
  r.set_first_incomplete(5);
  r.add_results()->set_sequence(6);
  EXPECT_TRUE(session_has_seen(r, 1));
  EXPECT_TRUE(session_has_seen(r, 4));
  EXPECT_FALSE(session_has_seen(r, 5));
  EXPECT_TRUE(session_has_seen(r, 6));
  EXPECT_FALSE(session_has_seen(r, 7));
}

}  // namespace
}  // namespace aspen::kv
