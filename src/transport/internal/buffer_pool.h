// Recycled large send buffers (internal).
//
// A framed message of a megabyte is copied into a buffer of its own, which lives until the
// peer acknowledges it. Allocating and freeing such buffers per message makes glibc map and
// unmap memory each time (above its mmap threshold), and every page of the new mapping then
// faults on first touch: about a tenth of the CPU of a bulk transfer. Acknowledged buffers
// are kept here instead and reused by the next large send. Thread-safe: buffers are filled
// on the sender's thread and released on the loop thread.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace aspen::transport::internal {

class BufferPool {
 public:
  // Smaller buffers come from malloc's own free lists cheaply; only large ones are kept.
  static constexpr size_t kMinPooledBytes = size_t{256} << 10;
  static constexpr size_t kMaxPooledBuffers = 16;
  static constexpr size_t kMaxPooledTotalBytes = size_t{32} << 20;  // per endpoint

  // An empty string with capacity for at least `size_bytes`.
  std::string take(size_t size_bytes) {
    if (size_bytes >= kMinPooledBytes) {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < buffers_.size(); ++i) {
        if (buffers_[i].capacity() < size_bytes) continue;
        std::string out = std::move(buffers_[i]);
        pooled_bytes_ -= out.capacity();
        buffers_[i] = std::move(buffers_.back());
        buffers_.pop_back();
        out.clear();
        return out;
      }
    }
    std::string out;
    out.reserve(size_bytes);
    return out;
  }

  void put(std::string&& buffer) {
    if (buffer.capacity() < kMinPooledBytes) return;
    std::lock_guard lock(mu_);
    if (buffers_.size() >= kMaxPooledBuffers || pooled_bytes_ + buffer.capacity() > kMaxPooledTotalBytes) return;
    pooled_bytes_ += buffer.capacity();
    buffers_.push_back(std::move(buffer));
  }

 private:
  std::mutex mu_;
  std::vector<std::string> buffers_;
  size_t pooled_bytes_ = 0;
};

}  // namespace aspen::transport::internal
