// aspen-cli dir ls|mkdir|mv|rm: the directory layer (src/layer/directory.h) over the cluster.
// Paths are written "app/users" (a leading '/' is allowed; "/" or "" is the root).
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <random>

#include "cli.h"
#include "core/encoding.h"
#include "layer/directory.h"

namespace aspen::cli {

namespace {

struct DirArgs {
  std::string path;
  std::string to;
  std::string layer;
};

layer::Path parse_path(std::string_view text) {
  layer::Path path;
  size_t start = 0;
  while (start <= text.size()) {
    size_t slash = text.find('/', start);
    if (slash == std::string_view::npos) slash = text.size();
    if (slash > start) path.emplace_back(text.substr(start, slash - start));
    start = slash + 1;
  }
  return path;
}

std::string path_text(const layer::Path& path) { return "/" + fmt::format("{}", fmt::join(path, "/")); }

// The allocator's candidates are random; an operator's process draws its seed here.
uint64_t random_seed() { return std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32); }

int print_directory(const Context& ctx, const layer::Directory& d, std::string_view verb) {
  if (ctx.is_json) {
    print_json_ok({{"path", path_text(d.path)}, {"prefix_hex", to_hex(d.prefix())}, {"layer", d.layer}});
  } else {
    std::cout << verb << " " << path_text(d.path) << " (prefix 0x" << to_hex(d.prefix()) << ")\n";
  }
  return kExitOk;
}

int run_ls(const Context& ctx, const DirArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    layer::DirectoryLayer dirs(c, random_seed());
    auto names = dirs.list(parse_path(a.path));
    if (!names) return fail(ctx, names.error());
    if (ctx.is_json) {
      print_json_ok({{"path", path_text(parse_path(a.path))}, {"directories", *names}});
    } else {
      for (const auto& n : *names) std::cout << n << "\n";
    }
    return kExitOk;
  });
}

int run_mkdir(const Context& ctx, const DirArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    layer::DirectoryLayer dirs(c, random_seed());
    auto d = dirs.create(parse_path(a.path), a.layer);
    if (!d) return fail(ctx, d.error());
    return print_directory(ctx, *d, "created");
  });
}

int run_mv(const Context& ctx, const DirArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    layer::DirectoryLayer dirs(c, random_seed());
    auto d = dirs.move(parse_path(a.path), parse_path(a.to));
    if (!d) return fail(ctx, d.error());
    return print_directory(ctx, *d, "moved to");
  });
}

int run_rm(const Context& ctx, const DirArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    layer::DirectoryLayer dirs(c, random_seed());
    auto s = dirs.remove(parse_path(a.path));
    if (!s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"path", path_text(parse_path(a.path))}, {"removed", true}});
    } else {
      std::cout << "removed " << path_text(parse_path(a.path)) << "\n";
    }
    return kExitOk;
  });
}

void set_dir_action(CLI::App* cmd, Context& ctx, Action& action, std::shared_ptr<DirArgs> args,
                    int (*run)(const Context&, const DirArgs&)) {
  cmd->callback([&ctx, &action, args, run] { action = [&ctx, args, run] { return run(ctx, *args); }; });
}

}  // namespace

void add_dir_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* dir = app.add_subcommand("dir", "The directory layer: named paths mapped to short key prefixes");
  dir->require_subcommand(1);
  dir->footer("Paths are names separated by '/' (\"app/users\"). Directory metadata lives under the key\n"
              "prefix 0xfe (FoundationDB's layout); docs/layers.md explains it.");

  auto ls = std::make_shared<DirArgs>();
  auto* ls_cmd = dir->add_subcommand("ls", "List the subdirectories of a directory (default: the root)");
  ls_cmd->add_option("path", ls->path, "Directory path");
  set_dir_action(ls_cmd, ctx, action, ls, &run_ls);

  auto mk = std::make_shared<DirArgs>();
  auto* mk_cmd = dir->add_subcommand("mkdir", "Create a directory (and missing parents); print its prefix");
  mk_cmd->add_option("path", mk->path, "Directory path")->required();
  mk_cmd->add_option("--layer", mk->layer, "Layer tag stored with the directory (opening it checks the tag)");
  mk_cmd->footer("Example:\n  aspen-cli dir mkdir app/users --layer table");
  set_dir_action(mk_cmd, ctx, action, mk, &run_mkdir);

  auto mv = std::make_shared<DirArgs>();
  auto* mv_cmd = dir->add_subcommand("mv", "Move or rename a directory; its prefix and contents stay");
  mv_cmd->add_option("from", mv->path, "Existing directory")->required();
  mv_cmd->add_option("to", mv->to, "New path (its parent must exist)")->required();
  set_dir_action(mv_cmd, ctx, action, mv, &run_mv);

  auto rm = std::make_shared<DirArgs>();
  auto* rm_cmd = dir->add_subcommand("rm", "Remove a directory, its subdirectories and every key in them");
  rm_cmd->add_option("path", rm->path, "Directory path")->required();
  set_dir_action(rm_cmd, ctx, action, rm, &run_rm);
}

}  // namespace aspen::cli
