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
