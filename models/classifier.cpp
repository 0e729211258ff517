// classifier.cpp: softmax cross-entropy, the linear / MLP heads, their training (frozen features or
// fine-tuned encoder) and the outlier-scoring helpers of models/classifier.h.
//
// Cross-entropy as recorded ops on the row-shifted logits s'_bc = s_bc - max_c s_bc (the max a
// constant, which changes neither l nor its gradient):
//   l_b = logsumexp_c(s'_bc) - s'_b,y_b
// logsumexp is the stable one of autograd/ops.h; the picked logit s'_b,y_b is index_select of the
// flattened logits (B*C, 1) at rows b*C + y_b. Backward:
//   dl_b/ds_bc = softmax(s_b)_c (from logsumexp)  -  [c == y_b] (index_select's scatter-add),
// the familiar softmax - onehot, without ever materialising the one-hot matrix.
#include "models/classifier.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "autograd/ops.h"
#include "models/metrics.h"

namespace gt {

// ---------------------------------------------------------------------------------------------
// Cross-entropy

Tensor cross_entropy_per_sample(const Tensor& logits, const Tensor& labels) {
  check_defined("cross_entropy", logits, "the logits");
  check_defined("cross_entropy", labels, "the labels");
  check_dtype_f32("cross_entropy", logits);
  GT_CHECK(logits.dim() == 2 && logits.size(0) >= 1 && logits.size(1) >= 1,
           "cross_entropy: logits must be (B, C) with B, C >= 1, got " << logits.shape());
  GT_CHECK(labels.dtype() == DType::I32 && labels.dim() == 1 && labels.size(0) == logits.size(0),
           "cross_entropy: labels must be int32 (B) = (" << logits.size(0) << "), got " << labels.dtype() << " "
                                                        << labels.shape() << " for logits " << logits.shape());
  check_same_device("cross_entropy", logits, labels);
  const int64_t B = logits.size(0), C = logits.size(1);
  const std::vector<int32_t> y = labels.to_vector_i32();
  std::vector<int32_t> rows((size_t)B);
  for (int64_t b = 0; b < B; ++b) {
    GT_CHECK(y[(size_t)b] >= 0 && y[(size_t)b] < C,
             "cross_entropy: label " << y[(size_t)b] << " in row " << b << " is out of range for " << C << " classes");
    rows[(size_t)b] = (int32_t)(b * C + y[(size_t)b]);
  }
  GT_CHECK(B * C <= INT32_MAX, "cross_entropy: " << B << " x " << C << " logits exceed int32 row indices");
  // Shift each row by its (constant) maximum first: l is invariant to it, and so is the gradient
  // (sum_c dl/ds_c = 0), but logsumexp then lands in [0, log C] instead of next to a huge logit, so
  // the subtraction below does not cancel (logits ~ -3e4 would otherwise lose 1e-3 to rounding).
  Tensor row_max;
  {
    NoGradGuard no_grad;
    row_max = max(logits, 1, true);  // (B, 1), a constant
  }
  const Tensor shifted = sub(logits, row_max);
  const Tensor picked = index_select(reshape(shifted, {B * C, 1}), Tensor::from_indices(rows, {B}, logits.device()));
  return sub(logsumexp(shifted, 1), reshape(picked, {B}));
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  return mean(cross_entropy_per_sample(logits, labels));
}

// ---------------------------------------------------------------------------------------------
// ClassifierConfig

void ClassifierConfig::validate() const {
  GT_CHECK(head == "linear" || head == "mlp", "ClassifierConfig: head must be 'linear' or 'mlp', got '" << head << "'");
  GT_CHECK(hidden >= 1, "ClassifierConfig: hidden must be >= 1, got " << hidden);
  GT_CHECK(num_classes >= 2, "ClassifierConfig: num_classes must be >= 2, got " << num_classes);
  GT_CHECK(epochs >= 1, "ClassifierConfig: epochs must be >= 1, got " << epochs);
  GT_CHECK(batch >= 1, "ClassifierConfig: batch must be >= 1, got " << batch);
  GT_CHECK(std::isfinite(lr) && lr > 0.f, "ClassifierConfig: lr must be finite and > 0, got " << lr);
  GT_CHECK(std::isfinite(weight_decay) && weight_decay >= 0.f,
           "ClassifierConfig: weight_decay must be finite and >= 0, got " << weight_decay);
}

// ---------------------------------------------------------------------------------------------
// Classifier

Classifier::Classifier(const ClassifierConfig& config, int64_t features, Generator& init)
    : cfg_(config), features_(features) {
  cfg_.validate();
  GT_CHECK(features >= 1, "Classifier: features must be >= 1, got " << features);
  const int64_t C = cfg_.num_classes;
  if (cfg_.head == "linear") {
    fc1_ = register_module("fc1", std::make_shared<nn::Linear>(features, C, init));
  } else {
    fc1_ = register_module("fc1", std::make_shared<nn::Linear>(features, cfg_.hidden, init));
    fc2_ = register_module("fc2", std::make_shared<nn::Linear>(cfg_.hidden, C, init));
  }
  set_standardization(std::vector<float>((size_t)features, 0.f), std::vector<float>((size_t)features, 1.f));
}

void Classifier::fit_standardization(const Tensor& x) {
  check_defined("Classifier::fit_standardization", x, "x");
  GT_CHECK(x.dim() == 2 && x.size(1) == features_ && x.size(0) >= 1,
           "Classifier::fit_standardization: x must be (N, " << features_ << ") with N >= 1, got " << x.shape());
  const std::vector<float> h = x.to_vector();
  const int64_t N = x.size(0), F = features_;
  std::vector<double> s((size_t)F, 0.0), s2((size_t)F, 0.0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < F; ++j) s[(size_t)j] += h[(size_t)(i * F + j)];
  std::vector<float> mean((size_t)F), sd((size_t)F);
  for (int64_t j = 0; j < F; ++j) mean[(size_t)j] = (float)(s[(size_t)j] / (double)N);
  // Two passes (mean first): the one-pass E[x^2] - E[x]^2 cancels badly for large offsets.
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < F; ++j) {
      const double d = (double)h[(size_t)(i * F + j)] - s[(size_t)j] / (double)N;
      s2[(size_t)j] += d * d;
    }
  double largest = 0;
  for (int64_t j = 0; j < F; ++j) largest = std::max(largest, std::sqrt(s2[(size_t)j] / (double)N));
  for (int64_t j = 0; j < F; ++j) {
    const double sdj = std::sqrt(s2[(size_t)j] / (double)N);
    sd[(size_t)j] = sdj > kMinStd * largest && sdj > 0 ? (float)sdj : 1.f;
  }
  set_standardization(mean, sd);
}

