// ops_conv.cpp: gt::conv2d, gt::conv_transpose2d, gt::upsample_nearest2d and gt::avg_pool2d on NCHW
// tensors, in PyTorch's conventions (Conv2d / ConvTranspose2d weight layouts, nearest upsampling
// by an integer factor, unpadded average pooling). Equations are in kernels/conv.h.
//
// Every backward accumulates into the inputs' gradient buffers (grad_buffer) directly: the kernels
// add into dx / dw / db (beta = 1 GEMMs, += loops), so no gradient temporary is allocated. conv2d's
// CPU backward writes the first gradient of its input instead (grad_dest: no zero-fill first).
#include "autograd/ops.h"
#include "core/dispatch.h"
#include "kernels/conv.h"
#include "kernels/reduce.h"
#include "kernels/shape.h"

namespace gt {

namespace {

// The gradient buffer of t as a raw pointer, or nullptr when t needs no gradient (or is undefined).
float* grad_ptr(const Tensor& t) { return t.defined() && t.requires_grad() ? grad_buffer(t).data() : nullptr; }

void check_conv_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_defined(op, x, "the input");
  check_defined(op, weight, "the weight");
  check_dtype_f32(op, x);
  check_dtype_f32(op, weight);
  check_same_device(op, x, weight);
  GT_CHECK(x.dim() == 4, op << ": input must be 4-D (B, C, H, W), got " << x.shape());
  if (bias.defined()) {
    check_dtype_f32(op, bias);
    check_same_device(op, x, bias);
  }
}

void check_bias(const char* op, const Tensor& bias, const Tensor& weight, int64_t O) {
  if (!bias.defined()) return;
  GT_CHECK(bias.dim() == 1 && bias.size(0) == O,
           op << ": bias " << bias.shape() << " does not match weight " << weight.shape() << ": expected (" << O
              << ")");
}

}  // namespace

// Derivative (kernels/conv.h): with col[b] = im2col(x[b]) and y[b] = W col[b] + bias,
//   dW += sum_b dy[b] col[b]^T,  dx[b] += col2im(W^T dy[b]),  db[o] += sum_{b,oh,ow} dy[b,o,oh,ow].
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int padding) {
  const char* op = "conv2d";
  check_conv_args(op, x, weight, bias);
  GT_CHECK(weight.dim() == 4, "conv2d: weight must be 4-D (O, C, kh, kw), got " << weight.shape());
  GT_CHECK(x.size(1) == weight.size(1), "conv2d: input " << x.shape() << " has " << x.size(1)
                                                         << " channels but weight " << weight.shape()
                                                         << " expects " << weight.size(1));
  check_bias(op, bias, weight, weight.size(0));
  const Conv2dGeom g = conv2d_geom(x.size(0), x.size(1), x.size(2), x.size(3), weight.size(0), weight.size(2),
                                   weight.size(3), stride, padding);

  Tensor y = Tensor::empty({g.B, g.O, g.Ho, g.Wo}, x.device());
  const float* bp = bias.defined() ? bias.data() : nullptr;
  GT_DISPATCH(x.device(), conv2d_forward_cpu(g, x.data(), weight.data(), bp, y.data()),
              conv2d_forward_cuda(g, x.data(), weight.data(), bp, y.data()));

  if (needs_grad({&x, &weight, &bias})) {
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    record(op, inputs, y, [x, weight, bias, g](const Tensor& dy) {
      float *dw = grad_ptr(weight), *db = grad_ptr(bias);
      bool dx_overwrite = false;  // the CPU writes the first gradient into x's buffer (grad_dest)
      float* dx = x.requires_grad() ? grad_dest(x, &dx_overwrite) : nullptr;
      GT_DISPATCH(dy.device(), conv2d_backward_cpu(g, x.data(), weight.data(), dy.data(), dx, dw, db, dx_overwrite),
                  conv2d_backward_cuda(g, x.data(), weight.data(), dy.data(), dx, dw, db));
    });
  }
  return y;
}

