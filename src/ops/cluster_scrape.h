// One scrape of a whole cluster: every member's metrics page, fetched in parallel over the
// client protocol and merged into one Prometheus page (ops/exposition.h), with a line per
// member saying whether it answered. aspen-prometheus-adapter serves this page; a member
// that does not answer within the timeout is reported down, never holds the scrape longer.
//
//   ops::ClusterScraper scraper(client);            // a connected client::Client
//   ops::ScrapeResult r = scraper.scrape({.member_timeout_ms = 2000});
//   http_reply(r.text);
//
// Thread-safe: scrape() may run on many threads at once (each its own calls on the client).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/client.h"
#include "ops/exposition.h"

namespace aspen::ops {

// Members scraped at once (more are left out, with an error naming this limit in the log).
inline constexpr size_t kMaxScrapedMembers = 64;

struct ScrapeOptions {
  // How long one member has to answer. The whole scrape takes about this long at most.
  uint32_t member_timeout_ms = 2000;
};

struct MemberScrape {
  uint64_t node_id = 0;
  bool is_up = false;
  double duration_s = 0;
  std::string error;  // why it is down
  size_t page_bytes = 0;
};

struct ScrapeResult {
  std::string text;                   // the merged page, adapter families included
  std::vector<MemberScrape> members;  // by node id
};

class ClusterScraper {
 public:
  explicit ClusterScraper(client::Client& client) : client_(client) {}
  ScrapeResult scrape(const ScrapeOptions& options);
  // The node ids to scrape: the members a reachable node names, and every node the client
  // knows. Sorted, at most kMaxScrapedMembers.
  std::vector<uint64_t> members(uint32_t timeout_ms);

 private:
  client::Client& client_;
};

}  // namespace aspen::ops
