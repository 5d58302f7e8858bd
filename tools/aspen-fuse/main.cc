// aspen-fuse: mounts an Aspen cluster's KV store (or the keys under a prefix) as a POSIX
// filesystem, so ls, cat, cp, editors and scripts work on keys (docs/fuse.md). Stateless:
// it uses only the client library; the filesystem logic is src/fusefs/kv_fs.h.
//
//   aspen-fuse MOUNTPOINT [--ticket T] [--prefix P] [--read-only] [--foreground]
//   fusermount3 -u MOUNTPOINT      (or Ctrl+C with --foreground)
//
// Threads: libfuse's worker threads call KvFs (thread-safe), each blocking on its own
// client request; the client library's own threads. Nothing else.
#define FUSE_USE_VERSION 35
#include <fuse3/fuse.h>

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>

#include "client/client.h"
#include "client/credentials.h"
#include "core/log.h"
#include "fusefs/kv_fs.h"
#include "fusefs/mapping.h"

namespace {

using namespace aspen;

uint64_t wall_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// What every callback reads (fuse_get_context()->private_data): filled in after daemonizing,
// before the first request is served.
struct Holder {
  std::unique_ptr<fusefs::KvFs> fs;
};
fusefs::KvFs& fs() { return *static_cast<Holder*>(fuse_get_context()->private_data)->fs; }

void fill_stat(const fusefs::Attr& a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_mode = a.is_dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
  st->st_nlink = a.is_dir ? 2 : 1;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blksize = 4096;
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_mtim.tv_sec = static_cast<time_t>(a.mtime_ms / 1000);
  st->st_mtim.tv_nsec = static_cast<long>((a.mtime_ms % 1000) * 1000000);
  st->st_ctim = st->st_mtim;
  st->st_atim = st->st_mtim;
}

int op_getattr(const char* path, struct stat* st, fuse_file_info*) {
  fusefs::Attr a;
  const int r = fs().getattr(path, &a);
  if (r == 0) fill_stat(a, st);
  return r;
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info*, fuse_readdir_flags) {
  std::vector<fusefs::DirEntry> entries;
  const int r = fs().readdir(path, &entries);
  if (r != 0) return r;
  filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  for (const auto& e : entries) {
    struct stat st;
    fill_stat(e.attr, &st);
    if (filler(buf, e.name.c_str(), &st, 0, FUSE_FILL_DIR_PLUS) != 0) break;
  }
  return 0;
}

int op_open(const char* path, fuse_file_info* fi) {
  uint64_t h = 0;
  const int r = fs().open(path, fi->flags, &h);
  if (r == 0) fi->fh = h;
  return r;
}

int op_create(const char* path, mode_t, fuse_file_info* fi) {
  uint64_t h = 0;
  const int r = fs().create(path, &h);
  if (r == 0) fi->fh = h;
  return r;
}

int op_read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  return static_cast<int>(fs().read(fi->fh, buf, size, static_cast<uint64_t>(off)));
}

int op_write(const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  return static_cast<int>(fs().write(fi->fh, buf, size, static_cast<uint64_t>(off)));
}

int op_truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (size < 0) return -EINVAL;
  return fs().truncate(path, static_cast<uint64_t>(size), fi != nullptr ? fi->fh : 0);
}

int op_flush(const char*, fuse_file_info* fi) { return fs().flush(fi->fh); }
int op_fsync(const char*, int, fuse_file_info* fi) { return fs().flush(fi->fh); }
int op_release(const char*, fuse_file_info* fi) { return fs().release(fi->fh); }
int op_unlink(const char* path) { return fs().unlink(path); }
int op_mkdir(const char* path, mode_t) { return fs().mkdir(path); }
int op_rmdir(const char* path) { return fs().rmdir(path); }
int op_rename(const char* from, const char* to, unsigned int flags) { return fs().rename(from, to, flags); }

// Modes, owners and times are not stored: accepted (cp -p, touch) and changing nothing.
int op_chmod(const char*, mode_t, fuse_file_info*) { return fs().options().is_read_only ? -EROFS : 0; }
int op_chown(const char*, uid_t, gid_t, fuse_file_info*) { return fs().options().is_read_only ? -EROFS : 0; }
int op_utimens(const char*, const timespec*, fuse_file_info*) { return fs().options().is_read_only ? -EROFS : 0; }

