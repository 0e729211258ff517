// optim.cpp: CPU fused optimiser steps (one vectorisable loop each, threaded for big tensors).
#include "kernels/optim.h"

#include "kernels/parallel.h"

namespace gt {

// The hyper-parameters are copied into locals inside each chunk: read through a reference (or
// the closure) their float fields might alias the float arrays being written, which stops GCC
// hoisting them and so vectorising the loop.
void adam_step_cpu(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& hr) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    const AdamHyper h = hr;
    for (int64_t i = b; i < e; ++i) adam_update(p[i], g[i], m[i], v[i], h);
  });
}

void adam_step_multi_cpu(const AdamTensor* tensors, int64_t count, const AdamHyper& hr) {
  int64_t total = 0;
  for (int64_t t = 0; t < count; ++t) total += tensors[t].n;
  // Thread k of T updates the k-th of T equal slices of every tensor: for a large tensor the same
  // slices as adam_step_cpu's, which match the blocks the next forward's GEMMs give each thread (a linear
  // layer's weight rows), so each thread finds its weights in its own cache. (One slice of the
  // joint index space per thread instead measured 4% slower on the VAE's epoch.)
  const int64_t threads = total < kElementwiseGrain ? 1 : omp_get_max_threads();
  parallel_for(threads, 1, [&](int64_t k0, int64_t k1) {
    const AdamHyper h = hr;
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t t = 0; t < count; ++t) {
        const int64_t n = tensors[t].n, lo = n * k / threads, hi = n * (k + 1) / threads;
        float* __restrict p = tensors[t].p;
        const float* __restrict g = tensors[t].g;
        float* __restrict m = tensors[t].m;
        float* __restrict v = tensors[t].v;
        for (int64_t i = lo; i < hi; ++i) adam_update(p[i], g[i], m[i], v[i], h);
      }
  });
}

void sgd_step_cpu(float* p, const float* g, float* buf, int64_t n, const SgdHyper& hr) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    const SgdHyper h = hr;
    for (int64_t i = b; i < e; ++i) sgd_update(p[i], g[i], buf ? buf + i : nullptr, h);
  });
}

void ema_update_cpu(float* ema, const float* p, int64_t n, float decay) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    const float w = 1.f - decay;
    for (int64_t i = b; i < e; ++i) ema_update(ema[i], p[i], w);
  });
}

}  // namespace gt
