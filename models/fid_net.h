// fid_net.h: the feature network behind `gentape fid` — a small CNN classifier trained on the same
// data set as the generative model; its 128-d penultimate activations are the features whose
// Gaussian statistics the Fréchet distance compares (models/fid.h). It plays the role Inception-v3
// plays for natural images (Heusel et al. 2017): FIDs are comparable only within gentape, for one
// data set and one trained FidNet (the cache keeps it fixed).
//
//   x (B, 1, 28, 28) in [0, 1]
//   conv1 3x3 1 -> 32, pad 1, ReLU, avg-pool 2      (B, 32, 14, 14)
//   conv2 3x3 32 -> 64, pad 1, ReLU, avg-pool 2     (B, 64, 7, 7)
//   fc1 3136 -> 128, ReLU                           features (B, 128)
//   fc2 128 -> 10                                   logits
//
// Trained with softmax cross-entropy (models/classifier.h) and Adam 1e-3, batch 128. Its test
// accuracy is reported with every FID (docs/ddpm.md records it per data set), and it scores
// class-conditional samples: the fraction classified as the class they were drawn for.
//
//   gt::Generator init(1);
//   gt::FidNet net(init);
//   gt::FidNetReport r = gt::train_fid_net(net, train, test, 2, 1);
//   gt::Tensor f = net.features(x);     // (B, 128)
#pragma once

#include <memory>
#include <vector>

#include "core/rng.h"
#include "models/data.h"
#include "models/layers.h"

namespace gt {

class FidNet : public nn::Module {
 public:
  static constexpr int64_t kFeatures = 128;
  FidNet(Generator& init, int num_classes = 10);
  Tensor features(const Tensor& x) const;  // x (B, 1, 28, 28) or (B, 784) in [0, 1] -> (B, 128)
  Tensor logits(const Tensor& x) const;    // -> (B, num_classes)
  // Without recording, `batch` rows at a time: features (N, 128) and predicted classes (N), on the CPU.
  void evaluate(const Tensor& images, Tensor* features, std::vector<int32_t>* predictions, int64_t batch = 500) const;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::Linear> fc1_, fc2_;
};

struct FidNetReport {
  double test_accuracy = 0;
  double seconds = 0;
  std::vector<double> epoch_loss;
};

// Trains net on train (images in [0, 1]) for `epochs` epochs (seeded minibatches) and measures the
// accuracy on test.
FidNetReport train_fid_net(FidNet& net, const Dataset& train, const Dataset& test, int64_t epochs, uint64_t seed,
                           Device device = Device::CPU);

}  // namespace gt
