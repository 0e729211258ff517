// vae_commands.cpp: the commands that use a trained run — eval, sample, reconstruct, interpolate,
// manifold, latents — for both latent-variable families: a VAE's code is the posterior mean mu(x),
// an autoencoder's is E(x) (LoadedRun::encode/decode, tools/run_dir.h). Each loads
// RUN/checkpoint.safetensors onto a device and writes one JSON object or one picture (default:
// inside the run directory), printing where. `eval` and `sample` also serve ddpm runs: they declare
// the ddpm flags too (one --help per command) and hand such a run to tools/ddpm_commands.h.
//
//   eval         vae: test-set -ELBO = recon + KL, active units (Burda et al. 2015), and with
//                --iw-samples K the importance-weighted bound on -log p(x) (gt::evaluate)
//                ae:  reconstruction error, PSNR, the code's compression ratio and, for a denoising
//                AE, PSNR before/after denoising (tools/ae_eval.h)
//   sample       vae only: x = decoder(z), z ~ N(0, I) (an autoencoder has no prior)
//   reconstruct  x -> code(x) -> decoder: originals and reconstructions side by side
//   interpolate  decoder((1 - t) code(x_I) + t code(x_J)), t = 0 .. 1
//   manifold     vae only, 2-D latent: decoder(Phi^-1(u1), Phi^-1(u2)) over a grid of u in (0, 1)^2
//                (Kingma & Welling 2014, Fig. 4)
//   latents      code(x) of the test set coloured by class; PCA to 2-D when k > 2
//   encode       the codes of a split as NumPy .npy, (N, k) float32 (and the labels, (N) int32)
//   decode       codes from a .npy file -> images: a PNG grid, optionally the pixels as .npy (N, D)
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "core/device.h"
#include "tools/ae_eval.h"
#include "tools/commands.h"
#include "tools/ddpm_commands.h"
#include "tools/io/npy.h"
#include "tools/plots.h"
#include "tools/run_dir.h"

