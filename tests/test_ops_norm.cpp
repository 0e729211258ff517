// test_ops_norm.cpp: group_norm, softmax and timestep_embedding. The op table (forward vs a naive
// double reference, finite differences, CPU vs CUDA), the U-Net's own GroupNorm size with sampled
// finite differences, inputs at large offsets, hand-checked edge cases, error messages, and PyTorch
// fixtures (tests/fixtures/make_fixtures.py, norm_fixtures: F.group_norm, torch.softmax and the
// embedding formula in float64).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/rng.h"
#include "tests/fixtures.h"
#include "tests/op_table.h"

using namespace gt;
using namespace gt::test;

namespace {

// ---------------------------------------------------------------- references (double)

// PyTorch's GroupNorm in double: x (N, C, *spatial), per (n, g) mean and biased variance.
RefResult group_norm_ref(const HostTensor& x, int groups, const HostTensor* w, const HostTensor* b, double eps) {
  const int64_t N = x.shape[0], C = x.shape[1], S = x.shape.numel() / (N * C), Cg = C / groups, M = Cg * S;
  RefResult r{x.shape, std::vector<double>(x.v.size())};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      const size_t o = (size_t)((n * C + g * Cg) * S);
      double mu = 0, var = 0;
      for (int64_t i = 0; i < M; ++i) mu += x.v[o + (size_t)i];
      mu /= (double)M;
      for (int64_t i = 0; i < M; ++i) var += (x.v[o + (size_t)i] - mu) * (x.v[o + (size_t)i] - mu);
      var /= (double)M;
      for (int64_t i = 0; i < M; ++i) {
        const size_t c = (size_t)(g * Cg + i / S);
        const double xhat = (x.v[o + (size_t)i] - mu) / std::sqrt(var + eps);
        r.v[o + (size_t)i] = xhat * (w ? w->v[c] : 1.0) + (b ? b->v[c] : 0.0);
      }
    }
  return r;
}

// softmax along dim in double, the textbook way (max subtracted).
RefResult softmax_ref(const HostTensor& x, int dim) {
  const Shape& s = x.shape;
  const int d = dim < 0 ? dim + s.size() : dim;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= s[i];
  for (int i = d + 1; i < s.size(); ++i) inner *= s[i];
  const int64_t n = s[d];
  RefResult r{s, std::vector<double>(x.v.size())};
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (size_t)((o * n + k) * inner + i); };
      double m = -INFINITY, sum = 0;
      for (int64_t k = 0; k < n; ++k) m = std::max(m, x.v[at(k)]);
      for (int64_t k = 0; k < n; ++k) sum += std::exp(x.v[at(k)] - m);
      for (int64_t k = 0; k < n; ++k) r.v[at(k)] = std::exp(x.v[at(k)] - m) / sum;
    }
  return r;
}

double embedding_ref(double t, int64_t j, int64_t dim) {
  const int64_t half = dim / 2, k = j < half ? j : j - half;
  const double a = t * std::exp(-std::log(10000.0) * (double)k / (double)half);
  return j < half ? std::sin(a) : std::cos(a);
}

// ---------------------------------------------------------------- table rows

// An affine GroupNorm row: x, weight near 1, bias.
OpRow gn_row(const std::string& name, Shape xs, int groups, InputSpec x = {}) {
  if (x.shape.size() == 0) x = normal(xs);
  const int64_t C = xs[1];
  return {name,
          {x, uniform({C}, 0.5f, 1.5f), normal({C}, 0.5f)},
          [groups](const std::vector<Tensor>& in) { return group_norm(in[0], groups, in[1], in[2]); },
          [groups](const std::vector<HostTensor>& in) { return group_norm_ref(in[0], groups, &in[1], &in[2], 1e-5); }};
}

// silu(group_norm(x)) in double: the fused op's reference.
RefResult gn_silu_ref(const HostTensor& x, int groups, const HostTensor* w, const HostTensor* b, double eps) {
  RefResult r = group_norm_ref(x, groups, w, b, eps);
  for (double& v : r.v) v = v / (1.0 + std::exp(-v));
  return r;
}

