// classifier.h: what an autoencoder's code is good for — a classifier head trained on features
// (frozen, or fine-tuned together with the encoder), and the outlier-detection numbers.
//
// Heads (logits s = f(x^) for C classes on standardised features x^ = (x - mu) / sigma, where
// mu and sigma are the per-feature mean and standard deviation of the training features):
//   "linear"  s = W x^ + b                           multinomial logistic regression
//   "mlp"     s = W2 relu(W1 x^ + b1) + b2           one hidden layer of 100 ReLU units, as
//                                                    Xiao et al. 2017's MLPClassifier (100,)
// Loss: softmax cross-entropy, the mean over the batch of
//   l_b = -log softmax(s_b)_{y_b} = logsumexp_c(s_bc) - s_b,y_b
// computed on s_b - max_c s_bc through logsumexp, so it is finite for any finite logits and does
// not cancel for huge ones. Its gradient is dl_b/ds_bc = softmax(s_b)_c - [c == y_b].
// Trained with Adam (PyTorch's, models/optim.h), seeded minibatches (models/data.h Batcher).
//
// Fine-tuning trains the head and an encoder together: features(x) is any function that records
// on the tape (e.g. an Autoencoder's encode), and the encoder's parameters join the head's in one
// Adam. The standardisation is fitted once, on the initial encoder's training features, and then
// held fixed (it is an affine layer the head's first Linear can absorb).
//
// Outliers: with a model trained without class C, each test image gets a score (reconstruction
// error, -ELBO); outlier_auroc is the AUROC of the scores for telling class C (positive) from the
// rest, and top_anomalies the indices of the highest scores.
//
//   gt::ClassifierConfig cfg;                     // head "linear", Adam 1e-3, batch 128, 10 epochs
//   gt::ClassifierReport r;
//   auto clf = gt::train_classifier(train_x, train_y, cfg, &r);   // train_x (N, F), train_y (N) int32
//   double acc = clf->accuracy(test_x, test_y);                   // or, in one call:
//   double same = gt::train_and_test(train_x, train_y, test_x, test_y, cfg);
//   double a = gt::outlier_auroc(scores, gt::held_out_mask(test_labels, 3));
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "models/data.h"
#include "models/layers.h"
#include "models/optim.h"

namespace gt {

// Softmax cross-entropy per example: logits (B, C) float32, labels (B) int32 in [0, C) on the
// same device -> (B) with l_b = logsumexp_c(logits_bc) - logits_b,y_b. Differentiable in logits
// (through logsumexp and an index_select of the picked logits). A label out of range is an error
// naming it and its row. The labels are read on the host to build the row indices.
Tensor cross_entropy_per_sample(const Tensor& logits, const Tensor& labels);
// The batch mean of cross_entropy_per_sample: shape ().
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);

struct ClassifierConfig {
  std::string head = "linear";  // "linear" or "mlp"
  int64_t hidden = 100;         // width of the mlp head's hidden layer
  int num_classes = 10;
  int64_t epochs = 10;
  int64_t batch = 128;
  float lr = 1e-3f;             // Adam's, for the head (and the encoder when fine-tuning)
  float weight_decay = 0.f;     // Adam's L2 term (PyTorch's weight_decay), 0: none
  uint64_t seed = 1;            // initialisation, and the minibatch order (Batcher seed)
  Device device = Device::CPU;  // where training runs; features may live on either device
  void validate() const;        // throws gt::Error naming the bad field
};

// What training reports, for logs and the CLI's JSON.
struct ClassifierReport {
  std::vector<double> epoch_loss;  // mean cross-entropy over each epoch's examples
  double train_accuracy = 0;       // after the last epoch, on the (unshuffled) training set
  double test_accuracy = -1;       // set by train_and_test (-1: not evaluated)
  double seconds = 0;              // the training loop only (no standardisation, no evaluation)
  int64_t steps = 0;
};

class Classifier : public nn::Module {
 public:
  // A head for `features` inputs; its parameters are drawn from init ("fc1.weight", "fc1.bias" and,
  // for "mlp", "fc2.weight", "fc2.bias": PyTorch's nn.Linear layouts). Standardisation starts as
  // the identity (mean 0, std 1).
  Classifier(const ClassifierConfig& config, int64_t features, Generator& init);
  const ClassifierConfig& config() const { return cfg_; }
  int64_t num_features() const { return features_; }

