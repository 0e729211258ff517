// test_cli_ddpm.cpp: the `gentape` command line for diffusion models end to end (the built binary,
// spawned on a tiny U-Net, --channels 8 --T 50, trained a few steps on 64 images of a small MNIST
// copy): train ddpm writes the checkpoint (EMA and optimiser state included) and metrics with the
// loss per timestep bucket; exact --resume, by epochs and from inside an epoch (--steps); sample
// (ddpm and ddim, .npy, EMA vs trained weights), trajectory's picture size, eval --json, fid --json
// with a FidNet cached in a scratch GENTAPE_CACHE (and fid on a VAE run), the class-conditional
// path (--label, --guidance, cond_accuracy), and the refusals, each naming its flag.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/cli_harness.h"
#include "tools/io/datasets.h"
#include "tools/io/idx.h"
#include "tools/io/npy.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

using namespace gt;
using namespace gt::test_cli;
namespace fs = std::filesystem;

namespace {

// fid trains its FidNet on a data set's full training split: 1,000 images keep that at a few seconds.
void write_small_mnist(const std::string& dir) { test_cli::write_small_mnist(dir, 1000, 100); }
const int64_t kT = 50;  // diffusion steps of the tiny model: buckets of 5
// The tiny model: a U-Net with c = 8 (48,481 parameters), 64 training images, 4 steps per epoch.
std::string tiny(const std::string& data) {
  return "--data " + data + " --channels 8 --T " + std::to_string(kT) + " --train-limit 64 --batch 16 --seed 5" + kCpu;
}
const int kCell = 30;  // a 28-pixel image plus the 2-pixel grid padding

nlohmann::json json_of(const Result& r) { return nlohmann::json::parse(r.out); }

// Every tensor of a checkpoint, as host floats (int32 tensors converted), by name.
std::map<std::string, std::vector<float>> tensors_of(const std::string& run) {
  io::Checkpoint c = io::load_safetensors(run + "/checkpoint.safetensors");
  std::map<std::string, std::vector<float>> out;
  for (auto& [k, t] : c.tensors) {
    if (t.dtype() == DType::F32) {
      out[k] = t.to_vector();
    } else {
      std::vector<int32_t> v = t.to_vector_i32();
      out[k] = std::vector<float>(v.begin(), v.end());
    }
  }
  return out;
}

std::vector<float> npy_values(const std::string& path, int64_t rows, int64_t cols) {
  Tensor t = io::load_npy(path);
  REQUIRE(t.dim() == 2);
  CHECK(t.size(0) == rows);
  CHECK(t.size(1) == cols);
  return t.to_vector();
}

// The FidNet cache of this process: a scratch directory, so the tests neither read nor write the
// user's (<data>/cache).
struct ScratchCache {
  std::string path;
  explicit ScratchCache(const std::string& p) : path(p) { ::setenv("GENTAPE_CACHE", p.c_str(), 1); }
  ~ScratchCache() { ::unsetenv("GENTAPE_CACHE"); }
};

}  // namespace

