// ddpm.h: a denoising diffusion probabilistic model (Ho et al. 2020) — the U-Net ε_θ (models/unet.h),
// the noise schedule (models/diffusion.h), the ε-prediction loss and the samplers. docs/ddpm.md
// derives every line; the comments name the kernel behind each formula.
//
// Training (one step, images x₀ scaled to [−1, 1]):
//   t ~ U{1, ..., T} per image, ε ~ N(0, I)
//   x_t = √ᾱ_t x₀ + √β̄_t ε                               q_sample       kernels/diffusion.h
//   L   = mean_b ||ε_θ(x_t, t) − ε||² / D                 ddpm_eps_loss  (the simplified ELBO, L_simple)
//   conditional models: the label is replaced by "no label" with probability label_dropout, so one
//   network learns ε_θ(x_t, t, y) and ε_θ(x_t, t) (classifier-free guidance, Ho & Salimans 2022)
//
// Sampling from x_T ~ N(0, I):
//   ancestral  x_{t−1} = (1/√α_t)(x_t − (β_t/√β̄_t) ε̂) + σ_t z, z = 0 at t = 1     ddpm_step
//   DDIM (η=0) x_{t'} = √ᾱ_{t'} x̂₀ + √(1−ᾱ_{t'}) ε̂ over S evenly spaced t            ddim_step
//   guidance   ε̂ = (1 + w) ε_θ(x_t, t, y) − w ε_θ(x_t, t)   (one batched forward of both halves)
//
// The network reads t as a float (the value fed to the sinusoidal embedding is t itself, 1..T).
//
//   gt::DdpmConfig cfg;                                   // U-Net c = 32, linear schedule, T = 1000
//   gt::Generator init(1), gen(2);
//   gt::Ddpm model(cfg, init, gt::Device::CPU);
//   gt::DdpmLoss l = model.loss(x0, nullptr, gen);        // x0 (B, 1, 28, 28) in [-1, 1]
//   gt::backward(l.loss);
//   gt::Tensor imgs = gt::ddpm_sample(model.net(), model.schedule(), opts, gen);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/diffusion.h"
#include "models/unet.h"

namespace gt {

struct DdpmConfig {
  UNetConfig unet;
  diffusion::ScheduleConfig schedule;
  int64_t height = 28, width = 28;  // image size (one channel: unet.in_channels)
  float label_dropout = 0.1f;       // conditional models: P(label -> "no label") in training

  std::string to_json() const;
  // Parses to_json()'s output; keys left out keep their defaults; unknown keys or bad values throw
  // gt::Error naming them.
  static DdpmConfig from_json(const std::string& json);
  void validate() const;
};

struct DdpmLoss {
  Tensor loss;                // () the mean over the batch: what backward() starts from
  Tensor per_sample;          // (B) ||ε̂ − ε||² / D
  std::vector<int32_t> t;     // (B) the timesteps drawn (host copy, for the per-bucket report)
};

class Ddpm {
 public:
  Ddpm(const DdpmConfig& config, Generator& init, Device device);
  const DdpmConfig& config() const { return cfg_; }
  UNet& net() { return *net_; }
  const UNet& net() const { return *net_; }
  const diffusion::Schedule& schedule() const { return sched_; }
  Device device() const { return device_; }

  // x0 (B, C, H, W) in [−1, 1] on the model's device; labels int32 (B) in 0..K−1 for a conditional
  // model (nullptr otherwise). Draws t, the label dropout and ε from gen, in that order.
  DdpmLoss loss(const Tensor& x0, const Tensor* labels, Generator& gen) const;

 private:
  DdpmConfig cfg_;
  Device device_;
  diffusion::Schedule sched_;
  std::shared_ptr<UNet> net_;
};

struct SampleOptions {
  int64_t n = 64;
  std::string sampler = "ddpm";  // "ddpm" (ancestral, T steps) or "ddim" (steps evenly spaced)
  int64_t steps = 0;             // ddim: number of steps (0: 50); ddpm: must be 0 or T
  int label = -1;                // conditional models: the class to draw (-1: no label)
  float guidance = 0.f;          // classifier-free guidance weight w (conditional models, label >= 0)
  int64_t batch = 64;            // images per network call
};

// Called after every step with t (the timestep just reached: 0 is the final image), x_t and the
// predicted x̂₀ of the step that produced it; both (B, C, H, W) of the current batch.
using SampleObserver = std::function<void(int64_t t, const Tensor& xt, const Tensor& x0_pred, int64_t first)>;

// Images (n, C, H, W) in [−1, 1] (not clipped), drawn with `net` (typically the EMA weights) without
// recording a tape. Validates the options (errors name them).
Tensor ddpm_sample(const UNet& net, const diffusion::Schedule& sched, int64_t height, int64_t width,
                   const SampleOptions& opts, Generator& gen, const SampleObserver& observe = nullptr);

}  // namespace gt
