#include "lincheck/linearizability.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace aspen::lincheck {
namespace {

// Register values are interned per key so that the search state is a small
// integer: cheap to copy, hash and compare. Id 0 is reserved for "absent".
constexpr uint32_t kAbsent = 0;
// Stands for every value that no pending op compares the register against;
// such values are indistinguishable to the rest of the search.
constexpr uint32_t kUnobserved = 1;
constexpr uint32_t kNoEntry = UINT32_MAX;
// Sentinels of the circular doubly linked event lists, then the events.
constexpr uint32_t kHead = 0;
constexpr uint32_t kIndeterminateHead = 1;
constexpr uint32_t kFirstEntry = 2;
constexpr size_t kMaxShownValueChars = 40;
constexpr uint64_t kMaxBudget = UINT32_MAX - 1;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::string quote_value(std::string_view v) {
  std::string out = "\"";
  size_t shown = std::min(v.size(), kMaxShownValueChars);
  for (size_t i = 0; i < shown; ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (v.size() > shown) out += "...(" + std::to_string(v.size()) + " bytes)";
  return out;
}

std::string quote_optional(const std::optional<std::string>& v) {
  return v ? quote_value(*v) : std::string("<absent>");
}

// An operation of one key's sub-history with its values interned.
struct KeyOp {
  const Operation* source = nullptr;
  OpKind kind = OpKind::kRead;
  uint32_t value = kAbsent;        // kWrite / kCas: new value
  uint32_t expected = kAbsent;     // kCas
  uint32_t read_result = kAbsent;  // kRead
  bool cas_succeeded = false;
  bool is_indeterminate = false;
};

// Sequential specification of one register. Returns false if `op` cannot take
// effect in `state` with the outcome the client observed.
bool step(const KeyOp& op, uint32_t state, uint32_t* next) {
  switch (op.kind) {
    case OpKind::kRead:
      *next = state;
      return op.read_result == state;
    case OpKind::kWrite:
      *next = op.value;
      return true;
    case OpKind::kDelete:
      *next = kAbsent;
      return true;
    case OpKind::kCas: {
      bool matches = state == op.expected;
      // An indeterminate CAS may have observed either outcome, so it simply
      // follows the register semantics.
      if (!op.is_indeterminate && matches != op.cas_succeeded) return false;
      *next = matches ? op.value : state;
      return true;
    }
  }
  return false;
}

// Lowe's memoization: a set of (linearized ops, register state) pairs already
// explored. Bitsets live in fixed-size chunks (no per-entry allocation and no
// reallocation spikes) and the table is open-addressed, so a state costs about
// words*8 + 20 bytes; this matters with budgets of millions of states.
class StateCache {
 public:
  explicit StateCache(size_t words_per_set) : words_(std::max<size_t>(words_per_set, 1)), slots_(1024, 0) {}

  // Returns true if the pair was not present (and records it).
  bool insert(const std::vector<uint64_t>& bits, uint32_t state, uint64_t hash) {
    if ((states_.size() + 1) * 2 > slots_.size()) grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      uint32_t slot = slots_[i];
      if (slot == 0) {
        size_t idx = states_.size();
        if (idx % kSetsPerChunk == 0) {
          chunks_.push_back(std::make_unique_for_overwrite<uint64_t[]>(kSetsPerChunk * words_));
        }
        std::copy(bits.begin(), bits.end(), set_at(idx));
        slots_[i] = static_cast<uint32_t>(idx + 1);
        hashes_.push_back(hash);
        states_.push_back(state);
        return true;
      }
      size_t idx = slot - 1;
      if (hashes_[idx] == hash && states_[idx] == state && std::equal(bits.begin(), bits.end(), set_at(idx))) {
        return false;
      }
    }
  }

 private:
  static constexpr size_t kSetsPerChunk = size_t{1} << 14;

  uint64_t* set_at(size_t idx) const { return chunks_[idx / kSetsPerChunk].get() + (idx % kSetsPerChunk) * words_; }

  void grow() {
    std::vector<uint32_t> bigger(slots_.size() * 2, 0);
    size_t mask = bigger.size() - 1;
    for (size_t idx = 0; idx < states_.size(); ++idx) {
      size_t i = hashes_[idx] & mask;
      while (bigger[i] != 0) i = (i + 1) & mask;
      bigger[i] = static_cast<uint32_t>(idx + 1);
    }
    slots_ = std::move(bigger);
  }

  size_t words_;
  std::vector<uint32_t> slots_;  // 0 = empty, else index + 1 into the vectors below
  std::vector<uint64_t> hashes_;
  std::vector<uint32_t> states_;
  std::vector<std::unique_ptr<uint64_t[]>> chunks_;
};

enum class Verdict { kLinearizable, kViolation, kExhausted };

// Wing & Gong search over one key's sub-history. Call and return events form a
// time-ordered doubly linked list; linearizing an op "lifts" its events out of
// the list, and the search may only linearize ops whose call precedes the first
// remaining return event (i.e. ops that are minimal in real-time order).
class KeySearch {
 public:
  KeySearch(std::vector<KeyOp> ops, uint32_t num_value_ids, uint64_t budget)
      : ops_(std::move(ops)),
        budget_(budget),
        observers_(num_value_ids, 0),
        linearized_((ops_.size() + 63) / 64, 0),
        cache_(linearized_.size()) {
    build_event_list();
    link_interchangeable_ops();
    for (uint32_t i = 0; i < ops_.size(); ++i) {
      add_observations(ops_[i], +1);
      if (ops_[i].is_indeterminate && ops_[i].kind == OpKind::kWrite) indeterminate_writes_.push_back(i);
    }
  }

