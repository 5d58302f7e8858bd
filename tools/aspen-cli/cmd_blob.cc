// aspen-cli blob ...: content-addressed blobs (docs/blobs.md). add streams a file (or stdin)
// to a node and prints its BLAKE3 hash (as b3sum does); get writes a blob, or a byte range of
// it, every byte verified against the hash; tags pin blobs against GC and make members
// replicate them.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <fmt/format.h>

#include "blob/store/blob_store.h"
#include "cli.h"
#include "client/blob_client.h"
#include "core/encoding.h"

namespace aspen::cli {

namespace {

namespace cpb = clientpb;
using crypto::Blake3Hash;

std::string hex(const std::string& raw_hash) {
  return crypto::blake3_to_hex(std::span(reinterpret_cast<const uint8_t*>(raw_hash.data()), raw_hash.size()));
}

// A progress line on stderr, only when it is a terminal; redrawn every 8 MiB and at the end.
struct Progress {
  bool is_on = ::isatty(2) == 1;
  uint64_t total_bytes = 0;  // 0: unknown
  uint64_t last_shown = 0;
  void show(uint64_t done, bool is_final = false) {
    if (!is_on || (!is_final && done - last_shown < (uint64_t{8} << 20))) return;
    last_shown = done;
    if (total_bytes > 0) {
      std::fprintf(stderr, "\r%s / %s (%3.0f%%)", format_mib(done).c_str(), format_mib(total_bytes).c_str(),
                   100.0 * static_cast<double>(done) / static_cast<double>(total_bytes));
    } else {
      std::fprintf(stderr, "\r%s", format_mib(done).c_str());
    }
    if (is_final) std::fprintf(stderr, "\n");
  }
};

Result<Blake3Hash> parse_hash(const std::string& text) { return blob::hash_from_hex(text); }

// "A..B" (B exclusive), "A.." (to the end), "..B".
Result<blob::ByteRange> parse_range(const std::string& text) {
  const auto dots = text.find("..");
  auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--range must be START..END in bytes, END exclusive (e.g. 0..1024, 4096.., ..100), "
                                  "got '{}'",
                                  text));
  };
  if (dots == std::string::npos) return bad();
  blob::ByteRange r{0, UINT64_MAX};
  auto num = [](const std::string& s, uint64_t& out) {
    if (s.empty()) return true;
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (errno != 0 || end != s.c_str() + s.size() || s[0] == '-') return false;
    out = v;
    return true;
  };
  if (!num(text.substr(0, dots), r.start_bytes) || !num(text.substr(dots + 2), r.end_bytes)) return bad();
  if (r.start_bytes > r.end_bytes) return bad();
  return r;
}

int run_add(const Context& ctx, const std::string& path, uint64_t node, const std::string& tag, uint32_t replicas,
            uint32_t wait_s) {
  int fd = 0;
  Progress progress;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return usage_error(ctx, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    off_t size = ::lseek(fd, 0, SEEK_END);
    ::lseek(fd, 0, SEEK_SET);
    if (size > 0) progress.total_bytes = static_cast<uint64_t>(size);
  }
  struct Closer {
    int fd;
    ~Closer() {
      if (fd > 0) ::close(fd);
    }
  } closer{fd};
  return with_client(ctx, [&](client::Client& c) {
    client::BlobAddOptions o;
    o.target = client::Target{node};
    o.progress = [&](uint64_t done) { progress.show(done); };
    client::BlobSource source = [fd](std::span<uint8_t> out) -> Result<size_t> {
      for (;;) {
        ssize_t n = ::read(fd, out.data(), out.size());
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) return make_error(ErrorCode::kInvalidArgument, fmt::format("reading the input: {}", std::strerror(errno)));
      }
    };
    auto added = client::blob_add(c, source, o);
    if (!added) return fail(ctx, added.error());
    progress.show(added->size_bytes(), true);
    auto hash = *blob::hash_from_hex(hex(added->hash()));
    if (!tag.empty()) {
      if (auto s = client::blob_tag_set(c, tag, hash); !s) return fail(ctx, s.error());
    }
    std::optional<cpb::BlobStatusResponse> status;
    if (replicas > 0) {
      auto st = client::blob_wait_replicas(c, hash, replicas, wait_s * 1000);
      if (!st) return fail(ctx, st.error());
      status = *st;
    }
    if (ctx.is_json) {
      nlohmann::json j = {{"hash", hex(added->hash())},
                          {"size_bytes", added->size_bytes()},
                          {"node_id", added->node_id()},
                          {"was_present", added->was_present()}};
      if (!tag.empty()) j["tag"] = tag;
      if (status) j["holders"] = std::vector<uint64_t>(status->holders().begin(), status->holders().end());
      print_json_ok(std::move(j));
    } else {
      std::cout << hex(added->hash()) << "\n";
    }
    return kExitOk;
  });
}

