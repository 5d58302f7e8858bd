// aspen-sim: runs the deterministic cluster simulator.
//
//   aspen-sim --seed 42                 one run, replayable exactly
//   aspen-sim --seeds 1:1000            a soak over a range of seeds
//   aspen-sim --seed 42 --verbose       replay with a trace of every fault and election
//   aspen-sim --seeds 1:3000 --quiet --coverage
//                                       which situations the runs reached, which BUGGIFY
//                                       sites fired, which probes were hit
//
// Exit codes: 0 all runs passed, 1 an invariant broke, 2 a run made no progress after
// faults healed, 64 bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

#include "core/log.h"
#include "sim/simulation.h"

namespace {

constexpr int kExitUsage = 64;

struct SeedRange {
  uint64_t first = 1;
  uint64_t last = 1;
};

bool parse_range(const std::string& spec, SeedRange& out) {
  size_t colon = spec.find(':');
  try {
    if (colon == std::string::npos) {
      out.first = out.last = std::stoull(spec);
    } else {
      out.first = std::stoull(spec.substr(0, colon));
      out.last = std::stoull(spec.substr(colon + 1));
    }
  } catch (const std::exception&) {
    return false;
  }
  return out.first <= out.last;
}

// Per situation (sim::Situation): in how many runs it was reached, and how often in all.
struct SituationTally {
  std::array<uint64_t, aspen::sim::kSituationCount> runs{};
  std::array<uint64_t, aspen::sim::kSituationCount> hits{};
  void add(const aspen::sim::SituationCounts& c) {
    for (size_t i = 0; i < c.size(); ++i) {
      runs[i] += c[i] > 0 ? 1 : 0;
      hits[i] += c[i];
    }
  }
};

// The soak's coverage: the situations reached, every catalogued site and probe by name, and
// those never reached.
void print_coverage(uint64_t total_runs, const SituationTally& situations, const aspen::buggify::Report& report) {
  std::printf("\nsituations over %llu runs\n%-44s %10s %8s %12s\n", static_cast<unsigned long long>(total_runs),
              "situation", "runs", "% runs", "hits");
  std::string never_reached;
  for (size_t i = 0; i < aspen::sim::kSituationCount; ++i) {
    const auto s = static_cast<aspen::sim::Situation>(i);
    std::printf("%-44s %10llu %7.1f%% %12llu\n", aspen::sim::situation_name(s),
                static_cast<unsigned long long>(situations.runs[i]),
                total_runs > 0 ? 100.0 * static_cast<double>(situations.runs[i]) / static_cast<double>(total_runs) : 0.0,
                static_cast<unsigned long long>(situations.hits[i]));
    if (situations.runs[i] == 0) {
      never_reached += fmt::format("  {}: {}\n", aspen::sim::situation_name(s), aspen::sim::situation_meaning(s));
    }
  }
  std::printf("situations NEVER reached:\n%s", never_reached.empty() ? "  (none)\n" : never_reached.c_str());
  std::printf("\ncoverage over %llu runs\n%-48s %10s %14s %12s\n", static_cast<unsigned long long>(report.runs),
              "BUGGIFY site", "runs armed", "evaluations", "fires");
  std::string never_fired;
  for (const auto& s : report.sites) {
    std::printf("%-48s %10llu %14llu %12llu\n", s.name.c_str(), static_cast<unsigned long long>(s.runs_armed),
                static_cast<unsigned long long>(s.evaluations), static_cast<unsigned long long>(s.fires));
    if (s.fires == 0) never_fired += "  " + s.name + "\n";
  }
  std::printf("\n%-48s %10s\n", "probe", "hits");
  std::string never_hit;
  for (const auto& p : report.probes) {
    std::printf("%-48s %10llu\n", p.name.c_str(), static_cast<unsigned long long>(p.hits));
    if (p.hits == 0) never_hit += "  " + p.name + "\n";
  }
  std::printf("\nBUGGIFY sites that NEVER fired:\n%s", never_fired.empty() ? "  (none)\n" : never_fired.c_str());
  std::printf("probes NEVER hit:\n%s\n", never_hit.empty() ? "  (none)\n" : never_hit.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Aspen deterministic simulator: runs Raft clusters under injected faults (crashes, "
      "partitions, message loss, membership changes, ...) and checks safety invariants and "
      "linearizability. Every run is reproducible from its seed."};
  uint64_t seed = 1;
  std::string seeds_spec;
  uint64_t steps = 20000;
  std::string faults_spec = "all";
  std::string bug;
  bool is_verbose = false;
  bool is_quiet = false;
  bool should_check_determinism = false;
  bool should_report_coverage = false;
  bool is_buggify_off = false;
  app.add_option("--seed", seed, "Run one simulation with this seed")->capture_default_str();
  app.add_option("--seeds", seeds_spec, "Run every seed in a range, e.g. 1:100000");
  app.add_option("--steps", steps, "Events in the fault phase of each run")->capture_default_str();
  app.add_option("--faults", faults_spec,
                 "Faults to inject: all, none, or a comma list of crash, partition, loss, "
                 "duplicate, membership, transfer, compaction, drift, buggify, targeted")
      ->capture_default_str();
  app.add_option("--bug", bug,
                 "Plant a known bug around the nodes' code to show the simulator catches it: "
                 "skip-election-restriction or stale-reads (scripts/mutants.sh plants bugs in the code itself)");
  app.add_flag("--verbose", is_verbose, "Trace faults, elections and membership changes");
  app.add_flag("--quiet", is_quiet, "Print only failures and the summary");
  app.add_flag("--check-determinism", should_check_determinism,
               "Run each seed twice and fail if the two runs differ");
  app.add_flag("--coverage", should_report_coverage,
               "At the end, print in how many runs each situation that matters was reached, how "
               "often each BUGGIFY site fired and each probe was hit, and list those never reached");
  app.add_flag("--no-buggify", is_buggify_off, "Never fire BUGGIFY sites (probes are still counted)");
  app.footer(
      "Examples:\n"
      "  aspen-sim --seed 7                 replay seed 7\n"
      "  aspen-sim --seeds 1:500 --quiet    run 500 seeds, print a summary\n"
      "  aspen-sim --seed 7 --faults crash,partition --steps 50000\n"
      "  aspen-sim --seeds 1:3000 --quiet --coverage   which BUGGIFY sites fired, probes hit\n"
      "Exit codes: 0 passed, 1 invariant broken, 2 no progress, 64 bad usage.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  aspen::log::set_level(is_verbose ? "info" : "error");

  auto faults = aspen::sim::FaultSet::parse(faults_spec);
  if (!faults) {
    std::fprintf(stderr, "aspen-sim: %s\n", faults.error().message().c_str());
    return kExitUsage;
  }
  if (!bug.empty() && bug != "skip-election-restriction" && bug != "stale-reads") {
    std::fprintf(stderr,
                 "aspen-sim: unknown --bug '%s' (skip-election-restriction or stale-reads; bugs in the code itself, "
                 "such as Figure 8's, are planted by scripts/mutants.sh)\n",
                 bug.c_str());
    return kExitUsage;
  }
  SeedRange range{seed, seed};
  if (!seeds_spec.empty() && !parse_range(seeds_spec, range)) {
    std::fprintf(stderr, "aspen-sim: --seeds wants FIRST:LAST with FIRST <= LAST, got '%s'\n",
                 seeds_spec.c_str());
    return kExitUsage;
  }

  auto started = std::chrono::steady_clock::now();
  uint64_t runs = 0;
  uint64_t broken = 0;
  uint64_t stuck = 0;
  uint64_t total_ops = 0;
  uint64_t inconclusive = 0;
  // Side by side in one run: the seeds with targeted faults and those without.
  uint64_t targeted_runs = 0;
  uint64_t targeted_ops = 0;
  aspen::buggify::Report coverage;
  SituationTally situations;
  for (uint64_t s = range.first; s <= range.last; ++s) {
    auto opts = aspen::sim::SimOptions::from_seed(s, steps, *faults);
    opts.should_plant_stale_reads = bug == "stale-reads";
    opts.should_plant_skip_election_restriction = bug == "skip-election-restriction";
    opts.is_verbose = is_verbose;
    if (is_buggify_off) opts.is_buggify_enabled = false;
    // The drawn options and knobs first, so that a trace can be read against them.
    if (is_verbose) std::fprintf(stderr, "seed %llu options: %s\n", static_cast<unsigned long long>(s), opts.describe().c_str());
    auto r = aspen::sim::run_simulation(opts);
    ++runs;
    coverage.merge(r.coverage);
    situations.add(r.situations);
    total_ops += r.stats.ops_ok;
    if (aspen::sim::has_targeted_faults(opts)) {
      ++targeted_runs;
      targeted_ops += r.stats.ops_ok;
    }
    inconclusive += r.stats.linearizability_inconclusive;
    if (should_check_determinism && r.verdict == aspen::sim::SimVerdict::kOk) {
      auto again = aspen::sim::run_simulation(opts);
      if (again.event_hash != r.event_hash) {
        r.verdict = aspen::sim::SimVerdict::kInvariantBroken;
        r.failure = fmt::format("nondeterminism: event hash {:016x} then {:016x}", r.event_hash,
                                again.event_hash);
      }
    }
    bool is_ok = r.verdict == aspen::sim::SimVerdict::kOk;
    if (!is_ok || !is_quiet) {
      const auto& st = r.stats;
      std::printf(
          "seed %llu: %s  %llu events, %llu ms simulated, ops ok/failed/unknown %llu/%llu/%llu, "
          "leaders %llu, crashes %llu, partitions %llu, conf changes %llu, snapshots %llu, "
          "max term %llu, commit %llu, past reads %llu (%llu compacted), hash %016llx\n",
          static_cast<unsigned long long>(s), is_ok ? "ok" : "FAILED",
          static_cast<unsigned long long>(st.events), static_cast<unsigned long long>(st.sim_time_ms),
          static_cast<unsigned long long>(st.ops_ok), static_cast<unsigned long long>(st.ops_failed),
          static_cast<unsigned long long>(st.ops_indeterminate),
          static_cast<unsigned long long>(st.leaders_elected), static_cast<unsigned long long>(st.crashes),
          static_cast<unsigned long long>(st.partitions),
          static_cast<unsigned long long>(st.conf_changes_applied),
          static_cast<unsigned long long>(st.snapshots_installed),
          static_cast<unsigned long long>(st.max_term), static_cast<unsigned long long>(st.max_commit),
          static_cast<unsigned long long>(st.past_reads_checked),
          static_cast<unsigned long long>(st.past_reads_compacted), static_cast<unsigned long long>(r.event_hash));
    }
    if (!is_ok) {
      std::printf("  options: %s\n  failure: %s\n  replay: aspen-sim --seed %llu --steps %llu --faults %s%s%s\n",
                  opts.describe().c_str(), r.failure.c_str(), static_cast<unsigned long long>(s),
                  static_cast<unsigned long long>(steps), faults->to_string().c_str(),
                  bug.empty() ? "" : " --bug ", bug.c_str());
      if (r.verdict == aspen::sim::SimVerdict::kNoProgress) {
        ++stuck;
      } else {
        ++broken;
      }
    }
    std::fflush(stdout);
  }
  if (should_report_coverage) print_coverage(runs, situations, coverage);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  {
    const uint64_t plain_runs = runs - targeted_runs;
    std::printf("  client ops per run: %.0f in %llu runs with targeted faults, %.0f in %llu runs without\n",
                targeted_runs > 0 ? static_cast<double>(targeted_ops) / static_cast<double>(targeted_runs) : 0.0,
                static_cast<unsigned long long>(targeted_runs),
                plain_runs > 0 ? static_cast<double>(total_ops - targeted_ops) / static_cast<double>(plain_runs) : 0.0,
                static_cast<unsigned long long>(plain_runs));
  }
  std::printf("aspen-sim: %llu runs, %llu invariant failures, %llu without progress, %llu client ops, "
              "%llu linearizability checks inconclusive (search budget); %.1f s (%.0f seeds/min)\n",
              static_cast<unsigned long long>(runs), static_cast<unsigned long long>(broken),
              static_cast<unsigned long long>(stuck), static_cast<unsigned long long>(total_ops),
              static_cast<unsigned long long>(inconclusive), secs,
              secs > 0 ? static_cast<double>(runs) * 60.0 / secs : 0.0);
  if (broken > 0) return 1;
  if (stuck > 0) return 2;
  return 0;
}
