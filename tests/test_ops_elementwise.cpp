// test_ops_elementwise.cpp: the elementwise ops — binary with broadcasting, scalar arithmetic and
// the unary maps. One op-table row per op and broadcast pattern (forward vs a double reference,
// finite differences, CPU vs CUDA), hand-computed values at kinks and extremes, large tensors that
// take the parallel and chunked-reduction paths, and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <sstream>

#include "core/rng.h"
#include "kernels/elementwise.h"
#include "tests/op_table.h"

using namespace gt;
using namespace gt::test;

namespace {

using Fn1 = std::function<double(double)>;
using Fn2 = std::function<double(double, double)>;

RefFn unary_ref(Fn1 f) {
  return [f](const std::vector<HostTensor>& in) {
    RefResult r{in[0].shape, {}};
    for (double v : in[0].v) r.v.push_back(f(v));
    return r;
  };
}

// NumPy broadcasting written out independently of the kernels: align from the right; a size-1
// (or missing) dim reads index 0. Returns the out shape and, per out element, the flat indices
// into a and b.
struct BroadcastRef {
  Shape out;
  std::vector<int64_t> ia, ib;
};
BroadcastRef broadcast_ref(const Shape& sa, const Shape& sb) {
  const int n = std::max(sa.size(), sb.size());
  auto dim = [n](const Shape& s, int d) { return d - (n - s.size()) < 0 ? (int64_t)1 : s[d - (n - s.size())]; };
  BroadcastRef r;
  for (int d = 0; d < n; ++d) r.out.push_back(std::max(dim(sa, d), dim(sb, d)));
  for (int64_t f = 0; f < r.out.numel(); ++f) {
    std::vector<int64_t> idx = unravel(f, r.out);
    for (int which = 0; which < 2; ++which) {
      const Shape& s = which == 0 ? sa : sb;
      std::vector<int64_t> own;
      for (int d = n - s.size(); d < n; ++d) own.push_back(dim(s, d) == 1 ? 0 : idx[(size_t)d]);
      (which == 0 ? r.ia : r.ib).push_back(ravel(own, s));
    }
  }
  return r;
}

RefFn binary_ref(Fn2 f) {
  return [f](const std::vector<HostTensor>& in) {
    BroadcastRef br = broadcast_ref(in[0].shape, in[1].shape);
    RefResult r{br.out, {}};
    for (size_t i = 0; i < br.ia.size(); ++i) r.v.push_back(f(in[0].v[(size_t)br.ia[i]], in[1].v[(size_t)br.ib[i]]));
    return r;
  };
}

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TensorFn op2(Tensor (*f)(const Tensor&, const Tensor&)) {
  return [f](const std::vector<Tensor>& in) { return f(in[0], in[1]); };
}
TensorFn op1(std::function<Tensor(const Tensor&)> f) {
  return [f](const std::vector<Tensor>& in) { return f(in[0]); };
}

// Denominators (div, rdiv) and the inputs of log/sqrt/pow stay in [0.75, 2): away from the pole
// at 0, where the O(eps^2) truncation error of the central difference (eps = 1e-2) would grow
// like 1/x^4.
InputSpec denominator(Shape s) { return away_from_zero(s, 0.75f, 2.0f); }
InputSpec positive(Shape s) { return uniform(s, 0.75f, 2.0f); }

// The broadcast patterns every binary op is tested with (a's spec, b's spec), named.
struct Pattern {
  const char* name;
  Shape a, b;
};
const std::vector<Pattern>& patterns() {
  static const std::vector<Pattern> p = {
      {"same (5,7)", {5, 7}, {5, 7}},
      {"row (7,13) (13)", {7, 13}, {13}},
      {"left row (13) (7,13)", {13}, {7, 13}},
      {"column (5,7) (5,1)", {5, 7}, {5, 1}},
      {"outer (5,1) (1,7)", {5, 1}, {1, 7}},
      {"channel (2,3,5,7) (1,3,1,1)", {2, 3, 5, 7}, {1, 3, 1, 1}},
      {"scalar () (5,7)", {}, {5, 7}},
      {"scalar (5,7) ()", {5, 7}, {}},
      {"general (2,1,5,1) (3,1,7)", {2, 1, 5, 1}, {3, 1, 7}},
      {"one-element (1,1) (7)", {1, 1}, {7}},
  };
  return p;
}

std::vector<OpRow> rows() {
  std::vector<OpRow> r;
  // ---- binary, every broadcast pattern ----
  for (const Pattern& p : patterns()) {
    const std::string n = p.name;
    r.push_back({"add " + n, {normal(p.a), normal(p.b)}, op2(add), binary_ref([](double a, double b) { return a + b; })});
    r.push_back({"sub " + n, {normal(p.a), normal(p.b)}, op2(sub), binary_ref([](double a, double b) { return a - b; })});
    r.push_back({"mul " + n, {normal(p.a), normal(p.b)}, op2(mul), binary_ref([](double a, double b) { return a * b; })});
    r.push_back({"div " + n, {normal(p.a), denominator(p.b)}, op2(div),
                 binary_ref([](double a, double b) { return a / b; })});
  }
  // The same tensor on both sides: both partials accumulate into one gradient buffer.
  r.push_back({"mul self x*x (11,13)", {normal({11, 13})},
               [](const std::vector<Tensor>& in) { return mul(in[0], in[0]); },
               unary_ref([](double x) { return x * x; })});
  r.push_back({"div self x/x (5,7)", {denominator({5, 7})},
               [](const std::vector<Tensor>& in) { return div(in[0], in[0]); }, unary_ref([](double) { return 1.0; })});

  // ---- scalar arithmetic (and the operator sugar built on it) ----
  r.push_back({"add scalar x+2.5", {normal({5, 7})}, op1([](const Tensor& x) { return add(x, 2.5f); }),
               unary_ref([](double x) { return x + 2.5; })});
  r.push_back({"mul scalar x*-1.5", {normal({5, 7})}, op1([](const Tensor& x) { return mul(x, -1.5f); }),
               unary_ref([](double x) { return x * -1.5; })});
  r.push_back({"rsub 3-x", {normal({5, 7})}, op1([](const Tensor& x) { return rsub(x, 3.f); }),
               unary_ref([](double x) { return 3.0 - x; })});
  r.push_back({"rdiv 2/x", {denominator({5, 7})}, op1([](const Tensor& x) { return rdiv(x, 2.f); }),
               unary_ref([](double x) { return 2.0 / x; })});
  r.push_back({"operators (1 - x) / 4 + 2 / x - -x", {denominator({11, 13})},
               op1([](const Tensor& x) { return (1.f - x) / 4.f + 2.f / x - (-x); }),
               unary_ref([](double x) { return (1.0 - x) / 4.0 + 2.0 / x + x; })});

  // ---- unary ----
  r.push_back({"neg", {normal({5, 7})}, op1(neg), unary_ref([](double x) { return -x; })});
  r.push_back({"exp", {normal({5, 7})}, op1(gt::exp), unary_ref([](double x) { return std::exp(x); })});
  r.push_back({"log", {positive({5, 7})}, op1(gt::log), unary_ref([](double x) { return std::log(x); })});
  r.push_back({"sqrt", {positive({5, 7})}, op1(gt::sqrt), unary_ref([](double x) { return std::sqrt(x); })});
  r.push_back({"square", {normal({11, 13})}, op1(square), unary_ref([](double x) { return x * x; })});
  for (float p : {3.0f, 2.5f, 0.5f, -1.5f}) {
    std::ostringstream name;
    name << "pow x^" << p;
    r.push_back({name.str(), {positive({5, 7})},
                 op1([p](const Tensor& x) { return gt::pow(x, p); }),
                 unary_ref([p](double x) { return std::pow(x, (double)p); })});
  }
  r.push_back({"pow x^3 on negatives", {normal({5, 7})}, op1([](const Tensor& x) { return gt::pow(x, 3.f); }),
               unary_ref([](double x) { return x * x * x; })});
  r.push_back({"abs", {away_from_zero({5, 7})}, op1(gt::abs), unary_ref([](double x) { return std::fabs(x); })});
  r.push_back({"relu", {away_from_zero({11, 13})}, op1(relu), unary_ref([](double x) { return x > 0 ? x : 0.0; })});
  r.push_back({"leaky_relu default slope", {away_from_zero({5, 7})}, op1([](const Tensor& x) { return leaky_relu(x); }),
               unary_ref([](double x) { return x > 0 ? x : 0.01 * x; })});
  r.push_back({"leaky_relu slope 0.2", {away_from_zero({5, 7})},
               op1([](const Tensor& x) { return leaky_relu(x, 0.2f); }),
               unary_ref([](double x) { return x > 0 ? x : (double)0.2f * x; })});
  // Wide inputs (stddev 3-5) reach the saturated tails where the stable forms matter.
  r.push_back({"sigmoid", {normal({11, 13}, 3.f)}, op1(sigmoid), unary_ref(sigmoid_d)});
  r.push_back({"tanh", {normal({11, 13}, 2.f)}, op1(gt::tanh), unary_ref([](double x) { return std::tanh(x); })});
  r.push_back({"silu", {normal({11, 13}, 3.f)}, op1(silu), unary_ref([](double x) { return x * sigmoid_d(x); })});
  r.push_back({"softplus", {normal({11, 13}, 5.f)}, op1(softplus),
               unary_ref([](double x) { return std::log1p(std::exp(x)); })});
  // A chain, so gradients flow through non-leaf tensors.
  r.push_back({"chain tanh(x*y + 1) * sigmoid(y)", {normal({5, 7}), normal({7})},
               [](const std::vector<Tensor>& in) { return mul(gt::tanh(add(mul(in[0], in[1]), 1.f)), sigmoid(in[1])); },
               binary_ref([](double x, double y) { return std::tanh(x * y + 1) * sigmoid_d(y); })});
  return r;
}

// ---- large tensors: the parallel loops and the chunked reductions ----

// Forward vs double on tensors past kElementwiseGrain (32768), so parallel_for really splits, and
// gradients vs a double reference (gradcheck would need two forward passes per element). The
// gradient of a broadcast operand sums up to ~160K float terms, whose rounding (in a different
// order from the double reference) grows like sqrt(n) * 2^-24 * sum|terms|: 1e-3 absolute covers it
// for these O(1) inputs, with the usual 1e-4 relative.
constexpr double kLargeAtol = 1e-3, kLargeRtol = 1e-4;

struct LargeRow {
  OpRow row;
  Fn1 d1;        // unary: f'(x)
  Fn2 da, db;    // binary: partials
};

std::vector<LargeRow> large_rows() {
  Tolerance tol;
  tol.fwd_atol = kLargeAtol;
  tol.fwd_rtol = kLargeRtol;
  tol.dev_atol = kLargeAtol;  // CPU and CUDA sum the broadcast gradients in different orders
  tol.dev_rtol = kLargeRtol;
  auto mul_ref = binary_ref([](double a, double b) { return a * b; });
  Fn2 mul_da = [](double, double b) { return b; }, mul_db = [](double a, double) { return a; };
  std::vector<LargeRow> r;
  r.push_back({{"large mul same (257,263)", {normal({257, 263}), normal({257, 263})}, op2(mul), mul_ref, tol}, {}, mul_da, mul_db});
  r.push_back({{"large mul row (601,263) (263)", {normal({601, 263}), normal({263})}, op2(mul), mul_ref, tol}, {}, mul_da, mul_db});
  r.push_back({{"large mul left row (263) (601,263)", {normal({263}), normal({601, 263})}, op2(mul), mul_ref, tol}, {}, mul_da, mul_db});
  r.push_back({{"large mul column (601,263) (601,1)", {normal({601, 263}), normal({601, 1})}, op2(mul), mul_ref, tol}, {}, mul_da, mul_db});
  r.push_back({{"large mul outer (601,1) (1,263)", {normal({601, 1}), normal({1, 263})}, op2(mul), mul_ref, tol}, {}, mul_da, mul_db});
  r.push_back({{"large mul channel (4,16,61,41) (1,16,1,1)", {normal({4, 16, 61, 41}), normal({1, 16, 1, 1})}, op2(mul), mul_ref, tol}, {}, mul_da, mul_db});
  r.push_back({{"large mul scalar () (601,263)", {normal({}), normal({601, 263})}, op2(mul), mul_ref, tol}, {}, mul_da, mul_db});
  r.push_back({{"large sub row (601,263) (263)", {normal({601, 263}), normal({263})}, op2(sub),
                binary_ref([](double a, double b) { return a - b; }), tol},
               {}, [](double, double) { return 1.0; }, [](double, double) { return -1.0; }});
  r.push_back({{"large div general (3,1,97,1) (5,1,131)", {normal({3, 1, 97, 1}), denominator({5, 1, 131})}, op2(div),
                binary_ref([](double a, double b) { return a / b; }), tol},
               {}, [](double, double b) { return 1.0 / b; }, [](double a, double b) { return -a / (b * b); }});
  r.push_back({{"large sigmoid (257,263)", {normal({257, 263}, 3.f)}, op1(sigmoid), unary_ref(sigmoid_d), tol},
               [](double x) { return sigmoid_d(x) * (1 - sigmoid_d(x)); }, {}, {}});
  r.push_back({{"large softplus (257,263)", {normal({257, 263}, 5.f)}, op1(softplus),
                unary_ref([](double x) { return std::log1p(std::exp(x)); }), tol},
               sigmoid_d, {}, {}});
  return r;
}

// One backward with a random seed w, compared with the double reference
// dx[idx(i)] += w[i] * partial(inputs at i).
void check_large_gradients(const LargeRow& lr) {
  std::vector<Tensor> in = make_inputs(lr.row, Device::CPU);
  for (Tensor& t : in) t.set_requires_grad(true);
  reset_tape();
  Tensor y = lr.row.op(in);
  Generator gen(7);
  Tensor w = gen.randn(y.shape());
  backward(y, w);
  std::vector<HostTensor> h = to_host(in);
  std::vector<float> wv = w.to_vector();
  std::vector<std::vector<double>> want;
  for (const HostTensor& t : h) want.emplace_back(t.v.size(), 0.0);
  if (in.size() == 1) {
    for (size_t i = 0; i < wv.size(); ++i) want[0][i] += wv[i] * lr.d1(h[0].v[i]);
  } else {
    BroadcastRef br = broadcast_ref(h[0].shape, h[1].shape);
    for (size_t i = 0; i < wv.size(); ++i) {
      const double a = h[0].v[(size_t)br.ia[i]], b = h[1].v[(size_t)br.ib[i]];
      want[0][(size_t)br.ia[i]] += wv[i] * lr.da(a, b);
      want[1][(size_t)br.ib[i]] += wv[i] * lr.db(a, b);
    }
  }
  for (size_t k = 0; k < in.size(); ++k) {
    REQUIRE(in[k].grad().defined());
    require_close(lr.row.name + " gradient of input " + std::to_string(k) + " vs double reference",
                  in[k].grad().to_vector(), want[k], kLargeAtol, kLargeRtol);
  }
}

std::vector<float> grad_of(const Tensor& x) { return x.grad().to_vector(); }

}  // namespace