namespace gt::tools {

namespace {

using nlohmann::ordered_json;

void add_run_flags(cli::Parser& p) {
  p.positional("RUN", "a run directory written by `gentape train`");
  p.option("device", "auto", "where to compute (auto: cuda when a GPU is present)", "auto|cpu|cuda", {"auto", "cpu", "cuda"});
  p.option("threads", "", "CPU threads (default: all cores; training's count repeats its numbers exactly)", "N");
}

void add_picture_flags(cli::Parser& p, const std::string& default_name, const std::string& scale) {
  p.option("out", "", "the PNG to write (default: RUN/" + default_name + ")", "PATH");
  p.option("scale", scale, "enlarge every pixel to K x K", "K");
}

LoadedRun load(const cli::Parser& p) {
  if (p.given("threads")) set_num_threads((int)p.integer("threads", 1, 4096));
  return open_run(p.positional_value(0), parse_device(p.str("device")));
}

std::string picture_path(const cli::Parser& p, const LoadedRun& r, const std::string& default_name) {
  return p.given("out") ? p.str("out") : r.dir.file(default_name);
}

void write_picture(const std::string& path, const io::Canvas& c, const std::string& what) {
  io::write_png(path, c);
  std::printf("wrote %s (%s, %dx%d)\n", path.c_str(), what.c_str(), c.width(), c.height());
}

bool conditional(const LoadedRun& r) { return r.vae && r.vae->config().conditional(); }

// The codes of every image of `data` (mu(x) for a VAE, E(x) for an AE): (N, k) row-major, in
// data-set order.
std::vector<float> encode_all(const LoadedRun& r, const Dataset& data) {
  return r.encode(data.images, conditional(r) ? data.labels : Tensor()).to_vector();
}

// Pixels in [0, 1] for n codes z (n, k) row-major; labels (n) for a conditional model.
std::vector<float> decode_all(const LoadedRun& r, const std::vector<float>& z, int64_t n,
                              const std::vector<int32_t>& labels) {
  Tensor y = conditional(r) ? Tensor::from_indices(labels, {n}, Device::CPU) : Tensor();
  return r.decode(Tensor::from_vector(z, {n, r.latent()}, Device::CPU), y).to_vector();
}

// --label L: checked against the model (only a cvae has labels) and the class count.
int label_flag(const cli::Parser& p, const LoadedRun& r, int def) {
  if (!p.given("label")) return def;
  if (!conditional(r))
    throw cli::UsageError("--label " + p.str("label") + ": this run is an unconditional " + r.config.train.model +
                          " (train a cvae to choose the class)");
  return (int)p.integer("label", 0, r.vae->config().num_classes - 1);
}

// Refuses a command that needs the VAE's prior on an autoencoder run.
void require_prior(const LoadedRun& r) {
  GT_CHECK(!r.ddpm, r.dir.dir() << " is a diffusion model (ddpm): draw from it with gentape sample "
                                << r.dir.dir() << " (also: trajectory, fid)");
  GT_CHECK(r.vae, r.dir.dir() << " is an autoencoder (" << r.config.train.model
                          << "), which has no prior p(z) to draw codes from; decode codes of your choice instead: "
                             "gentape encode "
                          << r.dir.dir() << " --out z.npy, edit z, then gentape decode " << r.dir.dir() << " z.npy");
}

// Every image at `ids` of `data`, concatenated.
std::vector<float> images_at(const Dataset& d, const std::vector<int64_t>& ids) {
  std::vector<float> out;
  const float* x = d.images.data();
  for (int64_t i : ids) out.insert(out.end(), x + i * d.dim(), x + (i + 1) * d.dim());
  return out;
}

// Adds the evaluation's figures to j.
void add_eval_json(ordered_json& j, const VaeEval& ev) {
  j["n"] = ev.n;
  j["neg_elbo"] = ev.neg_elbo;
  j["recon"] = ev.recon;
  j["kl"] = ev.kl;
  j["active_units"] = ev.active_units;
  j["latent"] = ev.activity.size();
  j["posterior_collapse"] = ev.posterior_collapse();
  if (ev.iw_samples > 0) {
    j["nll_iw"] = ev.nll_iw;
    j["iw_samples"] = ev.iw_samples;
  }
  j["kl_per_dim"] = ev.kl_per_dim;
  j["activity"] = ev.activity;
}

void print_report(const LoadedRun& r, const VaeEval& ev, int iw, int hc, const VaeEval& held, const VaeEval& seen) {
  std::printf("%s (epoch %lld): %s on %s, test set of %lld images\n", r.dir.dir().c_str(), (long long)r.epoch,
              r.config.train.model.c_str(), r.config.train.data.c_str(), (long long)ev.n);
  std::printf("  -ELBO          %10.4f nats  (recon %.4f + KL %.4f)\n", ev.neg_elbo, ev.recon, ev.kl);
  if (iw > 0) std::printf("  -log p(x) IW   %10.4f nats  (K = %d importance samples; an upper bound)\n", ev.nll_iw, iw);
  std::printf("  active units   %d of %zu\n", ev.active_units, ev.activity.size());
  std::printf("  KL per dim    ");
  for (double k : ev.kl_per_dim) std::printf(" %.2f", k);
  std::printf("\n");
  if (hc >= 0 && held.n > 0)
    std::printf("  held-out class %d: -ELBO %.4f  vs  seen classes %.4f\n", hc, held.neg_elbo, seen.neg_elbo);
}

// eval for an autoencoder run: reconstruction, PSNR, compression, denoising before/after.
int eval_autoencoder(const LoadedRun& r, int64_t batch, uint64_t seed, bool as_json) {
  const Autoencoder& ae = *r.ae;
  const AeConfig& cfg = ae.config();
  io::DataSplit data = run_data(r.config);
  Generator gen(stream_seed(seed, "eval"));
  AeEval ev = evaluate_ae(ae, data.test, batch, gen, r.device());
  const Compression c = compression(cfg.latent, cfg.input_dim());
  ordered_json j;
  j["run"] = r.dir.dir();
  j["epoch"] = r.epoch;
  j["model"] = r.config.train.model;
  j["data"] = r.config.train.data;
  j["split"] = "test";
  j["n"] = ev.n;
  j["recon"] = ev.recon;
  j["psnr"] = ev.psnr;
  j["latent"] = c.latent;
  j["input_dim"] = c.input_dim;
  j["code_bits"] = c.code_bits;
  j["raw_bits"] = c.raw_bits;
  j["compression_ratio"] = c.ratio;
  if (ev.denoising) {
    j["noise"] = cfg.noise;
    j["psnr_noisy"] = ev.psnr_noisy;
    j["psnr_denoised"] = ev.psnr_denoised;
  }
  const int hc = r.config.train.holdout_class;
  AeEval held, seen;
  if (hc >= 0) {
    // Reconstruction error on the class the model never saw vs the classes it did.
    std::vector<int64_t> in, rest;
    const int32_t* lab = data.test.labels.data_i32();
    for (int64_t i = 0; i < data.test.size(); ++i) (lab[i] == hc ? in : rest).push_back(i);
    if (!in.empty() && !rest.empty()) {
      Generator g1(stream_seed(seed, "eval")), g2(stream_seed(seed, "eval"));
      held = evaluate_ae(ae, data.test.rows(in), batch, g1, r.device());
      seen = evaluate_ae(ae, data.test.rows(rest), batch, g2, r.device());
      j["holdout_class"] = hc;
      j["holdout_recon"] = held.recon;
      j["seen_recon"] = seen.recon;
    }
  }
  if (as_json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s (epoch %lld): %s on %s, test set of %lld images\n", r.dir.dir().c_str(), (long long)r.epoch,
              r.config.train.model.c_str(), r.config.train.data.c_str(), (long long)ev.n);
  std::printf("  recon error    %10.4f per image (squared error summed over %lld pixels; %.5f per pixel)\n", ev.recon,
              (long long)c.input_dim, ev.recon / (double)c.input_dim);
  std::printf("  PSNR           %10.2f dB    (outputs clamped to [0, 1])\n", ev.psnr);
  std::printf("  compression    k/d = %lld/%lld: code %lld bits (%lld float32) vs raw %lld bits (%lld 8-bit pixels), "
              "ratio %.1f:1\n",
              (long long)c.latent, (long long)c.input_dim, (long long)c.code_bits, (long long)c.latent,
              (long long)c.raw_bits, (long long)c.input_dim, c.ratio);
  if (ev.denoising)
    std::printf("  denoising      %s (seed %llu): noisy input %.2f dB -> denoised %.2f dB\n", cfg.noise.c_str(),
                (unsigned long long)seed, ev.psnr_noisy, ev.psnr_denoised);
  if (hc >= 0 && held.n > 0)
    std::printf("  held-out class %d: recon %.4f  vs  seen classes %.4f\n", hc, held.recon, seen.recon);
  return 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

int cmd_eval(const cli::Args& args) {
  cli::Parser p("eval", "RUN",
                "Evaluate a run's model on the test set.\n"
                "vae/cvae: -ELBO = reconstruction + KL (nats per image), active latent units, and with --iw-samples K\n"
                "the importance-weighted estimate of -log p(x).\n"
                "ae/sparse-ae/denoising-ae: reconstruction error (squared error per image), PSNR, the compression\n"
                "report (k/d, bits of the float32 code vs the 8-bit image, ratio), and for denoising-ae the PSNR of\n"
                "the noisy inputs and of the denoised outputs against the clean images.\n"
                "ddpm: the eps-prediction loss ||eps_theta(x_t, t) - eps||^2 / D with the EMA weights, per timestep\n"
                "bucket of T/10 (each test image noised once per bucket), and its mean over t ~ U{1..T}.");
  add_run_flags(p);
  p.option("iw-samples", "", "vae/cvae: importance samples K for the IWAE bound (Burda et al. 2015), e.g. 100 or 5000",
           "K");
  p.option("n", "", "ddpm: test images (a fixed subset; default 1000)", "N");
  p.option("batch", "", "evaluation batch size (default 500; ddpm 100)", "N");
  p.option("seed", "", "seed of the evaluation noise (default: the run's)", "S");
  p.flag("raw-weights", "ddpm: evaluate the trained weights instead of their EMA");
  p.flag("json", "print exactly one JSON object on stdout (warnings still go to stderr)");
  p.epilog(
      "--json keys: vae: neg_elbo, recon, kl, active_units, latent, (nll_iw); ae: recon, psnr, latent, input_dim,\n"
      "code_bits, raw_bits, compression_ratio, and for denoising-ae noise, psnr_noisy, psnr_denoised;\n"
      "ddpm: loss, loss_by_t (10 buckets), t_ranges, n, weights.");
  if (!p.parse(args)) return 0;
  const int iw = p.has("iw-samples") ? (int)p.integer("iw-samples", 1, 1000000) : 0;
  const int64_t batch = p.has("batch") ? p.integer("batch", 1, 1 << 20) : 500;
  const bool as_json = p.on("json");
  LoadedRun r = load(p);
  if (r.ddpm) {
    if (iw > 0)
      throw cli::UsageError("--iw-samples " + p.str("iw-samples") + ": " + r.dir.dir() +
                            " is a ddpm; importance sampling needs a VAE's q(z|x) and p(z)");
    return eval_ddpm(p, r);
  }
  for (const char* f : {"n", "raw-weights"})
    if (p.given(f))
      throw cli::UsageError(std::string("--") + f + ": a ddpm flag; " + r.dir.dir() + " is a " + r.config.train.model +
                            " run");
  const uint64_t seed = p.has("seed") ? (uint64_t)p.integer("seed", 0, INT64_MAX) : r.config.train.seed;
  if (r.ae) {
    if (iw > 0)
      throw cli::UsageError("--iw-samples " + p.str("iw-samples") + ": " + r.dir.dir() + " is an autoencoder (" +
                            r.config.train.model + "); importance sampling needs a VAE's q(z|x) and p(z)");
    return eval_autoencoder(r, batch, seed, as_json);
  }
  const Device device = r.vae->device();
  io::DataSplit data = run_data(r.config);
  Generator gen(stream_seed(seed, "eval"));
  VaeEval ev = evaluate(*r.vae, data.test, batch, iw, gen, device);

  ordered_json j;
  j["run"] = r.dir.dir();
  j["epoch"] = r.epoch;
  j["model"] = r.config.train.model;
  j["data"] = r.config.train.data;
  j["split"] = "test";
  add_eval_json(j, ev);
  const int hc = r.config.train.holdout_class;
  VaeEval held, seen;
  if (hc >= 0) {
    // Held-out class vs the classes seen in training: a higher -ELBO on the held-out class is the
    // model telling novel inputs apart.
    std::vector<int64_t> in, rest;
    const int32_t* lab = data.test.labels.data_i32();
    for (int64_t i = 0; i < data.test.size(); ++i) (lab[i] == hc ? in : rest).push_back(i);
    if (!in.empty() && !rest.empty()) {
      Generator g1(stream_seed(seed, "eval")), g2(stream_seed(seed, "eval"));
      held = evaluate(*r.vae, data.test.rows(in), batch, iw, g1, device);
      seen = evaluate(*r.vae, data.test.rows(rest), batch, iw, g2, device);
      j["holdout_class"] = hc;
      j["holdout_neg_elbo"] = held.neg_elbo;
      j["seen_neg_elbo"] = seen.neg_elbo;
      if (iw > 0) {
        j["holdout_nll_iw"] = held.nll_iw;
        j["seen_nll_iw"] = seen.nll_iw;
      }
    }
  }
  if (as_json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    print_report(r, ev, iw, hc, held, seen);
  }
  std::fflush(stdout);  // the warning follows the report
  if (ev.posterior_collapse())
    std::fprintf(stderr,
                 "warning: posterior collapse: only %d of %zu latent dimensions are active (Cov_x E[z_j|x] > 0.01); "
                 "the decoder ignores most of z (try a smaller --beta, KL annealing, or a weaker decoder)\n",
                 ev.active_units, ev.activity.size());
  return 0;
}

int cmd_sample(const cli::Args& args) {
  cli::Parser p("sample", "RUN",
                "vae/cvae: decode images from the prior z ~ N(0, I) into a PNG grid.\n"
                "ddpm: run the reverse diffusion from x_T ~ N(0, I) with the EMA weights (ancestral, all T steps, or\n"
                "DDIM with --steps), pixels (x + 1)/2 clamped to [0, 1]; prints where it wrote and the time taken.");
  add_run_flags(p);
  p.option("n", "", "how many images (default 64; a cvae without --label: 100, one class per column)", "N");
  p.option("label", "", "cvae, ddpm --cond: the class to generate (cvae default: every class, one per column)", "L");
  p.option("seed", "", "seed of the samples (default: the run's)", "S");
  add_ddpm_sample_flags(p);
  p.option("npy", "", "also write the images, (N, D) float32 in [0, 1], to this .npy file", "PATH");
  add_picture_flags(p, "samples.png", "2");
  p.epilog("examples:\n"
           "  gentape sample runs/vae --n 100\n"
           "  gentape sample runs/ddpm --sampler ddim --steps 50 --npy x.npy\n"
           "  gentape sample runs/ddpm-cond --label 3 --guidance 2");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  LoadedRun r = load(p);
  if (r.ddpm) return sample_ddpm(p, r);
  refuse_ddpm_sample_flags(p, r);
  require_prior(r);
  const VaeConfig& cfg = r.vae->config();
  const int label = label_flag(p, r, -1);
  const bool by_class = cfg.conditional() && label < 0;
  const int64_t n = p.has("n") ? p.integer("n", 1, 10000) : by_class ? cfg.num_classes * 10 : 64;
  const uint64_t seed = p.has("seed") ? (uint64_t)p.integer("seed", 0, INT64_MAX) : r.config.train.seed;
  const Device device = r.vae->device();
  Tensor labels;
  if (cfg.conditional()) {
    std::vector<int32_t> y((size_t)n);
    for (int64_t i = 0; i < n; ++i) y[(size_t)i] = by_class ? (int32_t)(i % cfg.num_classes) : label;
    labels = Tensor::from_indices(y, {n}, device);
  }
  Generator gen(stream_seed(seed, "sample"));
  std::vector<float> px = r.vae->sample(n, labels, gen).to_vector();
  if (p.given("npy")) {
    io::save_npy(p.str("npy"), Tensor::from_vector(px, {n, cfg.input_dim()}, Device::CPU));
    std::printf("wrote %s (%lld images, (%lld, %lld) float32 in [0, 1])\n", p.str("npy").c_str(), (long long)n,
                (long long)n, (long long)cfg.input_dim());
  }
  const int per_row = by_class ? cfg.num_classes : (int)std::ceil(std::sqrt((double)n));
  io::Canvas c = upscale(io::image_grid(px.data(), (int)n, (int)cfg.height, (int)cfg.width, per_row), scale);
  write_picture(picture_path(p, r, "samples.png"), c,
                std::to_string(n) + " samples" +
                    (by_class ? ", one class per column" : label >= 0 ? ", class " + std::to_string(label) : ""));
  return 0;
}

int cmd_reconstruct(const cli::Args& args) {
  cli::Parser p("reconstruct", "RUN",
                "Encode test images and decode their codes (a VAE's posterior means, an autoencoder's E(x)):\n"
                "originals (left) and reconstructions (right). With --corrupt (denoising-ae): originals, the\n"
                "corrupted inputs, and what the model makes of them.");
  add_run_flags(p);
  p.option("n", "32", "how many test images (evenly spaced through the test set)", "N");
  p.flag("corrupt", "denoising-ae: corrupt the inputs with the run's noise spec (seeded) before encoding");
  p.option("seed", "", "--corrupt: seed of the noise (default: the run's)", "S");
  p.option("npy", "", "also write the reconstructions, (N, D) float32 in [0, 1], as a .npy file", "PATH");
  add_picture_flags(p, "reconstructions.png", "2");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  const int64_t n_req = p.integer("n", 1, 10000);
  LoadedRun r = load(p);
  const bool corrupted = p.on("corrupt");
  if (corrupted && !(r.ae && r.ae->config().kind == "denoising"))
    throw cli::UsageError("--corrupt: " + r.dir.dir() + " is a " + r.config.train.model +
                          " run; only a denoising-ae has a noise spec to corrupt its inputs with");
  if (p.given("seed") && !corrupted) throw cli::UsageError("--seed " + p.str("seed") + " is only used with --corrupt");
  io::DataSplit data = run_data(r.config);
  const int64_t N = data.test.size(), n = std::min(n_req, N);
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(i * N / n);  // spread over the classes of a sorted set
  Dataset pick = data.test.rows(ids);
  Tensor y = conditional(r) ? pick.labels : Tensor();
  Tensor input = pick.images;
  if (corrupted) {
    const uint64_t seed = p.has("seed") ? (uint64_t)p.integer("seed", 0, INT64_MAX) : r.config.train.seed;
    Generator gen(stream_seed(seed, "reconstruct"));
    input = corrupt(pick.images, r.ae->config().noise_spec(), gen);
  }
  Tensor rec_t = r.decode(r.encode(input, y), y);
  if (p.given("npy")) {
    io::save_npy(p.str("npy"), rec_t);
    std::printf("wrote %s (%lld reconstructions, (%lld, %lld) float32)\n", p.str("npy").c_str(), (long long)n,
                (long long)n, (long long)rec_t.size(1));
  }
  const int per_row = std::min<int>((int)n, 8), H = (int)r.config.height(), W = (int)r.config.width();
  std::vector<std::pair<std::string, std::vector<float>>> panels;
  panels.push_back({"original", pick.images.to_vector()});
  if (corrupted) {
    std::vector<float> noisy = input.to_vector();
    for (float& v : noisy) v = std::min(1.f, std::max(0.f, v));  // as an image
    panels.push_back({"noisy input", noisy});
  }
  panels.push_back({corrupted ? "denoised" : "reconstruction", rec_t.to_vector()});
  std::vector<io::Canvas> grids;
  for (const auto& [name, px] : panels) grids.push_back(upscale(io::image_grid(px.data(), (int)n, H, W, per_row), scale));
  const int gap = 16, top = 20, gw = grids[0].width(), gh = grids[0].height();
  io::Canvas c((int)grids.size() * gw + ((int)grids.size() - 1) * gap, gh + top);
  for (size_t k = 0; k < grids.size(); ++k) {
    const int x0 = (int)k * (gw + gap);
    for (int yy = 0; yy < gh; ++yy)
      for (int xx = 0; xx < gw; ++xx) c.set(x0 + xx, top + yy, grids[k].get(xx, yy));
    draw_text(c, x0 + 2, 6, panels[k].first, {30, 30, 30});
  }
  write_picture(picture_path(p, r, "reconstructions.png"), c,
                std::to_string(n) + " test images and " +
                    (corrupted ? "their corrupted and denoised versions (" + r.ae->config().noise + ")"
                               : std::string("reconstructions")));
  return 0;
}

int cmd_interpolate(const cli::Args& args) {
  cli::Parser p("interpolate", "RUN",
                "Decode points on the line between the codes of test images I and J:\n"
                "z_t = (1 - t) z(x_I) + t z(x_J), z the posterior mean mu (vae/cvae) or E(x) (autoencoders).\n"
                "The row starts with x_I and ends with x_J.");
  add_run_flags(p);
  p.option("from", "0", "test image I", "I");
  p.option("to", "", "test image J (default: the middle of the test set)", "J");
  p.option("steps", "10", "points on the line, ends included", "N");
  p.option("label", "", "cvae: the class the decoder is given (default: the class of image I)", "L");
  add_picture_flags(p, "interpolation.png", "3");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  const int64_t steps = p.integer("steps", 2, 1000);
  LoadedRun r = load(p);
  io::DataSplit data = run_data(r.config);
  const int64_t N = data.test.size();
  const int64_t I = p.integer("from", 0, N - 1), J = p.has("to") ? p.integer("to", 0, N - 1) : N / 2;
  Dataset pair = data.test.rows({I, J});
  std::vector<int32_t> pair_labels = pair.labels.to_vector_i32();
  std::vector<float> mu = encode_all(r, pair);
  const int64_t D = r.latent();
  std::vector<float> z((size_t)(steps * D));
  for (int64_t s = 0; s < steps; ++s) {
    const double t = (double)s / (double)(steps - 1);
    for (int64_t j = 0; j < D; ++j)
      z[(size_t)(s * D + j)] = (float)((1 - t) * mu[(size_t)j] + t * mu[(size_t)(D + j)]);
  }
  const int label = label_flag(p, r, pair_labels[0]);
  std::vector<float> px = decode_all(r, z, steps, std::vector<int32_t>((size_t)steps, label));
  std::vector<float> row = images_at(pair, {0});
  row.insert(row.end(), px.begin(), px.end());
  std::vector<float> last = images_at(pair, {1});
  row.insert(row.end(), last.begin(), last.end());
  io::Canvas c = upscale(
      io::image_grid(row.data(), (int)steps + 2, (int)r.config.height(), (int)r.config.width(), (int)steps + 2), scale);
  write_picture(picture_path(p, r, "interpolation.png"), c,
                "test image " + std::to_string(I) + " -> " + std::to_string(J) + " in " + std::to_string(steps) + " steps");
  return 0;
}

int cmd_manifold(const cli::Args& args) {
  cli::Parser p("manifold", "RUN",
                "For a VAE with a 2-D latent space: decode a grid of z = (Phi^-1(u1), Phi^-1(u2)), u evenly spaced in\n"
                "(0, 1)^2, so equal areas of the prior get equal room (Kingma & Welling 2014, Fig. 4). z1 grows to the\n"
                "right, z2 upwards.");
  add_run_flags(p);
  p.option("n", "20", "grid size: n x n images", "N");
  p.option("label", "", "cvae: the class the decoder is given", "L");
  add_picture_flags(p, "manifold.png", "1");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  const int64_t n = p.integer("n", 2, 100);
  LoadedRun r = load(p);
  require_prior(r);
  const VaeConfig& cfg = r.vae->config();
  GT_CHECK(cfg.latent == 2, "manifold needs a 2-D latent space, but " << r.dir.dir() << " has latent " << cfg.latent
                                                                    << " (train one with: gentape train vae --latent 2)");
  const int label = label_flag(p, r, 0);
  std::vector<float> z((size_t)(n * n * 2));
  for (int64_t row = 0; row < n; ++row)
    for (int64_t col = 0; col < n; ++col) {
      const int64_t k = row * n + col;
      z[(size_t)(2 * k)] = (float)inverse_normal_cdf(((double)col + 0.5) / (double)n);
      z[(size_t)(2 * k + 1)] = (float)inverse_normal_cdf(((double)(n - 1 - row) + 0.5) / (double)n);
    }
  std::vector<float> px = decode_all(r, z, n * n, std::vector<int32_t>((size_t)(n * n), label));
  io::Canvas c = upscale(io::image_grid(px.data(), (int)(n * n), (int)cfg.height, (int)cfg.width, (int)n, 0), scale);
  write_picture(picture_path(p, r, "manifold.png"), c,
                std::to_string(n) + "x" + std::to_string(n) + " latent manifold" +
                    (cfg.conditional() ? ", class " + std::to_string(label) : ""));
  return 0;
}

int cmd_latents(const cli::Args& args) {
  cli::Parser p("latents", "RUN",
                "Scatter the test set's codes — latent means mu(x) for a VAE, E(x) for an autoencoder — coloured by\n"
                "class (tab10, no legend). A code of more than 2 dimensions is projected on its first two principal\n"
                "components.");
  add_run_flags(p);
  add_picture_flags(p, "latents.png", "1");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  LoadedRun r = load(p);
  io::DataSplit data = run_data(r.config);
  std::vector<float> mu = encode_all(r, data.test);
  const int64_t n = data.test.size(), D = r.latent();
  const std::string what = r.vae ? "latent means" : "codes";
  std::vector<double> xy;
  std::string title;
  if (D == 2) {
    xy.assign(mu.begin(), mu.end());
    title = what + " (z1, z2)";
  } else {
    xy = pca_2d(mu, n, D);
    title = what + ", pca of " + std::to_string(D) + " dims";
  }
  io::Canvas c = upscale(scatter_plot(xy, data.test.labels.to_vector_i32(), title), scale);
  write_picture(picture_path(p, r, "latents.png"), c, std::to_string(n) + " test images");
  return 0;
}

int cmd_encode(const cli::Args& args) {
  cli::Parser p("encode", "RUN",
                "Write the codes of a split's images as a NumPy .npy file, (N, k) float32: the posterior means mu(x)\n"
                "for vae/cvae, E(x) for the autoencoders. In Python: z = numpy.load(\"z.npy\").");
  add_run_flags(p);
  p.option("out", "", "the .npy file to write (required)", "PATH");
  p.option("split", "test", "the run's test set, or its training set (as trained on, in data-set order)",
           "test|train", {"test", "train"});
  p.option("n", "", "only the first N images of the split (default: all)", "N");
  p.option("labels", "", "also write their class labels, (N) int32, to this .npy file", "PATH");
  p.epilog("example:\n  gentape encode runs/ae --out z.npy --labels y.npy && gentape decode runs/ae z.npy --npy x.npy");
  if (!p.parse(args)) return 0;
  if (!p.given("out")) throw cli::UsageError("missing --out PATH: the .npy file to write the codes to");
  LoadedRun r = load(p);
  io::DataSplit data = run_data(r.config);
  const Dataset& split = p.str("split") == "train" ? data.train : data.test;
  const int64_t n = p.has("n") ? p.integer("n", 1, split.size()) : split.size();
  GT_CHECK(n >= 1, r.dir.dir() << ": the " << p.str("split") << " split is empty");
  const Dataset pick = n < split.size() ? split.head(n) : split;
  Tensor z = r.encode(pick.images, conditional(r) ? pick.labels : Tensor());
  io::save_npy(p.str("out"), z);
  std::printf("wrote %s (codes of %lld %s images, (%lld, %lld) float32, %s)\n", p.str("out").c_str(), (long long)n,
              p.str("split").c_str(), (long long)n, (long long)r.latent(), r.vae ? "posterior means mu(x)" : "E(x)");
  if (p.given("labels")) {
    io::save_npy(p.str("labels"), pick.labels);
    std::printf("wrote %s (their labels, (%lld) int32)\n", p.str("labels").c_str(), (long long)n);
  }
  return 0;
}

int cmd_decode(const cli::Args& args) {
  cli::Parser p("decode", "RUN Z.npy",
                "Decode codes into images: Z.npy holds (N, k) float32 codes (from `gentape encode`, or made in NumPy:\n"
                "numpy.save(\"z.npy\", z.astype(numpy.float32))). Writes a PNG grid and, with --npy, the images as\n"
                "(N, D) float32 in [0, 1].");
  add_run_flags(p);
  p.positional("Z.npy", "the codes, (N, k) float32 with k the run's latent size");
  p.option("npy", "", "also write the decoded images, (N, D) float32 in [0, 1], to this .npy file", "PATH");
  p.option("label", "", "cvae: the class the decoder is given (required for a cvae)", "L");
  add_picture_flags(p, "decoded.png", "2");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  const std::string zpath = p.positional_value(1);
  LoadedRun r = load(p);
  const int64_t k = r.latent();
  Tensor z = io::load_npy(zpath);  // errors name the file
  GT_CHECK(z.dtype() == DType::F32,
           zpath << ": codes must be float32 ('<f4'), got an int32 array of shape " << z.shape().str());
  GT_CHECK(z.dim() == 2 && z.size(0) >= 1 && z.size(1) == k,
           zpath << ": codes of shape " << z.shape().str() << " do not fit " << r.dir.dir() << " (" << r.config.train.model
                 << ", latent " << k << "): expected (N, " << k << ") with N >= 1");
  const int64_t n = z.size(0);
  const float* zp = z.data();
  for (int64_t i = 0; i < z.numel(); ++i)
    GT_CHECK(std::isfinite(zp[i]), zpath << ": code " << i / k << ", entry " << i % k << " is not finite (" << zp[i] << ")");
  int label = -1;
  if (conditional(r)) {
    if (!p.given("label")) throw cli::UsageError("missing --label L: " + r.dir.dir() + " is a cvae, whose decoder needs a class");
    label = label_flag(p, r, 0);
  } else {
    label_flag(p, r, 0);  // refuses --label for an unconditional model
  }
  std::vector<float> px = decode_all(r, z.to_vector(), n, std::vector<int32_t>((size_t)n, label));
  const int64_t H = r.config.height(), W = r.config.width();
  if (p.given("npy")) {
    io::save_npy(p.str("npy"), Tensor::from_vector(px, {n, H * W}, Device::CPU));
    std::printf("wrote %s (%lld images, (%lld, %lld) float32 in [0, 1])\n", p.str("npy").c_str(), (long long)n,
                (long long)n, (long long)(H * W));
  }
  const int per_row = (int)std::ceil(std::sqrt((double)n));
  io::Canvas c = upscale(io::image_grid(px.data(), (int)n, (int)H, (int)W, per_row), scale);
  write_picture(picture_path(p, r, "decoded.png"), c, std::to_string(n) + " images decoded from " + zpath);
  return 0;
}

}  // namespace gt::tools