TEST_CASE("cli ddpm: train writes checkpoint, EMA and loss_by_t; resume is exact, by epochs and inside an epoch",
          "[cli][ddpm]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", a = tmp.path + "/a", b = tmp.path + "/b";
  write_small_mnist(data);

  // Uninterrupted: 2 epochs. Interrupted: 1 epoch, then --resume to 2.
  Result ra = gentape("train ddpm " + tiny(data) + " --epochs 2 --out " + a);
  REQUIRE(ra.code == 0);
  CHECK_THAT(ra.out, Catch::Contains("epoch   2/2") && Catch::Contains("step 8") && Catch::Contains("48481 parameters"));
  REQUIRE(gentape("train ddpm " + tiny(data) + " --epochs 1 --out " + b).code == 0);
  Result rb = gentape("train --resume --epochs 2 --out " + b + kCpu);
  REQUIRE(rb.code == 0);
  CHECK_THAT(rb.out, Catch::Contains("resuming after epoch 1"));

  std::vector<nlohmann::json> ma = metrics(a), mb = metrics(b);
  REQUIRE(ma.size() == 2);
  REQUIRE(mb.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    INFO("epoch " << e + 1);
    CHECK(ma[e]["epoch"] == (int)e + 1);
    CHECK(ma[e]["step"] == 4 * ((int)e + 1));
    CHECK_FALSE(ma[e].contains("partial"));
    for (const char* k : {"seconds", "samples_per_s", "device"}) CHECK(ma[e].contains(k));
    CHECK(ma[e]["train_loss"].get<double>() == mb[e]["train_loss"].get<double>());  // bit for bit
    CHECK(ma[e]["loss_by_t"] == mb[e]["loss_by_t"]);
    // loss_by_t: 10 bucket means of the epoch's 64 per-sample losses; train_loss is their
    // count-weighted mean, so it lies between the smallest and the largest bucket mean.
    const nlohmann::json& by_t = ma[e]["loss_by_t"];
    REQUIRE(by_t.is_array());
    REQUIRE(by_t.size() == 10);
    double lo = INFINITY, hi = -INFINITY;
    int filled = 0;
    for (const auto& v : by_t) {
      if (v.is_null()) continue;
      ++filled;
      CHECK(std::isfinite(v.get<double>()));
      lo = std::min(lo, v.get<double>());
      hi = std::max(hi, v.get<double>());
    }
    CHECK(filled >= 5);  // 64 draws of t over 10 equal buckets leave few, if any, empty
    CHECK(ma[e]["train_loss"].get<double>() >= lo);
    CHECK(ma[e]["train_loss"].get<double>() <= hi);
  }
  CHECK(fs::exists(a + "/loss.png"));
  CHECK_FALSE(fs::exists(a + "/checkpoint.safetensors.tmp"));

  // The checkpoint: parameters, their EMA under ema.*, Adam's moments under optim.*; identical
  // after the resume.
  const auto ta = tensors_of(a), tb = tensors_of(b);
  CHECK(ta == tb);
  int params = 0;
  for (const auto& [k, v] : ta) {
    if (k.rfind("ema.", 0) == 0 || k.rfind("optim.", 0) == 0) continue;
    ++params;
    INFO(k);
    CHECK(ta.count("ema." + k));
    CHECK(ta.count("optim.exp_avg." + k));
    CHECK(ta.count("optim.exp_avg_sq." + k));
  }
  CHECK(params > 20);
  // With decay 0.999, 8 steps move the EMA ~0.8% of the way from the initial weights: it differs
  // from the trained weights.
  CHECK(ta.at("ema.conv_in.weight") != ta.at("conv_in.weight"));
  const io::Checkpoint ck = io::load_safetensors(a + "/checkpoint.safetensors");
  CHECK(ck.metadata.at("format") == "gentape-ddpm-run/1");
  CHECK(ck.metadata.at("step") == "8");
  CHECK(ck.metadata.at("epoch") == "2");

  const nlohmann::json cfg = nlohmann::json::parse(slurp(a + "/config.json"));
  CHECK(cfg["family"] == "ddpm");
  CHECK(cfg["ddpm"]["unet"]["channels"] == 8);
  CHECK(cfg["ddpm"]["unet"]["num_classes"] == 0);
  CHECK(cfg["ddpm"]["schedule"]["T"] == kT);
  CHECK(cfg["train"]["ema"] == 0.999);
  CHECK(cfg["train"]["lr"] == 2e-4);  // the ddpm default (the VAE's is 1e-3)

  // --steps: stopping inside an epoch and resuming there repeats the uninterrupted run exactly.
  const std::string c = tmp.path + "/c", d = tmp.path + "/d";
  REQUIRE(gentape("train ddpm " + tiny(data) + " --steps 6 --out " + c).code == 0);
  Result rd = gentape("train ddpm " + tiny(data) + " --steps 3 --out " + d);
  REQUIRE(rd.code == 0);
  CHECK_THAT(rd.out, Catch::Contains("partial epoch"));
  const std::vector<nlohmann::json> md3 = metrics(d);
  REQUIRE(md3.size() == 1);
  CHECK(md3[0]["step"] == 3);
  CHECK(md3[0]["partial"] == true);
  Result rd2 = gentape("train --resume --steps 6 --out " + d + kCpu);
  REQUIRE(rd2.code == 0);
  CHECK_THAT(rd2.out, Catch::Contains("3 steps of epoch 1"));
  CHECK(tensors_of(c) == tensors_of(d));
  const std::vector<nlohmann::json> mc = metrics(c), md = metrics(d);
  REQUIRE(mc.size() == 2);  // step 4 (epoch 1) and step 6 (inside epoch 2)
  REQUIRE(md.size() == 3);  // step 3, then step 4 and step 6 after the resume
  CHECK(mc[1]["step"] == 6);
  CHECK(mc[1]["train_loss"].get<double>() == md[2]["train_loss"].get<double>());
  CHECK(mc[1]["loss_by_t"] == md[2]["loss_by_t"]);
  CHECK(mc[0]["train_loss"].get<double>() == ma[0]["train_loss"].get<double>());  // --steps and --epochs agree
  // Nothing left to do; a run flag that differs is refused.
  Result again = gentape("train --resume --steps 6 --out " + d + kCpu);
  CHECK(again.code == 0);
  CHECK_THAT(again.out, Catch::Contains("nothing to do"));
  Result diff = gentape("train --resume --T 100 --steps 8 --out " + d + kCpu);
  CHECK(diff.code == 2);
  CHECK_THAT(diff.err, Catch::Contains("--T 100") && Catch::Contains("differs"));
}

