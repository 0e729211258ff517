// matmul.cpp: CPU GEMM, C = alpha * op(A) op(B) + beta * C, on row-major pointers through Eigen.
//
// Eigen::Map views the raw pointers as row-major matrices without copying; a transposed operand is
// Map(...).transpose(), which Eigen's GEMM reads in place. `noalias()` tells Eigen that C does not
// overlap A or B, so the product is written straight into C (no temporary). Eigen parallelises a
// large GEMM itself with OpenMP; inside a parallel region (the batched path) it runs serially.
#include "kernels/matmul.h"

#include <algorithm>

#include <Eigen/Core>

#include "core/error.h"
#include "kernels/parallel.h"

namespace gt {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat>;
using MutMap = Eigen::Map<RowMat>;

// C = alpha * a b + beta * C for any Eigen expressions a (M, K), b (K, N).
template <class LA, class LB>
void gemm_eval(const LA& a, const LB& b, float alpha, float beta, MutMap& c) {
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

}  // namespace

void gemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              const float* B, float beta, float* C) {
  check_sizes("gemm_cpu", M, N, K);
  if (M == 0 || N == 0) return;
  MutMap c(C, M, N);
  if (K == 0) {  // an empty sum: C = beta * C
    if (beta == 0.0f)
      c.setZero();
    else if (beta != 1.0f)
      c *= beta;
    return;
  }
  // A (M, K) or stored (K, M); B (K, N) or stored (N, K).
  ConstMap a(A, ta ? K : M, ta ? M : K);
  ConstMap b(B, tb ? N : K, tb ? K : N);
  if (!ta && !tb)
    gemm_eval(a, b, alpha, beta, c);
  else if (!ta && tb)
    gemm_eval(a, b.transpose(), alpha, beta, c);
  else if (ta && !tb)
    gemm_eval(a.transpose(), b, alpha, beta, c);
  else
    gemm_eval(a.transpose(), b.transpose(), alpha, beta, c);
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
