// test_classifier.cpp: models/classifier.h — softmax cross-entropy (an op-table row: forward vs a
// double reference, finite differences, CPU vs CUDA; the analytic softmax - onehot gradient; huge
// logits stay finite), standardisation, the linear head on a separable set, the MLP head on XOR
// (which the linear head cannot fit), fine-tuning an encoder through the tape, determinism, and
// the outlier helpers (AUROC with ties, top-n order). A hidden [.][fashion] case measures the
// raw-pixel baselines on Fashion-MNIST (the anchors: logistic 0.842, MLP[100] 0.871).
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "core/device.h"
#include "models/classifier.h"
#include "tests/op_table.h"
#include "tools/io/datasets.h"

using namespace gt;
using namespace gt::test;
using Catch::Matchers::Contains;

namespace {

// Forward vs the double reference: float32 logsumexp of O(1) logits over 7 classes.
constexpr double kCeAtol = 1e-5, kCeRtol = 1e-5;

// l_b = logsumexp_c(s_bc) - s_b,y_b in double, max-shifted.
std::vector<double> ce_ref(const std::vector<double>& s, const std::vector<int32_t>& y, int64_t B, int64_t C) {
  std::vector<double> out((size_t)B);
  for (int64_t b = 0; b < B; ++b) {
    double m = s[(size_t)(b * C)];
    for (int64_t c = 1; c < C; ++c) m = std::max(m, s[(size_t)(b * C + c)]);
    double z = 0;
    for (int64_t c = 0; c < C; ++c) z += std::exp(s[(size_t)(b * C + c)] - m);
    out[(size_t)b] = m + std::log(z) - s[(size_t)(b * C + y[(size_t)b])];
  }
  return out;
}

std::vector<OpRow> ce_rows() {
  // Odd sizes; the labels cover the first, last and middle classes and repeat.
  const std::vector<int32_t> y5 = {0, 6, 3, 6, 1};
  const std::vector<int32_t> y13 = {2, 0, 1, 1, 2, 0, 2, 2, 1, 0, 0, 1, 2};
  auto row = [](std::string name, int64_t B, int64_t C, std::vector<int32_t> y, float stddev) {
    OpRow r;
    r.name = std::move(name);
    r.inputs = {normal({B, C}, stddev), indices({B}, y)};
    r.op = [](const std::vector<Tensor>& in) { return cross_entropy_per_sample(in[0], in[1]); };
    r.ref = [B, C](const std::vector<HostTensor>& in) {
      return RefResult{Shape{B}, ce_ref(in[0].v, in[1].idx, B, C)};
    };
    r.tol.fwd_atol = kCeAtol;
    r.tol.fwd_rtol = kCeRtol;
    return r;
  };
  return {row("cross_entropy (5, 7)", 5, 7, y5, 1.f), row("cross_entropy (13, 3) wide logits", 13, 3, y13, 3.f)};
}

// Three well separated Gaussian clusters in 5 dimensions: class k centred at 4 e_k.
void separable(int64_t n, uint64_t seed, Tensor& x, Tensor& y) {
  Generator g(seed);
  std::vector<float> v = g.randn({n, 5}).to_vector();
  std::vector<int32_t> lab((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    lab[(size_t)i] = (int32_t)(i % 3);
    for (int64_t j = 0; j < 5; ++j) v[(size_t)(i * 5 + j)] = 0.5f * v[(size_t)(i * 5 + j)] + (j == i % 3 ? 4.f : 0.f);
  }
  x = Tensor::from_vector(v, {n, 5});
  y = Tensor::from_indices(lab, {n});
}

// XOR: four clusters at (+-1, +-1) with std 0.2; label 1 when the signs differ. A linear rule gets
// at most 3 of the 4 clusters right (75%).
void xor_data(int64_t n, uint64_t seed, Tensor& x, Tensor& y) {
  Generator g(seed);
  std::vector<float> v = g.randn({n, 2}).to_vector();
  std::vector<int32_t> lab((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    const float a = (i & 1) ? 1.f : -1.f, b = (i & 2) ? 1.f : -1.f;
    v[(size_t)(2 * i)] = a + 0.2f * v[(size_t)(2 * i)];
    v[(size_t)(2 * i + 1)] = b + 0.2f * v[(size_t)(2 * i + 1)];
    lab[(size_t)i] = a * b < 0 ? 1 : 0;
  }
  x = Tensor::from_vector(v, {n, 2});
  y = Tensor::from_indices(lab, {n});
}

ClassifierConfig config(const std::string& head, int64_t epochs, float lr, int classes, int64_t batch = 32) {
  ClassifierConfig c;
  c.head = head;
  c.epochs = epochs;
  c.lr = lr;
  c.num_classes = classes;
  c.batch = batch;
  return c;
}

}  // namespace

TEST_CASE("op table: cross_entropy", "[classifier][ops]") { run_op_table(ce_rows()); }

TEST_CASE("op table: cross_entropy cpu vs cuda", "[classifier][ops][cuda]") { run_op_table_cuda(ce_rows()); }

TEST_CASE("cross_entropy: the gradient is (softmax - onehot) / B; huge logits stay finite", "[classifier]") {
  const int64_t B = 3, C = 4;
  const std::vector<float> s = {0.5f, -1.f, 2.f, 0.f, 1000.f, -1000.f, 999.f, 0.f, -3e4f, -3e4f, -3e4f, -3e4f};
  const std::vector<int32_t> y = {2, 2, 1};
  Tensor logits = Tensor::from_vector(s, {B, C}).set_requires_grad();
  Tensor loss = cross_entropy(logits, Tensor::from_indices(y, {B}));
  std::vector<double> sd(s.begin(), s.end());
  const std::vector<double> ref = ce_ref(sd, y, B, C);
  // Row 2: log(1 + e^-1) = 1.3133 nats; row 3 (all equal): log 4.
  CHECK(ref[1] == Approx(1.0 + std::log1p(std::exp(-1.0))).epsilon(1e-12));
  CHECK(ref[2] == Approx(std::log(4.0)).epsilon(1e-12));
  const double expect = (ref[0] + ref[1] + ref[2]) / 3.0;
  REQUIRE(std::isfinite(loss.item()));
  CHECK(loss.item() == Approx(expect).epsilon(1e-6));
  backward(loss);
  const std::vector<float> g = logits.grad().to_vector();
  for (int64_t b = 0; b < B; ++b) {
    double m = sd[(size_t)(b * C)], z = 0;
    for (int64_t c = 1; c < C; ++c) m = std::max(m, sd[(size_t)(b * C + c)]);
    for (int64_t c = 0; c < C; ++c) z += std::exp(sd[(size_t)(b * C + c)] - m);
    for (int64_t c = 0; c < C; ++c) {
      const double want = (std::exp(sd[(size_t)(b * C + c)] - m) / z - (c == y[(size_t)b] ? 1.0 : 0.0)) / (double)B;
      INFO("row " << b << " class " << c);
      CHECK(g[(size_t)(b * C + c)] == Approx(want).margin(1e-6));
    }
  }
}

TEST_CASE("cross_entropy: errors name the bad label, shape and dtype", "[classifier]") {
  Tensor s = Tensor::zeros({2, 3});
  REQUIRE_THROWS_WITH(cross_entropy(s, Tensor::from_indices({0, 3}, {2})),
                      Contains("label 3 in row 1") && Contains("3 classes"));
  REQUIRE_THROWS_WITH(cross_entropy(s, Tensor::from_indices({0, -1}, {2})), Contains("label -1"));
  REQUIRE_THROWS_WITH(cross_entropy(s, Tensor::from_indices({0, 1, 2}, {3})), Contains("(2)") && Contains("(3)"));
  REQUIRE_THROWS_WITH(cross_entropy(s, Tensor::zeros({2})), Contains("int32"));
  REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({6}), Tensor::from_indices({0, 1}, {2})), Contains("(B, C)"));
}

