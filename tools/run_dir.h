// run_dir.h: a training run on disk, and the seeds that make a run reproducible.
//
// A run directory (default runs/<model>-<data>-<YYYYmmdd-HHMMSS>) holds
//   config.json              the model and training options, human-readable: "family" says which
//                            model family ("vae": vae/cvae, a VaeConfig under "vae"; "ae":
//                            ae/sparse-ae/denoising-ae, an AeConfig under "ae"; "ddpm": a DdpmConfig
//                            under "ddpm", models/ddpm.h); "format" is gentape-vae-run/1,
//                            gentape-ae-run/1 or gentape-ddpm-run/1 accordingly
//   checkpoint.safetensors   after every epoch (and, for ddpm --steps, where training stops),
//                            written atomically (tmp file + rename):
//                              model parameters under their names ("fc1.weight", ...),
//                              optimizer state under "optim.<key>" ("optim.exp_avg.fc1.weight", ...),
//                              ddpm: the EMA of the weights under "ema.<name>",
//                              __metadata__: format, config (the same JSON), epoch (completed), step
//                              (optimiser steps done), seed, and noise_offset (the training-noise
//                              stream's position, for resuming inside an epoch)
//   metrics.jsonl            one JSON object per checkpoint: epoch (the one it ends in), step,
//                            train_loss (mean over the steps since the previous line), seconds,
//                            samples_per_s, device, partial (only when the line covers part of an
//                            epoch), and the figures of the family:
//                              vae:  test_neg_elbo, test_recon, test_kl, active_units
//                              ae:   test_recon (mean per-image squared error), test_psnr (dB), and for
//                                    denoising-ae test_psnr_noisy, test_psnr_denoised
//                              ddpm: loss_by_t, the mean eps-MSE of the line's training samples whose t
//                                    fell in each of 10 buckets of T/10 steps (null: none did)
//   loss.png and the pictures the other commands write
//
// Random streams (all Philox, core/rng.h), each a function of the run's seed and the epoch only,
// so an epoch computes the same numbers whether the process started at epoch 0 or resumed there:
//   parameter init       Generator(seed)
//   shuffling            Batcher(train, batch, seed): permutation from (seed, epoch) (models/data.h)
//   training noise       Generator(stream_seed(seed, "noise")) with offset epoch * 2^40, re-set at the
//                        start of every epoch: the reparameterisation eps, the denoising corruption,
//                        the --binarize uniforms; ddpm: t, the label dropout and eps (a resume inside
//                        an epoch restarts from the checkpoint's noise_offset)
//   test evaluation      Generator(stream_seed(seed, "eval")) re-seeded before every evaluation
//   --train-limit subset a permutation with the fixed seed kSubsetSeed (the same subset for every seed)
//   --binarize test set  a fixed binarisation with kTestBinarizeSeed (comparable across seeds)
//
//   gt::tools::LoadedRun r = gt::tools::open_run("runs/demo", gt::Device::CPU);  // model ready to use
//   gt::io::DataSplit d = gt::tools::run_data(r.config);                          // its data
//   gt::Tensor z = r.encode(d.test.images);     // (N, k) codes: mu(x) for a VAE, E(x) for an AE
//   gt::Tensor px = r.decode(z);                // (N, D) images in [0, 1]
//   for (const auto& line : r.dir.read_metrics()) use(line["test_recon"]);
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/ae.h"
#include "models/ddpm.h"
#include "models/optim.h"
#include "models/vae.h"
#include "tools/io/datasets.h"

