#include "lincheck/linearizability.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace aspen::lincheck {
namespace {

using std::nullopt;

Operation write_op(uint64_t client, std::string key, std::string value, uint64_t invoke, uint64_t ret) {
  Operation op;
  op.client_id = client;
  op.kind = OpKind::kWrite;
  op.key = std::move(key);
  op.value = std::move(value);
  op.invoke_time = invoke;
  op.return_time = ret;
  return op;
}

Operation read_op(uint64_t client, std::string key, std::optional<std::string> result, uint64_t invoke,
                  uint64_t ret) {
  Operation op;
  op.client_id = client;
  op.kind = OpKind::kRead;
  op.key = std::move(key);
  op.read_result = std::move(result);
  op.invoke_time = invoke;
  op.return_time = ret;
  return op;
}

Operation cas_op(uint64_t client, std::string key, std::optional<std::string> expected, std::string value,
                 bool succeeded, uint64_t invoke, uint64_t ret) {
  Operation op;
  op.client_id = client;
  op.kind = OpKind::kCas;
  op.key = std::move(key);
  op.expected = std::move(expected);
  op.value = std::move(value);
  op.cas_succeeded = succeeded;
  op.invoke_time = invoke;
  op.return_time = ret;
  return op;
}

// The return time is deliberately left below the invoke time: the checker
// must ignore it for indeterminate ops.
Operation indeterminate(Operation op) {
  op.is_indeterminate = true;
  op.return_time = 0;
  op.cas_succeeded = false;
  return op;
}

bool linearizable(const std::vector<Operation>& history) {
  CheckResult r = check_linearizable(history);
  EXPECT_FALSE(r.is_exhausted) << r.explanation;
  return r.is_linearizable;
}

// ---------------------------------------------------------------------------
// Reference checker: enumerates every real-time-respecting order of the whole
// (unpartitioned) history directly, with no memoization or event list. It is
// exponential and only meant for histories of a handful of ops.
bool apply_reference(const Operation& op, std::map<std::string, std::optional<std::string>>& kv) {
  std::optional<std::string>& cur = kv[op.key];
  switch (op.kind) {
    case OpKind::kRead:
      return cur == op.read_result;
    case OpKind::kWrite:
      cur = op.value;
      return true;
    case OpKind::kDelete:
      cur.reset();
      return true;
    case OpKind::kCas: {
      bool matches = cur == op.expected;
      if (!op.is_indeterminate && matches != op.cas_succeeded) return false;
      if (matches) cur = op.value;
      return true;
    }
  }
  return false;
}

bool reference_search(const std::vector<Operation>& ops, std::vector<bool>& used,
                      std::map<std::string, std::optional<std::string>>& kv) {
  bool all_determinate_used = true;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!used[i] && !ops[i].is_indeterminate) all_determinate_used = false;
  }
  if (all_determinate_used) return true;  // leftover indeterminate ops never took effect
  for (size_t i = 0; i < ops.size(); ++i) {
    if (used[i]) continue;
    bool minimal = true;
    for (size_t j = 0; j < ops.size(); ++j) {
      if (!used[j] && !ops[j].is_indeterminate && ops[j].return_time < ops[i].invoke_time) minimal = false;
    }
    if (!minimal) continue;
    auto saved = kv;
    if (apply_reference(ops[i], kv)) {
      used[i] = true;
      if (reference_search(ops, used, kv)) return true;
      used[i] = false;
    }
    kv = std::move(saved);
  }
  return false;
}

bool reference_linearizable(const std::vector<Operation>& history) {
  std::vector<Operation> ops;
  for (const Operation& op : history) {
    if (!(op.is_indeterminate && op.kind == OpKind::kRead)) ops.push_back(op);
  }
  std::vector<bool> used(ops.size(), false);
  std::map<std::string, std::optional<std::string>> kv;
  return reference_search(ops, used, kv);
}

// ---------------------------------------------------------------------------
// Generates the history a client would observe from a sequential execution:
// op i takes effect at a strictly increasing instant lp_i and its observed
// interval [lp_i - before, lp_i + after] contains that instant, so the
// execution order itself is a witness linearization.
struct GenParams {
  size_t num_ops = 50;
  uint64_t num_keys = 2;
  uint64_t num_values = 3;  // 0: every write uses a unique value
  uint64_t max_gap = 10;
  uint64_t max_slack = 20;
  uint64_t indeterminate_percent = 10;
};

