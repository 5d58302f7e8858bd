// aspen-cli settings: flags > environment > profile > defaults (see settings.h).
#include "settings.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/assert.h"

namespace aspen::cli {

namespace {

namespace fs = std::filesystem;

constexpr const char* kProfileKeys = "ticket, ticket_file, timeout_ms";
// Far above any real ticket (cluster::kMaxTicketSizeBytes is 4 KiB): a bound that stops a
// wrong path (a log, a disk image) from being read whole.
constexpr std::streamsize kMaxTicketFileBytes = 64 * 1024;

Error invalid(std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}

// What one layer (flags, environment or profile) says; nullopt where it says nothing.
struct Layer {
  SettingSource source = SettingSource::kNone;
  std::optional<std::string> ticket;
  std::string ticket_name;
  std::optional<std::string> ticket_file;
  std::string ticket_file_name;
  std::optional<uint32_t> timeout_ms;
  std::string timeout_name;
};

std::optional<std::string> env_value(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

Layer flag_layer(const GlobalFlags& flags) {
  return Layer{SettingSource::kFlag, flags.ticket,     "--ticket",    flags.ticket_file,
               "--ticket-file",      flags.timeout_ms, "--timeout-ms"};
}

Result<Layer> env_layer(const EnvLookup& env) {
  Layer layer{SettingSource::kEnvironment,
              env_value(env, "ASPEN_TICKET"),
              "ASPEN_TICKET",
              env_value(env, "ASPEN_CLI_TICKET_FILE"),
              "ASPEN_CLI_TICKET_FILE",
              std::nullopt,
              "ASPEN_CLI_TIMEOUT_MS"};
  if (auto text = env_value(env, "ASPEN_CLI_TIMEOUT_MS")) {
    uint32_t ms = 0;
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, ms);
    if (ec != std::errc() || ptr != end) {
      return std::unexpected(invalid(fmt::format(
          "ASPEN_CLI_TIMEOUT_MS must be a whole number of milliseconds (1 to {}), got '{}'", UINT32_MAX, *text)));
    }
    layer.timeout_ms = ms;
  }
  return layer;
}

std::string home_dir(const EnvLookup& env) {
  return env_value(env, "HOME").value_or("");
}

// "~/x" is the home directory's x; a relative path is relative to `base_dir`.
std::string profile_relative_path(const std::string& path, const std::string& base_dir, const EnvLookup& env) {
  if (path.starts_with("~/") && !home_dir(env).empty()) return home_dir(env) + path.substr(1);
  if (fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

// Where the profile is, and what named it.
void locate_profile(const GlobalFlags& flags, const EnvLookup& env, CliSettings& out) {
  if (flags.config_path) {
    out.profile_path = *flags.config_path;
    out.profile_origin = "--config";
  } else if (auto p = env_value(env, "ASPEN_CLI_CONFIG")) {
    out.profile_path = *p;
    out.profile_origin = "ASPEN_CLI_CONFIG";
  } else if (auto xdg = env_value(env, "XDG_CONFIG_HOME"); xdg && fs::path(*xdg).is_absolute()) {
    // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    out.profile_path = (fs::path(*xdg) / "aspen" / "cli.toml").string();
    out.profile_origin = "XDG_CONFIG_HOME";
  } else if (!home_dir(env).empty()) {
    out.profile_path = (fs::path(home_dir(env)) / ".config" / "aspen" / "cli.toml").string();
    out.profile_origin = "HOME";
  }
}

Result<std::string> profile_string(const std::string& path, const std::string& key, const toml::node& value) {
  if (const auto* s = value.as_string()) return s->get();
  return std::unexpected(invalid(fmt::format("profile '{}': '{}' must be a string", path, key)));
}

Result<uint32_t> profile_timeout(const std::string& path, const toml::node& value) {
  const auto* n = value.as_integer();
  if (n == nullptr || n->get() < 1 || n->get() > static_cast<int64_t>(UINT32_MAX)) {
    return std::unexpected(invalid(
        fmt::format("profile '{}': 'timeout_ms' must be a whole number of milliseconds (1 to {})", path, UINT32_MAX)));
  }
  return static_cast<uint32_t>(n->get());
}

Result<toml::table> parse_profile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::unexpected(invalid(fmt::format("profile '{}': cannot be opened: {}", path, std::strerror(errno))));
  std::ostringstream content;
  content << in.rdbuf();
  try {
    return toml::parse(content.str(), path);
  } catch (const toml::parse_error& e) {
    return std::unexpected(invalid(fmt::format("profile '{}' line {}, column {}: {}", path, e.source().begin.line,
                                               e.source().begin.column, e.description())));
  }
}

// The profile's layer; an empty one when the default profile does not exist.
Result<Layer> profile_layer(const EnvLookup& env, CliSettings& out) {
  Layer layer{SettingSource::kProfile, std::nullopt, "ticket", std::nullopt, "ticket_file", std::nullopt, "timeout_ms"};
  if (out.profile_path.empty()) return layer;
  std::error_code ec;
  const bool is_explicit = out.profile_origin == "--config" || out.profile_origin == "ASPEN_CLI_CONFIG";
  if (!fs::exists(out.profile_path, ec)) {
    if (!is_explicit) return layer;
    return std::unexpected(
        invalid(fmt::format("profile '{}' (named by {}) does not exist", out.profile_path, out.profile_origin)));
  }
  if (fs::is_directory(out.profile_path, ec)) {
    return std::unexpected(invalid(fmt::format("profile '{}' is a directory", out.profile_path)));
  }
  out.is_profile_found = true;
  auto table = parse_profile(out.profile_path);
  if (!table) return std::unexpected(table.error());
  const std::string base_dir = fs::path(out.profile_path).parent_path().string();
  for (const auto& [toml_key, value] : *table) {
    const std::string key(toml_key.str());
    if (key == "timeout_ms") {
      auto ms = profile_timeout(out.profile_path, value);
      if (!ms) return std::unexpected(ms.error());
      layer.timeout_ms = *ms;
      continue;
    }
    if (key != "ticket" && key != "ticket_file") {
      return std::unexpected(
          invalid(fmt::format("profile '{}': unknown key '{}' (valid keys: {})", out.profile_path, key, kProfileKeys)));
    }
    auto text = profile_string(out.profile_path, key, value);
    if (!text) return std::unexpected(text.error());
    if (key == "ticket") layer.ticket = *text;
    if (key == "ticket_file") layer.ticket_file = profile_relative_path(*text, base_dir, env);
  }
  return layer;
}

Result<std::string> read_ticket_file(const std::string& path, const std::string& named_by) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(
        invalid(fmt::format("ticket file '{}' (from {}) cannot be read: {}", path, named_by, std::strerror(errno))));
  }
  std::string text(static_cast<size_t>(kMaxTicketFileBytes) + 1, '\0');
  in.read(text.data(), kMaxTicketFileBytes + 1);
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > static_cast<size_t>(kMaxTicketFileBytes)) {
    return std::unexpected(invalid(fmt::format("ticket file '{}' (from {}) is larger than {} bytes; is it a ticket?",
                                               path, named_by, kMaxTicketFileBytes)));
  }
  // aspen-node and `cluster ticket > file` end the ticket with a newline.
  const auto first = text.find_first_not_of(" \t\r\n");
  const auto last = text.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) {
    return std::unexpected(invalid(fmt::format("ticket file '{}' (from {}) is empty", path, named_by)));
  }
  return text.substr(first, last - first + 1);
}