TEST_CASE("op table: elementwise", "[ops]") { run_op_table(rows()); }

TEST_CASE("op table: elementwise cpu vs cuda", "[ops][cuda]") {
  run_op_table_cuda(rows());
  std::vector<OpRow> large;
  for (const LargeRow& lr : large_rows()) large.push_back(lr.row);
  run_op_table_cuda(large);
}

TEST_CASE("elementwise: large tensors (parallel loops, chunked reductions)", "[ops]") {
  for (const LargeRow& lr : large_rows()) {
    DYNAMIC_SECTION(lr.row.name << " forward") { check_forward(lr.row); }
    DYNAMIC_SECTION(lr.row.name << " backward") { check_large_gradients(lr); }
  }
}

TEST_CASE("elementwise: broadcast plans take the fast paths", "[ops]") {
  using K = BroadcastPlan;
  CHECK(make_broadcast_plan({5, 7}, {5, 7}).kind == K::Same);
  CHECK(make_broadcast_plan({1, 1}, {7}).kind == K::ScalarA);
  CHECK(make_broadcast_plan({}, {5, 7}).kind == K::ScalarA);
  CHECK(make_broadcast_plan({5, 7}, {}).kind == K::ScalarB);
  CHECK(make_broadcast_plan({7, 13}, {13}).kind == K::RowB);
  CHECK(make_broadcast_plan({7, 13}, {1, 13}).kind == K::RowB);
  CHECK(make_broadcast_plan({13}, {7, 13}).kind == K::RowA);
  CHECK(make_broadcast_plan({4, 7, 13}, {13}).kind == K::RowB);  // (28, 13) after merging
  CHECK(make_broadcast_plan({2, 3, 5, 7}, {1, 3, 1, 1}).kind == K::ChannelB);
  CHECK(make_broadcast_plan({3, 1, 1}, {2, 3, 5, 7}).kind == K::ChannelA);
  CHECK(make_broadcast_plan({5, 1}, {1, 7}).kind == K::General);
  CHECK(make_broadcast_plan({5, 7}, {5, 1}).kind == K::General);
  BroadcastPlan c = make_broadcast_plan({2, 3, 5, 7}, {1, 3, 1, 1});
  REQUIRE(c.ndim == 3);
  CHECK(c.shape[0] == 2);
  CHECK(c.shape[1] == 3);
  CHECK(c.shape[2] == 35);
  CHECK(make_broadcast_plan({2, 3, 5, 7}, {2, 3, 5, 7}).ndim == 1);  // merged to (210)

  ReducePlan row = make_reduce_plan({7, 13}, {13});
  CHECK(row.inner_kept);
  CHECK(row.n_out == 13);
  CHECK(row.n_red == 7);
  ReducePlan chan = make_reduce_plan({2, 3, 5, 7}, {1, 3, 1, 1});
  CHECK_FALSE(chan.inner_kept);
  CHECK(chan.nk == 1);
  CHECK(chan.nr == 2);
  CHECK(chan.n_red == 70);
  CHECK(make_reduce_plan({1, 5, 7}, {5, 7}).n_red == 1);
  REQUIRE_THROWS_WITH(make_reduce_plan({5, 7}, {3}), Catch::Contains("(3)") && Catch::Contains("(5, 7)"));
}

