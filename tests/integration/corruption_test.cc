// A node whose data is damaged at rest refuses to start (issue 14, item 7): real aspen-node
// processes on 127.0.0.1. A byte flipped inside a committed entry of a stopped node's log
// makes the node exit non-zero with a message naming the segment file, the offset and the
// entry and saying what to do; the two other nodes keep serving.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "node_process.h"

namespace aspen::testing {
namespace {

constexpr char kCookie[] = "integration-cookie-1";

class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_.path(), kCookie);
      ASSERT_NO_FATAL_FAILURE(nodes_[id]->start());
    }
    client_ = client_for(nodes_);
    ASSERT_NE(client_, nullptr);
    ASSERT_NO_FATAL_FAILURE(form_cluster(*client_, nodes_));
  }

  // Puts a key whose value is `marker` (so its entry can be found in a log file), then more
  // keys after it, and waits until node 3 applied them all. Returns the marker's index.
  uint64_t write_marker_and_more(const std::string& marker) {
    // Node 3 joined with a snapshot (a new member gets the state that way); until it has it,
    // a later snapshot could bring the marker too, and then no log of node 3 would hold it
    // (seen once under CI load). Once node 3 has applied what is committed now, later entries
    // reach it as log entries: nothing is compacted at this size.
    auto leader = client_->raft_metrics();
    EXPECT_TRUE(leader.has_value()) << leader.error().to_string();
    const uint64_t committed = leader ? leader->commit_index() : 0;
    EXPECT_TRUE(wait_until(
        [&] {
          auto m = client_->raft_metrics(client::Target{3});
          return m && m->applied_index() >= committed;
        },
        15000))
        << "node 3 did not catch up to " << committed;
    auto r = kv::put(*client_, "corrupt/target", marker);
    EXPECT_TRUE(r.has_value()) << r.error().to_string();
    uint64_t last = 0;
    for (int i = 0; i < 20; ++i) {
      auto more = kv::put(*client_, fmt::format("corrupt/after/{}", i), "v");
      EXPECT_TRUE(more.has_value()) << more.error().to_string();
      if (more) last = more->revision();
    }
    EXPECT_TRUE(wait_until(
        [&] {
          auto m = client_->raft_metrics(client::Target{3});
          return m && m->applied_index() >= last;
        },
        15000))
        << "node 3 did not apply entry " << last;
    return r ? r->revision() : 0;
  }

  // The segment of node 3's log holding `marker`, and the marker's offset in it.
  std::pair<std::string, size_t> find_in_log(const std::string& marker) {
    const std::string wal = dir_.path() + "/node-3/db/wal";
    for (const auto& f : std::filesystem::directory_iterator(wal)) {
      const std::string bytes = read_file(f.path().string());
      if (const size_t pos = bytes.find(marker); pos != std::string::npos) return {f.path().string(), pos};
    }
    ADD_FAILURE() << "the marker is in no segment of " << wal;
    return {"", 0};
  }

  // Starts node 3 as NodeProcess does and waits (with a deadline) until it exits. Returns
  // its exit code and its output.
  CommandResult start_node3_until_exit() {
    NodeProcess& n = *nodes_.at(3);
    const std::string cookie_path = dir_.path() + "/cookie-3";  // written by the first start
    const std::string out = dir_.path() + "/node-3.refused.log";
    const pid_t pid = spawn({bin_path("aspen-node"), "--node-id", "3", "--cookie-file", cookie_path, "--data-dir",
                             dir_.path() + "/node-3", "--bind", n.addr(), "--heartbeat-ms", "50",
                             "--election-timeout-ms", "500", "--log-level", log_level()},
                            out, true);
    CommandResult r;
    int status = 0;
    const bool has_exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 15000);
    if (!has_exited) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.exit_code = -1;  // still running: it did not refuse
    } else {
      r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    r.out = read_file(out);
    return r;
  }

  // The two other nodes still take writes and answer linearizable reads.
  void expect_cluster_serves() {
    auto w = kv::put(*client_, "corrupt/still-serving", "yes");
    ASSERT_TRUE(w.has_value()) << w.error().to_string();
    auto g = kv::get(*client_, "corrupt/still-serving");
    ASSERT_TRUE(g.has_value()) << g.error().to_string();
    ASSERT_TRUE(g->has_value());
    EXPECT_EQ((*g)->value(), "yes");
  }

  TempDir dir_;
  NodeMap nodes_;
  std::unique_ptr<client::Client> client_;
};

void patch_file(const std::string& path, size_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good());
}

TEST_F(CorruptionTest, FlippedByteInACommittedEntryMakesTheNodeRefuseToStart) {
  const std::string marker = "MARKER-flip-0123456789abcdef";
  const uint64_t index = write_marker_and_more(marker);
  ASSERT_GT(index, 0u);
  EXPECT_EQ(nodes_.at(3)->terminate(), 0);
  const auto [segment, pos] = find_in_log(marker);
  ASSERT_FALSE(segment.empty());
  ASSERT_NO_FATAL_FAILURE(patch_file(segment, pos + 7, "X"));  // "MARKER-f" -> "MARKER-X"

  const CommandResult r = start_node3_until_exit();
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.exit_code, -1) << "node 3 kept running with a damaged log:\n" << r.out;
  EXPECT_EQ(r.out.find("ASPEN_NODE_READY"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Corruption"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(segment), std::string::npos) << r.out;  // the file
  EXPECT_NE(r.out.find(fmt::format("entry {}", index)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("will not vote or serve"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("add-learner"), std::string::npos) << r.out;  // what to do
  ASSERT_NO_FATAL_FAILURE(expect_cluster_serves());
}

// Damage in the log's very last write reads as a torn write and is dropped; but the state
// machine had applied those entries, and every applied entry was synced to the log first, so
// the node refuses instead of running (and crash-looping) on a log shorter than its state.
TEST_F(CorruptionTest, LogThatLostAnAppliedEntryMakesTheNodeRefuseToStart) {
  const std::string marker = "MARKER-lost-0123456789abcdef";
  const uint64_t index = write_marker_and_more(marker);
  ASSERT_GT(index, 0u);
  EXPECT_EQ(nodes_.at(3)->terminate(), 0);
  const auto [segment, pos] = find_in_log(marker);
  ASSERT_FALSE(segment.empty());
  // Damage the marker's record and zero everything after it: the marker's write is now the
  // last one, and damaged.
  const auto size = std::filesystem::file_size(segment);
  ASSERT_NO_FATAL_FAILURE(patch_file(segment, pos + 7, "X"));
  ASSERT_NO_FATAL_FAILURE(patch_file(segment, pos + marker.size(), std::string(size - pos - marker.size(), '\0')));

  const CommandResult r = start_node3_until_exit();
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.exit_code, -1) << "node 3 kept running with a damaged log:\n" << r.out;
  EXPECT_NE(r.out.find("Corruption"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("were applied"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("are gone from it"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("will not vote or serve"), std::string::npos) << r.out;
  ASSERT_NO_FATAL_FAILURE(expect_cluster_serves());
}

}  // namespace
}  // namespace aspen::testing
