// train.cpp: `gentape train MODEL` — trains
//   vae, cvae                  a VAE (Kingma & Welling 2014) or a conditional VAE (Sohn et al. 2015),
//                              minimising the one-sample -ELBO
//   ae, sparse-ae, denoising-ae an autoencoder (models/ae.h), minimising
//                              mean_n ||D(E(x~_n)) - x_n||^2 (+ lambda ||E(x_n)||_1 for sparse-ae;
//                              x~ = corrupt(x) for denoising-ae, x~ = x otherwise)
//   ddpm                       a diffusion model (Ho et al. 2020, models/ddpm.h) on images scaled to
//                              [-1, 1] (x0 = 2x - 1, shaped (B, 1, H, W)), minimising
//                              mean_b ||eps_theta(x_t, t) - eps||^2 / D with t ~ U{1..T}; --cond
//                              adds the class label with label dropout (classifier-free guidance);
//                              an EMA of the weights (decay --ema) is updated after every step
// with Adam or SGD (ddpm: Adam), and keeps a run directory (tools/run_dir.h): config.json, an atomic
// checkpoint after every epoch, metrics.jsonl, loss.png. One training loop serves every family; a
// Trainee holds what differs: the model, its minibatch loss, its per-epoch test evaluation and the
// per-step extras (the EMA, the loss per timestep bucket).
//
// Resume is exact: every random stream is a function of (seed, epoch) (run_dir.h lists them), the
// optimiser state (and the EMA) travel in the checkpoint, and the losses are summed in a fixed order,
// so on the CPU "2 epochs" and "1 epoch, then --resume to 2" write identical losses
// (tests/test_cli.cpp, tests/test_cli_ae.cpp, tests/test_cli_ddpm.cpp). `--steps N` (ddpm) may stop
// inside an epoch; that checkpoint records the step and the noise stream's offset, and a resume
// skips the epoch's finished minibatches, so it continues exactly too.
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
const char* const kRunFlags[] = {"data",     "latent",   "hidden",      "arch",          "decoder",  "learn-variance",
                                 "beta",     "batch",    "lr",          "optimizer",     "momentum", "seed",
                                 "binarize", "train-limit", "holdout-class", "l1",       "noise",    "T",
                                 "schedule", "form",     "variance",    "channels",      "attention", "cond",
                                 "label-dropout", "ema"};
// The flags only a ddpm has.
const char* const kDdpmFlags[] = {"T",    "schedule", "form", "variance", "channels", "attention",
                                  "cond", "label-dropout", "ema", "steps"};
constexpr int kUNetGroups = 8;  // GroupNorm(8) throughout the U-Net, as in the benchmark network

