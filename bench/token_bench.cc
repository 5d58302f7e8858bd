// Cost of verifying a capability token: what a node pays per request (or per connection, if
// it caches the result) before it authorizes anything. One Ed25519 verification per chain
// level dominates; decoding the chain and checking the narrowing rules are the rest.
//
//   build/aspen_bench --benchmark_filter=Token
#include <benchmark/benchmark.h>

#include <string>

#include "auth/authorize.h"
#include "auth/token.h"
#include "core/assert.h"

namespace {

using aspen::auth::Action;
using aspen::auth::Capability;
using aspen::auth::KeyBytes;
using aspen::auth::SeedBytes;
using aspen::auth::TokenSpec;

constexpr uint64_t kNowS = 1767225600;

SeedBytes seed_of(uint8_t byte) {
  SeedBytes seed{};
  seed.fill(byte);
  return seed;
}

TokenSpec spec(const KeyBytes& audience, std::vector<Capability> capabilities, uint8_t id) {
  TokenSpec s{audience, std::move(capabilities), kNowS - 60, kNowS + 3600, {}};
  s.id.fill(id);
  return s;
}

void run_verify(benchmark::State& state, const std::string& token, const KeyBytes& root,
                const KeyBytes& presenter) {
  const std::function<bool(const aspen::auth::TokenId&)> none_revoked =
      [](const aspen::auth::TokenId&) { return false; };
  for (auto _ : state) {
    auto verified = aspen::auth::verify_token(token, root, presenter, kNowS, none_revoked);
    ASPEN_ASSERT(verified.has_value());
    benchmark::DoNotOptimize(verified);
  }
  state.counters["token_bytes"] = static_cast<double>(token.size());
  state.SetItemsProcessed(state.iterations());
}

void BM_TokenVerifyRootIssued(benchmark::State& state) {
  const SeedBytes root = seed_of(1);
  const KeyBytes client = aspen::auth::public_key_of(seed_of(2));
  const std::string token = *aspen::auth::issue_token(
      root, spec(client, {{Action::kRead, "app/"}, {Action::kWrite, "app/"}}, 1));
  run_verify(state, token, aspen::auth::public_key_of(root), client);
}
BENCHMARK(BM_TokenVerifyRootIssued);

// root -> a -> b -> c: three signatures to check.
void BM_TokenVerifyDepth3Chain(benchmark::State& state) {
  const SeedBytes root = seed_of(1), a = seed_of(2), b = seed_of(3);
  const KeyBytes a_key = aspen::auth::public_key_of(a), b_key = aspen::auth::public_key_of(b);
  const KeyBytes c_key = aspen::auth::public_key_of(seed_of(4));
  const Capability delegate{Action::kDelegate, ""};
  auto t1 = aspen::auth::issue_token(root, spec(a_key, {{Action::kFull, "app/"}, delegate}, 1));
  auto t2 =
      aspen::auth::delegate_token(*t1, a, spec(b_key, {{Action::kWrite, "app/b/"}, delegate}, 2));
  auto t3 = aspen::auth::delegate_token(*t2, b, spec(c_key, {{Action::kWrite, "app/b/c/"}}, 3));
  ASPEN_ASSERT(t3.has_value());
  run_verify(state, *t3, aspen::auth::public_key_of(root), c_key);
}
BENCHMARK(BM_TokenVerifyDepth3Chain);

void BM_TokenAllowsKey(benchmark::State& state) {
  aspen::auth::VerifiedToken token;
  for (int i = 0; i < 8; ++i)
    token.capabilities.push_back({Action::kRead, "tenant" + std::to_string(i) + "/"});
  for (auto _ : state)
    benchmark::DoNotOptimize(aspen::auth::allows_key(token, Action::kRead, "tenant7/users/42"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenAllowsKey);

}  // namespace
