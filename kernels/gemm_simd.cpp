// gemm_avx512.cpp: the outer-product GEMM kernel of gemm_avx512.h (AVX-512 intrinsics).
#include "kernels/gemm_avx512.h"

#include <vector>

#include "core/error.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gt {

#if defined(__AVX512F__)

namespace {

constexpr int kMR = 6;  // rows of C per register tile
constexpr int kNV = 4;  // 16-float vectors of C per register tile row (64 columns)
constexpr int64_t kKC = 512;  // longest inner-dimension chunk

struct Epilogue {
  float alpha, beta;
  const float* bias;  // already offset to the tile's first column, or null
  bool relu;
};

// One tile: MR rows x NV vectors of C. The last vector's lanes outside `last` are neither read
// nor written. a(m, k) = a[m * a_rs + k * a_ks].
//
// The `#pragma GCC unroll`s matter: without them GCC 12 kept `acc` in memory as well as in
// registers and stored every accumulator back on each step of k (one store per FMA), which halved
// the kernel's rate (70-76 against 180-220 GFLOP/s on one core). Check with objdump that the k loop
// has no stores to the stack after changing this function.
template <int MR, int NV>
void tile(int64_t K, const float* a, int64_t a_rs, int64_t a_ks, const float* b, int64_t ldb, float* c,
          int64_t ldc, __mmask16 last, const Epilogue& ep) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    __m512 bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);
    const float* ak = a + k * a_ks;
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 am = _mm512_set1_ps(ak[m * a_rs]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(am, bv[v], acc[m][v]);
    }
  }
  const __m512 alpha = _mm512_set1_ps(ep.alpha), beta = _mm512_set1_ps(ep.beta), zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const __mmask16 mask = v == NV - 1 ? last : (__mmask16)0xFFFF;
    const __m512 bias = ep.bias ? _mm512_maskz_loadu_ps(mask, ep.bias + 16 * v) : zero;
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      float* cm = c + m * ldc + 16 * v;
      __m512 r = ep.alpha == 1.f ? acc[m][v] : _mm512_mul_ps(alpha, acc[m][v]);
      if (ep.beta != 0.f) r = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask, cm), r);
      if (ep.bias) r = _mm512_add_ps(r, bias);
      if (ep.relu) r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r, zero, _CMP_GT_OQ), zero, r);
      _mm512_mask_storeu_ps(cm, mask, r);
    }
  }
}

using TileFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, __mmask16,
                        const Epilogue&);

// Every tile shape a block's edges can need: MR = 1..6 rows, NV = 1..4 vectors.
template <int MR>
constexpr TileFn row_of_tiles(int nv) {
  return nv == 1 ? tile<MR, 1> : nv == 2 ? tile<MR, 2> : nv == 3 ? tile<MR, 3> : tile<MR, 4>;
}
TileFn pick_tile(int mr, int nv) {
  switch (mr) {
    case 1: return row_of_tiles<1>(nv);
    case 2: return row_of_tiles<2>(nv);
    case 3: return row_of_tiles<3>(nv);
    case 4: return row_of_tiles<4>(nv);
    case 5: return row_of_tiles<5>(nv);
    default: return row_of_tiles<6>(nv);
  }
}

// dst rows 0..7 (row stride ld) = columns 0..7 of the 8 x 8 block at src (row stride ls): the
// usual unpack / shuffle / permute sequence on 256-bit registers (24 shuffles for 64 floats).
inline void transpose8x8(const float* src, int64_t ls, float* dst, int64_t ld) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ls);
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3, then 4-7
    const int b = 4 * h;
    u[b + 0] = _mm256_shuffle_ps(t[b + 0], t[b + 2], _MM_SHUFFLE(1, 0, 1, 0));  // column 0 (and 4)
    u[b + 1] = _mm256_shuffle_ps(t[b + 0], t[b + 2], _MM_SHUFFLE(3, 2, 3, 2));  // column 1 (and 5)
    u[b + 2] = _mm256_shuffle_ps(t[b + 1], t[b + 3], _MM_SHUFFLE(1, 0, 1, 0));  // column 2 (and 6)
    u[b + 3] = _mm256_shuffle_ps(t[b + 1], t[b + 3], _MM_SHUFFLE(3, 2, 3, 2));  // column 3 (and 7)
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ld, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
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

bool gemm_avx512_available() { return true; }

void gemm_avx512_block(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float beta, const float* bias, bool relu, float* C,
                      int64_t ldc) {
  const int64_t a_rs = ta ? 1 : lda, a_ks = ta ? lda : 1;
  // A B stored (N, K) is first transposed whole into this thread's buffer, which grows to the
  // largest block seen and is then reused (no allocation in a training loop). (Transposing one
  // K chunk x 64 panel at a time, just before use, measured slower: 218-225 against 258-290
  // GFLOP/s for 128 x 400 x 784 on 2 threads.)
  thread_local std::vector<float> bt;
  if (tb) {
    if (bt.size() < (size_t)(K * N)) bt.resize(K * N);
    transpose_b(B, ldb, N, K, bt.data());
    B = bt.data();
    ldb = N;
  }
  // K in equal chunks of at most kKC: the first chunk applies beta, later ones add onto C, the last one adds the
  // bias and the ReLU. Column panels outermost: B's chunk x 64 panel (at most 128 KB) stays in the
  // L1/L2 cache while the tiles walk down the rows.
  const int64_t chunks = (K + kKC - 1) / kKC, kstep = (K + chunks - 1) / chunks;  // equal chunks
  for (int64_t k0 = 0; k0 < K; k0 += kstep) {
    const int64_t kc = K - k0 < kstep ? K - k0 : kstep;
    const bool first = k0 == 0, final = k0 + kc == K;
    for (int64_t n0 = 0; n0 < N; n0 += 16 * kNV) {
      const int64_t cols = N - n0 < 16 * kNV ? N - n0 : 16 * kNV;
      const int nv = (int)((cols + 15) / 16);
      const int tail = (int)(cols - 16 * (nv - 1));  // 1..16 live lanes in the last vector
      const __mmask16 last = (__mmask16)(tail == 16 ? 0xFFFF : (1u << tail) - 1u);
      const Epilogue ep{alpha, first ? beta : 1.f, final && bias ? bias + n0 : nullptr, final && relu};
      const TileFn full = pick_tile(kMR, nv);
      const float* a = A + k0 * a_ks;
      const float* b = B + k0 * ldb + n0;
      int64_t m0 = 0;
      for (; m0 + kMR <= M; m0 += kMR) full(kc, a + m0 * a_rs, a_rs, a_ks, b, ldb, C + m0 * ldc + n0, ldc, last, ep);
      if (m0 < M) pick_tile((int)(M - m0), nv)(kc, a + m0 * a_rs, a_rs, a_ks, b, ldb, C + m0 * ldc + n0, ldc, last, ep);
    }
  }
}

#else  // no AVX-512: kernels/matmul.cpp never calls the kernel

bool gemm_avx512_available() { return false; }

void gemm_avx512_block(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                      float, const float*, bool, float*, int64_t) {
  GT_FAIL("gemm_avx512_block: this build has no AVX-512 (check gemm_avx512_available() first)");
}

#endif

bool gemm_avx512_preferred(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  (void)ta;
  if (!gemm_avx512_available() || M == 0 || N == 0 || K == 0) return false;
  return !(tb && K * N > kGemmAvx512PackMax && M < kGemmAvx512PackMinRows);
}

}  // namespace gt
