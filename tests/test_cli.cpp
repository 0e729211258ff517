// test_cli.cpp: the `gentape` command line end to end (the built binary, spawned on a 512-image
// MNIST subset: train, exact resume, eval --json, every picture, the error paths), plus unit tests
// of what the commands are built from: the flag parser, the inverse normal CDF, 2-D PCA.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "tests/cli_harness.h"
#include "tools/cli.h"
#include "tools/io/png.h"
#include "tools/plots.h"

using namespace gt;
using namespace gt::test_cli;
namespace fs = std::filesystem;

namespace {

// A small, fast model: 512 training images, 2-D latent (so every picture command works).
const std::string kSmall = "--data mnist --train-limit 512 --latent 2 --hidden 64 --batch 64 --device cpu --seed 3";

}  // namespace

// ---------------------------------------------------------------------------------------------
// building blocks

TEST_CASE("cli: inverse normal CDF matches reference values and inverts Phi", "[cli]") {
  // Reference quantiles (R: qnorm, 16 digits).
  const double kTol = 1e-13;  // Acklam (1e-9) plus one Halley step reaches double precision
  CHECK(tools::inverse_normal_cdf(0.5) == Approx(0.0).margin(kTol));
  CHECK(tools::inverse_normal_cdf(0.975) == Approx(1.959963984540054).epsilon(kTol));
  CHECK(tools::inverse_normal_cdf(0.025) == Approx(-1.959963984540054).epsilon(kTol));
  CHECK(tools::inverse_normal_cdf(0.8413447460685429) == Approx(1.0).epsilon(kTol));
  CHECK(tools::inverse_normal_cdf(1e-10) == Approx(-6.361340902404056).epsilon(1e-12));
  CHECK(tools::inverse_normal_cdf(0.01) == Approx(-2.326347874040841).epsilon(kTol));
  CHECK(std::isinf(tools::inverse_normal_cdf(0.0)));
  CHECK(std::isinf(tools::inverse_normal_cdf(1.0)));
  // Round trip through Phi(x) = erfc(-x / sqrt 2) / 2 over all three regions of the approximation.
  for (double p = 1e-6; p < 1; p += 0.0137) {
    const double x = tools::inverse_normal_cdf(p);
    CHECK(0.5 * std::erfc(-x / std::sqrt(2.0)) == Approx(p).epsilon(1e-12));
    CHECK(tools::inverse_normal_cdf(1 - p) == Approx(-x).epsilon(1e-9).margin(1e-12));
  }
}

TEST_CASE("cli: PCA to 2-D finds the principal directions", "[cli]") {
  // Points on a plane spanned by u = (1, 2, 2)/3 and v = (2, -2, 1)/3 with coefficients
  // a_i = 10 sin(2 pi i / n), b_i = cos(2 pi i / n): zero mean and uncorrelated over a whole period,
  // so the principal components are exactly u (variance 50) and v (variance 0.5), and the
  // projection returns (a_i, b_i) up to each component's sign. Offset by (5, 5, 5).
  const int n = 40;
  const double u[3] = {1 / 3.0, 2 / 3.0, 2 / 3.0}, v[3] = {2 / 3.0, -2 / 3.0, 1 / 3.0};
  std::vector<float> x;
  std::vector<double> a, b;
  for (int i = 0; i < n; ++i) {
    const double th = 2 * M_PI * i / n;
    a.push_back(10 * std::sin(th)), b.push_back(std::cos(th));
    for (int j = 0; j < 3; ++j) x.push_back((float)(5 + a[i] * u[j] + b[i] * v[j]));
  }
  std::vector<double> p = tools::pca_2d(x, n, 3);
  REQUIRE(p.size() == 2 * n);
  // The sign rule makes the largest loading positive: u's (2/3, tied on axes 1 and 2) is positive
  // already; v's largest is 2/3 on axis 0 or -2/3 on axis 1 (a tie): either sign may come out.
  const double s1 = p[1] > 0 ? 1 : -1;  // b_0 = 1
  const double kTol = 1e-5;             // float32 inputs
  for (int i = 0; i < n; ++i) {
    CHECK(p[2 * i] == Approx(a[i]).margin(kTol));
    CHECK(p[2 * i + 1] == Approx(s1 * b[i]).margin(kTol));
  }
}

