// vae.h: the variational autoencoder (Kingma & Welling 2014) in the course's notation.
//
//   encoder   q_phi(z|x) = N(mu_phi(x), diag sigma^2_phi(x)),  logvar = log sigma^2
//   sampling  z = mu + sigma * eps, eps ~ N(0, I)           (reparameterize: kernels/vae.h)
//   prior     p(z) = N(0, I)
//   decoder   p_theta(x|z) = Bernoulli(sigmoid(logits)) or N(mean, s^2 I) with s^2 fixed or learned
//   loss      -ELBO = E_q[-log p_theta(x|z)] + beta * KL(q_phi(z|x) || p(z)), one sample of z,
//             averaged over the batch (nats per sample)
//
// The default MLP (784-400-20, ReLU) uses pytorch/examples' VAE parameter names and shapes —
// fc1 (400, 784), fc21 and fc22 (20, 400), fc3 (400, 20), fc4 (784, 400) — so that example's
// load_state_dict accepts a gentape checkpoint. Deeper MLPs and the conv variant have their own
// documented names (vae.cpp). A conditional VAE feeds a one-hot label to encoder and decoder.
//
//   gt::VaeConfig cfg;                        // defaults: MLP 784-400-20, Bernoulli decoder
//   gt::Generator init(1), noise(2);
//   gt::Vae vae(cfg, init);
//   gt::VaeLoss l = vae.loss(x, labels, noise);   // x (B, 784) in [0, 1]
//   gt::backward(l.loss);
#pragma once

#include <string>
#include <vector>

#include "core/rng.h"
#include "models/data.h"
#include "models/layers.h"

namespace gt {

struct VaeConfig {
  std::string arch = "mlp";            // "mlp" or "conv"
  int64_t height = 28, width = 28;     // input images, one channel; input_dim = height * width
  std::vector<int64_t> hidden = {400};  // MLP hidden widths (encoder; the decoder mirrors them)
  int64_t latent = 20;
  std::string decoder = "bernoulli";   // "bernoulli" or "gaussian"
  bool learn_variance = false;         // gaussian: learn one log s^2 per pixel (else fixed)
  float decoder_logvar = 0.f;          // gaussian: fixed log s^2 (or the learned one's initial value)
  float beta = 1.f;                    // weight of the KL term (beta-VAE)
  int num_classes = 0;                 // > 0: conditional VAE on labels 0..num_classes-1

  int64_t input_dim() const { return height * width; }
  bool conditional() const { return num_classes > 0; }
  std::string to_json() const;
  // Parses to_json()'s output; unknown keys or bad values throw gt::Error naming them.
  static VaeConfig from_json(const std::string& json);
  void validate() const;  // throws gt::Error naming the bad field
};

struct VaeLoss {
  Tensor loss;   // () mean over the batch of recon + beta * kl: what backward() starts from
  Tensor recon;  // (B) -log p(x|z) per sample
  Tensor kl;     // (B) KL(q(z|x) || p(z)) per sample
};

class Vae : public nn::Module {
 public:
  Vae(const VaeConfig& config, Generator& init);
  const VaeConfig& config() const { return cfg_; }

  // x (B, D) in [0, 1]; labels (B) int32 for a conditional VAE, else undefined.
  // Returns mu, logvar, each (B, latent).
  std::pair<Tensor, Tensor> encode(const Tensor& x, const Tensor& labels) const;
  // z (B, latent) -> decoder output (B, D): logits (Bernoulli) or mean (Gaussian).
  Tensor decode(const Tensor& z, const Tensor& labels) const;
  // -log p(x | decoder output) per sample: (B).
  Tensor decoder_nll(const Tensor& out, const Tensor& x) const;
  // The decoder output mapped to pixel space in [0, 1] (sigmoid of logits, or clamped mean).
  Tensor to_pixels(const Tensor& out) const;

  // One-sample -ELBO of a batch (noise from gen).
  VaeLoss loss(const Tensor& x, const Tensor& labels, Generator& gen) const;
  // n images from the prior, as pixels (n, D); labels (n) for a conditional VAE.
  Tensor sample(int64_t n, const Tensor& labels, Generator& gen) const;
  // Decoder pixels at z = mu(x): (B, D).
  Tensor reconstruct(const Tensor& x, const Tensor& labels) const;

 private:
  VaeConfig cfg_;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Test-set evaluation (no gradients). All figures in nats per sample.
struct VaeEval {
  int64_t n = 0;
  double neg_elbo = 0, recon = 0, kl = 0;
  std::vector<double> kl_per_dim;     // E_x KL_j, per latent dimension
  std::vector<double> activity;       // Cov_x(E_q[z_j]) per dimension (Burda et al. 2015)
  int active_units = 0;               // dimensions with activity > 0.01
  double nll_iw = 0;                  // -log p(x) estimate with K importance samples (when K > 0)
  int iw_samples = 0;
  bool posterior_collapse() const { return active_units == 0 || active_units * 4 < (int)activity.size(); }
};

// iw_samples K > 0 adds the importance-weighted bound  log p(x) >= log (1/K) sum_k p(x, z_k) / q(z_k|x)
// (Burda et al. 2015), z_k ~ q(z|x), computed with logsumexp.
VaeEval evaluate(const Vae& vae, const Dataset& data, int64_t batch, int iw_samples, Generator& gen, Device device);

}  // namespace gt