// uniform(lo, hi) returns a value in [lo, hi]; backed by rapidcheck or a PRNG.
using Uniform = std::function<uint64_t(uint64_t, uint64_t)>;

std::vector<Operation> generate_sequential_history(const GenParams& p, const Uniform& uniform) {
  std::map<std::string, std::optional<std::string>> kv;
  std::vector<Operation> history;
  uint64_t lp = p.max_slack;
  auto pick_value = [&](size_t i) {
    return "v" + std::to_string(p.num_values == 0 ? i : uniform(0, p.num_values - 1));
  };
  for (size_t i = 0; i < p.num_ops; ++i) {
    lp += uniform(1, p.max_gap);
    Operation op;
    op.client_id = i % 7;
    op.key = "k" + std::to_string(uniform(0, p.num_keys - 1));
    op.kind = static_cast<OpKind>(uniform(0, 3));
    op.invoke_time = lp - uniform(0, p.max_slack);
    op.return_time = lp + uniform(0, p.max_slack);
    op.is_indeterminate = uniform(0, 99) < p.indeterminate_percent;
    bool takes_effect = !op.is_indeterminate || uniform(0, 1) == 1;
    std::optional<std::string>& cur = kv[op.key];
    switch (op.kind) {
      case OpKind::kRead:
        op.read_result = cur;
        break;
      case OpKind::kWrite:
        op.value = pick_value(i);
        if (takes_effect) cur = op.value;
        break;
      case OpKind::kDelete:
        if (takes_effect) cur.reset();
        break;
      case OpKind::kCas:
        op.value = pick_value(i);
        // Half the time expect the current value so that successes are common.
        if (uniform(0, 1) == 1) {
          op.expected = cur;
        } else if (uniform(0, 3) > 0) {
          op.expected = pick_value(i + 1);
        }
        op.cas_succeeded = cur == op.expected;
        if (takes_effect && op.cas_succeeded) cur = op.value;
        if (op.is_indeterminate) op.cas_succeeded = false;
        break;
    }
    history.push_back(std::move(op));
  }
  return history;
}

// rapidcheck scales inRange by the test size, which would make early cases
// all reads with zero slack; draw from the full range instead (still shrinkable).
template <typename T>
T draw(T lo, T hi_inclusive) {
  return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange<T>(lo, hi_inclusive + 1));
}

Uniform rc_uniform() {
  return [](uint64_t lo, uint64_t hi) { return draw<uint64_t>(lo, hi); };
}

Uniform prng_uniform(std::mt19937_64& rng) {
  return [&rng](uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng); };
}

uint64_t max_time(const std::vector<Operation>& history) {
  uint64_t t = 0;
  for (const Operation& op : history) t = std::max({t, op.invoke_time, op.return_time});
  return t;
}

// ---------------------------------------------------------------------------
// Known-good and known-bad histories.

TEST(LinearizabilityTest, EmptyHistoryIsLinearizable) {
  CheckResult r = check_linearizable({});
  EXPECT_TRUE(r.is_linearizable);
  EXPECT_FALSE(r.is_exhausted);
}

TEST(LinearizabilityTest, ReadOfUnwrittenKeyReturnsAbsent) {
  EXPECT_TRUE(linearizable({read_op(1, "k", nullopt, 0, 1)}));
  EXPECT_FALSE(linearizable({read_op(1, "k", "x", 0, 1)}));
}

TEST(LinearizabilityTest, SequentialWriteThenReadOfWrittenValueIsAccepted) {
  EXPECT_TRUE(linearizable({write_op(1, "k", "a", 0, 10), read_op(2, "k", "a", 11, 12)}));
}

TEST(LinearizabilityTest, StaleReadAfterCompletedWriteIsRejected) {
  EXPECT_FALSE(linearizable({write_op(1, "k", "a", 0, 10), write_op(1, "k", "b", 11, 20),
                             read_op(2, "k", "a", 21, 30)}));
  EXPECT_FALSE(linearizable({write_op(1, "k", "a", 0, 10), read_op(2, "k", nullopt, 11, 12)}));
}