TEST_CASE("cli ddpm: sample (ddpm, ddim, .npy, EMA vs trained weights), trajectory, eval --json", "[cli][ddpm]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/run";
  write_small_mnist(data);
  REQUIRE(gentape("train ddpm " + tiny(data) + " --steps 4 --out " + run).code == 0);

  // Ancestral sampling: a PNG grid (2 per row for 4 images) and the pixels in [0, 1] as (n, 784).
  const std::string s1 = tmp.path + "/s1.npy";
  Result r1 = gentape("sample " + run + " --n 4 --scale 1 --npy " + s1 + kCpu);
  REQUIRE(r1.code == 0);
  CHECK_THAT(r1.out, Catch::Contains(run + "/samples.png") && Catch::Contains("ddpm, 50 steps") &&
                         Catch::Contains("EMA weights") && Catch::Contains(" s on cpu"));
  const io::Canvas grid = io::read_png(run + "/samples.png");
  CHECK(grid.width() == 2 * kCell + 2);
  CHECK(grid.height() == 2 * kCell + 2);
  const std::vector<float> x1 = npy_values(s1, 4, 784);
  float lo = 1, hi = 0;
  for (float v : x1) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= 0.f);
  CHECK(hi <= 1.f);
  CHECK(hi > lo);
  // The same seed draws the same images; another seed, or the trained weights, other ones.
  const std::string s2 = tmp.path + "/s2.npy", s3 = tmp.path + "/s3.npy", s4 = tmp.path + "/s4.npy";
  REQUIRE(gentape("sample " + run + " --n 4 --npy " + s2 + " --out " + tmp.path + "/s2.png" + kCpu).code == 0);
  CHECK(npy_values(s2, 4, 784) == x1);
  REQUIRE(gentape("sample " + run + " --n 4 --seed 9 --npy " + s3 + " --out " + tmp.path + "/s3.png" + kCpu).code == 0);
  CHECK(npy_values(s3, 4, 784) != x1);
  Result raw = gentape("sample " + run + " --n 4 --raw-weights --npy " + s4 + " --out " + tmp.path + "/s4.png" + kCpu);
  REQUIRE(raw.code == 0);
  CHECK_THAT(raw.out, Catch::Contains("trained weights"));
  CHECK(npy_values(s4, 4, 784) != x1);

  // DDIM with 5 steps, in batches of 2.
  const std::string s5 = tmp.path + "/s5.npy";
  Result dd = gentape("sample " + run + " --n 5 --sampler ddim --steps 5 --batch 2 --npy " + s5 + " --out " +
                      tmp.path + "/s5.png" + kCpu);
  REQUIRE(dd.code == 0);
  CHECK_THAT(dd.out, Catch::Contains("ddim, 5 steps"));
  const std::vector<float> x5 = npy_values(s5, 5, 784);
  CHECK(std::all_of(x5.begin(), x5.end(), [](float v) { return v >= 0.f && v <= 1.f; }));

  // trajectory: 2 images -> 4 rows (x_t, predicted x0) of 11 columns (t = 49, 45, ..., 5, 0),
  // under a 14-pixel strip of t labels.
  Result tr = gentape("trajectory " + run + " --n 2 --scale 1" + kCpu);
  REQUIRE(tr.code == 0);
  CHECK_THAT(tr.out, Catch::Contains(run + "/trajectory.png") && Catch::Contains("11 timesteps"));
  const io::Canvas tc = io::read_png(run + "/trajectory.png");
  CHECK(tc.width() == 11 * kCell + 2);
  CHECK(tc.height() == 14 + 4 * kCell + 2);
  REQUIRE(gentape("trajectory " + run + " --n 1 --sampler ddim --steps 4 --scale 2 --out " + tmp.path + "/t.png" + kCpu)
              .code == 0);
  CHECK(io::read_png(tmp.path + "/t.png").width() == 2 * (11 * kCell + 2));

  // eval --json: the test loss per bucket of 5 timesteps, and its mean over t ~ U{1..50}.
  Result ev = gentape("eval " + run + " --n 8 --batch 5 --json" + kCpu);
  REQUIRE(ev.code == 0);
  const nlohmann::json j = json_of(ev);
  CHECK(j["n"] == 8);
  CHECK(j["weights"] == "ema");
  REQUIRE(j["loss_by_t"].size() == 10);
  REQUIRE(j["t_ranges"].size() == 10);
  double mean = 0;
  for (int k = 0; k < 10; ++k) {
    INFO("bucket " << k);
    CHECK(j["t_ranges"][k] == nlohmann::json::array({5 * k + 1, 5 * k + 5}));
    const double v = j["loss_by_t"][k].get<double>();
    CHECK(std::isfinite(v));
    CHECK(v > 0);
    mean += v / 10;
  }
  CHECK(j["loss"].get<double>() == Approx(mean).epsilon(1e-12));
  // Fixed seed: the same numbers again.
  Result ev2 = gentape("eval " + run + " --n 8 --batch 5 --json" + kCpu);
  REQUIRE(ev2.code == 0);
  CHECK(json_of(ev2)["loss_by_t"] == j["loss_by_t"]);
  Result evh = gentape("eval " + run + " --n 2" + kCpu);
  REQUIRE(evh.code == 0);
  CHECK_THAT(evh.out, Catch::Contains("eps-prediction loss"));
}

