// cli.h: the small flag parser every `gentape` command uses, and the shared entry-point types.
//
// A command declares its positionals and flags, with a help line each, then parses. Flags are
// `--name value` (or `--name=value`) and boolean `--name`; `--help` prints the generated help.
// A bad command line — an unknown flag, a missing value, a value that does not parse or is out of
// range — throws cli::UsageError with a message naming the flag and the value; gentape.cpp prints
// it and exits with code 2 (runtime failures exit 1).
//
//   gt::cli::Parser p("sample", "RUN", "decode samples from the prior into a PNG grid");
//   p.positional("RUN", "the run directory written by `gentape train`");
//   p.option("n", "64", "how many images");
//   p.flag("json", "print one JSON object");
//   if (!p.parse(args)) return 0;            // false: --help was printed
//   int64_t n = p.integer("n", 1, 10000);   // UsageError: "--n expects an integer, got 'x'"
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace gt::cli {

// A command-line mistake: printed with the command's name, exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Args = std::vector<std::string>;  // the words after the command name

class Parser {
 public:
  // command: "train"; synopsis: the positional part of the usage line ("vae|cvae");
  // summary: one sentence for the help's first line.
  Parser(std::string command, std::string synopsis, std::string summary);

  void positional(const std::string& name, const std::string& help, bool required = true);
  // A flag that takes a value. `def` is its value when not given ("" = no default); `metavar`
  // names the value in the help ("N", "DIR"); an empty `choices` allows anything.
  void option(const std::string& name, const std::string& def, const std::string& help,
              const std::string& metavar = "X", std::vector<std::string> choices = {});
  // A boolean flag (present or not).
  void flag(const std::string& name, const std::string& help);
  // Extra text printed at the end of --help (examples, notes).
  void epilog(const std::string& text) { epilog_ = text; }

  // Parses `args`. Returns false when --help was asked for (the help is printed to stdout).
  bool parse(const Args& args);
  std::string help() const;
  const std::string& command() const { return command_; }

  // ---- values (after parse) ----
  bool given(const std::string& name) const;       // set on the command line (flag or option)
  bool has(const std::string& name) const;         // given or has a default
  std::string str(const std::string& name) const;  // the raw value (a choice is validated by parse)
  bool on(const std::string& name) const;          // a boolean flag
  int64_t integer(const std::string& name, int64_t lo, int64_t hi) const;
  double number(const std::string& name, double lo, double hi) const;
  // A comma list of integers ("512,256"), each in [lo, hi].
  std::vector<int64_t> integer_list(const std::string& name, int64_t lo, int64_t hi) const;
  const std::string& positional_value(size_t i) const { return positionals_.at(i); }
  size_t num_positionals() const { return positionals_.size(); }
  // The option names given on the command line (for --resume's consistency check).
  std::vector<std::string> given_names() const;

  // Throws UsageError naming `--name` and its value with `why`.
  [[noreturn]] void bad_value(const std::string& name, const std::string& why) const;

 private:
  struct Spec {
    std::string name, def, help, metavar;
    std::vector<std::string> choices;
    bool is_flag = false;
  };
  struct Pos {
    std::string name, help;
    bool required;
  };
  const Spec& spec(const std::string& name) const;
  std::string command_, synopsis_, summary_, epilog_;
  std::vector<Spec> specs_;
  std::vector<Pos> pos_specs_;
  std::map<std::string, std::string> values_;  // given options ("1" for flags)
  std::vector<std::string> positionals_;
};

// Parses a whole string as a number; false when it is not one (trailing junk included).
bool parse_int(const std::string& s, int64_t* out);
bool parse_double(const std::string& s, double* out);

}  // namespace gt::cli