// Derivative: that of conv2d for x, weight and bias, and d addend = dy (summed over H x W for a
// per-image addend).
Tensor conv2d_add(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& addend) {
  const char* op = "conv2d_add";
  check_conv_args(op, x, weight, bias);
  check_defined(op, addend, "the addend");
  check_dtype_f32(op, addend);
  check_same_device(op, x, addend);
  GT_CHECK(weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3,
           op << ": weight must be (O, C, 3, 3), got " << weight.shape());
  GT_CHECK(x.size(1) == weight.size(1), op << ": input " << x.shape() << " has " << x.size(1)
                                            << " channels but weight " << weight.shape() << " expects "
                                            << weight.size(1));
  check_bias(op, bias, weight, weight.size(0));
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = weight.size(0);
  const bool per_sample = addend.shape() == Shape{B, O, 1, 1}, full = addend.shape() == Shape{B, O, H, W};
  GT_CHECK(per_sample || full, op << ": addend " << addend.shape() << " must be (" << B << ", " << O << ", " << H
                                  << ", " << W << ") or (" << B << ", " << O << ", 1, 1)");
  const Conv2dGeom g = conv2d_geom(B, C, H, W, O, 3, 3, 1, 1);
  if (x.device() != Device::CPU || !conv2d_add_fused_cpu(g)) return add(conv2d(x, weight, bias, 1, 1), addend);

  Tensor y = Tensor::empty({B, O, H, W});
  conv2d_forward_add_cpu(g, x.data(), weight.data(), bias.defined() ? bias.data() : nullptr, addend.data(), per_sample,
                         y.data());
  if (needs_grad({&x, &weight, &bias, &addend})) {
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    inputs.push_back(addend);
    record(op, inputs, y, [x, weight, bias, addend, g, per_sample](const Tensor& dy) {
      float *dw = grad_ptr(weight), *db = grad_ptr(bias);
      bool dx_overwrite = false;
      float* dx = x.requires_grad() ? grad_dest(x, &dx_overwrite) : nullptr;
      if (dx || dw || db) conv2d_backward_cpu(g, x.data(), weight.data(), dy.data(), dx, dw, db, dx_overwrite);
      if (!addend.requires_grad()) return;
      bool overwrite = false;
      float* da = grad_dest(addend, &overwrite);
      const float* d = dy.data();
      const int64_t planes = g.B * g.O, L = g.Ho * g.Wo;
      if (per_sample) {  // da[b, o] (+)= the plane's sum (the reduce kernel's fixed order)
        Tensor sums = overwrite ? Tensor() : Tensor::empty({planes});
        float* out = overwrite ? da : sums.data();
        sum_dim_forward_cpu(out, d, planes, L, 1, 1.0f);
        if (!overwrite) block_copy_cpu(da, out, 1, planes, 1, planes, 0, planes, 0, /*accumulate=*/true);
      } else {  // da (+)= dy
        block_copy_cpu(da, d, 1, planes * L, 1, planes * L, 0, planes * L, 0, /*accumulate=*/!overwrite);
      }
    });
  }
  return y;
}

// Derivative: conv_transpose2d is the adjoint of conv2d in its input, y[b] = col2im(W^T x[b]) + bias,
// so with dcol[b] = im2col(dy[b]):
//   dx[b] += W dcol[b],  dW += sum_b x[b] dcol[b]^T,  db[o] += sum_{b,oh,ow} dy[b,o,oh,ow].
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int padding,
                        int output_padding) {
  const char* op = "conv_transpose2d";
  check_conv_args(op, x, weight, bias);
  GT_CHECK(weight.dim() == 4, "conv_transpose2d: weight must be 4-D (C, O, kh, kw), got " << weight.shape());
  GT_CHECK(x.size(1) == weight.size(0), "conv_transpose2d: input " << x.shape() << " has " << x.size(1)
                                                                   << " channels but weight " << weight.shape()
                                                                   << " (C, O, kh, kw) expects " << weight.size(0));
  check_bias(op, bias, weight, weight.size(1));
  const Conv2dGeom g = conv_transpose2d_geom(x.size(0), x.size(1), x.size(2), x.size(3), weight.size(1),
                                             weight.size(2), weight.size(3), stride, padding, output_padding);

  Tensor y = Tensor::empty({g.B, g.O, g.Ho, g.Wo}, x.device());
  const float* bp = bias.defined() ? bias.data() : nullptr;
  GT_DISPATCH(x.device(), conv_transpose2d_forward_cpu(g, x.data(), weight.data(), bp, y.data()),
              conv_transpose2d_forward_cuda(g, x.data(), weight.data(), bp, y.data()));

  if (needs_grad({&x, &weight, &bias})) {
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    record(op, inputs, y, [x, weight, bias, g](const Tensor& dy) {
      float *dx = grad_ptr(x), *dw = grad_ptr(weight), *db = grad_ptr(bias);
      GT_DISPATCH(dy.device(), conv_transpose2d_backward_cpu(g, x.data(), weight.data(), dy.data(), dx, dw, db),
                  conv_transpose2d_backward_cuda(g, x.data(), weight.data(), dy.data(), dx, dw, db));
    });
  }
  return y;
}

