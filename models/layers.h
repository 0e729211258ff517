// layers.h: Linear, Conv2d and ConvTranspose2d with PyTorch's parameter layouts and default
// initialisation, so weights move between gentape and PyTorch unchanged.
//
//   Linear           y = x W^T + b        weight (out, in),          bias (out)
//   Conv2d           y = W * x + b        weight (out, in, kh, kw),  bias (out)
//   ConvTranspose2d  y = W^T * x + b      weight (in, out, kh, kw),  bias (out)
//
// Initialisation (PyTorch's reset_parameters: kaiming_uniform with a = sqrt(5)): every weight and
// bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in = in (Linear), in*kh*kw (Conv2d), and
// weight.size(1)*kh*kw = out*kh*kw (ConvTranspose2d, as PyTorch computes it).
//
//   gt::Generator g(0);
//   auto fc = std::make_shared<gt::nn::Linear>(784, 400, g);
//   gt::Tensor h = fc->forward(x, gt::LinearAct::Relu);   // relu(x W^T + b): (B, 784) -> (B, 400)
#pragma once

#include "core/rng.h"
#include "kernels/linear.h"
#include "models/module.h"

namespace gt::nn {

// U(-bound, bound) from `gen`, on the CPU.
Tensor uniform_init(const Shape& shape, float bound, Generator& gen);

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, Generator& gen, bool bias = true);
  // x (B, in) -> act(x W^T + b) (B, out): one fused op (gt::linear), bias and activation applied in
  // the GEMM's epilogue.
  Tensor forward(const Tensor& x, LinearAct act = LinearAct::None) const;
  Tensor weight, bias;
  int64_t in_features, out_features;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int kernel, Generator& gen, int stride = 1, int padding = 0, bool bias = true);
  Tensor forward(const Tensor& x) const;  // x (B, in, H, W) -> (B, out, Ho, Wo)
  Tensor weight, bias;
  int stride, padding;
};

class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in, int64_t out, int kernel, Generator& gen, int stride = 1, int padding = 0,
                  int output_padding = 0, bool bias = true);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;
  int stride, padding, output_padding;
};

}  // namespace gt::nn