void Classifier::set_standardization(const std::vector<float>& mean, const std::vector<float>& sd) {
  GT_CHECK((int64_t)mean.size() == features_ && (int64_t)sd.size() == features_,
           "Classifier::set_standardization: expected " << features_ << " means and stds, got " << mean.size()
                                                        << " and " << sd.size());
  std::vector<float> inv(sd.size());
  for (size_t j = 0; j < sd.size(); ++j) {
    GT_CHECK(std::isfinite(mean[j]) && std::isfinite(sd[j]) && sd[j] > 0.f,
             "Classifier::set_standardization: feature " << j << " has mean " << mean[j] << ", std " << sd[j]
                                                        << " (need finite values and std > 0)");
    inv[j] = 1.f / sd[j];
  }
  mean_ = mean;
  std_ = sd;
  mean_t_ = Tensor::from_vector(mean, {features_}, device());
  inv_std_t_ = Tensor::from_vector(inv, {features_}, device());
}

Tensor Classifier::standardize(const Tensor& x) const {
  check_defined("Classifier::standardize", x, "x");
  GT_CHECK(x.dim() == 2 && x.size(1) == features_,
           "Classifier: features must be (B, " << features_ << "), got " << x.shape());
  // The (F) constants follow the head when it moves between devices (Module::to moves parameters only).
  if (mean_t_.device() != x.device()) {
    mean_t_ = mean_t_.to(x.device());
    inv_std_t_ = inv_std_t_.to(x.device());
  }
  return mul(sub(x, mean_t_), inv_std_t_);
}

Tensor Classifier::logits(const Tensor& x) const { return logits_standardized(standardize(x)); }

Tensor Classifier::logits_standardized(const Tensor& xs) const {
  if (!fc2_) return fc1_->forward(xs);  // the linear head
  return fc2_->forward(fc1_->forward(xs, LinearAct::Relu));
}

std::vector<int32_t> Classifier::predict(const Tensor& x, int64_t batch) const {
  check_defined("Classifier::predict", x, "x");
  GT_CHECK(x.dim() == 2 && x.size(1) == features_,
           "Classifier::predict: features must be (N, " << features_ << "), got " << x.shape());
  GT_CHECK(batch >= 1, "Classifier::predict: batch must be >= 1, got " << batch);
  NoGradGuard no_grad;
  const int64_t N = x.size(0), C = cfg_.num_classes;
  const Tensor xd = x.to(device());
  std::vector<int32_t> out((size_t)N);
  for (int64_t i = 0; i < N; i += batch) {
    const int64_t e = std::min(N, i + batch);
    const std::vector<float> s = logits(slice(xd, 0, i, e)).to_vector();
    for (int64_t r = 0; r < e - i; ++r) {
      const float* row = s.data() + r * C;
      out[(size_t)(i + r)] = (int32_t)(std::max_element(row, row + C) - row);  // the first maximum
    }
  }
  return out;
}

