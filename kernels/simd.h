// simd.h: the few vector operations gentape's hand-vectorised CPU kernels (kernels/gemm_simd.cpp,
// kernels/winograd.cpp) are written in, for the widest instruction set the build targets:
//
//   AVX-512F      kSimdLanes = 16, vfloat = __m512, vmask = __mmask16 (a bit per lane)
//   AVX2 + FMA    kSimdLanes = 8,  vfloat = __m256, vmask = __m256i  (all-ones lanes are on)
//   otherwise     GENTAPE_SIMD is 0, the GEMM and Winograd kernels report themselves unavailable,
//                 and only the plain arithmetic exists (4-float GCC vector extensions)
//
// The kernels are written once against these names, with the lane count as a constant: a register
// tile of "4 vectors" is 64 columns on AVX-512 and 32 on AVX2. Each wrapper is one intrinsic (two
// for a masked AVX2 store of a mask made from a count), so the compiled loops are what the
// intrinsics would give. Masked loads read no memory in the lanes that are off (neither
// _mm512_maskz_loadu_ps nor _mm256_maskload_ps faults there), so a vector may run past the end of
// an array as long as its mask stops at the end.
//
//   vfloat acc = vzero();
//   for (int64_t k = 0; k < K; ++k) acc = vfmadd(vset1(a[k]), vload(b + k * kSimdLanes), acc);
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace gt {

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
// 8 x 8 transpose of 256-bit rows in registers (AVX, so in both ISAs: the GEMM kernel transposes
// B in 8 x 8 blocks on AVX-512 too): afterwards r[j] lane i is the old r[i] lane j.
inline void vtranspose8(__m256 r[8]) {
  __m256 t[8], u[8];
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
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

#endif

#if defined(__AVX512F__)

#define GENTAPE_SIMD 512
constexpr int kSimdLanes = 16;
using vfloat = __m512;
using vmask = __mmask16;

inline vfloat vzero() { return _mm512_setzero_ps(); }
inline vfloat vset1(float x) { return _mm512_set1_ps(x); }
inline vfloat vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vfloat v) { _mm512_storeu_ps(p, v); }
inline vfloat vadd(vfloat a, vfloat b) { return _mm512_add_ps(a, b); }
inline vfloat vsub(vfloat a, vfloat b) { return _mm512_sub_ps(a, b); }
inline vfloat vmul(vfloat a, vfloat b) { return _mm512_mul_ps(a, b); }
inline vfloat vfmadd(vfloat a, vfloat b, vfloat c) { return _mm512_fmadd_ps(a, b, c); }    // a b + c
inline vfloat vfnmadd(vfloat a, vfloat b, vfloat c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b
// v > 0 ? v : 0 (NaN -> 0, like kernels/linear.h's ReLU)
inline vfloat vrelu(vfloat v) {
  const vfloat z = _mm512_setzero_ps();
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, z, _CMP_GT_OQ), z, v);
}

// Lanes [lo, hi), clamped to [0, kSimdLanes).
inline vmask vlanes(int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : lo;
  hi = hi > kSimdLanes ? kSimdLanes : hi;
  if (hi <= lo) return 0;
  return (vmask)(((1u << (hi - lo)) - 1u) << lo);
}
inline vmask vall() { return (vmask)0xFFFF; }
inline bool vnone(vmask m) { return m == 0; }
inline vfloat vload_mask(vmask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
inline void vstore_mask(float* p, vmask m, vfloat v) { _mm512_mask_storeu_ps(p, m, v); }
// The first n lanes of v (0 < n <= kSimdLanes) stored at p; nothing written at p + n or past it.
inline void vstore_first(float* p, int64_t n, vfloat v) {
  if (n == kSimdLanes)
    _mm512_storeu_ps(p, v);
  else
    _mm512_mask_storeu_ps(p, vlanes(0, n), v);
}

inline vfloat vneg_abs(vfloat v) {  // -|v|: the sign bit set
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN)));
}
inline vfloat vmax(vfloat a, vfloat b) { return _mm512_max_ps(a, b); }
inline vfloat vround(vfloat v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// p 2^n for integral n in [-150, 0] (as floats): 2^n in two halves, multiplied in turn, so that
// results down to the subnormals come out as fast_expf's do.
inline vfloat vscale2(vfloat p, vfloat n) {
  const __m512i ni = _mm512_cvtps_epi32(n), n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}
inline vfloat vrcp_approx(vfloat d) { return _mm512_rcp14_ps(d); }  // relative error < 2^-14
// nonneg ? a : b, lane by lane, with nonneg = (t >= 0)
inline vfloat vselect_nonneg(vfloat t, vfloat a, vfloat b) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_GE_OQ), b, a);
}

