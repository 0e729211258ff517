// gemm_simd.cpp: the outer-product GEMM kernel of gemm_simd.h (AVX-512 or AVX2, kernels/simd.h).
#include "kernels/gemm_simd.h"

#include <vector>

#include "core/aligned.h"
#include "core/error.h"

#include "kernels/simd.h"

namespace gt {

#if GENTAPE_SIMD

namespace {

// Register tile: MR rows x NV vectors of C. AVX-512: 6 x 4 vectors of 16 = 64 columns (24 of its
// 32 registers); AVX2: 6 x 2 vectors of 8 = 16 columns (12 of its 16 registers, as BLIS's Haswell
// micro-kernel), leaving room for B's NV vectors and the broadcast.
constexpr int kMR = 6;
constexpr int kNV = kSimdLanes == 16 ? 4 : 2;
constexpr int kNR = kNV * kSimdLanes;  // columns per register tile
constexpr int64_t kKC = 512;  // longest inner-dimension chunk

struct Epilogue {
  float alpha, beta;
  const float* bias;  // already offset to the tile's first column, or null
  bool relu;
};

// One tile: MR rows x NV vectors of C. When Masked, the last vector's lanes outside `last` are
// neither read nor written (unmasked tiles use plain loads and stores: an AVX2 masked store is
// slow). a(m, k) = a[m * a_rs + k * a_ks].
//
// The `#pragma GCC unroll`s matter: without them GCC 12 kept `acc` in memory as well as in
// registers and stored every accumulator back on each step of k (one store per FMA), which halved
// the kernel's rate (70-76 against 180-220 GFLOP/s on one core). Check with objdump that the k loop
// has no stores to the stack after changing this function.
template <int MR, int NV, bool Masked>
void tile(int64_t K, const float* a, int64_t a_rs, int64_t a_ks, const float* b, int64_t ldb, float* c,
          int64_t ldc, vmask last, const Epilogue& ep) {
  vfloat acc[MR][NV];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[m][v] = vzero();
  for (int64_t k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    vfloat bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      bv[v] = Masked && v == NV - 1 ? vload_mask(last, bk + kSimdLanes * v) : vload(bk + kSimdLanes * v);
    const float* ak = a + k * a_ks;
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const vfloat am = vset1(ak[m * a_rs]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[m][v] = vfmadd(am, bv[v], acc[m][v]);
    }
  }
  // The epilogue's settings in locals: read through `ep` they were re-read and re-tested after
  // every store to C (a float store may alias ep.alpha), 6 NV compare-and-branch sequences that
  // took ~20% of the tile's time at the K = 32 of the Winograd products.
  const bool scale = ep.alpha != 1.f, add_c = ep.beta != 0.f, relu = ep.relu;
  const float* const bias_p = ep.bias;
  // The two epilogues of the Winograd products, C = AB and C += AB, without any test per vector.
  if (!scale && !bias_p && !relu && (!add_c || ep.beta == 1.f)) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const bool masked = Masked && v == NV - 1;
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        float* cm = c + m * ldc + kSimdLanes * v;
        vfloat r = acc[m][v];
        if (add_c) r = vadd(r, masked ? vload_mask(last, cm) : vload(cm));
        if (masked)
          vstore_mask(cm, last, r);
        else
          vstore(cm, r);
      }
    }
    return;
  }
  const vfloat alpha = vset1(ep.alpha), beta = vset1(ep.beta), zero = vzero();
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const bool masked = Masked && v == NV - 1;
    const vfloat bias = !bias_p   ? zero
                        : masked ? vload_mask(last, bias_p + kSimdLanes * v)
                                 : vload(bias_p + kSimdLanes * v);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      float* cm = c + m * ldc + kSimdLanes * v;
      vfloat r = scale ? vmul(alpha, acc[m][v]) : acc[m][v];
      if (add_c) r = vfmadd(beta, masked ? vload_mask(last, cm) : vload(cm), r);
      if (bias_p) r = vadd(r, bias);
      if (relu) r = vrelu(r);
      if (masked)
        vstore_mask(cm, last, r);
      else
        vstore(cm, r);
    }
  }
}

using TileFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, vmask,
                        const Epilogue&);

// Every tile shape a block's edges can need: MR = 1..6 rows, NV = 1..kNV vectors, masked or not.
template <int MR, bool Masked>
TileFn row_of_tiles(int nv) {
  if constexpr (kNV == 2) {
    return nv == 1 ? tile<MR, 1, Masked> : tile<MR, 2, Masked>;
  } else {
    return nv == 1   ? tile<MR, 1, Masked>
           : nv == 2 ? tile<MR, 2, Masked>
           : nv == 3 ? tile<MR, 3, Masked>
                     : tile<MR, 4, Masked>;
  }
}
template <bool Masked>
TileFn pick_tile_m(int mr, int nv) {
  switch (mr) {
    case 1: return row_of_tiles<1, Masked>(nv);
    case 2: return row_of_tiles<2, Masked>(nv);
    case 3: return row_of_tiles<3, Masked>(nv);
    case 4: return row_of_tiles<4, Masked>(nv);
    case 5: return row_of_tiles<5, Masked>(nv);
    default: return row_of_tiles<6, Masked>(nv);
  }
}
TileFn pick_tile(int mr, int nv, bool masked) {
  return masked ? pick_tile_m<true>(mr, nv) : pick_tile_m<false>(mr, nv);
}