TEST_CASE("cli: flag parser values, choices and errors", "[cli]") {
  auto make = [] {
    cli::Parser p("t", "RUN", "test");
    p.positional("RUN", "run");
    p.option("n", "64", "count", "N");
    p.option("hidden", "400", "widths", "W");
    p.option("arch", "mlp", "arch", "A", {"mlp", "conv"});
    p.option("lr", "1e-3", "rate", "LR");
    p.flag("json", "json");
    return p;
  };
  {
    cli::Parser p = make();
    REQUIRE(p.parse({"runs/x", "--n", "5", "--hidden=512,256", "--json"}));
    CHECK(p.positional_value(0) == "runs/x");
    CHECK(p.integer("n", 1, 100) == 5);
    CHECK(p.integer_list("hidden", 1, 10000) == std::vector<int64_t>{512, 256});
    CHECK(p.on("json"));
    CHECK(p.number("lr", 0, 1) == Approx(1e-3));
    CHECK(p.str("arch") == "mlp");
    CHECK_FALSE(p.given("arch"));
  }
  auto error_of = [&](const cli::Args& a, std::function<void(cli::Parser&)> use = nullptr) {
    cli::Parser p = make();
    try {
      p.parse(a);
      if (use) use(p);
    } catch (const cli::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of({"r", "--latnt", "3"}), Catch::Contains("'--latnt'"));
  CHECK_THAT(error_of({"r", "--jsn"}), Catch::Contains("did you mean --json"));
  CHECK_THAT(error_of({"r", "--arch", "rnn"}), Catch::Contains("--arch") && Catch::Contains("'rnn'"));
  CHECK_THAT(error_of({"r", "--n"}), Catch::Contains("--n needs a value"));
  CHECK_THAT(error_of({"r", "--n", "many"}, [](cli::Parser& p) { p.integer("n", 1, 10); }),
             Catch::Contains("--n expects an integer") && Catch::Contains("'many'"));
  CHECK_THAT(error_of({"r", "--n", "0"}, [](cli::Parser& p) { p.integer("n", 1, 10); }),
             Catch::Contains("--n must be in 1..10") && Catch::Contains("'0'"));
  CHECK_THAT(error_of({"r", "--hidden", "512,x"}, [](cli::Parser& p) { p.integer_list("hidden", 1, 100000); }),
             Catch::Contains("--hidden") && Catch::Contains("'512,x'"));
  CHECK_THAT(error_of({}), Catch::Contains("missing RUN"));
  CHECK_THAT(error_of({"a", "b"}), Catch::Contains("unexpected argument 'b'"));
  CHECK_THAT(error_of({"r", "--json=1"}), Catch::Contains("takes no value"));
}

// ---------------------------------------------------------------------------------------------
// the binary, end to end

TEST_CASE("cli: train, exact resume, eval --json, every picture", "[cli]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string a = tmp.path + "/a", b = tmp.path + "/b";

  // Uninterrupted: 2 epochs. Interrupted: 1 epoch, then --resume to 2.
  Result ra = gentape("train vae " + kSmall + " --epochs 2 --out " + a);
  REQUIRE(ra.code == 0);
  CHECK_THAT(ra.out, Catch::Contains("epoch   2/2"));
  CHECK_THAT(ra.out, Catch::Contains(a));
  REQUIRE(gentape("train vae " + kSmall + " --epochs 1 --out " + b).code == 0);
  Result rb = gentape("train --resume --epochs 2 --out " + b);
  REQUIRE(rb.code == 0);
  CHECK_THAT(rb.out, Catch::Contains("resuming after epoch 1"));

  std::vector<nlohmann::json> ma = metrics(a), mb = metrics(b);
  REQUIRE(ma.size() == 2);
  REQUIRE(mb.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    INFO("epoch " << e + 1);
    CHECK(mb[e]["epoch"] == (int)e + 1);
    for (const char* k : {"train_loss", "test_neg_elbo", "test_recon", "test_kl"}) {
      INFO(k);
      // Bit for bit: the same doubles, not merely close ones.
      CHECK(ma[e][k].get<double>() == mb[e][k].get<double>());
    }
    for (const char* k : {"seconds", "samples_per_s", "active_units"}) CHECK(ma[e].contains(k));
  }
  CHECK(ma[1]["train_loss"].get<double>() < ma[0]["train_loss"].get<double>());
  CHECK(fs::exists(a + "/config.json"));
  CHECK(fs::exists(a + "/loss.png"));
  CHECK_FALSE(fs::exists(a + "/checkpoint.safetensors.tmp"));

  // Resuming a finished run does nothing; a run flag that differs is refused.
  CHECK(gentape("train --resume --epochs 2 --out " + b).code == 0);
  Result diff = gentape("train vae --resume --latent 5 --out " + b);
  CHECK(diff.code == 2);
  CHECK_THAT(diff.err, Catch::Contains("--latent"));
  // A new run into an existing one needs --overwrite.
  CHECK(gentape("train vae " + kSmall + " --epochs 1 --out " + b).code == 2);

  // eval --json: exactly one JSON object on stdout.
  Result ev = gentape("eval " + a + " --iw-samples 8 --json --device cpu");
  REQUIRE(ev.code == 0);
  nlohmann::json j = nlohmann::json::parse(ev.out);  // throws on anything but one JSON value
  REQUIRE(j.is_object());
  for (const char* k : {"neg_elbo", "recon", "kl", "active_units", "nll_iw"}) CHECK(j.contains(k));
  CHECK(j["neg_elbo"].get<double>() == Approx(j["recon"].get<double>() + j["kl"].get<double>()));
  CHECK(j["nll_iw"].get<double>() <= j["neg_elbo"].get<double>() + 1.0);  // IW bound is tighter (noise aside)
  // Without importance samples eval repeats the evaluation that ended training, noise included.
  Result ev0 = gentape("eval " + a + " --json --device cpu");
  REQUIRE(ev0.code == 0);
  CHECK(nlohmann::json::parse(ev0.out)["neg_elbo"].get<double>() == ma[1]["test_neg_elbo"].get<double>());
  Result evh = gentape("eval " + a + " --device cpu");
  REQUIRE(evh.code == 0);
  CHECK_THAT(evh.out, Catch::Contains("-ELBO"));

  // Pictures: each command writes where it says, with the expected size.
  struct Pic {
    std::string cmd, file;
    int w, h;
  };
  const int g = 30;  // a 28-pixel image plus the 2-pixel grid padding
  const Pic pics[] = {
      {"sample " + a + " --n 16 --scale 1", "samples.png", 4 * g + 2, 4 * g + 2},
      {"reconstruct " + a + " --n 8 --scale 1", "reconstructions.png", 2 * (8 * g + 2) + 16, g + 2 + 20},
      {"interpolate " + a + " --from 3 --to 900 --steps 5 --scale 1", "interpolation.png", 7 * g + 2, g + 2},
      {"manifold " + a + " --n 6", "manifold.png", 6 * 28, 6 * 28},
      {"latents " + a, "latents.png", 640, 640},
  };
  for (const Pic& p : pics) {
    INFO(p.cmd);
    Result r = gentape(p.cmd + " --device cpu");
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains(a + "/" + p.file));
    io::Canvas c = io::read_png(a + "/" + p.file);
    CHECK(c.width() == p.w);
    CHECK(c.height() == p.h);
  }
  Result custom = gentape("sample " + a + " --out " + tmp.path + "/s.png --device cpu");
  REQUIRE(custom.code == 0);
  CHECK(fs::exists(tmp.path + "/s.png"));

  // Usage errors name the flag (exit 2); runtime errors name the file (exit 1).
  Result bad = gentape("train vae --latent abc");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--latent") && Catch::Contains("'abc'"));
  Result unk = gentape("sample " + a + " --frobnicate 3");
  CHECK(unk.code == 2);
  CHECK_THAT(unk.err, Catch::Contains("--frobnicate"));
  Result lab = gentape("sample " + a + " --label 3 --device cpu");
  CHECK(lab.code == 2);
  CHECK_THAT(lab.err, Catch::Contains("--label"));
  Result missing = gentape("eval " + tmp.path + "/nope");
  CHECK(missing.code == 1);
  CHECK_THAT(missing.err, Catch::Contains(tmp.path + "/nope"));
  CHECK(gentape("train --help").code == 0);
  CHECK(gentape("frobnicate").code == 2);

  // A damaged checkpoint: cut in half.
  fs::copy(b, tmp.path + "/damaged", fs::copy_options::recursive);
  const std::string ck = tmp.path + "/damaged/checkpoint.safetensors";
  fs::resize_file(ck, fs::file_size(ck) / 2);
  Result dam = gentape("sample " + tmp.path + "/damaged --device cpu");
  CHECK(dam.code == 1);
  CHECK_THAT(dam.err, Catch::Contains(ck));
}

