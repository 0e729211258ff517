// demo.cpp: `gentape demo` — the autograd engine alone, end to end in a few lines (the VAE demo is
// `make demo`, built on `gentape train`): fit y = sin(3x) on [-1, 1] with a 1-64-64-1 tanh MLP,
// written with raw autograd ops and a hand-written SGD step, so every piece (tensor, ops, tape,
// backward) is visible.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "core/rng.h"

namespace gt::tools {

int cmd_demo(Device device) {
  Generator gen(0);
  const int64_t n = 256, h = 64;
  // Data: x in [-1, 1], y = sin(3x).
  std::vector<float> xs((size_t)n), ys((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    xs[(size_t)i] = -1.f + 2.f * (float)i / (float)(n - 1);
    ys[(size_t)i] = std::sin(3.f * xs[(size_t)i]);
  }
  Tensor x = Tensor::from_vector(xs, {n, 1}, device), y = Tensor::from_vector(ys, {n, 1}, device);
  // Parameters (PyTorch's Linear layout: weight (out, in)); scaled normal init.
  auto param = [&](Shape s, float scale) {
    Tensor p = gen.randn(s, device);
    { NoGradGuard ng; p = mul(p, scale); }
    p.set_requires_grad();
    return p;
  };
  Tensor w1 = param({h, 1}, 1.0f), b1 = param({h}, 0.1f);
  Tensor w2 = param({h, h}, 1.0f / std::sqrt((float)h)), b2 = param({h}, 0.1f);
  Tensor w3 = param({1, h}, 1.0f / std::sqrt((float)h)), b3 = param({1}, 0.1f);
  std::vector<Tensor> params = {w1, b1, w2, b2, w3, b3};

  std::printf("gentape demo: fitting y = sin(3x) with a 1-%lld-%lld-1 tanh MLP on %s\n", (long long)h,
              (long long)h, device_name(device));
  auto t0 = std::chrono::steady_clock::now();
  const float lr = 0.1f;
  float first = 0, last = 0;
  for (int step = 0; step <= 2000; ++step) {
    Tensor a1 = tanh(add(matmul(x, w1, false, true), b1));   // (n, h)
    Tensor a2 = tanh(add(matmul(a1, w2, false, true), b2));  // (n, h)
    Tensor pred = add(matmul(a2, w3, false, true), b3);      // (n, 1)
    Tensor loss = mean(square(sub(pred, y)));
    backward(loss);
    {
      NoGradGuard ng;  // the update is not part of the model
      for (Tensor& p : params) {
        p.copy_(sub(p, mul(p.grad(), lr)));
        p.zero_grad();
      }
    }
    last = loss.item();
    if (step == 0) first = last;
    if (step % 400 == 0) std::printf("  step %4d  mse %.5f\n", step, last);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("mse %.5f -> %.5f in %.2f s (%.0f steps/s)\n", first, last, secs, 2001 / secs);
  std::printf("The VAE demo (train on MNIST, write pictures) is `make demo`; see README.md.\n");
  return last < first ? 0 : 1;
}

}  // namespace gt::tools
