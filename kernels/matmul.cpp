// matmul.cpp: CPU GEMM, C = alpha * op(A) op(B) + beta * C, on row-major pointers.
//
// Two kernels. On AVX-512 builds most products go to gemm_simd_block (kernels/gemm_simd.h): an
// outer-product kernel that reads B's rows in place (a B stored transposed is first transposed
// into a per-thread buffer) and ran the VAE's shapes at 200-220 GFLOP/s on one core of this
// project's VM, whose measured FMA peak is ~222 GFLOP/s per core. The rest, and every product on machines
// without AVX-512, go to Eigen: Eigen::Map views the raw pointers as row-major matrices without
// copying, a transposed operand is Map(...).transpose(), `noalias()` writes the product straight
// into C. Eigen's gebp kernel ran the VAE's shapes at 140-150 GFLOP/s per core here
// (benchmarks/bench_sgemm prints both).
//
// Threads: a large GEMM is cut into one block of C per thread (whole rows or whole columns, the
// longer side), each block an independent single-threaded product, so the threads never wait for
// each other inside the product: one fork/join per GEMM. (Eigen's own OpenMP GEMM shares packed
// panels between threads and synchronises on them; it was slower here.) Each element is one
// thread's sum either way. Inside a parallel region (the batched path) everything stays serial.
#include "kernels/matmul.h"

#include <algorithm>

#include <Eigen/Core>

#include "core/error.h"
#include "kernels/gemm_simd.h"
#include "kernels/parallel.h"

namespace gt {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using OuterStride = Eigen::OuterStride<>;
using ConstMapS = Eigen::Map<const RowMat, 0, OuterStride>;
using MutMapS = Eigen::Map<RowMat, 0, OuterStride>;

// Below this many multiply-adds a GEMM runs on one thread: ~2^18 MACs take ~2 us on one core here,
// about the cost of waking the other thread.
constexpr int64_t kGemmSplitMacs = int64_t(1) << 18;
// Block edges are multiples of this (a 256-bit vector of floats): the VAE's 400 and 784 still split
// evenly in two (a 16-float edge made 208 + 192 columns, and the thread with more waited).
constexpr int64_t kGemmSplitAlign = 8;

// C = alpha * a b + beta * C for any Eigen expressions a (M, K), b (K, N).
template <class LA, class LB, class LC>
void gemm_eval(const LA& a, const LB& b, float alpha, float beta, LC& c) {
  if (beta == 0.0f) {
    c.noalias() = alpha * a * b;  // C's old contents (possibly NaN garbage) are never read
  } else {
    if (beta != 1.0f) c *= beta;
    c.noalias() += alpha * a * b;
  }
}

void check_sizes(const char* what, int64_t M, int64_t N, int64_t K) {
  GT_CHECK(M >= 0 && N >= 0 && K >= 0,
           what << ": negative size M=" << M << " N=" << N << " K=" << K);
}

// C (M, N) with row stride ldc = alpha op(A) op(B) + beta C on one thread; A and B with row
// strides lda / ldb (their stored column counts, or more for a block of a larger matrix).
void gemm_block(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  MutMapS c(C, M, N, OuterStride(ldc));
  if (K == 0) {  // an empty sum: C = beta * C
    if (beta == 0.0f)
      c.setZero();
    else if (beta != 1.0f)
      c *= beta;
    return;
  }
  // A (M, K) or stored (K, M); B (K, N) or stored (N, K).
  ConstMapS a(A, ta ? K : M, ta ? M : K, OuterStride(lda));
  ConstMapS b(B, tb ? N : K, tb ? K : N, OuterStride(ldb));
  if (!ta && !tb)
    gemm_eval(a, b, alpha, beta, c);
  else if (!ta && tb)
    gemm_eval(a, b.transpose(), alpha, beta, c);
  else if (ta && !tb)
    gemm_eval(a.transpose(), b, alpha, beta, c);
  else
    gemm_eval(a.transpose(), b.transpose(), alpha, beta, c);
}

// Runs block(r0, r1, c0, c1) on one block of C (M, N) per thread, whole rows or whole columns along
// the longer side, edges multiples of kGemmSplitAlign; one block on the calling thread when the
// product is small or we are already inside a parallel region.
template <class Block>
void split_blocks(int64_t M, int64_t N, int64_t K, Block&& block) {
  const int threads = omp_get_max_threads();
  if (threads <= 1 || omp_in_parallel() || M * N * K < kGemmSplitMacs) {
    block(int64_t(0), M, int64_t(0), N);
    return;
  }
  const bool split_rows = M > N;
  const int64_t len = split_rows ? M : N;
  const int64_t parts = std::min<int64_t>(threads, (len + kGemmSplitAlign - 1) / kGemmSplitAlign);
  const int64_t step = ((len + parts - 1) / parts + kGemmSplitAlign - 1) / kGemmSplitAlign * kGemmSplitAlign;
#pragma omp parallel for num_threads((int)parts) schedule(static, 1)
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t lo = p * step, hi = std::min(len, lo + step);
    if (lo >= hi) continue;
    if (split_rows)
      block(lo, hi, int64_t(0), N);
    else
      block(int64_t(0), M, lo, hi);
  }
}

