// Cost of verified streaming (src/blob) on a 64 MiB blob, next to plain BLAKE3 of the same
// buffer: computing the outboard (through a reader, which copies, and in place), encoding the whole
// blob as a range (the sender checks every node it sends), verifying it (the receiver), and the two
// ends together, as one process would run them over a loopback connection. Each pass hashes the
// data once, so each should run close to plain hashing; the difference is the per-group overhead
// (one extra parent compression, a reader or writer call and a copy per 16 KiB).
//
//   build/aspen_bench --benchmark_filter=Blob
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "blob/blob_io.h"
#include "blob/outboard.h"
#include "blob/range_encoder.h"
#include "blob/range_verifier.h"
#include "core/assert.h"
#include "crypto/blake3.h"

namespace {

using namespace aspen;

constexpr size_t kBlobBytes = size_t{64} << 20;

const std::vector<uint8_t>& blob_data() {
  static const std::vector<uint8_t> data = [] {
    std::vector<uint8_t> d(kBlobBytes);
    std::mt19937_64 rng(64);
    for (size_t i = 0; i < d.size(); i += 8) {
      const uint64_t w = rng();
      std::memcpy(d.data() + i, &w, 8);
    }
    return d;
  }();
  return data;
}

const blob::Outboard& blob_outboard() {
  static const blob::Outboard ob =
      *blob::compute_outboard(kBlobBytes, blob::blob_reader_over(blob_data()));
  return ob;
}

void BM_BlobPlainBlake3(benchmark::State& state) {
  const auto& data = blob_data();
  for (auto _ : state) benchmark::DoNotOptimize(crypto::blake3_hash(data));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBlobBytes));
}
BENCHMARK(BM_BlobPlainBlake3)->Unit(benchmark::kMillisecond);

void BM_BlobComputeOutboard(benchmark::State& state) {
  const auto& data = blob_data();
  for (auto _ : state) {
    auto ob = blob::compute_outboard(kBlobBytes, blob::blob_reader_over(data));
    ASPEN_ASSERT(ob.has_value());
    benchmark::DoNotOptimize(ob);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBlobBytes));
}
BENCHMARK(BM_BlobComputeOutboard)->Unit(benchmark::kMillisecond);

// The same, hashing the blob in place (in memory or memory-mapped): no reader, no copy.
void BM_BlobComputeOutboardInPlace(benchmark::State& state) {
  const auto& data = blob_data();
  for (auto _ : state) {
    auto ob = blob::compute_outboard(data);
    ASPEN_ASSERT(ob.has_value());
    benchmark::DoNotOptimize(ob);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBlobBytes));
}
BENCHMARK(BM_BlobComputeOutboardInPlace)->Unit(benchmark::kMillisecond);

void BM_BlobEncodeWholeRange(benchmark::State& state) {
  const auto& data = blob_data();
  const auto& ob = blob_outboard();
  for (auto _ : state) {
    uint64_t sent = 0;
    Status s = blob::encode_range(ob.root, kBlobBytes, ob.parents, blob::blob_reader_over(data),
                                  {0, kBlobBytes}, [&](std::span<const uint8_t> frame) -> Status {
                                    sent += frame.size();
                                    return {};
                                  });
    ASPEN_ASSERT(s.has_value() && sent == kBlobBytes + ob.parents.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBlobBytes));
}
BENCHMARK(BM_BlobEncodeWholeRange)->Unit(benchmark::kMillisecond);

// The receiver alone, fed the encoding in 64 KiB pieces (a typical stream read).
void BM_BlobVerifyWholeRange(benchmark::State& state) {
  const auto& data = blob_data();
  const auto& ob = blob_outboard();
  std::vector<uint8_t> encoded;
  encoded.reserve(kBlobBytes + ob.parents.size());
  Status s = blob::encode_range(ob.root, kBlobBytes, ob.parents, blob::blob_reader_over(data),
                                {0, kBlobBytes}, [&](std::span<const uint8_t> frame) -> Status {
                                  encoded.insert(encoded.end(), frame.begin(), frame.end());
                                  return {};
                                });
  ASPEN_ASSERT(s.has_value());
  constexpr size_t kPieceBytes = 64 << 10;
  for (auto _ : state) {
    auto v = blob::RangeVerifier::create(ob.root, kBlobBytes, {0, kBlobBytes});
    uint64_t verified = 0;
    auto sink = [&](uint64_t, std::span<const uint8_t> d) -> Status {
      verified += d.size();
      return {};
    };
    for (size_t at = 0; at < encoded.size(); at += kPieceBytes) {
      ASPEN_ASSERT(v->feed(
          std::span(encoded).subspan(at, std::min(kPieceBytes, encoded.size() - at)), sink));
    }
    ASPEN_ASSERT(v->is_complete() && verified == kBlobBytes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBlobBytes));
}
BENCHMARK(BM_BlobVerifyWholeRange)->Unit(benchmark::kMillisecond);

// Sender and receiver in one loop: each frame the encoder writes goes straight into the
// verifier. Bytes/s counts the blob once (both ends hash it, so about half of one end's rate).
void BM_BlobEncodeThenVerify(benchmark::State& state) {
  const auto& data = blob_data();
  const auto& ob = blob_outboard();
  for (auto _ : state) {
    auto v = blob::RangeVerifier::create(ob.root, kBlobBytes, {0, kBlobBytes});
    uint64_t verified = 0;
    auto sink = [&](uint64_t, std::span<const uint8_t> d) -> Status {
      verified += d.size();
      return {};
    };
    Status s = blob::encode_range(
        ob.root, kBlobBytes, ob.parents, blob::blob_reader_over(data), {0, kBlobBytes},
        [&](std::span<const uint8_t> frame) { return v->feed(frame, sink); });
    ASPEN_ASSERT(s.has_value() && v->is_complete() && verified == kBlobBytes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBlobBytes));
}
BENCHMARK(BM_BlobEncodeThenVerify)->Unit(benchmark::kMillisecond);

// One 16 KiB group from the middle: what a random read of a large blob costs the two ends.
void BM_BlobEncodeThenVerifyOneGroup(benchmark::State& state) {
  const auto& data = blob_data();
  const auto& ob = blob_outboard();
  const blob::ByteRange range{kBlobBytes / 2 + 100, kBlobBytes / 2 + 200};
  for (auto _ : state) {
    auto v = blob::RangeVerifier::create(ob.root, kBlobBytes, range);
    auto sink = [](uint64_t, std::span<const uint8_t>) -> Status { return {}; };
    Status s =
        blob::encode_range(ob.root, kBlobBytes, ob.parents, blob::blob_reader_over(data), range,
                           [&](std::span<const uint8_t> frame) { return v->feed(frame, sink); });
    ASPEN_ASSERT(s.has_value() && v->is_complete());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BlobEncodeThenVerifyOneGroup)->Unit(benchmark::kMicrosecond);

}  // namespace
