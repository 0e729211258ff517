// unet.cpp: the DDPM U-Net (network and equations in unet.h), its blocks, GroupNorm and Embedding
// modules, and UNetConfig's JSON. Built only from autograd ops: the gradients are theirs.
//
// Registration order is PyTorch's state_dict order for benchmarks/reference/ddpm_torch.py (a
// module's own parameters, then its children in the order they were assigned), so
// named_parameters() lists the same keys in the same order (tests/test_unet.cpp checks it against
// tests/fixtures/unet_keys.txt).
#include "models/unet.h"

#include <cmath>

#include "autograd/ops.h"
#include "models/config_json.h"

namespace gt {

// ---- UNetConfig ----

std::string UNetConfig::to_json() const {
  nlohmann::ordered_json j;
  j["channels"] = channels;
  j["in_channels"] = in_channels;
  j["groups"] = groups;
  j["attention"] = attention;
  j["num_classes"] = num_classes;
  return j.dump();
}

UNetConfig UNetConfig::from_json(const std::string& text) {
  const nlohmann::json j = detail::parse_config_object(text, "UNetConfig");
  UNetConfig c;  // keys left out keep their defaults
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const detail::ConfigField f{"UNetConfig", k, it.value()};
    if (k == "channels") c.channels = f.integer();
    else if (k == "in_channels") c.in_channels = f.integer();
    else if (k == "groups") c.groups = (int)f.integer();
    else if (k == "attention") c.attention = f.boolean();
    else if (k == "num_classes") c.num_classes = (int)f.integer();
    else GT_CHECK(false, "UNetConfig: unknown key '" << k << "'");
  }
  c.validate();
  return c;
}

void UNetConfig::validate() const {
  GT_CHECK(channels >= 2 && channels % 2 == 0,
           "UNetConfig: channels must be even and >= 2 (the sinusoidal embedding has channels/2 frequencies), got "
               << channels);
  GT_CHECK(in_channels >= 1, "UNetConfig: in_channels must be >= 1, got " << in_channels);
  GT_CHECK(groups >= 1 && channels % groups == 0,
           "UNetConfig: groups must be >= 1 and divide channels " << channels << ", got " << groups);
  GT_CHECK(num_classes >= 0, "UNetConfig: num_classes must be >= 0, got " << num_classes);
}

namespace nn {

// ---- GroupNorm, Embedding ----

GroupNorm::GroupNorm(int g, int64_t channels, float e) : groups(g), eps(e) {
  GT_CHECK(g >= 1 && channels % g == 0, "GroupNorm: " << g << " groups do not divide " << channels << " channels");
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
}

Tensor GroupNorm::forward(const Tensor& x) const { return group_norm(x, groups, weight, bias, eps); }
Tensor GroupNorm::forward_silu(const Tensor& x) const { return group_norm_silu(x, groups, weight, bias, eps); }

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen) {
  GT_CHECK(num >= 1 && dim >= 1, "Embedding: sizes must be >= 1, got num " << num << ", dim " << dim);
  weight = register_parameter("weight", gen.randn({num, dim}));
}

Tensor Embedding::forward(const Tensor& indices) const { return index_select(weight, indices); }

}  // namespace nn

// ---- ResBlock, AttnBlock ----

ResBlock::ResBlock(int64_t ci, int64_t co, int64_t temb_dim, int groups, Generator& init) : cin(ci), cout(co) {
  norm1_ = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, ci));
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(ci, co, 3, init, 1, 1));
  temb_proj_ = register_module("temb_proj", std::make_shared<nn::Linear>(temb_dim, co, init));
  norm2_ = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, co));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(co, co, 3, init, 1, 1));
  if (ci != co) skip_ = register_module("skip", std::make_shared<nn::Conv2d>(ci, co, 1, init));
}

Tensor ResBlock::forward(const Tensor& x, const Tensor& temb_act) const {
  GT_CHECK(x.dim() == 4 && x.size(1) == cin,
           "ResBlock(" << cin << " -> " << cout << "): input shape " << x.shape() << ", expected (B, " << cin
                       << ", H, W)");
  // h = conv1(silu(gn1(x))) + temb_proj(temb), the (B, cout) projection broadcast over H x W as
  // (B, cout, 1, 1); out = conv2(silu(gn2(h))) + skip(x). conv2d_add is conv2d then add, with the
  // add folded into the convolution's store where the Winograd kernels run (autograd/ops.h).
  Tensor h = conv2d_add(norm1_->forward_silu(x), conv1_->weight, conv1_->bias,
                        reshape(temb_proj_->forward(temb_act), {x.size(0), cout, 1, 1}));
  return conv2d_add(norm2_->forward_silu(h), conv2_->weight, conv2_->bias, skip_ ? skip_->forward(x) : x);
}

AttnBlock::AttnBlock(int64_t c, int groups, Generator& init) : c_(c) {
  norm_ = register_module("norm", std::make_shared<nn::GroupNorm>(groups, c));
  qkv_ = register_module("qkv", std::make_shared<nn::Conv2d>(c, 3 * c, 1, init));
  proj_ = register_module("proj", std::make_shared<nn::Conv2d>(c, c, 1, init));
}