TEST_CASE("cli ddpm: fid --json with a cached FidNet, for a ddpm and a vae run", "[cli][ddpm]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/run", vae = tmp.path + "/vae";
  write_small_mnist(data);
  ScratchCache cache(tmp.path + "/cache");
  REQUIRE(gentape("train ddpm " + tiny(data) + " --steps 4 --out " + run).code == 0);

  // First call: trains FidNet on the 1,000 training images and caches it.
  Result f1 = gentape("fid " + run + " --n 16 --steps 3 --json" + kCpu);
  REQUIRE(f1.code == 0);
  CHECK_THAT(f1.err, Catch::Contains("training FidNet"));
  const nlohmann::json j = json_of(f1);  // stdout is one JSON object
  for (const char* k : {"fid", "fid_floor", "n", "sampler", "steps", "classifier_accuracy", "seconds"}) {
    INFO(k);
    CHECK(j.contains(k));
  }
  CHECK_FALSE(j.contains("cond_accuracy"));
  CHECK(j["n"] == 16);
  CHECK(j["n_real"] == 16);
  CHECK(j["sampler"] == "ddim");
  CHECK(j["steps"] == 3);
  const double acc = j["classifier_accuracy"].get<double>();
  CHECK(acc > 0.3);  // 10 classes: chance is 0.1
  CHECK(acc <= 1.0);
  // Real test images vs real training images are closer than a 4-step model's samples are to them.
  CHECK(j["fid_floor"].get<double>() >= 0);
  CHECK(j["fid"].get<double>() > j["fid_floor"].get<double>());
  std::vector<std::string> cached;
  for (const auto& e : fs::directory_iterator(cache.path)) cached.push_back(e.path().filename().string());
  REQUIRE(cached.size() == 1);  // no temporary left behind
  CHECK_THAT(cached[0], Catch::StartsWith("fidnet-dir-data-") && Catch::EndsWith(".safetensors"));

  // Second call: the cached FidNet, the same samples: the same numbers.
  Result f2 = gentape("fid " + run + " --n 16 --steps 3 --json" + kCpu);
  REQUIRE(f2.code == 0);
  CHECK_THAT(f2.err, Catch::Contains("from the cache"));
  const nlohmann::json j2 = json_of(f2);
  CHECK(j2["fid"].get<double>() == j["fid"].get<double>());
  CHECK(j2["fid_floor"].get<double>() == j["fid_floor"].get<double>());
  CHECK(j2["classifier_accuracy"].get<double>() == acc);
  Result fh = gentape("fid " + run + " --n 16 --steps 3" + kCpu);
  REQUIRE(fh.code == 0);
  CHECK_THAT(fh.out, Catch::Contains("FID") && Catch::Contains("floor"));

  // A VAE run: samples from its prior through the same FidNet.
  REQUIRE(gentape("train vae --data " + data + " --train-limit 128 --hidden 32 --latent 2 --batch 64 --epochs 1 --out " +
                  vae + kCpu)
              .code == 0);
  Result fv = gentape("fid --vae " + vae + " --n 16 --json" + kCpu);
  REQUIRE(fv.code == 0);
  const nlohmann::json jv = json_of(fv);
  CHECK(jv["sampler"] == "prior");
  CHECK(jv["steps"].is_null());
  CHECK(jv["classifier_accuracy"].get<double>() == acc);
  CHECK(jv["fid_floor"].get<double>() == j["fid_floor"].get<double>());
  Result notvae = gentape("fid --vae " + run + kCpu);
  CHECK(notvae.code == 2);
  CHECK_THAT(notvae.err, Catch::Contains("--vae"));
}