// Derivative: y[b,c,h,w] = x[b,c,h/s,w/s], so dx[b,c,h,w] += sum of dy over its s x s block.
Tensor upsample_nearest2d(const Tensor& x, int scale) {
  const char* op = "upsample_nearest2d";
  check_defined(op, x, "the input");
  check_dtype_f32(op, x);
  GT_CHECK(x.dim() == 4, "upsample_nearest2d: input must be 4-D (B, C, H, W), got " << x.shape());
  GT_CHECK(scale >= 1, "upsample_nearest2d: scale must be >= 1, got " << scale);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), s = scale;

  Tensor y = Tensor::empty({B, C, H * s, W * s}, x.device());
  GT_DISPATCH(x.device(), upsample_nearest2d_forward_cpu(x.data(), B, C, H, W, s, y.data()),
              upsample_nearest2d_forward_cuda(x.data(), B, C, H, W, s, y.data()));

  if (needs_grad({&x})) {
    record(op, {x}, y, [x, B, C, H, W, s](const Tensor& dy) {
      bool overwrite = false;  // the CPU writes the first gradient into x's buffer (grad_dest)
      float* dx = grad_dest(x, &overwrite);
      GT_DISPATCH(dy.device(), upsample_nearest2d_backward_cpu(dy.data(), B, C, H, W, s, dx, !overwrite),
                  upsample_nearest2d_backward_cuda(dy.data(), B, C, H, W, s, dx));
    });
  }
  return y;
}

// Derivative: y = mean of a k x k window, so every x in a window gets dy/k^2 from it (summed over
// the windows that overlap when stride < kernel; pixels no window covers get 0).
Tensor avg_pool2d(const Tensor& x, int kernel, int stride) {
  const char* op = "avg_pool2d";
  check_defined(op, x, "the input");
  check_dtype_f32(op, x);
  GT_CHECK(x.dim() == 4, "avg_pool2d: input must be 4-D (B, C, H, W), got " << x.shape());
  GT_CHECK(kernel >= 1, "avg_pool2d: kernel must be >= 1, got " << kernel);
  GT_CHECK(stride >= 1, "avg_pool2d: stride must be >= 1, got " << stride);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), k = kernel, s = stride;
  GT_CHECK(H >= k && W >= k, "avg_pool2d: the " << k << "x" << k << " window does not fit input " << x.shape()
                                                << " (no padding): the output would be empty");
  const int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;

  Tensor y = Tensor::empty({B, C, Ho, Wo}, x.device());
  GT_DISPATCH(x.device(), avg_pool2d_forward_cpu(x.data(), B, C, H, W, k, s, y.data()),
              avg_pool2d_forward_cuda(x.data(), B, C, H, W, k, s, y.data()));

  if (needs_grad({&x})) {
    record(op, {x}, y, [x, B, C, H, W, k, s](const Tensor& dy) {
      float* dx = grad_buffer(x).data();
      GT_DISPATCH(dy.device(), avg_pool2d_backward_cpu(dy.data(), B, C, H, W, k, s, dx),
                  avg_pool2d_backward_cuda(dy.data(), B, C, H, W, k, s, dx));
    });
  }
  return y;
}

}  // namespace gt
