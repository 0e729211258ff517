// gemm_simd.h: gentape's own CPU GEMM kernel (AVX-512 or AVX2 + FMA, through kernels/simd.h), the
// one gemm_cpu uses for most products on machines that have a vector ISA it is built for. It was
// first written for the products a VAE's 20-wide latent layer makes (128x400x20, 20x400x128,
// 400x20x128), where Eigen's general GEMM spent more time packing, zero-filling and dispatching
// than multiplying (17 vs 11 us), and then measured faster than Eigen's kernel on the large shapes
// too (one core of the AVX-512 VM: 128x784x400 362 us vs 558 us, 256^3 150 us vs 217 us).
//
//   C (M, N) = act(alpha * op(A) op(B) + beta * C + bias)
//
// B stored (K, N) row-major is read in place, never packed: a panel of at most 512 rows of K by kNR
// columns stays in the L1/L2 cache while the kernel walks down all the rows of A. B stored (N, K)
// (the linear layer's x W^T) is first transposed into a per-thread buffer, in 8 x 8 register
// blocks. Each register tile holds MR = 6 rows by NV vectors of columns — AVX-512: NV <= 4 vectors
// of 16 (24 of its 32 registers); AVX2: NV <= 2 vectors of 8 (12 of its 16, BLIS's Haswell shape);
// per step of k it loads NV vectors of B's row k, broadcasts A's 6 entries of column k and does
// 6 NV fused multiply-adds — the same outer-product scheme as the micro-kernels of BLIS and
// llm.c's matmul_forward, minus the packing. Every C element is summed over k in one fixed order
// (k ascending within chunks of <= 512, the chunks added in turn), so results do not depend on the
// thread count.
//
// The epilogue runs on the registers before the single store: scale by alpha, add beta * C (beta ==
// 0 never reads C, which may hold garbage), add the bias (one value per column), ReLU (v > 0 ? v
// : 0, as kernels/linear.h's linear_act). Columns past N in the last vector are masked.
//
// Built for AVX-512F or AVX2 + FMA (gemm_simd_available() is false otherwise, and kernels/matmul.cpp
// then uses Eigen for every shape). kernels/matmul.cpp routes the shapes of gemm_simd_preferred
// here, splitting C over threads the same way as for Eigen; benchmarks/bench_sgemm times both.
#pragma once

#include <cstdint>

namespace gt {

// True when this build has the kernel (compiled with AVX-512F, or AVX2 and FMA).
bool gemm_simd_available();

// Whether gemm_cpu / gemm_bias_act_cpu send a product with these transposes and sizes here: every
// product on AVX-512, except a B stored (N, K) that is large (K N > kGemmSimdPackMax) and used by
// few rows of A (M < kGemmSimdPackMinRows) — there transposing B costs more than it saves. With
// the 8 x 8 register transposes the crossover is at M ~ 32 (x W^T with N = 288, K = 784 on one
// core: M = 16 76 us vs Eigen's 66, M = 32 107 vs 112; M = 1 46 vs 10).
bool gemm_simd_preferred(bool ta, bool tb, int64_t M, int64_t N, int64_t K);
constexpr int64_t kGemmSimdPackMax = 16384;
constexpr int64_t kGemmSimdPackMinRows = 32;

// One block on the calling thread: C (M, N) with row stride ldc = act(alpha op(A) op(B) + beta C +
// bias). A is stored (M, K) with row stride lda, or (K, M) when ta; B is stored (K, N) with row
// stride ldb, or (N, K) when tb (then first transposed whole into a per-thread buffer); bias has N entries or is null. Requires gemm_simd_available().
void gemm_simd_block(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, const float* bias, bool relu, float* C, int64_t ldc);

}  // namespace gt
