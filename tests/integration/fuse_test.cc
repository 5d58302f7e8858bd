// aspen-fuse against a real 3-node cluster, used with the real tools: mkdir -p, echo >, cat,
// stat, find, cp -r of a tree of random binary files in and out with diff -r, mv, rm -r; a
// key written with aspen-cli appears in the mount, a file written in the mount reads back
// byte for byte with `aspen-cli kv get --raw`; EFBIG past the value limit; --read-only.
//
// Skipped with a message where FUSE cannot be used (no /dev/fuse, no permission to mount,
// fusermount3 missing). Every mount is unmounted in TearDown, also after a failure
// (fusermount3 -u, then umount -l as a last resort), before its directory is removed.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "cli_process.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

namespace fs = std::filesystem;

bool is_mounted(const std::string& dir) { return read_file("/proc/mounts").find(" " + dir + " fuse") != std::string::npos; }

std::string fuse_unavailable_reason() {
  const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::string("/dev/fuse cannot be opened: ") + std::strerror(errno);
  ::close(fd);
  if (!fs::exists("/usr/bin/fusermount3")) return "fusermount3 is not installed (apt-get install fuse3)";
  return "";
}

struct Mount {
  std::string dir;
  pid_t pid = -1;
  std::string log;
};

class FuseTest : public ::testing::Test {
 protected:
  static inline SharedSetUp shared_;  // set_up_suite runs from the first SetUp (node_process.h)
  static void set_up_suite() {
    skip_reason_ = fuse_unavailable_reason();
    if (!skip_reason_.empty()) return;
    dir_ = new TempDir();
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_->path(), "fuse-cookie-1");
      nodes_[id]->start();
    }
    client_ = client_for(nodes_).release();
    ASSERT_NE(client_, nullptr);
    clientpb::InitClusterResponse init;
    ASSERT_NO_FATAL_FAILURE(form_cluster(*client_, nodes_, &init));
    env_ = operator_env(dir_->path());
    env_["ASPEN_TICKET"] = init.ticket();
    env_["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin";
    main_ = mount("main", {"--prefix", "fs"});
    if (!is_mounted(main_.dir)) {
      skip_reason_ = "mounting a FUSE filesystem is not permitted here: " + main_.log;
      unmount(main_);
    }
  }
  static void TearDownTestSuite() {
    shared_ = {};
    unmount(main_);
    for (auto& [id, n] : nodes_) n->kill9();
    nodes_.clear();
    delete client_;
    client_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASPEN_SHARED_SET_UP(shared_, set_up_suite);
    if (!skip_reason_.empty()) GTEST_SKIP() << "FUSE unavailable: " << skip_reason_;
  }

  static Mount mount(const std::string& name, const std::vector<std::string>& extra) {
    Mount m;
    m.dir = dir_->path() + "/mnt-" + name;
    fs::create_directories(m.dir);
    const std::string out = dir_->path() + "/fuse-" + name + ".log";
    std::vector<std::string> argv{bin_path("aspen-fuse"), m.dir, "--foreground", "--ticket", env_["ASPEN_TICKET"],
                                  "--identity", env_["ASPEN_IDENTITY"], "--token-file", env_["ASPEN_TOKEN_FILE"]};
    argv.insert(argv.end(), extra.begin(), extra.end());
    m.pid = spawn(argv, out, true);
    wait_until([&] { return is_mounted(m.dir) || read_file(out).find("aspen-fuse:") != std::string::npos; }, 15000);
    m.log = read_file(out);
    return m;
  }
  // Always leaves the directory unmounted and the process gone.
  static void unmount(Mount& m) {
    if (m.dir.empty()) return;
    if (is_mounted(m.dir)) {
      run_process({"/usr/bin/fusermount3", "-u", m.dir}, dir_->path(), "", {});
      if (!wait_until([&] { return !is_mounted(m.dir); }, 5000)) ::umount2(m.dir.c_str(), MNT_DETACH);
    }
    if (m.pid > 0) {
      if (!wait_until([&] { return ::waitpid(m.pid, nullptr, WNOHANG) == m.pid; }, 5000)) {
        ::kill(m.pid, SIGKILL);
        ::waitpid(m.pid, nullptr, 0);
      }
      m.pid = -1;
    }
  }
  static CliRun sh(const std::string& command) { return run_process({"/bin/sh", "-c", command}, dir_->path(), "", env_); }
  static CliRun cli(const std::vector<std::string>& args) { return run_cli(args, dir_->path(), "", env_); }

  static inline TempDir* dir_ = nullptr;
  static inline NodeMap nodes_;
  static inline client::Client* client_ = nullptr;
  static inline std::map<std::string, std::string> env_;
  static inline Mount main_;
  static inline std::string skip_reason_;
};

