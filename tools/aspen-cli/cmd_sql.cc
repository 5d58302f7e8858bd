// aspen-cli sql query|shell: SQL over the store (src/sql/sql.h, docs/sql.md).
//
//   aspen-cli sql query "SELECT key, value FROM kv WHERE key >= 'a' LIMIT 10"
//   aspen-cli sql query --csv "SELECT count(*) FROM kv"
//   aspen-cli sql shell
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>

#include "cli.h"
#include "core/encoding.h"
#include "sql/sql.h"

namespace aspen::cli {

namespace {

enum class Format { kTable, kCsv, kJson };

struct SqlArgs {
  std::string sql;
  bool is_csv = false;
  std::string history_path;
};

nlohmann::json json_value(const sql::Value& v) {
  switch (v.type) {
    case sql::Value::Type::kNull: return nullptr;
    case sql::Value::Type::kInteger: return v.integer;
    case sql::Value::Type::kReal: return v.real;
    case sql::Value::Type::kText:
      if (is_valid_utf8(v.bytes)) return v.bytes;
      return nlohmann::json{{"hex", to_hex(v.bytes)}};
    case sql::Value::Type::kBlob: return nlohmann::json{{"hex", to_hex(v.bytes)}};
  }
  return nullptr;
}

std::string text_value(const sql::Value& v) {
  switch (v.type) {
    case sql::Value::Type::kNull: return "NULL";
    case sql::Value::Type::kInteger: return std::to_string(v.integer);
    case sql::Value::Type::kReal: return fmt::format("{}", v.real);
    case sql::Value::Type::kText: return display_bytes(v.bytes);
    case sql::Value::Type::kBlob: return "0x" + to_hex(v.bytes);
  }
  return "";
}

std::string csv_field(const sql::Value& v) {
  if (v.type == sql::Value::Type::kNull) return "";
  std::string s = text_value(v);
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Streams the rows of every statement in the chosen format. JSON collects (one object).
Status run_statements(sql::Database& db, const std::string& text, Format format) {
  nlohmann::json statements = nlohmann::json::array();
  size_t rows = 0;
  auto s = db.execute(
      text,
      [&](const std::vector<std::string>& columns) {
        rows = 0;
        if (format == Format::kJson) {
          statements.push_back({{"columns", columns}, {"rows", nlohmann::json::array()}});
          return;
        }
        std::string line;
        for (size_t i = 0; i < columns.size(); ++i) line += (i ? (format == Format::kCsv ? "," : " | ") : "") + columns[i];
        std::cout << line << "\n";
      },
      [&](const sql::Row& row) {
        ++rows;
        if (format == Format::kJson) {
          nlohmann::json r = nlohmann::json::array();
          for (const auto& v : row) r.push_back(json_value(v));
          statements.back()["rows"].push_back(std::move(r));
          return true;
        }
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
          if (i) line += format == Format::kCsv ? "," : " | ";
          line += format == Format::kCsv ? csv_field(row[i]) : text_value(row[i]);
        }
        std::cout << line << "\n";
        return true;
      });
  if (!s) return s;
  if (format == Format::kJson) {
    nlohmann::json out = statements.empty() ? nlohmann::json{{"columns", nlohmann::json::array()}, {"rows", nlohmann::json::array()}}
                                            : statements.back();
    print_json_ok(std::move(out));
  } else if (format == Format::kTable) {
    std::cerr << "(" << rows << (rows == 1 ? " row)" : " rows)") << "\n";
  }
  return {};
}

uint64_t random_seed();

int run_query(const Context& ctx, const SqlArgs& a) {
  if (ctx.is_json && a.is_csv) return usage_error(ctx, "--json and --csv exclude each other");
  return with_client(ctx, [&](client::Client& c) {
    auto db = sql::Database::open(c, random_seed());
    if (!db) return fail(ctx, db.error());
    Format f = ctx.is_json ? Format::kJson : (a.is_csv ? Format::kCsv : Format::kTable);
    auto s = run_statements(**db, a.sql, f);
    if (!s) return fail(ctx, s.error());
    return kExitOk;
  });
}

// CREATE VIRTUAL TABLE allocates a directory prefix; the allocator's candidates are random.
uint64_t random_seed() { return std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32); }

std::string default_history_path() {
  const char* home = std::getenv("HOME");
  return home ? std::string(home) + "/.aspen_sql_history" : std::string();
}

const char* kShellHelp =
    "Statements end with ';' and may span lines. Commands:\n"
    "  .help            this text\n"
    "  .mode table|csv|json   how rows print\n"
    "  .history         statements run so far (kept in the history file)\n"
    "  .quit            leave (as does end of input)\n";

int run_shell(const Context& ctx, const SqlArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto db = sql::Database::open(c, random_seed());
    if (!db) return fail(ctx, db.error());
    Format format = ctx.is_json ? Format::kJson : (a.is_csv ? Format::kCsv : Format::kTable);
    std::string history_path = a.history_path.empty() ? default_history_path() : a.history_path;
    std::vector<std::string> history;
    if (!history_path.empty()) {
      std::ifstream in(history_path);
      for (std::string line; std::getline(in, line);) history.push_back(line);
    }
    std::cerr << "aspen sql shell: tables kv (and user tables). .help for commands.\n";
    std::string pending;
    int failures = 0;
    for (;;) {
      std::cerr << (pending.empty() ? "aspen> " : "  ...> ") << std::flush;
      std::string line;
      if (!std::getline(std::cin, line)) break;
      if (pending.empty() && line.starts_with(".")) {
        if (line == ".quit" || line == ".exit") break;
        if (line == ".help") {
          std::cerr << kShellHelp;
        } else if (line == ".history") {
          for (size_t i = 0; i < history.size(); ++i) std::cout << i + 1 << "  " << history[i] << "\n";
        } else if (line == ".mode table") {
          format = Format::kTable;
        } else if (line == ".mode csv") {
          format = Format::kCsv;
        } else if (line == ".mode json") {
          format = Format::kJson;
        } else {
          std::cerr << "unknown command " << line << " (.help lists them)\n";
        }
        continue;
      }
      pending += pending.empty() ? line : "\n" + line;
      if (!sql::is_complete_statement(pending)) continue;
      std::string statement = std::move(pending);
      pending.clear();
      std::string one_line = statement;
      for (char& ch : one_line) ch = ch == '\n' ? ' ' : ch;
      history.push_back(one_line);
      if (!history_path.empty()) std::ofstream(history_path, std::ios::app) << one_line << "\n";
      if (auto s = run_statements(**db, statement, format); !s) {
        ++failures;
        std::cerr << "error: " << s.error().to_string() << "\n";
      }
    }
    return failures == 0 ? kExitOk : kExitFailed;
  });
}

}  // namespace

