// test_ops_matmul.cpp: gt::matmul (all four transpose-flag combinations, 2-D and batched 3-D) against
// a naive double-precision loop, finite differences and CPU vs CUDA; the GEMM kernels' alpha/beta
// contract; shape errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#if defined(__linux__)
#include <sys/resource.h>  // getrusage: the page-fault test
#endif

#include "core/rng.h"
#include "kernels/matmul.h"
#include "tests/op_table.h"

namespace gt::test {

namespace {

// Unit roundoff of float32 (2^-24).
constexpr double kF32Unit = 5.9604644775390625e-8;

// Tolerances for a GEMM whose longest float32 reduction (forward or backward) has k terms. The
// rounding error of a float32 k-term dot product is bounded by k * u * sum_i |a_i b_i|; with
// unit-normal inputs (and the unit-normal seed the CPU/CUDA check back-propagates) sum_i |a_i b_i|
// is about 0.64 k, so k^2 * u bounds the error of any output. Never below the table's defaults.
// A wrong index or sign gives O(1) errors, far above these.
Tolerance gemm_tolerance(int64_t k) {
  Tolerance t;
  const double bound = (double)k * (double)k * kF32Unit;
  t.fwd_atol = std::max(t.fwd_atol, bound);
  t.dev_atol = std::max(t.dev_atol, bound);
  return t;
}

// Reference: C[b] = op(A[b]) op(B[b]) in double; a single input is multiplied by itself.
RefFn matmul_ref(bool ta, bool tb) {
  return [ta, tb](const std::vector<HostTensor>& in) {
    const HostTensor& A = in[0];
    const HostTensor& B = in.size() > 1 ? in[1] : in[0];
    const bool batched = A.shape.size() == 3;
    const int o = batched ? 1 : 0;
    const int64_t nb = batched ? A.shape[0] : 1;
    const int64_t ar = A.shape[o], ac = A.shape[o + 1], br = B.shape[o], bc = B.shape[o + 1];
    const int64_t M = ta ? ac : ar, K = ta ? ar : ac, N = tb ? br : bc;
    RefResult r;
    r.shape = batched ? Shape{nb, M, N} : Shape{M, N};
    r.v.assign((size_t)(nb * M * N), 0.0);
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double av = ta ? A.v[(size_t)(b * ar * ac + k * ac + m)] : A.v[(size_t)(b * ar * ac + m * ac + k)];
            const double bv = tb ? B.v[(size_t)(b * br * bc + n * bc + k)] : B.v[(size_t)(b * br * bc + k * bc + n)];
            s += av * bv;
          }
          r.v[(size_t)((b * M + m) * N + n)] = s;
        }
    return r;
  };
}

OpRow matmul_row(const std::string& name, Shape a, Shape b, bool ta, bool tb) {
  OpRow row;
  row.name = name;
  row.inputs = {normal(a), normal(b)};
  row.op = [ta, tb](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); };
  row.ref = matmul_ref(ta, tb);
  // Longest reduction: K forward, M (for dB) or N (for dA) backward.
  const int n = a.size();
  const int64_t M = ta ? a[n - 1] : a[n - 2], K = ta ? a[n - 2] : a[n - 1], N = tb ? b[n - 2] : b[n - 1];
  row.tol = gemm_tolerance(std::max({M, K, N}));
  return row;
}

// Reference for linear: act(x W^T + b) in double; b is in[2] when present.
RefFn linear_ref(bool relu) {
  return [relu](const std::vector<HostTensor>& in) {
    const HostTensor &X = in[0], &W = in[1];
    const int64_t B = X.shape[0], I = X.shape[1], O = W.shape[0];
    RefResult r;
    r.shape = {B, O};
    r.v.assign((size_t)(B * O), 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t o = 0; o < O; ++o) {
        double s = in.size() > 2 ? in[2].v[(size_t)o] : 0.0;
        for (int64_t i = 0; i < I; ++i) s += X.v[(size_t)(b * I + i)] * W.v[(size_t)(o * I + i)];
        r.v[(size_t)(b * O + o)] = relu && s < 0 ? 0.0 : s;
      }
    return r;
  };
}