TEST_F(FuseTest, EverydayToolsWorkOnKeys) {
  const std::string m = main_.dir;
  auto r = sh("mkdir -p " + m + "/app/config && echo 'host=db1' > " + m + "/app/config/db && cat " + m + "/app/config/db");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "host=db1\n");
  auto kv = kv::get(*client_, "fs/app/config/db");
  ASSERT_TRUE(kv.has_value() && kv->has_value());
  EXPECT_EQ((*kv)->value(), "host=db1\n") << "the file is the key under the prefix";
  auto st = sh("stat -c '%s %F' " + m + "/app/config/db " + m + "/app/config");
  EXPECT_EQ(st.out, "9 regular file\n0 directory\n") << st.err;
  auto found = sh("cd " + m + " && find app | sort");
  EXPECT_EQ(found.out, "app\napp/config\napp/config/db\n") << found.err;
  EXPECT_EQ(sh("echo more >> " + m + "/app/config/db && cat " + m + "/app/config/db").out, "host=db1\nmore\n");
  EXPECT_NE(sh("cat " + m + "/app/missing").exit_code, 0);
}

TEST_F(FuseTest, ATreeOfRandomBinaryFilesCopiesInAndOutUnchanged) {
  const std::string src = dir_->path() + "/src-tree";
  std::mt19937_64 rng(24);
  for (int i = 0; i < 24; ++i) {
    const std::string sub = src + "/d" + std::to_string(i % 4) + (i % 3 == 0 ? "/deeper" : "");
    fs::create_directories(sub);
    const size_t size = i == 0 ? 0 : (rng() % 300000);
    std::string bytes(size, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng());
    write_bytes(sub + "/file-" + std::to_string(i) + ".bin", bytes);
  }
  fs::create_directories(src + "/empty-dir");
  const std::string m = main_.dir;
  auto in = sh("cp -r " + src + " " + m + "/tree");
  ASSERT_EQ(in.exit_code, 0) << in.err;
  auto out = sh("cp -r " + m + "/tree " + dir_->path() + "/back-tree");
  ASSERT_EQ(out.exit_code, 0) << out.err;
  auto diff = sh("diff -r " + src + " " + dir_->path() + "/back-tree");
  EXPECT_EQ(diff.exit_code, 0) << diff.out << diff.err;
  // And byte for byte through the CLI.
  auto raw = cli({"kv", "get", "fs/tree/d1/file-1.bin", "--raw"});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(raw.out, read_bytes(src + "/d1/file-1.bin"));
  EXPECT_EQ(sh("cd " + m + "/tree && find . -type f | wc -l").out, "24\n");
}

TEST_F(FuseTest, MvAndRmChangeTheKeys) {
  const std::string m = main_.dir;
  ASSERT_EQ(sh("mkdir -p " + m + "/mv/dir/sub && echo a > " + m + "/mv/one && echo b > " + m + "/mv/dir/sub/two").exit_code, 0);
  auto mv = sh("mv " + m + "/mv/one " + m + "/mv/renamed");
  ASSERT_EQ(mv.exit_code, 0) << mv.err;
  EXPECT_FALSE(kv::get(*client_, "fs/mv/one")->has_value());
  EXPECT_EQ((*kv::get(*client_, "fs/mv/renamed"))->value(), "a\n");
  auto mvdir = sh("mv " + m + "/mv/dir " + m + "/mv/dir2 && cat " + m + "/mv/dir2/sub/two");
  EXPECT_EQ(mvdir.exit_code, 0) << mvdir.err;
  EXPECT_EQ(mvdir.out, "b\n");
  auto rm = sh("rm -r " + m + "/mv && ls " + m);
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out.find("mv"), std::string::npos);
  EXPECT_TRUE(kv::scan_prefix(*client_, "fs/mv")->kvs().empty()) << "every key under it is gone";
}

