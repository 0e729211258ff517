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
#include "kernels/gemm_simd.h"
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

namespace {
// act(alpha op(A) op(B) + beta C0 + bias) in double; A stored (M, K) or (K, M), B (K, N) or (N, K).
std::vector<double> gemm_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                   const std::vector<float>& A, const std::vector<float>& B, float beta,
                                   const std::vector<float>& C0, const float* bias, bool relu) {
  std::vector<double> C(M * N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
      double v = alpha * s + (beta != 0.f ? (double)beta * C0[i * N + j] : 0.0) + (bias ? bias[j] : 0.0);
      C[i * N + j] = relu ? (v > 0 ? v : 0) : v;
    }
  return C;
}

// n floats uniform in (-1, 1].
std::vector<float> pm1(Generator& gen, int64_t n) {
  std::vector<float> v = gen.rand({n}).to_vector();
  for (float& x : v) x = 2.f * x - 1.f;
  return v;
}

// Max |got - want| over the matrix, NaN if any output is NaN.
double max_error(const float* got, const std::vector<double>& want) {
  double e = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(got[i])) return std::numeric_limits<double>::quiet_NaN();
    e = std::max(e, std::fabs(got[i] - want[i]));
  }
  return e;
}
}  // namespace

TEST_CASE("gemm kernels: every tile edge, transpose, alpha, beta, bias and ReLU against a double loop", "[ops]") {
  // gemm_simd_block's register tiles are 6 rows x 4 vectors of 16 columns: M in {1, 5, 6, 7, 13}
  // and N in {1, 15, 16, 17, 64, 65, 100} hit every remainder tile and every last-vector mask.
  // gemm_cpu (routed, threaded), gemm_eigen_cpu and gemm_bias_act_cpu run the same cases; inputs
  // are uniform in [-1, 1), so a K-term float sum errs by at most K^2 * 2^-24 (<= 2.4e-5 here) and
  // a wrong index, mask or epilogue by O(0.1) or more. beta = 0 starts from NaN garbage in C.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Generator gen(11);
  int cases = 0;
  for (int64_t K : {1, 3, 20})
    for (int64_t M : {1, 5, 6, 7, 13})
      for (int64_t N : {1, 15, 16, 17, 64, 65, 100})
        for (int t = 0; t < 4; ++t) {
          const bool ta = t & 1, tb = t & 2;
          const std::vector<float> A = pm1(gen, M * K);
          const std::vector<float> B = pm1(gen, K * N);
          const std::vector<float> C0 = pm1(gen, M * N);
          const std::vector<float> bias = pm1(gen, N);
          const double tol = (double)K * K * kF32Unit * 4 + 1e-6;
          INFO("ta " << ta << " tb " << tb << " M " << M << " N " << N << " K " << K);
          for (float beta : {0.f, 1.f, 0.5f}) {
            const float alpha = beta == 0.5f ? -2.f : 1.f;
            const std::vector<double> want = gemm_reference(ta, tb, M, N, K, alpha, A, B, beta, C0, nullptr, false);
            INFO("alpha " << alpha << " beta " << beta);
            std::vector<float> C = beta == 0.f ? std::vector<float>(M * N, nan) : C0;
            gemm_cpu(ta, tb, M, N, K, alpha, A.data(), B.data(), beta, C.data());
            CHECK(max_error(C.data(), want) <= tol);
            C = beta == 0.f ? std::vector<float>(M * N, nan) : C0;
            gemm_eigen_cpu(ta, tb, M, N, K, alpha, A.data(), B.data(), beta, C.data());
            CHECK(max_error(C.data(), want) <= tol);
            if (gemm_simd_available()) {  // the kernel alone
              C = beta == 0.f ? std::vector<float>(M * N, nan) : C0;
              gemm_simd_block(ta, tb, M, N, K, alpha, A.data(), ta ? M : K, B.data(), tb ? K : N, beta, nullptr, false,
                               C.data(), N);
              CHECK(max_error(C.data(), want) <= tol);
            }
          }
          for (bool relu : {false, true}) {
            const std::vector<double> want = gemm_reference(ta, tb, M, N, K, 1.f, A, B, 0.f, C0, bias.data(), relu);
            std::vector<float> C(M * N, nan);
            gemm_bias_act_cpu(ta, tb, M, N, K, A.data(), B.data(), bias.data(), relu, C.data());
            INFO("bias, relu " << relu);
            CHECK(max_error(C.data(), want) <= tol);
          }
          ++cases;
        }
  REQUIRE(cases == 3 * 5 * 7 * 4);
}