TEST_CASE("classifier: standardisation statistics, constant features, config errors", "[classifier]") {
  ClassifierConfig c = config("linear", 1, 1e-2f, 2);
  Generator init(1);
  Classifier clf(c, 3, init);
  // Column 0: mean 2, population std 1; column 1: constant 5; column 2: mean 0, std 10.
  clf.fit_standardization(Tensor::from_vector({1, 5, -10, 3, 5, 10, 1, 5, 10, 3, 5, -10}, {4, 3}));
  CHECK(clf.feature_mean() == std::vector<float>{2.f, 5.f, 0.f});
  CHECK(clf.feature_std() == std::vector<float>{1.f, 1.f, 10.f});  // the constant column keeps std 1
  const std::vector<float> z = clf.standardize(Tensor::from_vector({4, 6, 5}, {1, 3})).to_vector();
  CHECK(z == std::vector<float>{2.f, 1.f, 0.5f});

  REQUIRE_THROWS_WITH(clf.standardize(Tensor::zeros({2, 4})), Contains("(B, 3)") && Contains("(2, 4)"));
  REQUIRE_THROWS_WITH(clf.set_standardization({0, 0, 0}, {1, 0, 1}), Contains("feature 1") && Contains("std 0"));
  auto bad = [](auto edit) {
    ClassifierConfig v;
    edit(v);
    return v;
  };
  REQUIRE_THROWS_WITH(bad([](ClassifierConfig& v) { v.head = "svm"; }).validate(), Contains("'svm'"));
  REQUIRE_THROWS_WITH(bad([](ClassifierConfig& v) { v.epochs = 0; }).validate(), Contains("epochs") && Contains("0"));
  REQUIRE_THROWS_WITH(bad([](ClassifierConfig& v) { v.lr = -1.f; }).validate(), Contains("lr") && Contains("-1"));
  REQUIRE_THROWS_WITH(bad([](ClassifierConfig& v) { v.num_classes = 1; }).validate(), Contains("num_classes"));
  Tensor x, y;
  separable(30, 1, x, y);
  REQUIRE_THROWS_WITH(train_classifier(x, y, config("linear", 1, 1e-2f, 2)),
                      Contains("label 2 of example 2") && Contains("2 classes"));
}

