// test_ops_reduce.cpp: sum, mean, max and logsumexp — op-table rows (forward vs a naive double
// reference, finite differences, CPU vs CUDA), hand-computed values, the parallel CPU paths at
// sizes above the threading grain, and the error messages.
//
// Reference for a reduction along dim d of x viewed as (outer, n, inner):
//   sum = sum_k x,  mean = sum / n,  max = max_k x,  logsumexp = m + log sum_k exp(x - m)
// all in double.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/rng.h"
#include "tests/op_table.h"

using namespace gt;
using namespace gt::test;
using Catch::Matchers::Contains;

namespace {

enum class Red { Sum, Mean, Max, LogSumExp };
const char* red_name(Red r) {
  switch (r) {
    case Red::Sum: return "sum";
    case Red::Mean: return "mean";
    case Red::Max: return "max";
    case Red::LogSumExp: return "logsumexp";
  }
  return "?";
}

struct Split3 {
  int64_t outer = 1, n = 1, inner = 1;
  Shape out;
};
Split3 split3(const Shape& s, int dim, bool keepdim) {
  const int d = dim < 0 ? dim + s.size() : dim;
  Split3 sp;
  sp.n = s[d];
  for (int i = 0; i < s.size(); ++i) {
    if (i < d) sp.outer *= s[i];
    if (i > d) sp.inner *= s[i];
    if (i != d) sp.out.push_back(s[i]);
    else if (keepdim) sp.out.push_back(1);
  }
  return sp;
}

double reduce_ref(Red r, const std::vector<double>& v) {
  switch (r) {
    case Red::Sum:
    case Red::Mean: {
      double s = 0;
      for (double x : v) s += x;
      return r == Red::Mean ? s / (double)v.size() : s;
    }
    case Red::Max: return *std::max_element(v.begin(), v.end());
    case Red::LogSumExp: {
      const double m = *std::max_element(v.begin(), v.end());
      double s = 0;
      for (double x : v) s += std::exp(x - m);
      return m + std::log(s);
    }
  }
  return 0;
}

// Naive reference: gathers each (o, i) slice along dim and reduces it in double.
RefResult ref_dim(Red r, const std::vector<double>& x, const Shape& shape, int dim, bool keepdim) {
  const Split3 sp = split3(shape, dim, keepdim);
  RefResult out{sp.out, {}};
  for (int64_t o = 0; o < sp.outer; ++o)
    for (int64_t i = 0; i < sp.inner; ++i) {
      std::vector<double> v;
      for (int64_t k = 0; k < sp.n; ++k) v.push_back(x[(size_t)((o * sp.n + k) * sp.inner + i)]);
      out.v.push_back(reduce_ref(r, v));
    }
  return out;
}

Tensor apply(Red r, const Tensor& x, int dim, bool keepdim) {
  switch (r) {
    case Red::Sum: return sum(x, dim, keepdim);
    case Red::Mean: return mean(x, dim, keepdim);
    case Red::Max: return max(x, dim, keepdim);
    case Red::LogSumExp: return logsumexp(x, dim, keepdim);
  }
  return Tensor();
}

// max is piecewise linear: away from ties its central difference is exact for any step, so the
// max rows use a small step (1e-4) — then a finite difference only crosses a kink when the two
// largest values of a slice lie within 2e-4, which "max rows: inputs have well-separated maxima"
// rules out for the fixed seeds. (The tolerances stay the defaults.)
constexpr double kMaxFdEps = 1e-4;
constexpr float kMaxInputRange = 10.f;  // uniform(-10, 10): spread keeps the top two values apart

struct DimCase {
  Shape shape;
  int dim;
  bool keepdim;
};
// Every dim of a 3-D and a 4-D tensor (odd sizes), positive and negative, keepdim both ways, and a
// reduction over a dim of size 1.
std::vector<DimCase> dim_cases() {
  std::vector<DimCase> c;
  const Shape s3{5, 7, 11}, s4{2, 3, 5, 7};
  for (int d = 0; d < 3; ++d) c.push_back({s3, d, d % 2 == 0});
  c.push_back({s3, -1, true});
  c.push_back({s3, -3, false});
  for (int d = 0; d < 4; ++d) c.push_back({s4, d, d % 2 == 1});
  c.push_back({s4, -2, false});
  c.push_back({Shape{5, 1, 7}, 1, false});
  c.push_back({Shape{13}, 0, false});
  c.push_back({Shape{13}, -1, true});
  return c;
}

std::string case_name(Red r, const DimCase& c) {
  return std::string(red_name(r)) + " " + c.shape.str() + " dim " + std::to_string(c.dim) +
         (c.keepdim ? " keepdim" : "");
}

OpRow dim_row(Red r, const DimCase& c) {
  OpRow row;
  row.name = case_name(r, c);
  row.inputs = {r == Red::Max ? uniform(c.shape, -kMaxInputRange, kMaxInputRange) : normal(c.shape)};
  const int dim = c.dim;
  const bool keepdim = c.keepdim;
  row.op = [r, dim, keepdim](const std::vector<Tensor>& in) { return apply(r, in[0], dim, keepdim); };
  row.ref = [r, dim, keepdim](const std::vector<HostTensor>& in) {
    return ref_dim(r, in[0].v, in[0].shape, dim, keepdim);
  };
  if (r == Red::Max) row.tol.fd_eps = kMaxFdEps;
  return row;
}

OpRow all_row(Red r, Shape shape) {
  OpRow row;
  row.name = std::string(red_name(r)) + " all " + shape.str();
  row.inputs = {normal(shape)};
  row.op = [r](const std::vector<Tensor>& in) { return r == Red::Mean ? mean(in[0]) : sum(in[0]); };
  row.ref = [r](const std::vector<HostTensor>& in) { return RefResult{Shape{}, {reduce_ref(r, in[0].v)}}; };
  return row;
}

std::vector<OpRow> rows() {
  std::vector<OpRow> rs;
  for (Shape s : {Shape{5, 7}, Shape{2, 3, 5, 7}, Shape{13}, Shape{}}) rs.push_back(all_row(Red::Sum, s));
  for (Shape s : {Shape{11, 13}, Shape{5, 1, 7}}) rs.push_back(all_row(Red::Mean, s));
  for (Red r : {Red::Sum, Red::Mean, Red::Max, Red::LogSumExp})
    for (const DimCase& c : dim_cases()) rs.push_back(dim_row(r, c));

  // logsumexp far from 0: exp(90..100) overflows float32, so only the max-subtracted form works;
  // and exp(-100) underflows to 0, where a naive log(sum exp) gives -inf.
  for (auto range : {std::pair<float, float>{90.f, 100.f}, std::pair<float, float>{-100.f, -90.f}}) {
    OpRow row = dim_row(Red::LogSumExp, {Shape{5, 7}, 1, false});
    row.name = "logsumexp (5, 7) dim 1, inputs in [" + std::to_string((int)range.first) + ", " +
               std::to_string((int)range.second) + ")";
    row.inputs = {uniform(Shape{5, 7}, range.first, range.second)};
    rs.push_back(row);
  }
  return rs;
}

std::vector<float> grad_of(const Tensor& x) { return x.grad().to_vector(); }

}  // namespace