// The fused GroupNorm + SiLU (gt::group_norm_silu), with or without weight and bias.
OpRow gn_silu_row(const std::string& name, Shape xs, int groups, bool affine) {
  const int64_t C = xs[1];
  if (!affine)
    return {name,
            {normal(xs)},
            [groups](const std::vector<Tensor>& in) { return group_norm_silu(in[0], groups, Tensor(), Tensor()); },
            [groups](const std::vector<HostTensor>& in) { return gn_silu_ref(in[0], groups, nullptr, nullptr, 1e-5); }};
  return {name,
          {normal(xs), uniform({C}, 0.5f, 1.5f), normal({C}, 0.5f)},
          [groups](const std::vector<Tensor>& in) { return group_norm_silu(in[0], groups, in[1], in[2]); },
          [groups](const std::vector<HostTensor>& in) { return gn_silu_ref(in[0], groups, &in[1], &in[2], 1e-5); }};
}

OpRow softmax_row(Shape s, int dim, float stddev = 1.f) {
  return {"softmax " + s.str() + " dim " + std::to_string(dim),
          {normal(s, stddev)},
          [dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); },
          [dim](const std::vector<HostTensor>& in) { return softmax_ref(in[0], dim); }};
}

std::vector<OpRow> rows() {
  std::vector<OpRow> r;
  r.push_back(gn_row("group_norm (2, 6, 5, 7) groups 3", {2, 6, 5, 7}, 3));
  r.push_back(gn_row("group_norm (3, 4, 5) groups 1 (one group: layer norm over C x L)", {3, 4, 5}, 1));
  r.push_back(gn_row("group_norm (2, 5, 3, 3) groups 5 (= C: instance norm)", {2, 5, 3, 3}, 5));
  r.push_back(gn_row("group_norm (5, 6) groups 2 (no spatial dims)", {5, 6}, 2));
  r.push_back(gn_row("group_norm (2, 4, 13) groups 2 (odd spatial size: vector tails)", {2, 4, 13}, 2));
  // Large offsets: x - mean cancels every digit the two share. At 1e4 with spread 0.2 a float32
  // mean alone (ulp 1e-3) would put ~1e-2 into the output, 100x the forward tolerance.
  r.push_back(gn_row("group_norm (2, 4, 3, 3) groups 2, x in [999, 1001)", {2, 4, 3, 3}, 2,
                     uniform({2, 4, 3, 3}, 999.f, 1001.f)));
  OpRow far = gn_row("group_norm (2, 4, 3, 3) groups 2, x in [9999.9, 10000.1)", {2, 4, 3, 3}, 2,
                     uniform({2, 4, 3, 3}, 9999.9f, 10000.1f));
  // The spread's std is 0.058: a 1e-2 step would leave the locally linear range, so step 2e-3
  // (rounded to 1.95e-3 by float32 at 1e4; gradcheck divides by the step actually taken).
  far.tol.fd_eps = 2e-3;
  r.push_back(far);
  r.push_back({"group_norm (2, 6, 3, 5) groups 3, no weight or bias",
               {normal({2, 6, 3, 5})},
               [](const std::vector<Tensor>& in) { return group_norm(in[0], 3, Tensor(), Tensor()); },
               [](const std::vector<HostTensor>& in) { return group_norm_ref(in[0], 3, nullptr, nullptr, 1e-5); }});
  r.push_back({"group_norm (2, 4, 3, 3) groups 2, eps 0.5",
               {normal({2, 4, 3, 3}), uniform({4}, 0.5f, 1.5f), normal({4}, 0.5f)},
               [](const std::vector<Tensor>& in) { return group_norm(in[0], 2, in[1], in[2], 0.5f); },
               [](const std::vector<HostTensor>& in) { return group_norm_ref(in[0], 2, &in[1], &in[2], 0.5); }});

  r.push_back(gn_silu_row("group_norm_silu (2, 6, 5, 7) groups 3", {2, 6, 5, 7}, 3, true));
  r.push_back(gn_silu_row("group_norm_silu (2, 4, 13) groups 2, no weight or bias", {2, 4, 13}, 2, false));

  r.push_back(softmax_row({5, 7}, -1));
  r.push_back(softmax_row({3, 4, 5}, 1));          // middle dim: inner = 5
  r.push_back(softmax_row({4, 3, 6}, 0));          // first dim
  r.push_back(softmax_row({2, 3, 1100}, 2, 2.f));  // rows >= 1024: the CUDA block-per-row path
  r.push_back(softmax_row({6, 1}, -1));            // one element: y = 1, gradient 0
  return r;
}

