// State shared between the loop thread and user threads (internal).
//
// The loop thread owns all protocol state; user threads only touch these small structs,
// under their mutex: received frames waiting to be read, streams waiting to be accepted,
// send-buffer accounting for backpressure, and the error that ended a stream or connection.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace aspen::transport::internal {

// QUIC application error codes on the wire (RESET_STREAM, CONNECTION_CLOSE).
inline constexpr uint64_t kAppErrorNone = 0;
inline constexpr uint64_t kAppErrorFrameTooLarge = 1;
inline constexpr uint64_t kAppErrorStreamCancelled = 2;
inline constexpr uint64_t kAppErrorShutdown = 3;
inline constexpr uint64_t kAppErrorNoHandler = 4;
// The stream would have held more partial-frame bytes than the receiver's caps allow
// (limits::kMaxConnectionPartialFrameBytes, kMaxClientPartialFrameBytes).
inline constexpr uint64_t kAppErrorRecvBufferLimit = 5;
// A message on the stream would have crossed the sender's caps on unacknowledged send bytes
// (limits::kMaxConnectionUnackedSendBytes, kMaxClientUnackedSendBytes): it was not sent.
inline constexpr uint64_t kAppErrorSendBufferLimit = 6;

// Reason phrase of the CONNECTION_REFUSED (transport error 0x2) a server sends to a
// connection attempt over its connection limit; the dialer recognises it.
inline constexpr std::string_view kConnectionLimitReason = "connection limit reached";

struct StreamShared {
  explicit StreamShared(int64_t stream_id) : id(stream_id) {}

  const int64_t id;
  std::mutex mu;
  std::condition_variable cv;
  // Receive side.
  std::deque<std::string> unread;
  size_t unread_bytes = 0;
  bool is_fin_received = false;
  bool is_credit_withheld = false;  // the loop waits for the reader to drain `unread`
  std::optional<Error> recv_error;
  // Send side.
  size_t unacked_bytes = 0;
  // Of those, what is charged to the endpoint's SendBudget (client connections only). Unlike
  // unacked_bytes it stays until the bytes are acknowledged or the stream is gone, since
  // that is when their memory is freed.
  size_t send_charged_bytes = 0;
  bool is_finished_locally = false;
  std::optional<Error> send_error;
};

struct ConnShared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<StreamShared>> accept_queue;
  std::optional<Error> error;  // set once, when the connection ends
};

}  // namespace aspen::transport::internal