TEST(LinearizabilityTest, ConcurrentReadMaySeeOldOrNewValue) {
  std::vector<Operation> base = {write_op(1, "k", "a", 0, 1), write_op(1, "k", "b", 10, 20)};
  auto with_read = [&](std::optional<std::string> seen) {
    auto h = base;
    h.push_back(read_op(2, "k", std::move(seen), 15, 25));
    return h;
  };
  EXPECT_TRUE(linearizable(with_read("a")));
  EXPECT_TRUE(linearizable(with_read("b")));
  EXPECT_FALSE(linearizable(with_read(nullopt)));
}

TEST(LinearizabilityTest, OpsTouchingAtOneInstantCountAsConcurrent) {
  // Precedence requires return_time < invoke_time strictly.
  EXPECT_TRUE(linearizable({write_op(1, "k", "a", 0, 5), read_op(2, "k", nullopt, 5, 6)}));
  EXPECT_FALSE(linearizable({write_op(1, "k", "a", 0, 5), read_op(2, "k", nullopt, 6, 7)}));
  // Zero-length intervals at the same instant are concurrent too.
  EXPECT_TRUE(linearizable({read_op(2, "k", "a", 5, 5), write_op(1, "k", "a", 5, 5)}));
}

TEST(LinearizabilityTest, NewThenOldReadsByTwoSequentialReadersAreRejected) {
  // The write overlaps both reads, but once a reader saw the new value a later
  // reader must not see the old one.
  EXPECT_FALSE(linearizable({write_op(1, "k", "old", 0, 1), write_op(1, "k", "new", 10, 100),
                             read_op(2, "k", "new", 20, 30), read_op(3, "k", "old", 40, 50)}));
  EXPECT_TRUE(linearizable({write_op(1, "k", "old", 0, 1), write_op(1, "k", "new", 10, 100),
                            read_op(2, "k", "old", 20, 30), read_op(3, "k", "new", 40, 50)}));
}

TEST(LinearizabilityTest, ReadOfValueNeverWrittenIsRejected) {
  EXPECT_FALSE(linearizable({write_op(1, "k", "a", 0, 10), read_op(2, "k", "zzz", 5, 15)}));
}

TEST(LinearizabilityTest, ConcurrentCasFromAbsentBothSucceedingIsRejected) {
  EXPECT_FALSE(linearizable({cas_op(1, "k", nullopt, "a", true, 0, 10), cas_op(2, "k", nullopt, "b", true, 0, 10)}));
}

TEST(LinearizabilityTest, ConcurrentCasFromAbsentOneWinsIsAccepted) {
  std::vector<Operation> h = {cas_op(1, "k", nullopt, "a", true, 0, 10),
                              cas_op(2, "k", nullopt, "b", false, 0, 10), read_op(3, "k", "a", 11, 12)};
  EXPECT_TRUE(linearizable(h));
  h[2].read_result = "b";  // the loser's value can never be visible
  EXPECT_FALSE(linearizable(h));
}

TEST(LinearizabilityTest, DeterminateCasMustMatchObservedOutcome) {
  EXPECT_FALSE(linearizable({write_op(1, "k", "a", 0, 1), cas_op(2, "k", "a", "b", false, 2, 3)}));
  EXPECT_FALSE(linearizable({write_op(1, "k", "a", 0, 1), cas_op(2, "k", "x", "b", true, 2, 3)}));
  EXPECT_TRUE(linearizable({write_op(1, "k", "a", 0, 1), cas_op(2, "k", "a", "b", true, 2, 3),
                            cas_op(2, "k", "a", "c", false, 4, 5), read_op(3, "k", "b", 6, 7)}));
}

TEST(LinearizabilityTest, IndeterminateWriteLaterReadIsAccepted) {
  EXPECT_TRUE(linearizable({indeterminate(write_op(1, "k", "a", 0, 0)), read_op(2, "k", "a", 100, 101)}));
}

TEST(LinearizabilityTest, IndeterminateWriteNeverObservedIsAccepted) {
  EXPECT_TRUE(linearizable({write_op(1, "k", "a", 0, 1), indeterminate(write_op(2, "k", "b", 5, 0)),
                            read_op(3, "k", "a", 100, 101), read_op(3, "k", "a", 200, 201)}));
}

TEST(LinearizabilityTest, IndeterminateWriteCannotTakeEffectBeforeItsInvocation) {
  EXPECT_FALSE(linearizable({read_op(2, "k", "a", 0, 1), indeterminate(write_op(1, "k", "a", 5, 0))}));
}