TEST_CASE("cli ddpm: a class-conditional run samples a --label with --guidance and reports cond_accuracy",
          "[cli][ddpm]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/cond";
  write_small_mnist(data);
  ScratchCache cache(tmp.path + "/cache");
  Result tr = gentape("train ddpm --cond --label-dropout 0.2 " + tiny(data) + " --steps 4 --out " + run);
  REQUIRE(tr.code == 0);
  CHECK_THAT(tr.out, Catch::Contains("conditional on 10 classes (label dropout 0.2)"));
  const nlohmann::json cfg = nlohmann::json::parse(slurp(run + "/config.json"));
  CHECK(cfg["ddpm"]["unet"]["num_classes"] == 10);
  CHECK(cfg["ddpm"]["label_dropout"] == 0.2);
  CHECK(tensors_of(run).count("ema.class_embed.weight"));

  const std::string npy = tmp.path + "/x.npy";
  Result s = gentape("sample " + run + " --n 3 --label 3 --guidance 2 --sampler ddim --steps 4 --npy " + npy + kCpu);
  REQUIRE(s.code == 0);
  CHECK_THAT(s.out, Catch::Contains("class 3") && Catch::Contains("guidance 2"));
  npy_values(npy, 3, 784);
  // Guidance changes the images (w = 0 is the plain conditional sample).
  const std::string npy0 = tmp.path + "/x0.npy";
  REQUIRE(gentape("sample " + run + " --n 3 --label 3 --sampler ddim --steps 4 --npy " + npy0 + kCpu).code == 0);
  CHECK(npy_values(npy0, 3, 784) != npy_values(npy, 3, 784));
  REQUIRE(gentape("trajectory " + run + " --n 1 --label 7 --sampler ddim --steps 3" + kCpu).code == 0);

  Result f = gentape("fid " + run + " --n 20 --steps 2 --guidance 1 --json" + kCpu);
  REQUIRE(f.code == 0);
  const nlohmann::json j = json_of(f);
  REQUIRE(j.contains("cond_accuracy"));
  CHECK(j["cond_accuracy"].get<double>() >= 0);
  CHECK(j["cond_accuracy"].get<double>() <= 1);
  CHECK(j.contains("fid_cond"));
  CHECK(j["guidance"] == 1.0);

  // Out-of-range label; guidance without a label.
  Result bad = gentape("sample " + run + " --label 10" + kCpu);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--label") && Catch::Contains("0..9"));
  Result nolabel = gentape("sample " + run + " --guidance 2" + kCpu);
  CHECK(nolabel.code == 2);
  CHECK_THAT(nolabel.err, Catch::Contains("--guidance") && Catch::Contains("--label"));
}