// The U-Net's GroupNorm: 32 channels in 8 groups at 28 x 28, batch 2 (M = 3136 per group).
OpRow unet_row() {
  return gn_row("group_norm (2, 32, 28, 28) groups 8", {2, 32, 28, 28}, 8);
}

// Central differences of L = sum(w * op(x)) at `samples` elements of each input (all of an input
// that has fewer), against one backward pass: gradcheck's method, on a sample, for inputs too large
// to difference element by element (2 x 50176 forward passes).
void sampled_gradcheck(const OpRow& row, int samples) {
  std::vector<Tensor> xs = make_inputs(row, Device::CPU);
  for (Tensor& t : xs) t.set_requires_grad(true);
  reset_tape();
  Tensor y = row.op(xs);
  Generator gen(1234);
  Tensor w = gen.randn(y.shape());
  backward(y, w);
  const std::vector<float> wv = w.to_vector();
  NoGradGuard no_grad;
  auto loss = [&]() {
    std::vector<float> v = row.op(xs).to_vector();
    double s = 0;
    for (size_t i = 0; i < v.size(); ++i) s += (double)wv[i] * (double)v[i];
    return s;
  };
  Generator pick(77);
  for (size_t i = 0; i < xs.size(); ++i) {
    const int64_t n = xs[i].numel();
    const std::vector<float> analytic = xs[i].grad().to_vector();
    std::vector<float> host = xs[i].to_vector();
    std::vector<int64_t> idx;
    if (n <= samples) {
      for (int64_t j = 0; j < n; ++j) idx.push_back(j);
    } else {
      for (float u : pick.rand({samples}).to_vector()) idx.push_back(std::min<int64_t>(n - 1, (int64_t)(u * n)));
    }
    for (int64_t j : idx) {
      const float orig = host[(size_t)j];
      host[(size_t)j] = (float)(orig + row.tol.fd_eps);
      const double hp = (double)host[(size_t)j] - orig;
      xs[i].copy_(Tensor::from_vector(host, xs[i].shape()));
      const double lp = loss();
      host[(size_t)j] = (float)(orig - row.tol.fd_eps);
      const double hm = orig - (double)host[(size_t)j];
      xs[i].copy_(Tensor::from_vector(host, xs[i].shape()));
      const double lm = loss();
      host[(size_t)j] = orig;
      xs[i].copy_(Tensor::from_vector(host, xs[i].shape()));
      const double numeric = (lp - lm) / (hp + hm), a = analytic[(size_t)j];
      INFO(row.name << ": input " << i << " element " << j << " analytic " << a << " numeric " << numeric);
      REQUIRE(std::fabs(a - numeric) <= row.tol.fd_atol + row.tol.fd_rtol * std::fabs(numeric));
    }
  }
}

// ---------------------------------------------------------------- torch fixtures

// float32 gentape vs float64 torch on the same float32 inputs (test_torch_fixtures.cpp's bounds):
// sums of at most ~200 O(1) terms, so ~1e-5 absolute in the worst element, 1e-5 relative.
constexpr double kFixAtol = 5e-5;
constexpr double kFixRtol = 1e-5;

void compare_fixture(const Fixture& f, Device dev, const std::string& what, const Tensor& got, const std::string& key,
                     double atol = kFixAtol, double rtol = kFixRtol) {
  INFO("fixture " << f.name << " (" << f.path << ") on " << device_name(dev) << ": " << what);
  REQUIRE(got.defined());
  REQUIRE(got.shape() == f.shape(key));
  require_close(f.name + " " + what + " on " + device_name(dev), got.to_vector(), f.values(key), atol, rtol);
}

