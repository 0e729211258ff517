// diffusion.cpp: CPU references of the fused DDPM kernels — one loop per sample (rows in parallel):
// the sample's coefficients are gathered from the tables once, then the inner loop over D is
// contiguous. The maths are the GT_HD terms of diffusion.h, shared with diffusion.cu.
#include "kernels/diffusion.h"

#include <algorithm>
#include <limits>

#include "core/philox.h"
#include "kernels/parallel.h"

namespace gt {

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Rows per parallel chunk. A Philox normal costs ~10x an add, so loops that draw noise are worth a
// thread at an eighth of the plain elementwise grain (as reparam_forward_cpu does).
int64_t row_grain(int64_t D, int64_t grain) { return std::max<int64_t>(1, grain / std::max<int64_t>(D, 1)); }

template <class Body>
void for_rows(int64_t B, int64_t D, int64_t grain, Body body) {
  parallel_for(B, row_grain(D, grain), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) body(b, b * D);
  });
}
}  // namespace

void q_sample_cpu(float* xt, float* eps, const float* x0, const int32_t* t, DiffusionTables tab, int64_t B, int64_t D,
                  uint64_t seed, uint64_t offset) {
  for_rows(B, D, kElementwiseGrain / 8, [&](int64_t b, int64_t o) {
    const bool ok = timestep_ok(t[b], 0, tab.T);
    const float a = ok ? tab.sqrt_alpha_bar[t[b]] : kNaN, s = ok ? tab.sqrt_beta_bar[t[b]] : kNaN;
    philox_normals(seed, offset + (uint64_t)o, D, [&](int64_t j, float e) { eps[o + j] = e; });
    for (int64_t i = o; i < o + D; ++i) xt[i] = q_sample_term(x0[i], eps[i], a, s);
  });
}

void ddpm_eps_loss_forward_cpu(float* mse, const float* eps_pred, const float* eps, int64_t B, int64_t D) {
  const float inv_d = 1.f / (float)D;
  for_rows(B, D, kElementwiseGrain, [&](int64_t b, int64_t o) {
    float s = 0.f;
    for (int64_t i = o; i < o + D; ++i) s += eps_loss_term(eps_pred[i], eps[i]);
    mse[b] = s * inv_d;
  });
}

void ddpm_eps_loss_backward_cpu(float* deps_pred, float* deps, const float* dmse, const float* eps_pred,
                                const float* eps, int64_t B, int64_t D) {
  // d mse_b / d ε̂_bj = 2 (ε̂_bj − ε_bj) / D = −d mse_b / d ε_bj
  for_rows(B, D, kElementwiseGrain, [&](int64_t b, int64_t o) {
    const float g = 2.f * dmse[b] / (float)D;
    if (deps_pred)
      for (int64_t i = o; i < o + D; ++i) deps_pred[i] += g * (eps_pred[i] - eps[i]);
    if (deps)
      for (int64_t i = o; i < o + D; ++i) deps[i] -= g * (eps_pred[i] - eps[i]);
  });
}

void ddpm_step_cpu(float* x_prev, float* x0_pred, const float* xt, const float* eps_pred, const int32_t* t,
                   DiffusionTables tab, int64_t B, int64_t D, uint64_t seed, uint64_t offset) {
  for_rows(B, D, kElementwiseGrain / 8, [&](int64_t b, int64_t o) {
    const int32_t tb = t[b];
    const bool ok = timestep_ok(tb, 1, tab.T);
    const float isa = ok ? tab.inv_sqrt_alpha[tb] : kNaN, c = ok ? tab.eps_coef[tb] : kNaN;
    const float sig = ok ? tab.sigma[tb] : kNaN;
    if (tb == 1) {  // z̃_1 = 0: the last step returns the mean (and skips the draws)
      for (int64_t i = o; i < o + D; ++i) x_prev[i] = ddpm_step_term(xt[i], eps_pred[i], isa, c, 0.f, 0.f);
    } else {
      philox_normals(seed, offset + (uint64_t)o, D, [&](int64_t j, float z) {
        x_prev[o + j] = ddpm_step_term(xt[o + j], eps_pred[o + j], isa, c, sig, z);
      });
    }
    if (x0_pred) {
      const float a = ok ? tab.sqrt_alpha_bar[tb] : kNaN, s = ok ? tab.sqrt_beta_bar[tb] : kNaN;
      for (int64_t i = o; i < o + D; ++i) x0_pred[i] = x0_from_eps(xt[i], eps_pred[i], a, s);
    }
  });
}

void ddim_step_cpu(float* x_next, float* x0_pred, const float* xt, const float* eps_pred, const int32_t* t,
                   const int32_t* t_next, DiffusionTables tab, int64_t B, int64_t D) {
  for_rows(B, D, kElementwiseGrain, [&](int64_t b, int64_t o) {
    const int32_t tb = t[b], tn = t_next[b];
    const bool ok = timestep_ok(tb, 1, tab.T) && timestep_ok(tn, 0, (int64_t)tb - 1);
    const float a = ok ? tab.sqrt_alpha_bar[tb] : kNaN, s = ok ? tab.sqrt_beta_bar[tb] : kNaN;
    const float an = ok ? tab.sqrt_alpha_bar[tn] : kNaN, sn = ok ? tab.sqrt_beta_bar[tn] : kNaN;
    for (int64_t i = o; i < o + D; ++i) {
      const float x0 = x0_from_eps(xt[i], eps_pred[i], a, s);
      if (x0_pred) x0_pred[i] = x0;
      x_next[i] = ddim_step_term(x0, eps_pred[i], an, sn);
    }
  });
}

}  // namespace gt