  Verdict run() {
    uint32_t state = canonical(kAbsent);
    uint64_t bits_hash = 0;
    size_t remaining = determinate_count_;
    // Each node of the search tries every eligible op, determinate ones first
    // (pass 1, over the determinate event list up to its first return) and
    // then indeterminate ones (pass 2, over the indeterminate call list up to
    // that same return). Indeterminate ops are optional, so postponing them
    // finds a linearization of a correct history without wandering through
    // subsets of timed-out ops; keeping them in their own list spares pass 1
    // from stepping over every pending timed-out op. Completeness is
    // unaffected: every eligible op is still tried at every node.
    bool indeterminate_pass = false;
    uint32_t barrier = kNoEntry;  // first pending return entry (pass 2 only)
    uint32_t entry = next_[kHead];
    // Indeterminate ops never have to be linearized, so the history is
    // accepted once every determinate op has been placed.
    while (remaining > 0) {
      if (!indeterminate_pass && (entry == kHead || entry_is_return_[entry])) {
        // Reaching the list end cannot happen while a determinate op is
        // pending (its return event is still ahead); kNoEntry is safe anyway.
        indeterminate_pass = true;
        barrier = entry == kHead ? kNoEntry : entry;
        entry = next_[kIndeterminateHead];
        continue;
      }
      // Entry indices follow global time order, so comparing them tells
      // whether an indeterminate call precedes the barrier return.
      if (indeterminate_pass && (entry == kIndeterminateHead || entry > barrier)) {
        if (stack_.empty()) return Verdict::kViolation;
        auto [op, previous_state] = stack_.back();
        stack_.pop_back();
        state = previous_state;
        clear_bit(op);
        bits_hash ^= zobrist(op);
        unlift(op);
        add_observations(ops_[op], +1);
        // Resume the parent node right after the op just undone, in its pass.
        // Undoing an indeterminate op leaves the determinate list, and hence
        // the parent's barrier, unchanged.
        indeterminate_pass = ops_[op].is_indeterminate;
        if (indeterminate_pass) {
          barrier = first_pending_return();
        } else {
          ++remaining;
        }
        entry = next_[call_entry_[op]];
        continue;
      }
      uint32_t op = entry_op_[entry];
      entry = next_[entry];
      const KeyOp& kop = ops_[op];
      // Interchangeable indeterminate ops are used in invoke order only: any
      // linearization using a later one can use an earlier one instead (it is
      // eligible whenever the later one is), so only class prefixes matter.
      if (class_prev_[op] != kNoEntry && !test_bit(class_prev_[op])) continue;
      // Likewise all pending indeterminate writes of dead values have the
      // same effect (the register becomes kUnobserved) from here on, and stay
      // dead deeper in the search, so only the earliest-invoked one is tried.
      if (kop.is_indeterminate && kop.kind == OpKind::kWrite && !is_first_dead_write(op)) continue;
      uint32_t raw_state = state;
      if (!step(kop, state, &raw_state)) continue;
      add_observations(kop, -1);
      uint32_t new_state = canonical(raw_state);
      // An indeterminate op that would not change the state is equivalent to
      // never linearizing it; skipping it avoids duplicate states.
      bool is_useless = kop.is_indeterminate && new_state == state;
      set_bit(op);
      uint64_t new_hash = bits_hash ^ zobrist(op);
      if (is_useless || !cache_.insert(linearized_, new_state, combine(new_hash, new_state))) {
        clear_bit(op);
        add_observations(kop, +1);
        continue;
      }
      if (++states_ > budget_) return Verdict::kExhausted;
      stack_.push_back({op, state});
      state = new_state;
      bits_hash = new_hash;
      lift(op);
      if (!kop.is_indeterminate) --remaining;
      if (stack_.size() > best_prefix_.size()) record_best();
      indeterminate_pass = false;
      entry = next_[kHead];
    }
    return Verdict::kLinearizable;
  }