TEST(LinearizabilityTest, IndeterminateWriteObservedThenLostIsRejected) {
  EXPECT_FALSE(linearizable({indeterminate(write_op(1, "k", "a", 0, 0)), read_op(2, "k", "a", 10, 11),
                             read_op(3, "k", nullopt, 20, 21)}));
}

TEST(LinearizabilityTest, IndeterminateCasMayHaveEitherOutcome) {
  std::vector<Operation> h = {indeterminate(cas_op(1, "k", nullopt, "a", false, 0, 0)),
                              read_op(2, "k", "a", 10, 11)};
  EXPECT_TRUE(linearizable(h));
  h[1].read_result = nullopt;
  EXPECT_TRUE(linearizable(h));
  // But it still obeys CAS semantics: it cannot install its value over "x".
  EXPECT_FALSE(linearizable({write_op(3, "k", "x", 0, 1), indeterminate(cas_op(1, "k", nullopt, "a", false, 2, 0)),
                             read_op(2, "k", "a", 10, 11)}));
}

TEST(LinearizabilityTest, EachLostWriteCanExplainOnlyOneFailedCas) {
  // A failed CAS expecting "a" while "a" is current needs some other write in
  // between; each timed-out write can serve as that write at most once.
  std::vector<Operation> h = {write_op(1, "k", "a", 0, 1),
                              indeterminate(write_op(2, "k", "u1", 2, 0)),
                              cas_op(1, "k", "a", "z", false, 10, 11),
                              write_op(1, "k", "a", 20, 21),
                              cas_op(1, "k", "a", "z", false, 30, 31)};
  EXPECT_FALSE(linearizable(h));
  h.push_back(indeterminate(write_op(3, "k", "u2", 2, 0)));
  EXPECT_TRUE(linearizable(h));
}

TEST(LinearizabilityTest, IndeterminateReadsAreIgnored) {
  Operation bogus = indeterminate(read_op(1, "k", "never", 0, 0));
  EXPECT_TRUE(linearizable({bogus, write_op(2, "k", "a", 5, 6), read_op(3, "k", "a", 7, 8)}));
}

TEST(LinearizabilityTest, ReadAfterCompletedDeleteMustSeeAbsent) {
  Operation del = write_op(1, "k", "", 15, 20);
  del.kind = OpKind::kDelete;
  EXPECT_TRUE(linearizable({write_op(1, "k", "a", 0, 10), del, read_op(2, "k", nullopt, 21, 22)}));
  EXPECT_FALSE(linearizable({write_op(1, "k", "a", 0, 10), del, read_op(2, "k", "a", 21, 22)}));
  // A CAS expecting absence succeeds after the delete, not between the write and it.
  Operation cas = cas_op(3, "k", nullopt, "b", true, 23, 24);
  EXPECT_TRUE(linearizable({write_op(1, "k", "a", 0, 10), del, cas}));
  cas.invoke_time = 11;
  cas.return_time = 12;
  EXPECT_FALSE(linearizable({write_op(1, "k", "a", 0, 10), del, cas}));
}

TEST(LinearizabilityTest, DeterminateOpReturningBeforeInvokeThrows) {
  EXPECT_THROW(check_linearizable({write_op(1, "k", "a", 10, 9)}), std::invalid_argument);
}

TEST(LinearizabilityTest, BadKeyAmongGoodKeysIsReportedByName) {
  std::vector<Operation> h = {
      write_op(1, "alpha", "a1", 0, 1), read_op(2, "alpha", "a1", 2, 3),
      write_op(7, "beta", "b1", 0, 1),  write_op(7, "beta", "b2", 2, 3),
      read_op(8, "beta", "b1", 4, 5),  // stale
      write_op(1, "gamma", "g1", 0, 1), read_op(2, "gamma", "g1", 2, 3),
  };
  CheckResult r = check_linearizable(h);
  EXPECT_FALSE(r.is_linearizable);
  EXPECT_FALSE(r.is_exhausted);
  EXPECT_EQ(r.failing_key, "beta");
  // The explanation lists the failing key's ops with clients, values and times.
  EXPECT_NE(r.explanation.find("client 8 read() -> \"b1\" [4, 5]"), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("client 7 write(\"b2\") [2, 3]"), std::string::npos) << r.explanation;
  EXPECT_EQ(r.explanation.find("alpha"), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("longest linearizable prefix"), std::string::npos) << r.explanation;
}

