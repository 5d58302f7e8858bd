#include "ops/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

namespace aspen::ops {

namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_blank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_blank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A metric or label name at the start of `s` (removed from it); empty if there is none.
std::string_view take_name(std::string_view& s, bool allow_colon) {
  size_t n = 0;
  while (n < s.size() && is_name_char(s[n]) && (allow_colon || s[n] != ':') && (n > 0 || is_name_start(s[n]))) ++n;
  auto name = s.substr(0, n);
  s.remove_prefix(n);
  return name;
}

std::optional<double> parse_value(std::string_view v) {
  if (v == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (v == "+Inf" || v == "Inf") return std::numeric_limits<double>::infinity();
  if (v == "-Inf") return -std::numeric_limits<double>::infinity();
  double d = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
  return d;
}

std::unexpected<Error> bad_line(size_t line_no, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("metrics text line {}: {}", line_no, why));
}

// `name{labels} value [timestamp]`
Result<Sample> parse_sample(std::string_view line, size_t line_no) {
  Sample s;
  s.line = std::string(line);
  std::string_view rest = line;
  s.name = std::string(take_name(rest, true));
  if (s.name.empty()) return bad_line(line_no, "a sample must start with a metric name");
  if (!rest.empty() && rest.front() == '{') {
    rest.remove_prefix(1);
    while (true) {
      while (!rest.empty() && (is_blank(rest.front()) || rest.front() == ',')) rest.remove_prefix(1);
      if (rest.empty()) return bad_line(line_no, "unterminated label set");
      if (rest.front() == '}') {
        rest.remove_prefix(1);
        break;
      }
      if (s.labels.size() == kMaxLabelsPerSample) {
        return make_error(ErrorCode::kMessageTooLarge,
                          fmt::format("metrics text line {}: more than kMaxLabelsPerSample ({}) labels", line_no,
                                      kMaxLabelsPerSample));
      }
      Label label;
      label.name = std::string(take_name(rest, false));
      if (label.name.empty()) return bad_line(line_no, "a label must start with a name");
      if (rest.size() < 2 || rest[0] != '=' || rest[1] != '"') return bad_line(line_no, "a label needs =\"value\"");
      rest.remove_prefix(2);
      bool is_closed = false;
      while (!rest.empty()) {
        char c = rest.front();
        rest.remove_prefix(1);
        if (c == '"') {
          is_closed = true;
          break;
        }
        if (c == '\\') {
          if (rest.empty()) break;
          char e = rest.front();
          rest.remove_prefix(1);
          if (e == 'n') {
            label.value += '\n';
          } else if (e == '\\' || e == '"') {
            label.value += e;
          } else {
            return bad_line(line_no, "a label value has an unknown escape");
          }
          continue;
        }
        label.value += c;
      }
      if (!is_closed) return bad_line(line_no, "unterminated label value");
      s.labels.push_back(std::move(label));
    }
  }
  if (rest.empty() || !is_blank(rest.front())) return bad_line(line_no, "a sample needs a value after its name");
  rest = trim(rest);
  auto value_text = rest.substr(0, rest.find_first_of(" \t"));
  auto value = parse_value(value_text);
  if (!value) return bad_line(line_no, "a sample value is not a number");
  s.value = *value;
  rest = trim(rest.substr(value_text.size()));
  if (!rest.empty()) {
    int64_t ts = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), ts);
    if (ec != std::errc() || end != rest.data() + rest.size()) return bad_line(line_no, "junk after a sample value");
  }
  return s;
}

std::string series_key(const Sample& s) {
  std::string k = s.name;
  for (const auto& l : s.labels) {
    k += '\0';
    k += l.name;
    k += '=';
    k += l.value;
  }
  return k;
}

bool has_labels(const Sample& s, const std::vector<Label>& match) {
  return std::all_of(match.begin(), match.end(), [&](const Label& m) {
    return std::any_of(s.labels.begin(), s.labels.end(), [&](const Label& l) { return l == m; });
  });
}

// Families by name, for one page being built.
class FamilyIndex {
 public:
  explicit FamilyIndex(Exposition& page) : page_(page) {
    for (size_t i = 0; i < page_.families.size(); ++i) by_name_[page_.families[i].name] = i;
  }
  Family& get(std::string_view name) {
    auto it = by_name_.find(std::string(name));
    if (it != by_name_.end()) return page_.families[it->second];
    by_name_.emplace(std::string(name), page_.families.size());
    page_.families.push_back(Family{std::string(name), "", "untyped", {}});
    return page_.families.back();
  }
  // The family a sample belongs to: its own name's, or for _bucket/_sum/_count/_created the
  // histogram's or summary's it extends.
  Family& family_of(std::string_view sample_name) {
    for (std::string_view suffix : {"_bucket", "_sum", "_count", "_created"}) {
      if (!sample_name.ends_with(suffix)) continue;
      auto it = by_name_.find(std::string(sample_name.substr(0, sample_name.size() - suffix.size())));
      if (it == by_name_.end()) continue;
      Family& f = page_.families[it->second];
      if (f.type == "histogram" || f.type == "summary") return f;
    }
    return get(sample_name);
  }