TEST_CASE("elementwise: the CUDA kernels' index maps and reduction bodies, run on the CPU", "[ops]") {
  // The GT_HD per-thread bodies the CUDA kernels run, checked here against the independent
  // broadcast reference so a build without a GPU still covers their index arithmetic.
  std::vector<Pattern> ps = patterns();
  ps.push_back({"row (4,7,13) (13)", {4, 7, 13}, {13}});
  ps.push_back({"channel (3,1,1) (2,3,5,7)", {3, 1, 1}, {2, 3, 5, 7}});
  ps.push_back({"both middle (3,1,5,1,2) (1,4,1,6,1)", {3, 1, 5, 1, 2}, {1, 4, 1, 6, 1}});
  for (const Pattern& pt : ps) {
    INFO(pt.name);
    const BroadcastPlan p = make_broadcast_plan(pt.a, pt.b);
    const BroadcastRef br = broadcast_ref(pt.a, pt.b);
    REQUIRE(p.n == br.out.numel());
    int64_t wrong_fast = 0, wrong_general = 0;
    for (int64_t i = 0; i < p.n; ++i) {
      int64_t ia, ib, ga, gb;
      if (p.kind == BroadcastPlan::Same) {
        detail::SameIndex{}.map(i, ia, ib);
      } else if (p.kind == BroadcastPlan::General) {
        detail::GeneralIndex{p}.map(i, ia, ib);
      } else {
        detail::pattern_index(p).map(i, ia, ib);
      }
      detail::GeneralIndex{p}.map(i, ga, gb);  // valid for every plan
      wrong_fast += ia != br.ia[(size_t)i] || ib != br.ib[(size_t)i];
      wrong_general += ga != br.ia[(size_t)i] || gb != br.ib[(size_t)i];
    }
    CHECK(wrong_fast == 0);
    CHECK(wrong_general == 0);

    // Small integers, so every float sum below is exact whatever its order.
    std::vector<float> g((size_t)p.n);
    for (size_t i = 0; i < g.size(); ++i) g[i] = (float)(i % 17);
    for (int which = 0; which < 2; ++which) {
      const Shape& xs = which == 0 ? pt.a : pt.b;
      const std::vector<int64_t>& map = which == 0 ? br.ia : br.ib;
      std::vector<float> want((size_t)xs.numel(), 0.f);
      for (size_t i = 0; i < g.size(); ++i) want[(size_t)map[i]] += g[i];
      const ReducePlan rp = make_reduce_plan(br.out, xs);
      REQUIRE(rp.n_out * rp.n_red == p.n);
      if (rp.n_red == 1) continue;  // the axpy path
      for (int64_t R : {1, 3}) {  // thread kernel, with and without partial chunks
        std::vector<float> got((size_t)rp.n_out, 0.f);
        for (int64_t j = 0; j < rp.n_out; ++j)
          for (int64_t rc = 0; rc < R; ++rc)
            got[(size_t)j] += detail::reduce_range_sum(g.data(), rp, j, rp.n_red * rc / R, rp.n_red * (rc + 1) / R);
        CHECK(got == want);
      }
      std::vector<float> got((size_t)rp.n_out, 0.f);  // block kernel's per-element offsets
      for (int64_t j = 0; j < rp.n_out; ++j)
        for (int64_t r = 0; r < rp.n_red; ++r)
          got[(size_t)j] += g[(size_t)(detail::strided_offset(j, rp.nk, rp.kshape, rp.kstride) +
                                       detail::strided_offset(r, rp.nr, rp.rshape, rp.rstride))];
      CHECK(got == want);
    }
  }
}

