// test_torch_fixtures.cpp: gentape's ops against PyTorch. Each fixture (tests/fixtures/*.txt, made
// by make_fixtures.py in float64) holds an op's inputs, its output, a random weight w and the
// gradients of L = sum(w * out); here gentape runs the same op in float32, back-propagates
// backward(out, w) and every gradient is compared with torch's. The MLP fixture checks a whole
// forward/backward chain (matmul, broadcast add, tanh, logsumexp, mean) from a scalar loss.
// STYLE.md section 4: reference values from an independent implementation beat self-made ones.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "tests/fixtures.h"
#include "tests/op_table.h"

namespace {

using gt::Device;
using gt::Tensor;
using gt::test::Fixture;

// Tolerances for float32 gentape vs float64 torch on the same float32 inputs. Every value here is
// a sum of at most a few hundred products of O(1) numbers (the largest: conv_transpose2d's weight
// gradient, 196 products per element, |value| up to ~20). Float32 rounding then errs by about
// sqrt(n) * 6e-8 * sum|terms| ~ 1e-5 in the worst element, so the absolute tolerance is 5e-5 (it
// covers sums that cancel to near zero) and the relative one 1e-5 (~170 float32 ulps: covers
// logsumexp's ~102 outputs, whose ulp is 7.6e-6). A wrong index or derivative errs by O(0.1-1).
constexpr double kAtol = 5e-5;
constexpr double kRtol = 1e-5;

// Set GENTAPE_VERBOSE_FIXTURES=1 to print the worst error of every comparison.
bool verbose() {
  const char* v = std::getenv("GENTAPE_VERBOSE_FIXTURES");
  return v && *v && std::string(v) != "0";
}

void compare(const Fixture& f, Device dev, const std::string& what, const Tensor& got,
             const std::string& key) {
  INFO("fixture " << f.name << " (" << f.path << ") on " << gt::device_name(dev) << ": " << what);
  REQUIRE(got.defined());
  REQUIRE(got.shape() == f.shape(key));
  std::vector<float> g = got.to_vector();
  const std::vector<double>& want = f.values(key);
  if (verbose()) {
    double max_abs = 0, max_rel = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      double e = std::fabs((double)g[i] - want[i]);
      max_abs = std::max(max_abs, e);
      if (want[i] != 0) max_rel = std::max(max_rel, e / std::fabs(want[i]));
    }
    std::printf("fixture %-26s %-4s %-12s n=%-4zu max|err| %.2e  max rel %.2e\n", f.name.c_str(),
                gt::device_name(dev), what.c_str(), g.size(), max_abs, max_rel);
  }
  gt::test::require_close(f.name + " " + what + " on " + gt::device_name(dev), g, want, kAtol, kRtol);
}

// Runs a fixture of the form out = op(inputs...): loads the inputs as leaves on `dev`, compares
// out, back-propagates backward(out, w) and compares grad_<input> for every input.
void check_op_fixture(const std::string& fixture, const std::vector<std::string>& inputs,
                      const std::function<Tensor(const Fixture&, const std::vector<Tensor>&)>& op,
                      Device dev) {
  Fixture f = gt::test::load_fixture(fixture);
  gt::reset_tape();
  std::vector<Tensor> leaves;
  for (const std::string& n : inputs) leaves.push_back(f.tensor(n, dev).set_requires_grad());
  Tensor out = op(f, leaves);
  compare(f, dev, "out", out, "out");
  gt::backward(out, f.tensor("w", dev));
  for (size_t i = 0; i < inputs.size(); ++i) compare(f, dev, "grad_" + inputs[i], leaves[i].grad(), "grad_" + inputs[i]);
}

void check_matmul(const std::string& fixture, Device dev) {
  SECTION(fixture) {
    check_op_fixture(fixture, {"a", "b"},
                     [](const Fixture& f, const std::vector<Tensor>& in) {
                       return gt::matmul(in[0], in[1], f.attr_int("transpose_a") != 0,
                                         f.attr_int("transpose_b") != 0);
                     },
                     dev);
  }
}

void check_conv2d(const std::string& fixture, Device dev) {
  SECTION(fixture) {
    check_op_fixture(fixture, {"x", "weight", "bias"},
                     [](const Fixture& f, const std::vector<Tensor>& in) {
                       return gt::conv2d(in[0], in[1], in[2], f.attr_int("stride"), f.attr_int("padding"));
                     },
                     dev);
  }
}

