// Every fuzz target (fuzz/harness) on every run of the suite: its seeds, every input in its
// committed corpus (fuzz/corpus/<target>/), and random mutations of them. A broken property
// aborts, failing the suite. This is a replay with blind mutations, not a coverage-guided
// fuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "fuzz/harness/harness.h"

namespace aspen::fuzz {
namespace {

std::vector<std::string> corpus_of(std::string_view target) {
  std::vector<std::string> out;
  const std::filesystem::path dir = std::filesystem::path(ASPEN_SOURCE_DIR) / "fuzz" / "corpus" / std::string(target);
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(f.path(), std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

std::string mutate(std::string s, const std::vector<std::string>& pool, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 6);
  for (int e = 0; e < edits; ++e) {
    if (s.empty()) s.push_back(static_cast<char>(rng()));
    switch (rng() % 5) {
      case 0: s[rng() % s.size()] = static_cast<char>(rng()); break;
      case 1: s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8)); break;
      case 2: s.erase(rng() % s.size(), 1 + rng() % 16); break;
      case 3: s.insert(rng() % s.size(), 1 + rng() % 16, static_cast<char>(rng())); break;
      default: {  // splice in a piece of another input
        const std::string& other = pool[rng() % pool.size()];
        if (other.empty()) break;
        const size_t from = rng() % other.size();
        s.insert(rng() % s.size(), other.substr(from, 1 + rng() % 64));
        break;
      }
    }
  }
  return s;
}

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, SeedsCorpusAndMutationsKeepEveryProperty) {
  const Target& t = GetParam();
  std::vector<std::string> pool = t.seeds();
  ASSERT_FALSE(pool.empty());
  const auto corpus = corpus_of(t.name);
  pool.insert(pool.end(), corpus.begin(), corpus.end());
  for (const auto& input : pool) t.one_input(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  std::mt19937 rng(20261202);
  for (int i = 0; i < 1500; ++i) {
    const std::string input = mutate(pool[rng() % pool.size()], pool, rng);
    t.one_input(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  std::printf("[ info ] %s: %zu seeds, %zu corpus inputs, 1500 mutations\n", std::string(t.name).c_str(),
              t.seeds().size(), corpus.size());
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(targets()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace aspen::fuzz