TEST_CASE("cli: a non-finite loss stops training and names the epoch and the checkpoint", "[cli]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string run = tmp.path + "/nan";
  REQUIRE(gentape("train vae " + kSmall + " --epochs 1 --out " + run).code == 0);
  // Plain SGD with an absurd learning rate overflows within a few steps.
  Result r = gentape("train --resume --epochs 3 --optimizer sgd --lr 1e30 --out " + run);
  CHECK(r.code == 2);  // a resumed run keeps its optimizer: refused, naming the flag
  CHECK_THAT(r.err, Catch::Contains("--lr 1e30") && Catch::Contains("differs"));
  Result d = gentape("train vae " + kSmall + " --epochs 2 --optimizer sgd --lr 1e30 --overwrite --out " + run);
  CHECK(d.code == 1);
  CHECK_THAT(d.err, Catch::Contains("non-finite") && Catch::Contains("epoch 1, step"));
  CHECK_THAT(d.err, Catch::Contains("no checkpoint"));
}

TEST_CASE("cli: manifold refuses a latent space that is not 2-D", "[cli]") {
  if (!have_mnist()) return;
  TempDir tmp;
  const std::string run = tmp.path + "/d3";
  REQUIRE(gentape("train vae --data mnist --train-limit 128 --latent 3 --hidden 32 --batch 64 --epochs 1 --device cpu --out " + run)
              .code == 0);
  Result r = gentape("manifold " + run + " --device cpu");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("2-D latent") && Catch::Contains("latent 3"));
  REQUIRE(gentape("latents " + run + " --device cpu").code == 0);  // PCA path
}
