// use_commands.cpp: what a trained autoencoder is for — the commands classify, outliers and
// compare-ae-vae (issue 4, "Uses"). The code z(x) is E(x) for an autoencoder and the posterior mean
// mu(x) for a VAE (LoadedRun::encode, tools/run_dir.h).
//
//   classify        a head (models/classifier.h: multinomial logistic regression, or an MLP with 100
//                   hidden ReLUs) trained with softmax cross-entropy on standardised codes z(x) of the
//                   training set, test accuracy; the same head trained on the raw pixels is the baseline
//                   (Xiao et al. 2017, Fashion-MNIST: logistic regression 0.842, MLP(100) 0.871).
//                   --finetune trains the encoder with the head (one Adam); the updated encoder lives
//                   in this process only and is never written back to the run.
//                   Data: the run's data set in full — every training image, every class, not binarised
//                   — whatever --train-limit / --holdout-class / --binarize the model was trained with:
//                   the question is how good the features are, so the head gets all the labels there are.
//   outliers        a model trained without class C scores every test image; a higher score = more
//                   anomalous:
//                     autoencoder  s(x) = ||D(E(x)) - x||^2                (raw output, the training loss)
//                     VAE          s(x) = -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))
//                                  (one-sample estimate of the expectation per --samples, averaged), and
//                                  s_recon(x) = ||pixels(decoder(mu(x))) - x||^2
//                   AUROC = P(s(positive) > s(negative)) + 1/2 P(tie), class C the positives
//                   (models/metrics.h, exact Mann-Whitney), and a PNG grid of the highest scores.
//   compare-ae-vae  the course's "AE vs VAE": an AE and a VAE with k = 2, the same hidden widths,
//                   trained (by `gentape train`, cmd_train) on the same --n training images, then their
//                   test-set codes side by side, reconstructions of the same test images, and a table of
//                   test MSE per pixel, PSNR = 10 log10(1 / MSE) (outputs in [0, 1]) and the VAE's -ELBO.
//
//   gentape classify runs/ae --head mlp --json
//   gentape outliers runs/ae-no3 --n-show 32           # the run was trained with --holdout-class 3
//   gentape compare-ae-vae --data mnist --n 1000 --epochs 50 --out runs/ae-vs-vae
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "autograd/ops.h"
#include "core/device.h"
#include "models/classifier.h"
#include "tools/ae_eval.h"
#include "tools/commands.h"
#include "tools/plots.h"
#include "tools/run_dir.h"