TEST_CASE("classifier: the linear head reaches 100% on a linearly separable set", "[classifier]") {
  Tensor x, y, xt, yt;
  separable(60, 1, x, y);
  separable(60, 2, xt, yt);
  ClassifierReport r;
  auto clf = train_classifier(x, y, config("linear", 30, 5e-2f, 3, 16), &r);
  REQUIRE(r.epoch_loss.size() == 30);
  REQUIRE(r.steps == 30 * 4);
  CHECK(r.epoch_loss.back() < 0.1 * r.epoch_loss.front());
  CHECK(r.train_accuracy == 1.0);
  CHECK(clf->accuracy(xt, yt) == 1.0);
  ClassifierReport again;
  CHECK(train_and_test(x, y, xt, yt, config("linear", 30, 5e-2f, 3, 16), &again) == 1.0);
  CHECK(again.test_accuracy == 1.0);
  CHECK(again.epoch_loss == r.epoch_loss);  // the same training
  REQUIRE_THROWS_WITH(train_and_test(x, y, Tensor::zeros({4, 6}), yt, config("linear", 1, 5e-2f, 3)),
                      Contains("(N, 5)") && Contains("(4, 6)"));
  CHECK(clf->named_parameters().size() == 2);  // fc1.weight (3, 5), fc1.bias (3)
  CHECK(clf->named_parameters()[0].second.shape() == Shape{3, 5});
}

