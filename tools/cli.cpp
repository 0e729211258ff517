// cli.cpp: the flag parser (see cli.h).
#include "tools/cli.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace gt::cli {

namespace {
// Levenshtein distance, for "did you mean --latent?".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}
}  // namespace

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0') return false;
  *out = v;
  return true;
}

bool parse_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end == s.c_str() || *end != '\0' || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

Parser::Parser(std::string command, std::string synopsis, std::string summary)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), summary_(std::move(summary)) {}

void Parser::positional(const std::string& name, const std::string& help, bool required) {
  pos_specs_.push_back({name, help, required});
}

void Parser::option(const std::string& name, const std::string& def, const std::string& help,
                    const std::string& metavar, std::vector<std::string> choices) {
  specs_.push_back({name, def, help, metavar, std::move(choices), false});
}

void Parser::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, "", {}, true});
}

const Parser::Spec& Parser::spec(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return s;
  throw std::logic_error("gentape " + command_ + ": flag --" + name + " was not declared");
}

void Parser::bad_value(const std::string& name, const std::string& why) const {
  auto it = values_.find(name);
  std::string v = it != values_.end() ? it->second : spec(name).def;
  throw UsageError("--" + name + " " + why + ", got '" + v + "'");
}

bool Parser::parse(const Args& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2), value;
      bool inline_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      const Spec* s = nullptr;
      for (const Spec& c : specs_)
        if (c.name == name) s = &c;
      if (!s) {
        std::string msg = "unknown flag '--" + name + "'";
        size_t best = 3;
        std::string guess;
        for (const Spec& c : specs_) {
          size_t d = edit_distance(name, c.name);
          if (d < best) best = d, guess = c.name;
        }
        if (!guess.empty()) msg += " (did you mean --" + guess + "?)";
        throw UsageError(msg);
      }
      if (values_.count(name)) throw UsageError("--" + name + " given twice");
      if (s->is_flag) {
        if (inline_value) throw UsageError("--" + name + " takes no value, got '" + value + "'");
        values_[name] = "1";
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= args.size() || (args[i + 1].size() > 2 && args[i + 1].compare(0, 2, "--") == 0))
          throw UsageError("--" + name + " needs a value (" + s->metavar + ")");
        value = args[++i];
      }
      if (!s->choices.empty() && std::find(s->choices.begin(), s->choices.end(), value) == s->choices.end())
        throw UsageError("--" + name + " must be one of " + join(s->choices, ", ") + ", got '" + value + "'");
      values_[name] = value;
      continue;
    }
    if (a.size() > 1 && a[0] == '-' && !std::isdigit((unsigned char)a[1]))
      throw UsageError("unknown flag '" + a + "' (flags are spelled --name)");
    if (positionals_.size() >= pos_specs_.size())
      throw UsageError("unexpected argument '" + a + "'" +
                       (pos_specs_.empty() ? std::string(" (this command takes no positional arguments)")
                                           : " (expected " + synopsis_ + ")"));
    positionals_.push_back(a);
  }
  for (size_t i = positionals_.size(); i < pos_specs_.size(); ++i)
    if (pos_specs_[i].required) throw UsageError("missing " + pos_specs_[i].name + " (usage: gentape " + command_ + " " + synopsis_ + " [flags])");
  return true;
}

std::string Parser::help() const {
  std::ostringstream o;
  o << "usage: gentape " << command_ << (synopsis_.empty() ? "" : " " + synopsis_) << " [flags]\n\n" << summary_ << "\n";
  if (!pos_specs_.empty()) {
    o << "\narguments:\n";
    for (const Pos& p : pos_specs_) {
      std::string n = "  " + p.name;
      o << n << std::string(n.size() < 24 ? 26 - n.size() : 2, ' ') << p.help << "\n";
    }
  }
  o << "\nflags:\n";
  for (const Spec& s : specs_) {
    std::string n = "  --" + s.name + (s.is_flag ? "" : " " + s.metavar);
    o << n << std::string(n.size() < 24 ? 26 - n.size() : 2, ' ') << s.help;
    if (!s.choices.empty() && s.metavar.find('|') == std::string::npos) o << " (" << join(s.choices, "|") << ")";
    if (!s.is_flag && !s.def.empty()) o << " [" << s.def << "]";
    o << "\n";
  }
  o << "  --help                  this help\n";
  if (!epilog_.empty()) o << "\n" << epilog_ << (epilog_.back() == '\n' ? "" : "\n");
  return o.str();
}

bool Parser::given(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

bool Parser::has(const std::string& name) const { return given(name) || !spec(name).def.empty(); }

std::string Parser::str(const std::string& name) const {
  auto it = values_.find(name);
  return it != values_.end() ? it->second : spec(name).def;
}

bool Parser::on(const std::string& name) const {
  if (!spec(name).is_flag) throw std::logic_error("--" + name + " is not a boolean flag");
  return values_.count(name) > 0;
}

int64_t Parser::integer(const std::string& name, int64_t lo, int64_t hi) const {
  int64_t v = 0;
  if (!parse_int(str(name), &v)) bad_value(name, "expects an integer");
  if (v < lo || v > hi) {
    if (hi == INT64_MAX) bad_value(name, "must be >= " + std::to_string(lo));
    bad_value(name, "must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v;
}

double Parser::number(const std::string& name, double lo, double hi) const {
  double v = 0;
  if (!parse_double(str(name), &v)) bad_value(name, "expects a number");
  if (v < lo || v > hi) {
    std::ostringstream r;
    r << "must be in [" << lo << ", " << hi << "]";
    bad_value(name, r.str());
  }
  return v;
}

std::vector<int64_t> Parser::integer_list(const std::string& name, int64_t lo, int64_t hi) const {
  std::vector<int64_t> out;
  std::string s = str(name);
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int64_t v = 0;
    if (!parse_int(item, &v)) bad_value(name, "expects an integer or a comma list of integers (e.g. 512,256)");
    if (v < lo || v > hi)
      bad_value(name, "entries must be in " + std::to_string(lo) + ".." + std::to_string(hi));
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> Parser::given_names() const {
  std::vector<std::string> v;
  for (auto& kv : values_) v.push_back(kv.first);
  return v;
}

}  // namespace gt::cli
