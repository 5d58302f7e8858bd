#include "sim/watch_checker.h"

#include <fmt/format.h>

#include "sim/internal/cluster.h"

namespace aspen::sim {

namespace {
constexpr size_t kEntriesPerRead = 64;
}

std::string WatchChecker::note_mutation(Index index, bool is_mutation) {
  auto [it, is_new] = is_mutation_.try_emplace(index, is_mutation);
  if (!is_new && it->second != is_mutation) {
    return fmt::format("the command at index {} changed keys on one replica and nothing on another", index);
  }
  return "";
}

std::string WatchChecker::observe(NodeId id, const storage::MemStore& store) {
  Watcher& w = watchers_[id];
  for (int round = 0; round < 1000; ++round) {
    auto page = store.read_history(w.next_revision, w.next_position, kEntriesPerRead, SIZE_MAX, false);
    if (!page) return fmt::format("watcher on node {}: {}", id, page.error().to_string());
    if (w.next_revision < page->compacted) {
      // Compaction overtook the watcher (as a node cancels the watch): it starts again at the
      // compacted revision, after the span it covered.
      w.closed_spans.emplace_back(w.span_start, w.delivered_through);
      w.closed_revisions.push_back(std::move(w.revisions));
      w.revisions.clear();
      w.next_revision = page->compacted;
      w.next_position = 0;
      w.span_start = page->compacted;
      w.delivered_through = page->compacted - 1;
      ++restarts_;
      continue;
    }
    // Group by revision: a revision is delivered whole, so a page that ends inside one waits.
    const auto& es = page->entries;
    size_t end = es.size();
    const bool is_exhausted = es.size() < kEntriesPerRead;
    if (!is_exhausted) {
      while (end > 0 && es[end - 1].revision() == es.back().revision()) --end;
      if (end == 0) return fmt::format("watcher on node {}: a revision with over {} changes", id, kEntriesPerRead);
    }
    size_t i = 0;
    while (i < end) {
      const Index rev = es[i].revision();
      if (!w.revisions.empty() && rev <= w.revisions.back()) {
        return fmt::format("watcher on node {} delivered revision {} after {}", id, rev, w.revisions.back());
      }
      if (rev == w.next_revision && es[i].position() != w.next_position && w.next_position != 0) {
        return fmt::format("watcher on node {}: revision {} resumed at position {}", id, rev, es[i].position());
      }
      uint64_t h = 0xcbf29ce484222325ULL;
      uint32_t expected_position = 0;
      for (; i < end && es[i].revision() == rev; ++i) {
        if (es[i].position() != expected_position++) {
          return fmt::format("watcher on node {}: revision {} has a gap in its positions", id, rev);
        }
        h = fnv1a(es[i].record().SerializeAsString(), h);
        ++events_;
      }
      auto [it, is_new] = digest_.try_emplace(rev, h);
      if (!is_new && it->second != h) {
        return fmt::format("watchers saw different changes at revision {} (node {} differs)", rev, id);
      }
      w.revisions.push_back(rev);
      w.delivered_through = rev;
    }
    if (end > 0) {
      w.next_revision = es[end - 1].revision() + 1;
      w.next_position = 0;
    }
    if (is_exhausted) {
      w.delivered_through = std::max(w.delivered_through, page->revision);
      w.next_revision = std::max(w.next_revision, page->revision + 1);
      return "";
    }
  }
  return "";
}

std::string WatchChecker::check_complete() const {
  auto check_span = [&](NodeId id, Index start, Index through, const std::vector<Index>& got) -> std::string {
    size_t k = 0;
    for (auto it = is_mutation_.lower_bound(start); it != is_mutation_.end() && it->first <= through; ++it) {
      if (!it->second) continue;
      while (k < got.size() && got[k] < it->first) ++k;
      if (k == got.size() || got[k] != it->first) {
        return fmt::format("watcher on node {} missed revision {} (it covered {}..{})", id, it->first, start, through);
      }
    }
    for (Index r : got) {
      auto it = is_mutation_.find(r);
      if (it != is_mutation_.end() && !it->second) {
        return fmt::format("watcher on node {} delivered revision {}, whose command changed nothing", id, r);
      }
    }
    return "";
  };
  for (const auto& [id, w] : watchers_) {
    for (size_t s = 0; s < w.closed_spans.size(); ++s) {
      auto e = check_span(id, w.closed_spans[s].first, w.closed_spans[s].second, w.closed_revisions[s]);
      if (!e.empty()) return e;
    }
    auto e = check_span(id, w.span_start, w.delivered_through, w.revisions);
    if (!e.empty()) return e;
  }
  return "";
}

}  // namespace aspen::sim
