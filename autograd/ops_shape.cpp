// ops_shape.cpp: the differentiable shape ops — reshape, transpose, permute, concat, slice,
// index_select (kernels/shape.h has the copies and their index maps).
//
// Every shape op moves values without changing them, so each backward is the adjoint copy of its
// forward, accumulated (+=) into the input's gradient buffer:
//   reshape        y = x viewed as a new shape          dx += dout viewed as x's shape
//   permute        y[i_dims] = x[i]                     dx = dout permuted by the inverse of dims
//   concat         y = [x_0 | x_1 | ...] along dim      dx_t += dout[..., offset_t : offset_t + n_t, ...]
//   slice          y = x[..., start:end, ...]           dx[..., start:end, ...] += dout
//   index_select   y[r] = x[idx[r]]                     dx[idx[r]] += dout[r]  (repeated rows add up)
// Only reshape is a view (it shares x's storage); the others produce contiguous copies.
#include <cstdint>
#include <sstream>

#include "autograd/ops.h"
#include "core/dispatch.h"
#include "kernels/shape.h"

namespace gt {

namespace {

int normalize_dim(const char* op, int dim, const Shape& s) {
  const int nd = s.size();
  const int d = dim < 0 ? dim + nd : dim;
  GT_CHECK(d >= 0 && d < nd, op << ": dim " << dim << " is out of range for shape " << s << " (valid dims: "
                                << -nd << " to " << nd - 1 << ")");
  return d;
}

std::string dims_str(const std::vector<int>& dims) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < dims.size(); ++i) os << (i ? ", " : "") << dims[i];
  os << ")";
  return os.str();
}

// outer = prod of dims before d, inner = prod of dims after d.
void split(const Shape& s, int d, int64_t& outer, int64_t& inner) {
  outer = inner = 1;
  for (int i = 0; i < d; ++i) outer *= s[i];
  for (int i = d + 1; i < s.size(); ++i) inner *= s[i];
}

// dx += g elementwise (same numel): an accumulating block copy of one run.
void accumulate_into(const Tensor& dx, const Tensor& g) {
  const int64_t n = dx.numel();
  GT_DISPATCH(dx.device(), block_copy_cpu(dx.data(), g.data(), 1, n, 1, n, 0, n, 0, true),
              block_copy_cuda(dx.data(), g.data(), 1, n, 1, n, 0, n, 0, true));
}

Tensor permute_impl(const char* op, const Tensor& a, const std::vector<int>& perm) {
  const Shape& s = a.shape();
  const int nd = s.size();
  int64_t out_shape[kMaxPermuteDims], x_strides[kMaxPermuteDims];
  permute_plan(s.begin(), nd, perm.data(), out_shape, x_strides);
  Tensor out = Tensor::empty(Shape(std::vector<int64_t>(out_shape, out_shape + nd)), a.device());
  GT_DISPATCH(a.device(), permute_forward_cpu(out.data(), a.data(), nd, out_shape, x_strides),
              permute_forward_cuda(out.data(), a.data(), nd, out_shape, x_strides));
  if (needs_grad({&a})) {
    std::vector<int64_t> oshape(out_shape, out_shape + nd), strides(x_strides, x_strides + nd);
    // y[j] = x[map(j)] with map a bijection, so dx[map(j)] += dout[j]: dout permuted by the
    // inverse of dims, sent through the forward's own index map (no temporary, no inverse to build).
    record(op, {a}, out, [a, nd, oshape, strides](const Tensor& dout) {
      if (!a.requires_grad()) return;
      Tensor dx = grad_buffer(a);
      GT_DISPATCH(a.device(), permute_backward_cpu(dx.data(), dout.data(), nd, oshape.data(), strides.data()),
                  permute_backward_cuda(dx.data(), dout.data(), nd, oshape.data(), strides.data()));
    });
  }
  return out;
}

}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  check_defined("reshape", a, "the input");
  Tensor out = a.view(shape);  // throws naming both shapes when the element counts differ
  if (needs_grad({&a})) {
    // y is x with another shape: dy/dx is the identity, so dx += dout (viewed as x's shape; the
    // memory is the same row-major order).
    record("reshape", {a}, out, [a](const Tensor& dout) {
      if (!a.requires_grad()) return;
      accumulate_into(grad_buffer(a), dout);
    });
  }
  return out;
}

