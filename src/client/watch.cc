#include "client/watch.h"

#include <fmt/format.h>

#include <thread>

#include "rpc/error_info.h"

namespace aspen::client {

namespace {

using Clock = std::chrono::steady_clock;

uint32_t ms_left(Clock::time_point deadline) {
  const auto now = Clock::now();
  if (now >= deadline) return 1;
  return static_cast<uint32_t>(
      std::min<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1, UINT32_MAX));
}

bool is_final(ErrorCode code) {
  return code == ErrorCode::kUnauthorized || code == ErrorCode::kInvalidArgument || code == ErrorCode::kCompacted ||
         code == ErrorCode::kKeyTooLarge;
}

Error compacted_error(const cpb::WatchResponse& w) {
  return Error(ErrorCode::kCompacted, fmt::format("{} (compact revision {})", w.cancel_reason(), w.compact_revision()));
}

// Where the watch or subscription asks to start, and moving that start (to resume).
uint64_t start_of(const cpb::Request& req) {
  return req.has_log_subscribe() ? req.log_subscribe().from_index() : req.watch_create().start_revision();
}
void set_start(cpb::Request& req, uint64_t revision) {
  if (req.has_log_subscribe()) {
    req.mutable_log_subscribe()->set_from_index(revision);
  } else {
    req.mutable_watch_create()->set_start_revision(revision);
  }
}

}  // namespace

Watch::Watch(cpb::Request request, Opener opener, uint32_t backoff_ms)
    : request_(std::move(request)), opener_(std::move(opener)), backoff_ms_(backoff_ms) {}

Watch::~Watch() { drop_stream(); }

void Watch::drop_stream() {
  if (stream_) {
    stream_->reset();
    // A log subscription dials a connection of its own, which ends with its stream.
    if (request_.has_log_subscribe()) stream_->connection().close();
  }
  stream_.reset();
  partial_.reset();  // a revision half received is received again, whole
  held_.reset();
}

Status Watch::start(uint32_t timeout_ms) {
  if (is_started_) return {};
  return open(Clock::now() + std::chrono::milliseconds(timeout_ms));
}

Status Watch::open(Clock::time_point deadline) {
  cpb::Request req = request_;
  // Resuming: from the revision after the last one delivered, so nothing repeats or is lost.
  if (is_started_) set_start(req, last_revision_ + 1);
  std::optional<Error> last;
  while (Clock::now() < deadline) {
    auto stream = opener_(req, attempts_++, deadline);
    if (stream) {
      auto first = stream->recv(ms_left(deadline));
      cpb::Response resp;
      if (first && first->has_value() && resp.ParseFromString(**first)) {
        if (resp.has_error()) {
          Error e = rpc::from_error_info(resp.error());
          stream->reset();
          if (is_final(e.code())) return std::unexpected(e);
          last = e;
        } else if (resp.watch().is_canceled()) {
          stream->reset();
          if (resp.watch().compact_revision() != 0) return std::unexpected(compacted_error(resp.watch()));
          last = Error(ErrorCode::kUnavailable, resp.watch().cancel_reason());
        } else if (resp.watch().is_created()) {
          if (!is_started_) {
            if (start_of(request_) == 0) {
              last_revision_ = resp.watch().revision();
            } else {
              last_revision_ = start_of(request_) - 1;
            }
          }
          is_started_ = true;
          stream_ = std::move(*stream);
          return {};
        } else {
          stream->reset();
          last = Error(ErrorCode::kInternal, "the node's first watch answer was not a creation");
        }
      } else {
        stream->reset();
        last = first ? Error(ErrorCode::kUnavailable, "the node ended the watch stream") : first.error();
      }
    } else {
      last = stream.error();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(backoff_ms_, ms_left(deadline))));
  }
  return make_error(ErrorCode::kTimeout, fmt::format("could not open the watch on any member: {}",
                                                     last ? last->to_string() : "no attempt finished in time"));
}

Result<WatchBatch> Watch::next(uint32_t timeout_ms) {
  if (final_error_) return std::unexpected(*final_error_);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (!stream_) {
      if (auto s = open(deadline); !s) {
        if (s.error().code() == ErrorCode::kCompacted) final_error_ = s.error();
        return std::unexpected(s.error());
      }
      ++resumes_;
    }
    cpb::Response resp;
    if (held_) {
      resp = std::move(*held_);
      held_.reset();
    } else {
      auto msg = stream_->recv(ms_left(deadline));
      // A quiet watch and a dead connection both end a wait without a message; only the
      // first leaves the connection open.
      if (!msg && msg.error().code() == ErrorCode::kTimeout && stream_->connection().is_open()) {
        return make_error(ErrorCode::kTimeout, fmt::format("no change within {} ms", timeout_ms));
      }
      if (!msg || !msg->has_value() || !resp.ParseFromString(**msg) || resp.has_error()) {
        drop_stream();  // the member died, restarted or refused: resume elsewhere
        if (Clock::now() >= deadline) return make_error(ErrorCode::kTimeout, "the watch stream broke; resuming");
        continue;
      }
    }
    const cpb::WatchResponse& w = resp.watch();
    if (partial_ && !w.is_canceled() && (w.events_size() == 0 || w.revision() != partial_->revision)) {
      // The node moved past the fragmented revision (its remaining fragments held nothing
      // for this watch): that revision is complete.
      held_ = std::move(resp);
      WatchBatch out = std::move(*partial_);
      partial_.reset();
      last_revision_ = out.revision;
      return out;
    }
    if (w.is_canceled()) {
      drop_stream();
      if (w.compact_revision() != 0) {
        final_error_ = compacted_error(w);
        return std::unexpected(*final_error_);
      }
      continue;  // e.g. paused too long: open it again from the last revision
    }
    if (w.events_size() == 0) {
      // A progress notification: up to date through its revision (which may be the last one
      // delivered, when nothing else changed).
      if (w.is_created() || w.revision() < last_revision_) continue;
      last_revision_ = w.revision();
      return WatchBatch{w.revision(), 0, {}};
    }
    if (w.revision() <= last_revision_) continue;  // never deliver a revision twice
    if (!partial_) partial_ = WatchBatch{w.revision(), w.timestamp_ms(), {}};
    for (const auto& ev : w.events()) partial_->events.push_back(ev);
    if (w.is_fragment()) continue;
    WatchBatch out = std::move(*partial_);
    partial_.reset();
    last_revision_ = out.revision;
    return out;
  }
}

Status Watch::request_progress() {
  if (!stream_) return make_error(ErrorCode::kUnavailable, "the watch is not open");
  cpb::Request req;
  req.mutable_watch_progress();
  return stream_->send(req.SerializeAsString());
}

}  // namespace aspen::client