TEST_F(FuseTest, AKeyWrittenWithTheCliAppearsInTheMount) {
  auto set = cli({"kv", "set", "fs/from-cli/greeting", "hello from the cli"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  const std::string path = main_.dir + "/from-cli/greeting";
  EXPECT_TRUE(wait_until([&] { return sh("cat " + path).out == "hello from the cli"; }, 15000));
  EXPECT_NE(sh("ls " + main_.dir + "/from-cli").out.find("greeting"), std::string::npos);
}

TEST_F(FuseTest, AFileOverTheValueLimitFailsWithEfbig) {
  auto r = sh("head -c 1100000 /dev/zero > " + main_.dir + "/too-big");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
  auto ok = sh("head -c 1048576 /dev/zero > " + main_.dir + "/just-fits && stat -c %s " + main_.dir + "/just-fits");
  EXPECT_EQ(ok.out, "1048576\n") << ok.err;
}

TEST_F(FuseTest, AReadOnlyMountRefusesChangesAndReads) {
  ASSERT_EQ(sh("echo ro > " + main_.dir + "/ro-file").exit_code, 0);
  Mount ro = mount("ro", {"--prefix", "fs", "--read-only"});
  ASSERT_TRUE(is_mounted(ro.dir)) << ro.log;
  auto cat = sh("cat " + ro.dir + "/ro-file");
  auto touch = sh("touch " + ro.dir + "/new-file");
  unmount(ro);
  EXPECT_EQ(cat.out, "ro\n") << cat.err;
  EXPECT_NE(touch.exit_code, 0);
  EXPECT_NE(touch.err.find("Read-only file system"), std::string::npos) << touch.err;
}

TEST_F(FuseTest, BadMountPointsAndTicketsFailWithAClearMessage) {
  auto r = run_process({bin_path("aspen-fuse"), dir_->path() + "/no-such-dir", "--ticket", env_["ASPEN_TICKET"]}, dir_->path(), "", env_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not an existing directory"), std::string::npos) << r.err;
  fs::create_directories(dir_->path() + "/unused");
  auto no_ticket = run_process({bin_path("aspen-fuse"), dir_->path() + "/unused"}, dir_->path(), "", {{"PATH", "/usr/bin:/bin"}});
  EXPECT_EQ(no_ticket.exit_code, 2);
  EXPECT_NE(no_ticket.err.find("no cluster ticket"), std::string::npos) << no_ticket.err;
  EXPECT_FALSE(is_mounted(dir_->path() + "/unused"));
}

// Where /dev/fuse cannot be opened, aspen-fuse says FUSE is not available (and how to get it)
// and mounts nothing. The device is made to disappear in a mount namespace of the test's own,
// so this runs whether or not the machine has FUSE.
TEST(FuseUnavailable, WithoutDevFuseItSaysSoAndMountsNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to hide /dev/fuse in a mount namespace";
  if (!fs::exists("/usr/bin/unshare")) GTEST_SKIP() << "unshare (util-linux) is not installed";
  TempDir dir;
  const std::string mnt = dir.path() + "/mnt";
  fs::create_directories(mnt);
  // A fresh, empty /dev in a private mount namespace: no /dev/fuse there.
  auto r = run_process({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                        "mount -t tmpfs none /dev || exit 99; exec \"$0\" \"$1\" --ticket unused",
                        bin_path("aspen-fuse"), mnt},
                       dir.path(), "", {{"PATH", "/usr/bin:/bin:/usr/sbin:/sbin"}});
  if (r.exit_code == 99 || r.err.find("unshare failed") != std::string::npos) {
    GTEST_SKIP() << "cannot make a mount namespace here: " << r.err;
  }
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("FUSE is not available: cannot open /dev/fuse"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("apt-get install fuse3"), std::string::npos) << r.err;
  EXPECT_FALSE(is_mounted(mnt));
}

}  // namespace
}  // namespace aspen::testing
