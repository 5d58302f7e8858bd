// aspen-blake3-bench: BLAKE3 throughput of aspen_crypto next to b3sum, same file, same run.
//
//   build/aspen-blake3-bench [--file PATH | --size-mib N] [--runs R] [--threads T]
//
// Without --file, writes N MiB (default 1024) of random bytes to a temporary file and removes
// it afterwards. Each run hashes the file four ways, interleaved so that both programs see
// the same machine state: ours with 1 thread, `b3sum --num-threads 1`, ours with T threads
// (default: all cores) and `b3sum` with its default threads. Like b3sum, ours maps the file
// and hashes the mapping, and the timing includes open + mmap + hash + munmap; b3sum's
// includes its process start (about a millisecond, small next to a 1 GiB file). The file is
// in the page cache for every run after the first (a warm-up run is not counted). Also
// prints single-threaded MB/s of each kernel this CPU supports.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crypto/blake3.h"

namespace {

using Clock = std::chrono::steady_clock;
using aspen::crypto::Blake3Backend;
using aspen::crypto::Blake3Hash;

// A read-only mapping of a whole file, unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) fail("open " + path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail("fstat " + path);
    size_bytes_ = static_cast<size_t>(st.st_size);
    if (size_bytes_ > 0) {
      void* p = ::mmap(nullptr, size_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) fail("mmap " + path);
      data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_bytes_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_bytes_}; }

 private:
  [[noreturn]] static void fail(const std::string& what) {
    std::perror(what.c_str());
    std::exit(1);
  }
  const uint8_t* data_ = nullptr;
  size_t size_bytes_ = 0;
};

struct Timed {
  double seconds = 0;
  std::string hex;
};

Timed time_ours(const std::string& path, size_t threads) {
  const auto start = Clock::now();
  Blake3Hash hash;
  {
    const MappedFile file(path);
    hash = threads == 1 ? aspen::crypto::blake3_hash(file.bytes())
                        : aspen::crypto::blake3_hash_parallel(file.bytes(), threads);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {seconds, aspen::crypto::blake3_to_hex(hash)};
}

Timed time_backend(const std::string& path, Blake3Backend backend) {
  const auto start = Clock::now();
  Blake3Hash hash;
  {
    const MappedFile file(path);
    aspen::crypto::Blake3Hasher hasher;
    hasher.set_backend(backend);
    hasher.update(file.bytes());
    hash = hasher.finalize();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {seconds, aspen::crypto::blake3_to_hex(hash)};
}

Timed time_b3sum(const std::string& path, const std::string& thread_args) {
  const std::string command = "b3sum --no-names " + thread_args + " '" + path + "'";
  const auto start = Clock::now();
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    std::perror("popen b3sum");
    std::exit(1);
  }
  char buf[128] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, pipe);
  const int status = ::pclose(pipe);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (status != 0) {
    std::fprintf(stderr, "b3sum failed (is it installed? scripts/setup.sh)\n");
    std::exit(1);
  }
  std::string hex(buf, n);
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == ' ')) hex.pop_back();
  return {seconds, hex};
}

struct Series {
  std::string name;
  std::vector<double> seconds;
  double best() const { return *std::min_element(seconds.begin(), seconds.end()); }
  double median() const {
    std::vector<double> s = seconds;
    std::sort(s.begin(), s.end());
    return s[s.size() / 2];
  }
};

void write_random_file(const std::string& path, size_t size_bytes) {
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> buf(1 << 17);  // 1 MiB
  for (size_t written = 0; written < size_bytes;) {
    for (uint64_t& w : buf) w = rng();
    const size_t take = std::min(size_bytes - written, buf.size() * sizeof(uint64_t));
    out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(take));
    written += take;
  }
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  size_t size_mib = 1024;
  size_t runs = 5;
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--file" && has_value) {
      path = argv[++i];
    } else if (arg == "--size-mib" && has_value) {
      size_mib = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--runs" && has_value) {
      runs = std::max<size_t>(1, std::strtoull(argv[++i], nullptr, 10));
    } else if (arg == "--threads" && has_value) {
      threads = std::max<size_t>(1, std::strtoull(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--file PATH | --size-mib N] [--runs R] [--threads T]\n", argv[0]);
      return 64;
    }
  }
  const bool owns_file = path.empty();
  if (owns_file) {
    path = (std::filesystem::temp_directory_path() /
            ("aspen-blake3-bench-" + std::to_string(::getpid())))
               .string();
    write_random_file(path, size_mib * 1024 * 1024);
  }
  const double mb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;

  Series ours1{"aspen 1 thread", {}};
  Series b3sum1{"b3sum --num-threads 1", {}};
  Series ours_n{"aspen " + std::to_string(threads) + " threads", {}};
  Series b3sum_n{"b3sum (default threads)", {}};
  bool hashes_agree = true;
  for (size_t run = 0; run <= runs; ++run) {
    const Timed a = time_ours(path, 1);
    const Timed b = time_b3sum(path, "--num-threads 1");
    const Timed c = time_ours(path, threads);
    const Timed d = time_b3sum(path, "");
    hashes_agree = hashes_agree && a.hex == b.hex && c.hex == b.hex && d.hex == b.hex;
    if (run == 0) continue;  // warm-up: brings the file into the page cache
    ours1.seconds.push_back(a.seconds);
    b3sum1.seconds.push_back(b.seconds);
    ours_n.seconds.push_back(c.seconds);
    b3sum_n.seconds.push_back(d.seconds);
  }

  std::printf("file %s, %.0f MB, %zu runs (+1 warm-up), best / median MB/s\n", path.c_str(), mb,
              runs);
  for (const Series* s : {&ours1, &b3sum1, &ours_n, &b3sum_n}) {
    std::printf("  %-26s %8.0f / %8.0f\n", s->name.c_str(), mb / s->best(), mb / s->median());
  }
  std::printf("  single-threaded: aspen / b3sum = %.0f%% (best), %.0f%% (median)\n",
              100 * b3sum1.best() / ours1.best(), 100 * b3sum1.median() / ours1.median());
  std::printf("  multi-threaded:  aspen / b3sum = %.0f%% (best), %.0f%% (median)\n",
              100 * b3sum_n.best() / ours_n.best(), 100 * b3sum_n.median() / ours_n.median());
  std::printf("  hashes agree with b3sum: %s\n", hashes_agree ? "yes" : "NO");

  std::printf("single-threaded by kernel (best of %zu):\n", runs);
  for (const Blake3Backend backend : {Blake3Backend::kPortable, Blake3Backend::kSse41,
                                      Blake3Backend::kAvx2, Blake3Backend::kAvx512}) {
    if (!aspen::crypto::blake3_backend_is_supported(backend)) continue;
    double best = 1e9;
    for (size_t run = 0; run < runs; ++run) best = std::min(best, time_backend(path, backend).seconds);
    std::printf("  %-10s %8.0f MB/s%s\n", std::string(aspen::crypto::blake3_backend_name(backend)).c_str(),
                mb / best, backend == aspen::crypto::blake3_best_backend() ? "  (default)" : "");
  }

  if (owns_file) std::filesystem::remove(path);
  return hashes_agree ? 0 : 1;
}