// x (B, I), W (O, I), b (O). With ReLU the inputs keep every pre-activation away from the kink:
// |b| in [1, 2) dominates x W^T (x, W ~ N(0, s^2) with s^2 = 0.09 * 7 / I: a sum of I products
// whose std is 0.09 sqrt(7) ~ 0.24 whatever I is), so the finite differences never straddle 0,
// while the signs of b make both masked and passed outputs.
OpRow linear_row(const std::string& name, int64_t B, int64_t I, int64_t O, bool bias, LinearAct act) {
  OpRow row;
  row.name = name;
  const float s = 0.3f * std::sqrt(std::min(1.0f, 7.0f / (float)I));
  row.inputs = {normal({B, I}, s), normal({O, I}, s)};
  if (bias) row.inputs.push_back(away_from_zero({O}, 1.0f, 2.0f));
  row.op = [act](const std::vector<Tensor>& in) { return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), act); };
  row.ref = linear_ref(act == LinearAct::Relu);
  row.tol = gemm_tolerance(std::max({B, I, O}));
  return row;
}

std::vector<OpRow> rows() {
  std::vector<OpRow> r;
  r.push_back(matmul_row("matmul (5,7) @ (7,11)", {5, 7}, {7, 11}, false, false));
  r.push_back(matmul_row("matmul (7,5)^T @ (7,11)", {7, 5}, {7, 11}, true, false));
  r.push_back(matmul_row("matmul (5,7) @ (11,7)^T", {5, 7}, {11, 7}, false, true));
  r.push_back(matmul_row("matmul (7,5)^T @ (11,7)^T", {7, 5}, {11, 7}, true, true));
  r.push_back(matmul_row("matmul (13,5) @ (5,3)", {13, 5}, {5, 3}, false, false));
  r.push_back(matmul_row("matmul (1,13) @ (13,1)", {1, 13}, {13, 1}, false, false));
  r.push_back(matmul_row("matmul (3,5,7) @ (3,7,4)", {3, 5, 7}, {3, 7, 4}, false, false));
  r.push_back(matmul_row("matmul (2,7,5)^T @ (2,7,11)", {2, 7, 5}, {2, 7, 11}, true, false));
  r.push_back(matmul_row("matmul (2,5,7) @ (2,11,7)^T", {2, 5, 7}, {2, 11, 7}, false, true));
  r.push_back(matmul_row("matmul (3,7,5)^T @ (3,4,7)^T", {3, 7, 5}, {3, 4, 7}, true, true));
  {
    // The same tensor on both sides: both backward GEMMs accumulate into one gradient buffer.
    OpRow row;
    row.name = "matmul x @ x^T (5,7)";
    row.inputs = {normal({5, 7})};
    row.op = [](const std::vector<Tensor>& in) { return matmul(in[0], in[0], false, true); };
    row.ref = [](const std::vector<HostTensor>& in) { return matmul_ref(false, true)({in[0], in[0]}); };
    row.tol = gemm_tolerance(7);
    r.push_back(row);
  }
  {
    // A larger product so Eigen's blocked, multithreaded GEMM path runs, not only its small-size one.
    r.push_back(matmul_row("matmul (37,70) @ (70,29)", {37, 70}, {70, 29}, false, false));
  }
  r.push_back(linear_row("linear (5,7) -> 11 + b", 5, 7, 11, true, LinearAct::None));
  r.push_back(linear_row("linear relu (5,7) -> 11 + b", 5, 7, 11, true, LinearAct::Relu));
  r.push_back(linear_row("linear (13,5) -> 3, no bias", 13, 5, 3, false, LinearAct::None));
  r.push_back(linear_row("linear relu (37,70) -> 29 + b", 37, 70, 29, true, LinearAct::Relu));
  {
    // x, W and b each feed two linears: the second backward accumulates (beta = 1) into the
    // buffers the first one created (beta = 0, uninitialised until written).
    OpRow row = linear_row("linear twice, shared inputs (5,7) -> 11", 5, 7, 11, true, LinearAct::Relu);
    row.op = [](const std::vector<Tensor>& in) {
      return add(linear(in[0], in[1], in[2], LinearAct::Relu), mul(linear(in[0], in[1], in[2]), 0.5f));
    };
    row.ref = [](const std::vector<HostTensor>& in) {
      RefResult a = linear_ref(true)(in), b = linear_ref(false)(in);
      for (size_t i = 0; i < a.v.size(); ++i) a.v[i] += 0.5 * b.v[i];
      return a;
    };
    r.push_back(row);
  }
  return r;
}

}  // namespace