Tensor AttnBlock::forward(const Tensor& x) const {
  GT_CHECK(x.dim() == 4 && x.size(1) == c_,
           "AttnBlock(" << c_ << "): input shape " << x.shape() << ", expected (B, " << c_ << ", H, W)");
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3), N = H * W;
  Tensor qkv = reshape(qkv_->forward(norm_->forward(x)), {B, 3 * c_, N});
  Tensor q = slice(qkv, 1, 0, c_), k = slice(qkv, 1, c_, 2 * c_), v = slice(qkv, 1, 2 * c_, 3 * c_);  // (B, C, N)
  // scores_ij = q_i . k_j / sqrt(C): (B, N, C) x (B, C, N), the 1/sqrt(C) keeps the logits O(1)
  Tensor attn = softmax(mul(matmul(q, k, /*transpose_a=*/true, false), 1.f / std::sqrt((float)c_)), -1);
  // out_{:, i} = sum_j A_ij v_{:, j}: (B, C, N) x (B, N, N)^T
  Tensor out = matmul(v, attn, false, /*transpose_b=*/true);
  return add(x, proj_->forward(reshape(out, {B, c_, H, W})));
}

// ---- UNet ----

UNet::UNet(const UNetConfig& config, Generator& init) : cfg_(config) {
  cfg_.validate();
  const int64_t c = cfg_.channels, td = cfg_.time_dim();
  const int g = cfg_.groups;
  auto res = [&](const char* name, int64_t ci, int64_t co) {
    return register_module(name, std::make_shared<ResBlock>(ci, co, td, g, init));
  };
  time_fc1_ = register_module("time_fc1", std::make_shared<nn::Linear>(c, td, init));
  time_fc2_ = register_module("time_fc2", std::make_shared<nn::Linear>(td, td, init));
  if (cfg_.conditional())
    class_embed_ = register_module("class_embed", std::make_shared<nn::Embedding>(cfg_.num_classes + 1, td, init));
  conv_in_ = register_module("conv_in", std::make_shared<nn::Conv2d>(cfg_.in_channels, c, 3, init, 1, 1));
  down1_res1_ = res("down1_res1", c, c);
  down1_res2_ = res("down1_res2", c, c);
  downsample_ = register_module("downsample", std::make_shared<nn::Conv2d>(c, c, 3, init, 2, 1));
  down2_res1_ = res("down2_res1", c, 2 * c);
  down2_res2_ = res("down2_res2", 2 * c, 2 * c);
  mid_res1_ = res("mid_res1", 2 * c, 2 * c);
  if (cfg_.attention) mid_attn_ = register_module("mid_attn", std::make_shared<AttnBlock>(2 * c, g, init));
  mid_res2_ = res("mid_res2", 2 * c, 2 * c);
  up2_res1_ = res("up2_res1", 4 * c, 2 * c);
  up2_res2_ = res("up2_res2", 4 * c, 2 * c);
  upsample_ = register_module("upsample", std::make_shared<nn::Conv2d>(2 * c, 2 * c, 3, init, 1, 1));
  up1_res1_ = res("up1_res1", 3 * c, c);
  up1_res2_ = res("up1_res2", 2 * c, c);
  norm_out_ = register_module("norm_out", std::make_shared<nn::GroupNorm>(g, c));
  conv_out_ = register_module("conv_out", std::make_shared<nn::Conv2d>(c, cfg_.in_channels, 3, init, 1, 1));
}

Tensor UNet::forward(const Tensor& x, const Tensor& t, const Tensor* labels) const {
  check_defined("UNet::forward", x, "x");
  check_defined("UNet::forward", t, "t");
  GT_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_channels && x.size(2) % 2 == 0 && x.size(3) % 2 == 0,
           "UNet: x has shape " << x.shape() << ", expected (B, " << cfg_.in_channels
                                << ", H, W) with H and W even (one stride-2 level and back)");
  const int64_t B = x.size(0);
  GT_CHECK(t.dim() == 1 && t.size(0) == B && t.dtype() == DType::F32,
           "UNet: t must be float32 of shape (" << B << ") (one timestep per image of x " << x.shape() << "), got "
                                                << t.dtype() << " " << t.shape());
  GT_CHECK(t.device() == x.device(), "UNet: t is on " << t.device() << " but x is on " << x.device());
  GT_CHECK(cfg_.conditional() || labels == nullptr || !labels->defined(),
           "UNet: labels given to an unconditional model (num_classes 0)");

  Tensor temb = time_fc2_->forward(silu(time_fc1_->forward(timestep_embedding(t, (int)cfg_.channels))));
  if (cfg_.conditional()) {
    Tensor y;
    if (labels != nullptr && labels->defined()) {
      GT_CHECK(labels->dim() == 1 && labels->size(0) == B && labels->dtype() == DType::I32,
               "UNet: labels must be int32 of shape (" << B << "), got " << labels->dtype() << " "
                                                       << labels->shape());
      y = *labels;
    } else {
      y = Tensor::from_indices(std::vector<int32_t>((size_t)B, cfg_.num_classes), {B}, x.device());
    }
    temb = add(temb, class_embed_->forward(y));
  }
  const Tensor a = silu(temb);  // every ResBlock projects SiLU(temb)

  Tensor h = conv_in_->forward(x);
  Tensor s1 = down1_res1_->forward(h, a);
  Tensor s2 = down1_res2_->forward(s1, a);
  h = downsample_->forward(s2);
  Tensor s3 = down2_res1_->forward(h, a);
  Tensor s4 = down2_res2_->forward(s3, a);
  h = mid_res1_->forward(s4, a);
  if (mid_attn_) h = mid_attn_->forward(h);
  h = mid_res2_->forward(h, a);
  h = up2_res1_->forward(concat({h, s4}, 1), a);
  h = up2_res2_->forward(concat({h, s3}, 1), a);
  h = upsample_->forward(upsample_nearest2d(h, 2));
  h = up1_res1_->forward(concat({h, s2}, 1), a);
  h = up1_res2_->forward(concat({h, s1}, 1), a);
  return conv_out_->forward(norm_out_->forward_silu(h));
}

}  // namespace gt
