// gentape.cpp: the `gentape` command-line tool — the user's entry point. The table below lists every
// command; each lives in its own file and declares its flags with tools/cli.h, so
// `gentape <command> --help` always matches the code.
//
//   gentape train vae --latent 2 --epochs 10 --out runs/two-d    # writes a run directory
//   gentape eval runs/two-d --iw-samples 100
//   gentape manifold runs/two-d                                   # runs/two-d/manifold.png
//   gentape train ae --train-limit 1000 --epochs 50 --out runs/ae # an autoencoder, k = 2
//   gentape encode runs/ae --out z.npy && gentape decode runs/ae z.npy
//   gentape train ddpm --steps 2000 --out runs/ddpm && gentape sample runs/ddpm --sampler ddim
//   gentape trajectory runs/ddpm && gentape fid runs/ddpm --json
//
// Exit codes: 0 success, 1 a runtime failure (missing file, damaged checkpoint, diverged training),
// 2 a command-line mistake (unknown command or flag, bad value), always with a message naming it.
#include <cstdio>
#include <cstring>
#include <string>

#include "core/allocator.h"
#include "core/device.h"
#include "core/rng.h"
#include "kernels/winograd.h"
#include "tools/commands.h"

namespace gt::tools {
int cmd_demo(Device device);  // demo.cpp: the autograd engine alone, an MLP fit of sin(3x)
}

namespace {

using gt::cli::Args;

struct Command {
  const char* name;
  int (*run)(const Args& args);
  const char* summary;
};

// ---- the commands ----------------------------------------------------------------------------
const Command kCommands[] = {
    {"train", gt::tools::cmd_train,
     "train a vae, cvae, ae, sparse-ae, denoising-ae or ddpm; writes a run directory (checkpoint, metrics, loss.png)"},
    {"eval", gt::tools::cmd_eval,
     "vae: test -ELBO, KL, active units, IW -log p(x); ae: recon, PSNR, compression, denoising; ddpm: loss by t"},
    {"sample", gt::tools::cmd_sample, "vae/cvae: images decoded from the prior; ddpm: reverse diffusion (ddpm|ddim)"},
    {"trajectory", gt::tools::cmd_trajectory, "ddpm: x_t and the predicted x0 at t = T-1, 9T/10, ..., 0 for n images"},
    {"fid", gt::tools::cmd_fid, "ddpm/vae: FID of samples vs the test set in a cached classifier's features (--json)"},
    {"reconstruct", gt::tools::cmd_reconstruct, "test images next to their reconstructions"},
    {"interpolate", gt::tools::cmd_interpolate, "decode the latent line between two test images (--from I --to J)"},
    {"manifold", gt::tools::cmd_manifold, "2-D latent vae runs: the decoded 20x20 latent grid (Kingma & Welling Fig. 4)"},
    {"latents", gt::tools::cmd_latents, "scatter of test-set codes by class (PCA when latent > 2)"},
    {"encode", gt::tools::cmd_encode, "write a split's codes as NumPy .npy (N, k) float32"},
    {"decode", gt::tools::cmd_decode, "decode codes from a .npy file into a PNG grid (and .npy images)"},
    {"classify", gt::tools::cmd_classify, "test accuracy of a head on the run's codes vs on raw pixels (--head, --finetune)"},
    {"outliers", gt::tools::cmd_outliers, "AUROC of recon error / -ELBO for a held-out class; the most anomalous images"},
    {"compare-ae-vae", gt::tools::cmd_compare_ae_vae, "train an AE and a VAE (k = 2) on the same images; plots and a table"},
    {"info", gt::tools::cmd_info, "the build (CUDA or not), the GPU if any, CPU threads"},
    {"demo", gt::tools::cmd_demo, "the autograd engine alone: fit sin(3x) with a small MLP"},
};

void usage(FILE* f) {
  std::fprintf(f, "usage: gentape <command> [arguments] [flags]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(f, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(f,
               "\n`gentape <command> --help` lists a command's flags.\n"
               "quick start:  gentape train vae --latent 2 --epochs 10 --out runs/demo\n"
               "              gentape sample runs/demo && gentape manifold runs/demo\n");
}

// gt::Error messages start with "gentape: "; the command name replaces it.
std::string strip_prefix(const char* what) {
  return std::strncmp(what, "gentape: ", 9) == 0 ? what + 9 : what;
}

}  // namespace

namespace gt::tools {

int cmd_info(const Args& args) {
  cli::Parser p("info", "", "Show the build (CUDA or not), the GPU if any, CPU threads and the RNG.");
  if (!p.parse(args)) return 0;
  std::printf("gentape 0.1.0\n");
  std::printf("  CUDA backend : %s\n", built_with_cuda() ? "built" : "not built");
  if (cuda_available())
    std::printf("  GPU          : %s\n", cuda_device_name().c_str());
  else
    std::printf("  GPU          : none (%s)\n", cuda_unavailable_reason().c_str());
  std::printf("  CPU threads  : %d\n", num_threads());
  std::printf("  RNG          : Philox4x32-10 (%s)\n",
              Generator::uses_curand() ? "CPU: core/philox.h; CUDA: cuRAND, legacy ordering; one stream"
                                       : "core/philox.h: cuRAND's stream, computed without cuRAND");
  return 0;
}

int cmd_demo(const Args& args) {
  cli::Parser p("demo", "", "Fit y = sin(3x) with a 1-64-64-1 tanh MLP written with raw autograd ops (the engine alone;\n"
                            "`make demo` runs the VAE demo).");
  p.option("device", "auto", "where to compute", "auto|cpu|cuda", {"auto", "cpu", "cuda"});
  if (!p.parse(args)) return 0;
  return cmd_demo(parse_device(p.str("device")));
}

}  // namespace gt::tools

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    if (argc > 2) {  // gentape help train == gentape train --help
      for (const Command& c : kCommands)
        if (argv[2] == std::string(c.name)) return c.run({"--help"});
    }
    usage(stdout);
    return 0;
  }
  const Command* command = nullptr;
  for (const Command& c : kCommands)
    if (cmd == c.name) command = &c;
  if (!command) {
    std::fprintf(stderr, "gentape: unknown command '%s'\n\n", cmd.c_str());
    usage(stderr);
    return 2;
  }
  try {
    gt::conv3x3_algo();  // a bad GENTAPE_CONV3X3 is reported before a command writes anything
    return command->run(Args(argv + 2, argv + argc));
  } catch (const gt::cli::UsageError& e) {
    std::fprintf(stderr, "gentape %s: %s\n(see gentape %s --help)\n", cmd.c_str(), e.what(), cmd.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gentape %s: error: %s\n", cmd.c_str(), strip_prefix(e.what()).c_str());
    return 1;
  }
}