TEST_CASE("op table: matmul", "[ops]") { run_op_table(rows()); }

TEST_CASE("op table: matmul cpu vs cuda", "[ops][cuda]") { run_op_table_cuda(rows()); }

TEST_CASE("matmul: shape errors name both operands", "[ops]") {
  Tensor a = Tensor::zeros({3, 4}), b = Tensor::zeros({5, 6});
  REQUIRE_THROWS_AS(matmul(a, b), gt::Error);
  REQUIRE_THROWS_WITH(matmul(a, b), Catch::Matchers::Contains("(3, 4)") && Catch::Matchers::Contains("(5, 6)"));
  // Transposing b makes its stored (5, 6) contribute K = 6: still a mismatch with a's 4.
  REQUIRE_THROWS_WITH(matmul(a, b, false, true), Catch::Matchers::Contains("transposed"));
  REQUIRE_NOTHROW(matmul(a, Tensor::zeros({6, 4}), false, true));
  // Rank and batch mismatches.
  REQUIRE_THROWS_AS(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 5})), gt::Error);
  REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5})),
                      Catch::Matchers::Contains("batch") && Catch::Matchers::Contains("(2, 3, 4)"));
  REQUIRE_THROWS_AS(matmul(Tensor::zeros({4}), Tensor::zeros({4})), gt::Error);
}

TEST_CASE("matmul: only inputs that require grad get a gradient", "[ops]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({1, 0, 0, 1, 1, 1}, {3, 2}).set_requires_grad();
  Tensor c = matmul(a, b);
  backward(c, Tensor::ones({2, 2}));
  REQUIRE_FALSE(a.grad().defined());
  // dB = A^T dC = A^T 1: row k of dB is the column sum of A's column k, repeated.
  std::vector<float> want = {5, 5, 7, 7, 9, 9};
  REQUIRE(b.grad().to_vector() == want);
}

TEST_CASE("linear: equals matmul + add + relu, forward and gradients", "[ops]") {
  // (B, I, O): one small layer, and two whose GEMM (>= 2^18 multiply-adds) is cut into one block of
  // rows (B > O), or of columns (O > B), per thread, each block starting from the bias and
  // applying the ReLU on its own.
  struct Shape { int64_t B, I, O; };
  for (Shape s : {Shape{9, 6, 4}, Shape{128, 70, 100}, Shape{40, 64, 130}}) {
    for (bool with_bias : {true, false}) {
      INFO("B " << s.B << " I " << s.I << " O " << s.O << (with_bias ? " with bias" : " without bias"));
      reset_tape();
      Generator gen(7);
      Tensor x = gen.randn({s.B, s.I}).set_requires_grad();
      Tensor w = gen.randn({s.O, s.I}).set_requires_grad(), b = gen.randn({s.O}).set_requires_grad();
      Tensor seed = gen.randn({s.B, s.O});
      Tensor bias = with_bias ? b : Tensor();
      backward(linear(x, w, bias, LinearAct::Relu), seed);
      const std::vector<float> dx = x.grad().to_vector(), dw = w.grad().to_vector();
      const std::vector<float> db = with_bias ? b.grad().to_vector() : std::vector<float>();
      x.zero_grad(), w.zero_grad(), b.zero_grad();
      auto unfused = [&] {
        Tensor pre = matmul(x, w, false, true);
        return relu(with_bias ? add(pre, b) : pre);
      };
      Tensor y = unfused();
      const double tol = 1e-5 * std::sqrt((double)s.I);  // sums of I products of N(0, 1) draws
      REQUIRE_THAT(linear(x, w, bias, LinearAct::Relu).to_vector(), Catch::Matchers::Approx(y.to_vector()).margin(tol));
      reset_tape();
      backward(unfused(), seed);
      REQUIRE_THAT(dx, Catch::Matchers::Approx(x.grad().to_vector()).margin(tol));
      REQUIRE_THAT(dw, Catch::Matchers::Approx(w.grad().to_vector()).margin(tol * std::sqrt((double)s.B / s.I)));
      if (with_bias) REQUIRE_THAT(db, Catch::Matchers::Approx(b.grad().to_vector()).margin(tol));
    }
  }
}

