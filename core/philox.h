// philox.h: Philox4x32-10 (Salmon et al. 2011) as GT_HD scalar code: a counter-based generator,
// so element i of a stream is a pure function of (seed, i), which is what makes a random kernel
// reproducible on any number of threads.
//
// The element layout reproduces cuRAND's Philox generator with CURAND_ORDERING_PSEUDO_LEGACY
// (measured against curandCreateGeneratorHost; tests/test_rng.cpp checks it bit for bit): cuRAND
// runs 65536 subsequences side by side, each emitting one 4-word Philox block per step, so
//   group = i / 4,  subsequence = group % 65536,  step = group / 65536,
//   counter = (step_lo, step_hi, subsequence, 0),  value = philox(counter, seed)[i % 4].
// Hence any kernel can draw element i of the shared stream itself (the fused reparameterisation
// and diffusion kernels do) and get exactly what cuRAND's generator would have written.
#pragma once

#include <cstdint>
#include <cmath>

#include "core/host_device.h"

namespace gt {

struct Philox4 {
  uint32_t v[4];
};

GT_HD inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  hi = (uint32_t)(p >> 32);
  lo = (uint32_t)p;
}

// Ten rounds of the Philox4x32 bijection on `ctr` with key (k0, k1) — the constants of the paper.
GT_HD inline Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(M0, ctr.v[0], hi0, lo0);
    philox_mulhilo(M1, ctr.v[2], hi1, lo1);
    Philox4 n;
    n.v[0] = hi1 ^ ctr.v[1] ^ k0;
    n.v[1] = lo1;
    n.v[2] = hi0 ^ ctr.v[3] ^ k1;
    n.v[3] = lo0;
    ctr = n;
    k0 += W0;
    k1 += W1;
  }
  return ctr;
}

// The 4-word block that holds elements 4 * group .. 4 * group + 3 of the stream.
GT_HD inline Philox4 philox_block(uint64_t seed, uint64_t group) {
  uint64_t step = group >> 16;
  Philox4 c = {{(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)(group & 0xFFFFu), 0u}};
  return philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

// 32 random bits for element `i` of the stream with this seed (cuRAND's legacy layout, above).
GT_HD inline uint32_t philox_bits(uint64_t seed, uint64_t i) { return philox_block(seed, i >> 2).v[i & 3]; }

// U(0, 1]: the same mapping cuRAND uses (x * 2^-32 + 2^-33), so log(u) is always finite.
GT_HD inline float philox_to_uniform(uint32_t bits) { return (float)bits * 2.3283064e-10f + 1.1641532e-10f; }
GT_HD inline float philox_uniform(uint64_t seed, uint64_t i) { return philox_to_uniform(philox_bits(seed, i)); }

// Box-Muller on one uniform pair (u1, u2): the even element takes the sine, the odd one the cosine.
GT_HD inline void box_muller(float u1, float u2, float& even, float& odd) {
  float r = sqrtf(-2.0f * logf(u1));
  float theta = 6.2831853071795864f * u2;
  even = r * sinf(theta);
  odd = r * cosf(theta);
}

// N(0, 1) by Box-Muller on the uniform pair (2k, 2k+1), as cuRAND does: element 2k takes the sine
// branch, 2k+1 the cosine. Equal to cuRAND's normals up to the last bits of sin/cos/log.
GT_HD inline float philox_normal(uint64_t seed, uint64_t i) {
  uint64_t k = i & ~1ull;
  float e, o;
  box_muller(philox_uniform(seed, k), philox_uniform(seed, k + 1), e, o);
  return (i & 1) ? o : e;
}

// The four normals 4 * group .. 4 * group + 3 of the stream: one Philox block, two Box-Muller pairs.
GT_HD inline void philox_normal4(uint64_t seed, uint64_t group, float z[4]) {
  const Philox4 b = philox_block(seed, group);
  box_muller(philox_to_uniform(b.v[0]), philox_to_uniform(b.v[1]), z[0], z[1]);
  box_muller(philox_to_uniform(b.v[2]), philox_to_uniform(b.v[3]), z[2], z[3]);
}

// Host loops over a run of the stream: calls f(j, z) with z = philox_normal(seed, first + j) for
// j = 0 .. n-1, computing each Philox block once (philox_normal alone computes two blocks and both
// sin and cos for every element it returns: 8x the Philox work of this loop).
template <class F>
inline void philox_normals(uint64_t seed, uint64_t first, int64_t n, F&& f) {
  const uint64_t end = first + (uint64_t)n;
  for (uint64_t i = first; i < end;) {
    float z[4];
    philox_normal4(seed, i >> 2, z);
    const uint64_t stop = ((i >> 2) + 1) * 4 < end ? ((i >> 2) + 1) * 4 : end;
    for (; i < stop; ++i) f((int64_t)(i - first), z[i & 3]);
  }
}

}  // namespace gt
