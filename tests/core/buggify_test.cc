// BUGGIFY sites and probes: off (and free) without a session, seeded and deterministic in one.
#include <gtest/gtest.h>

#include "core/buggify.h"

namespace aspen::buggify {
namespace {

// Evaluates every fault site `rounds` times in catalogue order and hits one probe.
uint64_t exercise(int rounds) {
  uint64_t fired = 0;
  for (int i = 0; i < rounds; ++i) {
    fired += ASPEN_BUGGIFY("node.apply_not_deferred");
    fired += ASPEN_BUGGIFY("node.compaction_early");
    fired += ASPEN_BUGGIFY("node.message_dropped");
    fired += ASPEN_BUGGIFY("node.message_duplicated");
    fired += ASPEN_BUGGIFY("node.read_batch_flushed_early");
    fired += ASPEN_BUGGIFY("node.snapshot_chunk_failed");
    fired += ASPEN_BUGGIFY("node.tick_skipped");
    fired += ASPEN_BUGGIFY("raft.commit_broadcast_eager");
    fired += ASPEN_BUGGIFY("raft.quorum_check_early");
    ASPEN_PROBE("raft.election_lost");
  }
  return fired;
}

TEST(Buggify, NothingFiresWithoutASession) { EXPECT_EQ(exercise(10000), 0u); }

TEST(Buggify, ReportListsTheWholeCatalogueByName) {
  Session session(SessionOptions{});
  exercise(3);
  Report r = session.report();
  ASSERT_EQ(r.sites.size(), kFaultSiteCount);
  ASSERT_EQ(r.probes.size(), kProbeCount);
  EXPECT_EQ(r.runs, 1u);
  for (size_t i = 1; i < r.sites.size(); ++i) EXPECT_LT(r.sites[i - 1].name, r.sites[i].name);
  for (size_t i = 1; i < r.probes.size(); ++i) EXPECT_LT(r.probes[i - 1].name, r.probes[i].name);
  for (const auto& s : r.sites) EXPECT_EQ(s.evaluations, 3u) << s.name;
  for (const auto& p : r.probes) EXPECT_EQ(p.hits, p.name == "raft.election_lost" ? 3u : 0u) << p.name;
}

TEST(Buggify, SameSeedArmsAndFiresTheSameSites) {
  auto run = [](uint64_t seed) {
    Session session(SessionOptions{.seed = seed});
    exercise(500);
    return session.report();
  };
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Report a = run(seed);
    Report b = run(seed);
    for (size_t i = 0; i < a.sites.size(); ++i) {
      EXPECT_EQ(a.sites[i].runs_armed, b.sites[i].runs_armed) << seed << " " << a.sites[i].name;
      EXPECT_EQ(a.sites[i].fires, b.sites[i].fires) << seed << " " << a.sites[i].name;
    }
  }
}

TEST(Buggify, AboutAQuarterOfTheSitesIsArmedAndOnlyArmedSitesFire) {
  Report total;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    Session session(SessionOptions{.seed = seed});
    exercise(200);
    Report r = session.report();
    for (const auto& s : r.sites) {
      if (s.runs_armed == 0) {
        EXPECT_EQ(s.fires, 0u) << seed << " " << s.name;
      }
    }
    total.merge(r);
  }
  EXPECT_EQ(total.runs, 400u);
  for (const auto& s : total.sites) {
    // 400 runs at 25 %: 100 expected; a site far outside [60, 140] is not drawn fairly.
    EXPECT_GT(s.runs_armed, 60u) << s.name;
    EXPECT_LT(s.runs_armed, 140u) << s.name;
    EXPECT_GT(s.fires, 0u) << s.name;
    EXPECT_LT(s.fires, s.evaluations / 4) << s.name << ": fires at most 25 % of armed evaluations";
  }
}

TEST(Buggify, SessionThatMayNotFireStillCounts) {
  Session session(SessionOptions{.seed = 7, .site_armed_per_mille = 1000, .may_fire = false});
  EXPECT_EQ(exercise(1000), 0u);
  session.set_may_fire(true);
  EXPECT_GT(exercise(1000), 0u) << "every site armed: some must fire in 1000 rounds";
  for (const auto& s : session.report().sites) EXPECT_EQ(s.evaluations, 2000u) << s.name;
}

TEST(Buggify, ClosingTheSessionTurnsEverythingOff) {
  {
    Session session(SessionOptions{.seed = 3, .site_armed_per_mille = 1000});
    EXPECT_GT(exercise(1000), 0u);
  }
  EXPECT_EQ(exercise(1000), 0u);
}

}  // namespace
}  // namespace aspen::buggify
