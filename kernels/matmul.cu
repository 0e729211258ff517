// matmul.cu: CUDA GEMM, C = alpha * op(A) op(B) + beta * C, on row-major device pointers via cuBLAS.
//
// cuBLAS is column-major. A row-major (R, S) matrix is, read column-major, its transpose (S, R), so
// instead of C = op(A) op(B) we ask cuBLAS for C^T = op(B)^T op(A)^T, an (N, M) column-major result
// that is exactly the row-major (M, N) C. The operands swap places and keep their own transpose
// flags: row-major B (K, N) is column-major B^T = op(B)^T with ld N, needing no transpose.
// All calls run asynchronously on gt::cuda::stream(); nothing here synchronises or allocates.
#include "kernels/matmul.h"

#include <climits>

#include <cublas_v2.h>

#include "core/cuda_context.h"
#include "core/error.h"

namespace gt {

namespace {

void cublas_check(cublasStatus_t s, const char* call) {
  GT_CHECK(s == CUBLAS_STATUS_SUCCESS,
           "cuBLAS error in " << call << ": " << cublasGetStatusName(s) << " (" << cublasGetStatusString(s) << ")");
}

// One handle for the process, created on first use and bound to gentape's stream. It is never
// destroyed: destroying it from a static destructor could run after the CUDA runtime has shut down.
// cuBLAS keeps the default FP32 math mode (no TF32 tensor cores), so CUDA matches the CPU to rounding.
cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t hh = nullptr;
    cublas_check(cublasCreate(&hh), "cublasCreate");
    cublas_check(cublasSetStream(hh, cuda::stream()), "cublasSetStream");
    return hh;
  }();
  return h;
}

int to_int(int64_t v, const char* what, const char* fn) {
  GT_CHECK(v >= 0 && v <= INT_MAX, fn << ": " << what << " = " << v << " does not fit cuBLAS's int sizes");
  return (int)v;
}

// C = beta * C for an empty sum (K == 0), where cuBLAS's behaviour is not specified.
void scale_c(int64_t batch, int64_t M, int64_t N, float beta, float* C, int64_t stride_c) {
  if (beta == 1.0f) return;
  for (int64_t i = 0; i < batch; ++i) {
    float* c = C + i * stride_c;
    if (beta == 0.0f) {
      CUDA_CHECK(cudaMemsetAsync(c, 0, (size_t)(M * N) * sizeof(float), cuda::stream()));
    } else {
      cublas_check(cublasSscal(handle(), to_int(M * N, "M*N", "gemm_cuda"), &beta, c, 1), "cublasSscal");
    }
  }
}

}  // namespace

void gemm_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               const float* B, float beta, float* C) {
  gemm_batched_cuda(ta, tb, 1, M, N, K, alpha, A, 0, B, 0, beta, C, 0);
}

void gemm_batched_cuda(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t stride_a, const float* B, int64_t stride_b, float beta,
                       float* C, int64_t stride_c) {
  const char* fn = "gemm_batched_cuda";
  const int m = to_int(M, "M", fn), n = to_int(N, "N", fn), k = to_int(K, "K", fn);
  const int nb = to_int(batch, "batch", fn);
  GT_CHECK(stride_a >= 0 && stride_b >= 0, fn << ": negative stride");
  GT_CHECK(batch <= 1 || stride_c >= M * N,
           fn << ": output blocks overlap (stride_c " << stride_c << " < M*N " << M * N << ")");
  if (nb == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    scale_c(batch, M, N, beta, C, stride_c);
    return;
  }
  // C^T (N, M) = op(B)^T (N, K) op(A)^T (K, M), all column-major views of the row-major buffers.
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldb = tb ? k : n;  // B stored (N, K) if tb else (K, N): ld = stored column count
  const int lda = ta ? m : k;  // A stored (K, M) if ta else (M, K)
  const int ldc = n;
  if (nb == 1) {
    cublas_check(cublasSgemm(handle(), op_b, op_a, n, m, k, &alpha, B, ldb, A, lda, &beta, C, ldc),
                 "cublasSgemm");
  } else {
    cublas_check(cublasSgemmStridedBatched(handle(), op_b, op_a, n, m, k, &alpha, B, ldb, (long long)stride_b,
                                           A, lda, (long long)stride_a, &beta, C, ldc, (long long)stride_c,
                                           nb),
                 "cublasSgemmStridedBatched");
  }
}

}  // namespace gt