double Classifier::accuracy(const Tensor& x, const Tensor& labels, int64_t batch) const {
  check_defined("Classifier::accuracy", labels, "the labels");
  GT_CHECK(labels.dtype() == DType::I32 && labels.dim() == 1 && x.defined() && labels.size(0) == x.size(0),
           "Classifier::accuracy: labels must be int32 (N) matching features " << (x.defined() ? x.shape().str() : "undefined")
                                                                             << ", got " << labels.dtype() << " "
                                                                             << labels.shape());
  const std::vector<int32_t> p = predict(x, batch), y = labels.to_vector_i32();
  GT_CHECK(!y.empty(), "Classifier::accuracy: no examples");
  int64_t right = 0;
  for (size_t i = 0; i < y.size(); ++i) right += p[i] == y[i];
  return (double)right / (double)y.size();
}

// ---------------------------------------------------------------------------------------------
// Training

namespace {

using Clock = std::chrono::steady_clock;

optim::NamedParams prefixed(const std::string& prefix, const optim::NamedParams& params) {
  optim::NamedParams out;
  for (const auto& p : params) out.push_back({prefix + p.first, p.second});
  return out;
}

void check_labels(const char* who, const Tensor& y, int64_t n, int classes) {
  check_defined(who, y, "the labels");
  GT_CHECK(y.dtype() == DType::I32 && y.dim() == 1 && y.size(0) == n,
           who << ": labels must be int32 (" << n << "), got " << y.dtype() << " " << y.shape());
  const std::vector<int32_t> h = y.to_vector_i32();
  for (size_t i = 0; i < h.size(); ++i)
    GT_CHECK(h[i] >= 0 && h[i] < classes,
             who << ": label " << h[i] << " of example " << i << " is out of range for " << classes << " classes");
}

// The shared loop: cfg.epochs epochs of Adam over `data` (images = the loop's inputs on the CPU).
// forward(x) gives the logits of a batch; opt holds every trained parameter.
void train_loop(const Dataset& data, const ClassifierConfig& cfg, const std::function<Tensor(const Tensor&)>& forward,
                optim::Optimizer& opt, ClassifierReport* report) {
  Batcher batches(data, cfg.batch, cfg.seed, cfg.device);
  ClassifierReport r;
  const auto t0 = Clock::now();
  for (int64_t epoch = 0; epoch < cfg.epochs; ++epoch) {
    double sum = 0;
    for (batches.start_epoch(epoch); batches.next();) {
      const Tensor loss = cross_entropy(forward(batches.x()), batches.y());
      backward(loss);
      opt.step();
      opt.zero_grad();
      sum += (double)loss.item() * (double)batches.x().size(0);
      ++r.steps;
    }
    r.epoch_loss.push_back(sum / (double)data.size());
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (report) *report = std::move(r);
}

optim::AdamOptions adam_options(const ClassifierConfig& cfg) {
  optim::AdamOptions o;
  o.lr = cfg.lr;
  o.weight_decay = cfg.weight_decay;
  return o;
}

}  // namespace

std::shared_ptr<Classifier> train_classifier(const Tensor& x, const Tensor& y, const ClassifierConfig& cfg,
                                             ClassifierReport* report) {
  cfg.validate();
  check_defined("train_classifier", x, "the features");
  GT_CHECK(x.dim() == 2 && x.size(0) >= 1 && x.size(1) >= 1,
           "train_classifier: features must be (N, F) with N, F >= 1, got " << x.shape());
  check_labels("train_classifier", y, x.size(0), cfg.num_classes);
  Generator init(cfg.seed);
  auto clf = std::make_shared<Classifier>(cfg, x.size(1), init);
  clf->to(cfg.device);
  clf->fit_standardization(x);

  // Standardise the whole set once; the loop then runs the head alone on ready batches.
  Dataset data;
  data.name = "features";
  data.height = 1;
  data.width = x.size(1);
  data.num_classes = cfg.num_classes;
  {
    NoGradGuard no_grad;
    data.images = clf->standardize(x.cpu()).clone();
  }
  data.labels = y.cpu();
  auto head_only = [&](const Tensor& xs) { return clf->logits_standardized(xs); };
  optim::Adam opt(prefixed("head.", clf->named_parameters()), adam_options(cfg));
  ClassifierReport r;
  train_loop(data, cfg, head_only, opt, &r);
  r.train_accuracy = clf->accuracy(x, y);
  if (report) *report = std::move(r);
  return clf;
}

double train_and_test(const Tensor& x, const Tensor& y, const Tensor& test_x, const Tensor& test_y,
                      const ClassifierConfig& cfg, ClassifierReport* report) {
  ClassifierReport r;
  const auto clf = train_classifier(x, y, cfg, &r);
  GT_CHECK(test_x.defined() && test_x.dim() == 2 && test_x.size(1) == x.size(1),
           "train_and_test: test features must be (N, " << x.size(1) << ") like the training ones, got "
                                                       << (test_x.defined() ? test_x.shape().str() : "undefined"));
  r.test_accuracy = clf->accuracy(test_x, test_y);
  if (report) *report = r;
  return r.test_accuracy;
}

Tensor compute_features(const FeatureFn& features, const Tensor& images, int64_t batch) {
  check_defined("compute_features", images, "the images");
  GT_CHECK(images.dim() == 2 && images.size(0) >= 1,
           "compute_features: images must be (N, D) with N >= 1, got " << images.shape());
  GT_CHECK(batch >= 1, "compute_features: batch must be >= 1, got " << batch);
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < images.size(0); i += batch)
    parts.push_back(features(slice(images, 0, i, std::min(images.size(0), i + batch))).cpu());
  return parts.size() == 1 ? parts[0] : concat(parts, 0);
}

