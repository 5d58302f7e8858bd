// Prometheus text exposition (format 0.0.4), read and merged for operators' tools: the
// Prometheus adapter joins every member's metrics page into one page, in which each family
// appears once with the samples of every member; the terminal UI reads sample values out of
// a page. A member's page comes over the network, so it is parsed as untrusted bytes:
// bounded (the limits below, each named in its error), never trusted to be well formed.
//
//   auto page = ops::parse_exposition(text);   // Result<Exposition>
//   ops::merge_into(all, std::move(*page));     // families joined by name
//   std::string out = ops::render(all);
//   double v = ops::sample_value(*page, "aspen_raft_term", {{"node_id", "1"}}).value_or(0);
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace aspen::ops {

// One member's page. A node's own is ~30 KiB; 4 MiB leaves room for many peers and ops.
inline constexpr size_t kMaxExpositionBytes = size_t{4} << 20;
// Sample lines in one page, and in a merged page of every member.
inline constexpr size_t kMaxExpositionSamples = 50'000;
// Labels on one sample (Aspen's carry at most three: node_id, op or peer and alpn, le).
inline constexpr size_t kMaxLabelsPerSample = 16;
static_assert(kMaxExpositionSamples * 8 <= kMaxExpositionBytes, "the sample bound is the one that binds");

struct Label {
  std::string name;
  std::string value;  // unescaped
  bool operator==(const Label&) const = default;
};

struct Sample {
  std::string name;          // the series name, e.g. aspen_x_bucket
  std::vector<Label> labels;
  double value = 0;
  std::string line;          // as it was written, re-emitted by render()
};

// A metric family: HELP and TYPE once, then its samples (a histogram's _bucket, _sum and
// _count samples belong to it).
struct Family {
  std::string name;
  std::string help;  // as written (escapes kept)
  std::string type;  // counter | gauge | histogram | summary | untyped
  std::vector<Sample> samples;
};

struct Exposition {
  std::vector<Family> families;  // in order of first appearance
  size_t sample_count() const;
};

// Parses a page. InvalidArgument naming the line for malformed text; MessageTooLarge naming
// kMaxExpositionBytes / kMaxExpositionSamples / kMaxLabelsPerSample past a bound.
Result<Exposition> parse_exposition(std::string_view text);

// Adds `page`'s samples to `into`: a family already there (same name) takes them after its
// own, a new one is appended. A series (name and labels) already in `into` is dropped, so
// the result never repeats one. MessageTooLarge once `into` would pass kMaxExpositionSamples
// (`into` then holds what fit).
Status merge_into(Exposition& into, Exposition page);

// The page in the text format: per family HELP, TYPE, then its samples.
std::string render(const Exposition& page);

// The value of the first sample named `name` whose labels include all of `match`.
std::optional<double> sample_value(const Exposition& page, std::string_view name,
                                   const std::vector<Label>& match = {});
// Every sample named `name` whose labels include all of `match`.
std::vector<const Sample*> samples_named(const Exposition& page, std::string_view name,
                                         const std::vector<Label>& match = {});
// A label's value on a sample, or "" when it has none.
std::string_view label_value(const Sample& sample, std::string_view label);

// The q-quantile (0 < q < 1) of a histogram family's buckets that match `match`, estimated
// as Prometheus's histogram_quantile does (linear within the bucket). Counts are taken as
// given: pass the difference of two pages' buckets (bucket_deltas) for a recent quantile.
// Empty when there are no observations.
struct Bucket {
  double le = 0;      // upper bound; +infinity for the last
  double count = 0;   // cumulative
};
std::vector<Bucket> histogram_buckets(const Exposition& page, std::string_view family,
                                      const std::vector<Label>& match = {});
std::optional<double> histogram_quantile(double q, const std::vector<Bucket>& buckets);
// `now - before`, bucket by bucket (same bounds); empty if the bounds differ.
std::vector<Bucket> bucket_deltas(const std::vector<Bucket>& now, const std::vector<Bucket>& before);

}  // namespace aspen::ops