TEST_CASE("classifier: the MLP head fits XOR, the linear head cannot", "[classifier]") {
  Tensor x, y, xt, yt;
  xor_data(200, 3, x, y);
  xor_data(200, 4, xt, yt);
  ClassifierReport rl, rm;
  auto lin = train_classifier(x, y, config("linear", 40, 5e-2f, 2), &rl);
  auto mlp = train_classifier(x, y, config("mlp", 40, 1e-2f, 2), &rm);
  INFO("linear: train " << rl.train_accuracy << ", test " << lin->accuracy(xt, yt) << "; mlp: train "
                        << rm.train_accuracy << ", test " << mlp->accuracy(xt, yt));
  CHECK(rl.train_accuracy <= 0.80);  // at most 3 clusters of 4, up to a few stray points
  CHECK(lin->accuracy(xt, yt) <= 0.80);
  CHECK(rm.train_accuracy >= 0.99);
  CHECK(mlp->accuracy(xt, yt) >= 0.99);
  CHECK(mlp->named_parameters()[0].second.shape() == Shape{100, 2});  // hidden 100, as MLPClassifier(100,)
}

TEST_CASE("classifier: fine-tuning updates the encoder and beats the frozen features", "[classifier]") {
  // x in R^4, label = [x_3 > 0]. The encoder Linear(4 -> 1) starts looking at x_0 only, so its
  // frozen feature carries no information about the label; fine-tuning must turn it towards x_3.
  const int64_t n = 256;
  Generator g(5);
  std::vector<float> v = g.randn({n, 4}).to_vector();
  std::vector<int32_t> lab((size_t)n);
  for (int64_t i = 0; i < n; ++i) lab[(size_t)i] = v[(size_t)(4 * i + 3)] > 0 ? 1 : 0;
  Dataset train;
  train.name = "toy";
  train.height = 1;
  train.width = 4;
  train.num_classes = 2;
  train.images = Tensor::from_vector(v, {n, 4});
  train.labels = Tensor::from_indices(lab, {n});

  auto make_encoder = [] {
    Generator init(6);
    auto enc = std::make_shared<nn::Linear>(4, 1, init);
    enc->weight.copy_(Tensor::from_vector({1, 0, 0, 0}, {1, 4}));
    enc->bias.copy_(Tensor::zeros({1}));
    return enc;
  };
  const ClassifierConfig cfg = config("linear", 20, 3e-2f, 2);

  auto frozen_enc = make_encoder();
  FeatureFn frozen_f = [&](const Tensor& x) { return frozen_enc->forward(x); };
  ClassifierReport rf;
  auto frozen = train_classifier(compute_features(frozen_f, train.images), train.labels, cfg, &rf);

  auto enc = make_encoder();
  const std::vector<float> w0 = enc->weight.to_vector();
  FeatureFn f = [&](const Tensor& x) { return enc->forward(x); };
  ClassifierReport rt;
  auto tuned = finetune_classifier(f, enc->named_parameters(), train, cfg, &rt);
  const std::vector<float> w1 = enc->weight.to_vector();
  INFO("frozen accuracy " << rf.train_accuracy << ", fine-tuned " << rt.train_accuracy << "; encoder weight "
                          << w1[0] << " " << w1[1] << " " << w1[2] << " " << w1[3]);
  CHECK(w1 != w0);
  CHECK(std::fabs(w1[3]) > 0.3f);  // moved towards the informative input
  CHECK(rf.train_accuracy < 0.65);  // chance, give or take the sample
  CHECK(rt.train_accuracy > 0.95);
  CHECK(rt.epoch_loss.back() < rt.epoch_loss.front());
  // The report's accuracy is the head on the fine-tuned encoder's features.
  CHECK(tuned->accuracy(compute_features(f, train.images), train.labels) == rt.train_accuracy);
  REQUIRE_THROWS_WITH(finetune_classifier(f, {{"w", Tensor::zeros({1})}}, train, cfg),
                      Contains("'w'") && Contains("gradient"));
}