std::shared_ptr<Classifier> finetune_classifier(const FeatureFn& features, const optim::NamedParams& encoder,
                                                const Dataset& train, const ClassifierConfig& cfg,
                                                ClassifierReport* report) {
  cfg.validate();
  GT_CHECK(train.size() >= 1, "finetune_classifier: the training set " << train.name << " is empty");
  check_labels("finetune_classifier", train.labels, train.size(), cfg.num_classes);
  for (const auto& p : encoder)
    GT_CHECK(p.second.defined() && p.second.requires_grad(),
             "finetune_classifier: encoder parameter '" << p.first << "' does not require a gradient");
  const Tensor f0 = compute_features(features, train.images.to(cfg.device));
  Generator init(cfg.seed);
  auto clf = std::make_shared<Classifier>(cfg, f0.size(1), init);
  clf->to(cfg.device);
  clf->fit_standardization(f0);

  optim::NamedParams params = prefixed("head.", clf->named_parameters());
  const optim::NamedParams enc = prefixed("encoder.", encoder);
  params.insert(params.end(), enc.begin(), enc.end());
  optim::Adam opt(params, adam_options(cfg));
  ClassifierReport r;
  train_loop(train, cfg, [&](const Tensor& x) { return clf->logits(features(x)); }, opt, &r);
  r.train_accuracy = clf->accuracy(compute_features(features, train.images.to(cfg.device)), train.labels);
  if (report) *report = std::move(r);
  return clf;
}

// ---------------------------------------------------------------------------------------------
// Outliers

std::vector<bool> held_out_mask(const Tensor& labels, int cls) {
  check_defined("held_out_mask", labels, "the labels");
  GT_CHECK(labels.dtype() == DType::I32 && labels.dim() == 1,
           "held_out_mask: labels must be int32 (N), got " << labels.dtype() << " " << labels.shape());
  const std::vector<int32_t> y = labels.to_vector_i32();
  std::vector<bool> out(y.size());
  for (size_t i = 0; i < y.size(); ++i) out[i] = y[i] == cls;
  return out;
}

double outlier_auroc(const std::vector<double>& scores, const std::vector<bool>& held_out) {
  GT_CHECK(scores.size() == held_out.size(),
           "outlier_auroc: " << scores.size() << " scores but " << held_out.size() << " held-out flags");
  std::vector<int> labels(held_out.size());
  for (size_t i = 0; i < held_out.size(); ++i) labels[i] = held_out[i] ? 1 : 0;
  return auroc(scores, labels);
}

std::vector<int64_t> top_anomalies(const std::vector<double>& scores, int64_t n) {
  GT_CHECK(n >= 0, "top_anomalies: n must be >= 0, got " << n);
  for (size_t i = 0; i < scores.size(); ++i) GT_CHECK(!std::isnan(scores[i]), "top_anomalies: score " << i << " is NaN");
  const int64_t k = std::min<int64_t>(n, (int64_t)scores.size());
  std::vector<int64_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), int64_t(0));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
    return scores[(size_t)a] != scores[(size_t)b] ? scores[(size_t)a] > scores[(size_t)b] : a < b;
  });
  idx.resize((size_t)k);
  return idx;
}

}  // namespace gt
