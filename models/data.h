// data.h: an in-memory image data set and the seeded minibatch iterator training loops use.
//
// Images are stored once as float32 in [0, 1], flattened to (N, H*W); a minibatch is gathered into
// a tensor on the training device. Shuffling uses the Philox stream (a Fisher-Yates shuffle driven by
// gt::Generator), so an epoch's order depends only on the seed and the epoch number — which is what
// makes `--resume` reproduce an uninterrupted run exactly.
//
//   gt::Dataset train = ...;                          // tools/io/datasets.h loads them by name
//   gt::Batcher batches(train, 128, /*seed=*/1, gt::Device::CPU);
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (batches.start_epoch(epoch); batches.next();) use(batches.x(), batches.y());
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace gt {

struct Dataset {
  std::string name;
  Tensor images;  // (N, H*W) float32 in [0, 1], on the CPU
  Tensor labels;  // (N) int32 class labels
  int64_t height = 0, width = 0;
  int num_classes = 10;
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t dim() const { return height * width; }
  // The first n examples (n <= size()), sharing no storage with this one.
  Dataset head(int64_t n) const;
  // Every example whose label is not `cls`.
  Dataset without_class(int cls) const;
  // The examples at these indices, in this order (a copy). Indices out of range are an error.
  Dataset rows(const std::vector<int64_t>& indices) const;
};

class Batcher {
 public:
  // drop_last: skip a final partial batch (the default keeps it, as PyTorch's DataLoader does).
  Batcher(const Dataset& data, int64_t batch_size, uint64_t seed, Device device, bool shuffle = true,
          bool drop_last = false);
  // Resets to the beginning of `epoch`; the order is a function of (seed, epoch) only.
  void start_epoch(int64_t epoch);
  // Advances to the next minibatch; false at the end of the epoch.
  bool next();
  const Tensor& x() const { return x_; }  // (B, H*W) on the device
  const Tensor& y() const { return y_; }  // (B) int32 on the device
  int64_t batches_per_epoch() const;
  int64_t batch_index() const { return batch_; }  // 0-based index of the current batch

 private:
  const Dataset& data_;
  int64_t batch_size_;
  uint64_t seed_;
  Device device_;
  bool shuffle_, drop_last_;
  std::vector<int32_t> order_;
  int64_t pos_ = 0, batch_ = -1;
  Tensor x_, y_;
};

// Deterministic shuffle of 0..n-1 from (seed, stream): Fisher-Yates with Philox uniforms.
std::vector<int32_t> permutation(int64_t n, uint64_t seed, uint64_t stream);

// x ~ Bernoulli(x) elementwise (dynamic binarisation), from `gen`'s stream.
void binarize_(Tensor& x, class Generator& gen);

}  // namespace gt
