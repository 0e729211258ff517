// layers.cpp: the layers' construction (PyTorch's default init) and forward passes.
#include "models/layers.h"

#include <cmath>

#include "autograd/ops.h"

namespace gt::nn {

Tensor uniform_init(const Shape& shape, float bound, Generator& gen) {
  Tensor t = gen.rand(shape);  // U(0, 1]
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = bound * (2.f * p[i] - 1.f);
  return t;
}

Linear::Linear(int64_t in, int64_t out, Generator& gen, bool has_bias) : in_features(in), out_features(out) {
  GT_CHECK(in >= 1 && out >= 1, "Linear: sizes must be >= 1, got in " << in << ", out " << out);
  const float bound = 1.f / std::sqrt((float)in);
  weight = register_parameter("weight", uniform_init({out, in}, bound, gen));
  if (has_bias) bias = register_parameter("bias", uniform_init({out}, bound, gen));
}

Tensor Linear::forward(const Tensor& x, LinearAct act) const {
  GT_CHECK(x.dim() == 2 && x.size(1) == in_features,
           "Linear(" << in_features << " -> " << out_features << "): input shape " << x.shape() << ", expected (B, "
                     << in_features << ")");
  return linear(x, weight, bias, act);
}

Conv2d::Conv2d(int64_t in, int64_t out, int k, Generator& gen, int s, int p, bool has_bias) : stride(s), padding(p) {
  const float bound = 1.f / std::sqrt((float)(in * k * k));
  weight = register_parameter("weight", uniform_init({out, in, k, k}, bound, gen));
  if (has_bias) bias = register_parameter("bias", uniform_init({out}, bound, gen));
}

Tensor Conv2d::forward(const Tensor& x) const { return conv2d(x, weight, bias, stride, padding); }

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int k, Generator& gen, int s, int p, int op, bool has_bias)
    : stride(s), padding(p), output_padding(op) {
  const float bound = 1.f / std::sqrt((float)(out * k * k));
  weight = register_parameter("weight", uniform_init({in, out, k, k}, bound, gen));
  if (has_bias) bias = register_parameter("bias", uniform_init({out}, bound, gen));
}

Tensor ConvTranspose2d::forward(const Tensor& x) const {
  return conv_transpose2d(x, weight, bias, stride, padding, output_padding);
}

}  // namespace gt::nn
