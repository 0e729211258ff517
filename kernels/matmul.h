// matmul.h: GEMM on raw row-major float32 pointers, the workhorse of matmul and convolution.
//
//   C = alpha * op(A) op(B) + beta * C,     op(X) = X or X^T
//
// with C (M, N), op(A) (M, K), op(B) (K, N). A is stored (M, K), or (K, M) when ta; B is stored
// (K, N), or (N, K) when tb. Every matrix is dense row-major (leading dimension = its stored column
// count). beta == 0 overwrites C without reading it (C may hold garbage from Tensor::empty);
// beta == 1 accumulates, which is how backward passes add into gradient buffers without a
// temporary. The strided-batched form repeats this for b in [0, batch) with A + b*stride_a,
// B + b*stride_b, C + b*stride_c; a stride of 0 on A or B shares one matrix across the batch
// (a convolution's weight). The C blocks must not overlap.
//
//   // C (128, 400) = X (128, 784) W^T for W stored (400, 784)
//   gt::gemm_cpu(false, true, 128, 400, 784, 1.f, x, w, 0.f, c);
//   // dW (400, 784) += dC^T (400, 128) X (128, 784)
//   gt::gemm_cpu(true, false, 400, 784, 128, 1.f, dc, x, 1.f, dw);
//
// CPU: gt's outer-product kernel (kernels/gemm_simd.h) for the shapes where it measured faster,
// Eigen for the rest; one block of C per thread (kernels/matmul.cpp). CUDA: cuBLAS on gt::cuda::stream(), asynchronous,
// pointers are device pointers; FP32 math (no TF32), so results match the CPU to float rounding.
#pragma once

#include <cstdint>

namespace gt {

// C (M, N) = alpha * op(A) op(B) + beta * C.  A (M, K) or (K, M) if ta; B (K, N) or (N, K) if tb.
void gemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              const float* B, float beta, float* C);
// The same product always through Eigen (one block per thread): what gemm_cpu falls back to, kept
// callable so that benchmarks/bench_sgemm and the tests can run both kernels on one shape.
void gemm_eigen_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    const float* B, float beta, float* C);
// C (M, N) = act(op(A) op(B) + bias): bias (N) broadcast over the rows, or null; relu applies
// max(v, 0) (as kernels/linear.h's linear_act), else no activation. The fused linear layer's
// forward in one pass: each thread starts its block of C from the bias (no zero-fill), accumulates
// the product onto it and applies the activation while the block is still in its cache.
void gemm_bias_act_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B,
                       const float* bias, bool relu, float* C);
// For b in [0, batch): C_b = alpha * op(A_b) op(B_b) + beta * C_b, X_b = X + b * stride_x.
// stride_a / stride_b may be 0 (shared operand). Small GEMMs run in parallel over the batch, large
// ones one after the other, each multithreaded by Eigen.
void gemm_batched_cpu(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t stride_a, const float* B, int64_t stride_b, float beta,
                      float* C, int64_t stride_c);

// The same on CUDA device pointers (cublasSgemm / cublasSgemmStridedBatched). Sizes must fit in
// int (cuBLAS's index type); a gt::Error says so otherwise, and names any cuBLAS failure.
void gemm_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               const float* B, float beta, float* C);
void gemm_batched_cuda(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t stride_a, const float* B, int64_t stride_b, float beta,
                       float* C, int64_t stride_c);

}  // namespace gt