namespace gt::tools {

// Training options: everything besides the model that determines a run's numbers.
struct TrainOptions {
  std::string model = "vae";  // "vae", "cvae", "ae", "sparse-ae", "denoising-ae" or "ddpm"
  std::string data = "mnist";  // mnist, fashion-mnist or a directory (stored absolute)
  int64_t epochs = 10, batch = 128;
  double lr = 1e-3;
  std::string optimizer = "adam";  // "adam" or "sgd"
  double momentum = 0;             // sgd only
  uint64_t seed = 1;
  bool binarize = false;      // dynamic binarisation of training batches, fixed for the test set
  int64_t train_limit = 0;    // 0: the whole training set
  int holdout_class = -1;     // -1: none
  // ddpm only (stored in config.json for ddpm runs only):
  int64_t steps = 0;          // stop after this many optimiser steps in total (0: train `epochs` epochs)
  double ema = 0.999;         // decay of the EMA of the weights, updated after every step
};

// The family of a model name: "vae" (vae, cvae), "ae" (ae, sparse-ae, denoising-ae) or "ddpm";
// throws gt::Error naming an unknown model.
std::string model_family(const std::string& model);
// The AeConfig kind of an autoencoder model name: "ae", "sparse" or "denoising".
std::string ae_kind(const std::string& model);

struct RunConfig {
  TrainOptions train;
  VaeConfig vae;  // family "vae" only
  AeConfig ae;    // family "ae" only
  DdpmConfig ddpm;  // family "ddpm" only
  std::string family() const { return model_family(train.model); }
  int64_t latent() const;  // the code size k; 0 for a ddpm (no code)
  int64_t height() const;
  int64_t width() const;
  nlohmann::ordered_json to_json() const;
  // `where` names the source (a file) in errors.
  static RunConfig from_json(const nlohmann::json& j, const std::string& where);
};

constexpr uint64_t kSubsetSeed = 0x5eed;
constexpr uint64_t kTestBinarizeSeed = 0xb1a;
// A seed for one purpose ("noise", "eval") derived from the run's seed (splitmix64 of seed ^ hash).
uint64_t stream_seed(uint64_t seed, const char* purpose);
// The offset of epoch e in a per-epoch stream: e * 2^40 values (far more than one epoch draws).
inline uint64_t epoch_offset(int64_t epoch) { return (uint64_t)epoch << 40; }

struct CheckpointState {
  RunConfig config;
  int64_t epoch = 0;  // completed epochs
  int64_t step = -1;  // optimiser steps done (-1: not recorded, a checkpoint from before "step")
  std::map<std::string, Tensor> model, optim;  // optim: keys without the "optim." prefix
  std::map<std::string, Tensor> ema;           // ddpm: the EMA, keys without the "ema." prefix
  std::map<std::string, std::string> metadata;  // all of __metadata__
};

class RunDir {
 public:
  explicit RunDir(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::string config_path() const { return file("config.json"); }
  std::string checkpoint_path() const { return file("checkpoint.safetensors"); }
  std::string metrics_path() const { return file("metrics.jsonl"); }

  void create() const;  // mkdir -p
  bool exists() const;
  bool has_checkpoint() const;
  void write_config(const RunConfig& rc) const;  // atomic
  // model: the run's Vae, Autoencoder or U-Net; step: optimiser steps done (-1: not recorded); ema:
  // saved under "ema.<name>"; extra_meta: more __metadata__ strings (noise_offset).
  void save_checkpoint(const nn::Module& model, const optim::Optimizer& opt, const RunConfig& rc, int64_t epoch,
                       int64_t step = -1, const optim::Ema* ema = nullptr,
                       const std::map<std::string, std::string>& extra_meta = {}) const;
  // Validates the file (safetensors.h), the format and the config; errors name the file.
  CheckpointState load_checkpoint() const;

  void append_metrics(const nlohmann::ordered_json& line) const;
  std::vector<nlohmann::json> read_metrics() const;  // empty when there is no file
  // Drops the lines after the checkpoint a run resumes from (it redoes them), atomically: a line
  // with a "step" is kept when step <= last_step (last_step >= 0), any other when its epoch <=
  // last_epoch.
  void truncate_metrics(int64_t last_epoch, int64_t last_step = -1) const;
  // Removes a previous run's checkpoint, metrics and pictures (train --overwrite).
  void clear() const;

 private:
  std::string dir_;
};


// The data a run trains and tests on, with --holdout-class, --train-limit and the fixed test-set
// binarisation applied. Prints nothing.
io::DataSplit run_data(const RunConfig& rc);

// A finished (or interrupted) run, loaded for eval/sample/...: the model on `device`, in eval mode.
// Exactly one of vae, ae and ddpm is set, as family() says.
struct LoadedRun {
  RunDir dir;
  RunConfig config;
  int64_t epoch = 0;
  std::unique_ptr<Vae> vae;         // family "vae"
  std::unique_ptr<Autoencoder> ae;  // family "ae"
  std::unique_ptr<Ddpm> ddpm;       // family "ddpm": the trained weights and the schedule
  std::unique_ptr<UNet> ema;        // family "ddpm": a second U-Net holding the EMA weights (null when
                                    // the checkpoint has none)
  int64_t step = -1;                // optimiser steps done (-1: not recorded)

  std::string family() const { return config.family(); }
  const nn::Module& model() const;
  Device device() const { return model().device(); }
  int64_t latent() const { return config.latent(); }
  // encode/decode: VAE and AE runs only (a ddpm run is an error naming it).
  // The code of each row of x (B, D), any device: mu(x) for a VAE (labels (B) int32 for a cvae;
  // ignored otherwise), E(x) for an AE. Returns (B, k) on the CPU; no gradients, batches of 500.
  Tensor encode(const Tensor& x, const Tensor& labels = Tensor()) const;
  // Images for codes z (B, k), any device, in [0, 1]: sigmoid of the logits (Bernoulli VAE), the
  // mean (Gaussian VAE, already in [0, 1]), or D(z) clamped to [0, 1] (AE, whose output is linear).
  // labels (B) int32 for a cvae. Returns (B, D) on the CPU; no gradients, batches of 500.
  Tensor decode(const Tensor& z, const Tensor& labels = Tensor()) const;
};
// Errors name the missing directory or file, or the damaged checkpoint.
LoadedRun open_run(const std::string& dir, Device device);

// Small file helpers (errors name the file).
std::string read_text(const std::string& path);
void write_text_atomic(const std::string& path, const std::string& text);
bool path_exists(const std::string& path);

}  // namespace gt::tools