  // Stores the per-feature mean and standard deviation of x (N, F), computed in double. A feature
  // whose standard deviation is below kMinStd times the largest one (constant, e.g. a border
  // pixel that is 0 in every training image) gets sigma = 1, so it passes through centred and a
  // rare non-zero test value is not blown up.
  static constexpr double kMinStd = 1e-3;
  void fit_standardization(const Tensor& x);
  const std::vector<float>& feature_mean() const { return mean_; }
  const std::vector<float>& feature_std() const { return std_; }
  void set_standardization(const std::vector<float>& mean, const std::vector<float>& std);
  // (x - mean) / std for x (B, F); records on the tape (so gradients reach a fine-tuned encoder).
  Tensor standardize(const Tensor& x) const;

  // Logits (B, C) of raw (unstandardised) features x (B, F).
  Tensor logits(const Tensor& x) const;
  // Logits (B, C) of features already standardised with this head's mean and std.
  Tensor logits_standardized(const Tensor& xs) const;
  // argmax_c logits, ties to the lowest class; evaluated without recording, `batch` rows at a time.
  std::vector<int32_t> predict(const Tensor& x, int64_t batch = 1000) const;
  // Fraction of rows whose prediction equals labels (N) int32.
  double accuracy(const Tensor& x, const Tensor& labels, int64_t batch = 1000) const;

 private:
  ClassifierConfig cfg_;
  int64_t features_;
  std::shared_ptr<nn::Linear> fc1_, fc2_;
  std::vector<float> mean_, std_;
  // (F) constants standardize uses; mutable because they follow the input's device on first use.
  mutable Tensor mean_t_, inv_std_t_;
};

// Trains a new head on features x (N, F) with labels y (N) int32: standardisation fitted on x, then
// cfg.epochs epochs of Adam on shuffled minibatches (the last partial batch kept). Deterministic for
// a seed and thread count. report (optional) receives the losses and the training accuracy.
std::shared_ptr<Classifier> train_classifier(const Tensor& x, const Tensor& y, const ClassifierConfig& cfg,
                                             ClassifierReport* report = nullptr);

// train_classifier on (x, y), then the accuracy on (test_x, test_y) — the number `gentape classify`
// reports, for the encoder's features and for the raw-pixel baseline alike.
double train_and_test(const Tensor& x, const Tensor& y, const Tensor& test_x, const Tensor& test_y,
                      const ClassifierConfig& cfg, ClassifierReport* report = nullptr);

// Fine-tuning: `features` maps images (B, D) to features (B, F) and records on the tape; encoder
// holds the parameters it uses (requires_grad leaves). Standardisation is fitted on the initial
// features of `train` (computed without recording), then head and encoder are trained together
// with one Adam (cfg.lr for both). The encoder's parameters are updated in place.
using FeatureFn = std::function<Tensor(const Tensor& x)>;
std::shared_ptr<Classifier> finetune_classifier(const FeatureFn& features, const optim::NamedParams& encoder,
                                                const Dataset& train, const ClassifierConfig& cfg,
                                                ClassifierReport* report = nullptr);

// features(images) without recording, `batch` rows at a time, concatenated: (N, F) on the CPU.
Tensor compute_features(const FeatureFn& features, const Tensor& images, int64_t batch = 1000);

// ---- outlier detection ----
// held_out[i] = labels[i] == cls, for labels (N) int32.
std::vector<bool> held_out_mask(const Tensor& labels, int cls);
// AUROC (models/metrics.h: exact, ties count 1/2) of scores (N) for separating the held-out
// examples (positives) from the rest; higher scores should mean "more anomalous".
double outlier_auroc(const std::vector<double>& scores, const std::vector<bool>& held_out);
// Indices of the n highest scores, highest first, ties by the lower index (a stable order);
// n is clamped to scores.size(). A NaN score is an error naming its index.
std::vector<int64_t> top_anomalies(const std::vector<double>& scores, int64_t n);

}  // namespace gt