Tensor permute(const Tensor& a, const std::vector<int>& dims) {
  check_defined("permute", a, "the input");
  check_dtype_f32("permute", a);
  const Shape& s = a.shape();
  const int nd = s.size();
  GT_CHECK((int)dims.size() == nd, "permute: dims " << dims_str(dims) << " has " << dims.size()
                                                    << " entries but the input has shape " << s);
  std::vector<int> perm((size_t)nd);
  std::vector<bool> seen((size_t)nd, false);
  for (int d = 0; d < nd; ++d) {
    const int p = dims[(size_t)d] < 0 ? dims[(size_t)d] + nd : dims[(size_t)d];
    GT_CHECK(p >= 0 && p < nd, "permute: dim " << dims[(size_t)d] << " in " << dims_str(dims)
                                               << " is out of range for shape " << s);
    GT_CHECK(!seen[(size_t)p], "permute: dims " << dims_str(dims) << " repeat dim " << p << " (shape " << s
                                                << "); they must be a permutation");
    seen[(size_t)p] = true;
    perm[(size_t)d] = p;
  }
  return permute_impl("permute", a, perm);
}

Tensor transpose(const Tensor& a, int dim0, int dim1) {
  check_defined("transpose", a, "the input");
  check_dtype_f32("transpose", a);
  const int nd = a.dim();
  const int d0 = normalize_dim("transpose", dim0, a.shape()), d1 = normalize_dim("transpose", dim1, a.shape());
  std::vector<int> perm((size_t)nd);
  for (int d = 0; d < nd; ++d) perm[(size_t)d] = d;
  perm[(size_t)d0] = d1;
  perm[(size_t)d1] = d0;
  return permute_impl("transpose", a, perm);
}

Tensor concat(const std::vector<Tensor>& tensors, int dim) {
  GT_CHECK(!tensors.empty(), "concat: no tensors to concatenate");
  const Tensor& first = tensors[0];
  for (size_t t = 0; t < tensors.size(); ++t) {
    check_defined("concat", tensors[t], "an input");
    check_dtype_f32("concat", tensors[t]);
    check_same_device("concat", first, tensors[t]);
  }
  const Shape& s0 = first.shape();
  const int d = normalize_dim("concat", dim, s0);
  Shape out_shape = s0;
  out_shape[d] = 0;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const Shape& s = tensors[t].shape();
    bool ok = s.size() == s0.size();
    for (int i = 0; ok && i < s.size(); ++i) ok = i == d || s[i] == s0[i];
    GT_CHECK(ok, "concat: along dim " << dim << ", input " << t << " has shape " << s << " but input 0 has shape "
                                      << s0 << " (all dims but " << dim << " must match)");
    out_shape[d] += s[d];
  }
  int64_t outer, inner;
  split(s0, d, outer, inner);
  const int64_t n_out = out_shape[d];
  Tensor out = Tensor::empty(out_shape, first.device());
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (const Tensor& x : tensors) {
    const int64_t n = x.shape()[d];
    GT_DISPATCH(x.device(), block_copy_cpu(out.data(), x.data(), outer, n, inner, n_out, offset, n, 0),
                block_copy_cuda(out.data(), x.data(), outer, n, inner, n_out, offset, n, 0));
    offsets.push_back(offset);
    offset += n;
  }
  if (needs_grad(tensors)) {
    // y is the inputs side by side: dy/dx_t picks x_t's own block, so dx_t += the slice
    // dout[..., offset_t : offset_t + n_t, ...].
    record("concat", tensors, out, [tensors, offsets, d, outer, inner, n_out](const Tensor& dout) {
      for (size_t t = 0; t < tensors.size(); ++t) {
        const Tensor& x = tensors[t];
        if (!x.requires_grad()) continue;
        const int64_t n = x.shape()[d];
        // The CPU writes x's first gradient instead of zero-filling the buffer and adding to it
        // (grad_dest): the U-Net's skip concatenations zero-filled 48 MB per training step, on one thread.
        bool overwrite = false;
        float* dx = grad_dest(x, &overwrite);
        GT_DISPATCH(x.device(),
                    block_copy_cpu(dx, dout.data(), outer, n, inner, n, 0, n_out, offsets[t], !overwrite),
                    block_copy_cuda(dx, dout.data(), outer, n, inner, n, 0, n_out, offsets[t], true));
      }
    });
  }
  return out;
}

