// unet.h: the DDPM noise-prediction network ε_θ(x_t, t) (Ho et al. 2020): a small U-Net for
// 28x28 images, the same network as benchmarks/reference/ddpm_torch.py with the same parameter
// names, so a state_dict moves between gentape and PyTorch unchanged.
//
// With c = channels and temb = 4c (the default c = 32 is the benchmark: 759,937 parameters):
//
//   temb = time_fc2(SiLU(time_fc1(sinusoidal_c(t))))        (+ class_embed(label), conditional)
//   h    = conv_in(x)                                       in -> c, 3x3              H x W
//   s1   = down1_res1(h),  s2 = down1_res2(s1)              c -> c, c -> c            H x W
//   h    = downsample(s2)                                   3x3 stride 2, c -> c      H/2 x W/2
//   s3   = down2_res1(h),  s4 = down2_res2(s3)              c -> 2c, 2c -> 2c         H/2 x W/2
//   h    = mid_res2([mid_attn](mid_res1(s4)))               2c -> 2c                  H/2 x W/2
//   h    = up2_res1(cat(h, s4)),  h = up2_res2(cat(h, s3))  4c -> 2c, 4c -> 2c        H/2 x W/2
//   h    = upsample(nearest_x2(h))                          3x3, 2c -> 2c             H x W
//   h    = up1_res1(cat(h, s2)),  h = up1_res2(cat(h, s1))  3c -> c, 2c -> c          H x W
//   ε̂    = conv_out(SiLU(norm_out(h)))                      GroupNorm, c -> in, 3x3
//
//   ResBlock(x, a) with a = SiLU(temb), computed once per forward and shared by every block:
//     h = conv1(SiLU(norm1(x)))                             GroupNorm(groups, cin), 3x3 cin -> cout
//     h = h + temb_proj(a) broadcast over H x W             Linear temb -> cout
//     h = conv2(SiLU(norm2(h)))                             GroupNorm(groups, cout), 3x3 cout -> cout
//     out = h + skip(x)                                     1x1 conv when cin != cout, else x
//   The projection reads SiLU(temb), as in Ho et al.'s code (temb_proj(nonlinearity(temb))): the
//   time MLP ends with a Linear, so its output is activated once here.
//
//   AttnBlock (mid_attn, config.attention): single-head self-attention over the N = H/2 * W/2
//   positions, C = 2c:  q, k, v = split(qkv(norm(x))) each (B, C, N);
//     A = softmax_j(qᵀk / √C) (B, N, N);   out = x + proj(v Aᵀ)
//
// Sinusoidal embedding (autograd op timestep_embedding): half = c/2, freq_j = exp(−ln(10000) j/half),
// emb = cat(sin(t freq), cos(t freq)). Class-conditional models (num_classes = K > 0) add a learned
// embedding row per label to temb; row K is "no label" (label dropout and classifier-free guidance).
//
//   gt::UNetConfig cfg;                        // channels 32, groups 8: the benchmark network
//   gt::Generator init(1);
//   gt::UNet unet(cfg, init);
//   gt::Tensor eps_hat = unet.forward(xt, t, nullptr);   // xt (B, 1, 28, 28), t (B) float32
#pragma once

#include <memory>
#include <string>

#include "core/rng.h"
#include "models/layers.h"

namespace gt {

struct UNetConfig {
  int64_t channels = 32;    // c: base width (28x28 level); the 14x14 level has 2c
  int64_t in_channels = 1;  // image channels in and out
  int groups = 8;           // GroupNorm groups; must divide c (then it divides 2c, 3c, 4c too)
  bool attention = false;   // self-attention at the lowest resolution (not in the 759,937)
  int num_classes = 0;      // > 0: class-conditional; label num_classes = "no label"

  int64_t time_dim() const { return 4 * channels; }  // temb width (128 for c = 32)
  bool conditional() const { return num_classes > 0; }
  std::string to_json() const;
  // Parses to_json()'s output; keys left out keep their defaults; unknown keys or bad values throw
  // gt::Error naming them.
  static UNetConfig from_json(const std::string& json);
  void validate() const;  // throws gt::Error naming the bad field and value
};

namespace nn {

// GroupNorm (Wu & He 2018), PyTorch's layout: y = (x − μ_g) / √(σ²_g + eps) · weight_c + bias_c, the
// statistics over each sample's group of C/groups channels and all H x W. weight = 1, bias = 0.
class GroupNorm : public Module {
 public:
  GroupNorm(int groups, int64_t channels, float eps = 1e-5f);
  Tensor forward(const Tensor& x) const;       // x (B, C, H, W) -> (B, C, H, W)
  Tensor forward_silu(const Tensor& x) const;  // silu(forward(x)), fused (gt::group_norm_silu)
  Tensor weight, bias;                         // (C)
  int groups;
  float eps;
};

// A lookup table, PyTorch's nn.Embedding: row i of weight (num, dim) for index i; weight ~ N(0, 1).
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Generator& gen);
  Tensor forward(const Tensor& indices) const;  // int32 (B) -> (B, dim)
  Tensor weight;
};

}  // namespace nn

// The U-Net's residual block (see the top of this file); cin -> cout channels.
class ResBlock : public nn::Module {
 public:
  ResBlock(int64_t cin, int64_t cout, int64_t temb_dim, int groups, Generator& init);
  // x (B, cin, H, W), temb_act = SiLU(temb) (B, temb_dim) -> (B, cout, H, W)
  Tensor forward(const Tensor& x, const Tensor& temb_act) const;
  int64_t cin, cout;

 private:
  std::shared_ptr<nn::GroupNorm> norm1_, norm2_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, skip_;  // skip_ only when cin != cout
  std::shared_ptr<nn::Linear> temb_proj_;
};

// Single-head self-attention over all H x W positions, with a residual (see the top of this file).
class AttnBlock : public nn::Module {
 public:
  AttnBlock(int64_t channels, int groups, Generator& init);
  Tensor forward(const Tensor& x) const;  // x (B, C, H, W) -> (B, C, H, W)

 private:
  int64_t c_;
  std::shared_ptr<nn::GroupNorm> norm_;
  std::shared_ptr<nn::Conv2d> qkv_, proj_;
};

class UNet : public nn::Module {
 public:
  UNet(const UNetConfig& config, Generator& init);
  const UNetConfig& config() const { return cfg_; }

  // ε̂ = ε_θ(x, t): x (B, in_channels, H, W) with H and W even, t (B) float32 timesteps (the value
  // the sinusoidal embedding reads; any scale the trainer chooses), labels int32 (B) in
  // 0..num_classes for a conditional model (num_classes = no label; nullptr = no label for every
  // sample); an unconditional model takes nullptr. Returns (B, in_channels, H, W).
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor* labels = nullptr) const;

 private:
  UNetConfig cfg_;
  std::shared_ptr<nn::Linear> time_fc1_, time_fc2_;
  std::shared_ptr<nn::Embedding> class_embed_;
  std::shared_ptr<nn::Conv2d> conv_in_, downsample_, upsample_, conv_out_;
  std::shared_ptr<ResBlock> down1_res1_, down1_res2_, down2_res1_, down2_res2_, mid_res1_, mid_res2_, up2_res1_,
      up2_res2_, up1_res1_, up1_res2_;
  std::shared_ptr<AttnBlock> mid_attn_;
  std::shared_ptr<nn::GroupNorm> norm_out_;
};

}  // namespace gt
