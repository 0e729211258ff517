// linear.cpp: the fully connected layer on the CPU (equations in linear.h). The forward is one GEMM
// whose thread blocks start from the bias and apply the activation (kernels/matmul.h's
// gemm_bias_act_cpu); the backward pass before the GEMMs makes g = dy act'(y) and the bias gradient,
// columns split over threads. The bias gradient sums rows in a fixed order (serially per column
// chunk), so it is deterministic for any thread count.
#include "kernels/linear.h"

#include <algorithm>

#include "kernels/matmul.h"
#include "kernels/parallel.h"

namespace gt {

namespace {
template <LinearAct A>
void backward_cols(float* g, float* db, const float* dy, const float* y, int64_t B, int64_t O, int64_t c0,
                   int64_t c1, float db_beta) {
  // Column chunk [c0, c1): rows in order, so db's sums have a fixed order.
  if (db) {
    for (int64_t o = c0; o < c1; ++o) db[o] = db_beta == 0.f ? 0.f : db[o];
  }
  for (int64_t r = 0; r < B; ++r) {
    const float* dyr = dy + r * O;
    const float* yr = y + r * O;
    float* gr = g + r * O;
    if (A == LinearAct::None) {
      if (gr != dyr)
        for (int64_t o = c0; o < c1; ++o) gr[o] = dyr[o];
    } else {
      for (int64_t o = c0; o < c1; ++o) gr[o] = yr[o] > 0.f ? dyr[o] : 0.f;
    }
    if (db)
      for (int64_t o = c0; o < c1; ++o) db[o] += gr[o];
  }
}
}  // namespace

void linear_forward_cpu(float* y, const float* x, const float* w, const float* b, int64_t B, int64_t I, int64_t O,
                        LinearAct act) {
  gemm_bias_act_cpu(false, true, B, O, I, x, w, b, act == LinearAct::Relu, y);
}

void linear_backward_act_cpu(float* g, float* db, const float* dy, const float* y, int64_t B, int64_t O,
                             LinearAct act, float db_beta) {
  // Split columns, not rows: each thread owns its slice of db, no reduction across threads.
  // Grain: a VAE layer (B 128, O 400: a mask, a copy and a column sum per element) takes ~35 us on
  // one thread, so it is worth two.
  const int64_t grain = std::max<int64_t>(64, kElementwiseGrain / std::max<int64_t>(B, 1));
  parallel_for(O, grain, [&](int64_t c0, int64_t c1) {
    if (act == LinearAct::Relu)
      backward_cols<LinearAct::Relu>(g, db, dy, y, B, O, c0, c1, db_beta);
    else
      backward_cols<LinearAct::None>(g, db, dy, y, B, O, c0, c1, db_beta);
  });
}

}  // namespace gt