TEST_CASE("elementwise: relu, abs, leaky_relu at and around zero", "[ops]") {
  Tensor x = Tensor::from_vector({-1, 0, 2}, {3}).set_requires_grad();
  Tensor y = relu(x);
  CHECK(y.to_vector() == std::vector<float>{0, 0, 2});
  backward(y, Tensor::ones({3}));
  CHECK(grad_of(x) == std::vector<float>{0, 0, 1});  // relu'(0) = 0

  Tensor a = Tensor::from_vector({-2, 0, 3}, {3}).set_requires_grad();
  Tensor ya = gt::abs(a);
  CHECK(ya.to_vector() == std::vector<float>{2, 0, 3});
  backward(ya, Tensor::ones({3}));
  CHECK(grad_of(a) == std::vector<float>{-1, 0, 1});  // abs'(0) = 0

  Tensor l = Tensor::from_vector({-2, 0, 3}, {3}).set_requires_grad();
  Tensor yl = leaky_relu(l, 0.25f);
  CHECK(yl.to_vector() == std::vector<float>{-0.5f, 0, 3});
  backward(yl, Tensor::ones({3}));
  CHECK(grad_of(l) == std::vector<float>{0.25f, 0.25f, 1});  // PyTorch's convention at 0: the slope
}

TEST_CASE("elementwise: stable at extreme inputs", "[ops]") {
  const std::vector<float> xs = {-100, -20, 0, 20, 100};
  // Values are checked relatively, down to the denormals e^-100 ~ 4e-44 is stored in (spacing
  // 1.4e-45, hence the tiny margin). Derivatives written through the output, like y (1 - y) for
  // sigmoid, lose what float cannot hold next to 1: sigmoid'(20) = 2e-9 comes out 0 (as in
  // PyTorch), so they get an absolute margin of one float ulp at 1.
  const double kRel = 1e-5, kDenormal = 1e-40, kNearOne = 1.2e-7;
  auto run = [&](std::function<Tensor(const Tensor&)> f, Fn1 ref, Fn1 dref, const char* what) {
    INFO(what);
    Tensor x = Tensor::from_vector(xs, {5}).set_requires_grad();
    Tensor y = f(x);
    backward(y, Tensor::ones({5}));
    std::vector<float> yv = y.to_vector(), gv = grad_of(x);
    for (size_t i = 0; i < xs.size(); ++i) {
      INFO("x = " << xs[i] << ": y = " << yv[i] << ", dy/dx = " << gv[i]);
      REQUIRE(std::isfinite(yv[i]));
      REQUIRE(std::isfinite(gv[i]));
      CHECK(yv[i] == Approx(ref(xs[i])).epsilon(kRel).margin(kDenormal));
      CHECK(gv[i] == Approx(dref(xs[i])).epsilon(kRel).margin(kNearOne));
    }
  };
  run(softplus, [](double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }, sigmoid_d, "softplus");
  run(sigmoid, sigmoid_d, [](double x) { return sigmoid_d(x) * (1 - sigmoid_d(x)); }, "sigmoid");
  run(gt::tanh, [](double x) { return std::tanh(x); }, [](double x) { return 1 - std::tanh(x) * std::tanh(x); }, "tanh");
  run(silu, [](double x) { return x * sigmoid_d(x); },
      [](double x) { return sigmoid_d(x) * (1 + x * (1 - sigmoid_d(x))); }, "silu");

  Tensor big = softplus(Tensor::scalar(100.f));
  CHECK(big.item() == 100.f);
  CHECK(sigmoid(Tensor::scalar(-100.f)).item() >= 0.f);  // not NaN (NaN >= 0 is false)
  CHECK(sigmoid(Tensor::scalar(-100.f)).item() < 1e-40f);
}