TEST_CASE("op table: reduce", "[ops]") { run_op_table(rows()); }

TEST_CASE("op table: reduce cpu vs cuda", "[ops][cuda]") { run_op_table_cuda(rows()); }

TEST_CASE("max rows: inputs have well-separated maxima", "[ops]") {
  // Precondition of the max rows' finite differences (see kMaxFdEps).
  for (const DimCase& c : dim_cases()) {
    OpRow row = dim_row(Red::Max, c);
    std::vector<double> x;
    for (float f : make_inputs(row, Device::CPU)[0].to_vector()) x.push_back(f);
    const Split3 sp = split3(c.shape, c.dim, c.keepdim);
    for (int64_t o = 0; o < sp.outer; ++o)
      for (int64_t i = 0; i < sp.inner; ++i) {
        std::vector<double> v;
        for (int64_t k = 0; k < sp.n; ++k) v.push_back(x[(size_t)((o * sp.n + k) * sp.inner + i)]);
        if (v.size() < 2) continue;
        std::sort(v.rbegin(), v.rend());
        INFO(row.name << ": slice (" << o << ", " << i << ") top two values " << v[0] << ", " << v[1]);
        REQUIRE(v[0] - v[1] > 2 * kMaxFdEps);
      }
  }
}

TEST_CASE("sum and mean: hand-computed values", "[ops]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  CHECK(sum(x).shape() == Shape{});
  CHECK(sum(x).item() == 10.f);
  CHECK(mean(x).item() == 2.5f);
  CHECK(sum(x, 0).to_vector() == std::vector<float>{4, 6});
  CHECK(sum(x, 1).to_vector() == std::vector<float>{3, 7});
  CHECK(sum(x, -1).to_vector() == std::vector<float>{3, 7});
  CHECK(sum(x, 0, true).shape() == Shape{1, 2});
  CHECK(sum(x, 1, true).shape() == Shape{2, 1});
  CHECK(sum(x, 1).shape() == Shape{2});
  CHECK(mean(x, 1).to_vector() == std::vector<float>{1.5f, 3.5f});
  CHECK(mean(x, 0, true).to_vector() == std::vector<float>{2, 3});

  // d mean / dx = 1/n everywhere; d sum(x, 0)[j] / dx[i, j] = 1.
  Tensor w = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).set_requires_grad();
  backward(mean(w));
  CHECK(grad_of(w) == std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f});
  w.zero_grad();
  backward(sum(w, 0), Tensor::from_vector({10, 20}, {2}));
  CHECK(grad_of(w) == std::vector<float>{10, 20, 10, 20});
}

