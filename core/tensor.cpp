// tensor.cpp: Tensor creation, copies across devices, views and the shared argument checks.
#include "core/tensor.h"

#include <algorithm>
#include <cstring>
#include <ostream>
#include <sstream>

#include "core/allocator.h"
#include "core/cuda_memory.h"

namespace gt {


// ---------------------------------------------------------------- Shape
Shape::Shape(std::initializer_list<int64_t> dims) {
  GT_CHECK((int)dims.size() <= kMaxDims, "shape has " << dims.size() << " dims; at most " << kMaxDims);
  for (int64_t v : dims) d_[n_++] = v;
}
Shape::Shape(const std::vector<int64_t>& dims) {
  GT_CHECK((int)dims.size() <= kMaxDims, "shape has " << dims.size() << " dims; at most " << kMaxDims);
  for (int64_t v : dims) d_[n_++] = v;
}
void Shape::push_back(int64_t v) {
  GT_CHECK(n_ < kMaxDims, "shape " << str() << " cannot grow past " << kMaxDims << " dims");
  d_[n_++] = v;
}
int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < n_; ++i) n *= d_[i];
  return n;
}
std::string Shape::str() const {
  std::ostringstream os;
  os << "(";
  for (int i = 0; i < n_; ++i) os << (i ? ", " : "") << d_[i];
  os << ")";
  return os.str();
}
bool Shape::operator==(const Shape& o) const {
  return n_ == o.n_ && std::equal(begin(), end(), o.begin());
}
std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

// ---------------------------------------------------------------- Storage
Storage::Storage(size_t nbytes, Device dev) : bytes(nbytes), device(dev) {
  ptr = allocator(dev).allocate(nbytes);
}
Storage::~Storage() { allocator(device).deallocate(ptr, bytes); }

// ---------------------------------------------------------------- Tensor
namespace {
void check_shape_valid(const Shape& shape) {
  for (int64_t d : shape) GT_CHECK(d >= 0, "invalid shape " << shape << ": negative dimension");
}
void copy_bytes(void* dst, Device ddev, const void* src, Device sdev, size_t bytes) {
  if (bytes == 0) return;
  if (ddev == Device::CPU && sdev == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if GENTAPE_HAS_CUDA
  using detail::CopyKind;
  CopyKind k = ddev == Device::CUDA ? (sdev == Device::CUDA ? CopyKind::DeviceToDevice : CopyKind::HostToDevice)
                                    : CopyKind::DeviceToHost;
  detail::cuda_copy(dst, src, bytes, k);
#else
  GT_FAIL("copy involving CUDA memory but " << cuda_unavailable_reason());
#endif
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  check_shape_valid(shape);
  if (device == Device::CUDA) GT_CHECK(cuda_available(), "cannot create a CUDA tensor: " << cuda_unavailable_reason());
  GT_CHECK(dtype == DType::F32 || dtype == DType::I32, "dtype " << dtype << " is not supported yet");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>((size_t)shape.numel() * dtype_size(dtype), device);
  impl->shape = shape;
  impl->device = device;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, Device device) {
  Tensor t = empty(shape, device);
  t.zero_();
  return t;
}
Tensor Tensor::ones(const Shape& shape, Device device) { return full(shape, 1.0f, device); }
Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  GT_CHECK((int64_t)values.size() == shape.numel(),
           "from_vector: " << values.size() << " values do not fill shape " << shape << " ("
                           << shape.numel() << " elements)");
  Tensor t = empty(shape, device);
  copy_bytes(t.data(), device, values.data(), Device::CPU, values.size() * sizeof(float));
  return t;
}
Tensor Tensor::from_indices(const std::vector<int32_t>& values, const Shape& shape, Device device) {
  GT_CHECK((int64_t)values.size() == shape.numel(),
           "from_indices: " << values.size() << " values do not fill shape " << shape);
  Tensor t = empty(shape, device, DType::I32);
  copy_bytes(t.data_i32(), device, values.data(), Device::CPU, values.size() * sizeof(int32_t));
  return t;
}
Tensor Tensor::scalar(float value, Device device) { return full(Shape{}, value, device); }
Tensor Tensor::arange(int64_t n, Device device) {
  std::vector<float> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) v[(size_t)i] = (float)i;
  return from_vector(v, Shape{n}, device);
}

const Shape& Tensor::shape() const {
  GT_CHECK(impl_, "use of an undefined tensor");
  return impl_->shape;
}
int64_t Tensor::size(int d) const {
  int n = dim();
  int dd = d < 0 ? d + n : d;
  GT_CHECK(dd >= 0 && dd < n, "dimension " << d << " out of range for shape " << shape());
  return impl_->shape[dd];
}
int64_t Tensor::numel() const { return shape().numel(); }
Device Tensor::device() const {
  GT_CHECK(impl_, "use of an undefined tensor");
  return impl_->device;
}
DType Tensor::dtype() const {
  GT_CHECK(impl_, "use of an undefined tensor");
  return impl_->dtype;
}
std::string Tensor::str() const {
  if (!impl_) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor" << shape() << " " << dtype() << " " << device();
  return os.str();
}
float* Tensor::data() const {
  GT_CHECK(impl_, "use of an undefined tensor");
  GT_CHECK(impl_->dtype == DType::F32, "data(): tensor is " << impl_->dtype << ", not float32");
  return static_cast<float*>(impl_->storage->ptr) + impl_->offset;
}
int32_t* Tensor::data_i32() const {
  GT_CHECK(impl_, "use of an undefined tensor");
  GT_CHECK(impl_->dtype == DType::I32, "data_i32(): tensor is " << impl_->dtype << ", not int32");
  return static_cast<int32_t*>(impl_->storage->ptr) + impl_->offset;
}
namespace {
void* raw_ptr(const Tensor& t) {
  return static_cast<char*>(t.impl()->storage->ptr) + t.impl()->offset * (int64_t)dtype_size(t.dtype());
}
size_t nbytes(const Tensor& t) { return (size_t)t.numel() * dtype_size(t.dtype()); }
}  // namespace