TEST_CASE("elementwise: log, sqrt, pow, exp, rdiv hand values", "[ops]") {
  Tensor t = Tensor::from_vector({1e-30f, 1.f, 4.f}, {3}).set_requires_grad();
  Tensor y = gt::log(t);
  backward(y, Tensor::ones({3}));
  std::vector<float> yv = y.to_vector(), gv = grad_of(t);
  CHECK(yv[0] == Approx(std::log(1e-30)).epsilon(1e-6));  // -69.0776
  CHECK(yv[1] == 0.f);
  CHECK(yv[2] == Approx(std::log(4.0)).epsilon(1e-6));
  CHECK(gv[0] == Approx(1e30).epsilon(1e-6));  // 1/x, finite in float
  CHECK(gv[2] == 0.25f);

  Tensor s = Tensor::from_vector({4.f, 9.f}, {2}).set_requires_grad();
  Tensor ys = gt::sqrt(s);
  backward(ys, Tensor::ones({2}));
  CHECK(ys.to_vector() == std::vector<float>{2, 3});
  CHECK(grad_of(s)[0] == Approx(0.25));
  CHECK(grad_of(s)[1] == Approx(1.0 / 6));

  // pow with exponent 0: y = 1 and dy/dx = 0 everywhere, including x = 0 (no 0 * inf NaN).
  Tensor p = Tensor::from_vector({0.f, 2.f}, {2}).set_requires_grad();
  Tensor yp = gt::pow(p, 0.f);
  backward(yp, Tensor::ones({2}));
  CHECK(yp.to_vector() == std::vector<float>{1, 1});
  CHECK(grad_of(p) == std::vector<float>{0, 0});

  Tensor q = Tensor::from_vector({0.f, 2.f}, {2}).set_requires_grad();
  Tensor yq = gt::pow(q, 2.f);
  backward(yq, Tensor::ones({2}));
  CHECK(yq.to_vector() == std::vector<float>{0, 4});
  CHECK(grad_of(q) == std::vector<float>{0, 4});

  Tensor e = Tensor::from_vector({0.f, 1.f}, {2}).set_requires_grad();
  Tensor ye = gt::exp(e);
  backward(ye, Tensor::from_vector({2.f, 1.f}, {2}));
  CHECK(ye.to_vector()[0] == 1.f);
  CHECK(grad_of(e)[0] == 2.f);
  CHECK(grad_of(e)[1] == Approx(std::exp(1.0)));

  Tensor d = Tensor::from_vector({2.f, -4.f}, {2}).set_requires_grad();
  Tensor yd = rdiv(d, 8.f);  // 8 / x, derivative -8 / x^2
  backward(yd, Tensor::ones({2}));
  CHECK(yd.to_vector() == std::vector<float>{4, -2});
  CHECK(grad_of(d) == std::vector<float>{-2, -0.5f});
}