int run_get(const Context& ctx, const std::string& hash_text, const std::string& out_path, const std::string& range_text,
            uint64_t node) {
  auto hash = parse_hash(hash_text);
  if (!hash) return usage_error(ctx, hash.error().message());
  blob::ByteRange range{0, UINT64_MAX};
  if (!range_text.empty()) {
    auto r = parse_range(range_text);
    if (!r) return usage_error(ctx, r.error().message());
    range = *r;
  }
  if (ctx.is_json && out_path.empty()) return usage_error(ctx, "--json needs -o FILE: the blob's bytes would share stdout");
  const bool is_stdout = out_path.empty() || out_path == "-";
  // Written next to the target and renamed into place at the end: a failed get leaves no
  // partial file under the name asked for.
  const std::string part_path = is_stdout ? std::string() : out_path + ".part";
  int fd = 1;
  if (!is_stdout) {
    fd = ::open(part_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return usage_error(ctx, fmt::format("cannot write {}: {}", part_path, std::strerror(errno)));
  }
  Progress progress;
  progress.is_on = progress.is_on && !is_stdout;
  uint64_t written = 0;
  int rc = with_client(ctx, [&](client::Client& c) {
    client::BlobGetOptions o;
    o.target = client::Target{node};
    o.range = range;
    o.progress = [&](uint64_t done) { progress.show(done); };
    auto got = client::blob_get(c, *hash, o, [&](uint64_t, std::span<const uint8_t> data) -> Status {
      while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          return make_error(ErrorCode::kInvalidArgument, fmt::format("writing the output: {}", std::strerror(errno)));
        }
        data = data.subspan(static_cast<size_t>(n));
        written += static_cast<uint64_t>(n);
      }
      return {};
    });
    if (!got) return fail(ctx, got.error());
    progress.total_bytes = written;
    progress.show(written, true);
    if (!is_stdout) {
      if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(part_path.c_str(), out_path.c_str()) != 0) {
        fd = -1;
        return fail(ctx, Error(ErrorCode::kInvalidArgument, fmt::format("writing {}: {}", out_path, std::strerror(errno))));
      }
      fd = -1;
    }
    if (ctx.is_json) {
      print_json_ok({{"hash", hash_text},
                     {"size_bytes", got->size_bytes()},
                     {"start_bytes", got->start_bytes()},
                     {"end_bytes", got->end_bytes()},
                     {"written_bytes", written},
                     {"file", out_path}});
    }
    return kExitOk;
  });
  if (!is_stdout) {
    if (fd >= 0) ::close(fd);
    if (rc != kExitOk) ::unlink(part_path.c_str());
  }
  return rc;
}

int run_status(const Context& ctx, const std::string& hash_text, uint64_t node) {
  auto hash = parse_hash(hash_text);
  if (!hash) return usage_error(ctx, hash.error().message());
  return with_client(ctx, [&](client::Client& c) {
    auto st = client::blob_status(c, *hash, client::Target{node});
    if (!st) return fail(ctx, st.error());
    const std::vector<uint64_t> holders(st->holders().begin(), st->holders().end());
    const std::vector<std::string> tags(st->tags().begin(), st->tags().end());
    if (ctx.is_json) {
      nlohmann::json j = {{"hash", hash_text}, {"node_id", st->node_id()}, {"is_stored_here", st->is_stored_here()},
                          {"holders", holders}, {"tags", tags}};
      if (st->is_stored_here()) {
        j["size_bytes"] = st->size_bytes();
        j["added_ms"] = st->added_ms();
      }
      print_json_ok(std::move(j));
      return kExitOk;
    }
    std::cout << "blob " << hash_text << "\n";
    if (st->is_stored_here()) {
      std::cout << fmt::format("  size      {} bytes ({})\n", st->size_bytes(), format_mib(st->size_bytes()));
    }
    std::cout << fmt::format("  holders   {}\n", holders.empty() ? std::string("none") : fmt::format("{}", fmt::join(holders, ", ")));
    std::cout << fmt::format("  tags      {}\n", tags.empty() ? std::string("none (GC removes it after the grace period)")
                                                              : fmt::format("{}", fmt::join(tags, ", ")));
    std::cout << fmt::format("  on node {}: {}\n", st->node_id(), st->is_stored_here() ? "stored" : "not stored");
    return kExitOk;
  });
}

