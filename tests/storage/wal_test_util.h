// Helpers shared by the Wal tests (wal_test.cc, wal_corruption_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "storage/wal.h"
#include "store_test_util.h"

namespace aspen::storage::wal_testing {

inline pb::Entry entry(Index index, Term term, size_t payload_bytes = 16) {
  pb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::string(payload_bytes, static_cast<char>('a' + index % 26)));
  return e;
}

inline std::vector<pb::Entry> run(Index from, Index to, Term term, size_t payload_bytes = 16) {
  std::vector<pb::Entry> out;
  for (Index i = from; i <= to; ++i) out.push_back(entry(i, term, payload_bytes));
  return out;
}

inline pb::HardState hard_state(Term term, uint64_t vote, Index commit) {
  pb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

inline std::unique_ptr<Wal> open_wal(const std::string& dir, WalFloor floor = {}, uint64_t segment_bytes = 1 << 20) {
  WalOptions o;
  o.dir = dir;
  o.segment_size_bytes = segment_bytes;
  auto w = Wal::open(o, floor);
  EXPECT_TRUE(w.has_value()) << (w ? "" : w.error().to_string());
  return w ? std::move(*w) : nullptr;
}

inline Status append(Wal& w, const std::vector<pb::Entry>& entries, const pb::HardState* hs = nullptr) {
  WalWrite ww;
  ww.entries = &entries;
  ww.hard_state = hs;
  return w.write(ww);
}

inline std::vector<std::string> segment_paths(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(dir)) out.push_back(f.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The terms the log holds for (base, last].
inline std::vector<Term> terms_of(const Wal& w) {
  std::vector<Term> out;
  for (Index i = w.base_index() + 1; i <= w.last_index(); ++i) out.push_back(*w.term(i));
  return out;
}

// The bytes one write of `entries` (and an optional hard state) occupies in a segment: its
// batch marker and its records.
inline uint64_t batch_bytes(const std::vector<pb::Entry>& entries, const pb::HardState* hs = nullptr) {
  uint64_t n = Wal::kBatchMarkerBytes;
  if (hs != nullptr) n += Wal::kRecordHeaderBytes + hs->ByteSizeLong();
  for (const auto& e : entries) n += Wal::kRecordHeaderBytes + e.ByteSizeLong();
  return n;
}

}  // namespace aspen::storage::wal_testing