Tensor slice(const Tensor& a, int dim, int64_t start, int64_t end) {
  check_defined("slice", a, "the input");
  check_dtype_f32("slice", a);
  const Shape& s = a.shape();
  const int d = normalize_dim("slice", dim, s);
  const int64_t n = s[d];
  // Negative bounds count from the end, as in Python: slice(x, 0, -3, n) is the last 3 rows. Bounds
  // outside the dim are an error (Python would clamp them silently).
  const int64_t b = start < 0 ? start + n : start, e = end < 0 ? end + n : end;
  GT_CHECK(0 <= b && b <= e && e <= n, "slice: [" << start << ", " << end << ") is not a valid range of dim " << dim
                                                  << " (size " << n << ") of shape " << s);
  int64_t outer, inner;
  split(s, d, outer, inner);
  const int64_t len = e - b;
  Shape out_shape = s;
  out_shape[d] = len;
  Tensor out = Tensor::empty(out_shape, a.device());
  GT_DISPATCH(a.device(), block_copy_cpu(out.data(), a.data(), outer, len, inner, len, 0, n, b),
              block_copy_cuda(out.data(), a.data(), outer, len, inner, len, 0, n, b));
  if (needs_grad({&a})) {
    // y = x[..., b:e, ...]: dy/dx is 1 inside the slice and 0 outside, so dx[..., b:e, ...] += dout.
    record("slice", {a}, out, [a, outer, len, inner, n, b](const Tensor& dout) {
      if (!a.requires_grad()) return;
      Tensor dx = grad_buffer(a);
      GT_DISPATCH(a.device(), block_copy_cpu(dx.data(), dout.data(), outer, len, inner, n, b, len, 0, true),
                  block_copy_cuda(dx.data(), dout.data(), outer, len, inner, n, b, len, 0, true));
    });
  }
  return out;
}

// Out-of-range indices raise gt::Error on the CPU (naming the index and the size of dim 0). On CUDA
// they are not checked (that would need a host-device sync): the row comes out NaN and its
// gradient is dropped (kernels/shape.h).
Tensor index_select(const Tensor& a, const Tensor& indices) {
  check_defined("index_select", a, "the input");
  check_defined("index_select", indices, "the indices");
  check_dtype_f32("index_select", a);
  GT_CHECK(indices.dtype() == DType::I32, "index_select: indices must be int32 (Tensor::from_indices), got "
                                              << indices.dtype() << " " << indices.shape());
  check_same_device("index_select", a, indices);
  GT_CHECK(a.dim() >= 1, "index_select: the input must have at least one dim, got shape " << a.shape());
  // out shape = indices' shape followed by a's dims after the first: (m) x (rows, D) -> (m, D).
  Shape out_shape = indices.shape();
  GT_CHECK(indices.dim() + a.dim() - 1 <= Shape::kMaxDims,
           "index_select: indices " << indices.shape() << " and input " << a.shape() << " give more than "
                                    << Shape::kMaxDims << " dims");
  for (int i = 1; i < a.dim(); ++i) out_shape.push_back(a.shape()[i]);
  const int64_t rows = a.shape()[0], m = indices.numel();
  int64_t row = 1;
  for (int i = 1; i < a.dim(); ++i) row *= a.shape()[i];
  Tensor out = Tensor::empty(out_shape, a.device());
  GT_DISPATCH(a.device(), index_select_forward_cpu(out.data(), a.data(), indices.data_i32(), m, rows, row),
              index_select_forward_cuda(out.data(), a.data(), indices.data_i32(), m, rows, row));
  if (needs_grad({&a})) {
    // y[r] = x[idx[r]]: dy[r]/dx[t] = [idx[r] == t], so dx[idx[r]] += dout[r], summed over repeats.
    record("index_select", {a, indices}, out, [a, indices, m, rows, row](const Tensor& dout) {
      if (!a.requires_grad()) return;
      Tensor dx = grad_buffer(a);
      GT_DISPATCH(a.device(),
                  index_select_backward_cpu(dx.data(), dout.data(), indices.data_i32(), m, rows, row),
                  index_select_backward_cuda(dx.data(), dout.data(), indices.data_i32(), m, rows, row));
    });
  }
  return out;
}

}  // namespace gt