  uint64_t states() const { return states_; }
  const std::vector<uint32_t>& best_prefix() const { return best_prefix_; }

 private:
  struct Frame {
    uint32_t op;
    uint32_t previous_state;
  };

  // Two circular lists share the index space: determinate calls and returns
  // hang off kHead, indeterminate calls off kIndeterminateHead. Entries are
  // numbered in global time order so that positions can be compared across
  // the lists.
  void build_event_list() {
    struct Event {
      uint64_t time;
      bool is_return;
      uint32_t op;
    };
    std::vector<Event> events;
    events.reserve(ops_.size() * 2);
    for (uint32_t i = 0; i < ops_.size(); ++i) {
      const Operation& src = *ops_[i].source;
      events.push_back({src.invoke_time, false, i});
      if (!ops_[i].is_indeterminate) {
        events.push_back({src.return_time, true, i});
        ++determinate_count_;
      }
    }
    // Calls sort before returns at equal times: A precedes B only if
    // A.return_time < B.invoke_time strictly, so touching intervals overlap.
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      if (a.time != b.time) return a.time < b.time;
      if (a.is_return != b.is_return) return !a.is_return;
      return a.op < b.op;
    });
    size_t n = events.size() + kFirstEntry;
    next_.assign(n, kNoEntry);
    prev_.assign(n, kNoEntry);
    entry_op_.assign(n, kNoEntry);
    entry_is_return_.assign(n, false);
    call_entry_.assign(ops_.size(), kNoEntry);
    return_entry_.assign(ops_.size(), kNoEntry);
    uint32_t tails[2] = {kHead, kIndeterminateHead};
    for (uint32_t e = kFirstEntry; e < n; ++e) {
      const Event& ev = events[e - kFirstEntry];
      uint32_t& tail = tails[ops_[ev.op].is_indeterminate ? 1 : 0];
      prev_[e] = tail;
      next_[tail] = e;
      tail = e;
      entry_op_[e] = ev.op;
      entry_is_return_[e] = ev.is_return;
      (ev.is_return ? return_entry_ : call_entry_)[ev.op] = e;
    }
    for (uint32_t head : {kHead, kIndeterminateHead}) {
      uint32_t& tail = tails[head == kHead ? 0 : 1];
      next_[tail] = head;
      prev_[head] = tail;
    }
  }

  uint32_t first_pending_return() const {
    for (uint32_t e = next_[kHead]; e != kHead; e = next_[e]) {
      if (entry_is_return_[e]) return e;
    }
    return kNoEntry;
  }

  // Indeterminate ops with the same effect (kind, new value, expected value)
  // are interchangeable; chain each to its predecessor in invoke order. Ops
  // are indexed in invoke order, so index order is invoke order.
  void link_interchangeable_ops() {
    class_prev_.assign(ops_.size(), kNoEntry);
    std::map<std::tuple<OpKind, uint32_t, uint32_t>, uint32_t> last_in_class;
    for (uint32_t i = 0; i < ops_.size(); ++i) {
      const KeyOp& k = ops_[i];
      if (!k.is_indeterminate) continue;
      auto [it, inserted] = last_in_class.try_emplace({k.kind, k.value, k.expected}, i);
      if (!inserted) {
        class_prev_[i] = it->second;
        it->second = i;
      }
    }
  }

  void unlink(uint32_t e) {
    next_[prev_[e]] = next_[e];
    prev_[next_[e]] = prev_[e];
  }
  // Dancing-links restore: valid because relinks happen in exact reverse
  // order of unlinks.
  void relink(uint32_t e) {
    next_[prev_[e]] = e;
    prev_[next_[e]] = e;
  }
  void lift(uint32_t op) {
    unlink(call_entry_[op]);
    if (return_entry_[op] != kNoEntry) unlink(return_entry_[op]);
  }
  void unlift(uint32_t op) {
    if (return_entry_[op] != kNoEntry) relink(return_entry_[op]);
    relink(call_entry_[op]);
  }

  // observers_[v] counts pending ops that compare the register against v. A
  // value nobody pending compares against can never again be told apart from
  // any other such value, so the state is collapsed to kUnobserved; this lets
  // the memo merge states that differ only in values that no longer matter.
  void add_observations(const KeyOp& op, int delta) {
    if (op.kind == OpKind::kRead) observers_[op.read_result] += delta;
    if (op.kind == OpKind::kCas) observers_[op.expected] += delta;
  }
  uint32_t canonical(uint32_t value) const { return observers_[value] == 0 ? kUnobserved : value; }
  // For a pending indeterminate write: false if its value is dead and an
  // earlier-invoked pending indeterminate write of a dead value exists.
  bool is_first_dead_write(uint32_t op) const {
    if (observers_[ops_[op].value] != 0) return true;
    for (uint32_t other : indeterminate_writes_) {
      if (other >= op) break;
      if (!test_bit(other) && observers_[ops_[other].value] == 0) return false;
    }
    return true;
  }

  bool test_bit(uint32_t op) const { return (linearized_[op / 64] >> (op % 64)) & 1; }
  void set_bit(uint32_t op) { linearized_[op / 64] |= uint64_t{1} << (op % 64); }
  void clear_bit(uint32_t op) { linearized_[op / 64] &= ~(uint64_t{1} << (op % 64)); }
  // Zobrist hashing keeps the bitset hash O(1) to update on each step.
  static uint64_t zobrist(uint32_t op) { return splitmix64(0xA5E4ULL ^ (uint64_t{op} << 16)); }
  static uint64_t combine(uint64_t bits_hash, uint32_t state) {
    return splitmix64(bits_hash ^ (uint64_t{state} * 0xD6E8FEB86659FD93ULL));
  }

  void record_best() {
    best_prefix_.clear();
    for (const Frame& f : stack_) best_prefix_.push_back(f.op);
  }

  std::vector<KeyOp> ops_;
  uint64_t budget_;
  size_t determinate_count_ = 0;
  uint64_t states_ = 0;

  std::vector<uint32_t> next_;
  std::vector<uint32_t> prev_;
  std::vector<uint32_t> entry_op_;
  std::vector<bool> entry_is_return_;
  std::vector<uint32_t> call_entry_;
  std::vector<uint32_t> return_entry_;
  std::vector<uint32_t> class_prev_;  // previous interchangeable indeterminate op, or kNoEntry
  std::vector<int> observers_;          // per value id
  std::vector<uint32_t> indeterminate_writes_;  // op indices, ascending

  std::vector<uint64_t> linearized_;
  StateCache cache_;
  std::vector<Frame> stack_;
  std::vector<uint32_t> best_prefix_;
};

