// aspen-cli kv ...: the key-value commands, split over cmd_kv.cc (get, set, delete, cas) and
// cmd_kv_scan_txn.cc (scan, txn) and cmd_kv_watch.cc (watch).
#pragma once

#include "cli.h"

namespace aspen::cli {

// The --key-hex flag every command that names a key takes: for keys that are not text.
void add_key_hex_flag(CLI::App* cmd, bool& is_key_hex);

void add_kv_scan_command(CLI::App* kv, Context& ctx, Action& action);
void add_kv_txn_command(CLI::App* kv, Context& ctx, Action& action);
void add_kv_watch_command(CLI::App* kv, Context& ctx, Action& action);
void add_kv_log_command(CLI::App* kv, Context& ctx, Action& action);

}  // namespace aspen::cli