 private:
  Exposition& page_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace

size_t Exposition::sample_count() const {
  size_t n = 0;
  for (const auto& f : families) n += f.samples.size();
  return n;
}

Result<Exposition> parse_exposition(std::string_view text) {
  if (text.size() > kMaxExpositionBytes) {
    return make_error(ErrorCode::kMessageTooLarge,
                      fmt::format("metrics text of {} bytes is over kMaxExpositionBytes ({})", text.size(),
                                  kMaxExpositionBytes));
  }
  Exposition page;
  FamilyIndex index(page);
  size_t samples = 0;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t eol = text.find('\n');
    std::string_view line = trim(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.empty()) continue;
    if (line.front() == '#') {
      std::string_view rest = trim(line.substr(1));
      const bool is_help = rest.starts_with("HELP ") || rest.starts_with("HELP\t");
      const bool is_type = rest.starts_with("TYPE ") || rest.starts_with("TYPE\t");
      if (!is_help && !is_type) continue;  // a plain comment
      rest = trim(rest.substr(4));
      auto name = take_name(rest, true);
      if (name.empty() || (!rest.empty() && !is_blank(rest.front()))) {
        return bad_line(line_no, "HELP or TYPE needs a metric name");
      }
      rest = trim(rest);
      Family& f = index.get(name);
      if (is_help) {
        f.help = std::string(rest);
      } else {
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" && rest != "untyped") {
          return bad_line(line_no, "TYPE must be counter, gauge, histogram, summary or untyped");
        }
        f.type = std::string(rest);
      }
      continue;
    }
    if (samples == kMaxExpositionSamples) {
      return make_error(ErrorCode::kMessageTooLarge,
                        fmt::format("metrics text has more than kMaxExpositionSamples ({}) samples",
                                    kMaxExpositionSamples));
    }
    auto sample = parse_sample(line, line_no);
    if (!sample) return std::unexpected(sample.error());
    index.family_of(sample->name).samples.push_back(std::move(*sample));
    ++samples;
  }
  return page;
}

Status merge_into(Exposition& into, Exposition page) {
  FamilyIndex index(into);
  std::unordered_set<std::string> series;
  for (const auto& f : into.families) {
    for (const auto& s : f.samples) series.insert(series_key(s));
  }
  size_t total = into.sample_count();
  for (auto& f : page.families) {
    Family& target = index.get(f.name);
    if (target.help.empty()) target.help = f.help;
    if (target.type == "untyped") target.type = f.type;
    for (auto& s : f.samples) {
      if (!series.insert(series_key(s)).second) continue;
      if (total == kMaxExpositionSamples) {
        return make_error(ErrorCode::kMessageTooLarge,
                          fmt::format("the merged metrics have more than kMaxExpositionSamples ({}) samples",
                                      kMaxExpositionSamples));
      }
      target.samples.push_back(std::move(s));
      ++total;
    }
  }
  return {};
}

std::string render(const Exposition& page) {
  std::string out;
  for (const auto& f : page.families) {
    if (!f.help.empty()) out += fmt::format("# HELP {} {}\n", f.name, f.help);
    out += fmt::format("# TYPE {} {}\n", f.name, f.type);
    for (const auto& s : f.samples) {
      out += s.line;
      out += '\n';
    }
  }
  return out;
}

std::vector<const Sample*> samples_named(const Exposition& page, std::string_view name,
                                         const std::vector<Label>& match) {
  std::vector<const Sample*> out;
  for (const auto& f : page.families) {
    if (!name.starts_with(f.name)) continue;  // a family holds only samples named from it
    for (const auto& s : f.samples) {
      if (s.name == name && has_labels(s, match)) out.push_back(&s);
    }
  }
  return out;
}

std::optional<double> sample_value(const Exposition& page, std::string_view name, const std::vector<Label>& match) {
  auto found = samples_named(page, name, match);
  if (found.empty()) return std::nullopt;
  return found.front()->value;
}

std::string_view label_value(const Sample& sample, std::string_view label) {
  for (const auto& l : sample.labels) {
    if (l.name == label) return l.value;
  }
  return {};
}

std::vector<Bucket> histogram_buckets(const Exposition& page, std::string_view family, const std::vector<Label>& match) {
  std::map<double, double> by_le;  // summed over the matching series (e.g. every op)
  for (const Sample* s : samples_named(page, std::string(family) + "_bucket", match)) {
    auto le = parse_value(label_value(*s, "le"));
    if (!le || std::isnan(*le)) continue;
    by_le[*le] += s->value;
  }
  std::vector<Bucket> out;
  for (const auto& [le, count] : by_le) out.push_back(Bucket{le, count});
  return out;
}

std::vector<Bucket> bucket_deltas(const std::vector<Bucket>& now, const std::vector<Bucket>& before) {
  if (before.empty()) return now;
  if (now.size() != before.size()) return {};
  std::vector<Bucket> out;
  for (size_t i = 0; i < now.size(); ++i) {
    if (now[i].le != before[i].le) return {};
    out.push_back(Bucket{now[i].le, std::max(0.0, now[i].count - before[i].count)});
  }
  return out;
}

std::optional<double> histogram_quantile(double q, const std::vector<Bucket>& buckets) {
  if (buckets.empty() || !(q > 0 && q < 1)) return std::nullopt;
  const double total = buckets.back().count;
  if (!(total > 0)) return std::nullopt;
  const double rank = q * total;
  double prev_le = 0;
  double prev_count = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const Bucket& b = buckets[i];
    if (b.count >= rank) {
      // In the open-ended bucket the best answer is the highest finite bound.
      if (std::isinf(b.le)) return i == 0 ? std::nullopt : std::optional<double>(prev_le);
      if (b.count <= prev_count) return b.le;
      return prev_le + (b.le - prev_le) * (rank - prev_count) / (b.count - prev_count);
    }
    prev_le = b.le;
    prev_count = b.count;
  }
  return prev_le;
}

}  // namespace aspen::ops