Tensor Tensor::to(Device device) const {
  if (this->device() == device) return *this;
  Tensor t = empty(shape(), device, dtype());
  copy_bytes(raw_ptr(t), device, raw_ptr(*this), this->device(), nbytes(*this));
  return t;
}
std::vector<float> Tensor::to_vector() const {
  std::vector<float> v((size_t)numel());
  copy_bytes(v.data(), Device::CPU, data(), device(), v.size() * sizeof(float));
  return v;
}
std::vector<int32_t> Tensor::to_vector_i32() const {
  std::vector<int32_t> v((size_t)numel());
  copy_bytes(v.data(), Device::CPU, data_i32(), device(), v.size() * sizeof(int32_t));
  return v;
}
float Tensor::item() const {
  GT_CHECK(numel() == 1, "item() needs a one-element tensor, got shape " << shape());
  return to_vector()[0];
}
Tensor Tensor::view(const Shape& new_shape) const {
  Shape s = new_shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      GT_CHECK(infer < 0, "view: more than one -1 in " << new_shape);
      infer = i;
    } else {
      GT_CHECK(s[i] >= 0, "view: invalid shape " << new_shape);
      known *= s[i];
    }
  }
  if (infer >= 0) {
    GT_CHECK(known > 0 && numel() % known == 0,
             "view: cannot reshape " << shape() << " (" << numel() << " elements) into " << new_shape);
    s[infer] = numel() / known;
  }
  GT_CHECK(s.numel() == numel(),
           "view: cannot reshape " << shape() << " (" << numel() << " elements) into " << new_shape);
  return alias(impl_->offset, s);
}
Tensor Tensor::row(int64_t i) const {
  GT_CHECK(impl_ && dim() >= 1, "row: needs a tensor with at least one dimension, got " << (impl_ ? str() : "undefined"));
  GT_CHECK(i >= 0 && i < size(0), "row: index " << i << " out of range for shape " << shape());
  Shape s;
  for (int d = 1; d < dim(); ++d) s.push_back(shape()[d]);
  return alias(impl_->offset + i * s.numel(), s);
}
Tensor Tensor::alias(int64_t offset, const Shape& shape) const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->dtype = impl_->dtype;
  impl->device = impl_->device;
  return Tensor(std::move(impl));
}
Tensor Tensor::clone() const {
  Tensor t = empty(shape(), device(), dtype());
  t.copy_(*this);
  return t;
}
void Tensor::fill_(float value) {
  float* p = data();
  int64_t n = numel();
  if (device() == Device::CPU) {
    std::fill(p, p + n, value);
    return;
  }
#if GENTAPE_HAS_CUDA
  detail::cuda_fill(p, n, value);
#endif
}
void Tensor::zero_() { fill_(0.0f); }
void Tensor::copy_(const Tensor& src) {
  check_same_shape("copy_", *this, src);
  check_same_device("copy_", *this, src);
  GT_CHECK(dtype() == src.dtype(), "copy_: dtype mismatch: " << dtype() << " vs " << src.dtype());
  copy_bytes(raw_ptr(*this), device(), raw_ptr(src), src.device(), nbytes(*this));
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }
Tensor& Tensor::set_requires_grad(bool on) {
  GT_CHECK(impl_, "set_requires_grad on an undefined tensor");
  GT_CHECK(!on || impl_->tape_generation == 0,
           "set_requires_grad: only leaves (tensors not produced by a recorded op) can be marked; "
           "use gt::detach(x) to make a leaf copy");
  impl_->requires_grad = on;
  return *this;
}
Tensor Tensor::grad() const {
  GT_CHECK(impl_, "grad() of an undefined tensor");
  return impl_->grad;
}
void Tensor::set_grad(const Tensor& g) const {
  GT_CHECK(impl_, "set_grad on an undefined tensor");
  if (g.defined()) {
    check_same_shape("set_grad", *this, g);
    check_same_device("set_grad", *this, g);
  }
  impl_->grad = g;
}
void Tensor::zero_grad() const {
  if (impl_) impl_->grad = Tensor();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  os << t.str();
  if (!t.defined()) return os;
  std::vector<float> v;
  if (t.dtype() == DType::I32) {
    for (int32_t i : t.to_vector_i32()) v.push_back((float)i);
  } else {
    v = t.to_vector();
  }
  os << " [";
  size_t show = std::min<size_t>(v.size(), 10);
  for (size_t i = 0; i < show; ++i) os << (i ? ", " : "") << v[i];
  if (v.size() > show) os << ", ...";
  return os << "]";
}

// ---------------------------------------------------------------- checks
void check_defined(const char* op, const Tensor& t, const char* what) {
  GT_CHECK(t.defined(), op << ": " << what << " is an undefined tensor");
}
void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  GT_CHECK(a.device() == b.device(), op << ": device mismatch: " << a.str() << " vs " << b.str()
                                        << " (move one with .to(device); ops never copy silently)");
}
void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  GT_CHECK(a.shape() == b.shape(), op << ": shape mismatch: " << a.shape() << " vs " << b.shape());
}
void check_dtype_f32(const char* op, const Tensor& t) {
  GT_CHECK(t.dtype() == DType::F32, op << ": dtype " << t.dtype() << " not supported yet (float32 only)");
}

}  // namespace gt
