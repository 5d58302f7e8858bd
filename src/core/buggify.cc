#include "core/buggify.h"

#include <array>

#include "core/assert.h"
#include "core/rng.h"

namespace aspen::buggify {

namespace detail {

// A site's fire chance once armed, drawn per run: rare, occasional or frequent, so that a
// site's effect is seen both alone and en masse across seeds.
constexpr std::array<uint32_t, 3> kFirePerMilleChoices = {10, 50, 250};

struct State {
  explicit State(const SessionOptions& options) : rng(options.seed ^ 0xb0661f1eb0661f1eULL), may_fire(options.may_fire) {
    for (size_t i = 0; i < kFaultSiteCount; ++i) {
      // From the seed and the name alone, not from the order in which sites are first
      // reached: adding a site or moving a call does not re-arm the others.
      uint64_t h = 0xcbf29ce484222325ULL ^ options.seed;
      for (unsigned char c : kFaultSites[i].name) {
        h ^= c;
        h *= 0x100000001b3ULL;
      }
      Rng site_rng(h);
      sites[i].is_armed = site_rng.chance(options.site_armed_per_mille, 1000);
      sites[i].fire_per_mille = kFirePerMilleChoices[site_rng.uniform(kFirePerMilleChoices.size())];
    }
  }

  struct Site {
    bool is_armed = false;
    uint32_t fire_per_mille = 0;
    uint64_t evaluations = 0;
    uint64_t fires = 0;
  };
  Rng rng;  // the coins of armed sites; evaluated in the run's deterministic order
  bool may_fire = true;
  std::array<Site, kFaultSiteCount> sites{};
  std::array<uint64_t, kProbeCount> probe_hits{};
};

std::atomic<State*> g_state{nullptr};

bool fire(size_t site) {
  State* st = g_state.load(std::memory_order_relaxed);
  ASPEN_ASSERT(st != nullptr && site < kFaultSiteCount);
  State::Site& s = st->sites[site];
  ++s.evaluations;
  // The coin is thrown only for armed sites, so that an unarmed site does not shift the
  // draws of the others.
  if (!st->may_fire || !s.is_armed || !st->rng.chance(s.fire_per_mille, 1000)) return false;
  ++s.fires;
  return true;
}

void hit(size_t probe) {
  State* st = g_state.load(std::memory_order_relaxed);
  ASPEN_ASSERT(st != nullptr && probe < kProbeCount);
  ++st->probe_hits[probe];
}

}  // namespace detail

Session::Session(const SessionOptions& options) {
  ASPEN_ASSERT(options.site_armed_per_mille <= 1000);
  auto* state = new detail::State(options);
  detail::State* expected = nullptr;
  const bool is_first = detail::g_state.compare_exchange_strong(expected, state, std::memory_order_relaxed);
  ASPEN_ASSERT_MSG(is_first, "one buggify session at a time");
}

Session::~Session() { delete detail::g_state.exchange(nullptr, std::memory_order_relaxed); }

void Session::set_may_fire(bool may_fire) { detail::g_state.load(std::memory_order_relaxed)->may_fire = may_fire; }

Report Session::report() const {
  const detail::State* st = detail::g_state.load(std::memory_order_relaxed);
  ASPEN_ASSERT(st != nullptr);
  Report r;
  r.runs = 1;
  for (size_t i = 0; i < kFaultSiteCount; ++i) {
    const auto& s = st->sites[i];
    r.sites.push_back(SiteCount{std::string(kFaultSites[i].name), s.is_armed ? 1u : 0u, s.evaluations, s.fires});
  }
  for (size_t i = 0; i < kProbeCount; ++i) {
    r.probes.push_back(ProbeCount{std::string(kProbes[i].name), st->probe_hits[i]});
  }
  return r;
}

void Report::merge(const Report& other) {
  if (other.runs == 0) return;
  if (runs == 0) {
    *this = other;
    return;
  }
  ASPEN_ASSERT(sites.size() == other.sites.size() && probes.size() == other.probes.size());
  runs += other.runs;
  for (size_t i = 0; i < sites.size(); ++i) {
    ASPEN_ASSERT(sites[i].name == other.sites[i].name);
    sites[i].runs_armed += other.sites[i].runs_armed;
    sites[i].evaluations += other.sites[i].evaluations;
    sites[i].fires += other.sites[i].fires;
  }
  for (size_t i = 0; i < probes.size(); ++i) {
    ASPEN_ASSERT(probes[i].name == other.probes[i].name);
    probes[i].hits += other.probes[i].hits;
  }
}

}  // namespace aspen::buggify
