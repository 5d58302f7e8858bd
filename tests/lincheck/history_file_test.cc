#include "lincheck/history_file.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <sstream>

namespace aspen::lincheck {
namespace {

CheckResult check_text(const std::string& text) {
  std::istringstream in(text);
  auto h = read_history(in);
  EXPECT_TRUE(h.has_value()) << h.error();
  if (!h) return {};
  CheckResult r = check_linearizable(h->operations);
  EXPECT_FALSE(r.is_exhausted) << r.explanation;
  return r;
}

TEST(HistoryFileTest, LinearizableHistoryPasses) {
  CheckResult r = check_text(
      "# two clients on two keys\n"
      "1 write a v1 0 10 ok\n"
      "2 read a v1 5 12 ok\n"
      "1 cas a v1 v2 13 20 ok\n"
      "2 cas a v1 v3 14 21 fail\n"
      "2 read b nil 22 23 ok\n"
      "1 delete a 24 30 ok\n"
      "2 read a nil 31 32 ok\n");
  EXPECT_TRUE(r.is_linearizable) << r.explanation;
}

TEST(HistoryFileTest, StaleReadHistoryFailsAndNamesTheKey) {
  CheckResult r = check_text(
      "1 write k v1 0 10 ok\n"
      "1 write k v2 11 20 ok\n"
      "2 read k v1 21 25 ok\n");
  EXPECT_FALSE(r.is_linearizable);
  EXPECT_EQ(r.failing_key, "k");
  EXPECT_NE(r.explanation.find("read() -> \"v1\""), std::string::npos) << r.explanation;
}

TEST(HistoryFileTest, UnknownWriteMayOrMayNotHaveTakenEffect) {
  // Seen later: it took effect after its invocation.
  EXPECT_TRUE(check_text("1 write k v1 0 - unknown\n2 read k v1 100 110 ok\n").is_linearizable);
  // Never seen: it did not take effect.
  EXPECT_TRUE(check_text("1 write k v1 0 5 unknown\n2 read k nil 100 110 ok\n").is_linearizable);
  // But not before it was invoked.
  EXPECT_FALSE(check_text("2 read k v1 0 10 ok\n1 write k v1 20 - unknown\n").is_linearizable);
}

TEST(HistoryFileTest, UnknownReadsAndFailedWritesConstrainNothing) {
  std::istringstream in(
      "1 read k - 0 - unknown\n"
      "1 write k v1 0 10 fail\n"
      "1 delete k 11 12 fail\n"
      "2 read k nil 20 30 ok\n");
  auto h = read_history(in);
  ASSERT_TRUE(h.has_value()) << h.error();
  EXPECT_EQ(h->records, 4u);
  EXPECT_EQ(h->failed, 2u);
  EXPECT_EQ(h->unknown, 1u);
  EXPECT_EQ(h->operations.size(), 1u);
  // A write reported failed whose value is read anyway is a violation: the value came from
  // nowhere.
  EXPECT_FALSE(check_text("1 write k v1 0 10 fail\n2 read k v1 20 30 ok\n").is_linearizable);
}

TEST(HistoryFileTest, FailedCasSaysTheKeyDidNotHoldTheExpectedValue) {
  EXPECT_FALSE(check_text("1 write k v1 0 10 ok\n2 cas k v1 v2 11 20 fail\n").is_linearizable);
  EXPECT_TRUE(check_text("1 write k v1 0 10 ok\n2 cas k v0 v2 11 20 fail\n").is_linearizable);
  // Expecting absence.
  EXPECT_TRUE(check_text("2 cas k nil v2 0 5 ok\n2 read k v2 6 7 ok\n").is_linearizable);
}

TEST(HistoryFileTest, OddValuesRoundTrip) {
  for (const std::string& v : {std::string(""), std::string("nil"), std::string("a b\tc"), std::string("%\"#"),
                               std::string("\x00\xff", 2), std::string("nilly")}) {
    Record r;
    r.process = 7;
    r.kind = OpKind::kCas;
    r.key = "key " + v;
    r.expected = v;
    r.value = v + "!";
    r.invoke_time = 3;
    r.complete_time = 9;
    r.outcome = Outcome::kFail;
    const std::string line = format_record(r);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    auto back = parse_record(line);
    ASSERT_TRUE(back.has_value()) << line << ": " << back.error();
    EXPECT_EQ(back->key, r.key);
    EXPECT_EQ(back->expected, r.expected) << line;
    EXPECT_EQ(back->value, r.value);
    EXPECT_EQ(back->outcome, Outcome::kFail);
  }
  Record absent;
  absent.kind = OpKind::kRead;
  absent.key = "k";
  absent.complete_time = 1;
  EXPECT_EQ(format_record(absent), "0 read k nil 0 1 ok");
  auto back = parse_record("0 read k nil 0 1 ok");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->read_result, std::nullopt);
}

RC_GTEST_PROP(HistoryFileProperty, AnyRecordRoundTrips, ()) {
  Record r;
  r.process = *rc::gen::arbitrary<uint64_t>();
  r.kind = static_cast<OpKind>(*rc::gen::inRange(0, 4));
  r.key = *rc::gen::arbitrary<std::string>();
  r.value = *rc::gen::arbitrary<std::string>();
  r.outcome = static_cast<Outcome>(*rc::gen::inRange(0, 3));
  if (r.kind != OpKind::kWrite && r.kind != OpKind::kCas) r.value.clear();
  if (r.kind == OpKind::kCas && *rc::gen::arbitrary<bool>()) r.expected = *rc::gen::arbitrary<std::string>();
  if (r.kind == OpKind::kRead && r.outcome == Outcome::kOk && *rc::gen::arbitrary<bool>()) {
    r.read_result = *rc::gen::arbitrary<std::string>();
  }
  r.invoke_time = *rc::gen::inRange<uint64_t>(0, 1'000'000);
  if (r.outcome != Outcome::kUnknown || *rc::gen::arbitrary<bool>()) {
    r.complete_time = r.invoke_time + *rc::gen::inRange<uint64_t>(0, 1000);
  }
  auto back = parse_record(format_record(r));
  RC_ASSERT(back.has_value());
  RC_ASSERT(back->process == r.process);
  RC_ASSERT(back->kind == r.kind);
  RC_ASSERT(back->key == r.key);
  RC_ASSERT(back->value == r.value);
  RC_ASSERT(back->expected == r.expected);
  RC_ASSERT(back->read_result == r.read_result);
  RC_ASSERT(back->invoke_time == r.invoke_time);
  RC_ASSERT(back->complete_time == r.complete_time);
  RC_ASSERT(back->outcome == r.outcome);
}

TEST(HistoryFileTest, MalformedLinesAreRejectedWithTheirNumber) {
  const std::pair<const char*, const char*> cases[] = {
      {"1 write k v1 0 10 ok\nx write k v 0 1 ok\n", "line 2: process"},
      {"1 frob k 0 1 ok\n", "unknown operation 'frob'"},
      {"1 write k 0 1 ok\n", "write takes 7 fields"},
      {"1 write k v1 0 10 maybe\n", "outcome must be ok, fail or unknown"},
      {"1 write k v1 10 5 ok\n", "complete time is before the invoke time"},
      {"1 write k v1 0 - ok\n", "needs its complete time"},
      {"1 write k v%4 0 1 ok\n", "bad %XX escape"},
      {"1 write k a\"b 0 1 ok\n", "must be escaped"},
  };
  for (const auto& [text, message] : cases) {
    std::istringstream in(text);
    auto h = read_history(in);
    ASSERT_FALSE(h.has_value()) << text;
    EXPECT_NE(h.error().find(message), std::string::npos) << text << " -> " << h.error();
  }
}

}  // namespace
}  // namespace aspen::lincheck