TEST_CASE("elementwise: broadcast gradients sum back to each operand's shape", "[ops]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  Tensor b = Tensor::from_vector({10, 20, 30}, {3}).set_requires_grad();
  Tensor y = add(a, b);
  REQUIRE(y.shape() == Shape{2, 3});
  CHECK(y.to_vector() == std::vector<float>{11, 22, 33, 14, 25, 36});
  backward(y, Tensor::ones({2, 3}));
  CHECK(grad_of(a) == std::vector<float>{1, 1, 1, 1, 1, 1});
  CHECK(grad_of(b) == std::vector<float>{2, 2, 2});

  a.zero_grad();
  b.zero_grad();
  Tensor m = mul(a, b);
  backward(m, Tensor::ones({2, 3}));
  CHECK(grad_of(a) == std::vector<float>{10, 20, 30, 10, 20, 30});
  CHECK(grad_of(b) == std::vector<float>{5, 7, 9});  // column sums of a

  a.zero_grad();
  b.zero_grad();
  Tensor s = sub(b, a);  // the broadcast operand on the left: db = 1 summed over 2 rows, da = -1
  backward(s, Tensor::ones({2, 3}));
  CHECK(grad_of(a) == std::vector<float>{-1, -1, -1, -1, -1, -1});
  CHECK(grad_of(b) == std::vector<float>{2, 2, 2});

  Tensor c = Tensor::scalar(2.f).set_requires_grad();
  Tensor col = Tensor::from_vector({1, 2}, {2, 1}).set_requires_grad();
  Tensor z = div(mul(c, col), Tensor::from_vector({1, 2, 4}, {1, 3}));  // (2, 3)
  REQUIRE(z.shape() == Shape{2, 3});
  CHECK(z.to_vector() == std::vector<float>{2, 1, 0.5f, 4, 2, 1});
  backward(z, Tensor::ones({2, 3}));
  REQUIRE(c.grad().shape() == Shape{});
  CHECK(c.grad().item() == Approx(3 * 1.75));  // sum_ij col_i / d_j = 3 * 1.75
  CHECK(grad_of(col) == std::vector<float>{3.5f, 3.5f});

  // An empty broadcast: (0, 3) + (3) is (0, 3), and b's gradient is an empty sum.
  Tensor e = Tensor::zeros({0, 3});
  Tensor eb = Tensor::ones({3}).set_requires_grad();
  Tensor ey = add(e, eb);
  REQUIRE(ey.shape() == Shape{0, 3});
  backward(ey, Tensor::zeros({0, 3}));
  CHECK(grad_of(eb) == std::vector<float>{0, 0, 0});
}