// r (kSimdLanes vectors) transposed in registers: afterwards r[j] lane i is the old r[i] lane j.
inline void vtranspose(vfloat r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4i+k], 128-bit lane q: column 4q+k of rows 4i .. 4i+3
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // column 4q+k = lane q of r[k], r[4+k], r[8+k], r[12+k]
  for (int k = 0; k < 4; ++k) {
    const __m512 a = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88), b = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xdd);
    const __m512 c = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88),
                 d = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xdd);
    t[k] = _mm512_shuffle_f32x4(a, c, 0x88);
    t[8 + k] = _mm512_shuffle_f32x4(a, c, 0xdd);
    t[4 + k] = _mm512_shuffle_f32x4(b, d, 0x88);
    t[12 + k] = _mm512_shuffle_f32x4(b, d, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

#elif defined(__AVX2__) && defined(__FMA__)

#define GENTAPE_SIMD 256
constexpr int kSimdLanes = 8;
using vfloat = __m256;
using vmask = __m256i;

inline vfloat vzero() { return _mm256_setzero_ps(); }
inline vfloat vset1(float x) { return _mm256_set1_ps(x); }
inline vfloat vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vfloat v) { _mm256_storeu_ps(p, v); }
inline vfloat vadd(vfloat a, vfloat b) { return _mm256_add_ps(a, b); }
inline vfloat vsub(vfloat a, vfloat b) { return _mm256_sub_ps(a, b); }
inline vfloat vmul(vfloat a, vfloat b) { return _mm256_mul_ps(a, b); }
inline vfloat vfmadd(vfloat a, vfloat b, vfloat c) { return _mm256_fmadd_ps(a, b, c); }
inline vfloat vfnmadd(vfloat a, vfloat b, vfloat c) { return _mm256_fnmadd_ps(a, b, c); }
inline vfloat vrelu(vfloat v) {
  const vfloat z = _mm256_setzero_ps();
  return _mm256_and_ps(v, _mm256_cmp_ps(v, z, _CMP_GT_OQ));
}

inline vmask vlanes(int64_t lo, int64_t hi) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  lo = lo < 0 ? 0 : lo > kSimdLanes ? kSimdLanes : lo;
  hi = hi < 0 ? 0 : hi > kSimdLanes ? kSimdLanes : hi;
  // lane l on when lo <= l < hi: (l > lo - 1) and (hi > l)
  return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)lo - 1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), idx));
}
inline vmask vall() { return _mm256_set1_epi32(-1); }
inline bool vnone(vmask m) { return _mm256_testz_si256(m, m) != 0; }
inline vfloat vload_mask(vmask m, const float* p) { return _mm256_maskload_ps(p, m); }
inline void vstore_mask(float* p, vmask m, vfloat v) { _mm256_maskstore_ps(p, m, v); }
// The first n lanes of v (0 < n <= kSimdLanes) stored at p; nothing written at p + n or past it.
// Plain 128/64/32-bit stores, not vmaskmovps: AMD's Zen cores run a masked store at a small
// fraction of a plain one's rate (it was the hottest instruction of the Winograd output store, a
// third of that function's time, at W = 28 where one vector in four is partial).
inline void vstore_first(float* p, int64_t n, vfloat v) {
  if (n == kSimdLanes) {
    _mm256_storeu_ps(p, v);
    return;
  }
  __m128 q = _mm256_castps256_ps128(v);
  if (n >= 4) {
    _mm_storeu_ps(p, q);
    q = _mm256_extractf128_ps(v, 1);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    _mm_storel_pi((__m64*)p, q);
    q = _mm_movehl_ps(q, q);
    p += 2;
    n -= 2;
  }
  if (n == 1) _mm_store_ss(p, q);
}

