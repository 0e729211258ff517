// train.cpp: `gentape train MODEL` — trains
//   vae, cvae                  a VAE (Kingma & Welling 2014) or a conditional VAE (Sohn et al. 2015),
//                              minimising the one-sample -ELBO
//   ae, sparse-ae, denoising-ae an autoencoder (models/ae.h), minimising
//                              mean_n ||D(E(x~_n)) - x_n||^2 (+ lambda ||E(x_n)||_1 for sparse-ae;
//                              x~ = corrupt(x) for denoising-ae, x~ = x otherwise)
// with Adam or SGD, and keeps a run directory (tools/run_dir.h): config.json, an atomic checkpoint
// after every epoch, metrics.jsonl, loss.png. One training loop serves both families; a Trainee
// holds what differs: the model, its minibatch loss and its per-epoch test evaluation.
//
// Resume is exact: every random stream is a function of (seed, epoch) (run_dir.h lists them), the
// optimiser state travels in the checkpoint, and the per-epoch loss is summed in a fixed order, so
// on the CPU "2 epochs" and "1 epoch, then --resume to 2" write identical losses (tests/test_cli.cpp,
// tests/test_cli_ae.cpp).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <stdexcept>

#include "autograd/ops.h"
#include "core/device.h"
#include "tools/ae_eval.h"
#include "tools/commands.h"
#include "tools/plots.h"
#include "tools/run_dir.h"

namespace gt::tools {

namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The flags that define a run (model and training); --resume may repeat them only unchanged.
const char* const kRunFlags[] = {"data",   "latent",    "hidden", "arch", "decoder",  "learn-variance",
                                 "beta",   "batch",     "lr",     "optimizer", "momentum", "seed",
                                 "binarize", "train-limit", "holdout-class", "l1", "noise"};

// Refuses a model flag that the model does not have, naming both.
void check_flag_fits(const cli::Parser& p, const std::string& model) {
  const std::string fam = model_family(model);
  auto refuse = [&](const char* flag, const std::string& why) {
    if (p.given(flag)) throw cli::UsageError(std::string("--") + flag + " " + p.str(flag) + ": " + why);
  };
  const std::string is = "; this run's model is " + model;
  if (model != "sparse-ae") refuse("l1", "only sparse-ae has an L1 penalty on the code" + is);
  if (model != "denoising-ae") refuse("noise", "only denoising-ae corrupts its inputs" + is);
  if (fam != "vae")
    for (const char* f : {"decoder", "learn-variance", "beta"})
      refuse(f, "a VAE flag; an autoencoder's decoder is deterministic with a squared-error loss" + is);
}

std::string canonical_data(const std::string& d) {
  if (d == "mnist" || d == "fashion-mnist") return d;
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(d, ec);
  return ec ? d : p.lexically_normal().string();
}

// Sets the field of `rc` that flag `name` controls from the parser (its value or its default).
// Flags without a default (latent, hidden, l1, noise) keep the family's default config value.
void apply_flag(const cli::Parser& p, const std::string& name, RunConfig& rc) {
  VaeConfig& v = rc.vae;
  AeConfig& a = rc.ae;
  TrainOptions& t = rc.train;
  const bool vae = rc.family() == "vae";
  if (name == "data") t.data = canonical_data(p.str("data"));
  else if (name == "latent") {
    if (p.has("latent")) (vae ? v.latent : a.latent) = p.integer("latent", 1, 1 << 20);
  } else if (name == "hidden") {
    if (p.has("hidden")) (vae ? v.hidden : a.hidden) = p.integer_list("hidden", 1, 1 << 20);
  } else if (name == "arch") (vae ? v.arch : a.arch) = p.str("arch");
  else if (name == "l1") {
    if (p.has("l1")) a.l1 = (float)p.number("l1", 0, 1e6);
  } else if (name == "noise") {
    if (p.has("noise")) {
      try {
        a.noise = NoiseSpec::parse(p.str("noise")).str();  // canonical: "gaussian:.5" -> "gaussian:0.5"
      } catch (const Error& e) {
        p.bad_value("noise", e.what());
      }
    }
  }
  else if (name == "decoder") v.decoder = p.str("decoder");
  else if (name == "learn-variance") v.learn_variance = p.on("learn-variance");
  else if (name == "beta") v.beta = (float)p.number("beta", 0, 1e6);
  else if (name == "batch") t.batch = p.integer("batch", 1, 1 << 20);
  else if (name == "lr") {
    t.lr = p.number("lr", 0, 1e30);
    if (t.lr <= 0) p.bad_value("lr", "must be > 0");
  } else if (name == "optimizer") t.optimizer = p.str("optimizer");
  else if (name == "momentum") t.momentum = p.number("momentum", 0, 0.999999);
  else if (name == "seed") {
    int64_t s = p.integer("seed", 0, INT64_MAX);
    t.seed = (uint64_t)s;
  } else if (name == "binarize") t.binarize = p.on("binarize");
  else if (name == "train-limit") t.train_limit = p.has("train-limit") ? p.integer("train-limit", 1, INT64_MAX) : 0;
  else if (name == "holdout-class") t.holdout_class = p.has("holdout-class") ? (int)p.integer("holdout-class", 0, 255) : -1;
  else throw std::logic_error("apply_flag: unknown flag " + name);
}

std::string timestamp() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&now));
  return buf;
}

