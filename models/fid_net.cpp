// fid_net.cpp: the FID feature network (architecture in fid_net.h).
#include "models/fid_net.h"

#include <chrono>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/error.h"
#include "models/classifier.h"
#include "models/optim.h"

namespace gt {

FidNet::FidNet(Generator& init, int num_classes) {
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(1, 32, 3, init, 1, 1));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 3, init, 1, 1));
  fc1_ = register_module("fc1", std::make_shared<nn::Linear>(64 * 7 * 7, kFeatures, init));
  fc2_ = register_module("fc2", std::make_shared<nn::Linear>(kFeatures, num_classes, init));
}

Tensor FidNet::features(const Tensor& x) const {
  check_defined("FidNet", x, "x");
  GT_CHECK((x.dim() == 2 && x.size(1) == 784) || (x.dim() == 4 && x.size(1) == 1 && x.size(2) == 28 && x.size(3) == 28),
           "FidNet: images must be (B, 784) or (B, 1, 28, 28), got " << x.shape());
  const int64_t B = x.size(0);
  Tensor h = x.dim() == 2 ? reshape(x, {B, 1, 28, 28}) : x;
  h = avg_pool2d(relu(conv1_->forward(h)), 2, 2);
  h = avg_pool2d(relu(conv2_->forward(h)), 2, 2);
  return fc1_->forward(reshape(h, {B, 64 * 7 * 7}), LinearAct::Relu);
}

Tensor FidNet::logits(const Tensor& x) const { return fc2_->forward(features(x)); }

void FidNet::evaluate(const Tensor& images, Tensor* features_out, std::vector<int32_t>* predictions,
                      int64_t batch) const {
  NoGradGuard no_grad;
  const int64_t N = images.size(0);
  const Device dev = conv1_->weight.device();
  std::vector<float> feats;
  if (features_out) feats.reserve((size_t)(N * kFeatures));
  if (predictions) predictions->clear();
  for (int64_t b0 = 0; b0 < N; b0 += batch) {
    const int64_t b1 = std::min(N, b0 + batch);
    Tensor x = slice(images, 0, b0, b1).to(dev);
    Tensor f = features(x);
    if (features_out) {
      std::vector<float> v = f.to_vector();
      feats.insert(feats.end(), v.begin(), v.end());
    }
    if (predictions) {
      Tensor l = fc2_->forward(f);
      std::vector<float> lv = l.to_vector();
      const int64_t C = l.size(1);
      for (int64_t i = 0; i < b1 - b0; ++i) {
        int32_t best = 0;
        for (int64_t c = 1; c < C; ++c)
          if (lv[i * C + c] > lv[i * C + best]) best = (int32_t)c;
        predictions->push_back(best);
      }
    }
  }
  if (features_out) *features_out = Tensor::from_vector(feats, {N, kFeatures});
}

FidNetReport train_fid_net(FidNet& net, const Dataset& train, const Dataset& test, int64_t epochs, uint64_t seed,
                           Device device) {
  GT_CHECK(train.height == 28 && train.width == 28, "FidNet: needs 28x28 images, the data set has "
                                                        << train.height << "x" << train.width);
  GT_CHECK(epochs >= 1, "FidNet: epochs must be >= 1, got " << epochs);
  if (device != Device::CPU) net.to(device);
  optim::Adam opt(net.named_parameters(), {.lr = 1e-3f});
  Batcher batches(train, 128, seed, device);
  FidNetReport r;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t e = 0; e < epochs; ++e) {
    batches.start_epoch(e);
    double sum = 0;
    int64_t n = 0;
    while (batches.next()) {
      Tensor loss = cross_entropy(net.logits(batches.x()), batches.y());
      backward(loss);
      opt.step();
      opt.zero_grad();
      sum += loss.item() * batches.x().size(0);
      n += batches.x().size(0);
    }
    r.epoch_loss.push_back(sum / n);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<int32_t> pred;
  net.evaluate(test.images, nullptr, &pred);
  const std::vector<int32_t> y = test.labels.to_vector_i32();
  int64_t right = 0;
  for (size_t i = 0; i < y.size(); ++i) right += pred[i] == y[i];
  r.test_accuracy = y.empty() ? 0 : (double)right / (double)y.size();
  return r;
}

}  // namespace gt