TEST_CASE("classifier: a seed gives bit-identical training; another seed differs", "[classifier]") {
  Tensor x, y;
  xor_data(120, 7, x, y);
  auto run = [&](uint64_t seed, ClassifierReport& r) {
    ClassifierConfig c = config("mlp", 3, 1e-2f, 2);
    c.seed = seed;
    return train_classifier(x, y, c, &r);
  };
  ClassifierReport a, b, c;
  auto ca = run(11, a), cb = run(11, b), cc = run(12, c);
  CHECK(a.epoch_loss == b.epoch_loss);
  const auto pa = ca->named_parameters(), pb = cb->named_parameters(), pc = cc->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(pa[i].second.to_vector() == pb[i].second.to_vector());
  }
  CHECK(a.epoch_loss != c.epoch_loss);
  CHECK(pa[0].second.to_vector() != pc[0].second.to_vector());
}

TEST_CASE("outliers: AUROC of held-out scores (ties count 1/2) and the top-n order", "[classifier][metrics]") {
  // Held out: scores 0.9, 0.5, 0.3; others: 0.5, 0.1, 0.2, 0.4. Pairs (held, other) with held > other:
  // 0.9 beats all 4; 0.5 beats 0.1, 0.2, 0.4 and ties 0.5 (1/2); 0.3 beats 0.1, 0.2. (4 + 3.5 + 2) / 12.
  const std::vector<double> s = {0.5, 0.9, 0.1, 0.5, 0.2, 0.3, 0.4};
  const Tensor labels = Tensor::from_indices({1, 3, 0, 3, 2, 3, 4}, {7});
  const std::vector<bool> held = held_out_mask(labels, 3);
  REQUIRE(held == std::vector<bool>{false, true, false, true, false, true, false});
  CHECK(outlier_auroc(s, held) == Approx(9.5 / 12.0).epsilon(1e-15));
  CHECK(top_anomalies(s, 3) == std::vector<int64_t>{1, 0, 3});  // 0.9, then the tied 0.5s by index
  CHECK(top_anomalies(s, 100).size() == 7);
  CHECK(top_anomalies(s, 0).empty());
  REQUIRE_THROWS_WITH(outlier_auroc(s, {true, false}), Contains("7 scores") && Contains("2 held-out"));
  REQUIRE_THROWS_WITH(outlier_auroc(s, std::vector<bool>(7, false)), Contains("both classes"));
  REQUIRE_THROWS_WITH(top_anomalies({0.1, NAN}, 1), Contains("score 1 is NaN"));
  REQUIRE_THROWS_WITH(top_anomalies(s, -1), Contains("-1"));
}

// The raw-pixel baselines on Fashion-MNIST with ClassifierConfig's defaults (10 epochs, batch 128,
// Adam 1e-3; not a timed test: it prints the accuracies and times). Run: gentape_tests "[fashion]"
// (about 15 s on 2 quiet cores; a loaded machine stalls every OpenMP barrier and takes far longer).
// Measured 2026-11-25 (1 thread): linear 0.8383, mlp 0.8860; the anchors 0.842 and 0.871.
TEST_CASE("classifier: raw-pixel baselines on Fashion-MNIST", "[.][fashion]") {
  io::DataSplit d = io::load_dataset("fashion-mnist");
  for (const std::string head : {"linear", "mlp"}) {
    ClassifierConfig c;
    c.head = head;
    ClassifierReport r;
    const auto t0 = std::chrono::steady_clock::now();
    const double acc = train_and_test(d.train.images, d.train.labels, d.test.images, d.test.labels, c, &r);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("fashion-mnist raw pixels, head %s: epochs %lld, batch %lld, Adam lr %g, %d threads: train loss "
                "%.4f -> %.4f, train accuracy %.4f, TEST ACCURACY %.4f (training %.1f s, total %.1f s)\n",
                head.c_str(), (long long)c.epochs, (long long)c.batch, (double)c.lr, num_threads(),
                r.epoch_loss.front(), r.epoch_loss.back(), r.train_accuracy, acc, r.seconds, secs);
    const double anchor = head == "linear" ? 0.842 : 0.871;  // Xiao et al. 2017, Table 3
    CHECK(acc > anchor - 0.02);
  }
}
