// Loop-side state of one stream (internal): the frame decoder, withheld flow-control credit
// and the send buffer that ngtcp2 reads from until the peer acknowledges it.
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <deque>
#include <memory>
#include <string>

#include "core/assert.h"
#include "transport/frame.h"
#include "transport/internal/admission.h"
#include "transport/internal/quic_connection.h"
#include "transport/internal/buffer_pool.h"
#include "transport/internal/shared_state.h"

namespace aspen::transport::internal {

struct QuicConnection::StreamState {
  explicit StreamState(int64_t id) : shared(std::make_shared<StreamShared>(id)) {}
  int64_t id() const noexcept { return shared->id; }

  std::shared_ptr<StreamShared> shared;
  FrameDecoder decoder;
  size_t held_bytes = 0;  // decoder.held_bytes() as charged to the connection and the RecvBudget
  uint64_t withheld_credit_bytes = 0;
  // Set when the stream is used asynchronously: messages and the end of the stream go to
  // these callbacks (as loop events) instead of shared->unread.
  std::shared_ptr<StreamCallbacks> callbacks;
  bool is_close_reported = false;  // callbacks->on_closed has been queued

  // Send buffer. ngtcp2 keeps pointers into bytes it has been given until they are
  // acknowledged, so a chunk is never modified once any of it was handed over; chunks are
  // freed from the front as acknowledgements arrive.
  std::deque<std::string> chunks;
  uint64_t chunks_offset = 0;  // stream offset of chunks.front()[0]
  uint64_t queued_end = 0;     // stream offset after the last queued byte
  uint64_t sent = 0;           // bytes handed to ngtcp2
  uint64_t acked = 0;
  size_t cursor_chunk = 0;     // chunk holding stream offset `sent`
  size_t cursor_in_chunk = 0;
  bool is_fin_requested = false;
  bool is_fin_sent = false;
  bool is_write_blocked = false;  // flow control; cleared by extend_max_stream_data
  bool is_in_writable = false;

  bool has_pending() const noexcept { return sent < queued_end || (is_fin_requested && !is_fin_sent); }

  // Small messages are merged into the last chunk while none of it has been handed over,
  // so a burst of tiny frames does not become a long chunk list.
  static constexpr size_t kMergeLimitBytes = 64 * 1024;

  bool can_merge(size_t size_bytes) const noexcept {
    return !chunks.empty() && cursor_chunk == chunks.size() - 1 && cursor_in_chunk == 0 &&
           chunks.back().size() + size_bytes <= kMergeLimitBytes;
  }

  void enqueue(std::string bytes) {
    queued_end += bytes.size();
    if (can_merge(bytes.size())) {
      chunks.back().append(bytes);
      return;
    }
    chunks.push_back(std::move(bytes));
  }

  // Appends one framed message, writing header and payload straight into the send buffer
  // (no intermediate string).
  void enqueue_frame(std::string_view message) {
    const size_t size = kFrameHeaderSizeBytes + message.size();
    queued_end += size;
    if (!can_merge(size)) {
      chunks.emplace_back();
      chunks.back().reserve(std::max(size, size_t{4096}));
    }
    append_frame_header(chunks.back(), static_cast<uint32_t>(message.size()));
    chunks.back().append(message);
  }

  // Appends one framed message, keeping `message`'s buffer as a chunk of its own: only the
  // 4-byte header is written (merged into the previous chunk when it can be). Small
  // messages are merged like enqueue_frame, since a chunk per tiny message costs more.
  void enqueue_owned_frame(std::string message) {
    if (message.size() < kMergeLimitBytes) return enqueue_frame(message);
    std::string header;
    append_frame_header(header, static_cast<uint32_t>(message.size()));
    enqueue(std::move(header));
    enqueue(std::move(message));
  }

  // Points `vec` at unsent bytes; returns the number of entries used.
  size_t fill(ngtcp2_vec* vec, size_t max_vec, size_t* total_bytes) const {
    size_t n = 0;
    size_t total = 0;
    size_t offset = cursor_in_chunk;
    for (size_t i = cursor_chunk; i < chunks.size() && n < max_vec; ++i, offset = 0) {
      if (chunks[i].size() == offset) continue;
      vec[n].base = reinterpret_cast<uint8_t*>(const_cast<char*>(chunks[i].data())) + offset;
      vec[n].len = chunks[i].size() - offset;
      total += vec[n].len;
      ++n;
    }
    *total_bytes = total;
    return n;
  }

  void advance(size_t n) {
    sent += n;
    ASPEN_ASSERT(sent <= queued_end);
    while (n > 0) {
      ASPEN_ASSERT(cursor_chunk < chunks.size());
      const size_t take = std::min(n, chunks[cursor_chunk].size() - cursor_in_chunk);
      cursor_in_chunk += take;
      n -= take;
      if (cursor_in_chunk == chunks[cursor_chunk].size()) {
        ++cursor_chunk;
        cursor_in_chunk = 0;
      }
    }
  }

  // Frees chunks wholly below `end` (large ones go to `recycle`, if given); returns the
  // number of newly acknowledged bytes, and adds the bytes of the chunks it freed to
  // `freed_bytes` (if given): a chunk's memory goes only once all of it is acknowledged.
  uint64_t acknowledge(uint64_t end, BufferPool* recycle = nullptr, uint64_t* freed_bytes = nullptr) {
    if (end <= acked) return 0;
    ASPEN_ASSERT(end <= sent);
    const uint64_t newly = end - acked;
    acked = end;
    while (!chunks.empty() && chunks_offset + chunks.front().size() <= acked) {
      chunks_offset += chunks.front().size();
      if (freed_bytes != nullptr) *freed_bytes += chunks.front().size();
      if (recycle != nullptr) recycle->put(std::move(chunks.front()));
      chunks.pop_front();
      ASPEN_ASSERT(cursor_chunk > 0);  // a fully acknowledged chunk was fully sent
      --cursor_chunk;
    }
    return newly;
  }
};

}  // namespace aspen::transport::internal
