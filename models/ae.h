// ae.h: deterministic autoencoders — plain, sparse (L1 on the code) and denoising.
//
//   encoder   z = E(x~)                       (B, D) -> (B, k), ReLU between layers, linear code
//   decoder   x^ = D(z)                       (B, k) -> (B, D), ReLU between layers, linear output
//   loss      L = mean_b( ||D(E(x~_b)) - x_b||^2 + lambda ||E(x~_b)||_1 )
//             x~ = x for kinds "ae" and "sparse", x~ = corrupt(x) for "denoising" (the target stays
//             the clean x); the L1 term (weight lambda = l1) is present only for kind "sparse".
//
// The default MLP is the benchmark architecture: 784-512-256-2 and 2-256-512-784 (ReLU,
// linear output, squared error). Parameter names and layouts are in ae.cpp; every Linear is
// PyTorch's (weight (out, in), bias (out)).
//
// Noise (denoising): "gaussian:s" adds s * eps, eps ~ N(0, I); "mask:p" zeroes each pixel
// independently with probability p (keeps it unchanged with probability 1 - p).
//
//   gt::AeConfig cfg;                          // MLP 784-512-256-2, kind "ae"
//   gt::Generator init(1), noise(2);
//   gt::Autoencoder ae(cfg, init);
//   gt::AeLoss l = ae.loss(x, noise);          // x (B, 784)
//   gt::backward(l.loss);
#pragma once

#include <string>
#include <vector>

#include "core/rng.h"
#include "models/layers.h"

namespace gt {

// A parsed noise specification: "gaussian:<sigma>" (sigma finite, >= 0) or "mask:<p>" (p in [0, 1)).
struct NoiseSpec {
  std::string kind = "gaussian";  // "gaussian" or "mask"
  float value = 0.f;              // sigma or p
  // Throws gt::Error naming the whole spec and what is wrong with it.
  static NoiseSpec parse(const std::string& spec);
  std::string str() const;  // "gaussian:0.3"; parse(str()) gives back the same spec
};

// x~ = corrupt(x): x + sigma * eps (gaussian) or x * m with m_j ~ Bernoulli(1 - p) (mask), the noise
// drawn from gen on x's device. Records nothing on the tape (noise is not differentiated: the result
// is a constant input). Mask draws u ~ U(0, 1] and keeps a pixel iff u > p, so P(keep) = 1 - p exactly.
Tensor corrupt(const Tensor& x, const NoiseSpec& noise, Generator& gen);

struct AeConfig {
  std::string arch = "mlp";                  // "mlp" or "conv"
  int64_t height = 28, width = 28;           // one-channel images; input_dim = height * width
  std::vector<int64_t> hidden = {512, 256};  // hidden widths of the encoder; the decoder mirrors them
  int64_t latent = 2;                        // code size k
  std::string kind = "ae";                   // "ae", "sparse" or "denoising"
  float l1 = 1e-3f;                          // lambda of the sparse L1 term (kind "sparse" only)
  std::string noise = "gaussian:0.3";        // corruption of kind "denoising" (always validated)

  int64_t input_dim() const { return height * width; }
  NoiseSpec noise_spec() const { return NoiseSpec::parse(noise); }
  std::string to_json() const;
  // Parses to_json()'s output; keys left out keep their defaults; unknown keys or bad values throw
  // gt::Error naming them.
  static AeConfig from_json(const std::string& json);
  void validate() const;  // throws gt::Error naming the bad field
};

struct AeLoss {
  Tensor loss;   // () mean over the batch: what backward() starts from
  Tensor recon;  // (B) per-sample ||D(E(x~)) - x||^2 (sum over pixels)
  Tensor l1;     // (B) per-sample ||E(x~)||_1 (unweighted), kind "sparse"; else undefined
};

class Autoencoder : public nn::Module {
 public:
  Autoencoder(const AeConfig& config, Generator& init);
  const AeConfig& config() const { return cfg_; }

  Tensor encode(const Tensor& x) const;  // x (B, D) -> z (B, k)
  Tensor decode(const Tensor& z) const;  // z (B, k) -> (B, D), linear output
  // The loss of the header comment; gen supplies the denoising corruption (unused otherwise).
  AeLoss loss(const Tensor& x, Generator& gen) const;
  // D(E(x)) without corruption and without recording: (B, D).
  Tensor reconstruct(const Tensor& x) const;

 private:
  AeConfig cfg_;
  NoiseSpec noise_;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gt