TEST_CASE("linear: shape errors name the shapes", "[ops]") {
  REQUIRE_THROWS_WITH(linear(Tensor::zeros({3, 5}), Tensor::zeros({4, 6}), Tensor()),
                      Catch::Matchers::Contains("(3, 5)") && Catch::Matchers::Contains("(4, 6)"));
  REQUIRE_THROWS_WITH(linear(Tensor::zeros({3, 6}), Tensor::zeros({4, 6}), Tensor::zeros({5})),
                      Catch::Matchers::Contains("bias shape (5)"));
  REQUIRE_THROWS_AS(linear(Tensor::zeros({6}), Tensor::zeros({4, 6}), Tensor()), gt::Error);
}

TEST_CASE("gemm_cpu: alpha, beta and the shared-operand batch", "[ops]") {
  // A (2, 3), B (3, 2): A B = [[4, 5], [10, 11]].
  const std::vector<float> A = {1, 2, 3, 4, 5, 6}, B = {1, 0, 0, 1, 1, 1};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> C(4, nan);
  gemm_cpu(false, false, 2, 2, 3, 1.0f, A.data(), B.data(), 0.0f, C.data());  // beta 0 never reads C
  REQUIRE(C == std::vector<float>{4, 5, 10, 11});
  gemm_cpu(false, false, 2, 2, 3, 2.0f, A.data(), B.data(), 1.0f, C.data());  // C += 2 A B
  REQUIRE(C == std::vector<float>{12, 15, 30, 33});
  gemm_cpu(false, false, 2, 2, 3, 1.0f, A.data(), B.data(), 0.5f, C.data());  // C = A B + C/2
  REQUIRE(C == std::vector<float>{10, 12.5f, 25, 27.5f});
  // (A^T)^T B^T^T: stored transposes give the same product.
  const std::vector<float> At = {1, 4, 2, 5, 3, 6}, Bt = {1, 0, 1, 0, 1, 1};
  gemm_cpu(true, true, 2, 2, 3, 1.0f, At.data(), Bt.data(), 0.0f, C.data());
  REQUIRE(C == std::vector<float>{4, 5, 10, 11});
  // Batch of 3 sharing A (stride 0), B_b = b * B.
  std::vector<float> Bs, Cs(12, nan);
  for (int b = 0; b < 3; ++b)
    for (float v : B) Bs.push_back(v * (float)b);
  gemm_batched_cpu(false, false, 3, 2, 2, 3, 1.0f, A.data(), 0, Bs.data(), 6, 0.0f, Cs.data(), 4);
  REQUIRE(Cs == std::vector<float>{0, 0, 0, 0, 4, 5, 10, 11, 8, 10, 20, 22});
  // K = 0: an empty sum.
  gemm_cpu(false, false, 2, 2, 0, 1.0f, A.data(), B.data(), 0.0f, C.data());
  REQUIRE(C == std::vector<float>{0, 0, 0, 0});
}

#if defined(__linux__)
TEST_CASE("gemm_cpu: a GEMM in a loop does not page-fault", "[ops]") {
  // Eigen mallocs and frees its packing buffers on every product (400 KB for this shape). With
  // glibc's default thresholds each call mapped or grew the heap afresh and faulted the pages in
  // again (~100 minor faults a call, 8x slower); core/allocator.cpp fixes the thresholds.
  const int64_t M = 128, N = 400, K = 784;
  Generator gen(3);
  Tensor a = gen.randn({M, K}), w = gen.randn({N, K}), c = Tensor::empty({M, N});
  for (int i = 0; i < 3; ++i) gemm_cpu(false, true, M, N, K, 1.f, a.data(), w.data(), 0.f, c.data());
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const int calls = 20;
  for (int i = 0; i < calls; ++i) gemm_cpu(false, true, M, N, K, 1.f, a.data(), w.data(), 0.f, c.data());
  getrusage(RUSAGE_SELF, &after);
  const long faults = after.ru_minflt - before.ru_minflt;
  INFO(faults << " minor page faults in " << calls << " calls");
  CHECK(faults < calls);  // well under one a call (0 here, ~2,000 before the fix)
}
#endif

}  // namespace gt::test
