#include "tui.h"

#include <fcntl.h>
#include <ncurses.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "auth/token_text.h"
#include "ops/tui_format.h"
#include "transport/identity.h"

namespace aspen::tui {

namespace {

using Clock = std::chrono::steady_clock;

// The Logs view's level filter, cycled with `l`: "" = every line the node keeps.
constexpr const char* kLogLevels[] = {"", "info", "warn", "error"};
constexpr size_t kLogLevelCount = sizeof(kLogLevels) / sizeof(kLogLevels[0]);

enum Pair : short { kPairLeader = 1, kPairOffline, kPairTitle, kPairLearner, kPairSelected };

void put(int y, int x, int width, std::string_view text, attr_t attr = A_NORMAL) {
  if (width <= 0 || y < 0 || y >= LINES) return;
  std::string line(text.substr(0, static_cast<size_t>(width)));
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '.';
  }
  attron(attr);
  mvaddnstr(y, x, line.c_str(), width);
  attroff(attr);
}

std::vector<uint64_t> parse_ids(const std::string& text) {
  std::vector<uint64_t> ids;
  std::string item;
  std::stringstream in(text);
  while (std::getline(in, item, ',')) {
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    if (item.empty()) continue;
    uint64_t id = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (ec != std::errc() || end != item.data() + item.size() || id == 0) return {};
    ids.push_back(id);
  }
  return ids;
}

// A file only its owner may read, never over an existing one.
Status write_new_private_file(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return make_error(ErrorCode::kInvalidArgument, fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  const bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ::close(fd);
  if (!ok) return make_error(ErrorCode::kInternal, fmt::format("cannot write {}", path));
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Worker

Worker::Worker() : thread_([this] { run(); }) {}

Worker::~Worker() {
  {
    std::lock_guard lock(mu_);
    is_stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

bool Worker::submit(std::function<Apply()> job) {
  {
    std::lock_guard lock(mu_);
    if (jobs_.size() >= kMaxQueuedJobs) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

bool Worker::drain(App& app) {
  std::deque<Apply> done;
  {
    std::lock_guard lock(mu_);
    done.swap(done_);
  }
  for (auto& apply : done) apply(app);
  return !done.empty();
}

bool Worker::is_busy() const {
  std::lock_guard lock(mu_);
  return is_running_job_ || !jobs_.empty();
}

void Worker::run() {
  while (true) {
    std::function<Apply()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return is_stopping_ || !jobs_.empty(); });
      if (is_stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      is_running_job_ = true;
    }
    Apply result = job();
    std::lock_guard lock(mu_);
    is_running_job_ = false;
    done_.push_back(std::move(result));
  }
}

// ---------------------------------------------------------------------------------------
// App: keys

App::App(client::Client& client, ops::ClusterPoller& poller, Options options)
    : client_(client), poller_(poller), options_(options) {}

void App::add_history(std::string line) {
  history_.push_back(std::move(line));
  while (history_.size() > kMaxHistoryLines) history_.pop_front();
}

void App::set_kv_page(std::vector<KvEntry> entries, bool has_more, std::string continuation) {
  kv_entries_ = std::move(entries);
  kv_has_more_ = has_more;
  kv_continuation_ = std::move(continuation);
  kv_selected_ = 0;
}

bool App::drain() {
  maybe_fetch_logs();
  return worker_.drain(*this);
}

uint64_t App::logs_node(const ops::ClusterView& v) const {
  if (v.members.empty()) return 0;
  return v.members[std::min(selected_, v.members.size() - 1)].node_id;
}

// While the Logs view is shown: at once when the node or the filter changed, else every
// refresh interval; one request at a time, never to a node the poller sees offline.
void App::maybe_fetch_logs() {
  if (view_ != View::kLogs || is_logs_in_flight_ || form_) return;
  const auto v = poller_.view();
  const uint64_t node = logs_node(v);
  if (node == 0) return;
  for (const auto& m : v.members) {
    if (m.node_id == node && !m.is_online) return;
  }
  const std::string level = kLogLevels[logs_level_];
  const bool is_new = node != logs_shown_node_ || level != logs_shown_level_;
  if (!is_new && Clock::now() - logs_fetched_at_ < std::chrono::milliseconds(options_.refresh_ms)) return;
  client::Client* c = &client_;
  const bool queued = worker_.submit([c, node, level]() -> Apply {
    client::cpb::Request req;
    req.mutable_get_logs()->set_max_lines(kLogsFetchLines);
    req.mutable_get_logs()->set_min_level(level);
    auto r = c->call(req, client::Target{node}, kLogsTimeoutMs);
    Result<client::cpb::GetLogsResponse> logs =
        !r ? Result<client::cpb::GetLogsResponse>(std::unexpected(r.error()))
        : !r->has_get_logs()
            ? Result<client::cpb::GetLogsResponse>(std::unexpected(Error(ErrorCode::kInternal, "the node answered no log lines")))
            : Result<client::cpb::GetLogsResponse>(std::move(*r->mutable_get_logs()));
    return [node, level, logs = std::move(logs)](App& app) mutable { app.set_logs(node, level, std::move(logs)); };
  });
  if (queued) {
    is_logs_in_flight_ = true;
    logs_fetched_at_ = Clock::now();
  }
}

void App::set_logs(uint64_t node_id, std::string level, Result<clientpb::GetLogsResponse> logs) {
  is_logs_in_flight_ = false;
  logs_fetched_at_ = Clock::now();
  logs_shown_node_ = node_id;
  logs_shown_level_ = std::move(level);
  if (!logs) {
    logs_error_ = logs.error().to_string();
    return;
  }
  logs_error_.clear();
  logs_.assign(std::make_move_iterator(logs->mutable_lines()->begin()),
               std::make_move_iterator(logs->mutable_lines()->end()));
}

void App::submit(std::function<Apply()> job, const std::string& what) {
  if (worker_.submit(std::move(job))) {
    status_ = what + "...";
  } else {
    status_ = fmt::format("busy: {} requests already queued (kMaxQueuedJobs); try again", kMaxQueuedJobs);
  }
}

bool App::on_key(int key) {
  if (form_) return on_form_key(key);
  switch (key) {
    case 'q':
    case 'Q':
      return false;
    case '?':
      if (view_ != View::kHelp) before_help_ = view_;
      view_ = view_ == View::kHelp ? before_help_ : View::kHelp;
      return true;
    case '\t':
      view_ = static_cast<View>((static_cast<int>(view_) + 1) % kViewCount);
      return true;
    case KEY_BTAB:
      view_ = static_cast<View>((static_cast<int>(view_) + kViewCount - 1) % kViewCount);
      return true;
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
      view_ = static_cast<View>(key - '1');
      return true;
    case KEY_RESIZE:
      return true;
    default:
      break;
  }
  if (view_ == View::kCluster) on_cluster_key(key);
  if (view_ == View::kKeyValue) on_kv_key(key);
  if (view_ == View::kLogs && key == 'l') logs_level_ = (logs_level_ + 1) % kLogLevelCount;
  return true;
}

bool App::on_form_key(int key) {
  Form& f = *form_;
  FormField& field = f.fields[f.current];
  if (key == 27) {  // Esc
    status_ = f.title + ": canceled";
    form_.reset();
  } else if (key == '\t' || key == KEY_DOWN) {
    f.current = (f.current + 1) % f.fields.size();
  } else if (key == KEY_BTAB || key == KEY_UP) {
    f.current = (f.current + f.fields.size() - 1) % f.fields.size();
  } else if (key == '\n' || key == '\r' || key == KEY_ENTER) {
    if (f.current + 1 < f.fields.size()) {
      ++f.current;
    } else {
      std::vector<std::string> values;
      for (const auto& v : f.fields) values.push_back(v.value);
      auto submit_fn = std::move(f.on_submit);
      form_.reset();
      submit_fn(*this, values);
    }
  } else if (key == KEY_BACKSPACE || key == 127 || key == 8) {
    if (!field.value.empty()) field.value.pop_back();
  } else if (key >= 0x20 && key < 0x7f && field.value.size() < 4096) {
    field.value += static_cast<char>(key);
  }
  return true;
}

void App::on_cluster_key(int key) {
  const auto v = poller_.view();
  if (key == KEY_UP && selected_ > 0) --selected_;
  if (key == KEY_DOWN && selected_ + 1 < v.members.size()) ++selected_;
  if (key == 'i') start_init();
  if (key == 'a') start_add_learner();
  if (key == 'm') start_change_membership();
}

void App::on_kv_key(int key) {
  if (key == KEY_UP && kv_selected_ > 0) --kv_selected_;
  if (key == KEY_DOWN && kv_selected_ + 1 < kv_entries_.size()) ++kv_selected_;
  if ((key == '\n' || key == KEY_ENTER) && kv_selected_ < kv_entries_.size()) kv_shown_ = kv_entries_[kv_selected_];
  if (key == 'n' && kv_has_more_) load_kv_page(true);
  if (key == 'p' && !kv_continuations_.empty()) {
    kv_continuations_.pop_back();
    load_kv_page(false);
  }
  if (key == 'g') {
    kv_continuations_.clear();
    load_kv_page(false);
  }
  if (key == '/') {
    open_form(Form{"Browse keys by prefix", {{"prefix", prefix_}}, 0, [](App& app, const std::vector<std::string>& v) {
                     app.prefix_ = v[0];
                     app.kv_continuations_.clear();
                     app.load_kv_page(false);
                   }});
  }
  if (key == 'r') {
    open_form(Form{"Read a key", {{"key", ""}}, 0,
                   [](App& app, const std::vector<std::string>& v) { app.start_read(v[0]); }});
  }
  if (key == 'w') {
    open_form(Form{"Write a key", {{"key", ""}, {"value", ""}}, 0,
                   [](App& app, const std::vector<std::string>& v) { app.start_write(v[0], v[1]); }});
  }
}

// ---------------------------------------------------------------------------------------
// App: requests (each on the worker)

void App::start_read(const std::string& key) {
  if (key.empty()) return set_status("read: a key is needed");
  client::Client* c = &client_;
  submit([c, key]() -> Apply {
    auto r = c->read(key);
    return [key, r = std::move(r)](App& app) {
      if (!r) {
        app.add_history(fmt::format("read {}: {}", key, r.error().to_string()));
        return app.set_status("read failed: " + r.error().message());
      }
      if (!r->has_value()) {
        app.add_history(fmt::format("read {}: not found", key));
        app.kv_shown_.reset();
        return app.set_status(fmt::format("{}: not found", key));
      }
      const auto& kv = **r;
      app.kv_shown_ = KvEntry{kv.key(), kv.value(), kv.mod_revision(), kv.version()};
      app.add_history(fmt::format("read {}: {} bytes, revision {}", key, kv.value().size(), kv.mod_revision()));
      app.set_status(fmt::format("read {}", key));
    };
  }, "reading " + key);
}

void App::start_write(const std::string& key, const std::string& value) {
  if (key.empty()) return set_status("write: a key is needed");
  client::Client* c = &client_;
  submit([c, key, value]() -> Apply {
    auto r = kv::put(*c, key, value);
    return [key, value, r = std::move(r)](App& app) {
      if (!r) {
        app.add_history(fmt::format("write {}: {}", key, r.error().to_string()));
        return app.set_status("write failed: " + r.error().message());
      }
      app.add_history(fmt::format("write {} = {} (revision {})", key, ops::format_value(value, 40), r->revision()));
      app.set_status(fmt::format("wrote {}", key));
      app.kv_shown_ = KvEntry{key, value, r->revision(), 0};
    };
  }, "writing " + key);
}

void App::load_kv_page(bool is_next) {
  kvpb::RangeRequest req;
  req.set_start(prefix_);
  req.set_is_prefix(true);
  req.set_limit(kKvPageSize);
  if (is_next) {
    kv_continuations_.push_back(kv_continuation_);
    req.set_continuation(kv_continuation_);
  } else if (!kv_continuations_.empty()) {
    req.set_continuation(kv_continuations_.back());
  }
  client::Client* c = &client_;
  const std::string prefix = prefix_;
  submit([c, req, prefix]() -> Apply {
    auto r = c->scan(req);
    return [prefix, r = std::move(r)](App& app) {
      if (!r) return app.set_status("scan failed: " + r.error().message());
      std::vector<KvEntry> entries;
      for (const auto& kv : r->kvs()) entries.push_back(KvEntry{kv.key(), kv.value(), kv.mod_revision(), kv.version()});
      app.add_history(fmt::format("scan '{}': {} keys{}", prefix, entries.size(), r->has_more() ? ", more" : ""));
      app.set_status(fmt::format("{} keys under '{}'", entries.size(), prefix));
      app.set_kv_page(std::move(entries), r->has_more(), r->continuation());
    };
  }, "scanning '" + prefix + "'");
}

void App::start_init() {
  open_form(Form{"Initialize a new cluster on the ticket's first node (Enter on the last field confirms, Esc cancels)",
                 {{"root key file", "./aspen-root.key"}, {"admin token file", "./aspen-admin.token"}},
                 0,
                 [](App& app, const std::vector<std::string>& v) {
                   client::Client* c = &app.client_;
                   const std::string root_path = v[0], token_path = v[1];
                   app.submit([c, root_path, token_path]() -> Apply {
                     auto r = c->init_cluster();
                     std::string result;
                     if (!r) {
                       result = "init failed: " + r.error().to_string();
                     } else if (auto s = transport::write_identity_file(
                                    root_path, transport::NodeIdentity::from_seed(r->root_seed));
                                !s) {
                       result = "initialized, but the root key could not be saved: " + s.error().message();
                     } else if (auto t = write_new_private_file(token_path, auth::encode_token_text(r->admin_token) + "\n");
                                !t) {
                       result = "initialized; the admin token could not be saved: " + t.error().message();
                     } else {
                       c->set_token(r->admin_token);
                       result = fmt::format("cluster {} initialized; root key {}, admin token {}",
                                            r->response.cluster_id(), root_path, token_path);
                     }
                     return [result](App& a) {
                       a.add_history(result);
                       a.set_status(result);
                     };
                   }, "initializing");
                 }});
}

void App::start_add_learner() {
  open_form(Form{"Add a learner (Enter on the last field confirms, Esc cancels)",
                 {{"node id", ""}, {"public key", ""}, {"address host:port", ""}},
                 0,
                 [](App& app, const std::vector<std::string>& v) {
                   auto ids = parse_ids(v[0]);
                   if (ids.size() != 1) return app.set_status("add learner: the node id must be one positive number");
                   client::cpb::NodeAddress node;
                   node.set_node_id(ids[0]);
                   node.set_public_key(v[1]);
                   if (!v[2].empty()) node.add_addrs(v[2]);
                   client::Client* c = &app.client_;
                   app.submit([c, node]() -> Apply {
                     auto r = c->add_learner(node);
                     std::string result = r ? fmt::format("node {} added as a learner", node.node_id())
                                            : "add learner failed: " + r.error().to_string();
                     return [result](App& a) {
                       a.add_history(result);
                       a.set_status(result);
                     };
                   }, "adding a learner");
                 }});
}

void App::start_change_membership() {
  open_form(Form{"Change the voters (comma-separated ids; Enter confirms, Esc cancels)",
                 {{"voters", ""}},
                 0,
                 [](App& app, const std::vector<std::string>& v) {
                   auto ids = parse_ids(v[0]);
                   if (ids.empty()) return app.set_status("change membership: voters must be ids like 1,2,3");
                   client::Client* c = &app.client_;
                   app.submit([c, ids]() -> Apply {
                     auto r = c->change_membership(ids, false);
                     std::string result = r ? fmt::format("voters are now {}", fmt::join(r->voters(), ","))
                                            : "change membership failed: " + r.error().to_string();
                     return [result](App& a) {
                       a.add_history(result);
                       a.set_status(result);
                     };
                   }, "changing the membership");
                 }});
}

// ---------------------------------------------------------------------------------------
// App: drawing

void App::draw() {
  erase();
  const int height = LINES;
  const int width = COLS;
  if (height < 8 || width < 30) {
    put(0, 0, width, "aspen-tui: the terminal is too small (need 30x8)");
    refresh();
    return;
  }
  const ops::ClusterView v = poller_.view();
  draw_tabs(width);
  const int top = 2;
  const int body = height - top - 2;
  switch (view_) {
    case View::kCluster: draw_cluster(v, top, body, width); break;
    case View::kMetrics: draw_metrics(v, top, body, width); break;
    case View::kKeyValue: draw_kv(top, body, width); break;
    case View::kLogs: draw_logs(v, top, body, width); break;
    case View::kHelp: draw_help(top, body, width); break;
  }
  if (form_) {
    draw_form(height, width);
  } else {
    draw_footer(height, width);
  }
  refresh();
}

void App::draw_tabs(int width) {
  static constexpr const char* kNames[] = {"Cluster", "Metrics", "Key-Value", "Logs", "Help"};
  int x = 0;
  for (int i = 0; i < kViewCount; ++i) {
    const bool is_current = static_cast<int>(view_) == i;
    const std::string label = is_current ? fmt::format("[{}]", kNames[i]) : fmt::format(" {} ", kNames[i]);
    put(0, x, width - x, label, is_current ? (A_REVERSE | A_BOLD) : A_NORMAL);
    x += static_cast<int>(label.size()) + 1;
  }
  const auto v = poller_.view();
  const std::string right =
      v.leader_id != 0 ? fmt::format("leader {} term {}", v.leader_id, v.term) : std::string("no leader");
  if (x + static_cast<int>(right.size()) < width) put(0, width - static_cast<int>(right.size()), width, right, A_BOLD);
  mvhline(1, 0, '-', width);
}

void App::draw_cluster(const ops::ClusterView& v, int top, int height, int width) {
  if (v.members.empty()) {
    put(top, 0, width, v.polls == 0 ? "asking the cluster..." : "no member answers");
    return;
  }
  if (selected_ >= v.members.size()) selected_ = v.members.size() - 1;
  put(top, 0, width, "  ID    M ROLE        KEY", A_BOLD);
  const int list_rows = std::min<int>(static_cast<int>(v.members.size()), std::max(1, height / 2 - 1));
  const size_t first = selected_ >= static_cast<size_t>(list_rows) ? selected_ - list_rows + 1 : 0;
  for (int row = 0; row < list_rows && first + row < v.members.size(); ++row) {
    const auto& m = v.members[first + row];
    const bool is_selected = first + row == selected_;
    attr_t attr = is_selected ? A_REVERSE : A_NORMAL;
    if (!options_.is_monochrome) {
      if (!m.is_online) attr |= COLOR_PAIR(kPairOffline);
      else if (m.role == "leader") attr |= COLOR_PAIR(kPairLeader) | A_BOLD;
      else if (m.is_learner) attr |= COLOR_PAIR(kPairLearner);
    } else if (m.role == "leader" && m.is_online) {
      attr |= A_BOLD;
    }
    const std::string key = m.public_key.empty() ? "-" : m.public_key;
    put(top + 1 + row, 0, width,
        fmt::format("{} [{}]{} {} {:<11} {}", is_selected ? '>' : ' ', m.node_id,
                    std::string(std::max(0, 4 - static_cast<int>(std::to_string(m.node_id).size())), ' '),
                    ops::member_marker(m), ops::member_state(m), key),
        attr);
  }
  // Details of the selected member.
  const auto& m = v.members[selected_];
  int y = top + 2 + list_rows;
  mvhline(y - 1 < top + 1 + list_rows ? top + 1 + list_rows : y - 1, 0, '-', width);
  const auto now = Clock::now();
  std::optional<double> ago;
  if (m.last_contact) ago = std::chrono::duration<double>(now - *m.last_contact).count();
  const std::vector<std::string> lines = {
      fmt::format("node {}   state {}   term {}", m.node_id, ops::member_state(m), m.term),
      fmt::format("commit {}   applied {}   last log {}", m.commit_index, m.applied_index, m.last_log_index),
      fmt::format("match {}   lag {}   last contact {}", m.match_index ? std::to_string(*m.match_index) : "-",
                  m.lag_entries ? std::to_string(*m.lag_entries) : "-", ops::format_ago(ago)),
      fmt::format("address {}   clock offset unknown", m.address.empty() ? "-" : m.address),
      fmt::format("key {}", m.public_key.empty() ? "-" : m.public_key),
      m.is_online ? fmt::format("storage {}   connections {:.0f}   pending {:.0f}", ops::format_bytes(m.storage_used_bytes),
                                m.connections_open, m.pending_requests)
                  : "offline: " + m.error,
  };
  for (const auto& line : lines) {
    if (y >= top + height) break;
    put(y++, 1, width - 1, line);
  }
}

void App::draw_metrics(const ops::ClusterView& v, int top, int height, int width) {
  const int spark = std::max(10, width - 26);
  auto last = [](const ops::History& h) { return h.points.empty() ? 0.0 : h.points.back(); };
  struct Row {
    const char* name;
    const ops::History* h;
    bool is_latency;
  };
  const Row rows[] = {{"writes/s", &v.writes_per_s, false}, {"reads/s", &v.reads_per_s, false},
                      {"write p99", &v.write_p99_s, true},  {"read p99", &v.read_p99_s, true},
                      {"fsync p99", &v.fsync_p99_s, true}};
  int y = top;
  for (const auto& r : rows) {
    if (y >= top + height) return;
    const std::string value = r.is_latency ? ops::format_seconds(last(*r.h)) : fmt::format("{:.1f}", last(*r.h));
    put(y, 0, 11, r.name, A_BOLD);
    put(y, 11, spark, ops::sparkline(r.h->points, static_cast<size_t>(spark)));
    put(y, 12 + spark, width - 12 - spark, value);
    ++y;
  }
  ++y;
  put(y++, 0, width, "node  term   commit  applied  storage    conns  pending", A_BOLD);
  for (const auto& m : v.members) {
    if (y >= top + height) return;
    if (!m.is_online) {
      put(y++, 0, width, fmt::format("{:<4}  offline", m.node_id));
      continue;
    }
    put(y++, 0, width,
        fmt::format("{:<4}  {:<5}  {:<6}  {:<7}  {:<9}  {:<5.0f}  {:.0f}", m.node_id, m.term, m.commit_index,
                    m.applied_index, ops::format_bytes(m.storage_used_bytes), m.connections_open, m.pending_requests));
  }
  // Round trips from the leader (or the first member that answers) to its peers.
  const ops::MemberView* from = nullptr;
  for (const auto& m : v.members) {
    if (m.is_online && (from == nullptr || m.node_id == v.leader_id)) from = &m;
  }
  if (from == nullptr || y + 1 >= top + height) return;
  put(y++, 0, width, fmt::format("round trips from node {}:", from->node_id), A_BOLD);
  for (const auto& r : from->rtts) {
    if (y >= top + height) return;
    put(y++, 2, width - 2, fmt::format("{} {:<12} {}", r.peer, r.alpn, ops::format_seconds(r.rtt_s)));
  }
}

void App::draw_kv(int top, int height, int width) {
  put(top, 0, width,
      fmt::format("prefix '{}'  {} keys{}   / prefix  g reload  n/p page  Enter view  r read  w write", prefix_,
                  kv_entries_.size(), kv_has_more_ ? "+" : ""),
      A_BOLD);
  const int list_rows = std::max(1, height / 2 - 1);
  const size_t first = kv_selected_ >= static_cast<size_t>(list_rows) ? kv_selected_ - list_rows + 1 : 0;
  for (int row = 0; row < list_rows && first + row < kv_entries_.size(); ++row) {
    const auto& e = kv_entries_[first + row];
    const bool is_selected = first + row == kv_selected_;
    put(top + 1 + row, 0, width,
        fmt::format("{} {}  ({} bytes, rev {})", is_selected ? '>' : ' ', ops::format_value(e.key, 40), e.value.size(),
                    e.mod_revision),
        is_selected ? A_REVERSE : A_NORMAL);
  }
  int y = top + 1 + list_rows;
  mvhline(y++, 0, '-', width);
  if (kv_shown_) {
    put(y++, 0, width, fmt::format("key {}  revision {}", ops::format_value(kv_shown_->key, 60), kv_shown_->mod_revision),
        A_BOLD);
    const std::string value = ops::format_value(kv_shown_->value, static_cast<size_t>(width) * 3);
    std::stringstream lines(value.find('\n') == std::string::npos && static_cast<int>(value.size()) > width
                                ? value.substr(0, static_cast<size_t>(width)) + "\n" + value.substr(static_cast<size_t>(width))
                                : value);
    std::string line;
    for (int n = 0; n < 3 && std::getline(lines, line) && y < top + height; ++n) put(y++, 2, width - 2, line);
  }
  // The latest operations, newest last.
  const int room = top + height - y;
  if (room <= 0) return;
  const size_t shown = std::min(history_.size(), static_cast<size_t>(room));
  for (size_t i = history_.size() - shown; i < history_.size(); ++i) put(y++, 0, width, history_[i], A_DIM);
}

void App::draw_logs(const ops::ClusterView& v, int top, int height, int width) {
  const uint64_t node = logs_node(v);
  const char* level = kLogLevels[logs_level_];
  put(top, 0, width,
      fmt::format("node {}  level {}   l level  Up/Down in Cluster picks the node", node == 0 ? "-" : std::to_string(node),
                  *level == 0 ? "all" : level),
      A_BOLD);
  std::string problem;
  for (const auto& m : v.members) {
    if (m.node_id == node && !m.is_online) problem = fmt::format("node {} is offline: {}", node, m.error);
  }
  if (node == 0) problem = v.polls == 0 ? "asking the cluster..." : "no member answers";
  const bool is_current = node == logs_shown_node_ && level == logs_shown_level_;
  if (problem.empty() && is_current && !logs_error_.empty()) {
    problem = fmt::format("node {} does not answer: {}", node, logs_error_);
  }
  if (problem.empty() && !is_current) problem = fmt::format("asking node {} for its recent lines...", node);
  int bottom = top + height;  // lines go above this row, newest last
  if (!problem.empty()) {
    put(--bottom, 0, width, problem, is_current || node == 0 ? A_BOLD : A_DIM);
    if (!is_current) return;  // the lines shown belong to another node or filter
  }
  if (is_current && logs_.empty() && logs_error_.empty()) {
    put(top + 1, 0, width, fmt::format("node {} keeps no lines at level {}", node, *level == 0 ? "all" : level));
    return;
  }
  // One terminal row a line, cut at the width: "13:05:56.123 WARN  message".
  const int rows = bottom - (top + 1);
  const size_t shown = std::min(logs_.size(), static_cast<size_t>(std::max(rows, 0)));
  int y = bottom - static_cast<int>(shown);
  for (size_t i = logs_.size() - shown; i < logs_.size(); ++i) {
    const auto& l = logs_[i];
    attr_t attr = A_NORMAL;
    if (l.level() == "error" || l.level() == "critical") {
      attr = options_.is_monochrome ? A_BOLD : (COLOR_PAIR(kPairOffline) | A_BOLD);
    } else if (l.level() == "warning") {
      attr = A_BOLD;
    } else if (l.level() == "debug" || l.level() == "trace") {
      attr = A_DIM;
    }
    put(y++, 0, width,
        fmt::format("{} {} {}", ops::format_log_time(l.time_ms(), false), ops::log_level_tag(l.level()),
                    ops::printable_log_text(l.message(), false)),
        attr);
  }
}

void App::draw_help(int top, int height, int width) {
  static constexpr const char* kLines[] = {
      "Tab / Shift+Tab  next / previous view   1-5  Cluster Metrics Key-Value Logs Help",
      "?                 this help (again: back)   q    quit",
      "Cluster: Up/Down select a node; i init a cluster on the ticket's first node,",
      "         a add a learner, m change the voters (each asks first; Esc cancels)",
      "         markers: * leader  o follower  ~ learner  x offline",
      "Metrics: writes/s, reads/s, p99s over the last minutes; Raft indices; RTTs",
      "Key-Value: / browse a prefix, g reload, n/p next/previous page, Up/Down,",
      "         Enter show the value (text, or hex), r read a key, w write a key",
      "Logs: the recent lines of the node selected in Cluster, newest last (UTC);",
      "         l cycles the level filter: all, info, warn, error",
      "Forms: type, Tab or Enter next field, Enter on the last submits, Esc cancels",
      "The screen follows the terminal's size; --refresh MS sets the poll interval.",
  };
  int y = top;
  for (const char* line : kLines) {
    if (y >= top + height) break;
    put(y++, 0, width, line);
  }
}

void App::draw_form(int height, int width) {
  const Form& f = *form_;
  const int rows = static_cast<int>(f.fields.size()) + 1;
  int y = height - rows - 1;
  mvhline(y - 1, 0, '=', width);
  put(y++, 0, width, f.title, A_BOLD);
  for (size_t i = 0; i < f.fields.size(); ++i) {
    const bool is_current = i == f.current;
    put(y++, 0, width, fmt::format("{} {}: {}{}", is_current ? '>' : ' ', f.fields[i].label, f.fields[i].value,
                                   is_current ? "_" : ""),
        is_current ? A_BOLD : A_NORMAL);
  }
  put(height - 1, 0, width, "Tab/Enter next field, Enter on the last submits, Esc cancels", A_DIM);
}

void App::draw_footer(int height, int width) {
  put(height - 2, 0, width, status_.empty() ? (worker_.is_busy() ? "working..." : "") : status_);
  const char* keys = view_ == View::kCluster    ? "Tab view  Up/Down select  i init  a add learner  m voters  ? help  q quit"
                     : view_ == View::kKeyValue ? "Tab view  / prefix  r read  w write  n/p page  ? help  q quit"
                     : view_ == View::kLogs     ? "Tab view  l level (all/info/warn/error)  ? help  q quit"
                                                : "Tab view  ? help  q quit";
  put(height - 1, 0, width, keys, A_REVERSE);
}

}  // namespace aspen::tui