// The ticket from the first layer that gives one, in either form.
Status pick_ticket(const std::vector<Layer>& layers, CliSettings& out) {
  for (const Layer& layer : layers) {
    if (layer.ticket && layer.ticket_file) {
      return std::unexpected(invalid(
          fmt::format("{} and {} both name a ticket; give only one", layer.ticket_name, layer.ticket_file_name)));
    }
    if (layer.ticket) {
      out.ticket = *layer.ticket;
      out.ticket_origin = {layer.source, layer.ticket_name};
      return {};
    }
    if (layer.ticket_file) {
      auto text = read_ticket_file(*layer.ticket_file, layer.ticket_file_name);
      if (!text) return std::unexpected(text.error());
      out.ticket = std::move(*text);
      out.ticket_file = *layer.ticket_file;
      out.ticket_origin = {layer.source, layer.ticket_file_name};
      return {};
    }
  }
  return {};
}

Status pick_timeout(const std::vector<Layer>& layers, CliSettings& out) {
  for (const Layer& layer : layers) {
    if (!layer.timeout_ms) continue;
    if (*layer.timeout_ms == 0) return std::unexpected(invalid(layer.timeout_name + " must be positive"));
    out.timeout_ms = *layer.timeout_ms;
    out.timeout_origin = {layer.source, layer.timeout_name};
    return {};
  }
  return {};
}

}  // namespace

std::string_view setting_source_name(SettingSource source) {
  switch (source) {
    case SettingSource::kNone:
      return "none";
    case SettingSource::kFlag:
      return "flag";
    case SettingSource::kEnvironment:
      return "environment";
    case SettingSource::kProfile:
      return "profile";
    case SettingSource::kDefault:
      return "default";
  }
  ASPEN_UNREACHABLE();
}

Result<CliSettings> resolve_settings(const GlobalFlags& flags, const EnvLookup& env) {
  CliSettings out;
  locate_profile(flags, env, out);
  auto env_settings = env_layer(env);
  if (!env_settings) return std::unexpected(env_settings.error());
  auto profile = profile_layer(env, out);
  if (!profile) return std::unexpected(profile.error());
  const std::vector<Layer> layers{flag_layer(flags), *env_settings, *profile};
  if (auto s = pick_ticket(layers, out); !s) return std::unexpected(s.error());
  if (auto s = pick_timeout(layers, out); !s) return std::unexpected(s.error());
  return out;
}

}  // namespace aspen::cli
