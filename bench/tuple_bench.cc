// Cost of the tuple layer (src/layer/tuple.h): what every layer key pays to be built and read.
// A typical key: a directory prefix's worth of elements, a string, an integer id and a UUID.
//
//   build/aspen_bench --benchmark_filter=Tuple
#include <benchmark/benchmark.h>

#include "core/assert.h"
#include "layer/tuple.h"

namespace {

using aspen::layer::Bytes;
using aspen::layer::Element;
using aspen::layer::Tuple;
using aspen::layer::Uuid;

Tuple typical_tuple() {
  Uuid u;
  for (size_t i = 0; i < u.bytes.size(); ++i) u.bytes[i] = static_cast<uint8_t>(i * 37);
  return Tuple{Bytes{std::string("\x15\x07", 2)}, "users", int64_t{1234567}, "alice@example.com", u, true};
}

void BM_TuplePack(benchmark::State& state) {
  Tuple t = typical_tuple();
  for (auto _ : state) {
    std::string key = aspen::layer::pack(t);
    benchmark::DoNotOptimize(key);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TuplePack);

void BM_TupleUnpack(benchmark::State& state) {
  std::string key = aspen::layer::pack(typical_tuple());
  for (auto _ : state) {
    auto t = aspen::layer::unpack(key);
    ASPEN_ASSERT(t.has_value());
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TupleUnpack);

void BM_TuplePackOneInteger(benchmark::State& state) {
  Tuple t{int64_t{-5551212}};
  for (auto _ : state) {
    std::string key = aspen::layer::pack(t);
    benchmark::DoNotOptimize(key);
  }
}
BENCHMARK(BM_TuplePackOneInteger);

}  // namespace