TEST_CASE("elementwise: recording only what needs a gradient", "[ops]") {
  reset_tape();
  Tensor a = Tensor::from_vector({1, 2}, {2});
  Tensor b = Tensor::from_vector({3, 4}, {2}).set_requires_grad();
  Tensor c = mul(a, a);
  CHECK_FALSE(c.requires_grad());
  CHECK(tape_size() == 0);
  {
    NoGradGuard ng;
    Tensor d = mul(a, b);
    CHECK_FALSE(d.requires_grad());
    CHECK(tape_size() == 0);
  }
  Tensor y = mul(a, b);
  CHECK(tape_size() == 1);
  backward(y, Tensor::ones({2}));
  CHECK_FALSE(a.grad().defined());  // a needs no gradient, so backward skipped it
  CHECK(grad_of(b) == std::vector<float>{1, 2});
  CHECK(tape_size() == 0);
}

TEST_CASE("elementwise: errors name the op and both shapes", "[ops]") {
  Tensor a = Tensor::zeros({3, 4}), b = Tensor::zeros({5});
  Tensor (*binary_ops[])(const Tensor&, const Tensor&) = {add, sub, mul, div};
  for (auto f : binary_ops) {
    REQUIRE_THROWS_AS(f(a, b), Error);
    REQUIRE_THROWS_WITH(f(a, b), Catch::Contains("(3, 4)") && Catch::Contains("(5)") &&
                                     Catch::Contains("cannot be broadcast"));
  }
  REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("add: shapes (3, 4) and (5) cannot be broadcast"));
  REQUIRE_THROWS_WITH(div(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})), Catch::Contains("div") &&
                                                                           Catch::Contains("(2, 3)") &&
                                                                           Catch::Contains("(3, 2)"));
  Tensor idx = Tensor::from_indices({1, 2}, {2});
  REQUIRE_THROWS_WITH(mul(idx, Tensor::zeros({2})), Catch::Contains("mul") && Catch::Contains("int32"));
  REQUIRE_THROWS_WITH(relu(idx), Catch::Contains("relu") && Catch::Contains("int32"));
  REQUIRE_THROWS_WITH(add(Tensor(), a), Catch::Contains("add") && Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(gt::exp(Tensor()), Catch::Contains("exp") && Catch::Contains("undefined"));
}