void add_sql_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* sql_cmd = app.add_subcommand("sql", "SQL over the store: the kv table and user tables (docs/sql.md)");
  sql_cmd->require_subcommand(1);

  auto q = std::make_shared<SqlArgs>();
  auto* q_cmd = sql_cmd->add_subcommand("query", "Run SQL statements and print the last one's rows");
  q_cmd->add_option("sql", q->sql, "The SQL text")->required();
  q_cmd->add_flag("--csv", q->is_csv, "Print CSV (a header line, then rows; RFC 4180 quoting)");
  q_cmd->footer("Examples:\n"
                "  aspen-cli sql query \"SELECT key, value FROM kv WHERE key >= 'a' LIMIT 10\"\n"
                "  aspen-cli sql query --json \"SELECT count(*) FROM kv WHERE key LIKE 'jobs/%'\"");
  q_cmd->callback([&ctx, &action, q] { action = [&ctx, q] { return run_query(ctx, *q); }; });

  auto sh = std::make_shared<SqlArgs>();
  auto* sh_cmd = sql_cmd->add_subcommand("shell", "An interactive SQL prompt (statements end with ';')");
  sh_cmd->add_flag("--csv", sh->is_csv, "Print CSV");
  sh_cmd->add_option("--history-file", sh->history_path, "Where statements are kept (default ~/.aspen_sql_history)");
  sh_cmd->callback([&ctx, &action, sh] { action = [&ctx, sh] { return run_shell(ctx, *sh); }; });
}

}  // namespace aspen::cli
