// diffusion.h: DDPM noise schedules (Ho et al. 2020; Nichol & Dhariwal 2021) and the tensor-level
// wrappers of the fused diffusion kernels (kernels/diffusion.h), in the course's notation:
//
//   forward chain   x_t = √α_t x_{t−1} + √β_t z_t,           t = 1..T
//   closed form     x_t = √ᾱ_t x₀ + √β̄_t ε,  ᾱ_t = ᾱ_{t−1} α_t,  β̄_t = α_t β̄_{t−1} + β_t,
//                   ᾱ_0 = 1, β̄_0 = 0   (unrolled: β̄_t = Σ_{s≤t} β_s Π_{s<r≤t} α_r)
//   VP form         α_t = 1 − β_t, so ᾱ_t + β̄_t = 1 for every t (induction on the recursions)
//   VE form         α_t = 1, so ᾱ_t = 1 and β̄_t = Σ_{s≤t} β_s
//   linear β        β_t = (1 − (t−1)/(T−1))·β_start + ((t−1)/(T−1))·β_end  (1e-4 .. 0.02, T = 1000)
//   cosine β        f(t) = cos²(((t/T) + s)/(1 + s) · π/2),  β_t = min(1 − f(t)/f(t−1), max_beta),
//                   s = 0.008, max_beta = 0.999: the VP ᾱ_t is f(t)/f(0) until the clip
//   reverse step    x_{t−1} = (1/√α_t)(x_t − (β_t/√β̄_t) ε̂) + σ_t z,   z = 0 at t = 1
//   σ_t²            β_t ("beta"), or the posterior variance β̃_t = β_t β̄_{t−1}/β̄_t ("posterior"),
//                   the variance of q(x_{t−1} | x_t, x₀) (so β̃_1 = 0)
//
// Index convention: every table has T + 1 entries and is indexed by t itself. Entry 0 is t = 0,
// the data: β_0 = 0, α_0 = 1, ᾱ_0 = 1, β̄_0 = 0, σ_0 = 0, and the reverse-step coefficients there
// are 1/√α_0 = 1 and β_0/√β̄_0 := 0 (never used: the reverse step needs t >= 1). Entries 1..T are
// the course's t = 1..T. So q_sample at t = 0 returns x₀, and a DDIM step to t' = 0 returns x̂₀.
//
// The tables are computed once in double from the recursions (host_*() keeps them) and stored as
// float tensors on the schedule's device for the kernels.
//
//   gt::diffusion::ScheduleConfig cfg;            // linear, T = 1000, VP, σ_t² = β_t
//   gt::diffusion::Schedule sched(cfg, gt::Device::CUDA);
//   gt::Tensor eps;
//   gt::Tensor xt = gt::diffusion::q_sample(x0, t, sched, gen, &eps);   // t (B) int32 in 1..T
//   gt::Tensor loss = gt::mean(gt::ddpm_eps_loss(unet(xt, t), eps));
//   gt::Tensor x_prev = gt::diffusion::ddpm_step(xt, eps_pred, t, sched, gen, &x0_pred);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/diffusion.h"

namespace gt::diffusion {

struct ScheduleConfig {
  std::string schedule = "linear";  // "linear" or "cosine"
  int64_t T = 1000;                 // number of noising steps, >= 2
  std::string form = "vp";          // "vp" (α_t = 1 − β_t) or "ve" (α_t = 1)
  std::string variance = "beta";    // σ_t²: "beta" (β_t) or "posterior" (β̃_t)
  double beta_start = 1e-4;         // linear: β_1
  double beta_end = 0.02;           // linear: β_T
  double cosine_s = 0.008;          // cosine: the offset s
  double max_beta = 0.999;          // cosine: the clip on β_t

  std::string to_json() const;
  // Parses to_json()'s output; keys left out keep their defaults; unknown keys or bad values throw
  // gt::Error naming them.
  static ScheduleConfig from_json(const std::string& json);
  void validate() const;  // throws gt::Error naming the bad field and value
};

class Schedule {
 public:
  explicit Schedule(const ScheduleConfig& config = {}, Device device = Device::CPU);
  const ScheduleConfig& config() const { return cfg_; }
  int64_t T() const { return cfg_.T; }
  Device device() const { return device_; }
  bool vp() const { return cfg_.form == "vp"; }
  // The same schedule with its tables on `device` (this one's host tables, copied).
  Schedule to(Device device) const;

  // Host tables in double, T + 1 entries indexed by t (entry 0: t = 0, see the header comment).
  const std::vector<double>& host_beta() const { return beta_; }
  const std::vector<double>& host_alpha() const { return alpha_; }
  const std::vector<double>& host_alpha_bar() const { return alpha_bar_; }
  const std::vector<double>& host_beta_bar() const { return beta_bar_; }
  const std::vector<double>& host_sigma2() const { return sigma2_; }

  // Device tables, float (T + 1), indexed by t.
  const Tensor& sqrt_alpha_bar() const { return sqrt_alpha_bar_; }
  const Tensor& sqrt_beta_bar() const { return sqrt_beta_bar_; }
  const Tensor& inv_sqrt_alpha() const { return inv_sqrt_alpha_; }
  const Tensor& eps_coef() const { return eps_coef_; }  // β_t / √β̄_t
  const Tensor& sigma() const { return sigma_; }
  DiffusionTables tables() const;  // raw pointers for the kernels

 private:
  void upload();  // the device tables from the host ones
  ScheduleConfig cfg_;
  Device device_ = Device::CPU;
  std::vector<double> beta_, alpha_, alpha_bar_, beta_bar_, sigma2_;
  Tensor sqrt_alpha_bar_, sqrt_beta_bar_, inv_sqrt_alpha_, eps_coef_, sigma_;
};

// None of these record on the tape: x₀ is data, and sampling runs without gradients.
// x0, xt, eps_pred: (B, ...) with any trailing shape (images (B, C, H, W) or rows (B, D)); t, t_next:
// (B) int32 on the same device as the schedule. On the CPU out-of-range timesteps throw (naming the
// sample and value); on CUDA that sample's outputs are NaN (kernels/diffusion.h says why).

// x_t = √ᾱ_t x₀ + √β̄_t ε with ε the next x0.numel() normals of gen's Philox stream (exactly what
// gen.normal would draw; gen advances). t in 0..T. eps_out, when given, receives ε (the target).
Tensor q_sample(const Tensor& x0, const Tensor& t, const Schedule& sched, Generator& gen, Tensor* eps_out = nullptr);

// One ancestral step x_t -> x_{t−1} = (1/√α_t)(x_t − (β_t/√β̄_t) ε̂) + σ_t z, z the next
// xt.numel() normals of gen's stream (gen advances by that many even where t = 1, where z = 0).
// t in 1..T. x0_pred, when given, receives x̂₀ = (x_t − √β̄_t ε̂)/√ᾱ_t.
Tensor ddpm_step(const Tensor& xt, const Tensor& eps_pred, const Tensor& t, const Schedule& sched, Generator& gen,
                 Tensor* x0_pred = nullptr);

// One deterministic DDIM step (η = 0) x_t -> x_{t'} = √ᾱ_{t'} x̂₀ + √(1 − ᾱ_{t'}) ε̂, VP schedules
// only. t in 1..T, t_next in 0..t−1 per sample (t_next = 0 returns x̂₀). x0_pred as in ddpm_step.
Tensor ddim_step(const Tensor& xt, const Tensor& eps_pred, const Tensor& t, const Tensor& t_next,
                 const Schedule& sched, Tensor* x0_pred = nullptr);

}  // namespace gt::diffusion