namespace gt::tools {

namespace {

using nlohmann::ordered_json;

constexpr int64_t kChunk = 500;          // test images per forward pass when scoring
constexpr io::Rgb kText = {30, 30, 30};  // captions
constexpr io::Rgb kMark = {214, 39, 40};  // the frame around a held-out-class image (tab10 red)

void add_run_flags(cli::Parser& p) {
  p.positional("RUN", "a run directory written by `gentape train`");
  p.option("device", "auto", "where to compute (auto: cuda when a GPU is present)", "auto|cpu|cuda", {"auto", "cpu", "cuda"});
  p.option("threads", "", "CPU threads (default: all cores)", "N");
}

LoadedRun load(const cli::Parser& p) {
  if (p.given("threads")) set_num_threads((int)p.integer("threads", 1, 4096));
  return open_run(p.positional_value(0), parse_device(p.str("device")));
}

// A cvae's encoder reads the class label, so its code cannot be a feature for predicting the label,
// nor can it score an image of a class it was never given.
void refuse_conditional(const LoadedRun& r, const char* command, const char* why) {
  GT_CHECK(!(r.vae && r.vae->config().conditional()),
           command << ": " << r.dir.dir() << " is a cvae, whose encoder is given the class label; " << why
                   << " (train a vae or an ae)");
}

// The commands need an encoder: an autoencoder's E(x) or a VAE's q(z|x).
void require_encoder(const LoadedRun& r, const char* command) {
  GT_CHECK(r.ae || r.vae, command << ": " << r.dir.dir() << " is a " << r.config.train.model
                                  << " run, which has no encoder (use an ae, sparse-ae, denoising-ae or vae run)");
}

const char* code_name(const LoadedRun& r) { return r.vae ? "mu(x)" : "E(x)"; }

// The parameters the code z(x) depends on, as finetune_classifier wants them: an autoencoder's
// conv1/conv2/enc*/enc_out, a VAE's conv1/conv2, enc* or fc1, and the mean head fc21/fc_mu (not
// the log-variance head, which mu(x) does not use, nor any decoder parameter).
optim::NamedParams encoder_params(const LoadedRun& r) {
  static const char* const kPrefixes[] = {"conv1.", "conv2.", "enc", "fc1.", "fc21.", "fc_mu."};
  optim::NamedParams out;
  for (const auto& np : r.model().named_parameters())
    for (const char* pre : kPrefixes)
      if (np.first.rfind(pre, 0) == 0) {
        out.push_back(np);
        break;
      }
  GT_CHECK(!out.empty(), r.dir.dir() << ": found no encoder parameters to fine-tune");
  return out;
}

// The run's data set in full: every training image and class, not binarised (see the header).
io::DataSplit full_data(const RunConfig& rc) {
  RunConfig all = rc;
  all.train.train_limit = 0;
  all.train.holdout_class = -1;
  all.train.binarize = false;
  return run_data(all);
}

// Sum over each row of (y - x)^2, y and x (B, D) host arrays, in double.
void row_sse(const std::vector<float>& y, const float* x, int64_t B, int64_t D, double* out) {
  for (int64_t b = 0; b < B; ++b) {
    double s = 0;
    for (int64_t j = 0; j < D; ++j) {
      const double d = (double)y[(size_t)(b * D + j)] - (double)x[b * D + j];
      s += d * d;
    }
    out[b] = s;
  }
}

// Every image at `ids` of `d`, concatenated (n, D).
std::vector<float> images_at(const Dataset& d, const std::vector<int64_t>& ids) {
  std::vector<float> out;
  const float* x = d.images.data();
  for (int64_t i : ids) out.insert(out.end(), x + i * d.dim(), x + (i + 1) * d.dim());
  return out;
}

void write_picture(const std::string& path, const io::Canvas& c, const std::string& what) {
  io::write_png(path, c);
  std::printf("wrote %s (%s, %dx%d)\n", path.c_str(), what.c_str(), c.width(), c.height());
}

// `body` below a caption band of `top` pixels with `caption` written in it.
io::Canvas with_caption(const io::Canvas& body, const std::string& caption, int scale = 1) {
  const int top = 12 + 7 * scale;
  io::Canvas c(std::max(body.width(), text_width(caption, scale) + 8), body.height() + top);
  for (int y = 0; y < body.height(); ++y)
    for (int x = 0; x < body.width(); ++x) c.set(x, top + y, body.get(x, y));
  draw_text(c, 4, 6, caption, kText, scale);
  return c;
}

// Mean MSE per pixel of the reconstructions pixels(decode(encode(x))) in [0, 1] against x.
double pixel_mse(const LoadedRun& r, const Dataset& test) {
  const std::vector<float> y = r.decode(r.encode(test.images)).to_vector();
  const float* x = test.images.data();
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double d = (double)y[i] - (double)x[i];
    s += d * d;
  }
  return s / (double)y.size();
}

// ---- classify --------------------------------------------------------------------------------

struct HeadResult {
  double accuracy = 0, train_accuracy = 0, seconds = 0;
};

HeadResult fit_head(const Tensor& train_x, const Tensor& train_y, const Tensor& test_x, const Tensor& test_y,
                    const ClassifierConfig& cfg) {
  ClassifierReport rep;
  auto clf = train_classifier(train_x, train_y, cfg, &rep);
  return {clf->accuracy(test_x, test_y), rep.train_accuracy, rep.seconds};
}

}  // namespace

