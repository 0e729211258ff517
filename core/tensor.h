// tensor.h: the N-d tensor at the bottom of gentape.
//
// A Tensor is a cheap handle (a shared pointer) to a TensorImpl: a shape, a dtype, a device, an
// element offset into a reference-counted Storage block that came from the device's caching
// allocator, and the few autograd fields the tape needs (requires_grad, grad, where it was recorded).
// Storage is always contiguous row-major; view() reshapes without copying.
//
//   gt::Tensor x = gt::Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
//   gt::Tensor y = x.view({3, 2});               // same storage, new shape
//   float first = y.to_vector()[0];               // host copy (works for CUDA tensors too)
//   gt::Tensor g = x.to(gt::Device::CUDA);        // explicit copy; ops never copy across devices
//
// Core tensors do not record anything; the differentiable functions (gt::add, gt::matmul,
// gt::reshape, ...) live in autograd/ops.h.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"

namespace gt {

// A tensor's dimensions, stored inline (no heap allocation per op). Up to 8 dims.
class Shape {
 public:
  static constexpr int kMaxDims = 8;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);
  int size() const { return n_; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  void push_back(int64_t v);
  int64_t numel() const;
  std::vector<int64_t> vec() const { return std::vector<int64_t>(begin(), end()); }
  std::string str() const;  // "(2, 3)"
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  int64_t d_[kMaxDims] = {};
  int n_ = 0;
};
std::ostream& operator<<(std::ostream& os, const Shape& s);

// A block of device memory owned by the caching allocator; returned to it on destruction.
struct Storage {
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
};

struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (defined() == false)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (contents of empty() are unspecified) ----
  static Tensor empty(const Shape& shape, Device device = Device::CPU, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, Device device = Device::CPU);
  static Tensor ones(const Shape& shape, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::CPU);
  static Tensor scalar(float value, Device device = Device::CPU);  // shape ()
  static Tensor arange(int64_t n, Device device = Device::CPU);    // 0, 1, ..., n-1
  // An int32 tensor of indices (for index_select, labels).
  static Tensor from_indices(const std::vector<int32_t>& values, const Shape& shape,
                             Device device = Device::CPU);

  // ---- facts ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int dim() const { return shape().size(); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const;
  Device device() const;
  DType dtype() const;
  bool is_cuda() const { return device() == Device::CUDA; }
  std::string str() const;  // "Tensor(2, 3) float32 cpu"

  // Raw element pointer (host or device memory, by device()). Throws on an undefined tensor or
  // the wrong dtype.
  float* data() const;
  int32_t* data_i32() const;

  // ---- copies and views ----
  Tensor to(Device device) const;  // a copy on `device` (this tensor itself when already there)
  Tensor cpu() const { return to(Device::CPU); }
  std::vector<float> to_vector() const;  // host copy of the elements (reads back from the GPU)
  std::vector<int32_t> to_vector_i32() const;
  float item() const;                    // the value of a one-element tensor
  Tensor view(const Shape& shape) const;  // same storage, new shape; one dim may be -1
  Tensor row(int64_t i) const;            // same storage: element i along dim 0, shape()[1:]
  Tensor clone() const;                   // a new contiguous copy on the same device
  void fill_(float value);
  void zero_();
  void copy_(const Tensor& src);  // same shape and device required

  // ---- autograd fields (used by autograd/; see docs/autograd.md) ----
  bool requires_grad() const;
  // Marks a leaf as a parameter whose gradient backward() accumulates into grad().
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const;  // undefined until a backward reached this tensor
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops the gradient (the next backward starts from zero)

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  // A new handle on this tensor's storage from element `offset` with `shape` (no history, no grad).
  Tensor alias(int64_t offset, const Shape& shape) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;

  // autograd
  bool requires_grad = false;
  Tensor grad;
  uint64_t tape_generation = 0;  // which tape recorded this tensor (0: none — a leaf or constant)
  int64_t tape_index = -1;       // its entry in that tape
};

// ---- checks shared by every op: each names the op and both sides ----
void check_defined(const char* op, const Tensor& t, const char* what);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_dtype_f32(const char* op, const Tensor& t);

}  // namespace gt
