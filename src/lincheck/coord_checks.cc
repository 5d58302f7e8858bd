#include "lincheck/coord_checks.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>

namespace aspen::lincheck {

namespace {

const char* outcome_word(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kFail: return "fail";
    case Outcome::kUnknown: return "unknown";
  }
  return "unknown";
}

std::optional<Outcome> parse_outcome_word(std::string_view w) {
  if (w == "ok") return Outcome::kOk;
  if (w == "fail") return Outcome::kFail;
  if (w == "unknown") return Outcome::kUnknown;
  return std::nullopt;
}

template <typename T>
std::optional<T> parse_number(std::string_view w) {
  T v{};
  auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
  if (ec != std::errc{} || p != w.data() + w.size()) return std::nullopt;
  return v;
}

// `-` (no completion: unknown outcomes) reads as 0.
std::optional<uint64_t> parse_time(std::string_view w) {
  if (w == "-") return uint64_t{0};
  return parse_number<uint64_t>(w);
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<std::string> parse_line(std::string_view line, CoordHistory& h) {
  const auto w = split(line);
  const std::string_view kind = w[0];
  auto bad = [&](std::string_view why) { return std::optional<std::string>(fmt::format("{} line: {}", kind, why)); };
  if (kind == "final") {
    if (w.size() != 2) return bad("expected `final <value>`");
    auto v = parse_number<int64_t>(w[1]);
    if (!v) return bad("bad value");
    h.counter_final = *v;
    return std::nullopt;
  }
  if (kind == "lock") {
    if (w.size() != 7) return bad("expected 7 fields");
    LockHolding x;
    auto p = parse_number<uint64_t>(w[1]);
    auto t = parse_number<uint64_t>(w[2]);
    auto ai = parse_number<uint64_t>(w[3]);
    auto ac = parse_number<uint64_t>(w[4]);
    auto ri = parse_number<uint64_t>(w[5]);
    auto o = parse_outcome_word(w[6]);
    if (!p || !t || !ai || !ac || !ri || !o) return bad("bad number or outcome");
    if (*ac < *ai || *ri < *ac) return bad("times out of order");
    x.process = *p; x.token = *t; x.acquire_invoke = *ai; x.acquire_complete = *ac; x.release_invoke = *ri;
    x.release = *o;
    h.holdings.push_back(x);
    return std::nullopt;
  }
  if (kind == "inc") {
    if (w.size() != 6) return bad("expected 6 fields");
    CounterIncrement x;
    auto p = parse_number<uint64_t>(w[1]);
    auto i = parse_number<uint64_t>(w[3]);
    auto c = parse_time(w[4]);
    auto o = parse_outcome_word(w[5]);
    if (!p || !i || !c || !o) return bad("bad number or outcome");
    if (*o == Outcome::kOk) {
      auto v = parse_number<int64_t>(w[2]);
      if (!v) return bad("an ok increment needs its value");
      if (*c < *i) return bad("times out of order");
      x.value = *v;
    }
    x.process = *p; x.invoke = *i; x.complete = *c; x.outcome = *o;
    h.increments.push_back(x);
    return std::nullopt;
  }
  if (kind == "enq" || kind == "deliver" || kind == "ack") {
    const bool is_deliver = kind == "deliver";
    if (w.size() != (is_deliver ? 6u : 7u)) return bad(is_deliver ? "expected 6 fields" : "expected 7 fields");
    QueueOp x;
    x.kind = kind == "enq" ? QueueOp::Kind::kEnqueue : is_deliver ? QueueOp::Kind::kDeliver : QueueOp::Kind::kAck;
    auto p = parse_number<uint64_t>(w[1]);
    auto q = parse_time(w[3]);
    auto i = parse_number<uint64_t>(w[4]);
    auto c = is_deliver ? parse_number<uint64_t>(w[5]) : parse_time(w[5]);
    auto o = is_deliver ? std::optional<Outcome>(Outcome::kOk) : parse_outcome_word(w[6]);
    if (!p || !q || !i || !c || !o) return bad("bad number or outcome");
    if (*o != Outcome::kUnknown && *c < *i) return bad("times out of order");
    if (*q == 0 && x.kind != QueueOp::Kind::kEnqueue) return bad("a delivery or ack needs its sequence number");
    x.process = *p; x.payload = std::string(w[2]); x.seq = *q; x.invoke = *i; x.complete = *c; x.outcome = *o;
    h.queue.push_back(std::move(x));
    return std::nullopt;
  }
  return bad("unknown kind");
}

}  // namespace

void CoordReport::add(std::string v) {
  ++violations;
  if (listed.size() < kMaxListedViolations) listed.push_back(std::move(v));
}

void check_lock(const std::vector<LockHolding>& holdings, CoordReport& report) {
  // Tokens are distinct.
  std::unordered_map<uint64_t, const LockHolding*> by_token;
  for (const auto& h : holdings) {
    auto [it, is_new] = by_token.emplace(h.token, &h);
    if (!is_new) {
      report.add(fmt::format("lock: token {} granted twice (processes {} and {})", h.token, it->second->process,
                             h.process));
    }
  }
  // Confirmed holdings never overlap: sorted by start, each starts after every earlier one
  // ended.
  std::vector<const LockHolding*> confirmed;
  for (const auto& h : holdings) {
    if (h.release == Outcome::kOk) confirmed.push_back(&h);
  }
  std::sort(confirmed.begin(), confirmed.end(),
            [](const LockHolding* a, const LockHolding* b) { return a->acquire_complete < b->acquire_complete; });
  const LockHolding* longest = nullptr;  // the earlier holding that ends last
  for (const LockHolding* h : confirmed) {
    if (longest != nullptr && h->acquire_complete <= longest->release_invoke) {
      report.add(fmt::format("lock: two holders at once: process {} (token {}) held it from {} to {}, process {} "
                             "(token {}) from {} to {}",
                             longest->process, longest->token, longest->acquire_complete, longest->release_invoke,
                             h->process, h->token, h->acquire_complete, h->release_invoke));
    }
    if (longest == nullptr || h->release_invoke > longest->release_invoke) longest = h;
  }
  // Tokens increase in real-time order of grants: sorted by acquire completion, a prefix
  // maximum of tokens; each acquire must beat the largest token of those that completed
  // before it was invoked.
  std::vector<const LockHolding*> by_complete;
  for (const auto& h : holdings) by_complete.push_back(&h);
  std::sort(by_complete.begin(), by_complete.end(),
            [](const LockHolding* a, const LockHolding* b) { return a->acquire_complete < b->acquire_complete; });
  std::vector<const LockHolding*> prefix_max(by_complete.size());
  for (size_t i = 0; i < by_complete.size(); ++i) {
    prefix_max[i] = (i == 0 || by_complete[i]->token > prefix_max[i - 1]->token) ? by_complete[i] : prefix_max[i - 1];
  }
  for (const auto& h : holdings) {
    auto it = std::lower_bound(by_complete.begin(), by_complete.end(), h.acquire_invoke,
                               [](const LockHolding* a, uint64_t t) { return a->acquire_complete < t; });
    if (it == by_complete.begin()) continue;
    const LockHolding* before = prefix_max[static_cast<size_t>(it - by_complete.begin()) - 1];
    if (before->token >= h.token) {
      report.add(fmt::format("lock: token {} (process {}, acquire invoked at {}) is not above token {} of an acquire "
                             "that completed before, at {} (process {})",
                             h.token, h.process, h.acquire_invoke, before->token, before->acquire_complete,
                             before->process));
    }
  }
  report.summary.push_back(fmt::format("lock: {} holdings ({} confirmed by their release), tokens {}..{}",
                                       holdings.size(), confirmed.size(),
                                       by_complete.empty() ? 0 : by_complete.front()->token,
                                       by_complete.empty() ? 0 : prefix_max.back()->token));
}

void check_counter(const std::vector<CounterIncrement>& increments, std::optional<int64_t> final_value,
                   CoordReport& report) {
  std::vector<const CounterIncrement*> ok;
  std::vector<uint64_t> maybe_invokes;  // invoke times of increments that may have applied
  uint64_t unknown = 0;
  for (const auto& i : increments) {
    if (i.outcome == Outcome::kOk) ok.push_back(&i);
    if (i.outcome == Outcome::kUnknown) ++unknown;
    if (i.outcome != Outcome::kFail) maybe_invokes.push_back(i.invoke);
  }
  std::sort(maybe_invokes.begin(), maybe_invokes.end());
  std::unordered_map<int64_t, const CounterIncrement*> by_value;
  for (const CounterIncrement* i : ok) {
    auto [it, is_new] = by_value.emplace(i->value, i);
    if (!is_new) {
      report.add(fmt::format("counter: value {} returned twice (processes {} and {})", i->value,
                             it->second->process, i->process));
    }
    const auto invoked_before = static_cast<int64_t>(
        std::upper_bound(maybe_invokes.begin(), maybe_invokes.end(), i->complete) - maybe_invokes.begin());
    if (i->value < 1 || i->value > invoked_before) {
      report.add(fmt::format("counter: process {} got {} but only {} increments had been invoked when it completed",
                             i->process, i->value, invoked_before));
    }
  }
  // Real-time order: the value of an increment is above every value returned before it was
  // invoked.
  std::vector<const CounterIncrement*> by_complete = ok;
  std::sort(by_complete.begin(), by_complete.end(),
            [](const CounterIncrement* a, const CounterIncrement* b) { return a->complete < b->complete; });
  std::vector<int64_t> prefix_max(by_complete.size());
  for (size_t k = 0; k < by_complete.size(); ++k) {
    prefix_max[k] = k == 0 ? by_complete[k]->value : std::max(prefix_max[k - 1], by_complete[k]->value);
  }
  for (const CounterIncrement* i : ok) {
    auto it = std::lower_bound(by_complete.begin(), by_complete.end(), i->invoke,
                               [](const CounterIncrement* a, uint64_t t) { return a->complete < t; });
    if (it == by_complete.begin()) continue;
    const int64_t before = prefix_max[static_cast<size_t>(it - by_complete.begin()) - 1];
    if (before >= i->value) {
      report.add(fmt::format("counter: process {} got {} though {} had been returned before it was invoked (at {})",
                             i->process, i->value, before, i->invoke));
    }
  }
  const auto n_ok = static_cast<int64_t>(ok.size());
  const auto n_max = n_ok + static_cast<int64_t>(unknown);
  if (!final_value) {
    report.add("counter: no final value was read after healing");
  } else if (*final_value < n_ok) {
    report.add(fmt::format("counter: final value {} is below the {} acknowledged increments (an acknowledged "
                           "increment was lost)",
                           *final_value, n_ok));
  } else if (*final_value > n_max) {
    report.add(fmt::format("counter: final value {} is above the {} increments that may have applied ({} ok, {} "
                           "unknown): an increment applied twice",
                           *final_value, n_max, n_ok, unknown));
  } else if (!ok.empty() && prefix_max.back() > *final_value) {
    report.add(fmt::format("counter: value {} was returned but the final value is {}", prefix_max.back(),
                           *final_value));
  }
  report.summary.push_back(fmt::format("counter: {} increments ({} ok, {} unknown), final value {} (allowed {}..{})",
                                       increments.size(), n_ok, unknown,
                                       final_value ? std::to_string(*final_value) : "-", n_ok, n_max));
}

void check_queue(const std::vector<QueueOp>& ops, CoordReport& report) {
  std::map<std::string, Outcome> enqueued;          // payload -> best outcome of its enqueue
  std::map<std::string, uint64_t> delivered;        // payload -> deliveries
  std::map<uint64_t, uint64_t> first_ack_done;      // seq -> earliest completion of an ok ack
  std::map<std::string, std::set<uint64_t>> seqs;   // payload -> sequence numbers it was enqueued as
  uint64_t enq_ok = 0, deliveries = 0, acks_ok = 0;
  for (const auto& op : ops) {
    switch (op.kind) {
      case QueueOp::Kind::kEnqueue: {
        if (op.outcome == Outcome::kOk) ++enq_ok;
        if (op.seq != 0) seqs[op.payload].insert(op.seq);
        auto [it, is_new] = enqueued.emplace(op.payload, op.outcome);
        if (!is_new && op.outcome == Outcome::kOk) it->second = Outcome::kOk;
        if (!is_new && it->second == Outcome::kFail) it->second = op.outcome;
        break;
      }
      case QueueOp::Kind::kDeliver:
        ++deliveries;
        ++delivered[op.payload];
        seqs[op.payload].insert(op.seq);
        break;
      case QueueOp::Kind::kAck:
        if (op.outcome != Outcome::kOk) break;
        ++acks_ok;
        if (auto it = first_ack_done.find(op.seq); it == first_ack_done.end() || op.complete < it->second) {
          first_ack_done[op.seq] = op.complete;
        }
        break;
    }
  }
  for (const auto& [payload, outcome] : enqueued) {
    if (outcome == Outcome::kOk && !delivered.contains(payload)) {
      report.add(fmt::format("queue: {} was enqueued (acknowledged) but never delivered: lost", payload));
    }
  }
  for (const auto& [payload, n] : delivered) {
    auto it = enqueued.find(payload);
    if (it == enqueued.end() || it->second == Outcome::kFail) {
      report.add(fmt::format("queue: {} was delivered but never enqueued", payload));
    }
  }
  uint64_t redelivered = 0;
  for (const auto& [payload, n] : delivered) redelivered += n - 1;
  for (const auto& op : ops) {
    if (op.kind != QueueOp::Kind::kDeliver) continue;
    auto it = first_ack_done.find(op.seq);
    if (it != first_ack_done.end() && op.invoke > it->second) {
      report.add(fmt::format("queue: {} (seq {}) delivered to process {} at {}, after its ack had succeeded at {}",
                             op.payload, op.seq, op.process, op.invoke, it->second));
    }
  }
  uint64_t enqueued_twice = 0;
  for (const auto& [payload, s] : seqs) enqueued_twice += s.size() > 1 ? 1 : 0;
  report.summary.push_back(fmt::format(
      "queue: {} enqueued ({} acknowledged), {} deliveries of {} messages ({} redeliveries), {} acks ok, {} payloads "
      "stored twice",
      enqueued.size(), enq_ok, deliveries, delivered.size(), redelivered, acks_ok, enqueued_twice));
}

CoordReport check_coord(const CoordHistory& h) {
  CoordReport r;
  if (!h.holdings.empty()) check_lock(h.holdings, r);
  if (!h.increments.empty() || h.counter_final) check_counter(h.increments, h.counter_final, r);
  if (!h.queue.empty()) check_queue(h.queue, r);
  return r;
}

std::expected<CoordHistory, std::string> read_coord_history(std::istream& in) {
  CoordHistory h;
  std::string line;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.size() > kMaxCoordLineBytes) return std::unexpected(fmt::format("line {}: longer than {} bytes", n, kMaxCoordLineBytes));
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (auto err = parse_line(line, h)) return std::unexpected(fmt::format("line {}: {}", n, *err));
  }
  return h;
}