TEST_CASE("cli ddpm: mistakes are refused naming the flag; a non-finite loss names the step", "[cli][ddpm]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string data = tmp.path + "/data", run = tmp.path + "/run";
  write_small_mnist(data);
  REQUIRE(gentape("train ddpm " + tiny(data) + " --steps 1 --out " + run).code == 0);

  struct Case {
    std::string cmd, must_contain;
  };
  const Case cases[] = {
      {"sample " + run + " --guidance 2", "--guidance 2"},          // an unconditional run
      {"sample " + run + " --label 1", "--label 1"},                // likewise
      {"sample " + run + " --steps 10", "--steps 10"},              // the ancestral sampler takes all T
      {"sample " + run + " --sampler ddim --steps 51", "--steps"},  // more than T
      {"trajectory " + run + " --steps 7", "--steps 7"},
      {"eval " + run + " --iw-samples 4", "--iw-samples"},
      {"train ddpm --latent 3 --out " + tmp.path + "/x", "--latent"},
      {"train ddpm --optimizer sgd --out " + tmp.path + "/x", "--optimizer"},
      {"train ddpm --channels 12 --out " + tmp.path + "/x", "--channels"},
      {"train ddpm --label-dropout 0.3 --out " + tmp.path + "/x", "--label-dropout"},
      {"train ddpm --epochs 2 --steps 3 --out " + tmp.path + "/x", "--steps"},
      {"train vae --T 10 --out " + tmp.path + "/x", "--T"},
      {"train vae --steps 10 --out " + tmp.path + "/x", "--steps"},
  };
  for (const Case& c : cases) {
    INFO(c.cmd);
    Result r = gentape(c.cmd + kCpu);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.must_contain));
  }
  // Commands of the latent-variable families refuse a ddpm run by name.
  Result rec = gentape("reconstruct " + run + kCpu);
  CHECK(rec.code == 1);
  CHECK_THAT(rec.err, Catch::Contains("diffusion model"));

  // Adam with an absurd learning rate: the weights explode within two steps.
  Result nan = gentape("train ddpm " + tiny(data) + " --epochs 1 --lr 1e30 --out " + tmp.path + "/nan");
  CHECK(nan.code == 1);
  CHECK_THAT(nan.err, Catch::Contains("non-finite") && Catch::Contains("epoch 1, step") &&
                          Catch::Contains("no checkpoint"));
}

// GENTAPE_CONV3X3 (kernels/winograd.h) selects the 3x3 convolution algorithm; a value it does not
// know is reported, naming the variable, before a command writes anything.
TEST_CASE("cli: an unknown GENTAPE_CONV3X3 is refused before anything is written", "[cli]") {
  TempDir tmp;
  ::setenv("GENTAPE_CONV3X3", "fast", 1);
  const Result r = gentape("train ddpm --steps 1 --device cpu --out " + tmp.path + "/bad");
  ::unsetenv("GENTAPE_CONV3X3");
  REQUIRE(r.code == 1);
  REQUIRE_THAT(r.err, Catch::Contains("GENTAPE_CONV3X3=fast") && Catch::Contains("winograd or direct"));
  REQUIRE_FALSE(std::filesystem::exists(tmp.path + "/bad"));
  for (const char* known : {"direct", "winograd"}) {  // the known values are accepted
    ::setenv("GENTAPE_CONV3X3", known, 1);
    REQUIRE(gentape("info").code == 0);
  }
  ::unsetenv("GENTAPE_CONV3X3");
}