// Refuses a model flag that the model does not have, naming both.
void check_flag_fits(const cli::Parser& p, const std::string& model) {
  const std::string fam = model_family(model);
  auto refuse = [&](const char* flag, const std::string& why) {
    if (p.given(flag)) throw cli::UsageError(std::string("--") + flag + " " + p.str(flag) + ": " + why);
  };
  const std::string is = "; this run's model is " + model;
  if (model != "sparse-ae") refuse("l1", "only sparse-ae has an L1 penalty on the code" + is);
  if (model != "denoising-ae") refuse("noise", "only denoising-ae corrupts its inputs" + is);
  if (fam == "ae")
    for (const char* f : {"decoder", "learn-variance", "beta"})
      refuse(f, "a VAE flag; an autoencoder's decoder is deterministic with a squared-error loss" + is);
  if (fam != "ddpm")
    for (const char* f : kDdpmFlags) refuse(f, "a ddpm flag" + is);
  if (fam == "ddpm") {
    for (const char* f : {"latent", "hidden", "arch", "decoder", "learn-variance", "beta"})
      refuse(f, "a VAE/autoencoder flag; a ddpm's network is the U-Net (--channels, --attention)" + is);
    refuse("optimizer", "a ddpm trains with Adam (--lr)" + is);
    refuse("momentum", "a ddpm trains with Adam (--lr)" + is);
    refuse("binarize", "a ddpm models grey levels scaled to [-1, 1]" + is);
  }
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
  DdpmConfig& d = rc.ddpm;
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
  else if (name == "batch") {
    if (p.has("batch")) t.batch = p.integer("batch", 1, 1 << 20);  // else the family's default
  } else if (name == "lr") {
    if (p.has("lr")) {
      t.lr = p.number("lr", 0, 1e30);
      if (t.lr <= 0) p.bad_value("lr", "must be > 0");
    }
  } else if (name == "optimizer") t.optimizer = p.str("optimizer");
  else if (name == "momentum") t.momentum = p.number("momentum", 0, 0.999999);
  else if (name == "seed") {
    int64_t s = p.integer("seed", 0, INT64_MAX);
    t.seed = (uint64_t)s;
  } else if (name == "binarize") t.binarize = p.on("binarize");
  else if (name == "train-limit") t.train_limit = p.has("train-limit") ? p.integer("train-limit", 1, INT64_MAX) : 0;
  else if (name == "holdout-class") t.holdout_class = p.has("holdout-class") ? (int)p.integer("holdout-class", 0, 255) : -1;
  else if (name == "T") d.schedule.T = p.integer("T", 2, 100000);
  else if (name == "schedule") d.schedule.schedule = p.str("schedule");
  else if (name == "form") d.schedule.form = p.str("form");
  else if (name == "variance") d.schedule.variance = p.str("variance");
  else if (name == "channels") {
    d.unet.channels = p.integer("channels", kUNetGroups, 4096);
    d.unet.groups = kUNetGroups;
    if (d.unet.channels % kUNetGroups != 0)
      p.bad_value("channels", "must be a multiple of " + std::to_string(kUNetGroups) + " (GroupNorm with " +
                                  std::to_string(kUNetGroups) + " groups)");
  } else if (name == "attention") d.unet.attention = p.on("attention");
  else if (name == "cond") d.unet.num_classes = p.on("cond") ? 10 : 0;  // the data's class count is set later
  else if (name == "label-dropout") d.label_dropout = (float)p.number("label-dropout", 0, 0.999);
  else if (name == "ema") {
    t.ema = p.number("ema", 0, 1);
    if (t.ema >= 1) p.bad_value("ema", "must be < 1");
  }
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

std::string describe_model(const DdpmConfig& c, double ema, int64_t params) {
  const diffusion::ScheduleConfig& s = c.schedule;
  char buf[320];
  int len = std::snprintf(buf, sizeof buf, "U-Net c=%lld (GroupNorm %d%s)", (long long)c.unet.channels, c.unet.groups,
                          c.unet.attention ? ", self-attention at the lowest resolution" : "");
  if (c.unet.conditional())
    len += std::snprintf(buf + len, sizeof buf - (size_t)len, ", conditional on %d classes (label dropout %g)",
                         c.unet.num_classes, (double)c.label_dropout);
  std::snprintf(buf + len, sizeof buf - (size_t)len, ", T=%lld %s %s, sigma^2 %s, EMA %g, %lld parameters",
                (long long)s.T, s.schedule.c_str(), s.form.c_str(), s.variance.c_str(), ema, (long long)params);
  return buf;
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

// One minibatch's loss. per_sample and t are set by families that report per-sample figures (ddpm).
struct StepLoss {
  Tensor loss;                // () what backward() starts from
  Tensor per_sample;          // (B), or undefined
  std::vector<int32_t> t;     // (B) the timesteps drawn (ddpm)
};

// The loss per timestep bucket (ddpm): sums of the per-sample eps-MSE of the training samples whose t
// fell in bucket k = floor((t - 1) * 10 / T), i.e. t in (k T/10, (k+1) T/10], since the last metrics line.
struct BucketStats {
  static constexpr int kBuckets = 10;
  int64_t T = 1;
  double sum[kBuckets] = {};
  int64_t count[kBuckets] = {};
  void add(const StepLoss& s) {
    const std::vector<float> v = s.per_sample.to_vector();
    for (size_t b = 0; b < v.size(); ++b) {
      const int k = (int)(((int64_t)s.t[b] - 1) * kBuckets / T);
      sum[k] += v[b];
      ++count[k];
    }
  }
  // The means (null where no sample fell), then a reset.
  ordered_json take() {
    ordered_json a = ordered_json::array();
    for (int k = 0; k < kBuckets; ++k) {
      a.push_back(count[k] ? ordered_json(sum[k] / (double)count[k]) : ordered_json(nullptr));
      sum[k] = 0, count[k] = 0;
    }
    return a;
  }
};

// The per-family part of training: the model, its minibatch loss, and its test evaluation.
struct Trainee {
  std::shared_ptr<nn::Module> model;
  bool needs_labels = false;  // a cvae or a conditional ddpm: the minibatch labels go to the device
  // The minibatch loss; x (B, H*W) in [0, 1] on the device; noise: the epoch's training noise stream.
  std::function<StepLoss(const Tensor& x, const Tensor& y, Generator& noise)> loss;
  // Adds the test-set figures to the epoch's metrics line and returns them as text for the log;
  // null: the family has no per-epoch test figures (ddpm: `gentape eval` measures them).
  std::function<std::string(const Dataset& test, Generator& gen, Device device, ordered_json& m)> evaluate;
  std::shared_ptr<optim::Ema> ema;       // ddpm: updated after every optimiser step, checkpointed
  std::shared_ptr<BucketStats> buckets;  // ddpm: the loss per timestep bucket
  const char* test_key = nullptr;        // the metric loss.png plots next to train_loss (null: none)
  const char* test_label = nullptr;      // its legend
  const char* units;                     // the plot's title
  std::string description;
};

// device: where the model lives (a Ddpm is built there; the others are moved by the loop).
Trainee make_trainee(const RunConfig& rc, Generator& init, Device device) {
  Trainee t;
  if (rc.family() == "vae") {
    auto vae = std::make_shared<Vae>(rc.vae, init);
    t.model = vae;
    t.needs_labels = rc.vae.conditional();
    t.loss = [vae](const Tensor& x, const Tensor& y, Generator& noise) {
      return StepLoss{vae->loss(x, y, noise).loss, {}, {}};
    };
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
  } else if (rc.family() == "ddpm") {
    auto ddpm = std::make_shared<Ddpm>(rc.ddpm, init, device);
    t.model = std::shared_ptr<nn::Module>(ddpm, &ddpm->net());  // shares ownership of the Ddpm
    t.needs_labels = rc.ddpm.unet.conditional();
    const int64_t C = rc.ddpm.unet.in_channels, H = rc.ddpm.height, W = rc.ddpm.width;
    t.loss = [ddpm, C, H, W](const Tensor& x, const Tensor& y, Generator& noise) {
      // Pixels [0, 1] -> [-1, 1], the range the schedule's N(0, I) endpoint is scaled for.
      const Tensor x0 = reshape(add(mul(x, 2.f), -1.f), {x.size(0), C, H, W});
      DdpmLoss l = ddpm->loss(x0, y.defined() ? &y : nullptr, noise);
      return StepLoss{l.loss, l.per_sample, std::move(l.t)};
    };
    t.ema = std::make_shared<optim::Ema>(ddpm->net().named_parameters(), (float)rc.train.ema);
    t.buckets = std::make_shared<BucketStats>();
    t.buckets->T = rc.ddpm.schedule.T;
    t.units = "eps-prediction mse per pixel";
    t.description = describe_model(rc.ddpm, rc.train.ema, ddpm->net().num_parameters());
  } else {
    auto ae = std::make_shared<Autoencoder>(rc.ae, init);
    t.model = ae;
    t.loss = [ae](const Tensor& x, const Tensor&, Generator& noise) { return StepLoss{ae->loss(x, noise).loss, {}, {}}; };
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
    if (t.test_key) test.push_back(num(t.test_key));
  }
  std::vector<Series> series = {{"train loss", train, io::class_colour(0)}};
  if (t.test_key) series.push_back({t.test_label, test, io::class_colour(1)});
  io::Canvas c = line_plot(series, t.ema ? "checkpoint" : "epoch", t.units);
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
  cli::Parser p("train", "vae|cvae|ae|sparse-ae|denoising-ae|ddpm",
                "Train a variational autoencoder (vae), a conditional one (cvae, conditioned on the class label),\n"
                "a deterministic autoencoder (ae; sparse-ae with an L1 penalty on the code; denoising-ae, which\n"
                "learns to undo --noise), or a denoising diffusion model (ddpm: a U-Net predicting the noise,\n"
                "--cond for class-conditional) on an image data set. Writes a run directory: config.json,\n"
                "checkpoint.safetensors (after every epoch and where --steps stops, atomically), metrics.jsonl (one\n"
                "line per checkpoint), loss.png.");
  p.positional("MODEL", "vae, cvae, ae, sparse-ae, denoising-ae or ddpm (may be left out with --resume)", false);
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
  p.option("T", "1000", "ddpm: number of diffusion steps", "T");
  p.option("schedule", "linear", "ddpm: the noise schedule beta_t", "linear|cosine", {"linear", "cosine"});
  p.option("form", "vp", "ddpm: variance-preserving (alpha_t = 1 - beta_t) or variance-exploding (alpha_t = 1)",
           "vp|ve", {"vp", "ve"});
  p.option("variance", "beta", "ddpm: the sampler's sigma_t^2: beta_t, or the posterior's beta~_t", "beta|posterior",
           {"beta", "posterior"});
  p.option("channels", "32", "ddpm: the U-Net's base width c, a multiple of 8 (32: the benchmark network)", "C");
  p.flag("attention", "ddpm: self-attention at the lowest resolution");
  p.flag("cond", "ddpm: class-conditional, trained with label dropout (classifier-free guidance when sampling)");
  p.option("label-dropout", "0.1", "ddpm --cond: probability of dropping a training image's label", "P");
  p.option("ema", "0.999", "ddpm: decay of the EMA of the weights (sampling uses the EMA)", "D");
  p.option("epochs", "10", "train until this many epochs are done (with --resume: the new total)", "N");
  p.option("steps", "", "ddpm: instead of --epochs, stop after N optimiser steps in total (may end mid-epoch)", "N");
  p.option("batch", "", "minibatch size (default 128; ddpm 64)", "N");
  p.option("lr", "", "learning rate (default 1e-3; ddpm 2e-4)", "LR");
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
      "  gentape train ddpm --steps 2000 --out runs/ddpm     U-Net c=32, T=1000, EMA 0.999\n"
      "  gentape train ddpm --cond --data fashion-mnist      class-conditional (sample --label L --guidance w)\n"
      "  gentape train --resume --out runs/two-d --epochs 20 continue to 20 epochs");
  if (!p.parse(args)) return 0;

  // ---- the run's configuration: from the flags, or from the checkpoint when resuming ----
  const bool resume = p.on("resume");
  if (resume && p.on("overwrite")) throw cli::UsageError("--resume and --overwrite contradict each other: pick one");
  if (resume && !p.given("out")) throw cli::UsageError("--resume needs --out DIR: the run to continue");
  std::string model = p.num_positionals() ? p.positional_value(0) : "";
  if (!model.empty() && model != "vae" && model != "cvae" && model != "ae" && model != "sparse-ae" &&
      model != "denoising-ae" && model != "ddpm")
    throw cli::UsageError("MODEL must be vae, cvae, ae, sparse-ae, denoising-ae or ddpm, got '" + model + "'");
  if (model.empty() && !resume)
    throw cli::UsageError(
        "missing MODEL: vae, cvae, ae, sparse-ae, denoising-ae or ddpm (usage: gentape train MODEL [flags])");
  if (!model.empty()) check_flag_fits(p, model);
  if (!model.empty() && !resume && model == "ddpm" && !p.on("cond") && p.given("label-dropout"))
    throw cli::UsageError("--label-dropout " + p.str("label-dropout") +
                          ": needs --cond (only a conditional ddpm drops labels)");
  const int64_t epochs_flag = p.integer("epochs", 1, 1000000);
  if (p.given("epochs") && p.given("steps"))
    throw cli::UsageError("--epochs " + p.str("epochs") + " and --steps " + p.str("steps") +
                          " both say when to stop: pick one");
  const int64_t steps_flag = p.has("steps") ? p.integer("steps", 1, INT64_MAX) : 0;
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
    if (p.given("epochs")) rc.train.epochs = epochs_flag, rc.train.steps = 0;
    if (p.given("steps")) rc.train.steps = steps_flag;
  } else {
    rc.train.model = model;
    if (model == "ddpm") rc.train.batch = 64, rc.train.lr = 2e-4;  // the family's defaults (Ho et al.: 2e-4)
    for (const char* f : kRunFlags) apply_flag(p, f, rc);
    rc.train.epochs = epochs_flag;
    rc.train.steps = steps_flag;
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
      } else if (rc.family() == "ae") {
        rc.ae.height = data.train.height;
        rc.ae.width = data.train.width;
        rc.ae.validate();
      } else {
        rc.ddpm.height = data.train.height;
        rc.ddpm.width = data.train.width;
        if (rc.ddpm.unet.conditional()) rc.ddpm.unet.num_classes = data.train.num_classes;
        rc.ddpm.validate();
      }
    } catch (const Error& e) {
      throw cli::UsageError(e.what());
    }
  }
  GT_CHECK(data.train.height == rc.height() && data.train.width == rc.width(),
           "data set " << rc.train.data << " has " << data.train.height << "x" << data.train.width
                       << " images but the run's model expects " << rc.height() << "x" << rc.width());
  GT_CHECK(data.train.size() > 0, "data set " << rc.train.data << ": no training images left");
  Generator init(rc.train.seed);
  Trainee trainee = make_trainee(rc, init, device);
  nn::Module& model_ref = *trainee.model;
  Batcher batches(data.train, rc.train.batch, rc.train.seed, Device::CPU);
  const int64_t N = data.train.size(), spe = batches.batches_per_epoch();
  // Where the run stands: optimiser steps done; the epoch to continue and its finished minibatches.
  int64_t start_step = 0;
  if (resume) {
    try {
      model_ref.load_state_dict(ckpt.model);
    } catch (const Error& e) {
      GT_FAIL(run.checkpoint_path() << ": " << e.what());
    }
    start_step = ckpt.step >= 0 ? ckpt.step : ckpt.epoch * spe;
    GT_CHECK(start_step / spe == ckpt.epoch, run.checkpoint_path() << ": step " << start_step << " is not in epoch "
                                                                    << ckpt.epoch + 1 << " at " << spe
                                                                    << " steps per epoch (was the data set changed?)");
    if (trainee.ema) {
      GT_CHECK(!ckpt.ema.empty(), run.checkpoint_path() << ": a ddpm checkpoint without its EMA weights (ema.*)");
      try {
        trainee.ema->load_state_dict(ckpt.ema);
      } catch (const Error& e) {
        GT_FAIL(run.checkpoint_path() << ": " << e.what());
      }
    }
  }
  const int64_t start_epoch = start_step / spe, skip = start_step % spe;
  uint64_t resume_offset = 0;  // the noise stream's position when resuming inside an epoch
  if (skip > 0) {
    auto it = ckpt.metadata.find("noise_offset");
    GT_CHECK(it != ckpt.metadata.end(), run.checkpoint_path() << ": stopped inside an epoch (step " << start_step
                                                              << ") but records no noise_offset to resume from");
    try {
      resume_offset = std::stoull(it->second);
    } catch (const std::exception&) {
      GT_FAIL(run.checkpoint_path() << ": bad noise_offset '" << it->second << "' in __metadata__");
    }
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
  if (resume) run.truncate_metrics(ckpt.epoch, start_step);

  // The run ends after `target` optimiser steps in total: --steps, or whole epochs.
  const int64_t target = rc.train.steps > 0 ? rc.train.steps : rc.train.epochs * spe;
  const int64_t epochs = (target + spe - 1) / spe;
  std::printf("gentape train: %s on %s: %lld training / %lld test images (%lldx%lld)\n", rc.train.model.c_str(),
              rc.train.data.c_str(), (long long)N, (long long)data.test.size(), (long long)rc.height(),
              (long long)rc.width());
  std::printf("  model  %s\n", trainee.description.c_str());
  std::printf("  train  %lld epochs (%lld steps of %lld per epoch), batch %lld, %s lr %g, seed %llu%s, %s%s\n",
              (long long)epochs, (long long)target, (long long)spe, (long long)rc.train.batch,
              rc.train.optimizer.c_str(), rc.train.lr, (unsigned long long)rc.train.seed,
              rc.train.binarize ? ", binarized" : "", device_name(device),
              device == Device::CPU ? (" (" + std::to_string(num_threads()) + " threads)").c_str() : "");
  std::printf("  run    %s%s\n", out.c_str(),
              resume ? (" (resuming after epoch " + std::to_string(start_epoch) +
                        (skip ? " and " + std::to_string(skip) + " steps of epoch " + std::to_string(start_epoch + 1)
                              : std::string()) +
                        ", step " + std::to_string(start_step) + ")")
                           .c_str()
                     : "");
  std::fflush(stdout);
  if (start_step >= target) {
    std::printf("nothing to do: the run has %lld epochs (%lld steps) already (ask for more with --epochs%s)\n",
                (long long)ckpt.epoch, (long long)start_step, trainee.ema ? " or --steps" : "");
    return 0;
  }

  // ---- the training loop (every family) ----
  const uint64_t noise_seed = stream_seed(rc.train.seed, "noise"), eval_seed = stream_seed(rc.train.seed, "eval");
  Generator noise(noise_seed), eval_gen(eval_seed);
  ProgressBar bar(::isatty(::fileno(stdout)) == 1);
  // Losses are read back in windows: on a GPU every read waits for the queue to drain. A step's
  // loss is checked for being finite when its window is read (on the CPU: every step).
  const size_t window = device == Device::CPU ? 1 : 32;
  int64_t last_saved = resume ? start_step : -1, last_saved_epoch = start_epoch;
  int64_t step_total = start_step;

  for (int64_t epoch = start_epoch; step_total < target; ++epoch) {
    batches.start_epoch(epoch);
    noise.manual_seed(noise_seed);
    const int64_t first = epoch == start_epoch ? skip : 0;  // minibatches of this epoch already done
    if (first > 0) {
      for (int64_t k = 0; k < first; ++k) batches.next();
      noise.set_offset(resume_offset);
    } else {
      noise.set_offset(epoch_offset(epoch));
    }
    const int64_t last = std::min(spe, target - epoch * spe);  // this segment ends after minibatch `last`
    model_ref.train(true);
    double loss_sum = 0;  // sum over samples, accumulated in step order (deterministic)
    int64_t seen = 0;
    std::vector<std::pair<StepLoss, int64_t>> pending;  // (loss, batch size) not yet read back
    auto t0 = Clock::now();
    double last_bar = -1;
    auto flush = [&](int64_t step_after) {
      int64_t step = step_after - (int64_t)pending.size();
      for (auto& [l, b] : pending) {
        ++step;
        const float v = l.loss.item();
        if (!std::isfinite(v)) {
          bar.clear();
          std::string where = last_saved > 0
                                  ? "the last good checkpoint is " + run.checkpoint_path() + " (epoch " +
                                        std::to_string(last_saved_epoch) + ", step " + std::to_string(last_saved) +
                                        "; continue from it with --resume)"
                                  : "no checkpoint was written (no epoch had finished)";
          throw std::runtime_error("non-finite training loss (" + std::to_string(v) + ") at epoch " +
                                   std::to_string(epoch + 1) + ", step " + std::to_string(step) + " of " +
                                   std::to_string(spe) + " (optimiser step " + std::to_string(epoch * spe + step) +
                                   " of the run); training stopped. " + where + ". A smaller --lr often helps.");
        }
        loss_sum += (double)v * (double)b;
        seen += b;
        if (trainee.buckets && l.per_sample.defined()) trainee.buckets->add(l);
      }
      pending.clear();
    };
    for (int64_t step = first + 1; step <= last && batches.next(); ++step) {
      Tensor x = batches.x();
      if (rc.train.binarize) binarize_(x, noise);  // a fresh batch tensor: safe to overwrite
      x = x.to(device);
      Tensor labels = trainee.needs_labels ? batches.y().to(device) : Tensor();
      StepLoss loss = trainee.loss(x, labels, noise);
      backward(loss.loss);
      opt->step();
      opt->zero_grad();
      if (trainee.ema) trainee.ema->update();
      ++step_total;
      pending.push_back({std::move(loss), x.size(0)});
      const double t = seconds_since(t0);
      const bool bar_due = t - last_bar > 0.1;
      if (pending.size() >= window || step == last || bar_due) flush(step);
      if (bar_due) {
        bar.update(epoch + 1, epochs, step, spe, seen ? loss_sum / (double)seen : 0, (double)seen / t);
        last_bar = t;
      }
    }
    flush(last);
    const double secs = seconds_since(t0);
    const bool epoch_done = last == spe;

    model_ref.train(false);
    ordered_json m;
    m["epoch"] = epoch + 1;
    m["step"] = step_total;
    if (first > 0 || !epoch_done) m["partial"] = true;
    m["train_loss"] = loss_sum / (double)seen;
    if (trainee.buckets) m["loss_by_t"] = trainee.buckets->take();
    std::string test_line;
    double eval_secs = -1;
    if (trainee.evaluate) {
      auto te = Clock::now();
      eval_gen.manual_seed(eval_seed);
      test_line = "  " + trainee.evaluate(data.test, eval_gen, device, m);
      eval_secs = seconds_since(te);
    }

    const int64_t done_epochs = epoch_done ? epoch + 1 : epoch;
    std::map<std::string, std::string> meta;
    if (!epoch_done) meta["noise_offset"] = std::to_string(noise.offset());
    run.save_checkpoint(model_ref, *opt, rc, done_epochs, step_total, trainee.ema.get(), meta);
    last_saved = step_total;
    last_saved_epoch = done_epochs;
    m["seconds"] = secs;
    m["samples_per_s"] = (double)seen / secs;
    if (eval_secs >= 0) m["eval_seconds"] = eval_secs;
    m["device"] = device_name(device);
    run.append_metrics(m);
    write_loss_png(run, trainee);

    bar.clear();
    if (trainee.ema)
      std::printf("epoch %3lld/%lld  step %lld%s  train %.4f  %.1f s  %.0f samples/s\n", (long long)(epoch + 1),
                  (long long)epochs, (long long)step_total, epoch_done ? "" : " (partial epoch)", m["train_loss"].get<double>(),
                  secs, (double)seen / secs);
    else
      std::printf("epoch %3lld/%lld  train %.4f%s  %.1f s  %.0f samples/s\n", (long long)(epoch + 1), (long long)epochs,
                  m["train_loss"].get<double>(), test_line.c_str(), secs, (double)seen / secs);
    std::fflush(stdout);
  }
  std::printf("wrote %s (epoch %lld, step %lld), %s, %s\n", run.checkpoint_path().c_str(), (long long)last_saved_epoch,
              (long long)step_total, run.metrics_path().c_str(), run.file("loss.png").c_str());
  if (rc.family() == "vae")
    std::printf("next: gentape eval %s   (also: sample, reconstruct, interpolate, latents%s, encode, decode)\n",
                out.c_str(), rc.vae.latent == 2 ? ", manifold" : "");
  else if (rc.family() == "ae")
    std::printf("next: gentape eval %s   (also: reconstruct, interpolate, latents, encode, decode)\n", out.c_str());
  else
    std::printf("next: gentape sample %s   (also: trajectory, fid, eval)\n", out.c_str());
  return 0;
}

}  // namespace gt::tools