TEST_CASE("logsumexp: stable for large and infinite values", "[ops]") {
  Tensor big = Tensor::from_vector({1000, 1000}, {2}).set_requires_grad();
  Tensor y = logsumexp(big, 0);
  REQUIRE(std::isfinite(y.item()));
  CHECK(y.item() == Approx(1000.0 + std::log(2.0)).epsilon(1e-7));
  backward(y);
  // softmax of two equal values, 1/2 each — up to the float32 rounding of y: ulp(1000) = 6e-5, so
  // exp(x - y) carries a relative error of ~3e-5.
  for (float g : grad_of(big)) CHECK(g == Approx(0.5).epsilon(1e-4));

  CHECK(logsumexp(Tensor::from_vector({-1000, -1000}, {2}), 0).item() ==
        Approx(-1000.0 + std::log(2.0)).epsilon(1e-7));
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(logsumexp(Tensor::from_vector({-inf, 0.f}, {2}), 0).item() == 0.f);
  CHECK(logsumexp(Tensor::from_vector({-inf, -inf}, {2}), 0).item() == -inf);  // log 0, not NaN
  CHECK(logsumexp(Tensor::from_vector({1.f, inf}, {2}), 0).item() == inf);
  // Along a middle dim: logsumexp over k of x[o, k, i] with x = [[0, 1], [ln 3, 2]] per o.
  Tensor m = Tensor::from_vector({0.f, 1.f, std::log(3.f), 2.f}, {1, 2, 2});
  std::vector<float> v = logsumexp(m, 1).to_vector();
  CHECK(v[0] == Approx(std::log(4.0)));
  CHECK(v[1] == Approx(std::log(std::exp(1.0) + std::exp(2.0))));
}

TEST_CASE("max: value, keepdim, and the gradient goes to the first maximum", "[ops]") {
  Tensor x = Tensor::from_vector({1, 3, 3, 2}, {4}).set_requires_grad();
  Tensor y = max(x, 0);
  CHECK(y.shape() == Shape{});
  CHECK(y.item() == 3.f);
  backward(y);
  CHECK(grad_of(x) == std::vector<float>{0, 1, 0, 0});

  // Along dim 0 of [[5, 1], [5, 2]]: column 0 ties (first row wins), column 1 picks row 1.
  Tensor m = Tensor::from_vector({5, 1, 5, 2}, {2, 2}).set_requires_grad();
  Tensor ym = max(m, 0, true);
  CHECK(ym.shape() == Shape{1, 2});
  CHECK(ym.to_vector() == std::vector<float>{5, 2});
  backward(ym, Tensor::from_vector({7, 9}, {1, 2}));
  CHECK(grad_of(m) == std::vector<float>{7, 0, 0, 9});

  // Equal maxima along the last dim, and an all -inf row (its first element is the maximum).
  const float inf = std::numeric_limits<float>::infinity();
  Tensor r = Tensor::from_vector({2, 4, 4, -inf, -inf, -inf}, {2, 3}).set_requires_grad();
  backward(max(r, 1), Tensor::from_vector({1, 1}, {2}));
  CHECK(grad_of(r) == std::vector<float>{0, 1, 0, 1, 0, 0});

  // NaN propagates (as torch.max does).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(max(Tensor::from_vector({1, nan, 3}, {3}), 0).item()));
}