TEST(LinearizabilityTest, DescribeOperationShowsOutcomeAndTimes) {
  EXPECT_EQ(describe_operation(cas_op(3, "k", nullopt, "v1", true, 10, 17)),
            "client 3 cas(<absent> -> \"v1\") = ok [10, 17]");
  EXPECT_EQ(describe_operation(indeterminate(write_op(4, "k", "x", 5, 0))),
            "client 4 write(\"x\") [5, ?) indeterminate");
}

// ---------------------------------------------------------------------------
// Scale and search-budget behaviour.

std::vector<Operation> large_history(uint64_t seed) {
  std::mt19937_64 rng(seed);
  GenParams p;
  p.num_ops = 1500;
  p.num_keys = 3;      // ~500 ops per key
  p.num_values = 0;    // unique values, as the simulator's clients write
  p.max_gap = 3;
  p.max_slack = 25;    // ~12 ops in flight at any instant, ~4 per key
  p.indeterminate_percent = 5;
  return generate_sequential_history(p, prng_uniform(rng));
}

TEST(LinearizabilityTest, LargeConcurrentHistoryIsAcceptedQuickly) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    auto start = std::chrono::steady_clock::now();
    CheckResult r = check_linearizable(large_history(seed));
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(r.is_linearizable) << r.explanation;
    EXPECT_FALSE(r.is_exhausted);
    // Generous bound so that slow CI machines do not flake; typical is ms.
    EXPECT_LT(elapsed, std::chrono::seconds(5));
  }
}

// Appends, after everything else, a completed overwrite of "k0" followed by
// a read of the value it overwrote.
std::vector<Operation> with_trailing_stale_read(std::vector<Operation> h) {
  uint64_t t = max_time(h) + 10;
  h.push_back(write_op(99, "k0", "final", t, t + 1));
  h.push_back(write_op(99, "k0", "final2", t + 2, t + 3));
  h.push_back(read_op(98, "k0", "final", t + 4, t + 5));
  return h;
}

TEST(LinearizabilityTest, LargeHistoryWithOneStaleReadIsRejected) {
  CheckResult r = check_linearizable(with_trailing_stale_read(large_history(7)));
  EXPECT_FALSE(r.is_linearizable);
  EXPECT_FALSE(r.is_exhausted);
  EXPECT_EQ(r.failing_key, "k0");
}

TEST(LinearizabilityTest, ExhaustedBudgetIsInconclusiveRatherThanAFailure) {
  CheckResult r = check_linearizable(with_trailing_stale_read(large_history(11)), /*budget_states=*/20);
  EXPECT_TRUE(r.is_exhausted);
  EXPECT_TRUE(r.is_linearizable);
  EXPECT_TRUE(r.failing_key.empty());
  EXPECT_NE(r.explanation.find("exhausted"), std::string::npos);
}

// Many timed-out writes that never took effect are the common shape of a
// partitioned cluster; the search must not try all 2^n subsets of them.
std::vector<Operation> many_lost_writes(size_t n) {
  std::vector<Operation> h = {write_op(1, "k", "a", 0, 1)};
  for (size_t i = 0; i < n; ++i) {
    h.push_back(indeterminate(write_op(2 + i, "k", "lost" + std::to_string(i), 2 + i, 0)));
  }
  for (uint64_t t = 1000; t < 1100; t += 10) h.push_back(read_op(1, "k", "a", t, t + 1));
  return h;
}

TEST(LinearizabilityTest, ManyLostIndeterminateWritesAreCheckedQuickly) {
  CheckResult ok = check_linearizable(many_lost_writes(60), 1'000'000);
  EXPECT_TRUE(ok.is_linearizable) << ok.explanation;
  EXPECT_FALSE(ok.is_exhausted);

  auto bad = many_lost_writes(60);
  bad.push_back(read_op(5, "k", nullopt, 2000, 2001));  // absent can never come back
  CheckResult r = check_linearizable(bad, 1'000'000);
  EXPECT_FALSE(r.is_linearizable);
  EXPECT_FALSE(r.is_exhausted);
}

// ---------------------------------------------------------------------------
// Properties.

