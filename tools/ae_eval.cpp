// ae_eval.cpp: reconstruction error, PSNR (before/after denoising) and compression of an autoencoder
// (the formulas are in ae_eval.h). Sums are accumulated in double, in data order, so an evaluation
// is deterministic and a resumed run logs the same numbers as an uninterrupted one.
#include "tools/ae_eval.h"

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/ops.h"

namespace gt::tools {

namespace {

inline float clamp01(float v) { return v < 0.f ? 0.f : v > 1.f ? 1.f : v; }

// Running sums over pixels of one comparison against the clean images.
struct Sse {
  double raw = 0;      // sum (y - x)^2 of the unclamped y
  double clamped = 0;  // sum (clamp(y) - x)^2
  // y, x (n) host arrays.
  void add(const float* y, const float* x, int64_t n) {
    double r = 0, c = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = (double)y[i] - (double)x[i], dc = (double)clamp01(y[i]) - (double)x[i];
      r += d * d;
      c += dc * dc;
    }
    raw += r;
    clamped += c;
  }
};

}  // namespace

double psnr_db(double mse) {
  return mse > 0 ? 10.0 * std::log10(1.0 / mse) : std::numeric_limits<double>::infinity();
}

AeEval evaluate_ae(const Autoencoder& ae, const Dataset& data, int64_t batch, Generator& gen, Device device) {
  GT_CHECK(batch >= 1, "evaluate_ae: batch must be >= 1, got " << batch);
  GT_CHECK(data.size() > 0, "evaluate_ae: the data set " << data.name << " is empty");
  GT_CHECK(data.dim() == ae.config().input_dim(),
           "evaluate_ae: " << data.name << " has " << data.height << "x" << data.width << " images but the model expects "
                           << ae.config().height << "x" << ae.config().width);
  NoGradGuard no_grad;
  const bool denoising = ae.config().kind == "denoising";
  const NoiseSpec noise = ae.config().noise_spec();
  const int64_t N = data.size(), D = data.dim();
  const float* host = data.images.data();
  Sse out, noisy, denoised;
  Batcher batches(data, batch, 0, device, /*shuffle=*/false);
  for (batches.start_epoch(0); batches.next();) {
    const Tensor& x = batches.x();
    const float* xb = host + batches.batch_index() * batch * D;
    const int64_t n = x.size(0) * D;
    out.add(ae.reconstruct(x).to_vector().data(), xb, n);
    if (denoising) {
      Tensor xt = corrupt(x, noise, gen);
      noisy.add(xt.to_vector().data(), xb, n);
      denoised.add(ae.reconstruct(xt).to_vector().data(), xb, n);
    }
  }
  AeEval ev;
  ev.n = N;
  ev.recon = out.raw / (double)N;
  const double pixels = (double)N * (double)D;
  ev.psnr = psnr_db(out.clamped / pixels);
  if (denoising) {
    ev.denoising = true;
    ev.psnr_noisy = psnr_db(noisy.clamped / pixels);
    ev.psnr_denoised = psnr_db(denoised.clamped / pixels);
  }
  return ev;
}

Compression compression(int64_t latent, int64_t input_dim) {
  GT_CHECK(latent >= 1 && input_dim >= 1,
           "compression: latent and input_dim must be >= 1, got " << latent << " and " << input_dim);
  Compression c;
  c.latent = latent;
  c.input_dim = input_dim;
  c.code_bits = 32 * latent;
  c.raw_bits = 8 * input_dim;
  c.ratio = (double)c.raw_bits / (double)c.code_bits;
  return c;
}

}  // namespace gt::tools
