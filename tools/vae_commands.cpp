// vae_commands.cpp: the commands that use a trained run — eval, sample, reconstruct, interpolate,
// manifold, latents. Each loads RUN/checkpoint.safetensors (tools/run_dir.h) onto a device and
// writes one JSON object or one picture (default: inside the run directory), printing where.
//
//   eval         test-set -ELBO = recon + KL, active units (Burda et al. 2015), and with
//                --iw-samples K the importance-weighted bound on -log p(x) (gt::evaluate)
//   sample       x = decoder(z), z ~ N(0, I)
//   reconstruct  x -> mu(x) -> decoder(mu): originals and reconstructions side by side
//   interpolate  decoder((1 - t) mu(x_I) + t mu(x_J)), t = 0 .. 1
//   manifold     2-D latent only: decoder(Phi^-1(u1), Phi^-1(u2)) over a grid of u in (0, 1)^2
//                (Kingma & Welling 2014, Fig. 4)
//   latents      mu(x) of the test set coloured by class; PCA to 2-D when D > 2
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "core/device.h"
#include "tools/commands.h"
#include "tools/plots.h"
#include "tools/run_dir.h"

namespace gt::tools {

namespace {

using nlohmann::ordered_json;

void add_run_flags(cli::Parser& p) {
  p.positional("RUN", "a run directory written by `gentape train`");
  p.option("device", "auto", "where to compute (auto: cuda when a GPU is present)", "auto|cpu|cuda", {"auto", "cpu", "cuda"});
}

void add_picture_flags(cli::Parser& p, const std::string& default_name, const std::string& scale) {
  p.option("out", "", "the PNG to write (default: RUN/" + default_name + ")", "PATH");
  p.option("scale", scale, "enlarge every pixel to K x K", "K");
}

LoadedRun load(const cli::Parser& p) { return open_run(p.positional_value(0), parse_device(p.str("device"))); }

std::string picture_path(const cli::Parser& p, const LoadedRun& r, const std::string& default_name) {
  return p.given("out") ? p.str("out") : r.dir.file(default_name);
}

void write_picture(const std::string& path, const io::Canvas& c, const std::string& what) {
  io::write_png(path, c);
  std::printf("wrote %s (%s, %dx%d)\n", path.c_str(), what.c_str(), c.width(), c.height());
}

// mu(x) for every image of `data`, (N, D) row-major, in data-set order.
std::vector<float> encode_all(const Vae& vae, const Dataset& data, Device device) {
  NoGradGuard no_grad;
  std::vector<float> mu;
  Batcher batches(data, 500, 0, device, /*shuffle=*/false);
  for (batches.start_epoch(0); batches.next();) {
    auto enc = vae.encode(batches.x(), vae.config().conditional() ? batches.y() : Tensor());
    std::vector<float> m = enc.first.to_vector();
    mu.insert(mu.end(), m.begin(), m.end());
  }
  return mu;
}

// Decoder pixels for n latent codes z (n, D) row-major; labels (n) for a conditional model.
std::vector<float> decode_all(const Vae& vae, const std::vector<float>& z, int64_t n, const std::vector<int32_t>& labels,
                              Device device) {
  NoGradGuard no_grad;
  Tensor zt = Tensor::from_vector(z, {n, vae.config().latent}, device);
  Tensor y = vae.config().conditional() ? Tensor::from_indices(labels, {n}, device) : Tensor();
  return vae.to_pixels(vae.decode(zt, y)).to_vector();
}

// --label L: checked against the model (only a cvae has labels) and the class count.
int label_flag(const cli::Parser& p, const VaeConfig& cfg, int def) {
  if (!p.given("label")) return def;
  if (!cfg.conditional())
    throw cli::UsageError("--label " + p.str("label") + ": this run is an unconditional vae (train a cvae to choose the class)");
  return (int)p.integer("label", 0, cfg.num_classes - 1);
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

}  // namespace

// ---------------------------------------------------------------------------------------------

int cmd_eval(const cli::Args& args) {
  cli::Parser p("eval", "RUN", "Evaluate a run's model on the test set: -ELBO = reconstruction + KL (nats per image),\n"
                               "active latent units, and with --iw-samples K the importance-weighted estimate of -log p(x).");
  add_run_flags(p);
  p.option("iw-samples", "", "importance samples K for the IWAE bound (Burda et al. 2015), e.g. 100 or 5000", "K");
  p.option("batch", "500", "evaluation batch size", "N");
  p.option("seed", "", "seed of the evaluation noise (default: the run's)", "S");
  p.flag("json", "print exactly one JSON object on stdout (warnings still go to stderr)");
  if (!p.parse(args)) return 0;
  const int iw = p.has("iw-samples") ? (int)p.integer("iw-samples", 1, 1000000) : 0;
  const int64_t batch = p.integer("batch", 1, 1 << 20);
  const bool as_json = p.on("json");
  LoadedRun r = load(p);
  const uint64_t seed = p.has("seed") ? (uint64_t)p.integer("seed", 0, INT64_MAX) : r.config.train.seed;
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
  cli::Parser p("sample", "RUN", "Decode images from the prior z ~ N(0, I) into a PNG grid.");
  add_run_flags(p);
  p.option("n", "", "how many images (default 64; a cvae without --label: 100, one class per column)", "N");
  p.option("label", "", "cvae: the class to generate (default: every class, one per column)", "L");
  p.option("seed", "", "seed of the prior samples (default: the run's)", "S");
  add_picture_flags(p, "samples.png", "2");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  LoadedRun r = load(p);
  const VaeConfig& cfg = r.vae->config();
  const int label = label_flag(p, cfg, -1);
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
  const int per_row = by_class ? cfg.num_classes : (int)std::ceil(std::sqrt((double)n));
  io::Canvas c = upscale(io::image_grid(px.data(), (int)n, (int)cfg.height, (int)cfg.width, per_row), scale);
  write_picture(picture_path(p, r, "samples.png"), c,
                std::to_string(n) + " samples" +
                    (by_class ? ", one class per column" : label >= 0 ? ", class " + std::to_string(label) : ""));
  return 0;
}

int cmd_reconstruct(const cli::Args& args) {
  cli::Parser p("reconstruct", "RUN",
                "Encode test images and decode their means: originals (left) and reconstructions (right).");
  add_run_flags(p);
  p.option("n", "32", "how many test images (evenly spaced through the test set)", "N");
  add_picture_flags(p, "reconstructions.png", "2");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  const int64_t n_req = p.integer("n", 1, 10000);
  LoadedRun r = load(p);
  const VaeConfig& cfg = r.vae->config();
  io::DataSplit data = run_data(r.config);
  const int64_t N = data.test.size(), n = std::min(n_req, N);
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(i * N / n);  // spread over the classes of a sorted set
  Dataset pick = data.test.rows(ids);
  const Device device = r.vae->device();
  Tensor x = pick.images.to(device);
  Tensor y = cfg.conditional() ? pick.labels.to(device) : Tensor();
  std::vector<float> rec = r.vae->reconstruct(x, y).to_vector();
  std::vector<float> orig = images_at(pick, [&] {
    std::vector<int64_t> all;
    for (int64_t i = 0; i < n; ++i) all.push_back(i);
    return all;
  }());
  const int per_row = std::min<int>((int)n, 8), H = (int)cfg.height, W = (int)cfg.width;
  io::Canvas a = upscale(io::image_grid(orig.data(), (int)n, H, W, per_row), scale);
  io::Canvas b = upscale(io::image_grid(rec.data(), (int)n, H, W, per_row), scale);
  const int gap = 16, top = 20;
  io::Canvas c(a.width() * 2 + gap, a.height() + top);
  for (int yy = 0; yy < a.height(); ++yy)
    for (int xx = 0; xx < a.width(); ++xx) {
      c.set(xx, top + yy, a.get(xx, yy));
      c.set(a.width() + gap + xx, top + yy, b.get(xx, yy));
    }
  draw_text(c, 2, 6, "original", {30, 30, 30});
  draw_text(c, a.width() + gap + 2, 6, "reconstruction", {30, 30, 30});
  write_picture(picture_path(p, r, "reconstructions.png"), c, std::to_string(n) + " test images and reconstructions");
  return 0;
}

int cmd_interpolate(const cli::Args& args) {
  cli::Parser p("interpolate", "RUN",
                "Decode points on the line between the latent means of test images I and J:\n"
                "z_t = (1 - t) mu(x_I) + t mu(x_J). The row starts with x_I and ends with x_J.");
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
  const VaeConfig& cfg = r.vae->config();
  io::DataSplit data = run_data(r.config);
  const int64_t N = data.test.size();
  const int64_t I = p.integer("from", 0, N - 1), J = p.has("to") ? p.integer("to", 0, N - 1) : N / 2;
  const Device device = r.vae->device();
  Dataset pair = data.test.rows({I, J});
  std::vector<int32_t> pair_labels = pair.labels.to_vector_i32();
  std::vector<float> mu = encode_all(*r.vae, pair, device);
  const int64_t D = cfg.latent;
  std::vector<float> z((size_t)(steps * D));
  for (int64_t s = 0; s < steps; ++s) {
    const double t = (double)s / (double)(steps - 1);
    for (int64_t j = 0; j < D; ++j)
      z[(size_t)(s * D + j)] = (float)((1 - t) * mu[(size_t)j] + t * mu[(size_t)(D + j)]);
  }
  const int label = label_flag(p, cfg, pair_labels[0]);
  std::vector<float> px = decode_all(*r.vae, z, steps, std::vector<int32_t>((size_t)steps, label), device);
  std::vector<float> row = images_at(pair, {0});
  row.insert(row.end(), px.begin(), px.end());
  std::vector<float> last = images_at(pair, {1});
  row.insert(row.end(), last.begin(), last.end());
  io::Canvas c = upscale(io::image_grid(row.data(), (int)steps + 2, (int)cfg.height, (int)cfg.width, (int)steps + 2), scale);
  write_picture(picture_path(p, r, "interpolation.png"), c,
                "test image " + std::to_string(I) + " -> " + std::to_string(J) + " in " + std::to_string(steps) + " steps");
  return 0;
}

int cmd_manifold(const cli::Args& args) {
  cli::Parser p("manifold", "RUN",
                "For a 2-D latent space: decode a grid of z = (Phi^-1(u1), Phi^-1(u2)), u evenly spaced in (0, 1)^2,\n"
                "so equal areas of the prior get equal room (Kingma & Welling 2014, Fig. 4). z1 grows to the\n"
                "right, z2 upwards.");
  add_run_flags(p);
  p.option("n", "20", "grid size: n x n images", "N");
  p.option("label", "", "cvae: the class the decoder is given", "L");
  add_picture_flags(p, "manifold.png", "1");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  const int64_t n = p.integer("n", 2, 100);
  LoadedRun r = load(p);
  const VaeConfig& cfg = r.vae->config();
  GT_CHECK(cfg.latent == 2, "manifold needs a 2-D latent space, but " << r.dir.dir() << " has latent " << cfg.latent
                                                                    << " (train one with: gentape train vae --latent 2)");
  const int label = label_flag(p, cfg, 0);
  std::vector<float> z((size_t)(n * n * 2));
  for (int64_t row = 0; row < n; ++row)
    for (int64_t col = 0; col < n; ++col) {
      const int64_t k = row * n + col;
      z[(size_t)(2 * k)] = (float)inverse_normal_cdf(((double)col + 0.5) / (double)n);
      z[(size_t)(2 * k + 1)] = (float)inverse_normal_cdf(((double)(n - 1 - row) + 0.5) / (double)n);
    }
  std::vector<float> px = decode_all(*r.vae, z, n * n, std::vector<int32_t>((size_t)(n * n), label), r.vae->device());
  io::Canvas c = upscale(io::image_grid(px.data(), (int)(n * n), (int)cfg.height, (int)cfg.width, (int)n, 0), scale);
  write_picture(picture_path(p, r, "manifold.png"), c,
                std::to_string(n) + "x" + std::to_string(n) + " latent manifold" +
                    (cfg.conditional() ? ", class " + std::to_string(label) : ""));
  return 0;
}

int cmd_latents(const cli::Args& args) {
  cli::Parser p("latents", "RUN",
                "Scatter the test set's latent means mu(x), coloured by class (tab10, no legend).\n"
                "A latent space of more than 2 dimensions is projected on its first two principal components.");
  add_run_flags(p);
  add_picture_flags(p, "latents.png", "1");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  LoadedRun r = load(p);
  const VaeConfig& cfg = r.vae->config();
  io::DataSplit data = run_data(r.config);
  std::vector<float> mu = encode_all(*r.vae, data.test, r.vae->device());
  const int64_t n = data.test.size(), D = cfg.latent;
  std::vector<double> xy;
  std::string title;
  if (D == 2) {
    xy.assign(mu.begin(), mu.end());
    title = "latent means (z1, z2)";
  } else {
    xy = pca_2d(mu, n, D);
    title = "latent means, pca of " + std::to_string(D) + " dims";
  }
  io::Canvas c = upscale(scatter_plot(xy, data.test.labels.to_vector_i32(), title), scale);
  write_picture(picture_path(p, r, "latents.png"), c, std::to_string(n) + " test images");
  return 0;
}

}  // namespace gt::tools