RC_GTEST_PROP(LinearizabilityProperty, SequentialExecutionWithConsistentTimingIsLinearizable, ()) {
  GenParams p;
  p.num_ops = *rc::gen::inRange<size_t>(0, 81);  // size-scaled: small cases first
  p.num_keys = draw<uint64_t>(1, 3);
  p.num_values = draw<uint64_t>(0, 3);
  p.max_gap = draw<uint64_t>(1, 10);
  // Up to ~10 ops in flight, like a handful of sequential clients; the search
  // is exponential in the number of concurrently pending ops. 0: no overlap.
  p.max_slack = draw<uint64_t>(0, 2 * p.max_gap + 1);
  p.indeterminate_percent = draw<uint64_t>(0, 29);
  auto history = generate_sequential_history(p, rc_uniform());
  // Input order must not matter to the checker.
  std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
  std::shuffle(history.begin(), history.end(), rng);
  CheckResult r = check_linearizable(history);
  RC_ASSERT(r.is_linearizable);
  RC_ASSERT(!r.is_exhausted);
}

RC_GTEST_PROP(LinearizabilityProperty, ReadOfValueNeverWrittenIsNotLinearizable, ()) {
  GenParams p;
  p.num_ops = *rc::gen::inRange<size_t>(0, 61);
  p.num_keys = draw<uint64_t>(1, 2);
  p.num_values = draw<uint64_t>(0, 3);
  p.max_slack = draw<uint64_t>(0, 2 * p.max_gap + 1);
  p.indeterminate_percent = draw<uint64_t>(0, 29);
  auto history = generate_sequential_history(p, rc_uniform());
  uint64_t invoke = draw<uint64_t>(0, max_time(history) + 10);
  uint64_t duration = draw<uint64_t>(0, 49);
  std::string key = "k" + std::to_string(draw<uint64_t>(0, p.num_keys - 1));
  history.push_back(read_op(42, key, "phantom", invoke, invoke + duration));
  CheckResult r = check_linearizable(history);
  RC_ASSERT(!r.is_linearizable);
  RC_ASSERT(!r.is_exhausted);
  RC_ASSERT(r.failing_key == key);
}

RC_GTEST_PROP(LinearizabilityProperty, AgreesWithBruteForceOnSmallHistories, ()) {
  GenParams p;
  p.num_ops = draw<size_t>(1, 7);
  p.num_keys = draw<uint64_t>(1, 2);
  p.num_values = draw<uint64_t>(0, 3);
  p.max_gap = 3;
  p.max_slack = draw<uint64_t>(0, 3);
  p.indeterminate_percent = draw<uint64_t>(0, 50);
  auto history = generate_sequential_history(p, rc_uniform());
  // Perturb the valid history most of the time so that both verdicts are
  // common: corrupt an observation, or move an op to an arbitrary interval.
  size_t perturbations = draw<size_t>(0, 2);
  for (size_t n = 0; n < perturbations; ++n) {
    Operation& op = history[draw<size_t>(0, history.size() - 1)];
    if (*rc::gen::arbitrary<bool>()) {
      op.invoke_time = draw<uint64_t>(0, max_time(history));
      op.return_time = op.invoke_time + draw<uint64_t>(0, 9);
      continue;
    }
    switch (op.kind) {
      case OpKind::kRead:
        op.read_result = *rc::gen::element<std::optional<std::string>>(nullopt, "v0", "v1", "v2");
        break;
      case OpKind::kWrite:
        op.value = *rc::gen::element<std::string>("v0", "v1", "v2");
        break;
      case OpKind::kDelete:
        // A lost delete: the key keeps its value.
        op.kind = OpKind::kWrite;
        op.value = *rc::gen::element<std::string>("v0", "v1", "v2");
        break;
      case OpKind::kCas:
        op.cas_succeeded = !op.cas_succeeded;
        op.is_indeterminate = false;
        break;
    }
  }
  bool expected = reference_linearizable(history);
  RC_CLASSIFY(expected, "linearizable");
  RC_CLASSIFY(!expected, "violation");
  RC_TAG(perturbations);
  CheckResult r = check_linearizable(history);
  RC_ASSERT(!r.is_exhausted);
  RC_ASSERT(r.is_linearizable == expected);
}

}  // namespace
}  // namespace aspen::lincheck