int run_list(const Context& ctx, uint64_t node, const std::string& after_text, uint32_t limit) {
  std::optional<Blake3Hash> after;
  if (!after_text.empty()) {
    auto h = parse_hash(after_text);
    if (!h) return usage_error(ctx, h.error().message());
    after = *h;
  }
  return with_client(ctx, [&](client::Client& c) {
    nlohmann::json blobs = nlohmann::json::array();
    uint64_t node_id = 0;
    bool has_more = false;
    uint64_t listed = 0;
    for (;;) {
      auto page = client::blob_list(c, after, limit, client::Target{node});
      if (!page) return fail(ctx, page.error());
      node_id = page->node_id();
      node = node_id;  // every page from the same node
      for (const auto& b : page->blobs()) {
        ++listed;
        if (ctx.is_json) {
          blobs.push_back({{"hash", hex(b.hash())}, {"size_bytes", b.size_bytes()}, {"added_ms", b.added_ms()}});
        } else {
          std::cout << hex(b.hash()) << "\t" << b.size_bytes() << "\n";
        }
      }
      has_more = page->has_more();
      // --limit asks for one page; without it, every page.
      if (!has_more || limit != 0 || page->blobs().empty()) break;
      after = *blob::hash_from_hex(hex(page->blobs().rbegin()->hash()));
    }
    if (ctx.is_json) {
      print_json_ok({{"node_id", node_id}, {"blobs", std::move(blobs)}, {"has_more", has_more && limit != 0}});
    } else if (listed == 0) {
      std::cout << "no blobs on node " << node_id << "\n";
    }
    return kExitOk;
  });
}

int run_tag_set(const Context& ctx, const std::string& name, const std::string& hash_text) {
  auto hash = parse_hash(hash_text);
  if (!hash) return usage_error(ctx, hash.error().message());
  return with_client(ctx, [&](client::Client& c) {
    if (auto s = client::blob_tag_set(c, name, *hash); !s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"tag", name}, {"hash", hash_text}});
    } else {
      std::cout << "tag " << name << " -> " << hash_text << "\n";
    }
    return kExitOk;
  });
}

int run_tag_delete(const Context& ctx, const std::string& name) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = client::blob_tag_delete(c, name);
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"tag", name}, {"was_present", *r}});
    } else {
      std::cout << (*r ? "deleted tag " : "no tag ") << name << "\n";
    }
    return kExitOk;
  });
}

int run_tag_list(const Context& ctx) {
  return with_client(ctx, [&](client::Client& c) {
    nlohmann::json tags = nlohmann::json::array();
    std::string after;
    size_t listed = 0;
    for (;;) {
      auto page = client::blob_tag_list(c, after);
      if (!page) return fail(ctx, page.error());
      for (const auto& t : page->tags()) {
        ++listed;
        if (ctx.is_json) {
          tags.push_back({{"name", t.name()}, {"hash", hex(t.hash())}});
        } else {
          std::cout << t.name() << "\t" << hex(t.hash()) << "\n";
        }
      }
      if (!page->has_more() || page->tags().empty()) break;
      after = page->tags().rbegin()->name();
    }
    if (ctx.is_json) {
      print_json_ok({{"tags", std::move(tags)}});
    } else if (listed == 0) {
      std::cout << "no tags\n";
    }
    return kExitOk;
  });
}

int run_gc(const Context& ctx, uint64_t node) {
  return with_client(ctx, [&](client::Client& c) {
    std::vector<uint64_t> nodes;
    if (node != 0) {
      nodes.push_back(node);
    } else {
      auto m = c.raft_metrics();
      if (!m) return fail(ctx, m.error());
      for (uint64_t id : m->voters()) nodes.push_back(id);
      for (uint64_t id : m->learners()) nodes.push_back(id);
    }
    nlohmann::json out = nlohmann::json::array();
    for (uint64_t id : nodes) {
      auto r = client::blob_gc(c, client::Target{id});
      if (!r) return fail(ctx, r.error());
      if (ctx.is_json) {
        out.push_back({{"node_id", r->node_id()},
                       {"scanned", r->scanned()},
                       {"removed", r->removed()},
                       {"removed_bytes", r->removed_bytes()},
                       {"kept_tagged", r->kept_tagged()},
                       {"kept_young", r->kept_young()},
                       {"kept_in_use", r->kept_in_use()}});
      } else {
        std::cout << fmt::format("node {}: removed {} of {} blobs ({}); kept {} tagged, {} in their grace period, {} being read\n",
                                 r->node_id(), r->removed(), r->scanned(), format_mib(r->removed_bytes()),
                                 r->kept_tagged(), r->kept_young(), r->kept_in_use());
      }
    }
    if (ctx.is_json) print_json_ok({{"nodes", std::move(out)}});
    return kExitOk;
  });
}

}  // namespace

