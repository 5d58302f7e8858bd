// aspen-cli queue push|pop|ack|nack|len: work queues with at-least-once delivery.
#include <fmt/format.h>

#include <iostream>

#include "cmd_coord.h"
#include "coord/queue.h"
#include "payload.h"

namespace aspen::cli {

namespace {

struct QueueArgs {
  std::string name;
  PayloadSource payload;
  std::string dedup_id;
  std::string receipt;
  uint32_t max_items = 1;
  uint64_t delay_ms = 0;
  uint64_t wait_ms = 0;
  coord::QueueConfig cfg;
};

nlohmann::json message_json(const coord::QueueMessage& m) {
  nlohmann::json j = {{"seq", m.seq},
                      {"receipt", m.receipt.to_string()},
                      {"delivery_attempt", m.delivery_attempt},
                      {"enqueued_at_ms", m.enqueued_at_ms},
                      {"dedup_id", m.dedup_id}};
  set_bytes(j, "payload", m.payload);
  return j;
}

int run_push(const Context& ctx, const QueueArgs& a) {
  auto payload = read_payload(a.payload, kQueuePayloadLimit, "queue payload");
  if (!payload) return payload_error(ctx, payload.error());
  return with_client(ctx, [&](client::Client& c) {
    coord::QueueManager q(c, a.name, a.cfg);
    auto r = q.enqueue(*payload, a.dedup_id, wall_now_ms());
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"queue", a.name}, {"seq", r->seq}, {"is_duplicate", r->is_duplicate}});
    } else if (r->is_duplicate) {
      std::cout << "duplicate of message " << r->seq << " (dedup id " << a.dedup_id << "); nothing added\n";
    } else {
      std::cout << "pushed message " << r->seq << "\n";
    }
    return kExitOk;
  });
}

int run_pop(const Context& ctx, const QueueArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    coord::QueueManager q(c, a.name, a.cfg);
    Result<std::vector<coord::QueueMessage>> r;
    if (a.wait_ms == 0) {
      r = q.dequeue(a.max_items, wall_now_ms());
    } else {
      // Message visibility is in wall-clock time, so the wait is too.
      coord::Waiter waiter = real_waiter();
      waiter.now_ms = wall_now_ms;
      r = q.dequeue_until(a.max_items, wall_now_ms() + a.wait_ms, waiter);
      if (!r && r.error().code() == ErrorCode::kTimeout) r = std::vector<coord::QueueMessage>{};
    }
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& m : *r) list.push_back(message_json(m));
      print_json_ok({{"queue", a.name}, {"messages", std::move(list)}});
    } else if (r->empty()) {
      std::cerr << "no visible message\n";
    } else {
      for (const auto& m : *r) {
        std::cout << fmt::format("receipt {}\tattempt {}\t{}\n", m.receipt.to_string(), m.delivery_attempt,
                                 display_bytes(m.payload));
      }
    }
    return r->empty() ? kExitFailed : kExitOk;
  });
}

int run_settle(const Context& ctx, const QueueArgs& a, bool is_ack) {
  auto receipt = coord::Receipt::parse(a.receipt);
  if (!receipt) return usage_error(ctx, "bad receipt '" + a.receipt + "': " + receipt.error().message());
  return with_client(ctx, [&](client::Client& c) {
    coord::QueueManager q(c, a.name, a.cfg);
    auto s = is_ack ? q.ack(*receipt) : q.nack(*receipt, wall_now_ms(), a.delay_ms);
    if (!s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"queue", a.name}, {is_ack ? "acked" : "nacked", receipt->to_string()}});
    } else if (is_ack) {
      std::cout << "acked message " << receipt->seq << "; it is deleted\n";
    } else {
      std::cout << "nacked message " << receipt->seq << "; visible again in " << a.delay_ms << " ms\n";
    }
    return kExitOk;
  });
}

int run_ack(const Context& ctx, const QueueArgs& a) { return run_settle(ctx, a, true); }
int run_nack(const Context& ctx, const QueueArgs& a) { return run_settle(ctx, a, false); }

int run_len(const Context& ctx, const QueueArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = coord::QueueManager(c, a.name, a.cfg).length();
    if (!r) return fail(ctx, r.error());
    if (ctx.is_json) {
      print_json_ok({{"queue", a.name}, {"length", *r}});
    } else {
      std::cout << *r << "\n";
    }
    return kExitOk;
  });
}

}  // namespace

