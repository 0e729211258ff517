// gentape.cpp: the `gentape` command-line tool — the user's entry point. Today it reports the
// build and the devices (`gentape info`); train/eval/sample commands arrive with the model issues.
#include <cstdio>
#include <cstring>
#include <string>

#include "core/allocator.h"
#include "core/device.h"
#include "core/rng.h"

namespace gt::tools {
int cmd_demo(Device device);  // demo.cpp
}

namespace {
void usage(FILE* f) {
  std::fprintf(f,
               "usage: gentape <command> [options]\n\n"
               "commands:\n"
               "  info     show the build (CUDA or not), the GPU if any, and CPU threads\n"
               "  demo     fit a small MLP with the autograd engine [--device auto|cpu|cuda]\n"
               "  help     this message\n");
}

int cmd_info() {
  std::printf("gentape 0.1.0\n");
  std::printf("  CUDA backend : %s\n", gt::built_with_cuda() ? "built" : "not built");
  if (gt::cuda_available())
    std::printf("  GPU          : %s\n", gt::cuda_device_name().c_str());
  else
    std::printf("  GPU          : none (%s)\n", gt::cuda_unavailable_reason().c_str());
  std::printf("  CPU threads  : %d\n", gt::num_threads());
  std::printf("  RNG          : Philox4x32-10 (%s)\n",
              gt::Generator::uses_curand() ? "cuRAND host + device generators, legacy ordering"
                                           : "gentape's own implementation; no cuRAND in this build");
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "info") return cmd_info();
    if (cmd == "demo") {
      std::string dev = "auto";
      for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--device" && i + 1 < argc) {
          dev = argv[++i];
        } else {
          std::fprintf(stderr, "gentape demo: unknown option '%s' (expected --device auto|cpu|cuda)\n", a.c_str());
          return 2;
        }
      }
      return gt::tools::cmd_demo(gt::parse_device(dev));
    }
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      usage(stdout);
      return 0;
    }
    std::fprintf(stderr, "gentape: unknown command '%s'\n\n", cmd.c_str());
    usage(stderr);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