void add_blob_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* blob = app.add_subcommand(
      "blob", "Blobs: large content stored by BLAKE3 hash, pinned by tags, replicated to members (docs/blobs.md)");
  blob->require_subcommand(1);

  auto* add = blob->add_subcommand("add", "Store a file (or stdin with -) and print its BLAKE3 hash, as b3sum does");
  auto path = std::make_shared<std::string>();
  auto add_node = std::make_shared<uint64_t>(0);
  auto tag = std::make_shared<std::string>();
  auto replicas = std::make_shared<uint32_t>(0);
  auto wait_s = std::make_shared<uint32_t>(300);
  add->add_option("file", *path, "The file to store, or - for stdin")->required();
  add->add_option("--node", *add_node, "The node that stores it first (default: the leader)");
  add->add_option("--tag", *tag, "Also set this tag to it (tagged blobs are kept by GC and replicated)");
  add->add_option("--wait-replicas", *replicas,
                  "Return only once this many members hold it verified (replication follows tags: use with --tag)");
  add->add_option("--wait-timeout-s", *wait_s, "How long --wait-replicas waits (default 300)");
  add->callback([&ctx, &action, path, add_node, tag, replicas, wait_s] {
    action = [&ctx, path, add_node, tag, replicas, wait_s] {
      return run_add(ctx, *path, *add_node, *tag, *replicas, *wait_s);
    };
  });

  auto* get = blob->add_subcommand("get", "Write a blob (or a byte range of it), every byte verified against its hash");
  auto get_hash = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto range = std::make_shared<std::string>();
  auto get_node = std::make_shared<uint64_t>(0);
  get->add_option("hash", *get_hash, "The blob's hash (64 hex digits)")->required();
  get->add_option("-o,--output", *out, "Write to this file (default: stdout)");
  get->add_option("--range", *range, "Only bytes START..END (END exclusive; either may be left out)");
  get->add_option("--node", *get_node, "Read from this node (default: any member holding it)");
  get->callback([&ctx, &action, get_hash, out, range, get_node] {
    action = [&ctx, get_hash, out, range, get_node] { return run_get(ctx, *get_hash, *out, *range, *get_node); };
  });

  auto* status = blob->add_subcommand("status", "Show a blob's size, the members holding it and the tags naming it");
  auto status_hash = std::make_shared<std::string>();
  auto status_node = std::make_shared<uint64_t>(0);
  status->add_option("hash", *status_hash, "The blob's hash")->required();
  status->add_option("--node", *status_node, "Ask this node (default: the leader)");
  status->callback([&ctx, &action, status_hash, status_node] {
    action = [&ctx, status_hash, status_node] { return run_status(ctx, *status_hash, *status_node); };
  });

  auto* list = blob->add_subcommand("list", "List the blobs one node stores, in hash order");
  auto list_node = std::make_shared<uint64_t>(0);
  auto after = std::make_shared<std::string>();
  auto limit = std::make_shared<uint32_t>(0);
  list->add_option("--node", *list_node, "Which node (default: the leader)");
  list->add_option("--after", *after, "Start after this hash (for paging)");
  list->add_option("--limit", *limit, "One page of at most this many (default: all pages)");
  list->callback([&ctx, &action, list_node, after, limit] {
    action = [&ctx, list_node, after, limit] { return run_list(ctx, *list_node, *after, *limit); };
  });

  auto* tag_cmd = blob->add_subcommand("tag", "Tags: names that pin blobs against GC and get them replicated");
  tag_cmd->require_subcommand(1);
  auto* tset = tag_cmd->add_subcommand("set", "Point a tag at a blob (a member must hold it)");
  auto tname = std::make_shared<std::string>();
  auto thash = std::make_shared<std::string>();
  tset->add_option("name", *tname, "The tag's name")->required();
  tset->add_option("hash", *thash, "The blob's hash")->required();
  tset->callback([&ctx, &action, tname, thash] { action = [&ctx, tname, thash] { return run_tag_set(ctx, *tname, *thash); }; });
  auto* tdel = tag_cmd->add_subcommand("delete", "Remove a tag; GC may then remove its blob after the grace period");
  auto dname = std::make_shared<std::string>();
  tdel->add_option("name", *dname, "The tag's name")->required();
  tdel->callback([&ctx, &action, dname] { action = [&ctx, dname] { return run_tag_delete(ctx, *dname); }; });
  auto* tlist = tag_cmd->add_subcommand("list", "List every tag and the blob it names");
  tlist->callback([&ctx, &action] { action = [&ctx] { return run_tag_list(ctx); }; });

  auto* gc = blob->add_subcommand("gc", "Remove blobs no tag names and older than the grace period, now");
  auto gc_node = std::make_shared<uint64_t>(0);
  gc->add_option("--node", *gc_node, "Only on this node (default: every member in turn)");
  gc->callback([&ctx, &action, gc_node] { action = [&ctx, gc_node] { return run_gc(ctx, *gc_node); }; });
}

}  // namespace aspen::cli
