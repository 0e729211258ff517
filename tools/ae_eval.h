// ae_eval.h: how well a trained autoencoder reconstructs a data set, and what its code costs —
// the figures `gentape train` logs per epoch and `gentape eval` reports for ae, sparse-ae and
// denoising-ae runs.
//
//   recon       mean_n ||D(E(x_n)) - x_n||^2, the raw (linear) output: the reconstruction term of the
//               training loss, per image (sum over pixels)
//   psnr        10 log10(1 / MSE) in dB, MSE over every pixel of the images the model produces,
//               clamp(D(E(x)), 0, 1), against x (models/metrics.h's PSNR with max 1). Clamping moves
//               no pixel away from a target in [0, 1], so psnr >= 10 log10(D / recon).
//   denoising   before/after: x~ = corrupt(x) with the run's noise spec (seeded); psnr_noisy compares
//               clamp(x~, 0, 1) with x (clipping is the free denoiser anyone gets, so the baseline is
//               not flattered), psnr_denoised compares clamp(D(E(x~)), 0, 1) with x. The model is fed
//               the unclipped x~, as in training.
//   compression a code of k float32 numbers costs 32 k bits; the raw image d 8-bit pixels, 8 d bits:
//               ratio = 8 d / (32 k), e.g. 784 * 8 / (2 * 32) = 98 for k = 2.
//
//   gt::Generator gen(gt::tools::stream_seed(seed, "eval"));
//   gt::tools::AeEval ev = gt::tools::evaluate_ae(ae, data.test, 500, gen, gt::Device::CPU);
//   gt::tools::Compression c = gt::tools::compression(2, 784);   // c.ratio == 98
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "models/ae.h"
#include "models/data.h"

namespace gt::tools {

struct AeEval {
  int64_t n = 0;
  double recon = 0;          // mean per-image squared error of the raw output
  double psnr = 0;           // dB, clamped output vs x
  bool denoising = false;    // the two below are set (kind "denoising" only)
  double psnr_noisy = 0;     // dB, clamp(x~, 0, 1) vs x
  double psnr_denoised = 0;  // dB, clamp(D(E(x~)), 0, 1) vs x
};

// No gradients; data in order, `batch` rows at a time on `device`; gen supplies the denoising
// corruption (the batches draw from it in order, so re-seeding gen repeats the evaluation exactly).
AeEval evaluate_ae(const Autoencoder& ae, const Dataset& data, int64_t batch, Generator& gen, Device device);

struct Compression {
  int64_t latent = 0, input_dim = 0;
  int64_t code_bits = 0;  // 32 k
  int64_t raw_bits = 0;   // 8 d
  double ratio = 0;       // raw_bits / code_bits
};
Compression compression(int64_t latent, int64_t input_dim);

// 10 log10(1 / mse): PSNR in dB of images in [0, 1]; +inf when mse == 0.
double psnr_db(double mse);

}  // namespace gt::tools
