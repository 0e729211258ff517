// diffusion.h: the fused kernels of a DDPM (Ho et al. 2020) in the course's notation — a forward
// chain x_t = √α_t x_{t−1} + √β_t z_t with, in closed form,
//
//   x_t = √ᾱ_t x₀ + √β̄_t ε,   ᾱ_t = ᾱ_{t−1} α_t,   β̄_t = α_t β̄_{t−1} + β_t,   ε ~ N(0, I).
//
// Each kernel gathers its coefficients per sample from float tables indexed directly by t
// (entry 0 is t = 0: ᾱ_0 = 1, β̄_0 = 0), built once by models/diffusion.h; t is an int32 per sample,
// so one launch serves a batch of mixed timesteps (training) as well as one shared t (sampling).
//
// q_sample        x_t = √ᾱ_t x₀ + √β̄_t ε,  ε drawn in the kernel and written out (the target)
// eps loss        mse_b = Σ_j (ε̂_bj − ε_bj)² / D                       (per sample, (B))
//                 dε̂ += 2 (ε̂ − ε) / D · dmse_b;   dε += −2 (ε̂ − ε) / D · dmse_b
// ancestral step  x_{t−1} = (1/√α_t)(x_t − (β_t/√β̄_t) ε̂) + σ_t z,  z ~ N(0, I), z = 0 at t = 1
//                 (the mean is the posterior mean of q(x_{t−1} | x_t, x₀) with x₀ replaced by x̂₀)
// predicted x₀    x̂₀ = (x_t − √β̄_t ε̂) / √ᾱ_t                        (q_sample solved for x₀)
// DDIM (η = 0)    x_{t'} = √ᾱ_{t'} x̂₀ + √(1 − ᾱ_{t'}) ε̂  for t' < t (Song et al. 2021); VP only,
//                 where 1 − ᾱ = β̄, so √β̄_{t'} is read from the same table; t' = 0 gives x̂₀.
//
// The noise comes from the shared Philox stream (core/philox.h): element i of a (B, D) launch is
// stream element offset + i, exactly what gt::Generator::normal would write there, so CPU and CUDA
// runs from one seed see the same ε and z (as the VAE's reparameterisation does, kernels/vae.h).
// The ancestral step consumes B·D stream elements even where t = 1 leaves z unused: the stream
// position never depends on the timesteps.
//
// Timesteps out of range never read outside the tables: the affected sample's outputs are NaN
// (a CUDA kernel cannot throw without a synchronisation; the tensor wrappers check CPU inputs and
// throw first, and a trainer's non-finite check catches the NaN on the GPU).
//
// The ε-loss cannot be fused into q_sample: ε̂ comes from the network, which runs between them.
//
//   gt::DiffusionTables tab = sched.tables();   // models/diffusion.h
//   gt::q_sample_cpu(xt, eps, x0, t, tab, B, D, seed, offset);
//   gt::ddpm_step_cuda(x_prev, x0_pred, xt, eps_pred, t, tab, B, D, seed, offset);
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace gt {

// Raw views of a schedule's device tables, each (T + 1) floats indexed by t = 0..T. Passed by
// value to the CUDA kernels.
struct DiffusionTables {
  const float* sqrt_alpha_bar = nullptr;  // √ᾱ_t
  const float* sqrt_beta_bar = nullptr;   // √β̄_t
  const float* inv_sqrt_alpha = nullptr;  // 1/√α_t      (1 at t = 0)
  const float* eps_coef = nullptr;        // β_t/√β̄_t    (0 at t = 0)
  const float* sigma = nullptr;           // σ_t         (0 at t = 0)
  int64_t T = 0;
};

// ---- the per-element maths, shared by the CPU loops and the CUDA kernels ----
GT_HD inline float q_sample_term(float x0, float eps, float sqrt_ab, float sqrt_bb) {
  return sqrt_ab * x0 + sqrt_bb * eps;
}
GT_HD inline float x0_from_eps(float xt, float eps_pred, float sqrt_ab, float sqrt_bb) {
  return (xt - sqrt_bb * eps_pred) / sqrt_ab;
}
GT_HD inline float ddpm_step_term(float xt, float eps_pred, float inv_sqrt_a, float eps_coef, float sigma, float z) {
  return inv_sqrt_a * (xt - eps_coef * eps_pred) + sigma * z;
}
GT_HD inline float ddim_step_term(float x0_pred, float eps_pred, float sqrt_ab_next, float sqrt_bb_next) {
  return sqrt_ab_next * x0_pred + sqrt_bb_next * eps_pred;
}
GT_HD inline float eps_loss_term(float eps_pred, float eps) {
  const float d = eps_pred - eps;
  return d * d;
}
// lo <= t <= T, the range a kernel may gather.
GT_HD inline bool timestep_ok(int32_t t, int64_t lo, int64_t T) { return (int64_t)t >= lo && (int64_t)t <= T; }

// xt, eps, x0 (B, D); t (B) in 0..T. eps receives the draws.
void q_sample_cpu(float* xt, float* eps, const float* x0, const int32_t* t, DiffusionTables tab, int64_t B, int64_t D,
                  uint64_t seed, uint64_t offset);
void q_sample_cuda(float* xt, float* eps, const float* x0, const int32_t* t, DiffusionTables tab, int64_t B,
                   int64_t D, uint64_t seed, uint64_t offset);

// mse (B); eps_pred, eps (B, D).
void ddpm_eps_loss_forward_cpu(float* mse, const float* eps_pred, const float* eps, int64_t B, int64_t D);
void ddpm_eps_loss_forward_cuda(float* mse, const float* eps_pred, const float* eps, int64_t B, int64_t D);
// deps_pred, deps (B, D), either may be null (input needs no gradient); dmse (B).
void ddpm_eps_loss_backward_cpu(float* deps_pred, float* deps, const float* dmse, const float* eps_pred,
                                const float* eps, int64_t B, int64_t D);
void ddpm_eps_loss_backward_cuda(float* deps_pred, float* deps, const float* dmse, const float* eps_pred,
                                 const float* eps, int64_t B, int64_t D);

// x_prev, xt, eps_pred (B, D); x0_pred (B, D) or null; t (B) in 1..T.
void ddpm_step_cpu(float* x_prev, float* x0_pred, const float* xt, const float* eps_pred, const int32_t* t,
                   DiffusionTables tab, int64_t B, int64_t D, uint64_t seed, uint64_t offset);
void ddpm_step_cuda(float* x_prev, float* x0_pred, const float* xt, const float* eps_pred, const int32_t* t,
                    DiffusionTables tab, int64_t B, int64_t D, uint64_t seed, uint64_t offset);

// x_next, xt, eps_pred (B, D); x0_pred (B, D) or null; t (B) in 1..T; t_next (B) in 0..t−1.
void ddim_step_cpu(float* x_next, float* x0_pred, const float* xt, const float* eps_pred, const int32_t* t,
                   const int32_t* t_next, DiffusionTables tab, int64_t B, int64_t D);
void ddim_step_cuda(float* x_next, float* x0_pred, const float* xt, const float* eps_pred, const int32_t* t,
                    const int32_t* t_next, DiffusionTables tab, int64_t B, int64_t D);

}  // namespace gt
