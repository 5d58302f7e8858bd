#include "node/clock_offset.h"

#include "core/assert.h"

namespace aspen::node {

namespace {

bool is_plausible(int64_t t_us) { return t_us > 0 && t_us < kMaxClockTimestampUs; }

// a / 2 rounded to nearest, half away from zero (so that +x and -x give opposite results).
int64_t half(int64_t a) { return a >= 0 ? (a + 1) / 2 : -((-a + 1) / 2); }

}  // namespace

std::optional<ClockSample> estimate_clock_offset(const ClockExchange& e) {
  if (!is_plausible(e.t1_us) || !is_plausible(e.t2_us) || !is_plausible(e.t3_us) || !is_plausible(e.t4_us)) {
    return std::nullopt;
  }
  // Each side's interval by its own clock; a clock stepped back in between shows as negative.
  const int64_t asker_us = e.t4_us - e.t1_us;
  const int64_t answerer_us = e.t3_us - e.t2_us;
  if (asker_us < 0 || answerer_us < 0) return std::nullopt;
  const int64_t rtt_us = asker_us - answerer_us;
  if (rtt_us < 0 || rtt_us > kMaxClockSampleRttUs) return std::nullopt;
  // Both terms are below 2^53 in magnitude: the sum cannot overflow.
  const int64_t offset_us = half((e.t2_us - e.t1_us) + (e.t3_us - e.t4_us));
  return ClockSample{offset_us, rtt_us};
}

void ClockFilter::add(const ClockSample& sample, uint64_t now_ms) {
  ASPEN_ASSERT(sample.rtt_us >= 0);
  entries_[next_] = Entry{sample, now_ms};
  next_ = (next_ + 1) % kClockFilterSamples;
  if (count_ < kClockFilterSamples) ++count_;
}

std::optional<ClockSample> ClockFilter::best(uint64_t now_ms) const {
  std::optional<Entry> best;
  for (size_t i = 0; i < count_; ++i) {
    const Entry& e = entries_[i];
    if (now_ms > e.at_ms && now_ms - e.at_ms > kClockSampleMaxAgeMs) continue;
    if (!best || e.sample.rtt_us < best->sample.rtt_us ||
        (e.sample.rtt_us == best->sample.rtt_us && e.at_ms >= best->at_ms)) {
      best = e;
    }
  }
  if (!best) return std::nullopt;
  return best->sample;
}

std::optional<uint64_t> ClockFilter::last_sample_ms() const {
  if (count_ == 0) return std::nullopt;
  return entries_[(next_ + kClockFilterSamples - 1) % kClockFilterSamples].at_ms;
}

}  // namespace aspen::node