// out = op(inputs); backward(out, w); compare out and grad_<input> for every input.
void check_op_fixture(const std::string& name, const std::vector<std::string>& inputs,
                      const std::function<Tensor(const Fixture&, const std::vector<Tensor>&)>& op, Device dev) {
  Fixture f = load_fixture(name);
  reset_tape();
  std::vector<Tensor> leaves;
  for (const std::string& n : inputs) leaves.push_back(f.tensor(n, dev).set_requires_grad());
  Tensor out = op(f, leaves);
  compare_fixture(f, dev, "out", out, "out");
  backward(out, f.tensor("w", dev));
  for (size_t i = 0; i < inputs.size(); ++i)
    compare_fixture(f, dev, "grad_" + inputs[i], leaves[i].grad(), "grad_" + inputs[i]);
}

void check_fixtures(Device dev) {
  auto gn = [](const Fixture& f, const std::vector<Tensor>& in) {
    return group_norm(in[0], f.attr_int("groups"), in[1], in[2], std::stof(f.attr("eps")));
  };
  auto sm = [](const Fixture& f, const std::vector<Tensor>& in) { return softmax(in[0], f.attr_int("dim")); };
  SECTION("group_norm") { check_op_fixture("group_norm", {"x", "weight", "bias"}, gn, dev); }
  // x = 1000 + N(0, 0.01^2): same tolerances, although x - mean cancels 5 digits (norm.h keeps the
  // mean as hi + lo, so the cancellation is exact).
  SECTION("group_norm_offset") { check_op_fixture("group_norm_offset", {"x", "weight", "bias"}, gn, dev); }
  SECTION("softmax_last") { check_op_fixture("softmax_last", {"x"}, sm, dev); }
  SECTION("softmax_mid") { check_op_fixture("softmax_mid", {"x"}, sm, dev); }
  SECTION("timestep_embedding") {
    Fixture f = load_fixture("timestep_embedding");
    Tensor out = timestep_embedding(f.tensor("t", dev), f.attr_int("dim"));
    // Computed in double and rounded once: within an ulp of the float64 value (ulp(1) = 1.2e-7).
    compare_fixture(f, dev, "out", out, "out", 1.2e-7, 0.0);
  }
}

}  // namespace

TEST_CASE("op table: norm and softmax", "[ops][norm]") { run_op_table(rows()); }
TEST_CASE("op table: norm and softmax cpu vs cuda", "[ops][norm][cuda]") {
  std::vector<OpRow> r = rows();
  r.push_back(unet_row());
  run_op_table_cuda(r);
}

TEST_CASE("group_norm at the U-Net's size (2, 32, 28, 28), 8 groups", "[ops][norm]") {
  const OpRow row = unet_row();
  SECTION("forward vs double reference") { check_forward(row); }
  SECTION("finite differences at 200 sampled elements, every weight and bias") { sampled_gradcheck(row, 200); }
}

TEST_CASE("group_norm_silu: equals silu(group_norm(x)) at the U-Net's size, values and gradients", "[ops][norm]") {
  // The fused op writes only the SiLU output and recomputes the normalised values in backward; the
  // result must match the two ops composed, including a gradient that accumulates (x used twice).
  Generator gen(9);
  Tensor x0 = add(mul(gen.randn({2, 32, 28, 28}), 2.f), 0.5f), dz = gen.randn({2, 32, 28, 28});
  Tensor w0 = add(mul(gen.randn({32}), 0.3f), 1.f), b0 = mul(gen.randn({32}), 0.5f);
  auto run = [&](bool fused) {
    reset_tape();
    Tensor x = x0.clone().set_requires_grad(), w = w0.clone().set_requires_grad(), b = b0.clone().set_requires_grad();
    Tensor z = fused ? group_norm_silu(x, 8, w, b) : silu(group_norm(x, 8, w, b));
    backward(add(z, mul(x, 0.5f)), dz);  // x's gradient gets a second contribution
    return std::vector<std::vector<float>>{z.to_vector(), x.grad().to_vector(), w.grad().to_vector(),
                                           b.grad().to_vector()};
  };
  const auto fused = run(true), plain = run(false);
  const char* what[] = {"z", "dx", "dweight", "dbias"};
  for (size_t i = 0; i < fused.size(); ++i) {
    INFO(what[i]);
    // dweight / dbias sum 2 x 784 x 4 terms of O(1): float32 rounding of ~1e-4 absolute.
    require_close(std::string("group_norm_silu ") + what[i], fused[i], std::vector<double>(plain[i].begin(), plain[i].end()),
                  i >= 2 ? 2e-4 : 1e-5, 1e-5);
  }
}

