// Clock offset estimation between two nodes, NTP-style, without I/O (issue 17, "Clock drift
// detection").
//
// A leader stamps each heartbeat with its wall clock (t1); the follower notes when it arrived
// by its own clock (t2) and answers, echoing t1 with t2 and its clock at the answer (t3); the
// leader notes the answer's arrival (t4). Then, as in NTP (RFC 5905 §8):
//
//   offset = ((t2 - t1) + (t3 - t4)) / 2     the follower's clock minus the leader's
//   rtt    = (t4 - t1) - (t3 - t2)           the round trip, without the follower's pause
//
// If the two one-way delays are equal the offset is exact; however they differ, the error is
// at most rtt / 2 (the true offset lies in [offset - rtt/2, offset + rtt/2]). So the sample
// with the smallest round trip is the one to trust: ClockFilter keeps the last few and
// answers with the least-delayed (Mills' clock filter, simplified).
//
//   auto s = estimate_clock_offset({t1, t2, t3, t4});   // nullopt: an impossible exchange
//   filter.add(*s, now_ms);  filter.best(now_ms);
//
// Every timestamp comes from the network, so nothing here trusts one: out-of-range or
// inconsistent times are refused, and no arithmetic can overflow.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

namespace aspen::node {

// Wall-clock timestamps are microseconds since the Unix epoch. Anything outside (0, 2^53)
// (2^53 us is the year 2255) is no clock reading: refused, which also keeps every difference
// and sum below far from int64's range.
inline constexpr int64_t kMaxClockTimestampUs = int64_t{1} << 53;
// An exchange whose round trip took longer than this says nothing useful about offsets (a
// heartbeat answer that waited behind a storage stall or a snapshot): refused.
inline constexpr int64_t kMaxClockSampleRttUs = 10'000'000;
// Samples ClockFilter keeps (at the default 100 ms heartbeat: the last 0.8 s), and the age past
// which a sample no longer counts even if no newer one came.
inline constexpr size_t kClockFilterSamples = 8;
inline constexpr uint64_t kClockSampleMaxAgeMs = 30'000;

// NTP's four timestamps of one heartbeat round: t1, t4 by the asking node's clock; t2, t3
// by the answering node's.
struct ClockExchange {
  int64_t t1_us = 0;  // the heartbeat left the asker
  int64_t t2_us = 0;  // it reached the answerer
  int64_t t3_us = 0;  // the answer left the answerer
  int64_t t4_us = 0;  // the answer reached the asker
};

struct ClockSample {
  int64_t offset_us = 0;  // the answerer's clock minus the asker's
  int64_t rtt_us = 0;     // >= 0; the offset is within rtt/2 of the truth
  friend bool operator==(const ClockSample&, const ClockSample&) = default;
};

// The sample of one exchange, or nullopt when the exchange is impossible or useless: a
// timestamp outside (0, kMaxClockTimestampUs), t4 before t1 or t3 before t2 (a clock that
// stepped back meanwhile), a negative round trip, or one over kMaxClockSampleRttUs.
std::optional<ClockSample> estimate_clock_offset(const ClockExchange& e);

// The last kClockFilterSamples samples of one peer; best() is the one with the smallest
// round trip among those younger than kClockSampleMaxAgeMs (ties: the newest). Times are a
// monotonic clock's milliseconds.
class ClockFilter {
 public:
  void add(const ClockSample& sample, uint64_t now_ms);
  std::optional<ClockSample> best(uint64_t now_ms) const;
  // The newest sample's time, if any.
  std::optional<uint64_t> last_sample_ms() const;

 private:
  struct Entry {
    ClockSample sample;
    uint64_t at_ms = 0;
  };
  std::array<Entry, kClockFilterSamples> entries_{};
  size_t count_ = 0;  // entries in use, at most kClockFilterSamples
  size_t next_ = 0;   // where the next sample goes (the oldest once full)
};

}  // namespace aspen::node