// Interns one key's values. Values that no read or CAS of the key ever
// compares against are indistinguishable to every op, so they all share the id
// kUnobserved; KeySearch extends the same idea dynamically to values whose
// observers have all been linearized.
class ValueInterner {
 public:
  // Registers a value some op compares the register against.
  uint32_t observe(const std::optional<std::string>& v) {
    if (!v) return kAbsent;
    auto [it, inserted] = ids_.try_emplace(*v, static_cast<uint32_t>(names_.size() + 2));
    if (inserted) names_.push_back(&it->first);
    return it->second;
  }
  // Id of a written value; call after every observe().
  uint32_t written(const std::string& v) const {
    auto it = ids_.find(v);
    return it == ids_.end() ? kUnobserved : it->second;
  }
  uint32_t num_ids() const { return static_cast<uint32_t>(names_.size() + 2); }


 private:
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<const std::string*> names_;  // node-based map: pointers stay valid
};

std::string explain_violation(const std::string& key, const std::vector<KeyOp>& ops, const KeySearch& search) {
  std::string out = "key " + quote_value(key) + ": no linearization of its " +
                    std::to_string(ops.size()) + " operations exists (" +
                    std::to_string(search.states()) + " states explored)\n";
  out += "operations in invoke order:\n";
  for (size_t i = 0; i < ops.size(); ++i) {
    out += "  #" + std::to_string(i) + " " + describe_operation(*ops[i].source) + "\n";
  }
  const auto& prefix = search.best_prefix();
  out += "longest linearizable prefix found (" + std::to_string(prefix.size()) + " ops): ";
  if (prefix.empty()) out += "(none)";
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (i > 0) out += " -> ";
    out += "#" + std::to_string(prefix[i]);
  }
  // Replay with the real values: the search's state may have been collapsed
  // to kUnobserved, which would hide the value a reader should have seen.
  std::optional<std::string> value;
  for (uint32_t i : prefix) {
    const Operation& op = *ops[i].source;
    if (op.kind == OpKind::kWrite || (op.kind == OpKind::kCas && value == op.expected)) value = op.value;
    if (op.kind == OpKind::kDelete) value.reset();
  }
  out += "\n  register after that prefix: " + quote_optional(value) + "\n";
  return out;
}

}  // namespace

