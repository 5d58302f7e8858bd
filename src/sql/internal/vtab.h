// The virtual table modules behind sql::Database (internal).
#pragma once

#include <sqlite3.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "kv/key_value_store.h"
#include "layer/directory.h"
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

  // --- user tables (table_vtab.cc) ---
  std::unique_ptr<layer::DirectoryLayer> dirs;
  // The open write transaction over every user table: what it read (key -> mod revision,
  // 0 = absent) and what it will write (key -> value; nullopt = delete). Committed as one
  // KV transaction at the first xSync, whose compares pin every written key's revision.
  bool is_in_txn = false;
  bool is_committed = false;
  std::map<std::string, uint64_t> read_mods;
  std::map<std::string, std::optional<std::string>> writes;
  // Set when a commit failed its compares: execute() runs an autocommit statement again.
  bool is_conflict = false;
};

// Registers the module `aspen` for user tables (CREATE VIRTUAL TABLE t USING aspen(...)).
int register_table_module(sqlite3* db, ModuleContext* context);
// Declares in `db` every user table the store holds (directory ["sql"]).
Status attach_user_tables(sqlite3* db, ModuleContext* context);

// Registers the eponymous read-only table `kv`.
int register_kv_module(sqlite3* db, ModuleContext* context);

bool is_valid_utf8(std::string_view bytes);

}  // namespace aspen::sql::internal