// C = act(alpha op(A) op(B) + beta C + bias) through gemm_simd_block, one block of C per thread.
void simd_blocks(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B,
                   float beta, const float* bias, bool relu, float* C) {
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  split_blocks(M, N, K, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    gemm_simd_block(ta, tb, r1 - r0, c1 - c0, K, alpha, ta ? A + r0 : A + r0 * lda, lda, tb ? B + c0 * ldb : B + c0,
                      ldb, beta, bias ? bias + c0 : nullptr, relu, C + r0 * N + c0, N);
  });
}

}  // namespace

void gemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              const float* B, float beta, float* C) {
  check_sizes("gemm_cpu", M, N, K);
  if (M == 0 || N == 0) return;
  if (K > 0 && gemm_simd_preferred(ta, tb, M, N, K))
    return simd_blocks(ta, tb, M, N, K, alpha, A, B, beta, nullptr, false, C);
  gemm_eigen_cpu(ta, tb, M, N, K, alpha, A, B, beta, C);
}

void gemm_eigen_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B,
                    float beta, float* C) {
  check_sizes("gemm_eigen_cpu", M, N, K);
  if (M == 0 || N == 0) return;
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  split_blocks(M, N, K, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    gemm_block(ta, tb, r1 - r0, c1 - c0, K, alpha, ta ? A + r0 : A + r0 * lda, lda, tb ? B + c0 * ldb : B + c0, ldb,
               beta, C + r0 * N + c0, N);
  });
}

void gemm_bias_act_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B,
                       const float* bias, bool relu, float* C) {
  check_sizes("gemm_bias_act_cpu", M, N, K);
  if (M == 0 || N == 0) return;
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  if (K > 0 && gemm_simd_preferred(ta, tb, M, N, K))
    return simd_blocks(ta, tb, M, N, K, 1.0f, A, B, 0.0f, bias, relu, C);
  split_blocks(M, N, K, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    float* c = C + r0 * N + c0;
    const int64_t rows = r1 - r0, cols = c1 - c0;
    if (bias) {  // C starts from the bias (the product accumulates onto it): no zero-fill pass
      for (int64_t r = 0; r < rows; ++r) std::copy(bias + c0, bias + c1, c + r * N);
    }
    gemm_block(ta, tb, rows, cols, K, 1.0f, ta ? A + r0 : A + r0 * lda, lda, tb ? B + c0 * ldb : B + c0, ldb,
               bias ? 1.0f : 0.0f, c, N);
    if (relu) {  // max(v, 0) written as linear_act does (v > 0 ? v : 0), while the block is in cache
      for (int64_t r = 0; r < rows; ++r)
        for (float *v = c + r * N, *e = v + cols; v < e; ++v) *v = *v > 0.f ? *v : 0.f;
    }
  });
}

void gemm_batched_cpu(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t stride_a, const float* B, int64_t stride_b, float beta,
                      float* C, int64_t stride_c) {
  check_sizes("gemm_batched_cpu", M, N, K);
  GT_CHECK(batch >= 0, "gemm_batched_cpu: negative batch " << batch);
  GT_CHECK(stride_a >= 0 && stride_b >= 0, "gemm_batched_cpu: negative stride");
  GT_CHECK(batch <= 1 || stride_c >= M * N,
           "gemm_batched_cpu: output blocks overlap (stride_c " << stride_c << " < M*N " << M * N << ")");
  auto one = [&](int64_t i) {
    gemm_cpu(ta, tb, M, N, K, alpha, A + i * stride_a, B + i * stride_b, beta, C + i * stride_c);
  };
  // With at least one matrix per thread, splitting the batch beats Eigen's per-GEMM threading: no
  // synchronisation inside a GEMM, and small GEMMs (a convolution's per-image product) would not
  // be parallelised by Eigen at all. Eigen sees it is inside a parallel region and stays serial.
  if (batch >= (int64_t)omp_get_max_threads() && batch > 1) {
    parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
}

}  // namespace gt