TEST_CASE("group_norm: constant groups give the bias, and finite gradients", "[ops][norm]") {
  // var = 0 exactly: xhat = 0, y = bias; rstd = 1/sqrt(eps), so nothing divides by zero.
  Tensor x = Tensor::full({2, 4, 3}, 3.25f).set_requires_grad();
  Tensor w = Tensor::from_vector({1, 2, 3, 4}, {4}).set_requires_grad();
  Tensor b = Tensor::from_vector({0.5f, -1, 2, 0}, {4}).set_requires_grad();
  Tensor y = group_norm(x, 2, w, b);
  std::vector<float> yv = y.to_vector();
  for (size_t i = 0; i < yv.size(); ++i) REQUIRE(yv[i] == b.to_vector()[(i / 3) % 4]);
  backward(sum(y));
  for (float g : x.grad().to_vector()) REQUIRE(std::isfinite(g));
  for (float g : w.grad().to_vector()) REQUIRE(g == 0.f);  // xhat = 0 everywhere
  for (float g : b.grad().to_vector()) REQUIRE(g == 6.f);  // 2 samples x 3 positions
}

TEST_CASE("group_norm: output statistics, and weight-only gradients", "[ops][norm]") {
  Generator gen(5);
  Tensor x = add(mul(gen.randn({3, 8, 6, 5}), 3.f), 50.f);
  NoGradGuard ng;
  // Without affine parameters every (n, g) of the output has mean 0 and variance var/(var + eps) ~ 1.
  std::vector<float> y = group_norm(x, 4, Tensor(), Tensor()).to_vector();
  for (int64_t r = 0; r < 3 * 4; ++r) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < 60; ++i) m += y[(size_t)(r * 60 + i)];
    m /= 60;
    for (int64_t i = 0; i < 60; ++i) v += (y[(size_t)(r * 60 + i)] - m) * (y[(size_t)(r * 60 + i)] - m);
    REQUIRE(std::fabs(m) < 1e-6);
    REQUIRE(v / 60 == Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("group_norm: the weight and bias gradients do not depend on whether x wants one", "[ops][norm]") {
  Generator gen(9);
  Tensor x0 = gen.randn({2, 6, 4, 4}), dy = gen.randn({2, 6, 4, 4});
  std::vector<float> dw[2], db[2];
  for (int with_dx = 0; with_dx < 2; ++with_dx) {
    Tensor x = x0.clone();
    if (with_dx) x.set_requires_grad();
    Tensor w = Tensor::full({6}, 1.5f).set_requires_grad(), b = Tensor::zeros({6}).set_requires_grad();
    backward(group_norm(x, 3, w, b), dy);
    REQUIRE(x.grad().defined() == (with_dx == 1));
    dw[with_dx] = w.grad().to_vector();
    db[with_dx] = b.grad().to_vector();
  }
  REQUIRE(dw[0] == dw[1]);
  REQUIRE(db[0] == db[1]);
}

TEST_CASE("group_norm: errors name the shapes", "[ops][norm]") {
  using Catch::Contains;
  Tensor x = Tensor::zeros({2, 6, 4});
  REQUIRE_THROWS_WITH(group_norm(x, 4, Tensor(), Tensor()), Contains("6 channels") && Contains("(2, 6, 4)") &&
                                                                 Contains("4 groups"));
  REQUIRE_THROWS_WITH(group_norm(x, 0, Tensor(), Tensor()), Contains("0 groups"));
  REQUIRE_THROWS_WITH(group_norm(x, 3, Tensor::ones({5}), Tensor()), Contains("weight (5)") && Contains("(6)"));
  REQUIRE_THROWS_WITH(group_norm(x, 3, Tensor(), Tensor::ones({6, 1})), Contains("bias (6, 1)"));
  REQUIRE_THROWS_WITH(group_norm(Tensor::zeros({6}), 3, Tensor(), Tensor()), Contains("(N, C, *spatial)"));
}

TEST_CASE("softmax: stable at +-1000, sums to one, errors name the dim", "[ops][norm]") {
  // Rows shifted by +-1000 give the same softmax as the unshifted row: exp is only ever taken of
  // x - max <= 0.
  Tensor base = Tensor::from_vector({0.5f, -1.f, 2.f, 0.f}, {1, 4});
  Tensor x = Tensor::from_vector({1000.5f, 999.f, 1002.f, 1000.f, -999.5f, -1001.f, -998.f, -1000.f}, {2, 4});
  std::vector<float> want = softmax(base).to_vector(), got = softmax(x).to_vector();
  for (size_t i = 0; i < 8; ++i) REQUIRE(got[i] == Approx(want[i % 4]).epsilon(1e-6));
  Generator gen(3);
  std::vector<float> y = softmax(mul(gen.randn({7, 33}), 5.f), 0).to_vector();
  for (int64_t i = 0; i < 33; ++i) {
    double s = 0;
    for (int64_t k = 0; k < 7; ++k) s += y[(size_t)(k * 33 + i)];
    REQUIRE(s == Approx(1.0).epsilon(1e-6));
  }
  REQUIRE_THROWS_WITH(softmax(Tensor::zeros({2, 3}), 2), Catch::Contains("dim 2") && Catch::Contains("(2, 3)"));
}

TEST_CASE("timestep_embedding: against the formula in double, records nothing", "[ops][norm]") {
  const std::vector<float> ts = {0.f, 1.f, 2.5f, 17.f, 250.f, 998.75f, 999.f};
  for (int dim : {2, 32, 128}) {
    Tensor t = Tensor::from_vector(ts, {(int64_t)ts.size()});
    Tensor e = timestep_embedding(t, dim);
    REQUIRE(e.shape() == Shape({(int64_t)ts.size(), dim}));
    std::vector<double> want;
    for (float tb : ts)
      for (int64_t j = 0; j < dim; ++j) want.push_back(embedding_ref(tb, j, dim));
    // One float32 rounding of a value in [-1, 1]: half an ulp of 1 is 6e-8.
    require_close("timestep_embedding dim " + std::to_string(dim), e.to_vector(), want, 6e-8, 0.0);
  }
  // t = 0: sin 0 = 0 and cos 0 = 1 exactly.
  std::vector<float> z = timestep_embedding(Tensor::zeros({1}), 8).to_vector();
  REQUIRE(z == std::vector<float>({0, 0, 0, 0, 1, 1, 1, 1}));
  // A leaf that requires grad still yields a constant: nothing on the tape.
  reset_tape();
  Tensor t = Tensor::from_vector({3.f, 7.f}, {2}).set_requires_grad();
  Tensor e = timestep_embedding(t, 16);
  REQUIRE(tape_size() == 0);
  REQUIRE_FALSE(e.requires_grad());
  REQUIRE_THROWS_WITH(timestep_embedding(t, 7), Catch::Contains("dim 7"));
  REQUIRE_THROWS_WITH(timestep_embedding(Tensor::zeros({2, 1}), 8), Catch::Contains("(2, 1)"));
}

TEST_CASE("timestep_embedding: CUDA matches CPU", "[ops][norm][cuda]") {
  if (!cuda_or_skip()) return;
  Generator gen(4);
  Tensor t = mul(gen.rand({64}), 999.f);
  std::vector<float> cpu = timestep_embedding(t, 32).to_vector();
  std::vector<float> gpu = timestep_embedding(t.to(Device::CUDA), 32).to_vector();
  require_close("timestep_embedding CUDA vs CPU", gpu, cpu, 1.2e-7, 0.0);  // both double: <= 1 float ulp
}

TEST_CASE("norm ops match PyTorch fixtures on CPU", "[ops][norm][fixtures]") { check_fixtures(Device::CPU); }
TEST_CASE("norm ops match PyTorch fixtures on CUDA", "[ops][norm][fixtures][cuda]") {
  if (!cuda_or_skip()) return;
  check_fixtures(Device::CUDA);
}