int cmd_classify(const cli::Args& args) {
  cli::Parser p("classify", "RUN",
                "Train a classifier head on the run's codes (E(x) for an autoencoder, the posterior mean mu(x) for a\n"
                "VAE) of the whole training set of its data set, and report its test accuracy next to the same head\n"
                "trained on the raw pixels (the baseline). Heads: linear (multinomial logistic regression) or mlp\n"
                "(one hidden layer of --hidden ReLUs); inputs standardised per feature; softmax cross-entropy, Adam.\n"
                "--finetune trains the encoder together with the head; the run's checkpoint is never changed.");
  add_run_flags(p);
  p.option("head", "linear", "the classifier on top of the features", "linear|mlp", {"linear", "mlp"});
  p.option("hidden", "100", "mlp head: hidden width (Xiao et al. 2017 use 100)", "W");
  p.flag("finetune", "train the encoder's parameters with the head (in memory only)");
  p.option("epochs", "10", "training epochs of each head", "N");
  p.option("lr", "1e-3", "Adam's learning rate (head and, with --finetune, encoder)", "LR");
  p.option("batch", "128", "minibatch size", "N");
  p.option("seed", "1", "head initialisation and minibatch order", "S");
  p.flag("json", "print exactly one JSON object on stdout");
  p.epilog(
      "The head sees every training image and class of the run's data set, even when the model was trained\n"
      "with --train-limit or --holdout-class (the features are what is measured), and grey (not binarised) pixels.\n"
      "--json keys: accuracy, train_accuracy, baseline_accuracy, baseline_train_accuracy, head, finetune, latent,\n"
      "epochs, lr, batch, seed, n_train, n_test, seconds, baseline_seconds (each head's training loop).\n"
      "examples:\n"
      "  gentape classify runs/ae                     linear head on the frozen 2-D codes\n"
      "  gentape classify runs/ae --head mlp --finetune --epochs 5");
  if (!p.parse(args)) return 0;
  ClassifierConfig cfg;
  cfg.head = p.str("head");
  cfg.hidden = p.integer("hidden", 1, 1 << 20);
  cfg.epochs = p.integer("epochs", 1, 1000000);
  cfg.batch = p.integer("batch", 1, 1 << 20);
  const double lr = p.number("lr", 0, 1e30);
  if (!(lr > 0)) p.bad_value("lr", "must be > 0");
  cfg.lr = (float)lr;
  cfg.seed = (uint64_t)p.integer("seed", 0, INT64_MAX);
  const bool finetune = p.on("finetune"), as_json = p.on("json");
  LoadedRun r = load(p);
  require_encoder(r, "classify");
  refuse_conditional(r, "classify", "its code would carry the answer");
  const Device device = r.device();
  cfg.device = device;
  io::DataSplit data = full_data(r.config);
  cfg.num_classes = std::max(data.train.num_classes, 2);

  HeadResult res;
  if (!finetune) {
    const Tensor z_train = r.encode(data.train.images), z_test = r.encode(data.test.images);
    res = fit_head(z_train, data.train.labels, z_test, data.test.labels, cfg);
  } else {
    // The loaded model is this process's copy of the checkpoint: updating it in place leaves the run alone.
    FeatureFn features = r.ae ? FeatureFn([&](const Tensor& x) { return r.ae->encode(x); })
                              : FeatureFn([&](const Tensor& x) { return r.vae->encode(x, Tensor()).first; });
    ClassifierReport rep;
    auto clf = finetune_classifier(features, encoder_params(r), data.train, cfg, &rep);
    const Tensor z_test = compute_features(features, data.test.images.to(device));
    res = {clf->accuracy(z_test, data.test.labels), rep.train_accuracy, rep.seconds};
  }
  const HeadResult base = fit_head(data.train.images, data.train.labels, data.test.images, data.test.labels, cfg);

  ordered_json j;
  j["run"] = r.dir.dir();
  j["epoch"] = r.epoch;
  j["model"] = r.config.train.model;
  j["data"] = r.config.train.data;
  j["features"] = code_name(r);
  j["latent"] = r.latent();
  j["head"] = cfg.head;
  if (cfg.head == "mlp") j["hidden"] = cfg.hidden;
  j["finetune"] = finetune;
  j["epochs"] = cfg.epochs;
  j["lr"] = lr;
  j["batch"] = cfg.batch;
  j["seed"] = cfg.seed;
  j["n_train"] = data.train.size();
  j["n_test"] = data.test.size();
  j["accuracy"] = res.accuracy;
  j["train_accuracy"] = res.train_accuracy;
  j["seconds"] = res.seconds;
  j["baseline_features"] = data.train.dim();
  j["baseline_accuracy"] = base.accuracy;
  j["baseline_train_accuracy"] = base.train_accuracy;
  j["baseline_seconds"] = base.seconds;
  if (as_json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  const std::string head = cfg.head == "mlp" ? "mlp(" + std::to_string(cfg.hidden) + ")" : "linear";
  std::printf("%s (epoch %lld): %s on %s; head %s, %lld epochs, trained on %lld images, tested on %lld\n",
              r.dir.dir().c_str(), (long long)r.epoch, r.config.train.model.c_str(), r.config.train.data.c_str(),
              head.c_str(), (long long)cfg.epochs, (long long)data.train.size(), (long long)data.test.size());
  std::printf("  %-28s test accuracy %.4f  (train %.4f, %.1f s)\n",
              (std::string(finetune ? "fine-tuned " : "frozen ") + code_name(r) + ", k = " + std::to_string(r.latent()))
                  .c_str(),
              res.accuracy, res.train_accuracy, res.seconds);
  std::printf("  %-28s test accuracy %.4f  (train %.4f, %.1f s)\n",
              ("raw pixels, d = " + std::to_string(data.train.dim())).c_str(), base.accuracy, base.train_accuracy,
              base.seconds);
  return 0;
}

// ---- outliers --------------------------------------------------------------------------------

int cmd_outliers(const cli::Args& args) {
  cli::Parser p("outliers", "RUN",
                "Outlier detection with a model trained without class C: score every test image (autoencoder: the\n"
                "reconstruction error ||D(E(x)) - x||^2; VAE: -ELBO, and the reconstruction error of the decoded\n"
                "mean), report the AUROC of the scores for telling class C from the other classes, and write the\n"
                "most anomalous test images as a PNG grid (highest score first; a red frame marks class C).");
  add_run_flags(p);
  p.option("holdout-class", "", "the class to detect (default: the one the run was trained without)", "C");
  p.option("n-show", "32", "how many of the highest-scoring test images to draw", "N");
  p.option("samples", "1", "vae: samples z ~ q(z|x) per image for the -ELBO estimate (averaged)", "K");
  p.option("seed", "", "vae: seed of those samples (default: the run's)", "S");
  p.option("out", "", "the PNG to write (default: RUN/outliers.png)", "PATH");
  p.option("scale", "2", "enlarge every pixel to K x K", "K");
  p.flag("json", "print exactly one JSON object on stdout (the warning still goes to stderr)");
  p.epilog(
      "AUROC: the probability that a random class-C image scores higher than a random other one (ties count\n"
      "1/2): 0.5 is chance, 1 a perfect detector. It means novelty detection only when the model never saw C.\n"
      "--json keys: auroc, (vae: auroc_recon), score, holdout_class, trained_without_class, n, n_held_out,\n"
      "mean_score_held_out, mean_score_rest, n_show, shown_held_out, png.");
  if (!p.parse(args)) return 0;
  const int64_t n_show = p.integer("n-show", 1, 10000);
  const int samples = (int)p.integer("samples", 1, 100000);
  const int scale = (int)p.integer("scale", 1, 16);
  const bool as_json = p.on("json");
  LoadedRun r = load(p);
  require_encoder(r, "outliers");
  refuse_conditional(r, "outliers", "it cannot score an image without being told its class");
  if ((p.given("samples") || p.given("seed")) && !r.vae)
    throw cli::UsageError(std::string(p.given("samples") ? "--samples" : "--seed") + ": " + r.dir.dir() +
                          " is an autoencoder (" + r.config.train.model +
                          "), whose reconstruction error needs no samples");
  const int run_hc = r.config.train.holdout_class;
  if (!p.given("holdout-class") && run_hc < 0)
    throw cli::UsageError("missing --holdout-class C: " + r.dir.dir() +
                          " was trained on every class, so there is no held-out class to default to (train one with "
                          "`gentape train ... --holdout-class C`)");
  io::DataSplit data = run_data(r.config);  // the run's test set (binarised like eval's when it trained so)
  const Dataset& test = data.test;
  const int C = p.given("holdout-class") ? (int)p.integer("holdout-class", 0, test.num_classes - 1) : run_hc;
  const std::vector<bool> held = held_out_mask(test.labels, C);
  const int64_t N = test.size(), D = test.dim(), n_held = std::count(held.begin(), held.end(), true);
  GT_CHECK(n_held > 0 && n_held < N, r.config.train.data << ": the test set has " << n_held << " of " << N
                                                         << " images in class " << C
                                                         << "; the AUROC needs images of class " << C
                                                         << " and of the other classes");
  const bool trained_without = run_hc == C;
  auto warn_if_seen = [&] {
    if (trained_without) return;
    std::fflush(stdout);
    std::fprintf(stderr,
                 "warning: %s was trained WITH class %d (%s); the AUROC then measures how much worse the model fits "
                 "class %d although it saw it, not novelty detection (train with --holdout-class %d)\n",
                 r.dir.dir().c_str(), C, run_hc < 0 ? "on every class" : ("without class " + std::to_string(run_hc)).c_str(),
                 C, C);
  };

  // ---- scores: chunks of the test set on the run's device, no gradients ----
  std::vector<double> recon((size_t)N), neg_elbo;
  const uint64_t seed = p.has("seed") ? (uint64_t)p.integer("seed", 0, INT64_MAX) : r.config.train.seed;
  Generator gen(stream_seed(seed, "outliers"));
  if (r.vae) neg_elbo.assign((size_t)N, 0.0);
  {
    NoGradGuard no_grad;
    const float* host = test.images.data();
    for (int64_t s = 0; s < N; s += kChunk) {
      const int64_t e = std::min(N, s + kChunk), B = e - s;
      const Tensor x = slice(test.images, 0, s, e).to(r.device());
      const Tensor y = r.ae ? r.ae->reconstruct(x) : r.vae->reconstruct(x, Tensor());
      row_sse(y.to_vector(), host + s * D, B, D, recon.data() + s);
      if (!r.vae) continue;
      for (int k = 0; k < samples; ++k) {
        const VaeLoss l = r.vae->loss(x, Tensor(), gen);
        const std::vector<float> rec = l.recon.to_vector(), kl = l.kl.to_vector();
        for (int64_t b = 0; b < B; ++b)
          neg_elbo[(size_t)(s + b)] += ((double)rec[(size_t)b] + (double)kl[(size_t)b]) / samples;
      }
    }
  }
  const std::vector<double>& score = r.vae ? neg_elbo : recon;
  const double auc = outlier_auroc(score, held);
  auto mean_of = [&](const std::vector<double>& v, bool in) {
    double s = 0;
    for (int64_t i = 0; i < N; ++i) s += held[(size_t)i] == in ? v[(size_t)i] : 0.0;
    return s / (double)(in ? n_held : N - n_held);
  };

  // ---- the most anomalous images ----
  const std::vector<int64_t> top = top_anomalies(score, n_show);
  const int n = (int)top.size(), H = (int)test.height, W = (int)test.width, per_row = std::min(n, 8), pad = 2;
  const std::vector<float> px = images_at(test, top);
  io::Canvas grid = io::image_grid(px.data(), n, H, W, per_row, pad);
  int shown_held = 0;
  for (int k = 0; k < n; ++k) {
    if (!held[(size_t)top[(size_t)k]]) continue;
    ++shown_held;
    const int x = pad + (k % per_row) * (W + pad), y = pad + (k / per_row) * (H + pad);
    grid.rect(x - 1, y - 1, x + W, y + H, kMark);  // in the grid's padding
  }
  const std::string path = p.given("out") ? p.str("out") : r.dir.file("outliers.png");
  const std::string what = r.vae ? "-elbo" : "recon error";
  char caption[160];
  std::snprintf(caption, sizeof caption, "top %d by %s, auroc %.3f; red: class %d", n, what.c_str(), auc, C);
  io::Canvas pic = with_caption(upscale(grid, scale), caption);

  ordered_json j;
  j["run"] = r.dir.dir();
  j["epoch"] = r.epoch;
  j["model"] = r.config.train.model;
  j["data"] = r.config.train.data;
  j["holdout_class"] = C;
  j["trained_without_class"] = trained_without;
  j["n"] = N;
  j["n_held_out"] = n_held;
  j["score"] = r.vae ? "neg_elbo" : "recon";
  j["auroc"] = auc;
  j["mean_score_held_out"] = mean_of(score, true);
  j["mean_score_rest"] = mean_of(score, false);
  if (r.vae) {
    j["samples"] = samples;
    j["auroc_recon"] = outlier_auroc(recon, held);
    j["mean_recon_held_out"] = mean_of(recon, true);
    j["mean_recon_rest"] = mean_of(recon, false);
  }
  j["n_show"] = n;
  j["shown_held_out"] = shown_held;
  j["png"] = path;
  if (as_json) {
    io::write_png(path, pic);
    std::printf("%s\n", j.dump().c_str());
    warn_if_seen();
    return 0;
  }
  std::printf("%s (epoch %lld): %s on %s; class %d (%lld of %lld test images) against the rest\n",
              r.dir.dir().c_str(), (long long)r.epoch, r.config.train.model.c_str(), r.config.train.data.c_str(), C,
              (long long)n_held, (long long)N);
  if (r.vae)
    std::printf("  -ELBO          AUROC %.4f   mean %.2f (class %d) vs %.2f (rest) nats, %d sample%s per image\n", auc,
                mean_of(score, true), C, mean_of(score, false), samples, samples == 1 ? "" : "s");
  std::printf("  recon error    AUROC %.4f   mean %.3f (class %d) vs %.3f (rest), squared error per image\n",
              outlier_auroc(recon, held), mean_of(recon, true), C, mean_of(recon, false));
  std::printf("  of the %d highest scores, %d are class %d\n", n, shown_held, C);
  write_picture(path, pic, std::to_string(n) + " most anomalous test images");
  warn_if_seen();  // after the report, as eval's warnings
  return 0;
}

// ---- compare-ae-vae --------------------------------------------------------------------------

int cmd_compare_ae_vae(const cli::Args& args) {
  cli::Parser p("compare-ae-vae", "",
                "The course's AE vs VAE comparison: train an autoencoder and a VAE, both with a 2-D code and the same\n"
                "hidden widths, on the same --n training images (each with `gentape train`, into DIR/ae and DIR/vae),\n"
                "then write DIR/latents.png (their test-set codes side by side, coloured by class),\n"
                "DIR/reconstructions.png (the same test images through both) and DIR/comparison.json, and print\n"
                "test MSE per pixel, PSNR and the VAE's -ELBO.");
  p.option("data", "mnist", "data set: mnist, fashion-mnist, or a directory of IDX files", "NAME|DIR");
  p.option("n", "1000", "training images (train --train-limit N)", "N");
  p.option("epochs", "50", "epochs of each model", "N");
  p.option("hidden", "512,256", "hidden widths of both encoders (mirrored by the decoders)", "W[,W..]");
  p.option("batch", "128", "minibatch size", "N");
  p.option("lr", "1e-3", "Adam's learning rate", "LR");
  p.option("seed", "1", "seed of both runs", "S");
  p.option("out", "", "output directory (default: runs/ae-vs-vae-<data>)", "DIR");
  p.option("n-show", "16", "test images in the reconstruction picture", "N");
  p.option("device", "auto", "where to train (auto: cuda when a GPU is present)", "auto|cpu|cuda", {"auto", "cpu", "cuda"});
  p.option("threads", "", "CPU threads (default: all cores)", "N");
  p.flag("overwrite", "retrain DIR/ae and DIR/vae when they hold runs already");
  p.epilog("example (the course's figure):\n  gentape compare-ae-vae --data mnist --n 1000 --epochs 50 --out runs/ae-vs-vae");
  if (!p.parse(args)) return 0;
  const int64_t n = p.integer("n", 1, INT64_MAX), epochs = p.integer("epochs", 1, 1000000);
  const int64_t n_show_req = p.integer("n-show", 1, 64);
  p.integer_list("hidden", 1, 1 << 20);  // validated here, so a mistake is named before training starts
  p.integer("batch", 1, 1 << 20);
  p.number("lr", 0, 1e30);
  const int64_t seed = p.integer("seed", 0, INT64_MAX);
  const std::string data_name = p.str("data");
  std::string out = p.str("out");
  if (out.empty()) {
    std::string base = std::filesystem::path(data_name).filename().string();
    out = "runs/ae-vs-vae-" + (base.empty() ? std::string("data") : base);
  }
  RunDir dir(out);
  dir.create();

  // ---- train both through `gentape train` (one training loop for every model) ----
  const cli::Args common = {"--data",  data_name,        "--latent", "2",          "--hidden",
                            p.str("hidden"), "--train-limit", std::to_string(n), "--epochs", std::to_string(epochs),
                            "--batch", p.str("batch"),   "--lr",     p.str("lr"),  "--seed",
                            std::to_string(seed), "--device", p.str("device")};
  const std::string runs[2] = {dir.file("ae"), dir.file("vae")};
  for (const std::string& r : runs)  // refuse before either model trains
    if (RunDir(r).has_checkpoint() && !p.on("overwrite"))
      throw cli::UsageError(r + " already holds a run: pass --overwrite to retrain both models, or choose another --out");
  for (int m = 0; m < 2; ++m) {
    cli::Args a = {m == 0 ? "ae" : "vae"};
    a.insert(a.end(), common.begin(), common.end());
    a.insert(a.end(), {"--out", runs[m]});
    if (p.given("threads")) a.insert(a.end(), {"--threads", p.str("threads")});
    if (p.on("overwrite")) a.push_back("--overwrite");
    std::fflush(stdout);
    const int rc = cmd_train(a);
    if (rc != 0) return rc;
    std::printf("\n");
  }

  const Device device = parse_device(p.str("device"));
  const LoadedRun ae = open_run(runs[0], device), vae = open_run(runs[1], device);
  const io::DataSplit data = run_data(ae.config);
  const Dataset& test = data.test;
  const int64_t N = test.size(), n_train = data.train.size();
  const std::vector<int32_t> labels = test.labels.to_vector_i32();

  // ---- latents.png: the two scatter plots side by side ----
  const int side = 520, gap = 10, top = 48;
  const LoadedRun* models[2] = {&ae, &vae};
  const char* titles[2] = {"ae: e(x)", "vae: mu(x)"};
  io::Canvas lat(2 * side + gap, side + top);
  for (int m = 0; m < 2; ++m) {
    const std::vector<float> z = models[m]->encode(test.images).to_vector();
    const io::Canvas s = scatter_plot(std::vector<double>(z.begin(), z.end()), labels, titles[m], side);
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x) lat.set(m * (side + gap) + x, top + y, s.get(x, y));
  }
  char head[160];
  std::snprintf(head, sizeof head, "test codes, k = 2, both trained on the same %lld images, %lld epochs",
                (long long)n_train, (long long)epochs);
  draw_text(lat, 8, 8, head, kText, 1);
  int lx = 8;  // the class legend: tab10 discs with the class number
  for (int k = 0; k < data.train.num_classes; ++k) {
    lat.disc(lx + 3, 30.5, 3.5, io::class_colour(k));
    lx += 10 + draw_text(lat, lx + 10, 27, std::to_string(k), kText) + 8;
  }
  write_picture(dir.file("latents.png"), lat, "test-set codes of the ae (left) and the vae (right)");

  // ---- reconstructions.png: original, ae, vae rows of the same test images ----
  const int64_t n_show = std::min(n_show_req, N);
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n_show; ++i) ids.push_back(i * N / n_show);  // spread over a class-sorted set
  const Dataset pick = test.rows(ids);
  const int H = (int)test.height, W = (int)test.width, scale = 2, label_w = 60;
  const std::vector<float> rows_px[3] = {pick.images.to_vector(), ae.decode(ae.encode(pick.images)).to_vector(),
                                         vae.decode(vae.encode(pick.images)).to_vector()};
  const char* row_names[3] = {"original", "ae", "vae"};
  std::vector<io::Canvas> grids;
  for (const auto& px : rows_px) grids.push_back(upscale(io::image_grid(px.data(), (int)n_show, H, W, (int)n_show), scale));
  const int gw = grids[0].width(), gh = grids[0].height();
  io::Canvas rec(label_w + gw, 3 * gh);
  for (int k = 0; k < 3; ++k) {
    for (int y = 0; y < gh; ++y)
      for (int x = 0; x < gw; ++x) rec.set(label_w + x, k * gh + y, grids[(size_t)k].get(x, y));
    draw_text(rec, 4, k * gh + gh / 2 - 4, row_names[k], kText);
  }
  write_picture(dir.file("reconstructions.png"), rec,
                std::to_string(n_show) + " test images and their ae and vae reconstructions");

  // ---- the table ----
  const double mse_ae = pixel_mse(ae, test), mse_vae = pixel_mse(vae, test);
  Generator gen(stream_seed((uint64_t)seed, "eval"));
  const VaeEval ev = evaluate(*vae.vae, test, 500, 0, gen, device);
  auto train_seconds = [](const LoadedRun& r) {
    double s = 0;
    for (const auto& m : r.dir.read_metrics())
      if (m.contains("seconds") && m["seconds"].is_number()) s += m["seconds"].get<double>();
    return s;
  };
  ordered_json j;
  j["data"] = ae.config.train.data;
  j["n_train"] = n_train;
  j["n_test"] = N;
  j["epochs"] = epochs;
  j["latent"] = 2;
  j["ae"] = {{"run", runs[0]}, {"mse", mse_ae}, {"psnr", psnr_db(mse_ae)}, {"train_seconds", train_seconds(ae)}};
  j["vae"] = {{"run", runs[1]},
              {"mse", mse_vae},
              {"psnr", psnr_db(mse_vae)},
              {"neg_elbo", ev.neg_elbo},
              {"recon", ev.recon},
              {"kl", ev.kl},
              {"train_seconds", train_seconds(vae)}};
  write_text_atomic(dir.file("comparison.json"), j.dump(2) + "\n");
  std::printf("wrote %s\n", dir.file("comparison.json").c_str());
  std::printf("\nAE vs VAE, k = 2: %lld training images of %s, %lld epochs each; test set of %lld images\n",
              (long long)n_train, ae.config.train.data.c_str(), (long long)epochs, (long long)N);
  std::printf("  model  test MSE/pixel  PSNR (dB)  -ELBO (nats)  train (s)\n");
  std::printf("  ae     %14.5f  %9.2f  %12s  %9.1f\n", mse_ae, psnr_db(mse_ae), "-", train_seconds(ae));
  std::printf("  vae    %14.5f  %9.2f  %12.2f  %9.1f\n", mse_vae, psnr_db(mse_vae), ev.neg_elbo, train_seconds(vae));
  std::printf("  (MSE of the decoded images in [0, 1]: the ae's clamped output, the vae's Bernoulli means at z = mu(x))\n");
  return 0;
}

}  // namespace gt::tools
