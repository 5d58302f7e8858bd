// The virtual table modules behind sql::Database (internal).
#pragma once

#include <sqlite3.h>

#include <optional>

#include "kv/key_value_store.h"
#include "sql/sql.h"

namespace aspen::sql::internal {

// What every module instance reaches: the store and the database's counters.
struct ModuleContext {
  kv::KeyValueStore* store;
  ScanStats* stats;
  // The first store error of the running statement: execute() returns it (with its code)
  // instead of SQLite's text of it.
  std::optional<Error> store_error;
  // The store revision every read of the running statement is served at: 0 until its first
  // page answers, then that page's revision (MVCC reads), so a statement reads one snapshot.
  uint64_t read_revision = 0;
};

// Registers the eponymous read-only table `kv`.
int register_kv_module(sqlite3* db, ModuleContext* context);

bool is_valid_utf8(std::string_view bytes);

}  // namespace aspen::sql::internal