std::string default_out(const RunConfig& rc) {
  std::string data = std::filesystem::path(rc.train.data).filename().string();
  if (data.empty()) data = "data";
  std::string base = "runs/" + rc.train.model + "-" + data + "-" + timestamp(), out = base;
  for (int k = 2; path_exists(out); ++k) out = base + "-" + std::to_string(k);
  return out;
}

std::string describe_model(const AeConfig& c, int64_t params) {
  std::string s = c.arch + " ";
  if (c.arch == "conv") s += "conv(32,64) ";
  s += std::to_string(c.input_dim());
  for (int64_t h : c.hidden) s += "-" + std::to_string(h);
  s += "-" + std::to_string(c.latent) + " (mirrored decoder, linear output), squared error";
  if (c.kind == "sparse") {
    char buf[64];
    std::snprintf(buf, sizeof buf, " + %g ||z||_1", (double)c.l1);
    s += buf;
  }
  if (c.kind == "denoising") s += ", inputs corrupted by " + c.noise;
  return s + ", " + std::to_string(params) + " parameters";
}

std::string describe_model(const VaeConfig& c, int64_t params) {
  std::string s = c.arch;
  if (c.arch == "mlp") {
    s += " " + std::to_string(c.input_dim());
    for (int64_t h : c.hidden) s += "-" + std::to_string(h);
    s += "-" + std::to_string(c.latent);
  } else {
    s += " " + std::to_string(c.height) + "x" + std::to_string(c.width) + ", hidden " + std::to_string(c.hidden[0]) +
         ", latent " + std::to_string(c.latent);
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, ", %s decoder%s, beta %g%s, %lld parameters", c.decoder.c_str(),
                c.learn_variance ? " (learned variance)" : "", c.beta,
                c.conditional() ? (", conditional on " + std::to_string(c.num_classes) + " classes").c_str() : "",
                (long long)params);
  return s + buf;
}

// The per-family part of training: the model, its minibatch loss, and its test evaluation.
struct Trainee {
  std::shared_ptr<nn::Module> model;
  bool needs_labels = false;  // a cvae: the minibatch labels go to the device
  // The scalar () to minimise for a minibatch; noise: the epoch's training noise stream.
  std::function<Tensor(const Tensor& x, const Tensor& y, Generator& noise)> loss;
  // Adds the test-set figures to the epoch's metrics line and returns them as text for the log.
  std::function<std::string(const Dataset& test, Generator& gen, Device device, ordered_json& m)> evaluate;
  const char* test_key;    // the metric loss.png plots next to train_loss
  const char* test_label;  // its legend
  const char* units;       // the plot's title
  std::string description;
};