// dst rows 0..7 (row stride ld) = columns 0..7 of the 8 x 8 block at src (row stride ls): simd.h's
// unpack / shuffle / permute sequence on 256-bit registers (24 shuffles for 64 floats).
inline void transpose8x8(const float* src, int64_t ls, float* dst, int64_t ld) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ls);
  vtranspose8(r);
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * ld, r[i]);
}

// bt (K, N) = the transpose of B stored (N, K) with row stride ldb: 8 x 8 blocks in registers, the
// edges (N or K not a multiple of 8) element by element.
void transpose_b(const float* B, int64_t ldb, int64_t N, int64_t K, float* bt) {
  const int64_t N8 = N / 8 * 8, K8 = K / 8 * 8;
  for (int64_t n0 = 0; n0 < N8; n0 += 8) {
    for (int64_t k0 = 0; k0 < K8; k0 += 8) transpose8x8(B + n0 * ldb + k0, ldb, bt + k0 * N + n0, N);
    for (int64_t n = n0; n < n0 + 8; ++n)
      for (int64_t k = K8; k < K; ++k) bt[k * N + n] = B[n * ldb + k];
  }
  for (int64_t n = N8; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) bt[k * N + n] = B[n * ldb + k];
}

}  // namespace

bool gemm_simd_available() { return true; }

void gemm_simd_block(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, const float* bias, bool relu, float* C, int64_t ldc) {
  const int64_t a_rs = ta ? 1 : lda, a_ks = ta ? lda : 1;
  // A B stored (N, K) is first transposed whole into this thread's buffer, which grows to the
  // largest block seen and is then reused (no allocation in a training loop). (Transposing one
  // K chunk x 64 panel at a time, just before use, measured slower: 218-225 against 258-290
  // GFLOP/s for 128 x 400 x 784 on 2 threads.)
  thread_local AlignedVector bt;
  if (tb) {
    if (bt.size() < (size_t)(K * N)) bt.resize(K * N);
    transpose_b(B, ldb, N, K, bt.data());
    B = bt.data();
    ldb = N;
  }
  // K in equal chunks of at most kKC: the first chunk applies beta, later ones add onto C, the last one adds the
  // bias and the ReLU. Column panels outermost: B's chunk x kNR panel (at most 128 KB on AVX-512, 32 KB
  // on AVX2) stays in the L1/L2 cache while the tiles walk down the rows.
  const int64_t chunks = (K + kKC - 1) / kKC, kstep = (K + chunks - 1) / chunks;  // equal chunks
  for (int64_t k0 = 0; k0 < K; k0 += kstep) {
    const int64_t kc = K - k0 < kstep ? K - k0 : kstep;
    const bool first = k0 == 0, final = k0 + kc == K;
    for (int64_t n0 = 0; n0 < N; n0 += kNR) {
      const int64_t cols = N - n0 < kNR ? N - n0 : kNR;
      const int nv = (int)((cols + kSimdLanes - 1) / kSimdLanes);
      const int tail = (int)(cols - kSimdLanes * (nv - 1));  // 1..kSimdLanes live lanes in the last vector
      const bool masked = tail < kSimdLanes;
      const vmask last = vlanes(0, tail);
      const Epilogue ep{alpha, first ? beta : 1.f, final && bias ? bias + n0 : nullptr, final && relu};
      const TileFn full = pick_tile(kMR, nv, masked);
      const float* a = A + k0 * a_ks;
      const float* b = B + k0 * ldb + n0;
      int64_t m0 = 0;
      for (; m0 + kMR <= M; m0 += kMR) full(kc, a + m0 * a_rs, a_rs, a_ks, b, ldb, C + m0 * ldc + n0, ldc, last, ep);
      if (m0 < M)
        pick_tile((int)(M - m0), nv, masked)(kc, a + m0 * a_rs, a_rs, a_ks, b, ldb, C + m0 * ldc + n0, ldc, last, ep);
    }
  }
}

#else  // no AVX-512 or AVX2: kernels/matmul.cpp never calls the kernel

bool gemm_simd_available() { return false; }

void gemm_simd_block(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                     float, const float*, bool, float*, int64_t) {
  GT_FAIL("gemm_simd_block: this build has neither AVX-512 nor AVX2 + FMA (check gemm_simd_available() first)");
}

#endif

bool gemm_simd_preferred(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  (void)ta;
  if (!gemm_simd_available() || M == 0 || N == 0 || K == 0) return false;
  return !(tb && K * N > kGemmSimdPackMax && M < kGemmSimdPackMinRows);
}

}  // namespace gt