TEST_CASE("reductions: errors name the dim and the shape", "[ops]") {
  Tensor x = Tensor::zeros({2, 3});
  REQUIRE_THROWS_AS(sum(x, 2), Error);
  REQUIRE_THROWS_WITH(sum(x, 2), Contains("dim 2") && Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(mean(x, -3), Contains("dim -3") && Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(max(x, 5, true), Contains("max") && Contains("dim 5"));
  REQUIRE_THROWS_WITH(logsumexp(x, -4), Contains("logsumexp") && Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(max(Tensor::zeros({3, 0}), 1), Contains("size 0"));
  REQUIRE_THROWS_WITH(sum(Tensor(), 0), Contains("undefined"));
}

// Sizes above kElementwiseGrain, so the CPU kernels run their threaded paths (chunk boundaries in
// the middle of rows and tiles), compared with the double reference.
TEST_CASE("reductions: large shapes on the CPU threaded paths", "[ops]") {
  Generator gen(7);
  SECTION("sum of all elements") {
    Tensor x = gen.randn({1000003});
    double s = 0;
    for (float f : x.to_vector()) s += f;
    CHECK(sum(x).item() == Approx(s).epsilon(1e-6));
    CHECK(mean(x).item() == Approx(s / 1000003).epsilon(1e-5).margin(1e-9));
    Tensor w = x.clone().set_requires_grad();
    backward(mean(w));
    std::vector<float> g = grad_of(w);
    CHECK(*std::min_element(g.begin(), g.end()) == 1.0f / 1000003);
    CHECK(*std::max_element(g.begin(), g.end()) == 1.0f / 1000003);
  }
  for (int dim : {0, 1, 2}) {
    DYNAMIC_SECTION("dim " << dim << " of (37, 301, 9)") {
      const Shape shape{37, 301, 9};
      Tensor x = gen.randn(shape);
      std::vector<double> xd;
      for (float f : x.to_vector()) xd.push_back(f);
      for (Red r : {Red::Sum, Red::Mean, Red::Max, Red::LogSumExp}) {
        RefResult want = ref_dim(r, xd, shape, dim, false);
        require_close(std::string(red_name(r)) + " dim " + std::to_string(dim), apply(r, x, dim, false).to_vector(),
                      want.v, 1e-4, 1e-4);
      }
      // Backward: sum broadcasts dout along dim; logsumexp multiplies it by the softmax.
      const Split3 sp = split3(shape, dim, false);
      Tensor dout = gen.randn(sp.out);
      std::vector<float> g = dout.to_vector();
      Tensor a = x.clone().set_requires_grad();
      backward(sum(a, dim), dout);
      Tensor b = x.clone().set_requires_grad();
      Tensor lse = logsumexp(b, dim);
      std::vector<float> lv = lse.to_vector();
      backward(lse, dout);
      std::vector<double> want_sum, want_lse;
      for (int64_t j = 0; j < x.numel(); ++j) {
        const int64_t o = j / (sp.n * sp.inner), i = j % sp.inner;
        want_sum.push_back(g[(size_t)(o * sp.inner + i)]);
        want_lse.push_back(std::exp(xd[(size_t)j] - (double)lv[(size_t)(o * sp.inner + i)]) * g[(size_t)(o * sp.inner + i)]);
      }
      require_close("sum backward", grad_of(a), want_sum, 1e-7, 0);  // exact: 0 + dout
      require_close("logsumexp backward", grad_of(b), want_lse, 1e-6, 1e-4);
    }
  }
}

// Shapes that exercise every CUDA launch shape: the two-pass full sum, block-per-row (n >= 1024)
// and warp-per-row rows, and the per-output column kernel — forward and backward against the CPU.
TEST_CASE("reductions: large shapes cpu vs cuda", "[ops][cuda]") {
  if (!cuda_or_skip()) return;
  Generator gen(11);
  struct Case {
    Shape shape;
    int dim;
  };
  for (const Case& c : {Case{{3, 5000}, 1}, Case{{2000, 37}, 1}, Case{{37, 301, 9}, 1}, Case{{1000003}, 0}}) {
    Tensor xc = gen.randn(c.shape);
    for (Red r : {Red::Sum, Red::Mean, Red::Max, Red::LogSumExp}) {
      DYNAMIC_SECTION(red_name(r) << " " << c.shape << " dim " << c.dim) {
        std::vector<Tensor> res[2];
        for (int d = 0; d < 2; ++d) {
          Tensor x = xc.to(d ? Device::CUDA : Device::CPU).clone().set_requires_grad();
          Tensor y = apply(r, x, c.dim, false);
          Generator g2(5);
          backward(y, g2.randn(y.shape(), x.device()));
          res[d] = {y, x.grad()};
        }
        require_close("forward", res[1][0].to_vector(), res[0][0].to_vector(), 1e-3, 1e-4);
        require_close("backward", res[1][1].to_vector(), res[0][1].to_vector(), 1e-5, 1e-4);
      }
    }
    DYNAMIC_SECTION("sum all " << c.shape) {
      Tensor s_cpu = sum(xc), s_gpu = sum(xc.to(Device::CUDA));
      require_close("sum all", s_gpu.to_vector(), s_cpu.to_vector(), 1e-3, 1e-5);
    }
  }
}