std::string describe_operation(const Operation& op) {
  std::string out = "client " + std::to_string(op.client_id) + " ";
  switch (op.kind) {
    case OpKind::kRead:
      out += "read() -> " + (op.is_indeterminate ? std::string("?") : quote_optional(op.read_result));
      break;
    case OpKind::kWrite:
      out += "write(" + quote_value(op.value) + ")";
      break;
    case OpKind::kDelete:
      out += "delete()";
      break;
    case OpKind::kCas:
      out += "cas(" + quote_optional(op.expected) + " -> " + quote_value(op.value) + ") = " +
             (op.is_indeterminate ? "?" : op.cas_succeeded ? "ok" : "failed");
      break;
  }
  out += " [" + std::to_string(op.invoke_time) + ", ";
  out += op.is_indeterminate ? std::string("?) indeterminate") : std::to_string(op.return_time) + "]";
  return out;
}

CheckResult check_linearizable(const std::vector<Operation>& history, uint64_t budget_states) {
  // std::map gives a deterministic key order, so the reported key is stable.
  std::map<std::string_view, std::vector<const Operation*>> by_key;
  for (const Operation& op : history) {
    if (!op.is_indeterminate && op.return_time < op.invoke_time) {
      throw std::invalid_argument("check_linearizable: return_time < invoke_time for " +
                                  describe_operation(op));
    }
    // An indeterminate read constrains nothing: it has no observed result and
    // no effect.
    if (op.is_indeterminate && op.kind == OpKind::kRead) continue;
    by_key[op.key].push_back(&op);
  }

  CheckResult result;
  std::vector<std::string> exhausted_keys;
  for (auto& [key, key_ops] : by_key) {
    // Numbering ops in invoke order makes the explanation read chronologically.
    std::stable_sort(key_ops.begin(), key_ops.end(), [](const Operation* a, const Operation* b) {
      return a->invoke_time < b->invoke_time;
    });
    ValueInterner values;
    for (const Operation* src : key_ops) {
      if (src->kind == OpKind::kRead) values.observe(src->read_result);
      if (src->kind == OpKind::kCas) values.observe(src->expected);
    }
    std::vector<KeyOp> ops;
    ops.reserve(key_ops.size());
    for (const Operation* src : key_ops) {
      KeyOp k;
      k.source = src;
      k.kind = src->kind;
      k.is_indeterminate = src->is_indeterminate;
      k.cas_succeeded = src->cas_succeeded;
      if (src->kind == OpKind::kRead) k.read_result = values.observe(src->read_result);
      if (src->kind == OpKind::kCas) k.expected = values.observe(src->expected);
      if (src->kind == OpKind::kWrite || src->kind == OpKind::kCas) k.value = values.written(src->value);
      // A delete's new "value" is kAbsent, which KeyOp::value already holds.
      ops.push_back(k);
    }
    // Cache slots hold 32-bit indices; a budget near 2^32 states would need
    // hundreds of gigabytes anyway.
    KeySearch search(ops, values.num_ids(), std::min<uint64_t>(budget_states, kMaxBudget));
    Verdict verdict = search.run();
    result.states_explored += search.states();
    if (verdict == Verdict::kViolation) {
      result.is_linearizable = false;
      result.is_exhausted = false;
      result.failing_key = std::string(key);
      result.explanation = explain_violation(result.failing_key, ops, search);
      return result;
    }
    if (verdict == Verdict::kExhausted) exhausted_keys.emplace_back(key);
  }
  if (!exhausted_keys.empty()) {
    result.is_exhausted = true;
    result.explanation = "search budget of " + std::to_string(budget_states) +
                         " states exhausted (inconclusive) on key(s):";
    for (const std::string& k : exhausted_keys) result.explanation += " " + quote_value(k);
  }
  return result;
}

}  // namespace aspen::lincheck