inline vfloat vneg_abs(vfloat v) { return _mm256_or_ps(v, _mm256_set1_ps(-0.0f)); }  // -|v|
inline vfloat vmax(vfloat a, vfloat b) { return _mm256_max_ps(a, b); }
inline vfloat vround(vfloat v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vfloat vscale2(vfloat p, vfloat n) {
  const __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
inline vfloat vrcp_approx(vfloat d) { return _mm256_rcp_ps(d); }  // relative error < 1.5 * 2^-12
inline vfloat vselect_nonneg(vfloat t, vfloat a, vfloat b) {
  return _mm256_blendv_ps(b, a, _mm256_cmp_ps(t, _mm256_setzero_ps(), _CMP_GE_OQ));
}

inline void vtranspose(vfloat r[8]) { vtranspose8(r); }

#else

// Neither: GENTAPE_SIMD is 0 (the GEMM kernel and Winograd report themselves unavailable), and only
// the arithmetic above exists, on 4-float GCC vector extensions (SSE2 on a baseline x86-64 build),
// so that simple sweeps (kernels/norm.cpp) are written once for every build.
#define GENTAPE_SIMD 0
constexpr int kSimdLanes = 4;
typedef float vfloat __attribute__((vector_size(kSimdLanes * sizeof(float))));

inline vfloat vzero() { return vfloat{}; }
inline vfloat vset1(float x) { return vfloat{x, x, x, x}; }
inline vfloat vload(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
inline vfloat vadd(vfloat a, vfloat b) { return a + b; }
inline vfloat vsub(vfloat a, vfloat b) { return a - b; }
inline vfloat vmul(vfloat a, vfloat b) { return a * b; }
inline vfloat vfmadd(vfloat a, vfloat b, vfloat c) { return a * b + c; }
inline vfloat vfnmadd(vfloat a, vfloat b, vfloat c) { return c - a * b; }

#endif

#if GENTAPE_SIMD
// The logistic sigmoid 1 / (1 + e^-t) on a vector, as core/fastmath.h's fast_expf and
// kernels/elementwise.h's sigmoid_f compute it (e = exp(-|t|) <= 1, the same Cephes polynomial;
// sigmoid = s or e s with s = 1 / (1 + e)) but with the division replaced by the reciprocal
// estimate and one Newton step, s = r + r (1 - d r): a few ulp from the division, at a fraction of
// its cost (vdivps was the bottleneck of the fused GroupNorm-SiLU on Zen 4). exp(-|t|) is clamped
// at fast_expf's lower limit, -103.97 (below it the result stays the smallest subnormal, where
// fast_expf gives 0); a NaN t gives a NaN silu = t sigmoid(t).
inline vfloat vsigmoid(vfloat t) {
  const vfloat x = vmax(vneg_abs(t), vset1(-103.972076f));
  const vfloat n = vround(vmul(x, vset1(1.44269504088896341f)));
  vfloat r = vfnmadd(n, vset1(0.693359375f), x);
  r = vfnmadd(n, vset1(-2.12194440e-4f), r);
  vfloat p = vset1(1.9875691500e-4f);
  p = vfmadd(p, r, vset1(1.3981999507e-3f));
  p = vfmadd(p, r, vset1(8.3334519073e-3f));
  p = vfmadd(p, r, vset1(4.1665795894e-2f));
  p = vfmadd(p, r, vset1(1.6666665459e-1f));
  p = vfmadd(p, r, vset1(5.0000001201e-1f));
  p = vadd(vfmadd(p, vmul(r, r), r), vset1(1.0f));
  const vfloat e = vscale2(p, n);
  const vfloat d = vadd(vset1(1.0f), e);
  const vfloat r0 = vrcp_approx(d);
  const vfloat s = vfmadd(r0, vfnmadd(d, r0, vset1(1.0f)), r0);
  return vselect_nonneg(t, s, vmul(e, s));
}
#endif

}  // namespace gt
