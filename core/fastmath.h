// fastmath.h: exp and log1p written as branch-free polynomials, so that CPU loops calling them
// vectorise (glibc's expf/log1pf are scalar calls: ~12 ns per element here, which made sigmoid and
// the Bernoulli likelihood the slowest kernels of a VAE step). Accuracy: a few ulp over the whole
// float range (tests/test_fastmath.cpp measures it against double precision). On the GPU the
// hardware's own expf/log1pf are used.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/host_device.h"

namespace gt {

#if defined(__CUDA_ARCH__)
GT_HD inline float fast_expf(float x) { return expf(x); }
GT_HD inline float fast_log1pf(float x) { return log1pf(x); }
#else
inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline int32_t float_to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, 4);
  return i;
}

// e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln2 / 2; e^r by a degree-6 polynomial (Cephes
// expf coefficients). inf above 88.72; 0 below -103.97 (where expf's result rounds to 0 too).
inline float fast_expf(float x) {
  const float hi = 88.7228394f, lo = -103.972076f;
  float xc = x < lo ? lo : (x > hi ? hi : x);
  // round to nearest by the 1.5 * 2^23 trick (nearbyint is a library call that blocks vectorisation)
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;  // ln 2 split in two for an exact product with n
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n in two halves so n down to -150 still produces (sub)normals without overflowing the exponent.
  int32_t ni = (int32_t)n;
  int32_t n1 = ni >> 1, n2 = ni - n1;
  float s1 = bits_to_float((n1 + 127) << 23), s2 = bits_to_float((n2 + 127) << 23);
  float y = p * s1 * s2;
  y = x < lo ? 0.0f : y;
  return x > hi ? INFINITY : (x != x ? x : y);
}

// log(1 + x) for x > -1: log(u) with u = 1 + x, corrected by x / (u - 1) so tiny x keep full
// precision (Goldberg's trick). log(u): u = m 2^e with m in [sqrt(1/2), sqrt(2)), then the Cephes
// logf polynomial in m - 1.
inline float fast_log1pf(float x) {
  float u = 1.0f + x;
  int32_t ui = float_to_bits(u);
  int32_t e = ((ui >> 23) & 0xff) - 127;
  float m = bits_to_float((ui & 0x007fffff) | 0x3f800000);  // [1, 2)
  bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  float f = m - 1.0f;
  float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float logm = f + (p * f * z - 0.5f * z);
  float fe = (float)e;
  float logu = fe * -2.12194440e-4f + logm + fe * 0.693359375f;
  float d = u - 1.0f;
  float q = x / (d == 0.0f ? 1.0f : d);  // computed unconditionally: keeps the loop branch-free
  float res = (d == 0.0f) ? x : logu * q;
  res = x == INFINITY ? INFINITY : res;
  res = x == -1.0f ? -INFINITY : res;
  return x < -1.0f ? NAN : res;
}
#endif

}  // namespace gt