TEST_CASE("gemm kernels: a long inner dimension (several K chunks) with beta, bias and ReLU", "[ops]") {
  // gemm_simd_block cuts K = 1100 into 3 chunks of at most 512 (367 each): the first applies beta,
  // the last the bias and ReLU. Errors of float sums of 1100 terms in [-1, 1] are ~1e-5 here
  // (sqrt(K) x 2^-24 x the sums' magnitude, ~10); a chunk lost, doubled or with beta applied
  // twice errs by >= 0.1.
  const int64_t M = 13, N = 70, K = 1100;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Generator gen(9);
  const std::vector<float> A = pm1(gen, M * K), B = pm1(gen, K * N), C0 = pm1(gen, M * N), bias = pm1(gen, N);
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    INFO("ta " << ta << " tb " << tb);
    for (float beta : {0.f, 1.f}) {
      std::vector<float> C = beta == 0.f ? std::vector<float>(M * N, nan) : C0;
      gemm_cpu(ta, tb, M, N, K, 1.f, A.data(), B.data(), beta, C.data());
      CHECK(max_error(C.data(), gemm_reference(ta, tb, M, N, K, 1.f, A, B, beta, C0, nullptr, false)) <= 5e-4);
    }
    std::vector<float> C(M * N, nan);
    gemm_bias_act_cpu(ta, tb, M, N, K, A.data(), B.data(), bias.data(), true, C.data());
    CHECK(max_error(C.data(), gemm_reference(ta, tb, M, N, K, 1.f, A, B, 0.f, C0, bias.data(), true)) <= 5e-4);
    if (gemm_simd_available()) {
      C = C0;
      gemm_simd_block(ta, tb, M, N, K, 1.f, A.data(), ta ? M : K, B.data(), tb ? K : N, 1.f, bias.data(), true,
                       C.data(), N);
      CHECK(max_error(C.data(), gemm_reference(ta, tb, M, N, K, 1.f, A, B, 1.f, C0, bias.data(), true)) <= 5e-4);
    }
  }
}

TEST_CASE("gemm_simd_block: a block of a larger matrix (row strides above the widths)", "[ops]") {
  if (!gemm_simd_available()) SUCCEED("no AVX-512 or AVX2 + FMA in this build: gemm_cpu uses Eigen only");
  else {
    // C's block (7, 33) at column 5 of a (7, 50) matrix; A (7, 10) inside (7, 12); B (10, 33) inside
    // (10, 40). Columns of C outside the block must keep their values.
    const int64_t M = 7, N = 33, K = 10, lda = 12, ldb = 40, ldc = 50, c0 = 5;
    Generator gen(5);
    const std::vector<float> A = pm1(gen, M * lda);
    const std::vector<float> B = pm1(gen, K * ldb);
    std::vector<float> C(M * ldc, 7.f);
    gemm_simd_block(false, false, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, nullptr, false, C.data() + c0, ldc);
    double err = 0;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        double want = 7.0;
        if (j >= c0 && j < c0 + N) {
          want = 0;
          for (int64_t k = 0; k < K; ++k) want += (double)A[i * lda + k] * B[k * ldb + (j - c0)];
        }
        err = std::max(err, std::fabs(C[i * ldc + j] - want));
      }
    CHECK(err <= 1e-5);
  }
}

#if defined(__linux__)
TEST_CASE("gemm_cpu: a GEMM in a loop does not page-fault", "[ops]") {
  // Eigen mallocs and frees its packing buffers on every product (400 KB for this shape). With
  // glibc's default thresholds each call mapped or grew the heap afresh and faulted the pages in
  // again (~100 minor faults a call, 8x slower); core/allocator.cpp fixes the thresholds.
  const int64_t M = 128, N = 400, K = 784;
  Generator gen(3);
  Tensor a = gen.randn({M, K}), w = gen.randn({N, K}), c = Tensor::empty({M, N});
  // Both kernels: Eigen's (gemm_eigen_cpu) mallocs; gemm_cpu's own keeps a per-thread buffer.
  for (int i = 0; i < 3; ++i) {
    gemm_eigen_cpu(false, true, M, N, K, 1.f, a.data(), w.data(), 0.f, c.data());
    gemm_cpu(false, true, M, N, K, 1.f, a.data(), w.data(), 0.f, c.data());
  }
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const int calls = 20;
  for (int i = 0; i < calls; ++i) {
    gemm_eigen_cpu(false, true, M, N, K, 1.f, a.data(), w.data(), 0.f, c.data());
    gemm_cpu(false, true, M, N, K, 1.f, a.data(), w.data(), 0.f, c.data());
  }
  getrusage(RUSAGE_SELF, &after);
  const long faults = after.ru_minflt - before.ru_minflt;
  INFO(faults << " minor page faults in " << calls << " calls");
  CHECK(faults < calls);  // well under one a call (0 here, ~2,000 before the fix)
}
#endif

}  // namespace gt::test