Trainee make_trainee(const RunConfig& rc, Generator& init) {
  Trainee t;
  if (rc.family() == "vae") {
    auto vae = std::make_shared<Vae>(rc.vae, init);
    t.model = vae;
    t.needs_labels = rc.vae.conditional();
    t.loss = [vae](const Tensor& x, const Tensor& y, Generator& noise) { return vae->loss(x, y, noise).loss; };
    const int64_t latent = rc.vae.latent;
    t.evaluate = [vae, latent](const Dataset& test, Generator& gen, Device device, ordered_json& m) {
      VaeEval ev = evaluate(*vae, test, 500, 0, gen, device);
      m["test_neg_elbo"] = ev.neg_elbo;
      m["test_recon"] = ev.recon;
      m["test_kl"] = ev.kl;
      m["active_units"] = ev.active_units;
      char buf[160];
      std::snprintf(buf, sizeof buf, "test -elbo %.4f (recon %.4f, kl %.4f)  active %d/%lld", ev.neg_elbo, ev.recon,
                    ev.kl, ev.active_units, (long long)latent);
      return std::string(buf);
    };
    t.test_key = "test_neg_elbo";
    t.test_label = "test -elbo";
    t.units = "nats per image";
    t.description = describe_model(rc.vae, vae->num_parameters());
  } else {
    auto ae = std::make_shared<Autoencoder>(rc.ae, init);
    t.model = ae;
    t.loss = [ae](const Tensor& x, const Tensor&, Generator& noise) { return ae->loss(x, noise).loss; };
    t.evaluate = [ae](const Dataset& test, Generator& gen, Device device, ordered_json& m) {
      AeEval ev = evaluate_ae(*ae, test, 500, gen, device);
      m["test_recon"] = ev.recon;
      m["test_psnr"] = ev.psnr;
      char buf[160];
      int len = std::snprintf(buf, sizeof buf, "test recon %.4f  psnr %.2f dB", ev.recon, ev.psnr);
      if (ev.denoising) {
        m["test_psnr_noisy"] = ev.psnr_noisy;
        m["test_psnr_denoised"] = ev.psnr_denoised;
        std::snprintf(buf + len, sizeof buf - (size_t)len, " (noisy input %.2f -> denoised %.2f dB)", ev.psnr_noisy,
                      ev.psnr_denoised);
      }
      return std::string(buf);
    };
    t.test_key = "test_recon";
    t.test_label = "test recon";
    t.units = rc.ae.kind == "sparse" ? "squared error (+ l1 in train) per image" : "squared error per image";
    t.description = describe_model(rc.ae, ae->num_parameters());
  }
  return t;
}

// The loss curve of a run, from its metrics.jsonl.
void write_loss_png(const RunDir& run, const Trainee& t) {
  std::vector<double> train, test;
  for (const auto& m : run.read_metrics()) {
    auto num = [&](const char* k) {
      return m.contains(k) && m[k].is_number() ? m[k].get<double>() : std::nan("");
    };
    train.push_back(num("train_loss"));
    test.push_back(num(t.test_key));
  }
  io::Canvas c = line_plot({{"train loss", train, io::class_colour(0)}, {t.test_label, test, io::class_colour(1)}},
                           "epoch", t.units);
  io::write_png(run.file("loss.png"), c);
}

// A progress line rewritten in place (only when stdout is a terminal).
class ProgressBar {
 public:
  explicit ProgressBar(bool on) : on_(on) {}
  void update(int64_t epoch, int64_t epochs, int64_t done, int64_t total, double loss, double samples_per_s) {
    if (!on_) return;
    const int width = 30, fill = total ? (int)(width * done / total) : width;
    std::string bar(fill, '=');
    if (fill < width) bar += '>' + std::string(width - fill - 1, ' ');
    std::printf("\r\033[Kepoch %lld/%lld [%s] %3d%%  loss %.4f  %.0f samples/s", (long long)epoch, (long long)epochs,
                bar.c_str(), total ? (int)(100 * done / total) : 100, loss, samples_per_s);
    std::fflush(stdout);
  }
  void clear() {
    if (on_) std::printf("\r\033[K");
  }

 private:
  bool on_;
};

}  // namespace