int op_statfs(const char*, struct statvfs* st) {
  std::memset(st, 0, sizeof *st);
  st->f_bsize = 4096;
  st->f_frsize = 4096;
  st->f_blocks = st->f_bfree = st->f_bavail = uint64_t{1} << 30;  // the store reports no size here
  st->f_files = st->f_ffree = uint64_t{1} << 30;
  st->f_namemax = fusefs::kMaxNameBytes;
  return 0;
}

struct Ttls {
  uint64_t attr_ms = 0;
};
Ttls g_ttls;

void* op_init(fuse_conn_info*, fuse_config* cfg) {
  // The kernel's own caches follow the attribute TTL (0: ask every time).
  cfg->attr_timeout = static_cast<double>(g_ttls.attr_ms) / 1000.0;
  cfg->entry_timeout = cfg->attr_timeout;
  cfg->negative_timeout = 0;
  cfg->use_ino = 0;
  return fuse_get_context()->private_data;
}

std::string read_ticket_file(const std::string& path) {
  std::ifstream in(path);
  std::string t;
  in >> t;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "aspen-fuse: mount an Aspen cluster's key-value store as a filesystem. The key app/config/db is\n"
      "the file MOUNTPOINT/app/config/db. Unmount with 'fusermount3 -u MOUNTPOINT' (or Ctrl+C with\n"
      "--foreground). docs/fuse.md describes what maps to what."};
  std::string mountpoint;
  std::string ticket;
  std::string ticket_file;
  std::string identity_path;
  std::string token_path;
  fusefs::FsOptions options;
  bool is_foreground = false;
  std::string log_level = "warn";
  app.add_option("mountpoint", mountpoint, "An existing empty directory")->required();
  app.add_option("--ticket", ticket, "Cluster ticket (else --ticket-file, else $ASPEN_TICKET)");
  app.add_option("--ticket-file", ticket_file, "Read the cluster ticket from this file");
  app.add_option("--identity", identity_path, "This client's key file (else $ASPEN_IDENTITY)");
  app.add_option("--token-file", token_path, "Capability token (else $ASPEN_TOKEN_FILE)");
  app.add_option("--prefix", options.prefix, "Show only the keys under this prefix ('app' shows app/...)");
  app.add_flag("--read-only", options.is_read_only, "Mount read-only: every change fails with EROFS");
  app.add_flag("-f,--foreground", is_foreground, "Stay in the foreground (Ctrl+C unmounts)");
  app.add_option("--data-ttl-ms", options.data_ttl_ms, "Keep values read this long (0: off)")->capture_default_str();
  app.add_option("--attr-ttl-ms", options.attr_ttl_ms, "Keep sizes and types this long (0: off)")->capture_default_str();
  app.add_option("--dir-ttl-ms", options.dir_ttl_ms, "Keep directory listings this long (0: off)")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  log::set_level(log_level);

  struct stat mst;
  if (::stat(mountpoint.c_str(), &mst) != 0 || !S_ISDIR(mst.st_mode)) {
    std::cerr << "aspen-fuse: the mount point " << mountpoint << " is not an existing directory\n";
    return 2;
  }
  // FUSE itself: a clear message instead of libfuse's when the device is missing.
  if (const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC); fd < 0) {
    std::cerr << "aspen-fuse: FUSE is not available: cannot open /dev/fuse: " << std::strerror(errno)
              << ".\nInstall it (apt-get install fuse3) and load the module (modprobe fuse); in a container, run it\n"
                 "with --device /dev/fuse --cap-add SYS_ADMIN.\n";
    return 1;
  } else {
    ::close(fd);
  }

  if (!identity_path.empty()) ::setenv("ASPEN_IDENTITY", identity_path.c_str(), 1);
  if (!token_path.empty()) ::setenv("ASPEN_TOKEN_FILE", token_path.c_str(), 1);
  if (ticket.empty() && !ticket_file.empty()) ticket = read_ticket_file(ticket_file);
  if (ticket.empty()) {
    if (const char* t = std::getenv("ASPEN_TICKET"); t != nullptr) ticket = t;
  }
  if (ticket.empty()) {
    std::cerr << "aspen-fuse: no cluster ticket: pass --ticket, --ticket-file or set ASPEN_TICKET\n";
    return 2;
  }
  client::ClientOptions copts;
  if (auto s = client::apply_credentials_from_env(copts); !s) {
    std::cerr << "aspen-fuse: " << s.error().message() << "\n";
    return 2;
  }
  // One read before mounting, so a wrong ticket or token is reported here, not as EIO later.
  // The client is made again after daemonizing (its threads would not survive the fork).
  {
    auto probe = client::Client::connect(ticket, copts);
    if (!probe) {
      std::cerr << "aspen-fuse: " << probe.error().message() << "\n";
      return 2;
    }
    auto r = kv::scan_prefix(**probe, fusefs::normalize_prefix(options.prefix), 1);
    if (!r) {
      std::cerr << "aspen-fuse: cannot read the store: " << r.error().to_string() << "\n";
      return r.error().code() == ErrorCode::kUnauthorized ? 5 : 3;
    }
  }

  static const fuse_operations ops = [] {
    fuse_operations o{};
    o.getattr = op_getattr;
    o.readdir = op_readdir;
    o.open = op_open;
    o.create = op_create;
    o.read = op_read;
    o.write = op_write;
    o.truncate = op_truncate;
    o.flush = op_flush;
    o.fsync = op_fsync;
    o.release = op_release;
    o.unlink = op_unlink;
    o.mkdir = op_mkdir;
    o.rmdir = op_rmdir;
    o.rename = op_rename;
    o.chmod = op_chmod;
    o.chown = op_chown;
    o.utimens = op_utimens;
    o.statfs = op_statfs;
    o.init = op_init;
    return o;
  }();
  g_ttls.attr_ms = options.attr_ttl_ms;
  std::string fuse_opts = "fsname=aspen,subtype=aspen,default_permissions";
  if (options.is_read_only) fuse_opts += ",ro";
  std::vector<std::string> fargv_text{argv[0], "-o", fuse_opts};
  std::vector<char*> fargv;
  for (auto& s : fargv_text) fargv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fargv.size()), fargv.data());

  // KvFs needs the client, which must be made after daemonizing: a holder filled in then.
  std::unique_ptr<client::Client> store;
  Holder holder;
  struct fuse* f = fuse_new(&args, &ops, sizeof ops, &holder);
  fuse_opt_free_args(&args);
  if (f == nullptr) {
    std::cerr << "aspen-fuse: cannot set up FUSE\n";
    return 1;
  }
  if (fuse_mount(f, mountpoint.c_str()) != 0) {
    std::cerr << "aspen-fuse: cannot mount on " << mountpoint
              << " (is FUSE usable here? mounting needs root, or fusermount3 for other users)\n";
    fuse_destroy(f);
    return 1;
  }
  if (fuse_daemonize(is_foreground ? 1 : 0) != 0) {
    fuse_unmount(f);
    fuse_destroy(f);
    return 1;
  }
  auto c = client::Client::connect(ticket, copts);
  if (!c) {
    ASPEN_LOG_ERROR("aspen-fuse: {}", c.error().to_string());
    fuse_unmount(f);
    fuse_destroy(f);
    return 2;
  }
  store = std::move(*c);
  holder.fs = std::make_unique<fusefs::KvFs>(*store, options, wall_ms);
  if (is_foreground) std::cout << "ASPEN_FUSE_READY mountpoint=" << mountpoint << std::endl;
  fuse_session* se = fuse_get_session(f);
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_unmount(f);
    fuse_destroy(f);
    return 1;
  }
  fuse_loop_config loop{};
  loop.clone_fd = 0;
  loop.max_idle_threads = 16;
  const int rc = fuse_loop_mt(f, &loop);
  fuse_remove_signal_handlers(se);
  fuse_unmount(f);
  fuse_destroy(f);
  return rc == 0 ? 0 : 1;
}
