// data.cpp: Dataset helpers and the minibatch iterator.
#include "models/data.h"

#include <algorithm>
#include <cstring>

#include "core/rng.h"
#include "kernels/parallel.h"

namespace gt {

Dataset Dataset::rows(const std::vector<int64_t>& indices) const {
  for (int64_t r : indices)
    GT_CHECK(r >= 0 && r < size(), "data set " << name << " has " << size() << " examples; index " << r << " is out of range");
  Dataset out;
  out.name = name;
  out.height = height;
  out.width = width;
  out.num_classes = num_classes;
  const int64_t n = (int64_t)indices.size(), D = dim();
  out.images = Tensor::empty({n, D});
  out.labels = Tensor::empty({n}, Device::CPU, DType::I32);
  const float* src = images.data();
  const int32_t* lab = labels.data_i32();
  float* dst = out.images.data();
  int32_t* ldst = out.labels.data_i32();
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(dst + i * D, src + indices[(size_t)i] * D, (size_t)D * sizeof(float));
    ldst[i] = lab[indices[(size_t)i]];
  }
  return out;
}

Dataset Dataset::head(int64_t n) const {
  GT_CHECK(n >= 1 && n <= size(), "data set " << name << " has " << size() << " examples; cannot take the first " << n);
  std::vector<int64_t> rows((size_t)n);
  for (int64_t i = 0; i < n; ++i) rows[(size_t)i] = i;
  return this->rows(rows);
}

Dataset Dataset::without_class(int cls) const {
  GT_CHECK(cls >= 0 && cls < num_classes, "class " << cls << " out of range for " << name << " (0.." << num_classes - 1 << ")");
  std::vector<int64_t> rows;
  const int32_t* lab = labels.data_i32();
  for (int64_t i = 0; i < size(); ++i)
    if (lab[i] != cls) rows.push_back(i);
  return this->rows(rows);
}

std::vector<int32_t> permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int32_t> p((size_t)n);
  for (int64_t i = 0; i < n; ++i) p[(size_t)i] = (int32_t)i;
  if (n < 2) return p;
  Generator g(seed);
  g.set_offset(stream * (uint64_t(1) << 40));  // a disjoint slice of the stream per (epoch) stream id
  std::vector<float> u((size_t)n);
  g.uniform(u.data(), n, Device::CPU);
  for (int64_t i = n - 1; i > 0; --i) {
    // u in (0, 1]: j uniform on 0..i
    int64_t j = (int64_t)((double)u[(size_t)i] * (double)(i + 1) - 1e-9);
    if (j > i) j = i;
    if (j < 0) j = 0;
    std::swap(p[(size_t)i], p[(size_t)j]);
  }
  return p;
}

Batcher::Batcher(const Dataset& data, int64_t batch_size, uint64_t seed, Device device, bool shuffle, bool drop_last)
    : data_(data), batch_size_(batch_size), seed_(seed), device_(device), shuffle_(shuffle), drop_last_(drop_last) {
  GT_CHECK(batch_size >= 1, "batch size must be >= 1, got " << batch_size);
  GT_CHECK(data.size() >= 1, "data set " << data.name << " is empty");
  start_epoch(0);
}

int64_t Batcher::batches_per_epoch() const {
  int64_t n = data_.size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void Batcher::start_epoch(int64_t epoch) {
  if (shuffle_) {
    order_ = permutation(data_.size(), seed_, (uint64_t)epoch + 1);
  } else {
    order_.resize((size_t)data_.size());
    for (int64_t i = 0; i < data_.size(); ++i) order_[(size_t)i] = (int32_t)i;
  }
  pos_ = 0;
  batch_ = -1;
}

bool Batcher::next() {
  const int64_t n = data_.size();
  int64_t b = std::min(batch_size_, n - pos_);
  if (b <= 0 || (drop_last_ && b < batch_size_)) return false;
  const int64_t D = data_.dim();
  // Fresh tensors each batch (cache hits after the first): a batch still referenced by an earlier
  // tape is never overwritten.
  Tensor xh = Tensor::empty({b, D});
  Tensor yh = Tensor::empty({b}, Device::CPU, DType::I32);
  const float* src = data_.images.data();
  const int32_t* lab = data_.labels.data_i32();
  float* dst = xh.data();
  int32_t* ldst = yh.data_i32();
  // A gather of random rows (each one TLB miss and a cold line run): both threads copy rows.
  const int32_t* rows = order_.data() + pos_;
  parallel_for(b, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(D, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int32_t r = rows[i];
      std::memcpy(dst + i * D, src + (int64_t)r * D, (size_t)D * sizeof(float));
      ldst[i] = lab[r];
    }
  });
  x_ = xh.to(device_);
  y_ = yh.to(device_);
  pos_ += b;
  batch_++;
  return true;
}

void binarize_(Tensor& x, Generator& gen) {
  GT_CHECK(x.device() == Device::CPU, "binarize_: CPU tensors only (binarise before moving a batch to the GPU)");
  const int64_t n = x.numel();
  Tensor u = Tensor::empty({n});
  gen.uniform(u.data(), n, Device::CPU);
  float* p = x.data();
  const float* r = u.data();
  for (int64_t i = 0; i < n; ++i) p[i] = r[i] <= p[i] ? 1.f : 0.f;  // u in (0,1]: P(1) = p exactly
}

}  // namespace gt