int cmd_train(const cli::Args& args) {
  cli::Parser p("train", "vae|cvae|ae|sparse-ae|denoising-ae",
                "Train a variational autoencoder (vae), a conditional one (cvae, conditioned on the class label),\n"
                "or a deterministic autoencoder (ae; sparse-ae with an L1 penalty on the code; denoising-ae, which\n"
                "learns to undo --noise) on an image data set. Writes a run directory: config.json,\n"
                "checkpoint.safetensors (after every epoch, atomically), metrics.jsonl (one line per epoch), loss.png.");
  p.positional("MODEL", "vae, cvae, ae, sparse-ae or denoising-ae (may be left out with --resume)", false);
  p.option("data", "mnist", "data set: mnist, fashion-mnist, or a directory of IDX files", "NAME|DIR");
  p.option("latent", "", "latent dimensions / code size k (default: 20 for vae/cvae, 2 for ae)", "D");
  p.option("hidden", "", "encoder hidden widths, mirrored by the decoder (default: 400 for vae/cvae, 512,256 for ae)",
           "W[,W..]");
  p.option("arch", "mlp", "encoder/decoder architecture", "mlp|conv", {"mlp", "conv"});
  p.option("decoder", "bernoulli", "vae/cvae: likelihood p(x|z)", "bernoulli|gaussian", {"bernoulli", "gaussian"});
  p.flag("learn-variance", "vae/cvae, gaussian decoder: learn one log-variance per pixel");
  p.option("beta", "1", "vae/cvae: weight of the KL term (beta-VAE)", "B");
  p.option("l1", "", "sparse-ae: weight lambda of the L1 penalty lambda ||E(x)||_1 (default 1e-3)", "LAMBDA");
  p.option("noise", "", "denoising-ae: x + SIGMA eps, or drop each pixel with probability P (default gaussian:0.3)",
           "gaussian:SIGMA|mask:P");
  p.option("epochs", "10", "train until this many epochs are done (with --resume: the new total)", "N");
  p.option("batch", "128", "minibatch size", "N");
  p.option("lr", "1e-3", "learning rate", "LR");
  p.option("optimizer", "adam", "optimiser", "adam|sgd", {"adam", "sgd"});
  p.option("momentum", "0", "sgd momentum", "M");
  p.option("device", "auto", "where to train (auto: cuda when a GPU is present)", "auto|cpu|cuda", {"auto", "cpu", "cuda"});
  p.option("threads", "", "CPU threads (default: all cores)", "N");
  p.option("seed", "1", "seed of every random stream (init, shuffling, noise)", "S");
  p.option("out", "", "run directory (default: runs/<model>-<data>-<time>)", "DIR");
  p.flag("resume", "continue the run in --out from its checkpoint (exactly, on the CPU)");
  p.flag("overwrite", "start afresh in --out even if it holds a run (deletes its checkpoint and metrics)");
  p.flag("binarize", "dynamic binarisation: train on x ~ Bernoulli(pixels); the test set is binarised once");
  p.option("train-limit", "", "train on a fixed random subset of N training images", "N");
  p.option("holdout-class", "", "leave class C out of the training set", "C");
  p.epilog(
      "examples:\n"
      "  gentape train vae --epochs 10                       MLP 784-400-20 on MNIST, Bernoulli decoder\n"
      "  gentape train vae --latent 2 --out runs/two-d       for `gentape manifold`\n"
      "  gentape train cvae --data fashion-mnist --hidden 512,256\n"
      "  gentape train ae --train-limit 1000 --epochs 50     784-512-256-2 autoencoder on 1,000 images\n"
      "  gentape train sparse-ae --latent 32 --l1 1e-3\n"
      "  gentape train denoising-ae --latent 32 --noise mask:0.5\n"
      "  gentape train --resume --out runs/two-d --epochs 20 continue to 20 epochs");
  if (!p.parse(args)) return 0;

  // ---- the run's configuration: from the flags, or from the checkpoint when resuming ----
  const bool resume = p.on("resume");
  if (resume && p.on("overwrite")) throw cli::UsageError("--resume and --overwrite contradict each other: pick one");
  if (resume && !p.given("out")) throw cli::UsageError("--resume needs --out DIR: the run to continue");
  std::string model = p.num_positionals() ? p.positional_value(0) : "";
  if (!model.empty() && model != "vae" && model != "cvae" && model != "ae" && model != "sparse-ae" &&
      model != "denoising-ae")
    throw cli::UsageError("MODEL must be vae, cvae, ae, sparse-ae or denoising-ae, got '" + model + "'");
  if (model.empty() && !resume)
    throw cli::UsageError("missing MODEL: vae, cvae, ae, sparse-ae or denoising-ae (usage: gentape train MODEL [flags])");
  if (!model.empty()) check_flag_fits(p, model);
  const int64_t epochs_flag = p.integer("epochs", 1, 1000000);
  if (p.given("threads")) set_num_threads((int)p.integer("threads", 1, 4096));
  if (p.on("learn-variance") && p.str("decoder") != "gaussian" && !resume)
    throw cli::UsageError("--learn-variance needs --decoder gaussian (the Bernoulli decoder has no variance)");
  const Device device = parse_device(p.str("device"));

  RunConfig rc;
  CheckpointState ckpt;
  std::string out = p.str("out");
  if (resume) {
    RunDir run(out);
    GT_CHECK(run.exists(), "--resume: run directory '" << out << "' not found");
    ckpt = run.load_checkpoint();
    rc = ckpt.config;
    if (!model.empty() && model != rc.train.model)
      throw cli::UsageError("--resume: MODEL " + model + " differs from the run's " + rc.train.model);
    check_flag_fits(p, rc.train.model);
    const std::string stored = rc.to_json().dump();
    for (const char* f : kRunFlags) {
      if (!p.given(f)) continue;
      RunConfig changed = rc;
      apply_flag(p, f, changed);
      if (changed.to_json().dump() != stored)
        throw cli::UsageError(std::string("--resume: --") + f + " " + p.str(f) +
                              " differs from the run's setting (" + out +
                              "/config.json); a run's model and training flags are fixed: drop the flag, or start a "
                              "new run");
    }
    rc.train.epochs = p.given("epochs") ? epochs_flag : rc.train.epochs;
  } else {
    rc.train.model = model;
    for (const char* f : kRunFlags) apply_flag(p, f, rc);
    rc.train.epochs = epochs_flag;
    if (model == "cvae") rc.vae.num_classes = 10;  // set from the data below
    if (rc.family() == "ae") rc.ae.kind = ae_kind(model);
    if (out.empty()) out = default_out(rc);
  }
  RunDir run(out);
  if (!resume && run.has_checkpoint()) {
    if (!p.on("overwrite"))
      throw cli::UsageError("--out " + out + " already holds a run (" + run.checkpoint_path() +
                            "): continue it with --resume, or start again with --overwrite");
    run.clear();
  }

  // ---- data and model ----
  io::DataSplit data = run_data(rc);
  if (!resume) {
    try {
      if (rc.family() == "vae") {
        rc.vae.height = data.train.height;
        rc.vae.width = data.train.width;
        if (rc.vae.conditional()) rc.vae.num_classes = data.train.num_classes;
        rc.vae.validate();
      } else {
        rc.ae.height = data.train.height;
        rc.ae.width = data.train.width;
        rc.ae.validate();
      }
    } catch (const Error& e) {
      throw cli::UsageError(e.what());
    }
  }
  GT_CHECK(data.train.height == rc.height() && data.train.width == rc.width(),
           "data set " << rc.train.data << " has " << data.train.height << "x" << data.train.width
                       << " images but the run's model expects " << rc.height() << "x" << rc.width());
  Generator init(rc.train.seed);
  Trainee trainee = make_trainee(rc, init);
  nn::Module& model_ref = *trainee.model;
  int64_t start_epoch = 0;
  if (resume) {
    try {
      model_ref.load_state_dict(ckpt.model);
    } catch (const Error& e) {
      GT_FAIL(run.checkpoint_path() << ": " << e.what());
    }
    start_epoch = ckpt.epoch;
  }
  model_ref.to(device);
  std::unique_ptr<optim::Optimizer> opt;
  if (rc.train.optimizer == "adam")
    opt = std::make_unique<optim::Adam>(model_ref.named_parameters(), optim::AdamOptions{(float)rc.train.lr});
  else
    opt = std::make_unique<optim::SGD>(model_ref.named_parameters(),
                                       optim::SgdOptions{(float)rc.train.lr, (float)rc.train.momentum});
  if (resume) {
    try {
      opt->load_state_dict(ckpt.optim);
    } catch (const Error& e) {
      GT_FAIL(run.checkpoint_path() << ": optimizer state: " << e.what());
    }
  }
  run.create();
  run.write_config(rc);
  if (resume) run.truncate_metrics(start_epoch);

  const int64_t N = data.train.size(), epochs = rc.train.epochs;
  std::printf("gentape train: %s on %s: %lld training / %lld test images (%lldx%lld)\n", rc.train.model.c_str(),
              rc.train.data.c_str(), (long long)N, (long long)data.test.size(), (long long)rc.height(),
              (long long)rc.width());
  std::printf("  model  %s\n", trainee.description.c_str());
  std::printf("  train  %lld epochs, batch %lld, %s lr %g, seed %llu%s, %s%s\n", (long long)epochs,
              (long long)rc.train.batch, rc.train.optimizer.c_str(), rc.train.lr, (unsigned long long)rc.train.seed,
              rc.train.binarize ? ", binarized" : "", device_name(device),
              device == Device::CPU ? (" (" + std::to_string(num_threads()) + " threads)").c_str() : "");
  std::printf("  run    %s%s\n", out.c_str(),
              resume ? (" (resuming after epoch " + std::to_string(start_epoch) + ")").c_str() : "");
  std::fflush(stdout);
  if (start_epoch >= epochs) {
    std::printf("nothing to do: the run has %lld epochs already (ask for more with --epochs)\n", (long long)start_epoch);
    return 0;
  }

  // ---- the training loop (both families) ----
  Batcher batches(data.train, rc.train.batch, rc.train.seed, Device::CPU);
  const uint64_t noise_seed = stream_seed(rc.train.seed, "noise"), eval_seed = stream_seed(rc.train.seed, "eval");
  Generator noise(noise_seed), eval_gen(eval_seed);
  ProgressBar bar(::isatty(::fileno(stdout)) == 1);
  // Losses are read back in windows: on a GPU every read waits for the queue to drain. A step's
  // loss is checked for being finite when its window is read (on the CPU: every step).
  const size_t window = device == Device::CPU ? 1 : 32;
  int64_t last_saved = start_epoch;

  for (int64_t epoch = start_epoch; epoch < epochs; ++epoch) {
    batches.start_epoch(epoch);
    noise.manual_seed(noise_seed);
    noise.set_offset(epoch_offset(epoch));
    model_ref.train(true);
    const int64_t steps = batches.batches_per_epoch();
    double loss_sum = 0;  // sum over samples, accumulated in step order (deterministic)
    int64_t seen = 0;
    std::vector<std::pair<Tensor, int64_t>> pending;  // (loss (), batch size) not yet read back
    auto t0 = Clock::now();
    double last_bar = -1;
    auto flush = [&](int64_t step_after) {
      int64_t step = step_after - (int64_t)pending.size();
      for (auto& [l, b] : pending) {
        ++step;
        const float v = l.item();
        if (!std::isfinite(v)) {
          bar.clear();
          std::string where = last_saved > 0 ? "the last good checkpoint is " + run.checkpoint_path() + " (epoch " +
                                                   std::to_string(last_saved) + "; continue from it with --resume)"
                                             : "no checkpoint was written (no epoch had finished)";
          throw std::runtime_error("non-finite training loss (" + std::to_string(v) + ") at epoch " +
                                   std::to_string(epoch + 1) + ", step " + std::to_string(step) + " of " +
                                   std::to_string(steps) + "; training stopped. " + where +
                                   ". A smaller --lr often helps.");
        }
        loss_sum += (double)v * (double)b;
        seen += b;
      }
      pending.clear();
    };
    for (int64_t step = 1; batches.next(); ++step) {
      Tensor x = batches.x();
      if (rc.train.binarize) binarize_(x, noise);  // a fresh batch tensor: safe to overwrite
      x = x.to(device);
      Tensor labels = trainee.needs_labels ? batches.y().to(device) : Tensor();
      Tensor loss = trainee.loss(x, labels, noise);
      backward(loss);
      opt->step();
      opt->zero_grad();
      pending.push_back({loss, x.size(0)});
      const double t = seconds_since(t0);
      const bool bar_due = t - last_bar > 0.1;
      if (pending.size() >= window || step == steps || bar_due) flush(step);
      if (bar_due) {
        bar.update(epoch + 1, epochs, step, steps, seen ? loss_sum / (double)seen : 0, (double)seen / t);
        last_bar = t;
      }
    }
    flush(steps);
    const double secs = seconds_since(t0);
    const double train_loss = loss_sum / (double)N;

    model_ref.train(false);
    ordered_json m;
    m["epoch"] = epoch + 1;
    m["train_loss"] = train_loss;
    auto te = Clock::now();
    eval_gen.manual_seed(eval_seed);
    const std::string test_line = trainee.evaluate(data.test, eval_gen, device, m);
    const double eval_secs = seconds_since(te);

    run.save_checkpoint(model_ref, *opt, rc, epoch + 1);
    last_saved = epoch + 1;
    m["seconds"] = secs;
    m["samples_per_s"] = (double)N / secs;
    m["eval_seconds"] = eval_secs;
    m["device"] = device_name(device);
    run.append_metrics(m);
    write_loss_png(run, trainee);

    bar.clear();
    std::printf("epoch %3lld/%lld  train %.4f  %s  %.1f s  %.0f samples/s\n", (long long)(epoch + 1),
                (long long)epochs, train_loss, test_line.c_str(), secs, (double)N / secs);
    std::fflush(stdout);
  }
  std::printf("wrote %s (epoch %lld), %s, %s\n", run.checkpoint_path().c_str(), (long long)epochs,
              run.metrics_path().c_str(), run.file("loss.png").c_str());
  if (rc.family() == "vae")
    std::printf("next: gentape eval %s   (also: sample, reconstruct, interpolate, latents%s, encode, decode)\n",
                out.c_str(), rc.vae.latent == 2 ? ", manifold" : "");
  else
    std::printf("next: gentape eval %s   (also: reconstruct, interpolate, latents, encode, decode)\n", out.c_str());
  return 0;
}

}  // namespace gt::tools