void add_queue_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* queue = app.add_subcommand("queue", "FIFO work queues: pop claims a message, ack deletes it");
  queue->require_subcommand(1);
  queue->footer(
      "A popped message is invisible to other consumers for --visibility-ms; ack it with its\n"
      "receipt before then, or it is delivered again. After --max-attempts deliveries it moves\n"
      "to the dead-letter queue '<name>.dlq'. Visibility uses the wall clock of each consumer's\n"
      "host, so hosts must keep their clocks in sync.");

  auto push = std::make_shared<QueueArgs>();
  auto* push_cmd = queue->add_subcommand("push", "Append a message");
  push_cmd->add_option("name", push->name, "Queue name")->required();
  add_payload_options(push_cmd, push->payload, "payload", "--payload-file", "message body", kQueuePayloadLimit);
  push_cmd->add_option("--dedup-id", push->dedup_id,
                       "While a message with this id is unacked, pushing it again adds nothing");
  push_cmd->footer(
      "A body over the limit is refused (exit 4) before anything is sent. 'pop --json' returns a\n"
      "body that is not UTF-8 in base64 (payload_encoding: base64).\n"
      "Examples:\n  aspen-cli queue push emails '{\"to\":\"a@example.com\"}' --dedup-id order-17\n"
      "  aspen-cli queue push thumbnails --payload-file job.pb");
  set_action(push_cmd, ctx, action, push, &run_push);

  auto pop = std::make_shared<QueueArgs>();
  auto* pop_cmd = queue->add_subcommand("pop", "Claim the oldest visible message(s) and print their receipts");
  pop_cmd->add_option("name", pop->name, "Queue name")->required();
  pop_cmd->add_option("--max", pop->max_items, "Claim up to this many messages (1..100)")->capture_default_str();
  pop_cmd->add_option("--visibility-ms", pop->cfg.visibility_timeout_ms,
                      "How long the claim hides the message from other consumers")
      ->capture_default_str();
  pop_cmd->add_option("--max-attempts", pop->cfg.max_delivery_attempts,
                      "Deliveries before a message is dead-lettered")
      ->capture_default_str();
  add_wait_option(pop_cmd, pop->wait_ms, "until a message is visible (woken by a push, not by polling)");
  pop_cmd->footer("Exit 1 when no message is visible (after --wait-ms).\n"
                  "Example:\n  aspen-cli queue pop emails --visibility-ms 60000   # then: queue ack emails RECEIPT");
  set_action(pop_cmd, ctx, action, pop, &run_pop);

  auto ack = std::make_shared<QueueArgs>();
  auto* ack_cmd = queue->add_subcommand("ack", "Delete a message you popped (done with it)");
  ack_cmd->add_option("name", ack->name, "Queue name")->required();
  ack_cmd->add_option("receipt", ack->receipt, "The receipt 'pop' printed (SEQ.REVISION)")->required();
  ack_cmd->footer("Exit 1 if the receipt is stale: the visibility timeout passed and the message may\n"
                  "have been delivered again, or it was already acked.\n"
                  "Example:\n  aspen-cli queue ack emails 17.5120");
  set_action(ack_cmd, ctx, action, ack, &run_ack);

  auto nack = std::make_shared<QueueArgs>();
  auto* nack_cmd = queue->add_subcommand("nack", "Give a popped message back (visible again after --delay-ms)");
  nack_cmd->add_option("name", nack->name, "Queue name")->required();
  nack_cmd->add_option("receipt", nack->receipt, "The receipt 'pop' printed")->required();
  nack_cmd->add_option("--delay-ms", nack->delay_ms, "Keep it hidden this much longer")->capture_default_str();
  nack_cmd->footer("Exit 1 if the receipt is stale.\nExample:\n  aspen-cli queue nack emails 17.5120 --delay-ms 5000");
  set_action(nack_cmd, ctx, action, nack, &run_nack);

  auto len = std::make_shared<QueueArgs>();
  auto* len_cmd = queue->add_subcommand("len", "Count messages: waiting and in flight (popped, not yet acked)");
  len_cmd->add_option("name", len->name, "Queue name")->required();
  len_cmd->footer("Example:\n  aspen-cli queue len emails.dlq");
  set_action(len_cmd, ctx, action, len, &run_len);
}

}  // namespace aspen::cli