void check_conv_transpose2d(const std::string& fixture, Device dev) {
  SECTION(fixture) {
    check_op_fixture(fixture, {"x", "weight", "bias"},
                     [](const Fixture& f, const std::vector<Tensor>& in) {
                       return gt::conv_transpose2d(in[0], in[1], in[2], f.attr_int("stride"),
                                                   f.attr_int("padding"), f.attr_int("output_padding"));
                     },
                     dev);
  }
}

void check_logsumexp(const std::string& fixture, Device dev) {
  SECTION(fixture) {
    check_op_fixture(fixture, {"x"},
                     [](const Fixture& f, const std::vector<Tensor>& in) {
                       return gt::logsumexp(in[0], f.attr_int("dim"), f.attr_int("keepdim") != 0);
                     },
                     dev);
  }
}

// loss = mean(logsumexp(tanh(x W1^T + b1) W2^T + b2, dim=1)), back-propagated from the loss itself.
void check_mlp(Device dev) {
  SECTION("mlp") {
    Fixture f = gt::test::load_fixture("mlp");
    gt::reset_tape();
    const std::vector<std::string> names = {"x", "W1", "b1", "W2", "b2"};
    std::vector<Tensor> p;
    for (const std::string& n : names) p.push_back(f.tensor(n, dev).set_requires_grad());
    Tensor h = gt::tanh(gt::add(gt::matmul(p[0], p[1], false, true), p[2]));
    Tensor o = gt::add(gt::matmul(h, p[3], false, true), p[4]);
    Tensor loss = gt::mean(gt::logsumexp(o, 1));
    compare(f, dev, "loss", loss, "loss");
    gt::backward(loss);
    for (size_t i = 0; i < names.size(); ++i) compare(f, dev, "grad_" + names[i], p[i].grad(), "grad_" + names[i]);
  }
}

void check_all(Device dev) {
  check_matmul("matmul", dev);
  check_matmul("matmul_bt", dev);
  check_matmul("matmul_at", dev);
  check_matmul("matmul_batched", dev);
  check_conv2d("conv2d", dev);
  check_conv_transpose2d("conv_transpose2d", dev);
  check_conv_transpose2d("conv_transpose2d_batched", dev);
  check_logsumexp("logsumexp", dev);
  check_logsumexp("logsumexp_mid", dev);
  check_mlp(dev);
}

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = "/tmp/gentape_fixture_test_" + name + ".txt";
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("fixture loader reads tensors, scalars and attributes", "[fixtures]") {
  std::string path = write_temp("ok", "# comment\n\n@stride 2\nx 2,3: 1 2 3 4 5 6.5\nloss : -0.25\n");
  Fixture f = gt::test::load_fixture_file(path, "ok");
  REQUIRE(f.shape("x") == gt::Shape({2, 3}));
  REQUIRE(f.values("x")[5] == 6.5);
  REQUIRE(f.shape("loss").size() == 0);
  REQUIRE(f.values("loss")[0] == -0.25);
  REQUIRE(f.attr_int("stride") == 2);
  REQUIRE(f.tensor("x").to_vector()[4] == 5.0f);
  REQUIRE_THROWS_AS(f.get("nope"), gt::Error);
  REQUIRE_THROWS_AS(f.attr("nope"), gt::Error);
}

TEST_CASE("fixture loader errors name the file", "[fixtures]") {
  using Catch::Matchers::Contains;
  REQUIRE_THROWS_WITH(gt::test::load_fixture("no_such_fixture"), Contains("no_such_fixture.txt"));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"nocolon", "x 2,3 1 2 3 4 5 6\n"},
      {"count", "x 2,3: 1 2 3\n"},
      {"number", "x 2: 1 abc\n"},
      {"dims", "x 2,a: 1 2\n"},
      {"twice", "x 1: 1\nx 1: 2\n"},
      {"attr", "@stride\nx 1: 1\n"},
  };
  for (const auto& [name, text] : bad) {
    std::string path = write_temp(name, text);
    INFO("case " << name);
    REQUIRE_THROWS_WITH(gt::test::load_fixture_file(path, name), Contains(path));
  }
}

TEST_CASE("ops match PyTorch fixtures on CPU", "[fixtures]") { check_all(Device::CPU); }

TEST_CASE("ops match PyTorch fixtures on CUDA", "[fixtures][cuda]") {
  if (!gt::test::cuda_or_skip()) return;
  check_all(Device::CUDA);
}