std::string format_holding(const LockHolding& h) {
  return fmt::format("lock {} {} {} {} {} {}", h.process, h.token, h.acquire_invoke, h.acquire_complete,
                     h.release_invoke, outcome_word(h.release));
}

std::string format_increment(const CounterIncrement& i) {
  const bool is_ok = i.outcome == Outcome::kOk;
  return fmt::format("inc {} {} {} {} {}", i.process, is_ok ? std::to_string(i.value) : "-", i.invoke,
                     i.outcome == Outcome::kUnknown ? "-" : std::to_string(i.complete), outcome_word(i.outcome));
}

std::string format_queue_op(const QueueOp& op) {
  switch (op.kind) {
    case QueueOp::Kind::kEnqueue:
    case QueueOp::Kind::kAck:
      return fmt::format("{} {} {} {} {} {} {}", op.kind == QueueOp::Kind::kEnqueue ? "enq" : "ack", op.process,
                         op.payload, op.seq == 0 ? "-" : std::to_string(op.seq), op.invoke,
                         op.outcome == Outcome::kUnknown ? "-" : std::to_string(op.complete), outcome_word(op.outcome));
    case QueueOp::Kind::kDeliver:
      return fmt::format("deliver {} {} {} {} {}", op.process, op.payload, op.seq, op.invoke, op.complete);
  }
  return {};
}

}  // namespace aspen::lincheck
